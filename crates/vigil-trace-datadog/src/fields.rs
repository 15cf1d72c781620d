//! Compact storage for the field values of a span: every text value in one string, numbers
//! inline, names as the `&'static str` the callsite gave them.

use std::fmt::{self, Write as _};

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};

/// The longest text value kept, in bytes (Datadog's agent truncates meta values at 25,000).
pub(crate) const MAX_TEXT_VALUE: usize = 25_000;

/// A field value, with text as a range of [`Fields::text`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value {
    /// Text (a string, a `Debug` or `Display` rendering), as a byte range of the arena.
    Text { start: u32, end: u32 },
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

/// A value as handed out by [`Fields::iter`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum FieldRef<'a> {
    /// Text.
    Text(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl FieldRef<'_> {
    /// The value as an unsigned integer, when it is a non-negative integer or integer text.
    pub(crate) fn as_u64(self) -> Option<u64> {
        match self {
            FieldRef::U64(v) => Some(v),
            FieldRef::I64(v) => u64::try_from(v).ok(),
            FieldRef::Text(t) => t.trim().parse().ok(),
            FieldRef::F64(_) | FieldRef::Bool(_) => None,
        }
    }

    /// The value as `f64`, when it is a number.
    #[allow(clippy::cast_precision_loss)] // Metrics are floats on the wire.
    pub(crate) fn as_f64(self) -> Option<f64> {
        match self {
            FieldRef::U64(v) => Some(v as f64),
            FieldRef::I64(v) => Some(v as f64),
            FieldRef::F64(v) => v.is_finite().then_some(v),
            FieldRef::Text(_) | FieldRef::Bool(_) => None,
        }
    }
}

/// One named value.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    name: &'static str,
    value: Value,
}

/// The field values of one span or event. Text lives in one string (a value recorded again
/// replaces the entry and its old text is removed, so a long-lived span that records a field
/// again and again keeps only the latest value), so a span with any number of text fields
/// costs one allocation, and one with only numbers none.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Fields {
    text: String,
    entries: SmallVec<[Entry; 6]>,
}

impl Fields {
    /// The value of field `name`.
    pub(crate) fn get(&self, name: &str) -> Option<FieldRef<'_>> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| self.resolve(e.value))
    }

    /// The text of field `name`, when it is text.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            FieldRef::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Every field, in the order first recorded.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, FieldRef<'_>)> + '_ {
        self.entries.iter().map(|e| (e.name, self.resolve(e.value)))
    }

    fn resolve(&self, value: Value) -> FieldRef<'_> {
        match value {
            Value::Text { start, end } => {
                FieldRef::Text(self.text.get(start as usize..end as usize).unwrap_or_default())
            }
            Value::I64(v) => FieldRef::I64(v),
            Value::U64(v) => FieldRef::U64(v),
            Value::F64(v) => FieldRef::F64(v),
            Value::Bool(v) => FieldRef::Bool(v),
        }
    }

    /// Sets field `name` to `value` (a number, a boolean, or text already in the arena). The
    /// text of the value it replaces is removed from the arena.
    pub(crate) fn set(&mut self, name: &'static str, mut value: Value) {
        let Some(i) = self.entries.iter().position(|e| e.name == name) else {
            self.entries.push(Entry { name, value });
            return;
        };
        if let Value::Text { start, end } = self.entries[i].value
            && end > start
        {
            // Ranges never overlap: every range at or after the removed one moves down.
            self.text.replace_range(start as usize..end as usize, "");
            let len = end - start;
            let shift = |v: &mut Value| {
                if let Value::Text { start: s, end: e } = v
                    && *s >= end
                {
                    *s -= len;
                    *e -= len;
                }
            };
            self.entries.iter_mut().for_each(|e| shift(&mut e.value));
            shift(&mut value);
        }
        self.entries[i].value = value;
    }

    /// Sets field `name` to `text` (cut to [`MAX_TEXT_VALUE`] bytes).
    pub(crate) fn set_str(&mut self, name: &'static str, text: &str) {
        let start = self.text.len();
        self.text.push_str(cut(text, MAX_TEXT_VALUE));
        self.finish_text(name, start);
    }

    /// Sets field `name` to what `write` writes (cut to [`MAX_TEXT_VALUE`] bytes).
    pub(crate) fn set_fmt(&mut self, name: &'static str, write: impl FnOnce(&mut String) -> fmt::Result) {
        let start = self.text.len();
        if write(&mut self.text).is_err() {
            self.text.truncate(start);
        }
        let keep = start + cut(&self.text[start..], MAX_TEXT_VALUE).len();
        self.text.truncate(keep);
        self.finish_text(name, start);
    }

    fn finish_text(&mut self, name: &'static str, start: usize) {
        // Spans never come near 4 GiB of text; if one did, the value is dropped, not wrapped.
        let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(self.text.len())) else {
            self.text.truncate(start);
            return;
        };
        self.set(name, Value::Text { start: s, end: e });
    }

    /// Sets `name` only when it is not set yet.
    pub(crate) fn set_str_if_absent(&mut self, name: &'static str, text: &str) {
        if self.get(name).is_none() {
            self.set_str(name, text);
        }
    }
}

/// `s` cut to at most `max` bytes, at a char boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Records every field of a span (or event) into [`Fields`].
pub(crate) struct FieldsVisitor<'a>(pub(crate) &'a mut Fields);

impl Visit for FieldsVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set(field.name(), Value::F64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set(field.name(), Value::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.0.set(field.name(), Value::I64(v)),
            Err(_) => self.0.set_fmt(field.name(), |t| write!(t, "{value}")),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.0.set(field.name(), Value::U64(v)),
            Err(_) => self.0.set_fmt(field.name(), |t| write!(t, "{value}")),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.set_str(field.name(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.set_fmt(field.name(), |t| write!(t, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.set_fmt(field.name(), |t| write!(t, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_replaces() {
        let mut f = Fields::default();
        assert_eq!(f.iter().count(), 0);
        f.set_str("route", "/a");
        f.set("status", Value::U64(200));
        f.set_fmt("debug", |t| write!(t, "{:?}", "q"));
        f.set("status", Value::U64(503));
        f.set_str("route", "/b");
        assert_eq!(f.text("route"), Some("/b"));
        assert_eq!(f.get("status"), Some(FieldRef::U64(503)));
        assert_eq!(f.text("debug"), Some("\"q\""));
        let names: Vec<_> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["route", "status", "debug"]);
        f.set_str_if_absent("route", "/c");
        assert_eq!(f.text("route"), Some("/b"));
    }

    #[test]
    fn recording_a_field_again_does_not_grow_the_span() {
        let mut f = Fields::default();
        f.set_str("first", "kept");
        let long = "x".repeat(1000);
        for i in 0..10_000u64 {
            f.set_str("status", &format!("{i} {long}"));
            f.set_fmt("debug", |t| write!(t, "{i:?}"));
            f.set_str("between", "b");
            f.set("number", Value::U64(i));
        }
        // Text replaced by a number gives its room back too.
        f.set_str("gone", &long);
        f.set("gone", Value::Bool(true));
        assert_eq!(f.text("first"), Some("kept"));
        assert_eq!(f.text("status"), Some(format!("9999 {long}").as_str()));
        assert_eq!(f.text("debug"), Some("9999"));
        assert_eq!(f.text("between"), Some("b"));
        assert_eq!(f.get("number"), Some(FieldRef::U64(9999)));
        assert_eq!(f.get("gone"), Some(FieldRef::Bool(true)));
        assert_eq!(
            f.text.len(),
            "kept".len() + 1005 + 4 + 1,
            "only the live values are kept"
        );
    }

    #[test]
    fn cuts_long_text_at_a_char_boundary() {
        let mut f = Fields::default();
        let long = "é".repeat(MAX_TEXT_VALUE);
        f.set_str("a", &long);
        let kept = f.text("a").unwrap().to_owned();
        assert!(kept.len() <= MAX_TEXT_VALUE && kept.len() >= MAX_TEXT_VALUE - 1);
        f.set_fmt("b", |t| t.write_str(&long));
        assert_eq!(f.text("b").unwrap(), kept);
        assert_eq!(cut("abc", 2), "ab");
    }

    #[test]
    fn conversions() {
        assert_eq!(FieldRef::Text(" 201 ").as_u64(), Some(201));
        assert_eq!(FieldRef::I64(-1).as_u64(), None);
        assert_eq!(FieldRef::F64(f64::NAN).as_f64(), None);
        assert_eq!(FieldRef::U64(3).as_f64(), Some(3.0));
    }
}
