//! The metric update hot path: a counter, a gauge and a histogram, each with 0, 2 and 5 labels,
//! updated through Vigil's facade (`vigil::Metrics`), the raw `metrics` macros on the same
//! recorder, a pre-registered handle, prometheus-client (`Family::get_or_create`) and
//! prometheus (`with_label_values`); a bare atomic add as the floor; and the same counter
//! hammered by two threads at once.
//!
//! Vigil's Prometheus recorder is installed globally and remembered for the handle cache, as
//! `vigil::init` does. Run with `cargo xtask bench` (or `cargo bench -p vigil --bench facade`).

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Bencher, BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as ClientGauge;
use prometheus_client::metrics::histogram::Histogram as ClientHistogram;
use vigil::Metrics;
use vigil_metrics_prometheus::{PrometheusBackend, duration_buckets_seconds};

/// The labels of the labelled benches: the first 0, 2 or 5 of these.
const LABELS: [(&str, &str); 5] = [
    ("route", "/api/comments"),
    ("status", "201"),
    ("method", "POST"),
    ("region", "us-east"),
    ("instance", "api-1"),
];

/// Values recorded in turn into the histograms (seconds).
const VALUES: [f64; 8] = [0.0004, 0.003, 0.012, 0.027, 0.066, 0.14, 0.48, 2.4];

type Labels<const N: usize> = [(&'static str, &'static str); N];

fn labels<const N: usize>() -> Labels<N> {
    std::array::from_fn(|i| LABELS[i])
}

fn label_names<const N: usize>() -> [&'static str; N] {
    std::array::from_fn(|i| LABELS[i].0)
}

fn label_values<const N: usize>() -> [&'static str; N] {
    std::array::from_fn(|i| LABELS[i].1)
}

/// A metric name that lives for the whole run (the macros take `&'static str` without copying).
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// Vigil's Prometheus recorder, installed globally and remembered as `vigil::init` does.
fn install() {
    let backend = PrometheusBackend::builder()
        .global_label("service", "bench")
        .build()
        .expect("backend");
    metrics::set_global_recorder(backend).expect("no recorder installed yet");
    vigil_core::handles::remember_global_recorder();
}

/// Times `record` over the [`VALUES`] in turn.
fn histogram_bench(b: &mut Bencher<'_>, record: &dyn Fn(f64)) {
    let mut i = 0usize;
    b.iter(|| {
        record(black_box(VALUES[i & 7]));
        i = i.wrapping_add(1);
    });
}

fn counters<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let labels = labels::<N>();
    let facade = leak(format!("bench.counter{N}.facade"));
    group.bench_function("vigil_facade", |b| {
        b.iter(|| Metrics::increment(facade, 1, black_box(&labels)));
    });
    let name = leak(format!("bench.counter{N}.macro"));
    if N == 0 {
        group.bench_function("metrics_macro", |b| {
            b.iter(|| metrics::counter!(black_box(name)).increment(1));
        });
    } else {
        group.bench_function("metrics_macro", |b| {
            b.iter(|| metrics::counter!(name, black_box(&labels)).increment(1));
        });
    }
    let handle = metrics::counter!(leak(format!("bench.counter{N}.handle")), &labels);
    group.bench_function("metrics_handle", |b| b.iter(|| black_box(&handle).increment(1)));
    let family: Family<Labels<N>, ClientCounter> = Family::default();
    group.bench_function("prometheus_client", |b| {
        b.iter(|| family.get_or_create(black_box(&labels)).inc());
    });
    let vec = prometheus::IntCounterVec::new(
        prometheus::Opts::new(format!("bench_counter{N}_total"), "A counter."),
        &label_names::<N>(),
    )
    .expect("counter vec");
    let values = label_values::<N>();
    group.bench_function("prometheus", |b| {
        b.iter(|| vec.with_label_values(black_box(&values)).inc());
    });
    if N == 2 {
        let atomic = AtomicU64::new(0);
        group.bench_function("atomic_add", |b| {
            b.iter(|| black_box(&atomic).fetch_add(1, Ordering::Relaxed));
        });
    }
}

fn gauges<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let labels = labels::<N>();
    let facade = leak(format!("bench.gauge{N}.facade"));
    group.bench_function("vigil_facade", |b| {
        b.iter(|| Metrics::gauge(facade, black_box(42.0), black_box(&labels)));
    });
    let name = leak(format!("bench.gauge{N}.macro"));
    if N == 0 {
        group.bench_function("metrics_macro", |b| {
            b.iter(|| metrics::gauge!(black_box(name)).set(black_box(42.0)));
        });
    } else {
        group.bench_function("metrics_macro", |b| {
            b.iter(|| metrics::gauge!(name, black_box(&labels)).set(black_box(42.0)));
        });
    }
    let handle = metrics::gauge!(leak(format!("bench.gauge{N}.handle")), &labels);
    group.bench_function("metrics_handle", |b| b.iter(|| black_box(&handle).set(black_box(42.0))));
    let family: Family<Labels<N>, ClientGauge<f64, AtomicU64>> = Family::default();
    group.bench_function("prometheus_client", |b| {
        b.iter(|| family.get_or_create(black_box(&labels)).set(black_box(42.0)));
    });
    let vec = prometheus::GaugeVec::new(
        prometheus::Opts::new(format!("bench_gauge{N}"), "A gauge."),
        &label_names::<N>(),
    )
    .expect("gauge vec");
    let values = label_values::<N>();
    group.bench_function("prometheus", |b| {
        b.iter(|| vec.with_label_values(black_box(&values)).set(black_box(42.0)));
    });
}

fn client_histogram() -> ClientHistogram {
    ClientHistogram::new(duration_buckets_seconds())
}

fn histograms<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let labels = labels::<N>();
    let facade = leak(format!("bench.histogram{N}.facade"));
    group.bench_function("vigil_facade", |b| {
        histogram_bench(b, &|v| Metrics::histogram(facade, v, black_box(&labels)));
    });
    let name = leak(format!("bench.histogram{N}.macro"));
    if N == 0 {
        group.bench_function("metrics_macro", |b| {
            histogram_bench(b, &|v| metrics::histogram!(black_box(name)).record(v));
        });
    } else {
        group.bench_function("metrics_macro", |b| {
            histogram_bench(b, &|v| metrics::histogram!(name, black_box(&labels)).record(v));
        });
    }
    let handle = metrics::histogram!(leak(format!("bench.histogram{N}.handle")), &labels);
    group.bench_function("metrics_handle", |b| {
        histogram_bench(b, &|v| black_box(&handle).record(v));
    });
    let family: Family<Labels<N>, ClientHistogram> = Family::new_with_constructor(client_histogram);
    group.bench_function("prometheus_client", |b| {
        histogram_bench(b, &|v| family.get_or_create(black_box(&labels)).observe(v));
    });
    let vec = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(format!("bench_histogram{N}"), "A histogram.")
            .buckets(duration_buckets_seconds()),
        &label_names::<N>(),
    )
    .expect("histogram vec");
    let values = label_values::<N>();
    group.bench_function("prometheus", |b| {
        histogram_bench(b, &|v| vec.with_label_values(black_box(&values)).observe(v));
    });
}

fn hot_path(c: &mut Criterion) {
    install();
    macro_rules! groups {
        ($($n:literal),*) => {$(
            let mut group = c.benchmark_group(concat!("counter_", $n, "_labels"));
            counters::<$n>(&mut group);
            group.finish();
            let mut group = c.benchmark_group(concat!("gauge_", $n, "_labels"));
            gauges::<$n>(&mut group);
            group.finish();
            let mut group = c.benchmark_group(concat!("histogram_", $n, "_labels"));
            histograms::<$n>(&mut group);
            group.finish();
        )*};
    }
    groups!(0, 2, 5);
    contention(c);
}

/// Runs `op` `iters` times on this thread and on a second one at once; returns the wall time
/// until both are done, so `elapsed / iters` is the cost of one update per thread while the
/// other thread updates the same series.
fn two_threads(iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            barrier.wait();
            for _ in 0..iters {
                op();
            }
        });
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        other.join().expect("second thread");
        start.elapsed()
    })
}

/// The counter with two labels, updated by two threads at once (the same series).
fn contention(c: &mut Criterion) {
    let labels = labels::<2>();
    let mut group = c.benchmark_group("counter_2_labels_2_threads");
    group.bench_function("vigil_facade", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                Metrics::increment("bench.contended.facade", 1, black_box(&labels));
            })
        });
    });
    let handle = metrics::counter!("bench.contended.handle", &labels);
    group.bench_function("metrics_handle", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| black_box(&handle).increment(1)));
    });
    let family: Family<Labels<2>, ClientCounter> = Family::default();
    group.bench_function("prometheus_client", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                family.get_or_create(black_box(&labels)).inc();
            })
        });
    });
    let vec = prometheus::IntCounterVec::new(
        prometheus::Opts::new("bench_contended_total", "A counter."),
        &label_names::<2>(),
    )
    .expect("counter vec");
    let values = label_values::<2>();
    group.bench_function("prometheus", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| vec.with_label_values(black_box(&values)).inc()));
    });
    let atomic = AtomicU64::new(0);
    group.bench_function("atomic_add", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(&atomic).fetch_add(1, Ordering::Relaxed);
            })
        });
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
