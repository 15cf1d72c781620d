//! The cost of one VM sample: refresh (this process, system memory and CPU, load average,
//! Tokio runtime metrics) and publish (through Vigil's cached handles to a Prometheus backend
//! installed as the global recorder, as `vigil::init` does).
//!
//! At the default interval of 10 s, the share of one core the sampler uses is this cost
//! divided by 10 s; the bench prints it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_metrics_prometheus::PrometheusBackend;
use vigil_vm::{DEFAULT_INTERVAL, VmCollector};

fn install_recorder() {
    let backend = PrometheusBackend::builder()
        .global_label("service", "bench")
        .build()
        .expect("backend");
    metrics::set_global_recorder(backend).expect("the bench's global recorder");
    vigil_core::handles::remember_global_recorder();
}

fn sample(c: &mut Criterion) {
    install_recorder();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    // Every sample reads CPU, as every sample of the sampler does at the default interval.
    let mut collector = VmCollector::with_runtime(Some(runtime.handle().clone()))
        .expect("collector")
        .with_min_cpu_window(Duration::ZERO);

    let mut group = c.benchmark_group("vm_sample");
    group.bench_function("refresh_and_publish", |b| {
        b.iter(|| collector.sample().publish());
    });
    group.bench_function("refresh", |b| b.iter(|| black_box(collector.sample())));
    let published = collector.sample();
    group.bench_function("publish", |b| b.iter(|| published.publish()));
    group.finish();

    // A plain figure beside criterion's, for the share of a core.
    let rounds: u32 = 2000;
    let started = Instant::now();
    for _ in 0..rounds {
        collector.sample().publish();
    }
    let per_sample = started.elapsed() / rounds;
    println!(
        "one sample (refresh and publish): {per_sample:?}; at the default interval of {DEFAULT_INTERVAL:?} \
         that is {:.5} % of one core",
        per_sample.as_secs_f64() / DEFAULT_INTERVAL.as_secs_f64() * 100.0
    );
}

criterion_group!(benches, sample);
criterion_main!(benches);
