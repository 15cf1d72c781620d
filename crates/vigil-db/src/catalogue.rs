//! The metrics this crate records beyond the core catalogue's `database.query.duration` and
//! `database.query.count`. Defined here until they move into `vigil_core::catalogue`.

use metrics::Unit;
use vigil_core::catalogue::{DATABASE_QUERY_COUNT, DATABASE_QUERY_DURATION, MetricDef, MetricKind};

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

/// Every metric this crate records, the core ones included.
pub const ALL: &[MetricDef] = &[
    DATABASE_QUERY_DURATION,
    DATABASE_QUERY_COUNT,
    DATABASE_QUERY_SLOW,
    DATABASE_POOL_SIZE,
    DATABASE_POOL_IDLE,
    DATABASE_POOL_IN_USE,
    DATABASE_POOL_MAX,
    DATABASE_POOL_ACQUIRE_DURATION,
    DATABASE_POOL_ACQUIRE_TIMEOUTS,
];

/// Describes this crate's metrics that are not in the core catalogue to the installed
/// recorder (help text and unit).
pub fn describe() {
    for def in &ALL[2..] {
        def.describe();
    }
}
