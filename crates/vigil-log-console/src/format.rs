//! The two line formats. Each record becomes exactly one line: no message, field name or value
//! can produce a newline or a control character in the output.

use vigil_core::{Record, Value};

use crate::time::write_rfc3339;

/// Keys the JSON format writes itself; a record field with one of these names is written as
/// `fields.<name>` so it cannot overwrite them (and a field already named `fields.<name>`
/// as `fields.fields.<name>`, and so on, so no key appears twice).
pub const RESERVED_JSON_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "target",
    "service",
    "environment",
    "version",
    "pid",
];

/// Appends `record` as one JSON object and a newline.
///
/// Keys: `timestamp` (RFC 3339, UTC), `level`, `message`, `target`, `service`, `environment`,
/// `version` (when set), `pid`, then every field (event fields, then span fields such as
/// `request_id`). Non-finite floats are written as strings (`"NaN"`, `"inf"`, `"-inf"`).
pub fn write_json(out: &mut Vec<u8>, record: &Record<'_>) {
    let resource = record.resource;
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_rfc3339(out, record.timestamp);
    out.extend_from_slice(b"\",\"level\":\"");
    out.extend_from_slice(record.level.as_str().as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    json_string(out, record.message);
    out.extend_from_slice(b",\"target\":");
    json_string(out, record.target);
    out.extend_from_slice(b",\"service\":");
    json_string(out, &resource.service);
    out.extend_from_slice(b",\"environment\":");
    json_string(out, &resource.environment);
    if !resource.version.is_empty() {
        out.extend_from_slice(b",\"version\":");
        json_string(out, &resource.version);
    }
    out.extend_from_slice(b",\"pid\":");
    out.extend_from_slice(itoa::Buffer::new().format(resource.pid).as_bytes());
    record.for_each_field(|name, value| {
        out.push(b',');
        if is_renamed_json_key(name) {
            out.extend_from_slice(b"\"fields.");
            json_escaped(out, name);
            out.push(b'"');
        } else {
            json_string(out, name);
        }
        out.push(b':');
        json_value(out, value);
    });
    out.extend_from_slice(b"}\n");
}

/// Whether field `name` is written as `fields.<name>`: a reserved key, or `fields.` and a
/// name that is itself renamed. Renaming this way never gives two fields one key, nor a
/// field a reserved key (a field named `fields.level` would otherwise share `level`'s).
fn is_renamed_json_key(mut name: &str) -> bool {
    loop {
        if RESERVED_JSON_KEYS.contains(&name) {
            return true;
        }
        match name.strip_prefix("fields.") {
            Some(rest) => name = rest,
            None => return false,
        }
    }
}

fn json_value(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Str(s) => json_string(out, s),
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

/// Appends `s` as a quoted JSON string.
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    json_escaped(out, s);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// How [`escape`] writes a character that needs escaping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// JSON: `\u00XX` / `\u2028`.
    Json,
    /// Text inside quotes: Rust `Debug`-like, quotes and backslashes escaped.
    Quoted,
    /// Bare text (a message): only control characters escaped.
    Bare,
}

/// Appends `s`, escaping every control character (C0, DEL, C1) and the Unicode line and
/// paragraph separators, plus `"` and `\` unless `style` is [`Style::Bare`].
fn escape(out: &mut Vec<u8>, s: &str, style: Style) {
    let bytes = s.as_bytes();
    // The common case, printable ASCII with nothing to escape in this style, in one copy.
    let quotes_ok = style == Style::Bare;
    if bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && (quotes_ok || (b != b'"' && b != b'\\')))
    {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (len, code): (usize, u32) = match b {
            b'"' | b'\\' if style != Style::Bare => (1, u32::from(b)),
            0x00..=0x1f | 0x7f => (1, u32::from(b)),
            0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => (2, u32::from(bytes[i + 1])),
            0xe2 if bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) => {
                (3, 0x2000 + u32::from(bytes[i + 2] - 0x80))
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        match (code, style) {
            (0x22, _) => out.extend_from_slice(b"\\\""),
            (0x5c, _) => out.extend_from_slice(b"\\\\"),
            (0x0a, _) => out.extend_from_slice(b"\\n"),
            (0x0d, _) => out.extend_from_slice(b"\\r"),
            (0x09, _) => out.extend_from_slice(b"\\t"),
            (c, Style::Json) => {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((c >> shift) & 0xf) as usize]);
                }
            }
            (c, _) if c < 0x100 => {
                out.extend_from_slice(b"\\x");
                out.push(HEX[((c >> 4) & 0xf) as usize]);
                out.push(HEX[(c & 0xf) as usize]);
            }
            (c, _) => {
                out.extend_from_slice(b"\\u{");
                out.extend_from_slice(format!("{c:x}").as_bytes());
                out.push(b'}');
            }
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn json_escaped(out: &mut Vec<u8>, s: &str) {
    escape(out, s, Style::Json);
}

/// ANSI colours for the text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colors {
    /// Plain text.
    Off,
    /// ANSI escape sequences around the level, the timestamp and field names.
    On,
}

fn level_style(level: vigil_core::Level) -> &'static str {
    match level {
        vigil_core::Level::Trace => "\x1b[35m",
        vigil_core::Level::Debug => "\x1b[34m",
        vigil_core::Level::Info => "\x1b[32m",
        vigil_core::Level::Warning => "\x1b[33m",
        vigil_core::Level::Error => "\x1b[31m",
    }
}

/// Appends `record` as one human-readable line:
///
/// ```text
/// 2026-11-25T10:02:01.123456Z INFO    quickstart: User logged in user_id=42 service=quickstart environment=development pid=4242
/// ```
///
/// Text values are quoted when they contain spaces, `=`, quotes or escapes; control
/// characters (including ANSI escape sequences) are escaped, so user input cannot forge a
/// line or colour the terminal.
pub fn write_text(out: &mut Vec<u8>, record: &Record<'_>, colors: Colors) {
    let on = colors == Colors::On;
    if on {
        out.extend_from_slice(b"\x1b[2m");
    }
    write_rfc3339(out, record.timestamp);
    if on {
        out.extend_from_slice(b"\x1b[0m ");
        out.extend_from_slice(level_style(record.level).as_bytes());
    } else {
        out.push(b' ');
    }
    let level = record.level.as_str();
    for b in level.bytes() {
        out.push(b.to_ascii_uppercase());
    }
    if on {
        out.extend_from_slice(b"\x1b[0m");
    }
    out.extend(std::iter::repeat_n(b' ', 8 - level.len()));
    escape(out, record.target, Style::Bare);
    out.extend_from_slice(b": ");
    escape(out, record.message, Style::Bare);
    let resource = record.resource;
    let mut field = |name: &str, value: Value<'_>| {
        out.push(b' ');
        if on {
            out.extend_from_slice(b"\x1b[3m");
        }
        escape(out, name, Style::Bare);
        if on {
            out.extend_from_slice(b"\x1b[0m");
        }
        out.push(b'=');
        text_value(out, value);
    };
    record.for_each_field(&mut field);
    field("service", Value::Str(&resource.service));
    field("environment", Value::Str(&resource.environment));
    if !resource.version.is_empty() {
        field("version", Value::Str(&resource.version));
    }
    field("pid", Value::U64(u64::from(resource.pid)));
    out.push(b'\n');
}

fn text_value(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Str(s) if needs_quotes(s) => {
            out.push(b'"');
            escape(out, s, Style::Quoted);
            out.push(b'"');
        }
        Value::Str(s) => out.extend_from_slice(s.as_bytes()),
        other => json_value(out, other),
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == b'\\' || b >= 0x7f)
}
