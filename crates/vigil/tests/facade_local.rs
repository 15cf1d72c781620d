//! The metrics facade under a local recorder (no global installation): nothing is cached, and
//! every update still lands.

use std::sync::Arc;

use vigil::{BackendRecorder, MemoryMetricsBackend, Metrics};

#[test]
fn facade_updates_reach_a_local_recorder() {
    let memory = Arc::new(MemoryMetricsBackend::new());
    let recorder = BackendRecorder::from_arc(memory.clone());
    metrics::with_local_recorder(&recorder, || {
        Metrics::increment("local.counter", 2, &[("k", "v")]);
        Metrics::increment("local.counter", 3, &[("k", "v")]);
        Metrics::gauge("local.gauge", 1.5, &[]);
        Metrics::histogram("local.hist", 3.0, &[]);
    });
    let other = Arc::new(MemoryMetricsBackend::new());
    let other_recorder = BackendRecorder::from_arc(other.clone());
    metrics::with_local_recorder(&other_recorder, || {
        Metrics::increment("local.counter", 1, &[("k", "v")]);
    });
    assert_eq!(memory.counter("local.counter", &[("k", "v")]), Some(5));
    assert_eq!(memory.gauge_value("local.gauge", &[]), Some(1.5));
    assert_eq!(memory.histogram_values("local.hist", &[]), vec![3.0]);
    assert_eq!(other.counter("local.counter", &[("k", "v")]), Some(1));
}
