//! Memory per series of each kind, measured with a counting global allocator.
//!
//! Run with `cargo bench -p vigil-metrics-prometheus --bench memory`.

#![allow(missing_docs)]

#[path = "support/memory.rs"]
mod memory;

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    // `cargo bench` passes `--bench`; anything else (a test run) only checks it runs.
    let series = if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        1_000
    };
    println!("memory per series ({series} series of each kind, two labels, one global label)");
    println!("{:<10} {:>14} {:>18}", "kind", "bytes/series", "allocations/series");
    for m in memory::measure(GLOBAL, series) {
        println!("{:<10} {:>14.1} {:>18.2}", m.kind, m.bytes, m.allocations);
    }
}
