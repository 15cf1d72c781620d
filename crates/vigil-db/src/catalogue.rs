//! The database metrics, defined in `vigil_core::catalogue` and gathered here.

use vigil_core::catalogue::MetricDef;
pub use vigil_core::catalogue::{
    DATABASE_POOL_ACQUIRE_DURATION, DATABASE_POOL_ACQUIRE_TIMEOUTS, DATABASE_POOL_IDLE, DATABASE_POOL_IN_USE,
    DATABASE_POOL_MAX, DATABASE_POOL_SIZE, DATABASE_QUERY_COUNT, DATABASE_QUERY_DURATION, DATABASE_QUERY_SLOW,
};

/// Every metric this crate records: the core catalogue's `database.*` entries.
pub fn all() -> impl Iterator<Item = &'static MetricDef> {
    vigil_core::catalogue::ALL
        .iter()
        .filter(|def| def.name.starts_with("database."))
}

/// Describes this crate's metrics to the installed recorder (help text and unit). `vigil::init`
/// describes the whole catalogue already; call this when installing a recorder by hand.
pub fn describe() {
    for def in all() {
        def.describe();
    }
}
