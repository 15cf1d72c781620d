//! The pieces of the text exposition format the render loop writes: numbers, label keys and
//! escaped label values, written straight into the output `String` without allocating.

use std::borrow::Cow;

use metrics_exporter_prometheus::formatting::sanitize_label_key;

/// The largest magnitude below which every integral `f64` is written as an integer.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// Appends `v` as the exposition format writes a float: `NaN`, `+Inf`, `-Inf`, integral
/// values without a fraction (`2`, not `2.0`), others in their shortest round-trip form
/// (`0.025`, `1e-7`).
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < EXACT_INTEGER {
        // Exact: |v| < 2^53 and integral, so the cast loses nothing (and -0.0 becomes 0).
        #[allow(clippy::cast_possible_truncation)]
        push_i64(out, v as i64);
    } else {
        out.push_str(ryu::Buffer::new().format_finite(v));
    }
}

/// Appends `v` in decimal.
pub(crate) fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

fn push_i64(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends `value` as the inside of a quoted label value: `\` as `\\`, `"` as `\"` and a
/// line feed as `\n`, everything else (any UTF-8) as it is.
pub(crate) fn push_label_value(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(&value[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// Label names that are not exported as they are: `le` is a histogram bucket's (and
/// promtool rejects it on other metrics), `quantile` a summary's, `__name__` the metric
/// name's. Each is exported with an `exported_` prefix.
const RESERVED_LABEL_KEYS: &[&str] = &["le", "quantile", "__name__"];

/// Whether `key` is exported as it is: a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`) in lower
/// case that is not reserved (`le`, `quantile`, `__name__`).
pub(crate) fn is_valid_label_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !RESERVED_LABEL_KEYS.contains(&key)
}

/// `key` as a label name `promtool check metrics` accepts: as it is when it is one, else
/// with invalid characters replaced by `_` (metrics-exporter-prometheus's
/// `sanitize_label_key`), in lower-case snake case (`userId` is `user_id`), and `le`,
/// `quantile` and `__name__` prefixed with `exported_`; an empty key becomes `_`.
pub(crate) fn label_key(key: &str) -> Cow<'_, str> {
    if is_valid_label_key(key) {
        return Cow::Borrowed(key);
    }
    if key.is_empty() {
        return Cow::Borrowed("_");
    }
    let key = snake_case(&sanitize_label_key(key));
    if RESERVED_LABEL_KEYS.contains(&key.as_str()) {
        Cow::Owned(format!("exported_{key}"))
    } else {
        Cow::Owned(key)
    }
}

/// `name` in lower case, with an underscore between a lower-case letter and a capital that
/// follows it (`httpRequestCount` is `http_request_count`), as promtool's linter wants.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut after_lower = false;
    for c in name.chars() {
        if after_lower && c.is_ascii_uppercase() {
            out.push('_');
        }
        after_lower = c.is_ascii_lowercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Unit abbreviations promtool's linter rejects as a name part after the first (`latency_ms`).
const UNIT_ABBREVIATIONS: &[&str] = &[
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];

/// Metric types promtool's linter rejects as a name part after the first (`requests_counter`).
const TYPE_NAMES: &[&str] = &["counter", "gauge", "histogram", "summary"];

/// The units promtool's linter knows in a name part, each with its base unit.
const UNITS: &[(&str, &str)] = &[
    ("amperes", "amperes"),
    ("bytes", "bytes"),
    ("celsius", "celsius"),
    ("grams", "grams"),
    ("joules", "joules"),
    ("kelvin", "kelvin"),
    ("meters", "meters"),
    ("metres", "metres"),
    ("seconds", "seconds"),
    ("volts", "volts"),
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("kelvins", "kelvin"),
    ("fahrenheit", "celsius"),
    ("rankine", "celsius"),
    ("inches", "meters"),
    ("yards", "meters"),
    ("miles", "meters"),
    ("bits", "bytes"),
    ("calories", "joules"),
    ("pounds", "grams"),
    ("ounces", "grams"),
];

/// The unit prefixes promtool's linter knows.
const UNIT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega", "mibi", "giga", "gibi",
    "tera", "tebi", "peta", "pebi",
];

/// Whether promtool's linter reads `part` as a unit other than a base unit: `hours`, `bits`,
/// or any known unit with a prefix (`milliseconds`, `kibibytes`).
fn is_non_base_unit(part: &str) -> bool {
    UNITS.iter().any(|&(unit, base)| {
        part.strip_suffix(unit).is_some_and(|prefix| {
            if prefix.is_empty() {
                unit != base
            } else {
                UNIT_PREFIXES.contains(&prefix)
            }
        })
    })
}

/// What a metric name is for, as far as promtool's linter cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRole {
    /// A counter's name before its `_total` suffix.
    CounterBase,
    /// A gauge's name.
    Gauge,
    /// A histogram's name (its lines add `_bucket`, `_sum` and `_count`).
    Histogram,
}

/// Whether promtool's linter rejects `part`, the `index`th part (between underscores) of a
/// name for `role`, `last` when no part follows it.
fn is_rejected_part(part: &str, index: usize, last: bool, role: NameRole) -> bool {
    is_non_base_unit(part)
        || (index > 0
            && (UNIT_ABBREVIATIONS
                .iter()
                .chain(TYPE_NAMES)
                .any(|w| part.eq_ignore_ascii_case(w))
                || (last && role != NameRole::CounterBase && part == "total")
                || (last && role == NameRole::Gauge && matches!(part, "bucket" | "count" | "sum"))))
}

/// `name` (valid, lower-case) with every part promtool's linter rejects joined to a
/// neighbour, so no such part is left: a unit abbreviation (`latency_ms` is `latencyms`), a
/// metric type (`jobs_gauge` is `jobsgauge`), a unit other than a base unit (`uptime_hours`
/// is `uptimehours`), and the suffixes reserved for other kinds (a gauge's `queue_total` is
/// `queuetotal`). A part is joined to the one before it, a first part to the one after it,
/// and a name that is one rejected part gets `value` (`hours` is `hoursvalue`).
pub(crate) fn lint_clean_name(name: &str, role: NameRole) -> String {
    let mut parts: Vec<String> = name.split('_').map(str::to_owned).collect();
    loop {
        let n = parts.len();
        let Some(i) = (0..n).find(|&i| is_rejected_part(&parts[i], i, i + 1 == n, role)) else {
            break;
        };
        if i > 0 {
            let part = parts.remove(i);
            parts[i - 1].push_str(&part);
        } else if n > 1 {
            let next = parts.remove(1);
            parts[0].push_str(&next);
        } else {
            parts[0].push_str("value");
        }
    }
    parts.join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut s = String::new();
        push_f64(&mut s, v);
        s
    }

    #[test]
    fn floats_are_written_as_prometheus_reads_them() {
        assert_eq!(f(2.0), "2");
        assert_eq!(f(-3.0), "-3");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(0.025), "0.025");
        assert_eq!(f(0.492), "0.492");
        assert_eq!(f(86_400.0), "86400");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1e300), "1e300");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        for v in [
            0.1,
            1.0 / 3.0,
            123_456.789,
            9_007_199_254_740_993.0,
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(f(v).parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        push_label_value(&mut s, "a\"b\\c\nd é \\\\ \u{1F600}");
        assert_eq!(s, r#"a\"b\\c\nd é \\\\ 😀"#);
        s.clear();
        push_label_value(&mut s, "plain");
        assert_eq!(s, "plain");
    }

    #[test]
    fn label_keys_are_sanitized_only_when_needed() {
        assert!(matches!(label_key("route"), Cow::Borrowed("route")));
        assert_eq!(label_key("bad-label key"), "bad_label_key");
        assert_eq!(label_key("1st"), "_st");
        assert_eq!(label_key(""), "_");
        assert!(is_valid_label_key("_x9"));
        assert!(!is_valid_label_key("9x"));
        assert!(!is_valid_label_key("a:b"));
        // promtool's linter: snake case, and no `le` or `quantile` outside their kinds; the
        // exposition parser: no `__name__`.
        assert_eq!(label_key("userId"), "user_id");
        assert_eq!(label_key("URL"), "url");
        assert_eq!(label_key("le"), "exported_le");
        assert_eq!(label_key("LE"), "exported_le");
        assert_eq!(label_key("quantile"), "exported_quantile");
        assert_eq!(label_key("__name__"), "exported___name__");
        assert!(matches!(label_key("__other__"), Cow::Borrowed(_)));
    }

    #[test]
    fn names_lose_the_parts_promtool_rejects() {
        let gauge = |n: &str| lint_clean_name(n, NameRole::Gauge);
        assert_eq!(snake_case("httpRequestCount"), "http_request_count");
        assert_eq!(snake_case("HTTPServer_Up"), "httpserver_up");
        assert_eq!(gauge("latency_ms"), "latencyms");
        assert_eq!(gauge("latency_ms_p99"), "latencyms_p99");
        assert_eq!(gauge("jobs_gauge"), "jobsgauge");
        assert_eq!(gauge("a_counter_x"), "acounter_x");
        assert_eq!(gauge("uptime_hours"), "uptimehours");
        assert_eq!(gauge("milliseconds_up"), "millisecondsup");
        assert_eq!(gauge("hours"), "hoursvalue");
        assert_eq!(gauge("_ms"), "ms");
        assert_eq!(gauge("x_m_s"), "xms");
        assert_eq!(gauge("queue_total"), "queuetotal");
        assert_eq!(gauge("queue_count"), "queuecount");
        assert_eq!(gauge("queue_sum"), "queuesum");
        assert_eq!(gauge("queue_bucket"), "queuebucket");
        assert_eq!(lint_clean_name("queue_count", NameRole::Histogram), "queue_count");
        assert_eq!(lint_clean_name("queue_total", NameRole::Histogram), "queuetotal");
        assert_eq!(lint_clean_name("queue_sum", NameRole::CounterBase), "queue_sum");
        // Base units, and names promtool has nothing against, stay as they are.
        for name in [
            "uptime_seconds",
            "queue_bytes",
            "s_x",
            "ms",
            "http_request_duration_seconds",
            "a__x",
        ] {
            assert_eq!(gauge(name), name);
        }
    }
}
