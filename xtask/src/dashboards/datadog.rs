//! The Datadog dashboards, for the dashboards API (`POST /api/v1/dashboard`).
//!
//! The five metric dashboards mirror the Grafana ones with Datadog's names for the same data:
//! the catalogue's dotted names as the DogStatsD backend sends them (`http.request.duration`),
//! histograms as distributions (`p95:`), values in the recorded units (milliseconds, bytes), and
//! the backend's global tags (`service`, `env`) plus the Agent's `host`. The APM dashboard reads
//! Datadog's trace metrics of vigil-trace-datadog's `http.request` spans, and the log analytics
//! dashboard the logs of vigil-log-datadog.

use vigil_core::catalogue::{
    DATABASE_POOL_ACQUIRE_DURATION, DATABASE_POOL_ACQUIRE_TIMEOUTS, DATABASE_POOL_IDLE, DATABASE_POOL_IN_USE,
    DATABASE_POOL_MAX, DATABASE_POOL_SIZE, DATABASE_QUERY_COUNT, DATABASE_QUERY_DURATION, DATABASE_QUERY_SLOW,
    HTTP_REQUEST_COUNT, HTTP_REQUEST_DURATION, HTTP_REQUESTS_IN_FLIGHT, HTTP_RESPONSE_SIZE, MetricDef,
    PROCESS_CPU_USAGE, PROCESS_MEMORY_RESIDENT, PROCESS_MEMORY_VIRTUAL, PROCESS_OPEN_FDS, PROCESS_START_TIME,
    PROCESS_THREADS, PROCESS_UPTIME, SYSTEM_CPU_USAGE, SYSTEM_LOAD, SYSTEM_MEMORY_TOTAL, SYSTEM_MEMORY_USED,
    TOKIO_QUEUE_DEPTH, TOKIO_TASKS_ALIVE, TOKIO_WORKER_PARKS, TOKIO_WORKERS, TOKIO_WORKERS_BUSY,
    VIGIL_DATADOG_LOGS_PAYLOAD_SIZE, VIGIL_DATADOG_LOGS_REQUESTS, VIGIL_DATADOG_LOGS_SENT,
    VIGIL_DATADOG_LOGS_TRUNCATED, VIGIL_LOG_DROPPED, VIGIL_METRICS_OVERFLOW, VIGIL_TRACE_DROPPED,
    VIGIL_TRACE_SEND_ERRORS, VIGIL_TRACE_SENT, VIGIL_TRACE_SPANS_DROPPED, WEBSOCKET_CONNECTION_DURATION,
    WEBSOCKET_CONNECTIONS, WEBSOCKET_MESSAGES,
};

use super::grafana::alert;
use super::thresholds::Thresholds;
use crate::json::Value;

/// One Datadog dashboard.
pub struct Dashboard {
    /// File name under `dashboards/datadog/`.
    pub file: &'static str,
    /// Title: publishing finds an existing dashboard by it.
    pub title: &'static str,
    /// What it shows.
    pub description: &'static str,
    /// Template variables: name and the tag they filter.
    pub variables: &'static [&'static str],
    /// The widget definitions.
    pub widgets: Vec<Value>,
}

/// The scope of the metric dashboards' queries: their template variables.
const SCOPE: &str = "$service,$env,$host";
/// The scope of the APM and log dashboards' queries.
const APM_SCOPE: &str = "$service,$env";
/// The template variables of the metric dashboards.
const METRIC_VARIABLES: &[&str] = &["service", "env", "host"];
/// The template variables of the APM and log dashboards.
const SERVICE_VARIABLES: &[&str] = &["service", "env"];
/// The span whose trace metrics the APM dashboard reads (vigil-trace-datadog's request span).
const REQUEST_SPAN: &str = "trace.http.request";

/// A metric query: `agg:name{scope[,filters]}[ by {tags}][modifier]`.
fn mq(agg: &str, def: &MetricDef, filters: &[&str], by: &[&str], modifier: &str) -> String {
    query(agg, def.name, SCOPE, filters, by, modifier)
}

/// A query on any metric name with the given scope.
fn query(agg: &str, name: &str, scope: &str, filters: &[&str], by: &[&str], modifier: &str) -> String {
    let mut scope = scope.to_owned();
    for filter in filters {
        scope.push(',');
        scope.push_str(filter);
    }
    let group = if by.is_empty() {
        String::new()
    } else {
        format!(" by {{{}}}", by.join(","))
    };
    format!("{agg}:{name}{{{scope}}}{group}{modifier}")
}

/// A formula over the request's queries (`q1`, `100 * q1 / q2`), with a legend alias.
struct Formula {
    /// The formula.
    expr: String,
    /// The legend alias, if any.
    alias: Option<String>,
}

/// `q1`, `q2`, ... as a formula with an alias.
fn f(expr: &str, alias: &str) -> Formula {
    Formula {
        expr: expr.to_owned(),
        alias: (!alias.is_empty()).then(|| alias.to_owned()),
    }
}

/// A widget under construction.
struct Widget {
    /// `timeseries`, `query_value` or `toplist`.
    kind: &'static str,
    /// Title.
    title: String,
    /// The queries, named `q1`, `q2`, ... in order.
    queries: Vec<Value>,
    /// The formulas; `q1` alone when none was given.
    formulas: Vec<Formula>,
    /// Canonical unit of the formulas' values (`millisecond`, `byte`, `percent`).
    unit: Option<&'static str>,
    /// An alert threshold (value in the formulas' unit, alert name).
    threshold: Option<(f64, &'static str)>,
    /// Line or bars, for time series.
    display: &'static str,
}

impl Widget {
    /// A widget of `kind` titled `title`.
    fn new(kind: &'static str, title: &str) -> Self {
        Widget {
            kind,
            title: title.to_owned(),
            queries: Vec::new(),
            formulas: Vec::new(),
            unit: None,
            threshold: None,
            display: "line",
        }
    }

    /// Adds a metrics query.
    fn metric(mut self, query: String) -> Self {
        let name = format!("q{}", self.queries.len() + 1);
        let mut members = vec![
            ("data_source", Value::str("metrics")),
            ("name", Value::str(name)),
            ("query", Value::str(query)),
        ];
        if self.kind != "timeseries" {
            members.push((
                "aggregator",
                Value::str(if self.kind == "toplist" { "sum" } else { "last" }),
            ));
        }
        self.queries.push(Value::obj(members));
        self
    }

    /// Adds a logs query: a count of the logs matching `search`, grouped by `facets`.
    fn logs(mut self, search: &str, facets: &[&str]) -> Self {
        let name = format!("q{}", self.queries.len() + 1);
        let group_by = facets
            .iter()
            .map(|facet| {
                Value::obj([
                    ("facet", Value::str(*facet)),
                    ("limit", Value::int(10)),
                    (
                        "sort",
                        Value::obj([("aggregation", Value::str("count")), ("order", Value::str("desc"))]),
                    ),
                ])
            })
            .collect::<Vec<_>>();
        self.queries.push(Value::obj([
            ("data_source", Value::str("logs")),
            ("name", Value::str(name)),
            ("indexes", Value::arr([Value::str("*")])),
            ("search", Value::obj([("query", Value::str(search))])),
            ("compute", Value::obj([("aggregation", Value::str("count"))])),
            ("group_by", Value::Array(group_by)),
        ]));
        self
    }

    /// Adds a formula.
    fn formula(mut self, formula: Formula) -> Self {
        self.formulas.push(formula);
        self
    }

    /// Sets the canonical unit.
    fn unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Draws an alert threshold.
    fn threshold(mut self, value: f64, alert: &'static str) -> Self {
        self.threshold = Some((value, alert));
        self
    }

    /// Draws bars instead of lines.
    fn bars(mut self) -> Self {
        self.display = "bars";
        self
    }

    /// The widget's JSON.
    #[allow(clippy::too_many_lines)] // one declarative list
    fn build(self) -> Value {
        let formulas = if self.formulas.is_empty() {
            vec![f("q1", "")]
        } else {
            self.formulas
        };
        let unit = self.unit;
        let formulas: Vec<Value> = formulas
            .into_iter()
            .map(|formula| {
                let mut members = vec![("formula", Value::str(formula.expr))];
                if let Some(alias) = formula.alias {
                    members.push(("alias", Value::str(alias)));
                }
                if let Some(unit) = unit {
                    members.push((
                        "number_format",
                        Value::obj([(
                            "unit",
                            Value::obj([("type", Value::str("canonical_unit")), ("unit_name", Value::str(unit))]),
                        )]),
                    ));
                }
                Value::obj(members)
            })
            .collect();
        let response_format = if self.kind == "timeseries" {
            "timeseries"
        } else {
            "scalar"
        };
        let mut request = vec![
            ("response_format", Value::str(response_format)),
            ("queries", Value::Array(self.queries)),
            ("formulas", Value::Array(formulas)),
        ];
        if self.kind == "timeseries" {
            request.push(("display_type", Value::str(self.display)));
        }
        if self.kind == "query_value"
            && let Some((value, _)) = self.threshold
        {
            request.push((
                "conditional_formats",
                Value::arr([
                    Value::obj([
                        ("comparator", Value::str(">")),
                        ("value", Value::num(value)),
                        ("palette", Value::str("white_on_red")),
                    ]),
                    Value::obj([
                        ("comparator", Value::str("<=")),
                        ("value", Value::num(value)),
                        ("palette", Value::str("white_on_green")),
                    ]),
                ]),
            ));
        }
        let mut definition = vec![
            ("type", Value::str(self.kind)),
            ("title", Value::str(self.title)),
            ("title_size", Value::str("16")),
            ("title_align", Value::str("left")),
            ("requests", Value::arr([Value::obj(request)])),
        ];
        match self.kind {
            "timeseries" => {
                definition.push(("show_legend", Value::Bool(true)));
                definition.push(("legend_layout", Value::str("auto")));
                if let Some((value, alert)) = self.threshold {
                    definition.push((
                        "markers",
                        Value::arr([Value::obj([
                            ("label", Value::str(format!("{alert} threshold"))),
                            ("value", Value::str(format!("y = {value}"))),
                            ("display_type", Value::str("error dashed")),
                        ])]),
                    ));
                }
            }
            "query_value" => {
                definition.push(("autoscale", Value::Bool(true)));
                definition.push(("precision", Value::int(2)));
            }
            _ => {}
        }
        Value::obj([("definition", Value::obj(definition))])
    }
}

/// A time series widget.
fn ts(title: &str) -> Widget {
    Widget::new("timeseries", title)
}

/// A single-number widget.
fn qv(title: &str) -> Widget {
    Widget::new("query_value", title)
}

/// A ranked list widget.
fn toplist(title: &str) -> Widget {
    Widget::new("toplist", title)
}

/// A list stream widget over logs: `source` is `logs_stream` or `logs_pattern_stream`.
fn log_list(title: &str, source: &str, query: &str, columns: &[&str]) -> Value {
    let columns = columns
        .iter()
        .map(|c| Value::obj([("field", Value::str(*c)), ("width", Value::str("auto"))]))
        .collect::<Vec<_>>();
    Value::obj([(
        "definition",
        Value::obj([
            ("type", Value::str("list_stream")),
            ("title", Value::str(title)),
            ("title_size", Value::str("16")),
            ("title_align", Value::str("left")),
            (
                "requests",
                Value::arr([Value::obj([
                    ("response_format", Value::str("event_list")),
                    (
                        "query",
                        Value::obj([
                            ("data_source", Value::str(source)),
                            ("query_string", Value::str(query)),
                            ("indexes", Value::arr([])),
                        ]),
                    ),
                    ("columns", Value::Array(columns)),
                ])]),
            ),
        ]),
    )])
}

/// A ratio of two count queries as a percentage: `100 * q1 / q2`.
fn percent_of(title: &str, part: String, whole: String, alias: &str) -> Widget {
    ts(title)
        .metric(part)
        .metric(whole)
        .formula(f("100 * q1 / q2", alias))
        .unit("percent")
}

/// A ratio as a percentage, rounded to nine decimals so `0.07` gives `7`, not `7.000000000000001`.
fn pct(ratio: f64) -> f64 {
    (ratio * 100.0 * 1e9).round() / 1e9
}

/// A byte count as a float.
#[allow(clippy::cast_precision_loss)]
fn bytes_f64(bytes: u64) -> f64 {
    bytes as f64
}

/// The seven Datadog dashboards, for these alert thresholds.
pub fn dashboards(t: &Thresholds) -> Vec<Dashboard> {
    vec![
        basic(t),
        latency(t),
        database(t),
        websocket(),
        infrastructure(t),
        apm(t),
        log_analytics(),
    ]
}

/// Basic metrics.
#[allow(clippy::too_many_lines)] // one declarative list
fn basic(t: &Thresholds) -> Dashboard {
    let requests = |filters: &[&str]| mq("sum", &HTTP_REQUEST_COUNT, filters, &[], ".as_count()");
    let d = &HTTP_REQUEST_DURATION;
    Dashboard {
        file: "basic-metrics.json",
        title: "Vigil / Basic metrics",
        description: "The overview of one service: traffic, errors, latency, connections, database and memory.",
        variables: METRIC_VARIABLES,
        widgets: vec![
            qv("Request rate")
                .metric(mq("sum", &HTTP_REQUEST_COUNT, &[], &[], ".as_rate()"))
                .build(),
            qv("5xx error ratio")
                .metric(requests(&["status:5*"]))
                .metric(requests(&[]))
                .formula(f("100 * q1 / q2", "5xx %"))
                .unit("percent")
                .threshold(pct(t.error_rate), alert::HIGH_ERROR_RATE)
                .build(),
            qv("p95 latency")
                .metric(mq("p95", d, &[], &[], ""))
                .unit("millisecond")
                .threshold(t.latency_ms, alert::HIGH_LATENCY)
                .build(),
            qv("WebSocket connections")
                .metric(mq("sum", &WEBSOCKET_CONNECTIONS, &[], &[], ""))
                .build(),
            qv("Resident memory (largest host)")
                .metric(mq("max", &PROCESS_MEMORY_RESIDENT, &[], &[], ""))
                .unit("byte")
                .threshold(bytes_f64(t.memory_bytes), alert::HIGH_MEMORY_USAGE)
                .build(),
            qv("Uptime")
                .metric(mq("min", &PROCESS_UPTIME, &[], &[], ""))
                .unit("second")
                .build(),
            ts("Requests by status")
                .metric(mq("sum", &HTTP_REQUEST_COUNT, &[], &["status"], ".as_rate()"))
                .bars()
                .build(),
            ts("Latency p50 / p95 / p99")
                .metric(mq("p50", d, &[], &[], ""))
                .metric(mq("p95", d, &[], &[], ""))
                .metric(mq("p99", d, &[], &[], ""))
                .formula(f("q1", "p50"))
                .formula(f("q2", "p95"))
                .formula(f("q3", "p99"))
                .unit("millisecond")
                .threshold(t.latency_ms, alert::HIGH_LATENCY)
                .build(),
            ts("Database queries by operation")
                .metric(mq("sum", &DATABASE_QUERY_COUNT, &[], &["operation"], ".as_rate()"))
                .build(),
            ts("WebSocket messages by direction")
                .metric(mq("sum", &WEBSOCKET_MESSAGES, &[], &["direction"], ".as_rate()"))
                .build(),
            ts("Process CPU (cores)")
                .metric(mq("avg", &PROCESS_CPU_USAGE, &[], &["host"], ""))
                .build(),
            ts("Telemetry health (should stay at 0)")
                .metric(mq("sum", &VIGIL_LOG_DROPPED, &[], &["backend", "reason"], ".as_rate()"))
                .metric(mq("sum", &VIGIL_METRICS_OVERFLOW, &[], &["metric"], ".as_rate()"))
                .metric(mq("sum", &VIGIL_TRACE_DROPPED, &[], &["reason"], ".as_rate()"))
                .formula(f("q1", "log records dropped"))
                .formula(f("q2", "metric overflow registrations"))
                .formula(f("q3", "trace chunks dropped"))
                .build(),
        ],
    }
}

/// Request latency.
#[allow(clippy::too_many_lines)] // one declarative list
fn latency(t: &Thresholds) -> Dashboard {
    let d = &HTTP_REQUEST_DURATION;
    let count = |filters: &[&str], by: &[&str]| mq("sum", &HTTP_REQUEST_COUNT, filters, by, ".as_count()");
    Dashboard {
        file: "request-latency.json",
        title: "Vigil / Request latency",
        description: "HTTP latency percentiles from the request duration distribution, request rates and errors by route.",
        variables: METRIC_VARIABLES,
        widgets: vec![
            ts("Latency p50 / p95 / p99")
                .metric(mq("p50", d, &[], &[], ""))
                .metric(mq("p95", d, &[], &[], ""))
                .metric(mq("p99", d, &[], &[], ""))
                .formula(f("q1", "p50"))
                .formula(f("q2", "p95"))
                .formula(f("q3", "p99"))
                .unit("millisecond")
                .threshold(t.latency_ms, alert::HIGH_LATENCY)
                .build(),
            ts("p95 latency by route")
                .metric(mq("p95", d, &[], &["route"], ""))
                .unit("millisecond")
                .threshold(t.latency_ms, alert::HIGH_LATENCY)
                .build(),
            ts("p99 latency by route")
                .metric(mq("p99", d, &[], &["route"], ""))
                .unit("millisecond")
                .build(),
            ts("Mean latency by route")
                .metric(mq("avg", d, &[], &["route"], ""))
                .unit("millisecond")
                .build(),
            ts("Request rate by route")
                .metric(mq("sum", &HTTP_REQUEST_COUNT, &[], &["route"], ".as_rate()"))
                .build(),
            ts("Errors by route")
                .metric(mq(
                    "sum",
                    &HTTP_REQUEST_COUNT,
                    &["status:5*"],
                    &["route", "status"],
                    ".as_rate()",
                ))
                .metric(mq(
                    "sum",
                    &HTTP_REQUEST_COUNT,
                    &["status:4*"],
                    &["route", "status"],
                    ".as_rate()",
                ))
                .formula(f("q1", "5xx"))
                .formula(f("q2", "4xx"))
                .bars()
                .build(),
            percent_of(
                "5xx ratio by route",
                count(&["status:5*"], &["route"]),
                count(&[], &["route"]),
                "5xx %",
            )
            .threshold(pct(t.error_rate), alert::HIGH_ERROR_RATE)
            .build(),
            toplist("Routes by 5xx responses")
                .metric(mq(
                    "sum",
                    &HTTP_REQUEST_COUNT,
                    &["status:5*"],
                    &["route"],
                    ".as_count()",
                ))
                .build(),
            ts("Requests by method and status")
                .metric(mq("sum", &HTTP_REQUEST_COUNT, &[], &["method", "status"], ".as_rate()"))
                .build(),
            ts("In-flight requests")
                .metric(mq("sum", &HTTP_REQUESTS_IN_FLIGHT, &[], &["host"], ""))
                .build(),
            ts("p95 response size by route")
                .metric(mq("p95", &HTTP_RESPONSE_SIZE, &[], &["route"], ""))
                .unit("byte")
                .build(),
        ],
    }
}

/// Database performance.
#[allow(clippy::too_many_lines)] // one declarative list
fn database(t: &Thresholds) -> Dashboard {
    let d = &DATABASE_QUERY_DURATION;
    let by_op = ["source", "operation"];
    let gauge = |def: &MetricDef| mq("max", def, &[], &["pool"], "");
    Dashboard {
        file: "database.json",
        title: "Vigil / Database performance",
        description: "Query latency by source (table) and operation, slow queries, and the connection pool.",
        variables: METRIC_VARIABLES,
        widgets: vec![
            ts("p95 query time by source and operation")
                .metric(mq("p95", d, &[], &by_op, ""))
                .unit("millisecond")
                .threshold(t.slow_query_ms, alert::SLOW_DATABASE_QUERIES)
                .build(),
            ts("Query time p50 / p95 / p99")
                .metric(mq("p50", d, &[], &[], ""))
                .metric(mq("p95", d, &[], &[], ""))
                .metric(mq("p99", d, &[], &[], ""))
                .formula(f("q1", "p50"))
                .formula(f("q2", "p95"))
                .formula(f("q3", "p99"))
                .unit("millisecond")
                .threshold(t.slow_query_ms, alert::SLOW_DATABASE_QUERIES)
                .build(),
            ts("Queries by source and operation")
                .metric(mq("sum", &DATABASE_QUERY_COUNT, &[], &by_op, ".as_rate()"))
                .build(),
            ts("Slow queries by source and operation")
                .metric(mq("sum", &DATABASE_QUERY_SLOW, &[], &by_op, ".as_rate()"))
                .bars()
                .build(),
            ts("Mean query time by operation")
                .metric(mq("avg", d, &[], &["operation"], ""))
                .unit("millisecond")
                .build(),
            percent_of(
                "Pool saturation",
                mq("max", &DATABASE_POOL_IN_USE, &[], &["host", "pool"], ""),
                mq("max", &DATABASE_POOL_MAX, &[], &["host", "pool"], ""),
                "in use %",
            )
            .threshold(pct(t.pool_saturation), alert::POOL_SATURATION)
            .build(),
            ts("Pool connections")
                .metric(gauge(&DATABASE_POOL_SIZE))
                .metric(gauge(&DATABASE_POOL_IDLE))
                .metric(gauge(&DATABASE_POOL_IN_USE))
                .metric(gauge(&DATABASE_POOL_MAX))
                .formula(f("q1", "open"))
                .formula(f("q2", "idle"))
                .formula(f("q3", "in use"))
                .formula(f("q4", "max"))
                .build(),
            ts("Pool acquire wait p95")
                .metric(mq("p95", &DATABASE_POOL_ACQUIRE_DURATION, &[], &["pool"], ""))
                .unit("millisecond")
                .build(),
            ts("Pool acquire timeouts")
                .metric(mq("sum", &DATABASE_POOL_ACQUIRE_TIMEOUTS, &[], &["pool"], ".as_rate()"))
                .bars()
                .build(),
        ],
    }
}

/// WebSocket connections.
fn websocket() -> Dashboard {
    let d = &WEBSOCKET_CONNECTION_DURATION;
    Dashboard {
        file: "websocket.json",
        title: "Vigil / WebSocket connections",
        description: "Open connections by channel, message rates by event and direction, connection durations.",
        variables: METRIC_VARIABLES,
        widgets: vec![
            qv("Open connections")
                .metric(mq("sum", &WEBSOCKET_CONNECTIONS, &[], &[], ""))
                .build(),
            qv("Messages per second")
                .metric(mq("sum", &WEBSOCKET_MESSAGES, &[], &[], ".as_rate()"))
                .build(),
            ts("Connections by channel")
                .metric(mq("sum", &WEBSOCKET_CONNECTIONS, &[], &["channel"], ""))
                .build(),
            ts("Messages by event and direction")
                .metric(mq(
                    "sum",
                    &WEBSOCKET_MESSAGES,
                    &[],
                    &["channel", "event", "direction"],
                    ".as_rate()",
                ))
                .build(),
            ts("Messages in and out")
                .metric(mq("sum", &WEBSOCKET_MESSAGES, &[], &["direction"], ".as_rate()"))
                .bars()
                .build(),
            ts("Connection duration p50 / p95")
                .metric(mq("p50", d, &[], &["channel"], ""))
                .metric(mq("p95", d, &[], &["channel"], ""))
                .formula(f("q1", "p50"))
                .formula(f("q2", "p95"))
                .unit("millisecond")
                .build(),
            ts("Connections closed by channel")
                .metric(mq("count", d, &[], &["channel"], ".as_rate()"))
                .build(),
        ],
    }
}

/// Infrastructure.
#[allow(clippy::too_many_lines)] // one declarative list
fn infrastructure(t: &Thresholds) -> Dashboard {
    let by_host = |agg: &str, def: &MetricDef| mq(agg, def, &[], &["host"], "");
    Dashboard {
        file: "infrastructure.json",
        title: "Vigil / Infrastructure",
        description: "Process CPU and memory, threads, file descriptors, host memory and load, the Tokio runtime, \
                      and the health of Vigil's own telemetry delivery.",
        variables: METRIC_VARIABLES,
        widgets: vec![
            qv("Uptime")
                .metric(mq("min", &PROCESS_UPTIME, &[], &[], ""))
                .unit("second")
                .build(),
            qv("Threads").metric(mq("sum", &PROCESS_THREADS, &[], &[], "")).build(),
            qv("Open file descriptors")
                .metric(mq("sum", &PROCESS_OPEN_FDS, &[], &[], ""))
                .build(),
            ts("Process CPU (cores)")
                .metric(by_host("avg", &PROCESS_CPU_USAGE))
                .build(),
            ts("Host CPU")
                .metric(by_host("avg", &SYSTEM_CPU_USAGE))
                .formula(f("100 * q1", "CPU %"))
                .unit("percent")
                .build(),
            ts("Resident memory")
                .metric(by_host("max", &PROCESS_MEMORY_RESIDENT))
                .unit("byte")
                .threshold(bytes_f64(t.memory_bytes), alert::HIGH_MEMORY_USAGE)
                .build(),
            ts("Virtual memory")
                .metric(by_host("max", &PROCESS_MEMORY_VIRTUAL))
                .unit("byte")
                .build(),
            ts("Host memory")
                .metric(by_host("max", &SYSTEM_MEMORY_USED))
                .metric(by_host("max", &SYSTEM_MEMORY_TOTAL))
                .formula(f("q1", "used"))
                .formula(f("q2", "total"))
                .unit("byte")
                .build(),
            ts("Host load average")
                .metric(mq("max", &SYSTEM_LOAD, &[], &["host", "period"], ""))
                .build(),
            ts("Threads and file descriptors")
                .metric(by_host("max", &PROCESS_THREADS))
                .metric(by_host("max", &PROCESS_OPEN_FDS))
                .formula(f("q1", "threads"))
                .formula(f("q2", "fds"))
                .build(),
            ts("Process start time")
                .metric(by_host("max", &PROCESS_START_TIME))
                .unit("second")
                .build(),
            ts("Tokio workers and tasks")
                .metric(by_host("max", &TOKIO_WORKERS))
                .metric(by_host("max", &TOKIO_TASKS_ALIVE))
                .metric(by_host("max", &TOKIO_QUEUE_DEPTH))
                .formula(f("q1", "workers"))
                .formula(f("q2", "tasks alive"))
                .formula(f("q3", "global queue"))
                .build(),
            ts("Tokio workers busy")
                .metric(by_host("avg", &TOKIO_WORKERS_BUSY))
                .formula(f("100 * q1", "busy %"))
                .unit("percent")
                .build(),
            ts("Tokio worker parks")
                .metric(mq("sum", &TOKIO_WORKER_PARKS, &[], &["host"], ".as_rate()"))
                .build(),
            ts("Log records dropped")
                .metric(mq("sum", &VIGIL_LOG_DROPPED, &[], &["backend", "reason"], ".as_rate()"))
                .bars()
                .build(),
            ts("Datadog log requests by outcome")
                .metric(mq("sum", &VIGIL_DATADOG_LOGS_REQUESTS, &[], &["outcome"], ".as_rate()"))
                .bars()
                .build(),
            ts("Datadog log entries sent and truncated")
                .metric(mq("sum", &VIGIL_DATADOG_LOGS_SENT, &[], &[], ".as_rate()"))
                .metric(mq("sum", &VIGIL_DATADOG_LOGS_TRUNCATED, &[], &[], ".as_rate()"))
                .formula(f("q1", "sent"))
                .formula(f("q2", "truncated"))
                .build(),
            ts("Datadog log payload size")
                .metric(mq("p50", &VIGIL_DATADOG_LOGS_PAYLOAD_SIZE, &[], &[], ""))
                .metric(mq("p95", &VIGIL_DATADOG_LOGS_PAYLOAD_SIZE, &[], &[], ""))
                .formula(f("q1", "p50"))
                .formula(f("q2", "p95"))
                .unit("byte")
                .build(),
            ts("Datadog traces sent and dropped")
                .metric(mq("sum", &VIGIL_TRACE_SENT, &[], &[], ".as_rate()"))
                .metric(mq("sum", &VIGIL_TRACE_DROPPED, &[], &["reason"], ".as_rate()"))
                .metric(mq("sum", &VIGIL_TRACE_SPANS_DROPPED, &[], &["reason"], ".as_rate()"))
                .formula(f("q1", "chunks sent"))
                .formula(f("q2", "chunks dropped"))
                .formula(f("q3", "spans dropped"))
                .build(),
            ts("Datadog trace send errors")
                .metric(mq("sum", &VIGIL_TRACE_SEND_ERRORS, &[], &["reason"], ".as_rate()"))
                .bars()
                .build(),
        ],
    }
}

/// APM: Datadog's trace metrics for the service's `http.request` spans.
#[allow(clippy::too_many_lines)] // one declarative list
fn apm(t: &Thresholds) -> Dashboard {
    let hits =
        |by: &[&str], modifier: &str| query("sum", &format!("{REQUEST_SPAN}.hits"), APM_SCOPE, &[], by, modifier);
    let errors =
        |by: &[&str], modifier: &str| query("sum", &format!("{REQUEST_SPAN}.errors"), APM_SCOPE, &[], by, modifier);
    let latency = |agg: &str, by: &[&str]| query(agg, REQUEST_SPAN, APM_SCOPE, &[], by, "");
    let latency_s = t.latency_ms / 1000.0;
    Dashboard {
        file: "apm.json",
        title: "Vigil / APM",
        description: "Requests, errors and latency of the service's http.request spans, from Datadog's trace metrics \
                      (vigil-trace-datadog sends the spans; database spans show in the traces).",
        variables: SERVICE_VARIABLES,
        widgets: vec![
            qv("Requests per second").metric(hits(&[], ".as_rate()")).build(),
            qv("Error rate")
                .metric(errors(&[], ".as_count()"))
                .metric(hits(&[], ".as_count()"))
                .formula(f("100 * q1 / q2", "errors %"))
                .unit("percent")
                .threshold(pct(t.error_rate), alert::HIGH_ERROR_RATE)
                .build(),
            qv("p95 latency")
                .metric(latency("p95", &[]))
                .unit("second")
                .threshold(latency_s, alert::HIGH_LATENCY)
                .build(),
            ts("Requests by resource")
                .metric(hits(&["resource_name"], ".as_rate()"))
                .build(),
            ts("Errors by resource")
                .metric(errors(&["resource_name"], ".as_rate()"))
                .bars()
                .build(),
            ts("Error rate")
                .metric(errors(&[], ".as_count()"))
                .metric(hits(&[], ".as_count()"))
                .formula(f("100 * q1 / q2", "errors %"))
                .unit("percent")
                .threshold(pct(t.error_rate), alert::HIGH_ERROR_RATE)
                .build(),
            ts("Latency p50 / p95 / p99")
                .metric(latency("p50", &[]))
                .metric(latency("p95", &[]))
                .metric(latency("p99", &[]))
                .formula(f("q1", "p50"))
                .formula(f("q2", "p95"))
                .formula(f("q3", "p99"))
                .unit("second")
                .threshold(latency_s, alert::HIGH_LATENCY)
                .build(),
            ts("p95 latency by resource")
                .metric(latency("p95", &["resource_name"]))
                .unit("second")
                .threshold(latency_s, alert::HIGH_LATENCY)
                .build(),
            toplist("Time spent by resource")
                .metric(query(
                    "sum",
                    &format!("{REQUEST_SPAN}.duration"),
                    APM_SCOPE,
                    &[],
                    &["resource_name"],
                    "",
                ))
                .unit("second")
                .build(),
            ts("Requests by status class")
                .metric(query(
                    "sum",
                    &format!("{REQUEST_SPAN}.hits.by_http_status"),
                    APM_SCOPE,
                    &[],
                    &["http.status_class"],
                    ".as_rate()",
                ))
                .bars()
                .build(),
        ],
    }
}

/// Log analytics: volume by status and service, the top error messages.
fn log_analytics() -> Dashboard {
    let all = APM_SCOPE.replace(',', " ");
    let errors = format!("status:error {all}");
    Dashboard {
        file: "log-analytics.json",
        title: "Vigil / Log analytics",
        description: "Log volume by status and service, and the most frequent error messages, from the logs \
                      vigil-log-datadog sends.",
        variables: SERVICE_VARIABLES,
        widgets: vec![
            qv("Error logs").logs(&errors, &[]).build(),
            qv("Warning logs").logs(&format!("status:warn {all}"), &[]).build(),
            ts("Log volume by status").logs(&all, &["status"]).bars().build(),
            ts("Log volume by service").logs(&all, &["service"]).bars().build(),
            toplist("Error logs by service").logs(&errors, &["service"]).build(),
            log_list(
                "Top error messages",
                "logs_pattern_stream",
                &errors,
                &["status_line", "volume", "service", "message"],
            ),
            log_list(
                "Latest errors",
                "logs_stream",
                &errors,
                &["status_line", "timestamp", "host", "service", "content"],
            ),
        ],
    }
}

/// The dashboard's JSON, as `POST /api/v1/dashboard` takes it.
pub fn to_json(dashboard: &Dashboard) -> Value {
    let variables = dashboard
        .variables
        .iter()
        .map(|name| {
            Value::obj([
                ("name", Value::str(*name)),
                ("prefix", Value::str(*name)),
                ("available_values", Value::arr([])),
                ("default", Value::str("*")),
            ])
        })
        .collect::<Vec<_>>();
    Value::obj([
        ("title", Value::str(dashboard.title)),
        (
            "description",
            Value::str(format!(
                "{} Generated by `cargo xtask dashboards` from Vigil's metric catalogue; do not edit by hand.",
                dashboard.description
            )),
        ),
        ("layout_type", Value::str("ordered")),
        ("reflow_type", Value::str("auto")),
        ("notify_list", Value::arr([])),
        ("template_variables", Value::Array(variables)),
        ("widgets", Value::Array(dashboard.widgets.clone())),
    ])
}

/// Every metrics query of a dashboard's JSON (`widgets[].definition.requests[].queries[]` with
/// `data_source: metrics`), with its widget's title.
pub fn metric_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for widget in dashboard.get("widgets").and_then(Value::as_array).unwrap_or_default() {
        let definition = widget.get("definition");
        let title = definition
            .and_then(|d| d.get("title"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let requests = definition
            .and_then(|d| d.get("requests"))
            .and_then(Value::as_array)
            .unwrap_or_default();
        for request in requests {
            for query in request.get("queries").and_then(Value::as_array).unwrap_or_default() {
                if query.get("data_source").and_then(Value::as_str) == Some("metrics")
                    && let Some(text) = query.get("query").and_then(Value::as_str)
                {
                    out.push((title.to_owned(), text.to_owned()));
                }
            }
        }
    }
    out
}

/// One metric a Datadog query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRef {
    /// The metric name (`http.request.duration`).
    pub name: String,
    /// Tag filters of the scope, without template variables and `*` (`("status", "5*")`).
    pub filters: Vec<(String, String)>,
    /// The tags it is grouped by.
    pub by: Vec<String>,
}

/// The metrics a Datadog metric or monitor query reads: every `agg:name{scope}[ by {tags}]`
/// in it (`sum(last_5m):sum:a{status:5*} by {service}.as_count() / sum:a{*} by {service}` has two).
pub fn metric_refs(query: &str) -> Vec<MetricRef> {
    let bytes = query.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    let mut refs = Vec::new();
    let mut i = 0;
    while let Some(offset) = query[i..].find('{') {
        let open = i + offset;
        let mut start = open;
        while start > 0 && is_name(bytes[start - 1]) {
            start -= 1;
        }
        let Some(close) = query[open..].find('}').map(|c| open + c) else {
            break;
        };
        i = close + 1;
        if start == open || start == 0 || bytes[start - 1] != b':' {
            continue;
        }
        let filters = query[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty() && *f != "*" && !f.starts_with('$'))
            .map(|f| {
                let (k, v) = f.split_once(':').unwrap_or((f, ""));
                (k.trim_start_matches('!').to_owned(), v.to_owned())
            })
            .collect();
        let mut by = Vec::new();
        if let Some(rest) = query[close + 1..].strip_prefix(" by {")
            && let Some(end) = rest.find('}')
        {
            by = rest[..end].split(',').map(|t| t.trim().to_owned()).collect();
            i = close + 1 + " by {".len() + end + 1;
        }
        refs.push(MetricRef {
            name: query[start..open].to_owned(),
            filters,
            by,
        });
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, filters: &[(&str, &str)], by: &[&str]) -> MetricRef {
        MetricRef {
            name: name.to_owned(),
            filters: filters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            by: by.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn metric_references() {
        assert_eq!(
            metric_refs("p95:http.request.duration{$service,$env,$host} by {route}"),
            [r("http.request.duration", &[], &["route"])]
        );
        assert_eq!(
            metric_refs(
                "sum(last_5m):sum:http.request.count{status:5*} by {service,env}.as_count() / \
                 sum:http.request.count{*} by {service,env}.as_count() > 0.05"
            ),
            [
                r("http.request.count", &[("status", "5*")], &["service", "env"]),
                r("http.request.count", &[], &["service", "env"]),
            ]
        );
        assert_eq!(
            metric_refs("max:a.b{$service,!status:2*}.as_rate()"),
            [r("a.b", &[("status", "2*")], &[])]
        );
        assert!(metric_refs("no metrics here {x}").is_empty());
    }

    #[test]
    fn queries_of_a_dashboard() {
        let dashboard = to_json(&log_analytics());
        assert!(
            metric_queries(&dashboard).is_empty(),
            "log widgets are not metric queries"
        );
        let apm = to_json(&apm(&Thresholds::default()));
        let queries = metric_queries(&apm);
        assert!(
            queries
                .iter()
                .any(|(title, q)| title == "Error rate" && q.starts_with("sum:trace.http.request.errors"))
        );
    }
}
