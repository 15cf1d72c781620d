//! How the metric costs grow with the number of series: an update round-robin over 1k, 10k and
//! 100k distinct series (Vigil's facade vs prometheus-client vs prometheus), and the time and
//! size of a `/metrics` render of that many counters (Vigil's `PrometheusBackend::render` vs
//! prometheus-client's `encode` vs prometheus's `TextEncoder`).
//!
//! The series are spread over 100 metric names (1,000 label sets each at 100k), two labels
//! each, plus the global labels `service` and `environment`. Render sizes are written for
//! `cargo xtask bench` (see `support/side.rs`). Run with `cargo xtask bench`.

#![allow(clippy::cast_precision_loss)]

#[path = "support/side.rs"]
mod side;

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group};
use metrics::{Key, Label, Metadata, Recorder};
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::family::Family;
use side::Side;
use vigil::Metrics;
use vigil_metrics_prometheus::PrometheusBackend;

/// The series counts compared.
const SERIES: [usize; 3] = [1_000, 10_000, 100_000];
/// Metric names the series are spread over.
const NAMES: usize = 100;
/// Status label values, in turn.
const STATUS: [&str; 3] = ["200", "404", "500"];

static METADATA: Metadata<'static> = Metadata::new("bench", metrics::Level::INFO, None);

type Labels = [(&'static str, &'static str); 2];

/// One series: its metric name (facade and prometheus spelling) and labels.
struct Series {
    name: &'static str,
    prom_name: &'static str,
    labels: Labels,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The first `n` series, built once: series `i` is metric `i % 100` with the `i / 100`th route.
fn series(n: usize) -> Vec<Series> {
    let names: Vec<&'static str> = (0..NAMES).map(|i| leak(format!("bench.scale.{i}"))).collect();
    let prom_names: Vec<&'static str> = (0..NAMES).map(|i| leak(format!("bench_scale_{i}_total"))).collect();
    (0..n)
        .map(|i| Series {
            name: names[i % NAMES],
            prom_name: prom_names[i % NAMES],
            labels: [
                ("route", leak(format!("/api/route/{}", i / NAMES))),
                ("status", STATUS[(i / NAMES) % 3]),
            ],
        })
        .collect()
}

/// The per-metric limit that lets every series of the largest count be its own series.
fn max_series_per_metric() -> usize {
    SERIES[SERIES.len() - 1] / NAMES + 1
}

/// Updates round-robin over `n` series already registered.
fn updates(c: &mut Criterion) {
    let all = series(SERIES[SERIES.len() - 1]);
    let backend = PrometheusBackend::builder()
        .global_label("service", "api")
        .max_series_per_metric(max_series_per_metric())
        .build()
        .expect("backend");
    metrics::set_global_recorder(backend).expect("no recorder installed yet");
    vigil_core::handles::remember_global_recorder();
    let families: Vec<Family<Labels, ClientCounter>> = (0..NAMES).map(|_| Family::default()).collect();
    let vecs: Vec<prometheus::IntCounterVec> = (0..NAMES)
        .map(|i| {
            prometheus::IntCounterVec::new(
                prometheus::Opts::new(all[i].prom_name, "A counter."),
                &["route", "status"],
            )
            .expect("counter vec")
        })
        .collect();

    let mut group = c.benchmark_group("update_across_series");
    for n in SERIES {
        let set = &all[..n];
        // Every series exists before timing.
        for (i, s) in set.iter().enumerate() {
            Metrics::increment(s.name, 1, &s.labels);
            families[i % NAMES].get_or_create(&s.labels).inc();
            vecs[i % NAMES].with_label_values(&[s.labels[0].1, s.labels[1].1]).inc();
        }
        group.bench_with_input(BenchmarkId::new("vigil_facade", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                let s = &set[i];
                Metrics::increment(s.name, 1, black_box(&s.labels));
                i = if i + 1 == n { 0 } else { i + 1 };
            });
        });
        group.bench_with_input(BenchmarkId::new("prometheus_client", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                families[i % NAMES].get_or_create(black_box(&set[i].labels)).inc();
                i = if i + 1 == n { 0 } else { i + 1 };
            });
        });
        group.bench_with_input(BenchmarkId::new("prometheus", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                let labels = &set[i].labels;
                vecs[i % NAMES]
                    .with_label_values(black_box(&[labels[0].1, labels[1].1]))
                    .inc();
                i = if i + 1 == n { 0 } else { i + 1 };
            });
        });
    }
    group.finish();
}

/// `n` counters in a fresh Vigil backend (not the global recorder).
fn vigil_registry(set: &[Series]) -> PrometheusBackend {
    let backend = PrometheusBackend::builder()
        .global_label("service", "api")
        .global_label("environment", "production")
        .max_series_per_metric(max_series_per_metric())
        .build()
        .expect("backend");
    for (i, s) in set.iter().enumerate() {
        let labels = vec![
            Label::new(s.labels[0].0, s.labels[0].1),
            Label::new(s.labels[1].0, s.labels[1].1),
        ];
        backend
            .register_counter(&Key::from_parts(s.name, labels), &METADATA)
            .increment(i as u64);
    }
    backend
}

/// The same counters in prometheus-client.
fn client_registry(set: &[Series]) -> prometheus_client::registry::Registry {
    let mut registry = prometheus_client::registry::Registry::with_labels(
        [
            (Cow::Borrowed("service"), Cow::Borrowed("api")),
            (Cow::Borrowed("environment"), Cow::Borrowed("production")),
        ]
        .into_iter(),
    );
    let families: Vec<Family<Labels, ClientCounter>> = (0..NAMES).map(|_| Family::default()).collect();
    for (i, family) in families.iter().enumerate() {
        // prometheus-client appends `_total` itself.
        registry.register(format!("bench_scale_{i}"), "A counter.", family.clone());
    }
    for (i, s) in set.iter().enumerate() {
        families[i % NAMES].get_or_create(&s.labels).inc_by(i as u64);
    }
    registry
}

/// The same counters in prometheus.
fn prometheus_registry(set: &[Series]) -> prometheus::Registry {
    let globals = [("service", "api"), ("environment", "production")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let registry = prometheus::Registry::new_custom(None, Some(globals)).expect("registry");
    let vecs: Vec<prometheus::IntCounterVec> = (0..NAMES.min(set.len()))
        .map(|i| {
            let vec = prometheus::IntCounterVec::new(
                prometheus::Opts::new(set[i].prom_name, "A counter."),
                &["route", "status"],
            )
            .expect("counter vec");
            registry.register(Box::new(vec.clone())).expect("register");
            vec
        })
        .collect();
    for (i, s) in set.iter().enumerate() {
        vecs[i % NAMES]
            .with_label_values(&[s.labels[0].1, s.labels[1].1])
            .inc_by(i as u64);
    }
    registry
}

fn client_render(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encode");
    out
}

fn prometheus_render(registry: &prometheus::Registry) -> String {
    let mut out = String::new();
    prometheus::TextEncoder::new()
        .encode_utf8(&registry.gather(), &mut out)
        .expect("encode");
    out
}

/// Render time (criterion) and size (written aside) at each series count.
fn render(c: &mut Criterion) {
    let all = series(SERIES[SERIES.len() - 1]);
    let mut sizes = Vec::new();
    let mut group = c.benchmark_group("render_series");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in SERIES {
        let set = &all[..n];
        let vigil = vigil_registry(set);
        sizes.push(Side::new(
            "render_size",
            format!("vigil/{n}"),
            "bytes",
            vigil.render().len() as f64,
        ));
        group.bench_with_input(BenchmarkId::new("vigil", n), &n, |b, _| b.iter(|| vigil.render()));
        drop(vigil);
        let client = client_registry(set);
        let size = client_render(&client).len() as f64;
        sizes.push(Side::new(
            "render_size",
            format!("prometheus_client/{n}"),
            "bytes",
            size,
        ));
        group.bench_with_input(BenchmarkId::new("prometheus_client", n), &n, |b, _| {
            b.iter(|| client_render(&client));
        });
        drop(client);
        let prom = prometheus_registry(set);
        let size = prometheus_render(&prom).len() as f64;
        sizes.push(Side::new("render_size", format!("prometheus/{n}"), "bytes", size));
        group.bench_with_input(BenchmarkId::new("prometheus", n), &n, |b, _| {
            b.iter(|| prometheus_render(&prom));
        });
    }
    group.finish();
    side::publish(&sizes);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    targets = updates, render
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
