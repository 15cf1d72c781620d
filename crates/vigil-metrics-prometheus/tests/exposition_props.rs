//! Properties of the exposition: any metric name, label key, label value and description
//! give text that the independent parser and promtool accept, with every value and label
//! value back as recorded. Each case is a batch of metrics in one backend, rendered once and
//! checked once (promtool is a process per check). The fuzz target
//! `fuzz/fuzz_targets/prometheus_exposition.rs` runs the same checks on fuzzed batches.

mod common;
#[path = "common/exposition_cases.rs"]
mod exposition_cases;

use exposition_cases::{Case, Kind, NAME_PARTS, SEPARATORS, UNITS, check_batch};
use metrics::Unit;
use proptest::prelude::*;

/// Any string, or names built from the parts naming rules care about.
fn name() -> impl Strategy<Value = String> {
    let part = prop::sample::select(NAME_PARTS).prop_map(str::to_owned);
    let separator = prop::sample::select(SEPARATORS).prop_map(str::to_owned);
    prop_oneof![
        any::<String>(),
        "[a-zA-Z_:.0-9]{0,12}",
        prop::collection::vec((separator, part), 1..6)
            .prop_map(|parts| { parts.into_iter().flat_map(|(s, p)| [s, p]).collect::<String>() }),
    ]
}

/// Any string, or text made of the characters escaping cares about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\\\\"\nn{}=,# \r\t\u{0}\u{2028}é]{0,12}"]
}

fn case() -> impl Strategy<Value = Case> {
    let kind = prop::sample::select(&[Kind::Counter, Kind::Gauge, Kind::Histogram][..]);
    let unit = prop::sample::select(UNITS);
    let value = prop_oneof![
        any::<f64>(),
        (-1_000_000i32..1_000_000).prop_map(f64::from),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(f64::MAX),
    ];
    (
        kind,
        name(),
        name(),
        text(),
        prop::option::of((unit, text())),
        any::<u64>(),
        value,
    )
        .prop_map(|(kind, name, label_key, label_value, describe, count, value)| Case {
            kind,
            name,
            label_key,
            label_value,
            describe,
            count,
            value,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_names_and_label_values_give_a_valid_exposition_that_round_trips(
        global in text(),
        cases in prop::collection::vec(case(), 1..40),
    ) {
        if let Err(problem) = check_batch(&global, &cases, true) {
            prop_assert!(false, "{}", problem);
        }
    }
}

/// A case of kind `kind` named `name`, with a plain label.
fn named(kind: Kind, name: &str, unit: Option<Unit>) -> Case {
    Case {
        kind,
        name: name.to_owned(),
        label_key: "route".to_owned(),
        label_value: "/a".to_owned(),
        describe: unit.map(|u| (Some(u), "Described.".to_owned())),
        count: 1,
        value: 1.5,
    }
}

/// Names found by these properties and the fuzz target that promtool rejected before the
/// backend made them lint-clean: abbreviated units, types in names, non-base units, other
/// kinds' suffixes, camelCase, colons; and label names it rejected (`le` on a counter,
/// `quantile`, `__name__`, camelCase).
#[test]
fn regression_names_promtool_rejected() {
    let cases = vec![
        named(Kind::Gauge, "latency_ms", None),
        named(Kind::Gauge, "queue.total", None),
        named(Kind::Gauge, "queue.count", None),
        named(Kind::Gauge, "queue.sum", None),
        named(Kind::Gauge, "queue.bucket", None),
        named(Kind::Histogram, "job.total", None),
        named(Kind::Counter, "jobs.counter", None),
        named(Kind::Gauge, "temperature.gauge.x", None),
        named(Kind::Gauge, "uptime.hours", None),
        named(Kind::Gauge, "hours", None),
        named(Kind::Gauge, "size.kilobytes", None),
        named(Kind::Gauge, "requestsInFlight", None),
        named(Kind::Counter, "a:b", None),
        named(Kind::Counter, "subtotal", None),
        named(Kind::Counter, "x_d", None),
        named(Kind::Histogram, "wait.milliseconds", Some(Unit::Milliseconds)),
        named(Kind::Gauge, "buffer.kibibytes", Some(Unit::Kibibytes)),
    ];
    check_batch("svc", &cases, true).unwrap();
    let mut labels = Vec::new();
    for key in ["le", "quantile", "__name__", "userId", "LE"] {
        let mut case = named(Kind::Counter, &format!("labelled.{}", key.len()), None);
        case.name.push_str(key);
        case.label_key = key.to_owned();
        labels.push(case);
    }
    check_batch("svc", &labels, true).unwrap();
}

/// A name that ends in its own recorded unit is exported in the base unit, not with both:
/// `wait.milliseconds` recorded in milliseconds was `wait_milliseconds` holding seconds.
#[test]
fn regression_a_name_ending_in_its_unit_ends_in_the_base_unit() {
    let backend = vigil_metrics_prometheus::PrometheusBackend::builder().build().unwrap();
    metrics::with_local_recorder(&backend, || {
        metrics::describe_histogram!("wait.milliseconds", Unit::Milliseconds, "Waits.");
        metrics::describe_gauge!("buffer.kibibytes", Unit::Kibibytes, "Buffer.");
        metrics::describe_gauge!("uptime.seconds", Unit::Seconds, "Uptime.");
        metrics::histogram!("wait.milliseconds").record(5.0);
        metrics::gauge!("buffer.kibibytes").set(2.0);
        metrics::gauge!("uptime.seconds").set(2.0);
    });
    assert_eq!(
        backend.exported_name("wait.milliseconds").as_deref(),
        Some("wait_seconds")
    );
    assert_eq!(
        backend.exported_name("buffer.kibibytes").as_deref(),
        Some("buffer_bytes")
    );
    assert_eq!(
        backend.exported_name("uptime.seconds").as_deref(),
        Some("uptime_seconds")
    );
    let text = backend.render();
    assert!(text.contains("wait_seconds_sum 0.005\n"), "{text}");
    assert!(text.contains("buffer_bytes 2048\n"), "{text}");
}

/// Found by the property: a metric described with an empty (or blank) description had no
/// HELP text, which promtool rejects ("no help text").
#[test]
fn regression_an_empty_description_still_gives_help_text() {
    let mut empty = named(Kind::Counter, "", None);
    empty.describe = Some((None, String::new()));
    let mut blank = named(Kind::Gauge, "blank", None);
    blank.describe = Some((None, " \t ".to_owned()));
    check_batch("", &[empty, blank], true).unwrap();
}
