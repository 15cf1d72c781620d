//! The tracer's self-metrics: defined in [`vigil_core::catalogue`] with every other metric
//! (so dashboards, alerts and the Prometheus naming see them), listed here.

use vigil_core::catalogue::MetricDef;

pub use vigil_core::catalogue::{
    VIGIL_TRACE_DROPPED, VIGIL_TRACE_SEND_ERRORS, VIGIL_TRACE_SENT, VIGIL_TRACE_SPANS_DROPPED,
};

/// Every metric this crate records.
pub const ALL: &[MetricDef] = &[
    VIGIL_TRACE_SENT,
    VIGIL_TRACE_DROPPED,
    VIGIL_TRACE_SPANS_DROPPED,
    VIGIL_TRACE_SEND_ERRORS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_not_in_the_core_catalogue_twice() {
        for (i, m) in ALL.iter().enumerate() {
            assert!(m.name.starts_with("vigil.trace."));
            assert!(ALL[i + 1..].iter().all(|o| o.name != m.name));
            assert_eq!(vigil_core::catalogue::find(m.name), Some(m), "in the core catalogue");
        }
    }
}
