//! The metric catalogue: every metric Vigil itself records, defined once.
//!
//! Collectors record these names; the Prometheus backend derives its names and buckets from
//! them; dashboards and alert rules are generated from them. Names are the seed's
//! (`phoenix.request.*` became `http.request.*`); backends apply their own naming rules
//! (Prometheus: `http.request.count` is exported as `http_request_total`, and millisecond
//! histograms as `_seconds`).

use metrics::Unit;

/// What kind of metric a catalogue entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution of observations.
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricDef {
    /// The metric name, dotted as in the seed (`http.request.duration`).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The unit of recorded values, when there is one.
    pub unit: Option<Unit>,
    /// The tags every series of this metric carries.
    pub tags: &'static [&'static str],
    /// The help text.
    pub help: &'static str,
    /// Histogram bucket upper bounds, in the metric's unit, when the default ones do not fit.
    pub buckets: Option<&'static [f64]>,
}

impl MetricDef {
    /// Describes this metric to the installed `metrics` recorder (help text and unit).
    pub fn describe(&self) {
        let (name, help) = (self.name, self.help);
        match (self.kind, self.unit) {
            (MetricKind::Counter, Some(u)) => metrics::describe_counter!(name, u, help),
            (MetricKind::Counter, None) => metrics::describe_counter!(name, help),
            (MetricKind::Gauge, Some(u)) => metrics::describe_gauge!(name, u, help),
            (MetricKind::Gauge, None) => metrics::describe_gauge!(name, help),
            (MetricKind::Histogram, Some(u)) => metrics::describe_histogram!(name, u, help),
            (MetricKind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
}

/// Histogram bucket upper bounds for durations in milliseconds: 1 ms to 10 s.
pub const DURATION_BUCKETS_MS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// Histogram bucket upper bounds for long-lived connections, in milliseconds: 1 s to 24 h.
pub const CONNECTION_BUCKETS_MS: &[f64] = &[
    1_000.0,
    5_000.0,
    15_000.0,
    60_000.0,
    300_000.0,
    900_000.0,
    1_800_000.0,
    3_600_000.0,
    14_400_000.0,
    86_400_000.0,
];

/// `http.request.duration`: request duration in milliseconds.
pub const HTTP_REQUEST_DURATION: MetricDef = MetricDef {
    name: "http.request.duration",
    kind: MetricKind::Histogram,
    unit: Some(Unit::Milliseconds),
    tags: &["route", "method", "status"],
    help: "HTTP request duration, from the request's arrival until its response body was sent.",
    buckets: None,
};

/// `http.request.count`: number of requests.
pub const HTTP_REQUEST_COUNT: MetricDef = MetricDef {
    name: "http.request.count",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["route", "method", "status"],
    help: "Number of HTTP requests handled.",
    buckets: None,
};

/// `http.request.in_flight`: requests being handled.
pub const HTTP_REQUESTS_IN_FLIGHT: MetricDef = MetricDef {
    name: "http.request.in_flight",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "HTTP requests being handled: called, and the response body not yet finished.",
    buckets: None,
};

/// `http.response.size`: response body size in bytes.
pub const HTTP_RESPONSE_SIZE: MetricDef = MetricDef {
    name: "http.response.size",
    kind: MetricKind::Histogram,
    unit: Some(Unit::Bytes),
    tags: &["route", "method", "status"],
    help: "HTTP response body size, as sent.",
    buckets: None,
};

/// `database.query.duration`: query execution time in milliseconds.
pub const DATABASE_QUERY_DURATION: MetricDef = MetricDef {
    name: "database.query.duration",
    kind: MetricKind::Histogram,
    unit: Some(Unit::Milliseconds),
    tags: &["source", "operation"],
    help: "Database query execution time.",
    buckets: None,
};

/// `database.query.count`: number of queries.
pub const DATABASE_QUERY_COUNT: MetricDef = MetricDef {
    name: "database.query.count",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["source", "operation"],
    help: "Number of database queries executed.",
    buckets: None,
};

/// `database.query.slow`: queries slower than the slow-query threshold.
pub const DATABASE_QUERY_SLOW: MetricDef = MetricDef {
    name: "database.query.slow",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["source", "operation"],
    help: "Database queries slower than the slow-query threshold (each one is also logged, normalised, at warn level).",
    buckets: None,
};

/// `database.pool.size`: connections open in the pool, idle or in use.
pub const DATABASE_POOL_SIZE: MetricDef = MetricDef {
    name: "database.pool.size",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &["pool"],
    help: "Connections open in the database pool, idle or in use.",
    buckets: None,
};

/// `database.pool.idle`: open connections not in use.
pub const DATABASE_POOL_IDLE: MetricDef = MetricDef {
    name: "database.pool.idle",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &["pool"],
    help: "Open database pool connections not in use.",
    buckets: None,
};

/// `database.pool.in_use`: connections checked out of the pool.
pub const DATABASE_POOL_IN_USE: MetricDef = MetricDef {
    name: "database.pool.in_use",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &["pool"],
    help: "Database pool connections checked out (size minus idle).",
    buckets: None,
};

/// `database.pool.max`: the pool's connection limit.
pub const DATABASE_POOL_MAX: MetricDef = MetricDef {
    name: "database.pool.max",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &["pool"],
    help: "The database pool's maximum number of connections.",
    buckets: None,
};

/// `database.pool.acquire.duration`: time waited for a connection, in milliseconds.
pub const DATABASE_POOL_ACQUIRE_DURATION: MetricDef = MetricDef {
    name: "database.pool.acquire.duration",
    kind: MetricKind::Histogram,
    unit: Some(Unit::Milliseconds),
    tags: &["pool"],
    help: "Time taken to acquire a connection from the database pool.",
    buckets: None,
};

/// `database.pool.acquire.timeouts`: acquires that gave up waiting.
pub const DATABASE_POOL_ACQUIRE_TIMEOUTS: MetricDef = MetricDef {
    name: "database.pool.acquire.timeouts",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["pool"],
    help: "Attempts to acquire a database pool connection that timed out.",
    buckets: None,
};

/// `websocket.connections`: current number of WebSocket connections.
pub const WEBSOCKET_CONNECTIONS: MetricDef = MetricDef {
    name: "websocket.connections",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &["channel"],
    help: "Current number of open WebSocket connections.",
    buckets: None,
};

/// `websocket.messages`: number of WebSocket messages.
pub const WEBSOCKET_MESSAGES: MetricDef = MetricDef {
    name: "websocket.messages",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["channel", "event", "direction"],
    help: "Number of WebSocket messages, by event and direction (in or out).",
    buckets: None,
};

/// `websocket.connection.duration`: how long WebSocket connections stayed open, in milliseconds.
pub const WEBSOCKET_CONNECTION_DURATION: MetricDef = MetricDef {
    name: "websocket.connection.duration",
    kind: MetricKind::Histogram,
    unit: Some(Unit::Milliseconds),
    tags: &["channel"],
    help: "WebSocket connection duration, from the accepted handshake until the connection closed, failed or was dropped.",
    buckets: Some(CONNECTION_BUCKETS_MS),
};

/// `vigil.log.dropped`: log lines a backend dropped, by reason.
pub const VIGIL_LOG_DROPPED: MetricDef = MetricDef {
    name: "vigil.log.dropped",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["backend", "reason"],
    help: "Log records a Vigil backend dropped: reason is queue_full (the application outpaced the writer), write_error (the destination failed), rejected (the Datadog intake refused them), unauthorized (the Datadog API key was refused) or shutdown (still queued at the shutdown deadline).",
    buckets: None,
};

/// `vigil.metrics.overflow`: metric updates folded into an overflow series.
pub const VIGIL_METRICS_OVERFLOW: MetricDef = MetricDef {
    name: "vigil.metrics.overflow",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["metric"],
    help: "Registrations of a new label set past the metric's cardinality limit, folded into the metric's overflow series (label values __overflow__).",
    buckets: None,
};

/// `vigil.datadog.logs.sent`: log entries the intake accepted.
pub const VIGIL_DATADOG_LOGS_SENT: MetricDef = MetricDef {
    name: "vigil.datadog.logs.sent",
    kind: MetricKind::Counter,
    unit: None,
    tags: &[],
    help: "Log entries the Datadog logs intake accepted.",
    buckets: None,
};

/// `vigil.datadog.logs.requests`: requests to the intake, by `outcome`.
pub const VIGIL_DATADOG_LOGS_REQUESTS: MetricDef = MetricDef {
    name: "vigil.datadog.logs.requests",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["outcome"],
    help: "Requests to the Datadog logs intake, by outcome: accepted (2xx), retried (408, 429, 5xx, timeout, \
           connection or I/O error), split (413 for several entries), rejected (400, 413 for one entry, other \
           4xx), unauthorized (401, 403).",
    buckets: None,
};

/// `vigil.datadog.logs.truncated`: entries cut to the 1 MB limit before sending.
pub const VIGIL_DATADOG_LOGS_TRUNCATED: MetricDef = MetricDef {
    name: "vigil.datadog.logs.truncated",
    kind: MetricKind::Counter,
    unit: None,
    tags: &[],
    help: "Log entries cut to Datadog's 1 MB per-log limit before sending (marked with vigil.truncated=true).",
    buckets: None,
};

/// `vigil.datadog.logs.payload.size`: uncompressed size of each request body.
pub const VIGIL_DATADOG_LOGS_PAYLOAD_SIZE: MetricDef = MetricDef {
    name: "vigil.datadog.logs.payload.size",
    kind: MetricKind::Histogram,
    unit: Some(Unit::Bytes),
    tags: &[],
    help: "Uncompressed size of each request body sent to the Datadog logs intake (at most 5 MB).",
    buckets: Some(&[
        1_024.0,
        8_192.0,
        65_536.0,
        262_144.0,
        1_048_576.0,
        2_097_152.0,
        5_000_000.0,
    ]),
};

/// `vigil.trace.sent`: trace chunks the agent accepted.
pub const VIGIL_TRACE_SENT: MetricDef = MetricDef {
    name: "vigil.trace.sent",
    kind: MetricKind::Counter,
    unit: None,
    tags: &[],
    help: "Trace chunks (the spans of one trace sent together) the Datadog agent accepted.",
    buckets: None,
};

/// `vigil.trace.dropped`: trace chunks dropped, by reason.
pub const VIGIL_TRACE_DROPPED: MetricDef = MetricDef {
    name: "vigil.trace.dropped",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["reason"],
    help: "Trace chunks the Datadog tracer dropped: reason is queue_full (the application outpaced the sender), send_failed (every retry failed), rejected (the agent refused the payload), too_large (one trace larger than the agent accepts) or shutdown (unsent at the shutdown deadline).",
    buckets: None,
};

/// `vigil.trace.spans.dropped`: spans dropped, by reason.
pub const VIGIL_TRACE_SPANS_DROPPED: MetricDef = MetricDef {
    name: "vigil.trace.spans.dropped",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["reason"],
    help: "Spans the Datadog tracer dropped: the spans of dropped trace chunks (same reasons as vigil.trace.dropped) and, with reason trace_too_large, spans over the per-trace cap.",
    buckets: None,
};

/// `vigil.trace.send.errors`: failed attempts to send a payload to the agent.
pub const VIGIL_TRACE_SEND_ERRORS: MetricDef = MetricDef {
    name: "vigil.trace.send.errors",
    kind: MetricKind::Counter,
    unit: None,
    tags: &["reason"],
    help: "Failed attempts to send a trace payload to the Datadog agent, retried or not: reason is io, timeout, http_408, http_429, http_5xx or http_4xx.",
    buckets: None,
};

/// `process.cpu.usage`: CPU used by this process, in cores.
pub const PROCESS_CPU_USAGE: MetricDef = MetricDef {
    name: "process.cpu.usage",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "CPU used by this process since the previous sample, in cores: 1 is one core fully busy (it may exceed 1 on several cores).",
    buckets: None,
};

/// `process.memory.resident`: resident set size in bytes.
pub const PROCESS_MEMORY_RESIDENT: MetricDef = MetricDef {
    name: "process.memory.resident",
    kind: MetricKind::Gauge,
    unit: Some(Unit::Bytes),
    tags: &[],
    help: "Resident memory (RSS) of this process.",
    buckets: None,
};

/// `process.memory.virtual`: virtual memory size in bytes.
pub const PROCESS_MEMORY_VIRTUAL: MetricDef = MetricDef {
    name: "process.memory.virtual",
    kind: MetricKind::Gauge,
    unit: Some(Unit::Bytes),
    tags: &[],
    help: "Virtual memory size of this process.",
    buckets: None,
};

/// `process.threads`: OS threads of this process (Linux only).
pub const PROCESS_THREADS: MetricDef = MetricDef {
    name: "process.threads",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "OS threads of this process (Linux only).",
    buckets: None,
};

/// `process.open_fds`: open file descriptors (Linux only).
pub const PROCESS_OPEN_FDS: MetricDef = MetricDef {
    name: "process.open_fds",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "Open file descriptors of this process (Linux only).",
    buckets: None,
};

/// `process.start_time`: start time in seconds since the Unix epoch.
pub const PROCESS_START_TIME: MetricDef = MetricDef {
    name: "process.start_time",
    kind: MetricKind::Gauge,
    unit: Some(Unit::Seconds),
    tags: &[],
    help: "Start time of this process, in seconds since the Unix epoch.",
    buckets: None,
};

/// `process.uptime`: seconds since this process started.
pub const PROCESS_UPTIME: MetricDef = MetricDef {
    name: "process.uptime",
    kind: MetricKind::Gauge,
    unit: Some(Unit::Seconds),
    tags: &[],
    help: "How long this process has been running.",
    buckets: None,
};

/// `system.cpu.usage`: host CPU usage, 0 to 1 of all cores.
pub const SYSTEM_CPU_USAGE: MetricDef = MetricDef {
    name: "system.cpu.usage",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "CPU used on the whole host since the previous sample, as a ratio of all cores (0 to 1).",
    buckets: None,
};

/// `system.memory.used`: host memory in use, in bytes.
pub const SYSTEM_MEMORY_USED: MetricDef = MetricDef {
    name: "system.memory.used",
    kind: MetricKind::Gauge,
    unit: Some(Unit::Bytes),
    tags: &[],
    help: "Memory in use on the host.",
    buckets: None,
};

/// `system.memory.total`: host memory in total, in bytes.
pub const SYSTEM_MEMORY_TOTAL: MetricDef = MetricDef {
    name: "system.memory.total",
    kind: MetricKind::Gauge,
    unit: Some(Unit::Bytes),
    tags: &[],
    help: "Total memory of the host.",
    buckets: None,
};

/// `system.load`: load average by `period` (`1m`, `5m`, `15m`).
pub const SYSTEM_LOAD: MetricDef = MetricDef {
    name: "system.load",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &["period"],
    help: "Load average of the host over the period (1m, 5m or 15m; Unix only).",
    buckets: None,
};

/// `tokio.workers`: worker threads of the Tokio runtime.
pub const TOKIO_WORKERS: MetricDef = MetricDef {
    name: "tokio.workers",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "Worker threads of the Tokio runtime.",
    buckets: None,
};

/// `tokio.tasks.alive`: tasks spawned and not finished.
pub const TOKIO_TASKS_ALIVE: MetricDef = MetricDef {
    name: "tokio.tasks.alive",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "Tasks alive (spawned and not finished) in the Tokio runtime.",
    buckets: None,
};

/// `tokio.queue.depth`: tasks in the runtime's global queue.
pub const TOKIO_QUEUE_DEPTH: MetricDef = MetricDef {
    name: "tokio.queue.depth",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "Tasks waiting in the Tokio runtime's global (injection) queue.",
    buckets: None,
};

/// `tokio.workers.busy`: busy share of the workers' time, 0 to 1.
pub const TOKIO_WORKERS_BUSY: MetricDef = MetricDef {
    name: "tokio.workers.busy",
    kind: MetricKind::Gauge,
    unit: None,
    tags: &[],
    help: "Share of the Tokio workers' time spent busy since the previous sample (0 to 1).",
    buckets: None,
};

/// `tokio.worker.parks`: times the workers parked, summed.
pub const TOKIO_WORKER_PARKS: MetricDef = MetricDef {
    name: "tokio.worker.parks",
    kind: MetricKind::Counter,
    unit: None,
    tags: &[],
    help: "Times the Tokio runtime's workers parked (went idle), summed over workers.",
    buckets: None,
};

/// Every metric in the catalogue.
pub const ALL: &[MetricDef] = &[
    HTTP_REQUEST_DURATION,
    HTTP_REQUEST_COUNT,
    HTTP_REQUESTS_IN_FLIGHT,
    HTTP_RESPONSE_SIZE,
    DATABASE_QUERY_DURATION,
    DATABASE_QUERY_COUNT,
    DATABASE_QUERY_SLOW,
    DATABASE_POOL_SIZE,
    DATABASE_POOL_IDLE,
    DATABASE_POOL_IN_USE,
    DATABASE_POOL_MAX,
    DATABASE_POOL_ACQUIRE_DURATION,
    DATABASE_POOL_ACQUIRE_TIMEOUTS,
    WEBSOCKET_CONNECTIONS,
    WEBSOCKET_MESSAGES,
    WEBSOCKET_CONNECTION_DURATION,
    VIGIL_LOG_DROPPED,
    VIGIL_METRICS_OVERFLOW,
    VIGIL_DATADOG_LOGS_SENT,
    VIGIL_DATADOG_LOGS_REQUESTS,
    VIGIL_DATADOG_LOGS_TRUNCATED,
    VIGIL_DATADOG_LOGS_PAYLOAD_SIZE,
    VIGIL_TRACE_SENT,
    VIGIL_TRACE_DROPPED,
    VIGIL_TRACE_SPANS_DROPPED,
    VIGIL_TRACE_SEND_ERRORS,
    PROCESS_CPU_USAGE,
    PROCESS_MEMORY_RESIDENT,
    PROCESS_MEMORY_VIRTUAL,
    PROCESS_THREADS,
    PROCESS_OPEN_FDS,
    PROCESS_START_TIME,
    PROCESS_UPTIME,
    SYSTEM_CPU_USAGE,
    SYSTEM_MEMORY_USED,
    SYSTEM_MEMORY_TOTAL,
    SYSTEM_LOAD,
    TOKIO_WORKERS,
    TOKIO_TASKS_ALIVE,
    TOKIO_QUEUE_DEPTH,
    TOKIO_WORKERS_BUSY,
    TOKIO_WORKER_PARKS,
];

/// Describes every catalogue metric to the installed recorder.
pub fn describe_all() {
    for def in ALL {
        def.describe();
    }
}

/// The catalogue entry named `name`.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    ALL.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_tags_bounded() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|b| b.name != a.name), "{} twice", a.name);
            assert!(!a.help.is_empty());
            assert!(a.tags.len() <= 4);
        }
        assert_eq!(find("websocket.messages").unwrap().kind, MetricKind::Counter);
        assert!(DURATION_BUCKETS_MS.windows(2).all(|w| w[0] < w[1]));
    }
}
