//! Bytes allocated per log event, with a counting global allocator: the same events and
//! subscribers as the `console` bench (Vigil's console backend and tracing-subscriber's fmt
//! layer, JSON and text, outside and inside a request span). Everything the process allocates
//! while logging counts, the console writer thread's work included (the backend is flushed
//! before the count is read).
//!
//! Results are printed and written for `cargo xtask bench` (see `crates/vigil/benches/support/side.rs`). Run with
//! `cargo xtask bench` (or `cargo bench -p vigil-log-console --bench console_alloc`).

#![allow(clippy::cast_precision_loss)]

#[path = "support/scenario.rs"]
mod scenario;
#[path = "../../vigil/benches/support/side.rs"]
mod side;

use std::alloc::System;

use scenario::{SCENARIOS, event, with_scenario};
use side::Side;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tracing::Dispatch;
use vigil_core::LogBackend as _;
use vigil_log_console::Format;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Events logged (after as many to warm up) per measurement.
const EVENTS: usize = 20_000;

/// Bytes and allocations per event while `dispatch` logs [`EVENTS`] events; `flush` runs
/// inside the counted region, so work queued for a writer thread is counted too.
fn per_event(dispatch: &Dispatch, in_span: bool, flush: &dyn Fn()) -> (f64, f64) {
    with_scenario(dispatch, in_span, || {
        for _ in 0..EVENTS {
            event();
        }
        flush();
        let region = Region::new(GLOBAL);
        for _ in 0..EVENTS {
            event();
        }
        flush();
        let change = region.change();
        (
            change.bytes_allocated as f64 / EVENTS as f64,
            change.allocations as f64 / EVENTS as f64,
        )
    })
}

fn main() {
    let mut out = Vec::new();
    for (scenario, in_span) in SCENARIOS {
        for (format, vigil_format, tracing) in [
            ("json", Format::Json, scenario::tracing_json as fn() -> Dispatch),
            ("text", Format::Text, scenario::tracing_text),
        ] {
            let (dispatch, console) = scenario::vigil(vigil_format);
            let vigil = per_event(&dispatch, in_span, &|| console.flush());
            let peer = per_event(&tracing(), in_span, &|| {});
            for (bench, (bytes, allocations)) in [
                (format!("vigil_console_{format}"), vigil),
                (format!("tracing_subscriber_{format}"), peer),
            ] {
                out.push(Side::new(
                    "log_bytes_per_event",
                    format!("{bench}/{scenario}"),
                    "bytes",
                    bytes,
                ));
                out.push(Side::new(
                    "log_allocations_per_event",
                    format!("{bench}/{scenario}"),
                    "allocations",
                    allocations,
                ));
            }
        }
    }
    side::publish(&out);
}
