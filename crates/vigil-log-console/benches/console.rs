//! One log event with three fields: Vigil's console backend (JSON and text) next to
//! tracing-subscriber's fmt layer (JSON and text), all writing to a sink; outside any span, and
//! inside a request span whose fields (request id, method, route) enrich every event.
//!
//! The console backend formats on the caller's thread and queues the line for its writer
//! thread; lines dropped because the queue was full would make it look cheaper, so they are
//! counted and written for `cargo xtask bench` (see `crates/vigil/benches/support/side.rs`). Run with
//! `cargo xtask bench` (or `cargo bench -p vigil-log-console --bench console`).

#![allow(clippy::cast_precision_loss)]

#[path = "support/scenario.rs"]
mod scenario;
#[path = "../../vigil/benches/support/side.rs"]
mod side;

use criterion::Criterion;
use scenario::{SCENARIOS, event, with_scenario};
use side::Side;
use tracing::Dispatch;
use vigil_core::LogBackend as _;
use vigil_log_console::Format;

/// The criterion group of a format and scenario.
fn group(format: &str, scenario: &str) -> String {
    let format = if format == "json" { "" } else { "_text" };
    let span = if scenario == "in_span" { "_in_span" } else { "" };
    format!("log_event_3_fields{format}{span}")
}

fn run(c: &mut Criterion, group: &str, bench: &str, dispatch: &Dispatch, in_span: bool) {
    with_scenario(dispatch, in_span, || {
        c.benchmark_group(group).bench_function(bench, |b| b.iter(event));
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut queue = Vec::new();
    for (scenario, in_span) in SCENARIOS {
        for (format, vigil_format, tracing) in [
            ("json", Format::Json, scenario::tracing_json as fn() -> Dispatch),
            ("text", Format::Text, scenario::tracing_text),
        ] {
            let group = group(format, scenario);
            let bench = format!("vigil_console_{format}");
            let (dispatch, console) = scenario::vigil(vigil_format);
            run(&mut c, &group, &bench, &dispatch, in_span);
            console.flush();
            let stats = console.stats();
            eprintln!(
                "{group}/{bench}: {} lines written, {} dropped",
                stats.written(),
                stats.dropped()
            );
            queue.push(Side::new(
                "log_queue_dropped",
                format!("{bench}/{scenario}"),
                "count",
                stats.dropped() as f64,
            ));
            queue.push(Side::new(
                "log_queue_written",
                format!("{bench}/{scenario}"),
                "count",
                stats.written() as f64,
            ));
            run(
                &mut c,
                &group,
                &format!("tracing_subscriber_{format}"),
                &tracing(),
                in_span,
            );
        }
    }
    side::publish(&queue);
    c.final_summary();
}
