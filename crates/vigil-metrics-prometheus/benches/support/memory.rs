//! Bytes retained per series, measured with a counting global allocator: shared by the
//! `memory` bench (which prints the table) and `tests/memory.rs` (which bounds it).

use std::alloc::System;

use metrics::{Key, Label, Metadata, Recorder};
use stats_alloc::{Region, StatsAlloc};
use vigil_metrics_prometheus::PrometheusBackend;

static METADATA: Metadata<'static> = Metadata::new("memory", metrics::Level::INFO, None);

/// What one series of a kind keeps allocated.
#[derive(Debug, Clone, Copy)]
pub struct PerSeries {
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Net bytes requested from the allocator per series (allocated minus freed, including
    /// the registry's share of table and vector growth; the allocator's own rounding and
    /// headers are not included).
    pub bytes: f64,
    /// Net live allocations per series.
    pub allocations: f64,
}

/// The labels of series `i`: a route of 15 to 20 bytes and a status, as an HTTP metric has.
fn labels(i: usize) -> Vec<Label> {
    vec![
        Label::new("route", format!("/api/route/{i}")),
        Label::new("status", ["200", "404", "500"][i % 3]),
    ]
}

/// Registers `series` series of each kind in a fresh backend (the metric name and its first
/// series exist before measuring), records one value in each, drops the handles, and returns
/// what stays allocated per series.
pub fn measure(alloc: &'static StatsAlloc<System>, series: usize) -> Vec<PerSeries> {
    #[allow(clippy::cast_precision_loss)]
    let per = |net: isize| net as f64 / series as f64;
    let mut out = Vec::new();
    for kind in ["counter", "gauge", "histogram"] {
        let backend = PrometheusBackend::builder()
            .global_label("service", "api")
            .max_series_per_metric(series + 1)
            .build()
            .expect("backend");
        let name = format!("memory.{kind}");
        let register = |i: usize| {
            let key = Key::from_parts(name.clone(), labels(i));
            match kind {
                "counter" => backend.register_counter(&key, &METADATA).increment(1),
                "gauge" => backend.register_gauge(&key, &METADATA).set(1.0),
                _ => backend.register_histogram(&key, &METADATA).record(12.0),
            }
        };
        register(0);
        let region = Region::new(alloc);
        for i in 1..=series {
            register(i);
        }
        let change = region.change();
        #[allow(clippy::cast_possible_wrap)]
        let bytes = change.bytes_allocated as isize - change.bytes_deallocated as isize;
        #[allow(clippy::cast_possible_wrap)]
        let allocations = change.allocations as isize - change.deallocations as isize;
        out.push(PerSeries {
            kind,
            bytes: per(bytes),
            allocations: per(allocations),
        });
        drop(backend);
    }
    out
}
