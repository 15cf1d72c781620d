//! The Prometheus backend's two costs: an update through a cached handle (the caller's hot
//! path) and a render of the whole registry (a scrape), each next to its peers:
//! metrics-exporter-prometheus's own recorder and prometheus-client.
//!
//! Run with `cargo bench -p vigil-metrics-prometheus --bench backend`.

#![allow(clippy::cast_precision_loss, clippy::missing_docs_in_private_items, missing_docs)]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as ClientHistogram;
use prometheus_client::registry::Registry;
use vigil_metrics_prometheus::{PrometheusBackend, duration_buckets_seconds};

static METADATA: Metadata<'static> = Metadata::new("bench", metrics::Level::INFO, None);

/// Metric names the render benchmarks spread their series over.
const NAMES: usize = 100;

/// Values recorded in turn: a spread of request durations in milliseconds.
const VALUES_MS: [f64; 16] = [
    0.4, 1.5, 3.0, 7.0, 12.0, 18.0, 27.0, 42.0, 66.0, 95.0, 140.0, 230.0, 480.0, 900.0, 2_400.0, 12_000.0,
];

fn backend() -> PrometheusBackend {
    PrometheusBackend::builder()
        .global_label("service", "api")
        .global_label("environment", "production")
        .max_series_per_metric(10_000)
        .build()
        .expect("backend")
}

fn exporter() -> (PrometheusRecorder, PrometheusHandle) {
    let recorder = PrometheusBuilder::new()
        .with_recommended_naming(true)
        .set_buckets(&duration_buckets_seconds())
        .expect("buckets")
        .add_global_label("service", "api")
        .add_global_label("environment", "production")
        .build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

fn labels(i: usize) -> Vec<Label> {
    vec![
        Label::new("route", format!("/api/route/{i}")),
        Label::new("status", ["200", "404", "500"][i % 3]),
    ]
}

/// Records through `record` in chunks, timing only the records and running `upkeep` (not
/// timed) between chunks, so the exporter's sample buffers do not grow without bound.
fn timed_records(iters: u64, record: &dyn Fn(f64), upkeep: &dyn Fn()) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    let mut i = 0usize;
    while left > 0 {
        let chunk = left.min(1 << 16);
        let start = Instant::now();
        for _ in 0..chunk {
            record(black_box(VALUES_MS[i & 15]));
            i = i.wrapping_add(1);
        }
        elapsed += start.elapsed();
        upkeep();
        left -= chunk;
    }
    elapsed
}

fn updates(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram_record");
    let vigil = backend();
    let key = Key::from_parts("http.request.duration", labels(1));
    let ms = vigil.register_histogram(&key, &METADATA);
    group.bench_function("vigil_ms_to_seconds", |b| {
        b.iter_custom(|iters| timed_records(iters, &|v| ms.record(v), &|| {}));
    });
    let plain = vigil.register_histogram(&Key::from_parts("bench.plain", labels(1)), &METADATA);
    group.bench_function("vigil_unitless", |b| {
        b.iter_custom(|iters| timed_records(iters, &|v| plain.record(v), &|| {}));
    });
    let (recorder, handle) = exporter();
    let exported = recorder.register_histogram(&Key::from_parts("bench_seconds", labels(1)), &METADATA);
    group.bench_function("exporter_prometheus", |b| {
        b.iter_custom(|iters| timed_records(iters, &|v| exported.record(v / 1000.0), &|| handle.run_upkeep()));
    });
    let client = ClientHistogram::new(duration_buckets_seconds());
    group.bench_function("prometheus_client", |b| {
        b.iter_custom(|iters| timed_records(iters, &|v| client.observe(v / 1000.0), &|| {}));
    });
    group.finish();

    let mut group = c.benchmark_group("handle_update");
    let counter = vigil.register_counter(&Key::from_parts("bench.counter", labels(1)), &METADATA);
    group.bench_function("vigil_counter_increment", |b| {
        b.iter(|| black_box(&counter).increment(1));
    });
    let gauge = vigil.register_gauge(&Key::from_parts("bench.gauge", labels(1)), &METADATA);
    group.bench_function("vigil_gauge_increment", |b| b.iter(|| black_box(&gauge).increment(1.0)));
    group.bench_function("vigil_gauge_set", |b| b.iter(|| black_box(&gauge).set(black_box(3.0))));
    group.finish();

    let mut group = c.benchmark_group("register_existing");
    let key = Key::from_parts("bench.counter", labels(1));
    group.bench_function("vigil_counter", |b| {
        b.iter(|| vigil.register_counter(black_box(&key), &METADATA));
    });
    group.finish();
}

/// `series` counters over [`NAMES`] names, in Vigil's backend.
fn vigil_counters(series: usize) -> PrometheusBackend {
    let vigil = backend();
    for i in 0..series {
        let key = Key::from_parts(format!("bench.render.{}", i % NAMES), labels(i / NAMES));
        vigil.register_counter(&key, &METADATA).increment(i as u64);
    }
    vigil
}

/// The same counters in metrics-exporter-prometheus's own recorder.
fn exporter_counters(series: usize) -> (PrometheusRecorder, PrometheusHandle) {
    let (recorder, handle) = exporter();
    for i in 0..series {
        let name = format!("bench_render_{}", i % NAMES);
        if i < NAMES {
            recorder.describe_counter(name.clone().into(), None, "A counter.".into());
        }
        recorder
            .register_counter(&Key::from_parts(name, labels(i / NAMES)), &METADATA)
            .increment(i as u64);
    }
    (recorder, handle)
}

type ClientLabels = Vec<(&'static str, String)>;

fn client_labels(i: usize) -> ClientLabels {
    vec![
        ("route", format!("/api/route/{i}")),
        ("status", ["200", "404", "500"][i % 3].to_owned()),
    ]
}

fn client_registry() -> Registry {
    Registry::with_labels(
        [
            (Cow::Borrowed("service"), Cow::Borrowed("api")),
            (Cow::Borrowed("environment"), Cow::Borrowed("production")),
        ]
        .into_iter(),
    )
}

/// The same counters in prometheus-client.
fn client_counters(series: usize) -> Registry {
    let mut registry = client_registry();
    let families: Vec<Family<ClientLabels, ClientCounter>> = (0..NAMES).map(|_| Family::default()).collect();
    for (n, family) in families.iter().enumerate() {
        registry.register(format!("bench_render_{n}"), "A counter.", family.clone());
    }
    for i in 0..series {
        families[i % NAMES]
            .get_or_create(&client_labels(i / NAMES))
            .inc_by(i as u64);
    }
    registry
}

fn client_histogram() -> ClientHistogram {
    ClientHistogram::new(duration_buckets_seconds())
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_counters");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for series in [1_000, 10_000, 100_000] {
        let vigil = vigil_counters(series);
        group.bench_with_input(BenchmarkId::new("vigil", series), &series, |b, _| {
            b.iter(|| vigil.render());
        });
        drop(vigil);
        let (recorder, handle) = exporter_counters(series);
        group.bench_with_input(BenchmarkId::new("exporter_prometheus", series), &series, |b, _| {
            b.iter(|| handle.render());
        });
        drop((recorder, handle));
        let registry = client_counters(series);
        group.bench_with_input(BenchmarkId::new("prometheus_client", series), &series, |b, _| {
            b.iter(|| {
                let mut out = String::new();
                encode(&mut out, &registry).expect("encode");
                out
            });
        });
    }
    group.finish();

    // Histograms: 1,000 series of 17 lines each (14 buckets, +Inf, _sum, _count).
    let mut group = c.benchmark_group("render_histograms");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let series = 1_000;
    let vigil = backend();
    for i in 0..series {
        let key = Key::from_parts("http.request.duration", labels(i));
        let h = vigil.register_histogram(&key, &METADATA);
        for v in VALUES_MS {
            h.record(v);
        }
    }
    group.bench_with_input(BenchmarkId::new("vigil", series), &series, |b, _| {
        b.iter(|| vigil.render());
    });
    let (recorder, handle) = exporter();
    for i in 0..series {
        let h = recorder.register_histogram(&Key::from_parts("http_request_duration_seconds", labels(i)), &METADATA);
        for v in VALUES_MS {
            h.record(v / 1000.0);
        }
    }
    group.bench_with_input(BenchmarkId::new("exporter_prometheus", series), &series, |b, _| {
        b.iter(|| {
            handle.run_upkeep();
            handle.render()
        });
    });
    let mut registry = client_registry();
    let family: Family<ClientLabels, ClientHistogram> = Family::new_with_constructor(client_histogram);
    registry.register("http_request_duration_seconds", "Durations.", family.clone());
    for i in 0..series {
        let h = family.get_or_create(&client_labels(i));
        for v in VALUES_MS {
            h.observe(v / 1000.0);
        }
    }
    group.bench_with_input(BenchmarkId::new("prometheus_client", series), &series, |b, _| {
        b.iter(|| {
            let mut out = String::new();
            encode(&mut out, &registry).expect("encode");
            out
        });
    });
    group.finish();
}

criterion_group!(benches, updates, render);
criterion_main!(benches);
