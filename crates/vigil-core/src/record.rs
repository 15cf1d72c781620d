//! The log record every backend receives.

use std::fmt;
use std::time::SystemTime;

use crate::{Level, Resource};

/// A field value: what a log call can attach to a record.
///
/// Strings are borrowed: a record lives only for the duration of
/// [`LogBackend::log`](crate::LogBackend::log), so a backend that keeps data must copy it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Text (also what `Debug` and `Display` values are rendered to).
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A signed 128-bit integer.
    I128(i128),
    /// An unsigned 128-bit integer.
    U128(u128),
    /// A floating-point number (NaN and infinities are written as strings by the formatters).
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I128(v) => write!(f, "{v}"),
            Value::U128(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident as $as:ty),* $(,)?) => {
        $(impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(<$as>::from(v))
            }
        })*
    };
}

value_from!(
    i8 => I64 as i64, i16 => I64 as i64, i32 => I64 as i64, i64 => I64 as i64,
    u8 => U64 as u64, u16 => U64 as u64, u32 => U64 as u64, u64 => U64 as u64,
    i128 => I128 as i128, u128 => U128 as u128,
    f32 => F64 as f64, f64 => F64 as f64, bool => Bool as bool,
);

impl From<usize> for Value<'_> {
    fn from(v: usize) -> Self {
        Value::U64(v as u64)
    }
}

impl From<isize> for Value<'_> {
    fn from(v: isize) -> Self {
        Value::I64(v as i64)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Str(v)
    }
}

impl<'a, T> From<&'a T> for Value<'a>
where
    T: Copy + Into<Value<'a>> + NumberLike,
{
    fn from(v: &'a T) -> Self {
        (*v).into()
    }
}

/// Marker for the number and bool types whose references convert into a [`Value`].
pub trait NumberLike {}
macro_rules! number_like { ($($t:ty),*) => { $(impl NumberLike for $t {})* }; }
number_like!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool
);

/// A named field of a record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field<'a> {
    /// The field name, such as `user_id`.
    pub name: &'a str,
    /// The value.
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// A field named `name` holding `value`.
    pub fn new(name: &'a str, value: impl Into<Value<'a>>) -> Self {
        Field {
            name,
            value: value.into(),
        }
    }
}

/// An owned field value, as stored for a span's fields.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedValue {
    /// Text.
    Str(Box<str>),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A signed 128-bit integer.
    I128(i128),
    /// An unsigned 128-bit integer.
    U128(u128),
    /// A floating-point number.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl OwnedValue {
    /// Borrows this value.
    pub fn as_value(&self) -> Value<'_> {
        match self {
            OwnedValue::Str(s) => Value::Str(s),
            OwnedValue::I64(v) => Value::I64(*v),
            OwnedValue::U64(v) => Value::U64(*v),
            OwnedValue::I128(v) => Value::I128(*v),
            OwnedValue::U128(v) => Value::U128(*v),
            OwnedValue::F64(v) => Value::F64(*v),
            OwnedValue::Bool(v) => Value::Bool(*v),
        }
    }
}

impl From<Value<'_>> for OwnedValue {
    fn from(v: Value<'_>) -> Self {
        match v {
            Value::Str(s) => OwnedValue::Str(s.into()),
            Value::I64(v) => OwnedValue::I64(v),
            Value::U64(v) => OwnedValue::U64(v),
            Value::I128(v) => OwnedValue::I128(v),
            Value::U128(v) => OwnedValue::U128(v),
            Value::F64(v) => OwnedValue::F64(v),
            Value::Bool(v) => OwnedValue::Bool(v),
        }
    }
}

/// A field value whose text lives in a separate buffer (a span's text, or a per-thread
/// scratch buffer), so many values share one allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stored {
    Str(u32, u32),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

/// The fields recorded on one span (for example `request_id`), kept in the span's extensions
/// by [`crate::LogLayer`].
///
/// Built for the hot path: up to four fields are stored inline and their text shares one
/// buffer, itself inline up to 96 bytes, so recording a typical span allocates nothing beyond
/// the box the span's extensions keep it in.
///
/// ```
/// use vigil_core::{SpanFields, Value};
///
/// let mut fields = SpanFields::new("request");
/// fields.set("request_id", Value::Str("r-1"));
/// fields.set("attempt", Value::U64(1));
/// fields.set("attempt", Value::U64(2));
/// assert_eq!(fields.get("request_id"), Some(Value::Str("r-1")));
/// assert_eq!(fields.iter().count(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SpanFields {
    /// The span's name.
    pub name: &'static str,
    fields: smallvec::SmallVec<[(&'static str, Stored); 4]>,
    text: SpanText,
}

impl Default for SpanFields {
    fn default() -> Self {
        SpanFields::new("")
    }
}

/// A span's field text: inline up to 96 bytes, on the heap beyond.
type SpanText = smallstr::SmallString<[u8; 96]>;

/// A text buffer field values can be stored in: a `String` arena or a span's inline text.
pub(crate) trait TextBuf: std::fmt::Write + std::ops::Deref<Target = str> {
    fn push_text(&mut self, s: &str);
}

impl TextBuf for String {
    fn push_text(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl TextBuf for SpanText {
    fn push_text(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl SpanFields {
    /// No fields yet, for the span `name`.
    pub fn new(name: &'static str) -> Self {
        SpanFields {
            name,
            fields: smallvec::SmallVec::new(),
            text: SpanText::new(),
        }
    }

    /// Sets `name` to `value`, replacing an earlier value of the same field.
    pub fn set(&mut self, name: &'static str, value: Value<'_>) {
        let stored = Stored::store(value, &mut self.text);
        self.store(name, stored);
    }

    /// Sets `name` to text written by `write` (for `Debug` and `Display` values), without an
    /// intermediate string.
    pub fn set_fmt(&mut self, name: &'static str, args: std::fmt::Arguments<'_>) {
        let stored = Stored::store_fmt(args, &mut self.text);
        self.store(name, stored);
    }

    fn store(&mut self, name: &'static str, stored: Stored) {
        if let Some(slot) = self.fields.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = stored;
            self.compact_if_wasteful();
        } else {
            self.fields.push((name, stored));
        }
    }

    /// Drops text no field refers to any more, once it is most of the buffer (a span whose
    /// field is re-recorded in a loop stays small).
    fn compact_if_wasteful(&mut self) {
        let used: usize = self
            .fields
            .iter()
            .map(|(_, v)| if let Stored::Str(a, b) = v { (b - a) as usize } else { 0 })
            .sum();
        if self.text.len() > 96 && used * 2 < self.text.len() {
            let mut text = SpanText::with_capacity(used);
            for (_, v) in &mut self.fields {
                if let Stored::Str(a, b) = v {
                    let start = text.len();
                    text.push_str(&self.text[*a as usize..*b as usize]);
                    *v = Stored::Str(offset(start), offset(text.len()));
                }
            }
            self.text = text;
        }
    }

    fn value(&self, stored: Stored) -> Value<'_> {
        stored.resolve(&self.text)
    }

    /// The value of field `name`, if recorded.
    pub fn get(&self, name: &str) -> Option<Value<'_>> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| self.value(*v))
    }

    /// Every field, in the order first recorded.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Value<'_>)> {
        self.fields.iter().map(|(n, v)| (*n, self.value(*v)))
    }
}

impl Stored {
    /// Stores `value`, appending its text to `text`.
    pub(crate) fn store(value: Value<'_>, text: &mut impl TextBuf) -> Stored {
        match value {
            Value::Str(s) => {
                let start = text.len();
                text.push_text(s);
                Stored::Str(offset(start), offset(text.len()))
            }
            Value::I64(v) => Stored::I64(v),
            Value::U64(v) => Stored::U64(v),
            Value::I128(v) => Stored::I128(v),
            Value::U128(v) => Stored::U128(v),
            Value::F64(v) => Stored::F64(v),
            Value::Bool(v) => Stored::Bool(v),
        }
    }

    /// Stores formatted text, written straight into `text`.
    pub(crate) fn store_fmt(args: std::fmt::Arguments<'_>, text: &mut impl TextBuf) -> Stored {
        let start = text.len();
        let _ = text.write_fmt(args);
        Stored::Str(offset(start), offset(text.len()))
    }

    /// The value, reading its text from `text`.
    pub(crate) fn resolve(self, text: &str) -> Value<'_> {
        match self {
            Stored::Str(a, b) => Value::Str(&text[a as usize..b as usize]),
            Stored::I64(v) => Value::I64(v),
            Stored::U64(v) => Value::U64(v),
            Stored::I128(v) => Value::I128(v),
            Stored::U128(v) => Value::U128(v),
            Stored::F64(v) => Value::F64(v),
            Stored::Bool(v) => Value::Bool(v),
        }
    }
}

/// A text offset; span text beyond 4 GiB is not a case worth a wider type.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One log record: built once per event by [`crate::LogLayer`] and handed to every backend.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// When the event happened.
    pub timestamp: SystemTime,
    /// The severity.
    pub level: Level,
    /// The event's target: the module path for `tracing` macros, the logger's target for `log`.
    pub target: &'a str,
    /// The message.
    pub message: &'a str,
    /// The event's own fields (without the message).
    pub fields: &'a [Field<'a>],
    /// The fields of the enclosing spans, innermost span first.
    pub spans: &'a [&'a SpanFields],
    /// The trace ids of the innermost enclosing span, when a tracer (such as
    /// `vigil-trace-datadog`) is installed: for log/trace correlation.
    pub trace: Option<crate::trace::TraceIds>,
    /// The process that produced the record.
    pub resource: &'a Resource,
}

impl Record<'_> {
    /// Calls `f` for every field of the record, event fields first and then span fields from
    /// the innermost span outwards, each name once: an event field hides a span field of the
    /// same name, and an inner span hides an outer one.
    pub fn for_each_field(&self, mut f: impl FnMut(&str, Value<'_>)) {
        let mut seen: smallvec::SmallVec<[&str; 32]> = smallvec::SmallVec::new();
        for field in self.fields {
            if !seen.contains(&field.name) {
                seen.push(field.name);
                f(field.name, field.value);
            }
        }
        for span in self.spans {
            for (name, value) in span.iter() {
                if !seen.contains(&name) {
                    seen.push(name);
                    f(name, value);
                }
            }
        }
    }

    /// The value of field `name`: the event's own, else the innermost span's that has it.
    pub fn field(&self, name: &str) -> Option<Value<'_>> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
            .or_else(|| self.spans.iter().find_map(|s| s.get(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_fields_hide_span_fields_and_inner_spans_hide_outer() {
        let mut outer = SpanFields::new("outer");
        outer.set("request_id", Value::Str("r-outer"));
        outer.set("a", Value::I64(1));
        let mut inner = SpanFields::new("inner");
        inner.set("request_id", Value::Str("r-inner"));
        inner.set("b", Value::Bool(true));
        let (outer, inner) = (&outer, &inner);
        let resource = Resource::new("svc", "test");
        let fields = [Field::new("a", 7u8), Field::new("msg_id", "x")];
        let spans = [inner, outer];
        let record = Record {
            timestamp: SystemTime::UNIX_EPOCH,
            level: Level::Info,
            target: "t",
            message: "m",
            fields: &fields,
            spans: &spans,
            trace: None,
            resource: &resource,
        };
        let mut seen = Vec::new();
        record.for_each_field(|n, v| seen.push(format!("{n}={v}")));
        assert_eq!(seen, ["a=7", "msg_id=x", "request_id=r-inner", "b=true"]);
        assert_eq!(record.field("request_id"), Some(Value::Str("r-inner")));
        assert_eq!(record.field("nope"), None);
    }

    #[test]
    fn re_recorded_span_fields_stay_small() {
        let mut f = SpanFields::new("loop");
        f.set("keep", Value::Str("kept value"));
        for i in 0..10_000 {
            f.set_fmt("counter", format_args!("iteration number {i}"));
        }
        assert_eq!(f.get("keep"), Some(Value::Str("kept value")));
        assert_eq!(f.get("counter"), Some(Value::Str("iteration number 9999")));
        assert!(f.text.len() < 256, "{}", f.text.len());
    }

    #[test]
    fn values_convert_from_common_types() {
        let s = String::from("x");
        assert_eq!(Value::from(&s), Value::Str("x"));
        assert_eq!(Value::from(&5u32), Value::U64(5));
        assert_eq!(Value::from(-5i32), Value::I64(-5));
        assert_eq!(Value::from(1.5f32), Value::F64(1.5));
        assert_eq!(OwnedValue::from(Value::Str("y")).as_value(), Value::Str("y"));
    }
}
