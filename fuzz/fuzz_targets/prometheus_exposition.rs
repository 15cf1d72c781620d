//! Prometheus naming and escaping: any metric names, label keys, label values and
//! descriptions give an exposition that the independent parser and checks of the crate's
//! tests accept (every line well-formed, no name promtool's linter rejects), with every value
//! and label value back as recorded; promtool itself checks one input in 256 (a process per
//! check), and the first one, so a reproduced crash runs it too.
//! The same checks run as the proptest `tests/exposition_props.rs`.

#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vigil-metrics-prometheus/tests/common/mod.rs"]
#[allow(clippy::all, clippy::pedantic)]
mod common;
#[path = "../../crates/vigil-metrics-prometheus/tests/common/exposition_cases.rs"]
mod exposition_cases;

use exposition_cases::{Case, Kind, UNITS, check_batch};

#[derive(Arbitrary, Debug)]
struct Input {
    global: String,
    cases: Vec<FuzzCase>,
}

#[derive(Arbitrary, Debug)]
struct FuzzCase {
    kind: u8,
    name: String,
    label_key: String,
    label_value: String,
    describe: Option<(u8, String)>,
    count: u64,
    value: f64,
}

static RUNS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|input: Input| {
    let cases: Vec<Case> = input
        .cases
        .into_iter()
        .take(32)
        .map(|c| Case {
            kind: match c.kind % 3 {
                0 => Kind::Counter,
                1 => Kind::Gauge,
                _ => Kind::Histogram,
            },
            name: c.name,
            label_key: c.label_key,
            label_value: c.label_value,
            describe: c
                .describe
                .map(|(unit, text)| (UNITS[usize::from(unit) % UNITS.len()], text)),
            count: c.count,
            value: c.value,
        })
        .collect();
    let promtool = RUNS.fetch_add(1, Ordering::Relaxed).is_multiple_of(256);
    if let Err(problem) = check_batch(&input.global, &cases, promtool) {
        panic!("{problem}");
    }
});
