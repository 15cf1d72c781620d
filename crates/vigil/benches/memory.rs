//! Memory per series, measured with a counting global allocator: the bytes that stay allocated
//! after registering N counters (two labels each, spread over 100 names) and updating each once,
//! divided by N — for Vigil's Prometheus recorder, prometheus-client and prometheus.
//!
//! Then the cardinality limit: registering twice the per-metric limit of label sets in one
//! metric of Vigil's recorder, the second half must fold into the overflow series and keep
//! (almost) nothing.
//!
//! Results are printed and written for `cargo xtask bench` (see `support/side.rs`). Run with
//! `cargo xtask bench` (or `cargo bench -p vigil --bench memory`).

#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]

#[path = "support/side.rs"]
mod side;

use std::alloc::System;

use metrics::{Key, Label, Metadata, Recorder};
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::family::Family;
use side::Side;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use vigil_metrics_prometheus::{DEFAULT_MAX_SERIES_PER_METRIC, PrometheusBackend};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The series counts measured.
const SERIES: [usize; 3] = [1_000, 10_000, 100_000];
/// Metric names the series are spread over.
const NAMES: usize = 100;
/// Status label values, in turn.
const STATUS: [&str; 3] = ["200", "404", "500"];

static METADATA: Metadata<'static> = Metadata::new("bench", metrics::Level::INFO, None);

/// Net bytes and allocations that `work` leaves allocated.
fn retained(work: impl FnOnce()) -> (f64, f64) {
    let region = Region::new(GLOBAL);
    work();
    let change = region.change();
    let bytes = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    let allocations = change.allocations as isize - change.deallocations as isize;
    (bytes as f64, allocations as f64)
}

fn route(i: usize) -> String {
    format!("/api/route/{}", i / NAMES)
}

fn status(i: usize) -> &'static str {
    STATUS[(i / NAMES) % 3]
}

/// Per series retained by Vigil's recorder for `n` series (names interned beforehand, as the
/// `&'static str` names of macros and collectors are).
fn vigil(n: usize, names: &[&'static str]) -> (f64, f64) {
    let backend = PrometheusBackend::builder()
        .global_label("service", "api")
        .max_series_per_metric(n / NAMES + 1)
        .build()
        .expect("backend");
    // Every metric name exists before measuring: the per-name cost is not per-series cost.
    for name in names {
        backend
            .register_counter(
                &Key::from_parts(*name, vec![Label::new("route", "warm"), Label::new("status", "0")]),
                &METADATA,
            )
            .increment(1);
    }
    let (bytes, allocations) = retained(|| {
        for i in 0..n {
            let labels = vec![Label::new("route", route(i)), Label::new("status", status(i))];
            backend
                .register_counter(&Key::from_parts(names[i % NAMES], labels), &METADATA)
                .increment(1);
        }
    });
    drop(backend);
    (bytes / n as f64, allocations / n as f64)
}

/// The same in prometheus-client (label values owned, as they must be for dynamic values).
fn client(n: usize) -> (f64, f64) {
    let mut registry = prometheus_client::registry::Registry::default();
    let families: Vec<Family<Vec<(&'static str, String)>, ClientCounter>> =
        (0..NAMES).map(|_| Family::default()).collect();
    for (i, family) in families.iter().enumerate() {
        registry.register(format!("bench_memory_{i}"), "A counter.", family.clone());
    }
    let (bytes, allocations) = retained(|| {
        for i in 0..n {
            let labels = vec![("route", route(i)), ("status", status(i).to_owned())];
            families[i % NAMES].get_or_create(&labels).inc();
        }
    });
    drop((registry, families));
    (bytes / n as f64, allocations / n as f64)
}

/// The same in prometheus.
fn prometheus(n: usize) -> (f64, f64) {
    let registry = prometheus::Registry::new();
    let vecs: Vec<prometheus::IntCounterVec> = (0..NAMES)
        .map(|i| {
            let vec = prometheus::IntCounterVec::new(
                prometheus::Opts::new(format!("bench_memory_{i}_total"), "A counter."),
                &["route", "status"],
            )
            .expect("counter vec");
            registry.register(Box::new(vec.clone())).expect("register");
            vec
        })
        .collect();
    let (bytes, allocations) = retained(|| {
        for i in 0..n {
            let route = route(i);
            vecs[i % NAMES].with_label_values(&[route.as_str(), status(i)]).inc();
        }
    });
    drop((registry, vecs));
    (bytes / n as f64, allocations / n as f64)
}

/// Registers `2 × limit` label sets in one metric of a recorder with the default per-metric
/// limit: what the first `limit` keep per series, what each of the `limit` past it keeps, and
/// how many series the metric has at the end.
fn cardinality_limit() -> Vec<Side> {
    let limit = DEFAULT_MAX_SERIES_PER_METRIC;
    let backend = PrometheusBackend::builder()
        .global_label("service", "api")
        .build()
        .expect("backend");
    let register = |i: usize| {
        let labels = vec![Label::new("user", format!("user-{i}"))];
        backend
            .register_counter(&Key::from_parts("bench.cardinality", labels), &METADATA)
            .increment(1);
    };
    // The metric name, and the overflow machinery (its counter and first warning), exist first.
    register(usize::MAX);
    let (below, _) = retained(|| {
        for i in 1..limit {
            register(i);
        }
    });
    let (past, _) = retained(|| {
        for i in limit..2 * limit {
            register(i);
        }
    });
    let group = "cardinality_limit";
    vec![
        Side::new(group, "limit", "count", limit as f64),
        Side::new(group, "label_sets_registered", "count", (2 * limit) as f64),
        Side::new(
            group,
            "series_kept",
            "count",
            backend.series_count("bench.cardinality") as f64,
        ),
        Side::new(
            group,
            "bytes_per_series_below_limit",
            "bytes",
            below / (limit - 1) as f64,
        ),
        Side::new(group, "bytes_per_label_set_past_limit", "bytes", past / limit as f64),
    ]
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a small smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let counts: &[usize] = if full { &SERIES } else { &SERIES[..1] };
    let names: Vec<&'static str> = (0..NAMES)
        .map(|i| &*Box::leak(format!("bench.memory.{i}").into_boxed_str()))
        .collect();
    let mut out = Vec::new();
    for &n in counts {
        for (lib, (bytes, allocations)) in [
            ("vigil", vigil(n, &names)),
            ("prometheus_client", client(n)),
            ("prometheus", prometheus(n)),
        ] {
            out.push(Side::new("memory_per_series", format!("{lib}/{n}"), "bytes", bytes));
            out.push(Side::new(
                "allocations_per_series",
                format!("{lib}/{n}"),
                "allocations",
                allocations,
            ));
        }
    }
    out.extend(cardinality_limit());
    side::publish(&out);
}
