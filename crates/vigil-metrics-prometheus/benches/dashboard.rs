//! The cost of one live-dashboard sample (render the registry, scan the catalogue metrics the
//! charts need, derive one point) with 1,000 series: 200 HTTP label sets with a counter and a
//! histogram each, 600 application counters and gauges. The server takes one sample a
//! second, so this is its background cost.
//!
//! Run with `cargo bench -p vigil-metrics-prometheus --bench dashboard`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_core::catalogue;
use vigil_metrics_prometheus::{DashboardHistory, DashboardOptions, PrometheusBackend};

/// A registry with the 1,000 series.
fn populated() -> PrometheusBackend {
    let backend = PrometheusBackend::builder()
        .global_label("service", "bench")
        .global_label("environment", "bench")
        .build()
        .expect("backend");
    metrics::with_local_recorder(&backend, || {
        for route in 0..100 {
            for status in ["200", "500"] {
                let tags = [
                    ("route", format!("/api/r{route}/{{id}}")),
                    ("method", "GET".to_owned()),
                    ("status", status.to_owned()),
                ];
                metrics::counter!(catalogue::HTTP_REQUEST_COUNT.name, &tags).increment(3);
                metrics::histogram!(catalogue::HTTP_REQUEST_DURATION.name, &tags).record(12.0);
            }
        }
        for id in 0..300 {
            metrics::counter!("app.events", "id" => id.to_string()).increment(1);
            metrics::gauge!("app.level", "id" => id.to_string()).set(1.0);
        }
    });
    backend
}

fn sample(c: &mut Criterion) {
    let backend = populated();
    let mut group = c.benchmark_group("dashboard_sample_1000_series");
    group.bench_function("render_only", |b| b.iter(|| black_box(backend.render())));
    let history = DashboardHistory::new(backend.clone(), DashboardOptions::default());
    let mut at = 0u64;
    group.bench_function("render_scan_derive", |b| {
        b.iter(|| {
            at += 1;
            history.sample(Duration::from_secs(at));
        });
    });
    group.finish();
}

criterion_group!(benches, sample);
criterion_main!(benches);
