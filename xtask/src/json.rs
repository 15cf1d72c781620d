//! A small, strict JSON parser (RFC 8259), enough to check log lines and read criterion's
//! estimates without a dependency.
//!
//! Objects keep their members in document order, duplicates included; numbers keep their exact
//! text. Lone UTF-16 surrogates in `\u` escapes are rejected, since they cannot be a Rust `String`.

use std::fmt;

/// Deepest nesting of arrays and objects accepted, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its validated source text (for example `-1.5e3`).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object: its members in document order, duplicate keys kept.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object (the last one if the key is repeated); `None` for other values.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// The number as `u64`, if this is a number written as a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The keys that occur more than once in an object (each reported once).
    pub fn duplicate_keys(&self) -> Vec<&str> {
        let mut duplicates: Vec<&str> = Vec::new();
        if let Value::Object(members) = self {
            for (i, (key, _)) in members.iter().enumerate() {
                if members[..i].iter().any(|(k, _)| k == key) && !duplicates.contains(&key.as_str()) {
                    duplicates.push(key);
                }
            }
        }
        duplicates
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// A string value.
    pub fn str(text: impl Into<String>) -> Self {
        Value::String(text.into())
    }

    /// A number value, written the shortest way that reads back as the same `f64`.
    ///
    /// # Panics
    ///
    /// When `number` is NaN or infinite, which JSON cannot hold (a bug in the caller).
    pub fn num(number: f64) -> Self {
        assert!(number.is_finite(), "JSON numbers are finite, got {number}");
        // `-0.0` prints as `-0`, which is valid JSON; Rust never uses an exponent here.
        Value::Number(format!("{number}"))
    }

    /// An integer value.
    pub fn int(number: i64) -> Self {
        Value::Number(number.to_string())
    }

    /// An object with these members, in order.
    pub fn obj<K: Into<String>>(members: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An array of these items.
    pub fn arr(items: impl IntoIterator<Item = Value>) -> Self {
        Value::Array(items.into_iter().collect())
    }

    /// The value as JSON text, indented by two spaces per level (`serde_json`'s pretty style),
    /// without a trailing newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(0));
        out
    }

    /// The value as JSON text on one line, without any whitespace.
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None);
        out
    }

    /// Writes the value; `indent` is the current level when pretty-printing, `None` for compact.
    fn write(&self, out: &mut String, indent: Option<usize>) {
        let newline = |out: &mut String, level: usize| {
            out.push('\n');
            for _ in 0..level {
                out.push_str("  ");
            }
        };
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(text) => out.push_str(text),
            Value::String(text) => write_string(out, text),
            Value::Array(items) if items.is_empty() => out.push_str("[]"),
            Value::Object(members) if members.is_empty() => out.push_str("{}"),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if let Some(level) = indent {
                        newline(out, level + 1);
                    }
                    item.write(out, indent.map(|l| l + 1));
                }
                if let Some(level) = indent {
                    newline(out, level);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if let Some(level) = indent {
                        newline(out, level + 1);
                    }
                    write_string(out, key);
                    out.push(':');
                    if indent.is_some() {
                        out.push(' ');
                    }
                    value.write(out, indent.map(|l| l + 1));
                }
                if let Some(level) = indent {
                    newline(out, level);
                }
                out.push('}');
            }
        }
    }
}

/// Writes `text` as a JSON string: quotes, backslashes and control characters escaped.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = fmt::Write::write_fmt(out, format_args!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses one JSON value; only whitespace may surround it.
///
/// # Errors
///
/// When `text` is not exactly one valid JSON value.
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("unexpected content after the value"));
    }
    Ok(value)
}

/// The parser state: the input and the current byte offset.
struct Parser<'a> {
    /// The input.
    text: &'a str,
    /// The input as bytes.
    bytes: &'a [u8],
    /// Offset of the next unread byte.
    pos: usize,
}

impl Parser<'_> {
    /// An error at the current position.
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            offset: self.pos,
            message: message.into(),
        }
    }

    /// The next byte, if any, without consuming it.
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return).
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Consumes `literal` or fails.
    fn expect_literal(&mut self, literal: &str) -> Result<(), ParseError> {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(self.error(format!("expected `{literal}`")))
        }
    }

    /// Parses a value starting at the current (non-whitespace) position.
    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input, expected a value")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.expect_literal("true").map(|()| Value::Bool(true)),
            Some(b'f') => self.expect_literal("false").map(|()| Value::Bool(false)),
            Some(b'n') => self.expect_literal("null").map(|()| Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(other) => Err(self.error(format!("unexpected character `{}`", char::from(other)))),
        }
    }

    /// Parses an object; the current byte is `{`.
    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH}")));
        }
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:` after the key"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.error("expected `,` or `}` in object")),
            }
        }
    }

    /// Parses an array; the current byte is `[`.
    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH}")));
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]` in array")),
            }
        }
    }

    /// Consumes one or more ASCII digits, failing with `what` if there is none.
    fn digits(&mut self, what: &str) -> Result<(), ParseError> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if self.pos == start {
            Err(self.error(format!("expected a digit {what}")))
        } else {
            Ok(())
        }
    }

    /// Parses a number: `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.error("leading zeros are not allowed"));
                }
            }
            Some(b'1'..=b'9') => self.digits("in the integer part")?,
            _ => return Err(self.error("expected a digit in the integer part")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits("after the decimal point")?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits("in the exponent")?;
        }
        Ok(Value::Number(self.text[start..self.pos].to_owned()))
    }

    /// Parses a string; the current byte is the opening `"`.
    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Copy the run of plain characters up to the next quote, backslash or control character.
            let start = self.pos;
            while let Some(byte) = self.peek() {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // `start` and `pos` sit next to ASCII bytes or the ends, so they are char boundaries.
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.escape()?;
                    out.push(c);
                }
                Some(byte) => {
                    return Err(self.error(format!("unescaped control character U+{byte:04X} in string")));
                }
            }
        }
    }

    /// Parses the escape after a backslash.
    fn escape(&mut self) -> Result<char, ParseError> {
        let Some(byte) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            other => {
                self.pos -= 1;
                return Err(self.error(format!("invalid escape `\\{}`", char::from(other))));
            }
        })
    }

    /// Parses the `XXXX` of a `\uXXXX` escape, and a second `\uXXXX` after a high surrogate.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return Err(self.error("high surrogate not followed by a `\\u` low surrogate"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error(format!(
                        "high surrogate followed by U+{second:04X}, not a low surrogate"
                    )));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone low surrogate")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error(format!("invalid code point U+{code:04X}")))
    }

    /// Parses exactly four hex digits.
    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("expected four hex digits after `\\u`"))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    fn n(text: &str) -> Value {
        Value::Number(text.to_owned())
    }

    #[test]
    fn literals() {
        assert_eq!(parse("null"), Ok(Value::Null));
        assert_eq!(parse(" true "), Ok(Value::Bool(true)));
        assert_eq!(parse("\n\tfalse\r\n"), Ok(Value::Bool(false)));
        assert!(parse("nul").is_err());
        assert!(parse("True").is_err());
        assert!(parse("nullx").is_err());
    }

    #[test]
    fn numbers() {
        for ok in [
            "0",
            "-0",
            "12",
            "-12",
            "1.5",
            "-0.25",
            "1e3",
            "1E+3",
            "2.5e-10",
            "123456789012345678901234567890",
        ] {
            assert_eq!(parse(ok), Ok(n(ok)), "{ok}");
        }
        for bad in [
            "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "-01", "1.e3", "NaN", "Infinity",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(parse("4242").unwrap().as_u64(), Some(4242));
        assert_eq!(parse("-1").unwrap().as_u64(), None);
        assert_eq!(parse("1.5").unwrap().as_u64(), None);
        assert_eq!(parse("2.5e2").unwrap().as_f64(), Some(250.0));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(parse(r#""""#), Ok(s("")));
        assert_eq!(parse(r#""plain text""#), Ok(s("plain text")));
        assert_eq!(
            parse(r#""q\" b\\ s\/ \b\f\n\r\t""#),
            Ok(s("q\" b\\ s/ \u{8}\u{c}\n\r\t"))
        );
        assert_eq!(parse(r#""\u0041\u00e9\u20AC""#), Ok(s("Aé€")));
        assert_eq!(parse(r#""\u0000""#), Ok(s("\0")));
        // U+1F600 as a surrogate pair, and raw multi-byte UTF-8 around escapes.
        assert_eq!(parse(r#""é\ud83d\ude00ü""#), Ok(s("é😀ü")));
        assert_eq!(parse("\"😀\""), Ok(s("😀")));
    }

    #[test]
    fn bad_strings() {
        for bad in [
            r#""unterminated"#,
            r#""bad \x escape""#,
            r#""\u12""#,
            r#""\u12G4""#,
            r#""\ud83d""#,
            r#""\ud83d\u0041""#,
            r#""\ud83dx""#,
            r#""\ude00""#,
            "\"raw\nnewline\"",
            "\"raw\ttab\"",
            "\"trailing backslash\\",
            "'single'",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn arrays_and_objects() {
        assert_eq!(parse("[]"), Ok(Value::Array(vec![])));
        assert_eq!(parse("{ }"), Ok(Value::Object(vec![])));
        let value = parse(r#" {"a": [1, "x", null, {"b": false}], "c": {}} "#).unwrap();
        assert_eq!(
            value,
            Value::Object(vec![
                (
                    "a".to_owned(),
                    Value::Array(vec![
                        n("1"),
                        s("x"),
                        Value::Null,
                        Value::Object(vec![("b".to_owned(), Value::Bool(false))]),
                    ])
                ),
                ("c".to_owned(), Value::Object(vec![])),
            ])
        );
        assert_eq!(value.get("c"), Some(&Value::Object(vec![])));
        assert_eq!(value.get("missing"), None);
        assert_eq!(s("x").get("a"), None);
    }

    #[test]
    fn bad_structures() {
        for bad in [
            "",
            " ",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\" 1}",
            "{1:2}",
            "[1]]",
            "{} {}",
            "[1] x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn duplicate_keys_are_kept_and_reported() {
        let value = parse(r#"{"a":1,"b":2,"a":3,"a":4}"#).unwrap();
        assert_eq!(value.as_object().map(<[_]>::len), Some(4));
        assert_eq!(value.get("a"), Some(&n("4")));
        assert_eq!(value.duplicate_keys(), vec!["a"]);
        assert!(parse(r#"{"a":1}"#).unwrap().duplicate_keys().is_empty());
    }

    #[test]
    fn depth_is_limited() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).is_err());
        assert!(parse(&"[".repeat(100_000)).is_err());
    }

    #[test]
    fn error_offsets() {
        let err = parse(r#"{"a": tru}"#).unwrap_err();
        assert_eq!(err.offset, 6);
        assert!(err.to_string().contains("byte 6"), "{err}");
    }

    #[test]
    fn writing_round_trips() {
        let value = Value::obj([
            (
                "text",
                Value::str("quote \" backslash \\ newline \n tab \t bell \u{7} ü"),
            ),
            (
                "numbers",
                Value::arr([Value::num(0.5), Value::num(1_073_741_824.0), Value::int(-3)]),
            ),
            ("empty", Value::obj::<&str>([])),
            ("none", Value::arr([])),
            ("flags", Value::arr([Value::Bool(true), Value::Null])),
        ]);
        let pretty = value.to_pretty();
        assert_eq!(parse(&pretty).unwrap(), value);
        assert_eq!(parse(&value.to_compact()).unwrap(), value);
        assert!(
            pretty.contains("\n  \"numbers\": [\n    0.5,\n    1073741824,\n    -3\n  ],"),
            "{pretty}"
        );
        assert!(
            pretty.contains("\"empty\": {}") && pretty.contains("\"none\": []"),
            "{pretty}"
        );
        assert!(pretty.contains(r"bell \u0007 ü"), "{pretty}");
        assert_eq!(
            Value::obj([("a", Value::arr([Value::int(1)]))]).to_compact(),
            r#"{"a":[1]}"#
        );
        assert_eq!(
            value.get("numbers").and_then(Value::as_array).map(<[Value]>::len),
            Some(3)
        );
    }

    #[test]
    #[should_panic(expected = "finite")]
    fn no_nan_numbers() {
        let _ = Value::num(f64::NAN);
    }

    #[test]
    fn a_log_line() {
        let line = r#"{"timestamp":"2025-01-02T03:04:05.123456Z","level":"info","message":"User logged in","service":"quickstart","pid":4242,"user_id":123}"#;
        let value = parse(line).unwrap();
        assert_eq!(value.get("message").and_then(Value::as_str), Some("User logged in"));
        assert_eq!(value.get("pid").and_then(Value::as_u64), Some(4242));
    }
}
