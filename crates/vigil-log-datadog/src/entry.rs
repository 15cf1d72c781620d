//! One record as one Datadog log entry: a JSON object, escaped, and cut to the per-log limit.

use std::time::UNIX_EPOCH;

use vigil_core::{Level, Record, Value};

use crate::{MAX_ENTRY_BYTES, TRUNCATED_ATTRIBUTE};

/// The attribute that carries an oversized entry's size before it was cut.
pub const ORIGINAL_SIZE_ATTRIBUTE: &str = "vigil.original_size";

/// Attribute names a record field cannot take: the ones this backend writes and Datadog's
/// reserved attributes. A field with one of these names (or any name starting with `dd.`) is
/// sent as `fields.<name>`, as the console backend does.
pub const RESERVED_ATTRIBUTES: &[&str] = &[
    "message",
    "status",
    "timestamp",
    "service",
    "hostname",
    "ddsource",
    "ddtags",
    "logger",
    "logger.name",
    "host",
    "source",
    "date",
    "tags",
    "trace_id",
    "span_id",
    TRUNCATED_ATTRIBUTE,
    ORIGINAL_SIZE_ATTRIBUTE,
];

/// Room kept free in a cut entry for the closing brace and the truncation attributes.
const TRUNCATION_RESERVE: usize = 128;
/// In a cut entry whose own attributes (service, host, tags, target) are absurdly long, each of
/// them is cut to this many bytes.
const FIXED_STRING_CAP: usize = 1024;
/// An upper bound of the fixed attributes' size when each string is cut to
/// [`FIXED_STRING_CAP`] (nine strings and their keys, with room to spare), not counting the
/// configured tags.
const FIXED_CAPPED_BOUND: usize = 16 * 1024;
/// `{"message":`
const PREFIX: &[u8] = b"{\"message\":";

/// What every entry of one backend shares.
#[derive(Clone, Debug)]
pub(crate) struct EntryFormat {
    /// `ddsource`, JSON-escaped, without quotes.
    pub source: String,
    /// The configured tags, JSON-escaped, each preceded by a comma (`,team:core,region:eu`).
    pub tags: String,
}

impl EntryFormat {
    pub(crate) fn new(source: &str, tags: &[String]) -> Self {
        let mut src = Vec::new();
        escape(&mut src, source, false);
        let mut joined = Vec::new();
        for tag in tags {
            joined.push(b',');
            escape(&mut joined, tag, false);
        }
        EntryFormat {
            source: String::from_utf8(src).unwrap_or_default(),
            tags: String::from_utf8(joined).unwrap_or_default(),
        }
    }
}

/// The Datadog `status` for a level. Datadog knows no `trace`: it maps to `debug`.
pub fn status(level: Level) -> &'static str {
    match level {
        Level::Trace | Level::Debug => "debug",
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

/// Whether a field called `name` must be renamed to `fields.<name>`.
pub fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "message"
            | "status"
            | "timestamp"
            | "service"
            | "hostname"
            | "ddsource"
            | "ddtags"
            | "logger"
            | "logger.name"
            | "host"
            | "source"
            | "date"
            | "tags"
            | "trace_id"
            | "span_id"
            | TRUNCATED_ATTRIBUTE
            | ORIGINAL_SIZE_ATTRIBUTE
    ) || name.starts_with("dd.")
}

/// How much of each part an oversized entry may use (second pass).
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// The message value, quotes included.
    message: usize,
    /// Each string of the fixed attributes (`usize::MAX`: not cut).
    fixed_string: usize,
    /// All fields together, separators and keys included.
    fields: usize,
}

/// The sizes of the three parts of an entry, measured in the first pass.
#[derive(Clone, Copy, Debug, Default)]
struct Parts {
    message: usize,
    fixed: usize,
    fields: usize,
}

/// Appends `record` as one JSON object to `out` and returns whether it had to be cut to
/// [`MAX_ENTRY_BYTES`].
///
/// An entry that would be larger is written again with the message cut (on a character
/// boundary, so the JSON stays valid) and, when the fields alone are too large, the fields
/// cut too, and it gains `"vigil.truncated":true` and `"vigil.original_size":<bytes>`.
pub(crate) fn write_entry(out: &mut Vec<u8>, record: &Record<'_>, format: &EntryFormat) -> bool {
    let start = out.len();
    let parts = write_parts(out, record, format, None);
    out.push(b'}');
    let size = out.len() - start;
    if size <= MAX_ENTRY_BYTES {
        return false;
    }
    out.truncate(start);
    let plan = plan(parts, format);
    write_parts(out, record, format, Some(plan));
    out.extend_from_slice(b",\"");
    out.extend_from_slice(TRUNCATED_ATTRIBUTE.as_bytes());
    out.extend_from_slice(b"\":true,\"");
    out.extend_from_slice(ORIGINAL_SIZE_ATTRIBUTE.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(itoa::Buffer::new().format(size).as_bytes());
    out.push(b'}');
    debug_assert!(out.len() - start <= MAX_ENTRY_BYTES, "{}", out.len() - start);
    true
}

fn plan(parts: Parts, format: &EntryFormat) -> Plan {
    let avail = MAX_ENTRY_BYTES - TRUNCATION_RESERVE - PREFIX.len();
    let (fixed_string, fixed) = if parts.fixed > avail / 4 {
        (FIXED_STRING_CAP, FIXED_CAPPED_BOUND + format.tags.len())
    } else {
        (usize::MAX, parts.fixed)
    };
    let rest = avail.saturating_sub(fixed);
    let fields = if parts.fields <= rest / 2 {
        parts.fields
    } else {
        (rest / 2).max(rest.saturating_sub(parts.message))
    };
    Plan {
        message: rest - fields,
        fixed_string,
        fields,
    }
}

/// Writes everything but the closing brace; returns the sizes of the parts.
fn write_parts(out: &mut Vec<u8>, record: &Record<'_>, format: &EntryFormat, plan: Option<Plan>) -> Parts {
    let mut parts = Parts::default();
    out.extend_from_slice(PREFIX);
    let mark = out.len();
    string(out, record.message, plan.map_or(usize::MAX, |p| p.message));
    parts.message = out.len() - mark;

    let mark = out.len();
    let cap = plan.map_or(usize::MAX, |p| p.fixed_string);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(status(record.level).as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":");
    let millis = record.timestamp.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    out.extend_from_slice(itoa::Buffer::new().format(millis).as_bytes());
    let resource = record.resource;
    out.extend_from_slice(b",\"service\":");
    string(out, &resource.service, cap);
    out.extend_from_slice(b",\"hostname\":");
    string(out, &resource.hostname, cap);
    out.extend_from_slice(b",\"ddsource\":\"");
    out.extend_from_slice(format.source.as_bytes());
    out.extend_from_slice(b"\",\"ddtags\":\"");
    let mut first = true;
    if !resource.environment.is_empty() {
        out.extend_from_slice(b"env:");
        escape_limited(out, &resource.environment, cap, true);
        first = false;
    }
    if !resource.version.is_empty() {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"version:");
        escape_limited(out, &resource.version, cap, true);
        first = false;
    }
    let tags = if first {
        format.tags.strip_prefix(',').unwrap_or_default()
    } else {
        &format.tags
    };
    out.extend_from_slice(tags.as_bytes());
    out.extend_from_slice(b"\",\"logger.name\":");
    string(out, record.target, cap);
    if let Some(ids) = record.trace {
        out.extend_from_slice(b",\"dd.trace_id\":\"");
        out.extend_from_slice(itoa::Buffer::new().format(ids.trace_id_low()).as_bytes());
        out.extend_from_slice(b"\",\"dd.span_id\":\"");
        out.extend_from_slice(itoa::Buffer::new().format(ids.span_id).as_bytes());
        out.push(b'"');
    }
    parts.fixed = out.len() - mark;

    let mark = out.len();
    match plan {
        None => record.for_each_field(|name, value| write_field(out, name, value)),
        Some(plan) => {
            let end = mark + plan.fields;
            let mut full = false;
            record.for_each_field(|name, value| {
                if full {
                    return;
                }
                let field_start = out.len();
                write_key(out, name);
                if let Value::Str(s) = value {
                    let room = end.saturating_sub(out.len());
                    if room < 2 {
                        // Not even the quotes fit: a key without a value would be invalid JSON
                        // (and the intake would refuse the whole batch with a 400).
                        out.truncate(field_start);
                        full = true;
                        return;
                    }
                    string(out, s, room);
                } else {
                    json_value(out, value);
                }
                if out.len() > end {
                    out.truncate(field_start);
                    full = true;
                }
            });
        }
    }
    parts.fields = out.len() - mark;
    parts
}

fn write_field(out: &mut Vec<u8>, name: &str, value: Value<'_>) {
    write_key(out, name);
    json_value(out, value);
}

/// Whether a field called `name` is sent as `fields.<name>`: a reserved name, or `fields.`
/// and a name that is itself renamed, so that no two fields share a key (a field named
/// `fields.status` next to one named `status` is sent as `fields.fields.status`).
fn is_renamed(mut name: &str) -> bool {
    loop {
        if is_reserved(name) {
            return true;
        }
        match name.strip_prefix("fields.") {
            Some(rest) => name = rest,
            None => return false,
        }
    }
}

/// `,"name":` or `,"fields.name":`.
fn write_key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    if is_renamed(name) {
        out.extend_from_slice(b"fields.");
    }
    escape(out, name, false);
    out.extend_from_slice(b"\":");
}

fn json_value(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Str(s) => {
            string(out, s, usize::MAX);
        }
        Value::I64(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Value::U64(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Value::I128(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Value::U128(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Value::F64(v) if v.is_finite() => out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes()),
        Value::F64(v) if v.is_nan() => out.extend_from_slice(b"\"NaN\""),
        Value::F64(v) if v > 0.0 => out.extend_from_slice(b"\"inf\""),
        Value::F64(_) => out.extend_from_slice(b"\"-inf\""),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
    }
}

/// Appends `s` as a quoted JSON string of at most `cap` bytes (quotes included; at least the
/// two quotes are always written). Returns whether `s` was cut.
fn string(out: &mut Vec<u8>, s: &str, cap: usize) -> bool {
    out.push(b'"');
    let cut = escape_limited(out, s, cap.saturating_sub(2), false);
    out.push(b'"');
    cut
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// How one character is written: `None` when as itself.
#[inline]
fn escape_code(bytes: &[u8], i: usize, tag: bool) -> Option<(usize, u32)> {
    let b = bytes[i];
    match b {
        b'"' | b'\\' | 0x00..=0x1f | 0x7f => Some((1, u32::from(b))),
        b',' if tag => Some((1, 0x2c)),
        0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => Some((2, u32::from(bytes[i + 1]))),
        0xe2 if bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) => {
            Some((3, 0x2000 + u32::from(bytes[i + 2] - 0x80)))
        }
        _ => None,
    }
}

/// The escaped form of a character code: its length and bytes.
#[inline]
fn escaped(code: u32) -> ([u8; 6], usize) {
    match code {
        0x22 => (*b"\\\"    ", 2),
        0x5c => (*b"\\\\    ", 2),
        0x0a => (*b"\\n    ", 2),
        0x0d => (*b"\\r    ", 2),
        0x09 => (*b"\\t    ", 2),
        0x2c => (*b"_     ", 1),
        c => {
            let mut b = *b"\\u0000";
            for (k, shift) in [12, 8, 4, 0].into_iter().enumerate() {
                b[2 + k] = HEX[((c >> shift) & 0xf) as usize];
            }
            (b, 6)
        }
    }
}

/// Appends `s` escaped for a JSON string: `"`, `\`, every control character (C0, DEL, C1) and
/// the Unicode line and paragraph separators are escaped. With `tag`, commas become `_` (a
/// comma would split a `ddtags` value).
pub(crate) fn escape(out: &mut Vec<u8>, s: &str, tag: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some((len, code)) = escape_code(bytes, i, tag) else {
            i += 1;
            continue;
        };
        out.extend_from_slice(&bytes[start..i]);
        let (b, n) = escaped(code);
        out.extend_from_slice(&b[..n]);
        i += len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Like [`escape`], but writes at most `max` bytes, cutting `s` on a character boundary.
/// Returns whether `s` was cut.
fn escape_limited(out: &mut Vec<u8>, s: &str, max: usize, tag: bool) -> bool {
    if s.len().saturating_mul(6) <= max {
        escape(out, s, tag);
        return false;
    }
    let start = out.len();
    escape(out, s, tag);
    if out.len() - start <= max {
        return false;
    }
    out.truncate(start);
    let bytes = s.as_bytes();
    let mut written = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (len, out_len) = if let Some((len, code)) = escape_code(bytes, i, tag) {
            (len, escaped(code).1)
        } else {
            let len = utf8_len(bytes[i]);
            (len, len)
        };
        if written + out_len > max {
            break;
        }
        written += out_len;
        i += len;
    }
    escape(out, &s[..i], tag);
    true
}

/// The length of the UTF-8 sequence starting with `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use vigil_core::trace::TraceIds;
    use vigil_core::{Field, Resource, SpanFields};

    use super::*;

    fn resource() -> Resource {
        let mut r = Resource::new("api", "prod").with_version("1.2.3");
        r.hostname = "host-1".into();
        r
    }

    fn format() -> EntryFormat {
        EntryFormat::new("rust", &["team:core".to_owned()])
    }

    fn record<'a>(resource: &'a Resource, message: &'a str, fields: &'a [Field<'a>]) -> Record<'a> {
        Record {
            timestamp: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            level: Level::Warning,
            target: "app::db",
            message,
            fields,
            spans: &[],
            trace: None,
            resource,
        }
    }

    fn render(record: &Record<'_>, format: &EntryFormat) -> (String, bool) {
        let mut out = Vec::new();
        let cut = write_entry(&mut out, record, format);
        (String::from_utf8(out).unwrap(), cut)
    }

    #[test]
    fn a_field_named_like_a_renamed_one_keeps_a_key_of_its_own() {
        let r = resource();
        let fields = [
            Field::new("status", "first"),
            Field::new("fields.status", "second"),
            Field::new("fields.user", "third"),
        ];
        let (json, _) = render(&record(&r, "m", &fields), &format());
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["status"], "warning");
        assert_eq!(value["fields.status"], "first");
        assert_eq!(value["fields.fields.status"], "second");
        assert_eq!(value["fields.user"], "third");
        // No key twice: serde_json keeps the last of duplicates, so count them in the text.
        assert_eq!(json.matches("\"fields.status\":").count(), 1, "{json}");
    }

    #[test]
    fn writes_the_datadog_attributes_and_fields() {
        let r = resource();
        let fields = [
            Field::new("user_id", 42u64),
            Field::new("ratio", 0.5f64),
            Field::new("ok", true),
            Field::new("status", "shadowed"),
            Field::new("dd.env", "forged"),
            Field::new("nan", f64::NAN),
        ];
        let rec = record(&r, "disk \"almost\" full\n", &fields);
        let (json, cut) = render(&rec, &format());
        assert!(!cut);
        assert_eq!(
            json,
            concat!(
                r#"{"message":"disk \"almost\" full\n","status":"warning","timestamp":1700000000123,"#,
                r#""service":"api","hostname":"host-1","ddsource":"rust","ddtags":"env:prod,version:1.2.3,team:core","#,
                r#""logger.name":"app::db","user_id":42,"ratio":0.5,"ok":true,"fields.status":"shadowed","#,
                r#""fields.dd.env":"forged","nan":"NaN"}"#
            )
        );
    }

    #[test]
    fn trace_ids_are_decimal_strings_of_the_low_64_bits() {
        let r = resource();
        let mut rec = record(&r, "m", &[]);
        rec.trace = Some(TraceIds {
            trace_id: (7u128 << 64) | 0x3039,
            span_id: u64::MAX,
        });
        let (json, _) = render(&rec, &format());
        assert!(
            json.ends_with(r#""dd.trace_id":"12345","dd.span_id":"18446744073709551615"}"#),
            "{json}"
        );
    }

    #[test]
    fn empty_environment_and_version_leave_clean_tags() {
        let mut r = resource();
        r.environment.clear();
        r.version.clear();
        let (json, _) = render(&record(&r, "m", &[]), &format());
        assert!(json.contains(r#""ddtags":"team:core""#), "{json}");
        let (json, _) = render(&record(&r, "m", &[]), &EntryFormat::new("rust", &[]));
        assert!(json.contains(r#""ddtags":"""#), "{json}");
        r.environment = "a,b".into();
        let (json, _) = render(&record(&r, "m", &[]), &EntryFormat::new("rust", &[]));
        assert!(json.contains(r#""ddtags":"env:a_b""#), "{json}");
    }

    #[test]
    fn span_fields_follow_event_fields() {
        let r = resource();
        let mut span = SpanFields::new("request");
        span.set("request_id", Value::Str("r-1"));
        let spans = [&span];
        let fields = [Field::new("a", 1u8)];
        let mut rec = record(&r, "m", &fields);
        rec.spans = &spans;
        let (json, _) = render(&rec, &format());
        assert!(json.ends_with(r#""a":1,"request_id":"r-1"}"#), "{json}");
    }

    #[test]
    fn oversized_message_is_cut_on_a_char_boundary_and_marked() {
        let r = resource();
        let message = "é\u{1}\"".repeat(300_000); // 1.5 MB of text, 3.3 MB escaped
        let rec = record(&r, &message, &[]);
        let (json, cut) = render(&rec, &format());
        assert!(cut);
        assert!(json.len() <= MAX_ENTRY_BYTES, "{}", json.len());
        assert!(json.len() > MAX_ENTRY_BYTES - 1024, "uses the room: {}", json.len());
        assert!(json.contains(r#""vigil.truncated":true,"vigil.original_size":"#));
        assert!(json.contains(r#""logger.name":"app::db""#));
    }

    #[test]
    fn oversized_fields_are_cut_too() {
        let r = resource();
        let big = "x".repeat(700_000);
        let fields = [
            Field::new("a", big.as_str()),
            Field::new("b", big.as_str()),
            Field::new("c", 1u8),
        ];
        let rec = record(&r, "short message", &fields);
        let (json, cut) = render(&rec, &format());
        assert!(cut);
        assert!(json.len() <= MAX_ENTRY_BYTES);
        assert!(
            json.contains(r#""message":"short message""#),
            "the short message is kept whole"
        );
    }

    #[test]
    fn a_cut_entry_is_valid_json_wherever_the_cut_falls() {
        let r = resource();
        let big = "y".repeat(1_200_000);
        // Where the cut falls with an empty first field: the second one fills the room left.
        let fields = [Field::new("a", ""), Field::new("b", big.as_str())];
        let (json, cut) = render(&record(&r, "m", &fields), &format());
        assert!(cut);
        let room = json.split(r#""b":""#).nth(1).unwrap().split('"').next().unwrap().len();
        // Grow the first field so that the second one's key ends 3 bytes before the cut ...
        // 3 bytes after it: at 0 or 1 byte of room not even its quotes fit.
        for pad in room - 3..=room + 3 {
            let a = "x".repeat(pad);
            let fields = [Field::new("a", a.as_str()), Field::new("b", big.as_str())];
            let (json, cut) = render(&record(&r, "m", &fields), &format());
            assert!(cut);
            assert!(json.len() <= MAX_ENTRY_BYTES);
            if let Err(error) = serde_json::from_str::<serde_json::Value>(&json) {
                panic!("pad {pad}: {error}: ...{}", &json[json.len() - 120..]);
            }
        }
    }

    #[test]
    fn absurd_resource_strings_are_cut() {
        let mut r = resource();
        r.service = "s".repeat(2_000_000);
        r.hostname = "h".repeat(2_000_000);
        let rec = record(&r, "m", &[]);
        let (json, cut) = render(&rec, &format());
        assert!(cut);
        assert!(json.len() <= MAX_ENTRY_BYTES);
    }

    #[test]
    fn reserved_names() {
        for name in RESERVED_ATTRIBUTES {
            assert!(is_reserved(name), "{name}");
        }
        assert!(is_reserved("dd.trace_id"));
        // A field named like a renamed one is renamed too, so keys never repeat.
        assert!(is_renamed("status") && is_renamed("fields.status") && is_renamed("fields.fields.dd.env"));
        assert!(!is_renamed("fields.user_id") && !is_renamed("fields"));
        assert!(!is_reserved("user_id"));
        assert!(!is_reserved("error.message"));
    }

    proptest! {
        #[test]
        fn limited_escape_is_a_valid_prefix(s in "\\PC*|[\\x00-\\xa0\\u{2028}\\u{2029}é\"\\\\]*", max in 0usize..64) {
            let mut out = Vec::new();
            let cut = escape_limited(&mut out, &s, max, false);
            prop_assert!(out.len() <= max);
            let mut quoted = vec![b'"'];
            quoted.extend_from_slice(&out);
            quoted.push(b'"');
            let text = std::str::from_utf8(&quoted).unwrap();
            let back: String = serde_json_lite::parse_string(text);
            prop_assert!(s.starts_with(&back));
            prop_assert_eq!(cut, back.len() < s.len());
            prop_assert!(!text[1..text.len() - 1].bytes().any(|b| b < 0x20));
        }
    }

    proptest! {
        // Megabyte-sized cases: a few are enough.
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn entries_never_exceed_the_limit(len in 900_000usize..1_200_000, field in 0usize..600_000) {
            let r = resource();
            let message = "ü".repeat(len / 2);
            let f = "\n".repeat(field);
            let fields = [Field::new("f", f.as_str())];
            let (json, cut) = render(&record(&r, &message, &fields), &format());
            prop_assert!(json.len() <= MAX_ENTRY_BYTES);
            prop_assert_eq!(cut, json.contains("vigil.truncated"));
        }
    }

    /// A tiny JSON string decoder, independent of the encoder above.
    mod serde_json_lite {
        pub fn parse_string(quoted: &str) -> String {
            let inner = &quoted[1..quoted.len() - 1];
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next().unwrap() {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    other => panic!("bad escape {other}"),
                }
            }
            out
        }
    }

    #[test]
    fn timestamps_before_the_epoch_are_zero() {
        let r = resource();
        let mut rec = record(&r, "m", &[]);
        rec.timestamp = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
        let (json, _) = render(&rec, &format());
        assert!(json.contains(r#""timestamp":0,"#));
    }
}
