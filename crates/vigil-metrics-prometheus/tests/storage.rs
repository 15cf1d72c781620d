//! The backend's own storage: exact totals under concurrent updates, exact cumulative
//! buckets, exact renders of many series, shared storage for a series registered twice, and
//! an exposition that stays valid whatever names and labels arrive.

#![allow(clippy::float_cmp, clippy::cast_precision_loss)]

mod common;

use std::collections::HashMap;

use common::{Sample, parse_exposition, promtool_check};
use metrics::{Key, Label, Metadata, Recorder, Unit};
use vigil_metrics_prometheus::PrometheusBackend;

static METADATA: Metadata<'static> = Metadata::new("storage", metrics::Level::INFO, None);

fn backend() -> PrometheusBackend {
    PrometheusBackend::builder()
        .global_label("service", "svc")
        .max_series_per_metric(50_000)
        .build()
        .unwrap()
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    Key::from_parts(
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>(),
    )
}

/// The one sample named `name` whose labels include `labels`.
fn sample<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let mut found = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)));
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no {name} {labels:?} in {samples:#?}"));
    assert!(found.next().is_none(), "more than one {name} {labels:?}");
    first
}

fn assert_promtool_clean(text: &str) {
    if let Some(out) = promtool_check(text) {
        assert!(out.is_empty(), "promtool check metrics complained:\n{out}\n---\n{text}");
    }
}

#[test]
fn concurrent_updates_from_several_threads_give_exact_totals() {
    const THREADS: usize = 4;
    const UPDATES: usize = 50_000;
    let b = backend();
    metrics::with_local_recorder(&b, || {
        metrics::describe_histogram!("work.duration", Unit::Milliseconds, "Work.");
    });
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let b = &b;
            scope.spawn(move || {
                // Each thread registers the same series itself: they share one cell.
                let counter = b.register_counter(&key("work.done", &[("pool", "a")]), &METADATA);
                let gauge = b.register_gauge(&key("work.level", &[("pool", "a")]), &METADATA);
                let histogram = b.register_histogram(&key("work.duration", &[("pool", "a")]), &METADATA);
                for i in 0..UPDATES {
                    counter.increment(1);
                    gauge.increment(1.0);
                    if i % 2 == 1 {
                        gauge.decrement(0.5);
                    }
                    // 1, 2, 3, 4, 5 ms in turn (integers: their sum is exact in an f64).
                    histogram.record((i % 5 + 1) as f64);
                    if t == 0 && i % 10_000 == 0 {
                        // Renders race with the updates and must not disturb them.
                        let _ = b.render();
                    }
                }
            });
        }
    });
    let samples = parse_exposition(&b.render());
    let total = (THREADS * UPDATES) as f64;
    assert_eq!(sample(&samples, "work_done_total", &[("pool", "a")]).value, total);
    assert_eq!(sample(&samples, "work_level", &[("pool", "a")]).value, total * 0.75);
    let count = sample(&samples, "work_duration_seconds_count", &[("pool", "a")]).value;
    assert_eq!(count, total);
    // Per thread, each of 1..=5 ms was recorded UPDATES / 5 times: 15 ms per round of 5.
    let sum = sample(&samples, "work_duration_seconds_sum", &[("pool", "a")]).value;
    assert_eq!(sum, total / 5.0 * 15.0 / 1000.0);
    let bucket = |le: &str| sample(&samples, "work_duration_seconds_bucket", &[("pool", "a"), ("le", le)]).value;
    assert_eq!(bucket("0.001"), total / 5.0);
    assert_eq!(bucket("0.0025"), total * 2.0 / 5.0);
    assert_eq!(bucket("0.005"), total);
    assert_eq!(bucket("+Inf"), total);
    assert_eq!(b.series_count("work.done"), 1);
}

#[test]
fn histogram_buckets_are_cumulative_and_exact() {
    let b = backend();
    metrics::with_local_recorder(&b, || {
        metrics::describe_histogram!("op.latency", Unit::Microseconds, "Latency in µs.");
        metrics::describe_histogram!("blob.size", Unit::Kibibytes, "Sizes in KiB.");
        // Values on bounds belong to that bound's bucket, in any recorded unit.
        for ms in [
            1.0,
            2.5,
            25.0,
            25.0,
            10_000.0,
            10_000.5,
            0.0,
            -3.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            metrics::histogram!("http.request.duration", "route" => "/x").record(ms);
            metrics::histogram!("op.latency").record(ms * 1000.0);
        }
        for kib in [0.0625, 1.0, 1.5, 16_384.0, 20_000.0] {
            metrics::histogram!("blob.size").record(kib);
        }
        metrics::histogram!("unitless").record(50.0);
    });
    let text = b.render();
    let samples = parse_exposition(&text);
    for name in ["http_request_duration_seconds", "op_latency_seconds"] {
        let buckets: Vec<(String, f64)> = samples
            .iter()
            .filter(|s| s.name == format!("{name}_bucket"))
            .map(|s| (s.label("le").unwrap().to_owned(), s.value))
            .collect();
        let expected = [
            ("0.001", 3.0), // 0, -3 and 1 ms
            ("0.0025", 4.0),
            ("0.005", 4.0),
            ("0.01", 4.0),
            ("0.025", 6.0),
            ("0.05", 6.0),
            ("0.1", 6.0),
            ("0.25", 6.0),
            ("0.5", 6.0),
            ("1", 6.0),
            ("2.5", 6.0),
            ("5", 6.0),
            ("10", 7.0),
            ("+Inf", 8.0), // NaN and infinity are ignored
        ];
        let expected: Vec<(String, f64)> = expected.iter().map(|(le, c)| ((*le).to_owned(), *c)).collect();
        assert_eq!(buckets, expected, "{name} in\n{text}");
        assert_eq!(sample(&samples, &format!("{name}_count"), &[]).value, 8.0);
        let sum = sample(&samples, &format!("{name}_sum"), &[]).value;
        assert!((sum - 20.051).abs() < 1e-12, "{name}: {sum}");
    }
    let size = |le: &str| sample(&samples, "blob_size_bytes_bucket", &[("le", le)]).value;
    assert_eq!(size("64"), 1.0);
    assert_eq!(size("1024"), 2.0);
    assert_eq!(size("4096"), 3.0);
    assert_eq!(size("16777216"), 4.0);
    assert_eq!(size("+Inf"), 5.0);
    assert_eq!(
        sample(&samples, "blob_size_bytes_sum", &[]).value,
        (0.0625 + 1.0 + 1.5 + 16_384.0 + 20_000.0) * 1024.0
    );
    assert_eq!(sample(&samples, "unitless_bucket", &[("le", "50")]).value, 1.0);
    assert_eq!(sample(&samples, "unitless_bucket", &[("le", "25")]).value, 0.0);
    assert_promtool_clean(&text);
}

#[test]
fn render_of_many_series_is_exact() {
    const NAMES: usize = 20;
    const PER_NAME: usize = 1_000;
    let backend = backend();
    let mut expected: HashMap<(String, String), f64> = HashMap::new();
    for i in 0..NAMES * PER_NAME {
        let (name, slot) = (i % NAMES, i / NAMES);
        let route = format!("/api/{slot}/\"q\"\\");
        if name % 2 == 0 {
            let counter = backend.register_counter(&key(&format!("many.c{name}"), &[("route", &route)]), &METADATA);
            counter.increment(i as u64 * 3);
            expected.insert((format!("many_c{name}_total"), route), (i * 3) as f64);
        } else {
            let gauge = backend.register_gauge(&key(&format!("many.g{name}"), &[("route", &route)]), &METADATA);
            // Fractions that need all their digits to round-trip.
            let value = i as f64 / 7.0 - 100.0;
            gauge.set(value);
            expected.insert((format!("many_g{name}"), route), value);
        }
    }
    let text = backend.render();
    let samples = parse_exposition(&text);
    let many: Vec<&Sample> = samples.iter().filter(|s| s.name.starts_with("many_")).collect();
    assert_eq!(many.len(), NAMES * PER_NAME);
    for s in many {
        assert_eq!(s.label("service"), Some("svc"));
        let route = s.label("route").unwrap().to_owned();
        let want = expected[&(s.name.clone(), route)];
        assert_eq!(s.value.to_bits(), want.to_bits(), "{s:?}");
    }
    assert_eq!(text.matches("# TYPE many_").count(), NAMES);
    assert_promtool_clean(&text);
}

#[test]
fn a_series_registered_twice_shares_storage() {
    let b = backend();
    let k = key("shared.requests", &[("route", "/a"), ("status", "200")]);
    let first = b.register_counter(&k, &METADATA);
    let second = b.register_counter(&k, &METADATA);
    first.increment(2);
    second.increment(3);
    let h1 = b.register_histogram(&key("shared.latency", &[]), &METADATA);
    let h2 = b.register_histogram(&key("shared.latency", &[]), &METADATA);
    h1.record(1.0);
    h2.record(2.0);
    let g1 = b.register_gauge(&key("shared.level", &[("k", "v")]), &METADATA);
    let g2 = b.register_gauge(&key("shared.level", &[("k", "v")]), &METADATA);
    g1.set(10.0);
    g2.decrement(4.0);
    // A name whose exported name is another's, stored alike (a counter's `.count` suffix
    // becomes `_total`), shares it too.
    b.register_counter(
        &key("shared.requests.count", &[("route", "/a"), ("status", "200")]),
        &METADATA,
    )
    .increment(5);
    let samples = parse_exposition(&b.render());
    assert_eq!(
        sample(&samples, "shared_requests_total", &[("route", "/a")]).value,
        10.0
    );
    assert_eq!(sample(&samples, "shared_latency_count", &[]).value, 2.0);
    assert_eq!(sample(&samples, "shared_latency_sum", &[]).value, 3.0);
    assert_eq!(sample(&samples, "shared_level", &[("k", "v")]).value, 6.0);
    assert_eq!(b.series_count("shared.requests"), 1);
    assert_eq!(b.series_count("shared.requests.count"), 1);
    assert_eq!(b.series_count("shared.latency"), 1);
}

#[test]
fn counters_support_absolute_values() {
    let b = backend();
    let c = b.register_counter(&key("absolute.reads", &[]), &METADATA);
    c.absolute(40);
    c.increment(2);
    c.absolute(10); // a counter never goes down
    let samples = parse_exposition(&b.render());
    assert_eq!(sample(&samples, "absolute_reads_total", &[]).value, 42.0);
}

#[test]
fn clashing_names_and_labels_never_make_an_invalid_exposition() {
    let b = backend();
    metrics::with_local_recorder(&b, || {
        metrics::counter!("clash").increment(1);
        // The same name as another kind: not exported, counted.
        metrics::gauge!("clash").set(1.0);
        // A gauge may not end in `_total` (nor `_count`, `_sum`, `_bucket`): exported as
        // `clashtotal`, not clashing with the counter.
        metrics::gauge!("clash_total").set(1.0);
        // A histogram named like another histogram's lines, both ways round.
        metrics::histogram!("timing").record(1.0);
        metrics::histogram!("timing_count").record(1.0);
        metrics::histogram!("later_sum").record(1.0);
        metrics::histogram!("later").record(1.0);
        // Labels: a global overridden, duplicate and clashing keys, a histogram's own `le`.
        metrics::counter!("labelled", "service" => "mine", "a-b" => "1", "a_b" => "2").increment(1);
        metrics::histogram!("with.le", "le" => "mine").record(1.0);
    });
    let text = b.render();
    let samples = parse_exposition(&text);
    assert_eq!(sample(&samples, "clash_total", &[]).value, 1.0);
    assert!(!samples.iter().any(|s| s.name == "clash"), "{text}");
    assert_eq!(sample(&samples, "clashtotal", &[]).value, 1.0);
    assert_eq!(text.matches("# TYPE timing_count").count(), 0, "{text}");
    assert_eq!(text.matches("# TYPE later ").count(), 0, "{text}");
    assert_eq!(sample(&samples, "later_sum_count", &[]).value, 1.0);
    for metric in ["clash", "timing_count", "later"] {
        assert_eq!(
            sample(&samples, "vigil_metrics_overflow_total", &[("metric", metric)]).value,
            1.0,
            "{metric}"
        );
    }
    assert_eq!(b.exported_name("clash_total").as_deref(), Some("clashtotal"));
    assert_eq!(b.exported_name("timing_count"), None);
    assert_eq!(b.exported_name("clash").as_deref(), Some("clash_total"));
    let labelled = sample(&samples, "labelled_total", &[]);
    assert_eq!(
        labelled.labels,
        [
            ("service".to_owned(), "mine".to_owned()),
            ("a_b".to_owned(), "2".to_owned())
        ]
    );
    let with_le = sample(&samples, "with_le_bucket", &[("le", "+Inf")]);
    assert_eq!(with_le.label("exported_le"), Some("mine"));
    if let Some(out) = promtool_check(&text) {
        assert!(out.is_empty(), "promtool check metrics complained:\n{out}\n---\n{text}");
    }
}

#[test]
fn the_overflow_series_takes_every_label_set_past_the_limit() {
    let b = PrometheusBackend::builder().max_series_per_metric(3).build().unwrap();
    for i in 0..10 {
        b.register_histogram(&key("limited", &[("user", &i.to_string())]), &METADATA)
            .record(1.0);
    }
    let text = b.render();
    let samples = parse_exposition(&text);
    assert_eq!(b.series_count("limited"), 3);
    assert_eq!(samples.iter().filter(|s| s.name == "limited_count").count(), 4);
    assert_eq!(
        sample(&samples, "limited_count", &[("user", "__overflow__")]).value,
        7.0
    );
    assert_eq!(
        sample(&samples, "vigil_metrics_overflow_total", &[("metric", "limited")]).value,
        7.0
    );
    assert_promtool_clean(&text);
}

#[test]
fn a_record_is_visible_in_the_next_render() {
    let b = backend();
    let h = b.register_histogram(&key("no.upkeep", &[]), &METADATA);
    h.record(3.0);
    // Visible at once: values are aggregated as they are recorded.
    let samples = parse_exposition(&b.render());
    assert_eq!(sample(&samples, "no_upkeep_count", &[]).value, 1.0);
}

#[test]
fn every_catalogue_metric_is_exported_under_its_own_name() {
    let b = PrometheusBackend::builder().build().unwrap();
    let mut seen = HashMap::new();
    for def in vigil_core::catalogue::ALL {
        let name = b
            .exported_name(def.name)
            .unwrap_or_else(|| panic!("{} is not exported", def.name));
        if let Some(other) = seen.insert(name.clone(), def.name) {
            panic!("{} and {other} are both exported as {name}", def.name);
        }
    }
}
