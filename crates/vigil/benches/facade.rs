//! A counter increment with two labels: Vigil's facade, the raw `metrics` macro on the same
//! recorder, a pre-registered handle, prometheus-client's `get_or_create`, and a bare atomic.
//! Run with `cargo xtask bench`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use vigil::Metrics;
use vigil::config::{Config, MetricsBackendKind, Port};

fn install() -> vigil::Guard {
    let mut config = Config::default();
    config.logger_backends.clear();
    config.metrics_backends = vec![MetricsBackendKind::Prometheus];
    "127.0.0.1".clone_into(&mut config.prometheus.host);
    config.prometheus.port = Port(0);
    vigil::Vigil::builder().config(config).install().expect("install vigil")
}

fn bench(c: &mut Criterion) {
    let _guard = install();
    let mut group = c.benchmark_group("counter_2_labels");
    group.bench_function("vigil_facade", |b| {
        b.iter(|| {
            Metrics::increment(
                "bench.facade",
                1,
                black_box(&[("route", "/api/comments"), ("status", "200")]),
            );
        });
    });
    group.bench_function("metrics_macro", |b| {
        b.iter(|| {
            metrics::counter!("bench.macro", "route" => black_box("/api/comments"), "status" => black_box("200"))
                .increment(1);
        });
    });
    let handle = metrics::counter!("bench.handle", "route" => "/api/comments", "status" => "200");
    group.bench_function("metrics_handle", |b| b.iter(|| black_box(&handle).increment(1)));
    let family: Family<[(&'static str, &'static str); 2], Counter> = Family::default();
    group.bench_function("prometheus_client", |b| {
        b.iter(|| {
            family
                .get_or_create(black_box(&[("route", "/api/comments"), ("status", "200")]))
                .inc();
        });
    });
    let atomic = AtomicU64::new(0);
    group.bench_function("atomic_add", |b| {
        b.iter(|| black_box(&atomic).fetch_add(1, Ordering::Relaxed));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
