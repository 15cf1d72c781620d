//! The five Grafana dashboards, built from the catalogue, and their JSON.
//!
//! Each dashboard has a data source variable and `service`, `environment` and `instance`
//! variables (every query filters on them), units on every panel, and the alert threshold drawn
//! on the panels that show an alerted value.

use vigil_core::catalogue::{
    self, DATABASE_POOL_ACQUIRE_DURATION, DATABASE_POOL_ACQUIRE_TIMEOUTS, DATABASE_POOL_IDLE, DATABASE_POOL_IN_USE,
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

use super::promql::{self, Part, RATE_INTERVAL, Scope, rate, sum_by};
use super::thresholds::Thresholds;
use crate::json::Value;

/// Panels per grid row: Grafana's grid is 24 columns wide.
const GRID_WIDTH: u32 = 24;

/// One Grafana dashboard.
pub struct Dashboard {
    /// Stable uid: publishing overwrites the dashboard with this uid.
    pub uid: &'static str,
    /// File name under `dashboards/grafana/`.
    pub file: &'static str,
    /// Title.
    pub title: &'static str,
    /// What it shows.
    pub description: &'static str,
    /// The metric whose labels fill the `service`, `environment` and `instance` variables.
    pub anchor: &'static MetricDef,
    /// The panels, laid out left to right, top to bottom.
    pub panels: Vec<Panel>,
}

/// How a panel draws its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Lines over time.
    Timeseries,
    /// One big number.
    Stat,
}

/// An alert threshold drawn on a panel (in the panel's unit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// The value.
    pub value: f64,
    /// The alert it belongs to.
    pub alert: &'static str,
}

/// One PromQL query of a panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The expression, with the dashboard variables in it.
    pub expr: String,
    /// Grafana's legend format (`{{route}}`).
    pub legend: String,
}

/// One panel.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Title, unique within the dashboard.
    pub title: String,
    /// What it shows and how to read it.
    pub description: String,
    /// Time series or stat.
    pub kind: Kind,
    /// Grafana unit id (`s`, `bytes`, `percentunit`, `reqps`, ...).
    pub unit: &'static str,
    /// The queries.
    pub targets: Vec<Target>,
    /// The alert threshold, where an alert watches this value.
    pub threshold: Option<Threshold>,
    /// Axis minimum.
    pub min: Option<f64>,
    /// Axis maximum.
    pub max: Option<f64>,
    /// Width in grid columns (of 24).
    pub width: u32,
    /// Height in grid rows.
    pub height: u32,
}

impl Panel {
    /// A time series panel.
    fn timeseries(title: &str, description: &str, unit: &'static str) -> Self {
        Panel {
            title: title.to_owned(),
            description: description.to_owned(),
            kind: Kind::Timeseries,
            unit,
            targets: Vec::new(),
            threshold: None,
            min: None,
            max: None,
            width: 12,
            height: 8,
        }
    }

    /// A stat panel (one number, a sparkline behind it).
    fn stat(title: &str, description: &str, unit: &'static str) -> Self {
        Panel {
            kind: Kind::Stat,
            width: 4,
            height: 4,
            ..Panel::timeseries(title, description, unit)
        }
    }

    /// Adds a query.
    fn target(mut self, expr: impl Into<String>, legend: &str) -> Self {
        self.targets.push(Target {
            expr: expr.into(),
            legend: legend.to_owned(),
        });
        self
    }

    /// Draws an alert threshold.
    fn threshold(mut self, value: f64, alert: &'static str) -> Self {
        self.threshold = Some(Threshold { value, alert });
        self
    }

    /// Sets the axis range.
    fn range(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// Sets the width in grid columns.
    fn width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }
}

/// A dashboard selector for `part` of `def`, with extra matchers.
fn sel(def: &MetricDef, part: Part, extra: &[&str]) -> String {
    promql::select(def, part, Scope::Dashboard, extra)
}

/// `rate(<selector>[$__rate_interval])`.
fn rate_of(def: &MetricDef, part: Part, extra: &[&str]) -> String {
    rate(&sel(def, part, extra), RATE_INTERVAL)
}

/// The `q` quantile of a histogram by `labels`.
fn quantile(q: f64, def: &MetricDef, labels: &[&str]) -> String {
    promql::quantile(q, def, labels, Scope::Dashboard, &[], RATE_INTERVAL)
}

/// Mean of a histogram by `labels`: `sum(rate(_sum)) / sum(rate(_count))`.
fn mean(def: &MetricDef, labels: &[&str]) -> String {
    format!(
        "{} / {}",
        sum_by(labels, &rate_of(def, Part::Sum, &[])),
        sum_by(labels, &rate_of(def, Part::Count, &[]))
    )
}

/// The share of requests answered 5xx by `labels`, 0 (not empty) when there were none.
fn error_ratio(labels: &[&str]) -> String {
    let count = &catalogue::HTTP_REQUEST_COUNT;
    let all = sum_by(labels, &rate_of(count, Part::Value, &[]));
    let errors = sum_by(labels, &rate_of(count, Part::Value, &[SERVER_ERROR]));
    format!("({errors} or 0 * {all}) / {all}")
}

/// The matcher of 5xx responses.
pub const SERVER_ERROR: &str = r#"status=~"5..""#;

/// Alert names, shared with the rules.
pub mod alert {
    /// High share of 5xx responses.
    pub const HIGH_ERROR_RATE: &str = "VigilHighErrorRate";
    /// High p95 request latency.
    pub const HIGH_LATENCY: &str = "VigilHighLatency";
    /// High p95 database query duration.
    pub const SLOW_DATABASE_QUERIES: &str = "VigilSlowDatabaseQueries";
    /// High resident memory.
    pub const HIGH_MEMORY_USAGE: &str = "VigilHighMemoryUsage";
    /// Database pool connections nearly all in use.
    pub const POOL_SATURATION: &str = "VigilConnectionPoolSaturation";
}

/// The five dashboards, for these alert thresholds.
pub fn dashboards(t: &Thresholds) -> Vec<Dashboard> {
    vec![basic(t), latency(t), database(t), websocket(), infrastructure(t)]
}

/// Basic metrics: the one-screen overview.
#[allow(clippy::too_many_lines)] // one declarative list
fn basic(t: &Thresholds) -> Dashboard {
    let latency = t.latency_ms / 1000.0;
    let dropped = sum_by(&[], &rate_of(&VIGIL_LOG_DROPPED, Part::Value, &[]));
    let overflow = sum_by(&[], &rate_of(&VIGIL_METRICS_OVERFLOW, Part::Value, &[]));
    let traces_dropped = sum_by(&[], &rate_of(&VIGIL_TRACE_DROPPED, Part::Value, &[]));
    Dashboard {
        uid: "vigil-basic-metrics",
        file: "basic-metrics.json",
        title: "Vigil / Basic metrics",
        description: "The overview of one service: traffic, errors, latency, connections, database and memory.",
        anchor: &HTTP_REQUEST_COUNT,
        panels: vec![
            Panel::stat("Request rate", "HTTP requests handled per second.", "reqps").target(
                sum_by(&[], &rate_of(&HTTP_REQUEST_COUNT, Part::Value, &[])),
                "requests/s",
            ),
            Panel::stat("5xx error ratio", "Share of HTTP requests answered 5xx.", "percentunit")
                .target(error_ratio(&[]), "5xx ratio")
                .threshold(t.error_rate, alert::HIGH_ERROR_RATE),
            Panel::stat("p95 latency", "95th percentile of HTTP request duration.", "s")
                .target(quantile(0.95, &HTTP_REQUEST_DURATION, &[]), "p95")
                .threshold(latency, alert::HIGH_LATENCY),
            Panel::stat("WebSocket connections", "Open WebSocket connections.", "short").target(
                sum_by(&[], &sel(&WEBSOCKET_CONNECTIONS, Part::Value, &[])),
                "connections",
            ),
            Panel::stat(
                "Resident memory (largest instance)",
                "Resident memory (RSS) of the largest selected instance.",
                "bytes",
            )
            .target(
                promql::aggregate("max", &[], &sel(&PROCESS_MEMORY_RESIDENT, Part::Value, &[])),
                "RSS",
            )
            .threshold(bytes_f64(t.memory_bytes), alert::HIGH_MEMORY_USAGE),
            Panel::stat(
                "Uptime",
                "Time since the most recent start of a selected instance.",
                "s",
            )
            .target(
                promql::aggregate("min", &[], &sel(&PROCESS_UPTIME, Part::Value, &[])),
                "uptime",
            ),
            Panel::timeseries(
                "Requests by status",
                "HTTP requests per second by response status.",
                "reqps",
            )
            .target(
                sum_by(&["status"], &rate_of(&HTTP_REQUEST_COUNT, Part::Value, &[])),
                "{{status}}",
            ),
            Panel::timeseries(
                "Latency p50 / p95 / p99",
                "HTTP request duration percentiles over all routes.",
                "s",
            )
            .target(quantile(0.5, &HTTP_REQUEST_DURATION, &[]), "p50")
            .target(quantile(0.95, &HTTP_REQUEST_DURATION, &[]), "p95")
            .target(quantile(0.99, &HTTP_REQUEST_DURATION, &[]), "p99")
            .threshold(latency, alert::HIGH_LATENCY),
            Panel::timeseries(
                "Database queries by operation",
                "Database queries per second by operation.",
                "ops",
            )
            .target(
                sum_by(&["operation"], &rate_of(&DATABASE_QUERY_COUNT, Part::Value, &[])),
                "{{operation}}",
            ),
            Panel::timeseries(
                "WebSocket messages by direction",
                "WebSocket messages per second, in and out.",
                "mps",
            )
            .target(
                sum_by(&["direction"], &rate_of(&WEBSOCKET_MESSAGES, Part::Value, &[])),
                "{{direction}}",
            ),
            Panel::timeseries(
                "Process CPU",
                "CPU used by each instance, in cores (1 = one core busy).",
                "short",
            )
            .target(sel(&PROCESS_CPU_USAGE, Part::Value, &[]), "{{instance}}")
            .range(Some(0.0), None),
            Panel::timeseries(
                "Telemetry health",
                "Log records Vigil dropped (queue full or write errors), metric registrations folded into an \
                 overflow series (cardinality limit) and Datadog trace chunks dropped, per second. All should \
                 stay at 0; Vigil / Infrastructure has the details.",
                "cps",
            )
            .target(format!("{dropped} or vector(0)"), "log records dropped")
            .target(format!("{overflow} or vector(0)"), "metric overflow registrations")
            .target(format!("{traces_dropped} or vector(0)"), "trace chunks dropped")
            .range(Some(0.0), None),
        ],
    }
}

/// Request latency: percentiles, rates and errors by route.
#[allow(clippy::too_many_lines)] // one declarative list
fn latency(t: &Thresholds) -> Dashboard {
    let latency = t.latency_ms / 1000.0;
    let d = &HTTP_REQUEST_DURATION;
    Dashboard {
        uid: "vigil-request-latency",
        file: "request-latency.json",
        title: "Vigil / Request latency",
        description: "HTTP latency percentiles from the request duration histogram, request rates and errors by route.",
        anchor: &HTTP_REQUEST_COUNT,
        panels: vec![
            Panel::timeseries(
                "Latency p50 / p95 / p99",
                "HTTP request duration percentiles over all routes.",
                "s",
            )
            .target(quantile(0.5, d, &[]), "p50")
            .target(quantile(0.95, d, &[]), "p95")
            .target(quantile(0.99, d, &[]), "p99")
            .threshold(latency, alert::HIGH_LATENCY),
            Panel::timeseries(
                "p95 latency by route",
                "95th percentile of request duration per route template.",
                "s",
            )
            .target(quantile(0.95, d, &["route"]), "{{route}}")
            .threshold(latency, alert::HIGH_LATENCY),
            Panel::timeseries(
                "p99 latency by route",
                "99th percentile of request duration per route template.",
                "s",
            )
            .target(quantile(0.99, d, &["route"]), "{{route}}"),
            Panel::timeseries(
                "Mean latency by route",
                "Mean request duration per route template.",
                "s",
            )
            .target(mean(d, &["route"]), "{{route}}"),
            Panel::timeseries(
                "Request rate by route",
                "Requests per second per route template.",
                "reqps",
            )
            .target(
                sum_by(&["route"], &rate_of(&HTTP_REQUEST_COUNT, Part::Value, &[])),
                "{{route}}",
            ),
            Panel::timeseries(
                "Errors by route",
                "Requests per second answered 4xx or 5xx, by route and status.",
                "reqps",
            )
            .target(
                sum_by(
                    &["route", "status"],
                    &rate_of(&HTTP_REQUEST_COUNT, Part::Value, &[r#"status=~"[45]..""#]),
                ),
                "{{route}} {{status}}",
            ),
            Panel::timeseries(
                "5xx ratio by route",
                "Share of each route's requests answered 5xx.",
                "percentunit",
            )
            .target(error_ratio(&["route"]), "{{route}}")
            .threshold(t.error_rate, alert::HIGH_ERROR_RATE)
            .range(Some(0.0), Some(1.0)),
            Panel::timeseries("5xx ratio", "Share of all requests answered 5xx.", "percentunit")
                .target(error_ratio(&[]), "5xx ratio")
                .threshold(t.error_rate, alert::HIGH_ERROR_RATE)
                .range(Some(0.0), Some(1.0)),
            Panel::timeseries(
                "Requests by method and status",
                "Requests per second by HTTP method and status.",
                "reqps",
            )
            .target(
                sum_by(&["method", "status"], &rate_of(&HTTP_REQUEST_COUNT, Part::Value, &[])),
                "{{method}} {{status}}",
            ),
            Panel::timeseries(
                "In-flight requests",
                "Requests being handled (called, response body not yet finished).",
                "short",
            )
            .target(
                sum_by(&["instance"], &sel(&HTTP_REQUESTS_IN_FLIGHT, Part::Value, &[])),
                "{{instance}}",
            ),
            Panel::timeseries(
                "p95 response size by route",
                "95th percentile of response body size per route.",
                "bytes",
            )
            .target(quantile(0.95, &HTTP_RESPONSE_SIZE, &["route"]), "{{route}}"),
            Panel::timeseries(
                "Response bytes by route",
                "Response body bytes sent per second per route.",
                "Bps",
            )
            .target(
                sum_by(&["route"], &rate_of(&HTTP_RESPONSE_SIZE, Part::Sum, &[])),
                "{{route}}",
            ),
        ],
    }
}

/// Database performance: query latency by source and operation, slow queries, the pool.
#[allow(clippy::too_many_lines)] // one declarative list
fn database(t: &Thresholds) -> Dashboard {
    let slow = t.slow_query_ms / 1000.0;
    let d = &DATABASE_QUERY_DURATION;
    let by_op = ["source", "operation"];
    let queries = sum_by(&by_op, &rate_of(&DATABASE_QUERY_COUNT, Part::Value, &[]));
    let slow_queries = sum_by(&by_op, &rate_of(&DATABASE_QUERY_SLOW, Part::Value, &[]));
    let pool_max = promql::aggregate("max", &["pool"], &sel(&DATABASE_POOL_MAX, Part::Value, &[]));
    let timeouts = sum_by(&["pool"], &rate_of(&DATABASE_POOL_ACQUIRE_TIMEOUTS, Part::Value, &[]));
    let by_pool = ["instance", "pool"];
    Dashboard {
        uid: "vigil-database",
        file: "database.json",
        title: "Vigil / Database performance",
        description: "Query latency by source (table) and operation, slow queries, and the connection pool.",
        anchor: &DATABASE_QUERY_COUNT,
        panels: vec![
            Panel::timeseries(
                "p95 query time by source and operation",
                "95th percentile of query duration per table and operation.",
                "s",
            )
            .target(quantile(0.95, d, &by_op), "{{source}} {{operation}}")
            .threshold(slow, alert::SLOW_DATABASE_QUERIES),
            Panel::timeseries(
                "Query time p50 / p95 / p99",
                "Query duration percentiles over all queries.",
                "s",
            )
            .target(quantile(0.5, d, &[]), "p50")
            .target(quantile(0.95, d, &[]), "p95")
            .target(quantile(0.99, d, &[]), "p99")
            .threshold(slow, alert::SLOW_DATABASE_QUERIES),
            Panel::timeseries(
                "Queries by source and operation",
                "Queries per second per table and operation.",
                "ops",
            )
            .target(queries.clone(), "{{source}} {{operation}}"),
            Panel::timeseries(
                "Slow queries by source and operation",
                "Queries per second slower than the slow-query threshold (DB_SLOW_QUERY_MS); each is also \
                 logged, normalised, at warn level.",
                "ops",
            )
            .target(format!("{slow_queries} or 0 * {queries}"), "{{source}} {{operation}}")
            .range(Some(0.0), None),
            Panel::timeseries(
                "Mean query time by operation",
                "Mean query duration per operation.",
                "s",
            )
            .target(mean(d, &["operation"]), "{{operation}}"),
            Panel::timeseries(
                "Pool saturation",
                "Connections in use over the pool's maximum, per instance and pool.",
                "percentunit",
            )
            .target(
                format!(
                    "{} / {}",
                    promql::aggregate("max", &by_pool, &sel(&DATABASE_POOL_IN_USE, Part::Value, &[])),
                    promql::aggregate("max", &by_pool, &sel(&DATABASE_POOL_MAX, Part::Value, &[]))
                ),
                "{{instance}} {{pool}}",
            )
            .threshold(t.pool_saturation, alert::POOL_SATURATION)
            .range(Some(0.0), Some(1.0)),
            Panel::timeseries(
                "Pool connections",
                "Connections open (size), idle, in use, and the pool's maximum.",
                "short",
            )
            .target(
                sum_by(&["pool"], &sel(&DATABASE_POOL_SIZE, Part::Value, &[])),
                "{{pool}} open",
            )
            .target(
                sum_by(&["pool"], &sel(&DATABASE_POOL_IDLE, Part::Value, &[])),
                "{{pool}} idle",
            )
            .target(
                sum_by(&["pool"], &sel(&DATABASE_POOL_IN_USE, Part::Value, &[])),
                "{{pool}} in use",
            )
            .target(
                sum_by(&["pool"], &sel(&DATABASE_POOL_MAX, Part::Value, &[])),
                "{{pool}} max",
            )
            .range(Some(0.0), None),
            Panel::timeseries(
                "Pool acquire wait p95",
                "95th percentile of the time taken to get a connection from the pool.",
                "s",
            )
            .target(quantile(0.95, &DATABASE_POOL_ACQUIRE_DURATION, &["pool"]), "{{pool}}"),
            Panel::timeseries(
                "Pool acquire timeouts",
                "Attempts per second to get a pool connection that timed out; any is a saturated pool.",
                "cps",
            )
            .target(format!("{timeouts} or 0 * {pool_max}"), "{{pool}}")
            .range(Some(0.0), None),
        ],
    }
}

/// WebSocket connections and messages.
fn websocket() -> Dashboard {
    let d = &WEBSOCKET_CONNECTION_DURATION;
    let messages = |labels: &[&str]| sum_by(labels, &rate_of(&WEBSOCKET_MESSAGES, Part::Value, &[]));
    Dashboard {
        uid: "vigil-websocket",
        file: "websocket.json",
        title: "Vigil / WebSocket connections",
        description: "Open connections by channel, message rates by event and direction, connection durations.",
        anchor: &WEBSOCKET_CONNECTIONS,
        panels: vec![
            Panel::stat("Open connections", "WebSocket connections open now.", "short")
                .target(
                    sum_by(&[], &sel(&WEBSOCKET_CONNECTIONS, Part::Value, &[])),
                    "connections",
                )
                .width(6),
            Panel::stat("Messages", "WebSocket messages per second, both directions.", "mps")
                .target(messages(&[]), "messages/s")
                .width(6),
            Panel::stat("Connections closed", "WebSocket connections ending per second.", "cps")
                .target(sum_by(&[], &rate_of(d, Part::Count, &[])), "closed/s")
                .width(6),
            Panel::stat("Mean connection time", "Mean time connections stayed open.", "s")
                .target(mean(d, &[]), "mean")
                .width(6),
            Panel::timeseries(
                "Connections by channel",
                "Open WebSocket connections per channel.",
                "short",
            )
            .target(
                sum_by(&["channel"], &sel(&WEBSOCKET_CONNECTIONS, Part::Value, &[])),
                "{{channel}}",
            )
            .range(Some(0.0), None),
            Panel::timeseries(
                "Messages by event and direction",
                "Messages per second per channel, event and direction.",
                "mps",
            )
            .target(
                messages(&["channel", "event", "direction"]),
                "{{channel}} {{event}} {{direction}}",
            ),
            Panel::timeseries("Messages in and out", "Messages per second by direction.", "mps")
                .target(messages(&["direction"]), "{{direction}}"),
            Panel::timeseries(
                "Connection duration p50 / p95",
                "How long connections stayed open, per channel.",
                "s",
            )
            .target(quantile(0.5, d, &["channel"]), "{{channel}} p50")
            .target(quantile(0.95, d, &["channel"]), "{{channel}} p95"),
            Panel::timeseries(
                "Connections closed by channel",
                "Connections ending per second (closed, failed or dropped).",
                "cps",
            )
            .target(sum_by(&["channel"], &rate_of(d, Part::Count, &[])), "{{channel}}"),
            Panel::timeseries(
                "Mean connection time by channel",
                "Mean time connections stayed open.",
                "s",
            )
            .target(mean(d, &["channel"]), "{{channel}}"),
        ],
    }
}

/// Infrastructure: process CPU and memory, threads, fds, system memory and load, Tokio runtime.
#[allow(clippy::too_many_lines)] // one declarative list
fn infrastructure(t: &Thresholds) -> Dashboard {
    let gauge = |def: &MetricDef| sel(def, Part::Value, &[]);
    Dashboard {
        uid: "vigil-infrastructure",
        file: "infrastructure.json",
        title: "Vigil / Infrastructure",
        description: "Process CPU and memory, threads, file descriptors, host memory and load, the Tokio runtime, \
                      and the health of Vigil's own telemetry delivery.",
        anchor: &PROCESS_START_TIME,
        panels: vec![
            Panel::stat(
                "Uptime",
                "Time since the most recent start of a selected instance.",
                "s",
            )
            .target(promql::aggregate("min", &[], &gauge(&PROCESS_UPTIME)), "uptime"),
            Panel::stat(
                "Started",
                "When the most recently started instance started.",
                "dateTimeFromNow",
            )
            .target(
                format!("{} * 1000", promql::aggregate("max", &[], &gauge(&PROCESS_START_TIME))),
                "started",
            ),
            Panel::stat("Threads", "OS threads of the selected instances (Linux).", "short")
                .target(sum_by(&[], &gauge(&PROCESS_THREADS)), "threads"),
            Panel::stat(
                "Open file descriptors",
                "Open fds of the selected instances (Linux).",
                "short",
            )
            .target(sum_by(&[], &gauge(&PROCESS_OPEN_FDS)), "fds"),
            Panel::stat("Tokio workers", "Worker threads of the Tokio runtimes.", "short")
                .target(sum_by(&[], &gauge(&TOKIO_WORKERS)), "workers"),
            Panel::stat("Host memory used", "Memory in use on the busiest host.", "percentunit").target(
                format!(
                    "{} / {}",
                    promql::aggregate("max", &["instance"], &gauge(&SYSTEM_MEMORY_USED)),
                    promql::aggregate("max", &["instance"], &gauge(&SYSTEM_MEMORY_TOTAL))
                ),
                "{{instance}}",
            ),
            Panel::timeseries(
                "Process CPU",
                "CPU used by each instance, in cores (1 = one core busy).",
                "short",
            )
            .target(gauge(&PROCESS_CPU_USAGE), "{{instance}}")
            .range(Some(0.0), None),
            Panel::timeseries(
                "Host CPU",
                "CPU used on each host, as a share of all its cores.",
                "percentunit",
            )
            .target(gauge(&SYSTEM_CPU_USAGE), "{{instance}}")
            .range(Some(0.0), Some(1.0)),
            Panel::timeseries("Resident memory", "Resident memory (RSS) of each instance.", "bytes")
                .target(gauge(&PROCESS_MEMORY_RESIDENT), "{{instance}}")
                .threshold(bytes_f64(t.memory_bytes), alert::HIGH_MEMORY_USAGE)
                .range(Some(0.0), None),
            Panel::timeseries("Virtual memory", "Virtual memory size of each instance.", "bytes")
                .target(gauge(&PROCESS_MEMORY_VIRTUAL), "{{instance}}")
                .range(Some(0.0), None),
            Panel::timeseries("Host memory", "Memory in use and in total on each host.", "bytes")
                .target(gauge(&SYSTEM_MEMORY_USED), "{{instance}} used")
                .target(gauge(&SYSTEM_MEMORY_TOTAL), "{{instance}} total")
                .range(Some(0.0), None),
            Panel::timeseries(
                "Host load average",
                "Load average over 1, 5 and 15 minutes (Unix).",
                "short",
            )
            .target(gauge(&SYSTEM_LOAD), "{{instance}} {{period}}")
            .range(Some(0.0), None),
            Panel::timeseries(
                "Threads and file descriptors",
                "OS threads and open fds of each instance.",
                "short",
            )
            .target(gauge(&PROCESS_THREADS), "{{instance}} threads")
            .target(gauge(&PROCESS_OPEN_FDS), "{{instance}} fds")
            .range(Some(0.0), None),
            Panel::timeseries(
                "Tokio tasks",
                "Tasks alive in each runtime, and tasks waiting in its global queue.",
                "short",
            )
            .target(gauge(&TOKIO_TASKS_ALIVE), "{{instance}} alive")
            .target(gauge(&TOKIO_QUEUE_DEPTH), "{{instance}} queued")
            .range(Some(0.0), None),
            Panel::timeseries(
                "Tokio workers busy",
                "Share of the workers' time spent busy.",
                "percentunit",
            )
            .target(gauge(&TOKIO_WORKERS_BUSY), "{{instance}}")
            .range(Some(0.0), Some(1.0)),
            Panel::timeseries("Tokio worker parks", "Times per second the workers went idle.", "cps")
                .target(rate(&gauge(&TOKIO_WORKER_PARKS), RATE_INTERVAL), "{{instance}}")
                .range(Some(0.0), None),
            Panel::timeseries(
                "Log records dropped",
                "Log records a Vigil backend dropped per second, by backend and reason (queue_full: the \
                 application outpaced the writer; write_error: the destination failed).",
                "cps",
            )
            .target(
                format!(
                    "{} or vector(0)",
                    sum_by(&["backend", "reason"], &rate_of(&VIGIL_LOG_DROPPED, Part::Value, &[]))
                ),
                "{{backend}} {{reason}}",
            )
            .range(Some(0.0), None),
            Panel::timeseries(
                "Datadog log requests by outcome",
                "Requests to the Datadog logs intake per second: accepted, retried, split, rejected, unauthorized \
                 (only with the Datadog log backend).",
                "reqps",
            )
            .target(
                sum_by(&["outcome"], &rate_of(&VIGIL_DATADOG_LOGS_REQUESTS, Part::Value, &[])),
                "{{outcome}}",
            ),
            Panel::timeseries(
                "Datadog log entries sent and truncated",
                "Log entries the Datadog intake accepted, and entries cut to its 1 MB limit, per second.",
                "cps",
            )
            .target(
                sum_by(&[], &rate_of(&VIGIL_DATADOG_LOGS_SENT, Part::Value, &[])),
                "sent",
            )
            .target(
                sum_by(&[], &rate_of(&VIGIL_DATADOG_LOGS_TRUNCATED, Part::Value, &[])),
                "truncated",
            ),
            Panel::timeseries(
                "Datadog log payload size",
                "Uncompressed size of the requests to the Datadog logs intake (at most 5 MB).",
                "bytes",
            )
            .target(quantile(0.5, &VIGIL_DATADOG_LOGS_PAYLOAD_SIZE, &[]), "p50")
            .target(quantile(0.95, &VIGIL_DATADOG_LOGS_PAYLOAD_SIZE, &[]), "p95"),
            Panel::timeseries(
                "Datadog traces sent and dropped",
                "Trace chunks the Datadog agent accepted, and trace chunks and spans the tracer dropped, by reason, \
                 per second (only with the Datadog tracer).",
                "cps",
            )
            .target(
                sum_by(&[], &rate_of(&VIGIL_TRACE_SENT, Part::Value, &[])),
                "chunks sent",
            )
            .target(
                sum_by(&["reason"], &rate_of(&VIGIL_TRACE_DROPPED, Part::Value, &[])),
                "chunks dropped {{reason}}",
            )
            .target(
                sum_by(&["reason"], &rate_of(&VIGIL_TRACE_SPANS_DROPPED, Part::Value, &[])),
                "spans dropped {{reason}}",
            ),
            Panel::timeseries(
                "Datadog trace send errors",
                "Failed attempts to send trace payloads to the Datadog agent per second, retried or not, by reason.",
                "cps",
            )
            .target(
                sum_by(&["reason"], &rate_of(&VIGIL_TRACE_SEND_ERRORS, Part::Value, &[])),
                "{{reason}}",
            ),
        ],
    }
}

/// A byte count as a JSON-friendly float.
#[allow(clippy::cast_precision_loss)]
fn bytes_f64(bytes: u64) -> f64 {
    bytes as f64
}

/// The `(variable, query)` pairs of a dashboard's `service`, `environment` and `instance`
/// variables, in Grafana's `label_values(metric{matchers}, label)` form.
pub fn variable_queries(dashboard: &Dashboard) -> Vec<(&'static str, String)> {
    let anchor = promql::series_name(dashboard.anchor, Part::Value);
    vec![
        ("service", format!("label_values({anchor}, service)")),
        (
            "environment",
            format!(r#"label_values({anchor}{{service="$service"}}, environment)"#),
        ),
        (
            "instance",
            format!(r#"label_values({anchor}{{service="$service", environment="$environment"}}, instance)"#),
        ),
    ]
}

/// The dashboard's JSON, as Grafana's import and `POST /api/dashboards/db` take it.
#[allow(clippy::too_many_lines)] // one declarative document
pub fn to_json(dashboard: &Dashboard) -> Value {
    let datasource = || Value::obj([("type", Value::str("prometheus")), ("uid", Value::str("${datasource}"))]);
    let mut variables = vec![Value::obj([
        ("name", Value::str("datasource")),
        ("label", Value::str("Data source")),
        ("type", Value::str("datasource")),
        ("query", Value::str("prometheus")),
        ("current", Value::obj::<&str>([])),
        ("hide", Value::int(0)),
        ("includeAll", Value::Bool(false)),
        ("multi", Value::Bool(false)),
        ("options", Value::arr([])),
        ("refresh", Value::int(1)),
        ("regex", Value::str("")),
    ])];
    for (name, query) in variable_queries(dashboard) {
        let all = name == "instance";
        let mut members = vec![
            ("name", Value::str(name)),
            ("label", Value::str(capitalize(name))),
            ("type", Value::str("query")),
            ("datasource", datasource()),
            ("query", Value::str(query.clone())),
            ("definition", Value::str(query)),
            ("current", Value::obj::<&str>([])),
            ("hide", Value::int(0)),
            ("includeAll", Value::Bool(all)),
            ("multi", Value::Bool(all)),
            ("options", Value::arr([])),
            ("refresh", Value::int(2)),
            ("regex", Value::str("")),
            ("sort", Value::int(1)),
        ];
        if all {
            members.push(("allValue", Value::str(".*")));
        }
        variables.push(Value::obj(members));
    }

    let mut panels = Vec::new();
    let (mut x, mut y, mut row_height) = (0u32, 0u32, 0u32);
    for (index, panel) in dashboard.panels.iter().enumerate() {
        if x + panel.width > GRID_WIDTH {
            x = 0;
            y += row_height;
            row_height = 0;
        }
        let grid = Value::obj([
            ("h", Value::int(i64::from(panel.height))),
            ("w", Value::int(i64::from(panel.width))),
            ("x", Value::int(i64::from(x))),
            ("y", Value::int(i64::from(y))),
        ]);
        x += panel.width;
        row_height = row_height.max(panel.height);
        panels.push(panel_json(panel, index + 1, grid, &datasource));
    }

    Value::obj([
        ("id", Value::Null),
        ("uid", Value::str(dashboard.uid)),
        ("title", Value::str(dashboard.title)),
        (
            "description",
            Value::str(format!(
                "{} Generated by `cargo xtask dashboards` from Vigil's metric catalogue; do not edit by hand.",
                dashboard.description
            )),
        ),
        ("tags", Value::arr([Value::str("vigil"), Value::str("generated")])),
        ("timezone", Value::str("browser")),
        ("editable", Value::Bool(true)),
        ("graphTooltip", Value::int(1)),
        ("refresh", Value::str("30s")),
        ("schemaVersion", Value::int(39)),
        ("version", Value::int(1)),
        (
            "time",
            Value::obj([("from", Value::str("now-1h")), ("to", Value::str("now"))]),
        ),
        ("templating", Value::obj([("list", Value::Array(variables))])),
        ("annotations", Value::obj([("list", Value::arr([]))])),
        (
            "links",
            Value::arr([Value::obj([
                ("title", Value::str("Vigil dashboards")),
                ("type", Value::str("dashboards")),
                ("tags", Value::arr([Value::str("vigil")])),
                ("asDropdown", Value::Bool(true)),
                ("includeVars", Value::Bool(true)),
                ("keepTime", Value::Bool(true)),
            ])]),
        ),
        ("panels", Value::Array(panels)),
    ])
}

/// One panel's JSON.
#[allow(clippy::too_many_lines)] // one declarative document
fn panel_json(panel: &Panel, id: usize, grid: Value, datasource: &dyn Fn() -> Value) -> Value {
    let mut steps = vec![Value::obj([("color", Value::str("green")), ("value", Value::Null)])];
    if let Some(threshold) = panel.threshold {
        steps.push(Value::obj([
            ("color", Value::str("red")),
            ("value", Value::num(threshold.value)),
        ]));
    }
    let thresholds = Value::obj([("mode", Value::str("absolute")), ("steps", Value::Array(steps))]);
    let mut defaults = vec![("unit", Value::str(panel.unit))];
    if let Some(min) = panel.min {
        defaults.push(("min", Value::num(min)));
    }
    if let Some(max) = panel.max {
        defaults.push(("max", Value::num(max)));
    }
    defaults.push(("thresholds", thresholds));
    let (kind, options) = match panel.kind {
        Kind::Timeseries => {
            let style = if panel.threshold.is_some() { "line+area" } else { "off" };
            defaults.push(("color", Value::obj([("mode", Value::str("palette-classic"))])));
            defaults.push((
                "custom",
                Value::obj([
                    ("drawStyle", Value::str("line")),
                    ("lineWidth", Value::int(1)),
                    ("fillOpacity", Value::int(10)),
                    ("showPoints", Value::str("never")),
                    ("spanNulls", Value::Bool(false)),
                    ("thresholdsStyle", Value::obj([("mode", Value::str(style))])),
                ]),
            ));
            let options = Value::obj([
                (
                    "legend",
                    Value::obj([
                        ("displayMode", Value::str("table")),
                        ("placement", Value::str("bottom")),
                        ("showLegend", Value::Bool(true)),
                        (
                            "calcs",
                            Value::arr([Value::str("mean"), Value::str("max"), Value::str("lastNotNull")]),
                        ),
                    ]),
                ),
                (
                    "tooltip",
                    Value::obj([("mode", Value::str("multi")), ("sort", Value::str("desc"))]),
                ),
            ]);
            ("timeseries", options)
        }
        Kind::Stat => {
            let color_mode = if panel.threshold.is_some() {
                "background"
            } else {
                "value"
            };
            defaults.push(("color", Value::obj([("mode", Value::str("thresholds"))])));
            let options = Value::obj([
                ("colorMode", Value::str(color_mode)),
                ("graphMode", Value::str("area")),
                ("justifyMode", Value::str("auto")),
                ("textMode", Value::str("auto")),
                (
                    "reduceOptions",
                    Value::obj([
                        ("calcs", Value::arr([Value::str("lastNotNull")])),
                        ("fields", Value::str("")),
                        ("values", Value::Bool(false)),
                    ]),
                ),
            ]);
            ("stat", options)
        }
    };
    let targets = panel
        .targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            Value::obj([
                ("refId", Value::str(ref_id(i))),
                ("datasource", datasource()),
                ("expr", Value::str(target.expr.clone())),
                ("legendFormat", Value::str(target.legend.clone())),
                ("range", Value::Bool(true)),
            ])
        })
        .collect::<Vec<_>>();
    let description = match panel.threshold {
        Some(threshold) => format!(
            "{} The red line is the {} alert's threshold.",
            panel.description, threshold.alert
        ),
        None => panel.description.clone(),
    };
    Value::obj([
        ("id", Value::int(i64::try_from(id).unwrap_or(i64::MAX))),
        ("type", Value::str(kind)),
        ("title", Value::str(panel.title.clone())),
        ("description", Value::str(description)),
        ("datasource", datasource()),
        ("gridPos", grid),
        (
            "fieldConfig",
            Value::obj([("defaults", Value::obj(defaults)), ("overrides", Value::arr([]))]),
        ),
        ("options", options),
        ("targets", Value::Array(targets)),
    ])
}

/// `A`, `B`, ... for the targets of a panel.
fn ref_id(index: usize) -> String {
    let letter = u8::try_from(index % 26).unwrap_or(0) + b'A';
    char::from(letter).to_string()
}

/// `service` → `Service`.
fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
