//! Batches of metrics with any names, label keys, label values and descriptions, for the
//! exposition properties (`tests/exposition_props.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/prometheus_exposition.rs`, which includes this file by path).
//!
//! [`check_batch`] registers a batch in one backend, renders once and checks the text with
//! the independent parser of `common` plus the checks below, written from the exposition
//! format's and promtool's rules (not from the backend's code): every line well-formed,
//! each family declared once before its samples, histogram buckets consistent, no name or
//! label promtool's linter would reject, and every value and label value back as recorded.
//! promtool itself runs where the caller asks (it is a process per call).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use metrics::{Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use vigil_metrics_prometheus::PrometheusBackend;

use crate::common::{Sample, parse_exposition, promtool_check};

/// The kind a case registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `register_counter` and `increment`.
    Counter,
    /// `register_gauge` and `set`.
    Gauge,
    /// `register_histogram` and `record`.
    Histogram,
}

/// One metric of a batch.
#[derive(Clone, Debug)]
pub struct Case {
    /// What it is.
    pub kind: Kind,
    /// The metric name, as the application gives it.
    pub name: String,
    /// Its one label's key.
    pub label_key: String,
    /// Its one label's value.
    pub label_value: String,
    /// Described first, with this unit and description.
    pub describe: Option<(Option<Unit>, String)>,
    /// A counter's increment.
    pub count: u64,
    /// A gauge's value, or a histogram's one recorded value.
    pub value: f64,
}

/// The label every series carries in a batch (its value is the batch's `global_value`).
pub const GLOBAL_KEY: &str = "service";

/// Every unit, for generators.
pub const UNITS: &[Option<Unit>] = &[
    None,
    Some(Unit::Count),
    Some(Unit::Percent),
    Some(Unit::Seconds),
    Some(Unit::Milliseconds),
    Some(Unit::Microseconds),
    Some(Unit::Nanoseconds),
    Some(Unit::Bytes),
    Some(Unit::Kibibytes),
    Some(Unit::Mebibytes),
    Some(Unit::Gibibytes),
    Some(Unit::Tebibytes),
    Some(Unit::BitsPerSecond),
    Some(Unit::CountPerSecond),
];

/// Name parts that matter to Prometheus naming and promtool's linter, for generators.
pub const NAME_PARTS: &[&str] = &[
    "ms",
    "s",
    "b",
    "kb",
    "sec",
    "seconds",
    "milliseconds",
    "hours",
    "bytes",
    "kibibytes",
    "bits",
    "total",
    "count",
    "sum",
    "bucket",
    "counter",
    "gauge",
    "histogram",
    "summary",
    "le",
    "quantile",
    "__name__",
    "fooBar",
    "HTTP",
    "x",
    "9",
    "é",
    "",
];

/// Separators between name parts, for generators.
pub const SEPARATORS: &[&str] = &[".", "_", ":", "-", "", " ", "\n", "\"", "\\", "{", "}"];

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

/// Registers `cases` in one backend (with the global label `service=global_value`), renders
/// once and checks the text; runs `promtool check metrics` on it too when `promtool` is set
/// (and promtool is installed), which must print nothing. Returns the first problem.
pub fn check_batch(global_value: &str, cases: &[Case], promtool: bool) -> Result<(), String> {
    let backend = PrometheusBackend::builder()
        .global_label(GLOBAL_KEY, global_value)
        .build()
        .map_err(|e| e.to_string())?;
    for case in cases {
        record(&backend, case);
    }
    let text = backend.render();
    let samples = check_text(&text)?;
    check_values(&backend, global_value, cases, &samples).map_err(|e| format!("{e}\n---\n{text}"))?;
    if promtool
        && let Some(out) = promtool_check(&text)
        && !out.is_empty()
    {
        return Err(format!("promtool check metrics complained:\n{out}\n---\n{text}"));
    }
    Ok(())
}

fn record(backend: &PrometheusBackend, case: &Case) {
    let name = KeyName::from(case.name.clone());
    if let Some((unit, description)) = &case.describe {
        let description = SharedString::from(description.clone());
        match case.kind {
            Kind::Counter => backend.describe_counter(name, *unit, description),
            Kind::Gauge => backend.describe_gauge(name, *unit, description),
            Kind::Histogram => backend.describe_histogram(name, *unit, description),
        }
    }
    let key = Key::from_parts(
        case.name.clone(),
        vec![Label::new(case.label_key.clone(), case.label_value.clone())],
    );
    match case.kind {
        Kind::Counter => backend.register_counter(&key, &METADATA).increment(case.count),
        Kind::Gauge => backend.register_gauge(&key, &METADATA).set(case.value),
        Kind::Histogram => backend.register_histogram(&key, &METADATA).record(case.value),
    }
}

/// What a family's TYPE line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FamilyType {
    Counter,
    Gauge,
    Histogram,
}

/// Checks the whole text, line by line, and returns its samples.
fn check_text(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text does not end in a newline".to_owned());
    }
    // `parse_exposition` panics on a malformed sample line, naming it.
    let samples = parse_exposition(text);
    let mut declared: HashSet<String> = HashSet::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut current: Option<(String, FamilyType)> = None;
    let mut sample_index = 0;
    let mut buckets: Vec<(String, f64, f64)> = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .ok_or_else(|| format!("HELP without text: {line:?}"))?;
            check_help_text(help).map_err(|e| format!("{e} in {line:?}"))?;
            if !helped.insert(name.to_owned()) {
                return Err(format!("second HELP for {name}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| format!("TYPE without type: {line:?}"))?;
            let kind = match kind {
                "counter" => FamilyType::Counter,
                "gauge" => FamilyType::Gauge,
                "histogram" => FamilyType::Histogram,
                other => return Err(format!("unexpected type {other:?} in {line:?}")),
            };
            if !helped.contains(name) {
                return Err(format!("TYPE before HELP for {name}"));
            }
            if !declared.insert(name.to_owned()) {
                return Err(format!("second TYPE for {name}"));
            }
            check_buckets(&buckets)?;
            buckets.clear();
            lint_family_name(name, kind)?;
            current = Some((name.to_owned(), kind));
            continue;
        }
        if line.starts_with('#') {
            return Err(format!("unexpected comment line {line:?}"));
        }
        let sample = samples
            .get(sample_index)
            .ok_or_else(|| format!("more sample lines than samples at {line:?}"))?;
        sample_index += 1;
        let (family, kind) = current
            .as_ref()
            .ok_or_else(|| format!("sample before any TYPE: {line:?}"))?;
        let suffix = sample.name.strip_prefix(family.as_str());
        let allowed = match kind {
            FamilyType::Counter | FamilyType::Gauge => suffix == Some(""),
            FamilyType::Histogram => matches!(suffix, Some("_bucket" | "_sum" | "_count")),
        };
        if !allowed {
            return Err(format!("sample {} under the {family} family: {line:?}", sample.name));
        }
        check_labels(
            sample,
            *kind == FamilyType::Histogram && suffix == Some("_bucket"),
            line,
        )?;
        if *kind == FamilyType::Histogram && suffix == Some("_bucket") {
            let le = sample
                .label("le")
                .ok_or_else(|| format!("bucket without le: {line:?}"))?;
            let bound = match le {
                "+Inf" => f64::INFINITY,
                le => le.parse::<f64>().map_err(|_| format!("bad le {le:?} in {line:?}"))?,
            };
            let series: Vec<String> = sample
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            buckets.push((series.join(","), bound, sample.value));
        }
    }
    check_buckets(&buckets)?;
    if sample_index != samples.len() {
        return Err("fewer sample lines than samples".to_owned());
    }
    Ok(samples)
}

/// A sample's label names: distinct, not `__name__`, not camelCase, `le` only on a
/// histogram's bucket (`is_bucket`), `quantile` nowhere (no summaries here).
fn check_labels(sample: &Sample, is_bucket: bool, line: &str) -> Result<(), String> {
    let mut keys = HashSet::new();
    for (key, _) in &sample.labels {
        if !keys.insert(key.as_str()) {
            return Err(format!("label {key} twice in {line:?}"));
        }
        if key == "__name__" {
            return Err(format!("reserved label __name__ in {line:?}"));
        }
        if is_camel_case(key) {
            return Err(format!("camelCase label name {key} in {line:?}"));
        }
        if (key == "le" && !is_bucket) || key == "quantile" {
            return Err(format!("label {key} outside its place in {line:?}"));
        }
    }
    Ok(())
}

/// A HELP text may hold any character but a raw newline; its only escapes are `\\` and `\n`.
fn check_help_text(help: &str) -> Result<(), String> {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
            return Err("bad escape in HELP".to_owned());
        }
    }
    Ok(())
}

/// Each series' buckets: increasing bounds ending in `+Inf`, non-decreasing counts.
fn check_buckets(buckets: &[(String, f64, f64)]) -> Result<(), String> {
    let mut by_series: HashMap<&str, Vec<(f64, f64)>> = HashMap::new();
    for (series, bound, count) in buckets {
        by_series.entry(series).or_default().push((*bound, *count));
    }
    for (series, list) in by_series {
        if list.last().map(|(b, _)| *b) != Some(f64::INFINITY) {
            return Err(format!("buckets of {{{series}}} do not end in +Inf"));
        }
        if list.windows(2).any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1) {
            return Err(format!("buckets of {{{series}}} are not cumulative: {list:?}"));
        }
    }
    Ok(())
}

/// `[a-z][A-Z]` somewhere, as promtool's linter looks for camelCase.
fn is_camel_case(name: &str) -> bool {
    name.as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// promtool's linter on a family name, rule by rule (its `promlint` package: units,
/// counters' `_total`, histogram and summary suffixes, types in names, colons, camelCase,
/// unit abbreviations).
fn lint_family_name(name: &str, kind: FamilyType) -> Result<(), String> {
    const ABBREVIATIONS: &[&str] = &[
        "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
    ];
    const TYPES: &[&str] = &["counter", "gauge", "summary", "histogram", "gauge_histogram"];
    const BASE_UNITS: &[&str] = &[
        "amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres", "seconds", "volts",
    ];
    const OTHER_UNITS: &[&str] = &[
        "minutes",
        "hours",
        "days",
        "weeks",
        "kelvins",
        "fahrenheit",
        "rankine",
        "inches",
        "yards",
        "miles",
        "bits",
        "calories",
        "pounds",
        "ounces",
    ];
    const PREFIXES: &[&str] = &[
        "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega", "mibi", "giga",
        "gibi", "tera", "tebi", "peta", "pebi",
    ];
    let problem = |what: &str| Err(format!("promtool's linter would reject {name}: {what}"));
    let lower = name.to_ascii_lowercase();
    for part in name.split('_') {
        let unit = BASE_UNITS.iter().chain(OTHER_UNITS).any(|u| {
            (part == *u && OTHER_UNITS.contains(u)) || PREFIXES.iter().any(|p| part.strip_prefix(p) == Some(u))
        });
        if unit {
            return problem(&format!("non-base unit {part}"));
        }
    }
    let total = name.ends_with("_total");
    if kind == FamilyType::Counter && !total {
        return problem("a counter without _total");
    }
    if kind != FamilyType::Counter && total {
        return problem("_total on another kind");
    }
    if kind != FamilyType::Histogram
        && (name.ends_with("_bucket") || name.ends_with("_count") || name.ends_with("_sum"))
    {
        return problem("a histogram's suffix");
    }
    for t in TYPES {
        if lower.contains(&format!("_{t}_")) || lower.ends_with(&format!("_{t}")) {
            return problem(&format!("type {t} in the name"));
        }
    }
    if name.contains(':') {
        return problem("a colon");
    }
    if is_camel_case(name) {
        return problem("camelCase");
    }
    for a in ABBREVIATIONS {
        if lower.contains(&format!("_{a}_")) || lower.ends_with(&format!("_{a}")) {
            return problem(&format!("abbreviated unit {a}"));
        }
    }
    Ok(())
}

/// What the recorded value `v` is exported as, for a metric described with `unit`.
fn exported_value(kind: Kind, unit: Option<Unit>, v: f64) -> f64 {
    if kind == Kind::Counter {
        return v;
    }
    match unit {
        Some(Unit::Milliseconds) => v / 1e3,
        Some(Unit::Microseconds) => v / 1e6,
        Some(Unit::Nanoseconds) => v / 1e9,
        Some(Unit::Kibibytes) => v * 1024.0,
        Some(Unit::Mebibytes) => v * 1024.0 * 1024.0,
        Some(Unit::Gibibytes) => v * 1024.0 * 1024.0 * 1024.0,
        Some(Unit::Tebibytes) => v * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => v,
    }
}

/// Exactly the same number (values round-trip exactly), NaN being the same as NaN.
#[allow(clippy::float_cmp)]
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Every case whose metric is its own (no other case, nor a catalogue metric, exported under
/// the same name) is found with its label value and its value; every case not exported is
/// counted by `vigil_metrics_overflow_total`.
fn check_values(
    backend: &PrometheusBackend,
    global_value: &str,
    cases: &[Case],
    samples: &[Sample],
) -> Result<(), String> {
    let mut by_exported: HashMap<String, usize> = HashMap::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for case in cases {
        *by_name.entry(case.name.as_str()).or_default() += 1;
        if let Some(exported) = backend.exported_name(&case.name) {
            *by_exported.entry(exported).or_default() += 1;
        }
    }
    let catalogue_names: HashSet<String> = vigil_core::catalogue::ALL
        .iter()
        .filter_map(|d| backend.exported_name(d.name))
        .collect();
    let one = |name: &str| -> Result<&Sample, String> {
        let found: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
        match found.as_slice() {
            [s] => Ok(*s),
            other => Err(format!("{} samples named {name}, expected one", other.len())),
        }
    };
    for case in cases {
        if by_name[case.name.as_str()] > 1 || vigil_core::catalogue::find(&case.name).is_some() {
            continue;
        }
        let Some(exported) = backend.exported_name(&case.name) else {
            let counted = samples.iter().any(|s| {
                s.name == "vigil_metrics_overflow_total"
                    && s.label("metric") == Some(case.name.as_str())
                    && s.value >= 1.0
            });
            if !counted {
                return Err(format!("{case:?} is neither exported nor counted as overflow"));
            }
            continue;
        };
        if by_exported[&exported] > 1 || catalogue_names.contains(&exported) {
            continue;
        }
        let unit = case.describe.as_ref().and_then(|(u, _)| *u);
        let (line, expected) = match case.kind {
            Kind::Counter => (exported.clone(), exported_value(case.kind, unit, to_f64(case.count))),
            Kind::Gauge if case.value.is_finite() => (exported.clone(), exported_value(case.kind, unit, case.value)),
            // Gauges ignore NaN and infinities: the series stays at 0.
            Kind::Gauge => (exported.clone(), 0.0),
            Kind::Histogram => {
                let recorded = case.value.is_finite();
                let count = one(&format!("{exported}_count"))?;
                let expected_count = if recorded { 1.0 } else { 0.0 };
                if !same(count.value, expected_count) {
                    return Err(format!(
                        "{case:?}: _count is {}, expected {expected_count}",
                        count.value
                    ));
                }
                let sum = if recorded {
                    exported_value(case.kind, unit, case.value)
                } else {
                    0.0
                };
                (format!("{exported}_sum"), sum)
            }
        };
        let sample = one(&line)?;
        if !same(sample.value, expected) {
            return Err(format!("{case:?}: {line} is {}, expected {expected}", sample.value));
        }
        if !sample.labels.iter().any(|(_, v)| *v == case.label_value) {
            return Err(format!("{case:?}: the label value is not back in {:?}", sample.labels));
        }
        let service = sample.label(GLOBAL_KEY);
        if service != Some(global_value) && service != Some(case.label_value.as_str()) {
            return Err(format!("{case:?}: the global label is {service:?}"));
        }
    }
    Ok(())
}

/// `n` as the exposition format's parser reads it back: a float.
#[allow(clippy::cast_precision_loss)]
fn to_f64(n: u64) -> f64 {
    n as f64
}
