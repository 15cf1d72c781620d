//! The VM collector and sampler: plausible values, Tokio figures, prompt stop, and output that
//! promtool accepts.

#![allow(clippy::float_cmp, clippy::cast_precision_loss)] // small whole numbers

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{memory_recorder, promtool_check, wait_until};
use vigil_metrics_prometheus::PrometheusBackend;
use vigil_vm::{VmCollector, VmError, VmSample, VmSampler};

const WORKERS: usize = 3;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .unwrap()
}

/// Two samples far enough apart for CPU usage to be read.
fn two_samples(collector: &mut VmCollector) -> (VmSample, VmSample) {
    let first = collector.sample();
    // Burn a little CPU so the process's usage is above 0.
    let until = Instant::now() + Duration::from_millis(250);
    let mut x = 0u64;
    while Instant::now() < until {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    (first, collector.sample())
}

#[test]
fn a_sample_reads_plausible_values() {
    let rt = runtime();
    let mut collector = VmCollector::with_runtime(Some(rt.handle().clone())).unwrap();
    assert!(collector.has_runtime());
    let (first, second) = two_samples(&mut collector);

    // Taken right after the collector's first CPU reading: no CPU usage rather than a bogus one.
    assert_eq!(first.process.cpu_usage, None);
    assert_eq!(first.system.cpu_usage, None);
    let cpu = second.process.cpu_usage.expect("CPU usage on the second sample");
    assert!(cpu > 0.0 && cpu < 64.0, "process CPU {cpu} cores");
    let system_cpu = second.system.cpu_usage.expect("system CPU usage");
    assert!((0.0..=1.0).contains(&system_cpu), "system CPU {system_cpu}");

    let p = &second.process;
    assert!(p.resident_memory_bytes > 1 << 20, "{p:?}");
    assert!(p.virtual_memory_bytes >= p.resident_memory_bytes, "{p:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        p.start_time_seconds <= now && p.start_time_seconds > now - 3600,
        "{p:?}"
    );
    assert!(p.uptime_seconds < 3600, "{p:?}");
    if cfg!(target_os = "linux") {
        // This thread and the runtime's workers at least.
        assert!(p.threads.unwrap() > WORKERS as u64, "{p:?}");
        // stdin, stdout, stderr at least.
        assert!(p.open_fds.unwrap() >= 3, "{p:?}");
    }

    let s = &second.system;
    assert!(
        s.memory_used_bytes > 0 && s.memory_total_bytes >= s.memory_used_bytes,
        "{s:?}"
    );
    if cfg!(unix) {
        let load = s.load_average.unwrap();
        assert!(load.one >= 0.0 && load.five >= 0.0 && load.fifteen >= 0.0, "{load:?}");
    }

    let t = second.tokio.as_ref().unwrap();
    assert_eq!(t.workers, WORKERS);
    assert_eq!(t.global_queue_depth, 0);
    let busy = t.busy_ratio.expect("busy ratio on the second sample");
    assert!((0.0..=1.0).contains(&busy), "{busy}");
    assert!(first.tokio.as_ref().unwrap().busy_ratio.is_none());
}

#[test]
fn alive_tasks_count_a_pending_task() {
    let rt = runtime();
    let mut collector = VmCollector::with_runtime(Some(rt.handle().clone())).unwrap();
    let before = collector.sample().tokio.unwrap().alive_tasks;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(async move {
        let _ = rx.await;
    });
    assert_eq!(collector.sample().tokio.unwrap().alive_tasks, before + 1);
    tx.send(()).unwrap();
    rt.block_on(task).unwrap();
    // The join handle wakes before the worker has released the finished task, so the count
    // reaches `before` a moment after `block_on` returns.
    wait_until("the finished task to leave the count", || {
        collector.sample().tokio.unwrap().alive_tasks == before
    });
}

#[test]
fn outside_a_runtime_there_are_no_tokio_figures() {
    let mut collector = VmCollector::new().unwrap();
    assert!(!collector.has_runtime());
    assert_eq!(collector.sample().tokio, None);

    let (memory, recorder) = memory_recorder();
    let sampler = VmSampler::builder().recorder(recorder).start().unwrap();
    wait_until("a sample", || sampler.samples() >= 1);
    sampler.stop();
    assert!(memory.gauge_value("process.memory.resident", &[]).unwrap() > 0.0);
    assert_eq!(memory.gauge_value("tokio.workers", &[]), None);
}

#[test]
fn the_sampler_publishes_every_interval() {
    let rt = runtime();
    let _entered = rt.enter();
    let (memory, recorder) = memory_recorder();
    let sampler = VmSampler::builder()
        .interval(Duration::from_millis(50))
        .recorder(recorder)
        .start()
        .unwrap();
    // 50 ms ticks: CPU usage appears once 200 ms have passed since the first reading.
    wait_until("CPU usage", || memory.gauge_value("process.cpu.usage", &[]).is_some());
    let taken = sampler.samples();
    assert!(taken >= 2, "{taken} samples");
    wait_until("two more samples", || sampler.samples() >= taken + 2);
    sampler.stop();

    let gauge = |name: &str| memory.gauge_value(name, &[]).unwrap_or_else(|| panic!("no {name}"));
    assert!(gauge("process.memory.resident") > 0.0);
    assert!(gauge("process.memory.virtual") > 0.0);
    assert!(gauge("process.start_time") > 1.6e9);
    assert!(gauge("process.uptime") >= 0.0);
    assert!(gauge("system.memory.total") >= gauge("system.memory.used"));
    assert!(gauge("system.memory.used") > 0.0);
    assert!((0.0..=1.0).contains(&gauge("system.cpu.usage")));
    assert!(gauge("process.cpu.usage") >= 0.0);
    if cfg!(target_os = "linux") {
        assert!(gauge("process.threads") >= 1.0);
        assert!(gauge("process.open_fds") >= 3.0);
    }
    if cfg!(unix) {
        for period in ["1m", "5m", "15m"] {
            assert!(memory.gauge_value("system.load", &[("period", period)]).unwrap() >= 0.0);
        }
    }
    assert_eq!(gauge("tokio.workers"), WORKERS as f64);
    assert!(gauge("tokio.tasks.alive") >= 0.0);
    assert_eq!(gauge("tokio.queue.depth"), 0.0);
    assert!((0.0..=1.0).contains(&gauge("tokio.workers.busy")));
    assert!(memory.counter("tokio.worker.parks", &[]).is_some());
}

#[test]
fn stop_returns_promptly_and_drop_stops_the_thread() {
    let (_, recorder) = memory_recorder();
    let sampler = VmSampler::builder()
        .interval(Duration::from_secs(10))
        .recorder(recorder.clone())
        .start()
        .unwrap();
    wait_until("the first sample", || sampler.samples() >= 1);
    let started = Instant::now();
    sampler.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        started.elapsed()
    );
    // The thread held the other reference; it has finished.
    assert_eq!(Arc::strong_count(&recorder), 1);

    let sampler = VmSampler::builder()
        .interval(Duration::from_secs(10))
        .recorder(recorder.clone())
        .start()
        .unwrap();
    wait_until("the first sample", || sampler.samples() >= 1);
    assert_eq!(Arc::strong_count(&recorder), 2);
    let started = Instant::now();
    drop(sampler);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        started.elapsed()
    );
    assert_eq!(Arc::strong_count(&recorder), 1);
}

#[test]
fn bad_intervals_are_rejected() {
    for interval in [Duration::ZERO, Duration::from_secs(3601)] {
        let err = VmSampler::builder().interval(interval).start().unwrap_err();
        assert!(matches!(err, VmError::Interval(i) if i == interval), "{err}");
        assert!(err.to_string().contains("expected 1 ms to 1 hour"), "{err}");
    }
}

#[test]
fn prometheus_output_passes_promtool() {
    let rt = runtime();
    let backend = PrometheusBackend::builder()
        .global_label("service", "svc")
        .global_label("environment", "test")
        .build()
        .unwrap();
    let mut collector = VmCollector::with_runtime(Some(rt.handle().clone())).unwrap();
    let (first, second) = two_samples(&mut collector);
    metrics::with_local_recorder(&backend, || {
        first.publish();
        second.publish();
    });
    let text = backend.render();
    let g = r#"{service="svc",environment="test""#;
    for series in [
        "process_cpu_usage",
        "process_memory_resident_bytes",
        "process_memory_virtual_bytes",
        "process_start_time_seconds",
        "process_uptime_seconds",
        "system_cpu_usage",
        "system_memory_used_bytes",
        "system_memory_total_bytes",
        "tokio_workers",
        "tokio_tasks_alive",
        "tokio_queue_depth",
        "tokio_workers_busy",
        "tokio_worker_parks_total",
    ] {
        assert!(text.contains(&format!("\n{series}{g}}} ")), "no {series} in\n{text}");
        assert!(
            text.contains(&format!("# HELP {series} ")),
            "no HELP for {series} in\n{text}"
        );
    }
    if cfg!(target_os = "linux") {
        assert!(text.contains(&format!("\nprocess_threads{g}}} ")), "{text}");
        assert!(text.contains(&format!("\nprocess_open_fds{g}}} ")), "{text}");
    }
    if cfg!(unix) {
        assert!(text.contains(&format!("\nsystem_load{g},period=\"15m\"}} ")), "{text}");
    }
    assert!(text.contains(&format!("\ntokio_workers{g}}} {WORKERS}\n")), "{text}");
    if let Some(lint) = promtool_check(&text) {
        assert_eq!(lint, "", "promtool check metrics:\n{lint}\non:\n{text}");
    }
}
