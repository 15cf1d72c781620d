//! The line formats' properties on any record, for `tests/format_props.rs` and the fuzz target
//! `fuzz/fuzz_targets/console_format.rs` (which includes this file by path): one record is
//! exactly one line, with no control character but the colours' own escape sequences; and the
//! JSON line parses back (with `serde_json`, and with the small parser below that keeps every
//! number's text and every duplicate key) to the same fields and values.

#![allow(dead_code)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use vigil_core::{Field, Level, OwnedValue, Record, Resource, SpanFields, Value};
use vigil_log_console::{Colors, write_json, write_rfc3339, write_text};

/// Span field names (they are `&'static str`): plain ones, the JSON format's own keys, and
/// names a `fields.` prefix could collide with.
pub const SPAN_FIELD_NAMES: &[&str] = &[
    "request_id",
    "user_id",
    "timestamp",
    "level",
    "message",
    "pid",
    "fields.level",
    "fields.fields.level",
    "fields.",
    "",
    "a b=\"c\"",
    "é\n",
];

/// Every level, for generators.
pub const LEVELS: &[Level] = &[Level::Trace, Level::Debug, Level::Info, Level::Warning, Level::Error];

/// A record's parts, owned.
#[derive(Clone, Debug)]
pub struct RecordInput {
    /// The level.
    pub level: Level,
    /// The target.
    pub target: String,
    /// The message.
    pub message: String,
    /// The event's fields.
    pub fields: Vec<(String, OwnedValue)>,
    /// The enclosing spans' fields, innermost first, by index into [`SPAN_FIELD_NAMES`].
    pub spans: Vec<Vec<(usize, OwnedValue)>>,
    /// The resource's service, environment and version.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The version (empty: not written).
    pub version: String,
    /// The process id.
    pub pid: u32,
    /// Seconds and nanoseconds since the epoch.
    pub time: (u64, u32),
}

/// Formats the record in every way and checks each line. Returns the first problem.
pub fn check_record(input: &RecordInput) -> Result<(), String> {
    let spans: Vec<SpanFields> = input
        .spans
        .iter()
        .map(|fields| {
            let mut span = SpanFields::new("span");
            for (i, value) in fields {
                span.set(SPAN_FIELD_NAMES[i % SPAN_FIELD_NAMES.len()], value.as_value());
            }
            span
        })
        .collect();
    let span_refs: Vec<&SpanFields> = spans.iter().collect();
    let fields: Vec<Field<'_>> = input
        .fields
        .iter()
        .map(|(name, value)| Field {
            name,
            value: value.as_value(),
        })
        .collect();
    let resource = Resource {
        service: input.service.clone(),
        environment: input.environment.clone(),
        version: input.version.clone(),
        hostname: "host".to_owned(),
        pid: input.pid,
    };
    // Up to the year 9999, which RFC 3339 can write.
    let secs = input.time.0 % 253_402_300_800;
    let timestamp = SystemTime::UNIX_EPOCH + Duration::new(secs, input.time.1 % 1_000_000_000);
    let record = Record {
        timestamp,
        level: input.level,
        target: &input.target,
        message: &input.message,
        fields: &fields,
        spans: &span_refs,
        trace: None,
        resource: &resource,
    };
    let mut out = Vec::new();
    write_text(&mut out, &record, Colors::Off);
    check_text_line(&out, false).map_err(|e| format!("text: {e}: {:?}", String::from_utf8_lossy(&out)))?;
    out.clear();
    write_text(&mut out, &record, Colors::On);
    check_text_line(&out, true).map_err(|e| format!("coloured text: {e}: {:?}", String::from_utf8_lossy(&out)))?;
    out.clear();
    write_json(&mut out, &record);
    check_json_line(&out, &record).map_err(|e| format!("json: {e}: {:?}", String::from_utf8_lossy(&out)))
}

/// The escape sequences the coloured text format writes itself.
const SGR: &[&str] = &[
    "\x1b[2m", "\x1b[0m", "\x1b[3m", "\x1b[35m", "\x1b[34m", "\x1b[32m", "\x1b[33m", "\x1b[31m",
];

/// Whether `c` could end or forge a line, or drive a terminal: C0, DEL, C1, and the Unicode
/// line and paragraph separators.
fn is_forbidden(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// One line: UTF-8, one `\n` at its very end, no other control character (in colour, none
/// but the format's own escape sequences).
fn check_text_line(out: &[u8], colors: bool) -> Result<(), String> {
    let line = std::str::from_utf8(out).map_err(|e| format!("not UTF-8: {e}"))?;
    let body = line.strip_suffix('\n').ok_or("no newline at the end")?;
    let mut body = body.to_owned();
    if colors {
        for sgr in SGR {
            body = body.replace(sgr, "");
        }
    }
    if let Some(c) = body.chars().find(|&c| is_forbidden(c)) {
        return Err(format!("control character {c:?} in the line"));
    }
    Ok(())
}

/// A JSON value as the line writes it: a string (decoded) or another token (as written).
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Str(String),
    Raw(String),
}

/// Parses one flat JSON object (as the line format writes it: no whitespace, no nesting) into
/// its members in order, duplicates kept.
fn parse_flat_object(line: &str) -> Result<Vec<(String, Token)>, String> {
    let mut rest = line.strip_prefix('{').ok_or("no {")?;
    let mut members = Vec::new();
    if let Some(r) = rest.strip_prefix('}') {
        return if r.is_empty() {
            Ok(members)
        } else {
            Err("text after }".to_owned())
        };
    }
    loop {
        let (key, r) = json_string_token(rest)?;
        rest = r.strip_prefix(':').ok_or("no : after a key")?;
        let (value, r) = if rest.starts_with('"') {
            let (s, r) = json_string_token(rest)?;
            (Token::Str(s), r)
        } else {
            let end = rest.find([',', '}']).ok_or("unterminated value")?;
            (Token::Raw(rest[..end].to_owned()), &rest[end..])
        };
        members.push((key, value));
        if let Some(r) = r.strip_prefix(',') {
            rest = r;
        } else if let Some(r) = r.strip_prefix('}') {
            return if r.is_empty() {
                Ok(members)
            } else {
                Err("text after }".to_owned())
            };
        } else {
            return Err("no , or } after a value".to_owned());
        }
    }
}

/// A JSON string at the start of `s`, decoded, and the rest of `s`.
fn json_string_token(s: &str) -> Result<(String, &str), String> {
    let body = s.strip_prefix('"').ok_or("no string")?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('/') => out.push('/'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('u') => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let code = u32::from_str_radix(&hex, 16).map_err(|_| format!("bad \\u{hex}"))?;
                    out.push(char::from_u32(code).ok_or_else(|| format!("\\u{hex} is not a character"))?);
                }
                other => return Err(format!("bad escape {other:?}")),
            },
            c if u32::from(c) < 0x20 => return Err(format!("raw control character {c:?} in a string")),
            c => out.push(c),
        }
    }
    Err("unterminated string".to_owned())
}

/// What `value` is written as.
fn expected_token(value: Value<'_>) -> Token {
    match value {
        Value::Str(s) => Token::Str(s.to_owned()),
        Value::I64(v) => Token::Raw(v.to_string()),
        Value::U64(v) => Token::Raw(v.to_string()),
        Value::I128(v) => Token::Raw(v.to_string()),
        Value::U128(v) => Token::Raw(v.to_string()),
        Value::F64(v) if v.is_nan() => Token::Str("NaN".to_owned()),
        Value::F64(v) if v.is_infinite() => Token::Str(if v > 0.0 { "inf" } else { "-inf" }.to_owned()),
        Value::F64(v) => Token::Raw(format!("{v:?}")),
        Value::Bool(v) => Token::Raw(v.to_string()),
    }
}

fn same_token(got: &Token, expected: &Token) -> bool {
    match (got, expected) {
        // A float is written in its shortest round-trip form: compare the numbers.
        (Token::Raw(a), Token::Raw(b)) if b.contains(['.', 'e', 'E', 'i', 'N']) => {
            a.parse::<f64>().ok().map(f64::to_bits) == b.parse::<f64>().ok().map(f64::to_bits)
        }
        _ => got == expected,
    }
}

/// One line that `serde_json` parses as an object, and the small parser to the record's keys
/// and values: the format's own keys first, then every field (event fields, then span fields
/// innermost first, each name once) under its name, or under its name with `fields.` prefixes
/// when that is taken; no key twice.
fn check_json_line(out: &[u8], record: &Record<'_>) -> Result<(), String> {
    let line = std::str::from_utf8(out).map_err(|e| format!("not UTF-8: {e}"))?;
    let body = line.strip_suffix('\n').ok_or("no newline at the end")?;
    if body.contains('\n') {
        return Err("a newline inside the line".to_owned());
    }
    if let Some(c) = body.chars().find(|&c| is_forbidden(c)) {
        return Err(format!("control character {c:?} in the line"));
    }
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("serde_json: {e}"))?;
    if !value.is_object() {
        return Err("not an object".to_owned());
    }
    let members = parse_flat_object(body)?;
    let mut seen = HashSet::new();
    for (key, _) in &members {
        if !seen.insert(key.as_str()) {
            return Err(format!("key {key:?} twice"));
        }
    }
    let mut timestamp = Vec::new();
    write_rfc3339(&mut timestamp, record.timestamp);
    let resource = record.resource;
    let mut expected: Vec<(String, Token)> = vec![
        (
            "timestamp".to_owned(),
            Token::Str(String::from_utf8(timestamp).map_err(|e| e.to_string())?),
        ),
        ("level".to_owned(), Token::Str(record.level.as_str().to_owned())),
        ("message".to_owned(), Token::Str(record.message.to_owned())),
        ("target".to_owned(), Token::Str(record.target.to_owned())),
        ("service".to_owned(), Token::Str(resource.service.clone())),
        ("environment".to_owned(), Token::Str(resource.environment.clone())),
    ];
    if !resource.version.is_empty() {
        expected.push(("version".to_owned(), Token::Str(resource.version.clone())));
    }
    expected.push(("pid".to_owned(), Token::Raw(resource.pid.to_string())));
    let fixed = expected.len();
    record.for_each_field(|name, value| expected.push((name.to_owned(), expected_token(value))));
    if members.len() != expected.len() {
        return Err(format!("{} members, expected {}", members.len(), expected.len()));
    }
    for (i, ((key, got), (name, want))) in members.iter().zip(&expected).enumerate() {
        let key_ok = if i < fixed {
            key == name
        } else {
            let mut k = key.as_str();
            while k != name {
                match k.strip_prefix("fields.") {
                    Some(r) => k = r,
                    None => break,
                }
            }
            k == name
        };
        if !key_ok {
            return Err(format!("member {i} is {key:?}, expected the field {name:?}"));
        }
        if !same_token(got, want) {
            return Err(format!("{key:?} is {got:?}, expected {want:?}"));
        }
    }
    Ok(())
}
