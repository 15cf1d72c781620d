//! With the `vm` feature, `vigil::init` starts the VM sampler and the guard stops it.

#![cfg(feature = "vm")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil::config::{Config, IntervalSeconds};
use vigil::{MemoryMetricsBackend, Metrics, Vigil};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_samples_vm_metrics_until_the_guard_stops() {
    let mut config = Config::load_with(|_| None).unwrap();
    config.logger_backends.clear();
    config.metrics_backends.clear();
    config.vm.interval = IntervalSeconds(1);
    let metrics = Arc::new(MemoryMetricsBackend::new());
    let guard = Vigil::builder()
        .config(config)
        .metrics_backend(metrics.clone())
        .install()
        .expect("install");

    let started = Instant::now();
    while metrics.gauge_value("tokio.workers", &[]).is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "no VM sample");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(metrics.gauge_value("tokio.workers", &[]), Some(2.0));
    assert!(metrics.gauge_value("process.memory.resident", &[]).unwrap() > 0.0);
    assert!(metrics.description("process.memory.resident").is_some());

    let stopping = Instant::now();
    assert!(guard.shutdown(Duration::from_secs(5)));
    assert!(stopping.elapsed() < Duration::from_secs(1), "{:?}", stopping.elapsed());
    // Stopped: a value set now is not overwritten by a later sample.
    Metrics::gauge("process.uptime", -1.0, &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(metrics.gauge_value("process.uptime", &[]), Some(-1.0));
}
