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

/// Whether `key` is a valid label name as it is: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_valid_label_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `key` as a valid label name: as it is when it is one, else with invalid characters replaced
/// by `_` (metrics-exporter-prometheus's `sanitize_label_key`); an empty key becomes `_`.
pub(crate) fn label_key(key: &str) -> Cow<'_, str> {
    if is_valid_label_key(key) {
        Cow::Borrowed(key)
    } else if key.is_empty() {
        Cow::Borrowed("_")
    } else {
        Cow::Owned(sanitize_label_key(key))
    }
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
    }
}
