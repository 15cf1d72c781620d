//! Helpers for the VM tests: an in-memory recorder, waiting, and promtool (from the Prometheus tests).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::Recorder;
use vigil_core::{BackendRecorder, MemoryMetricsBackend};

/// An in-memory backend and a recorder feeding it, for [`vigil_vm::VmSamplerBuilder::recorder`].
pub fn memory_recorder() -> (Arc<MemoryMetricsBackend>, Arc<dyn Recorder + Send + Sync>) {
    let memory = Arc::new(MemoryMetricsBackend::new());
    let recorder: Arc<dyn Recorder + Send + Sync> = Arc::new(BackendRecorder::from_arc(memory.clone()));
    (memory, recorder)
}

/// Polls `done` every millisecond until it holds; panics with `what` after 10 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The Prometheus tests' helpers (promtool, an exposition parser), shared rather than copied.
#[path = "../../../vigil-metrics-prometheus/tests/common/mod.rs"]
mod prometheus_helpers;

pub use prometheus_helpers::promtool_check;
