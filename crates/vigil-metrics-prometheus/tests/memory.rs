//! Memory per series, counted by an instrumented global allocator (this test binary's only
//! test, so nothing else allocates while it measures). Allocation counts are deterministic,
//! so the bounds hold on any machine.

#[path = "../benches/support/memory.rs"]
mod memory;

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_series_costs_a_few_hundred_bytes_at_most() {
    let measured = memory::measure(GLOBAL, 10_000);
    for m in &measured {
        println!(
            "{:<10} {:>7.1} bytes {:>5.2} allocations per series",
            m.kind, m.bytes, m.allocations
        );
        // Label text, cell and a slot in the series table; a histogram adds its 14 buckets.
        let (bytes, allocations) = match m.kind {
            "counter" | "gauge" => (192.0, 2.0),
            _ => (384.0, 3.0),
        };
        assert!(m.bytes <= bytes, "{m:?}");
        assert!(m.allocations <= allocations, "{m:?}");
    }
    assert_eq!(measured.len(), 3);
}
