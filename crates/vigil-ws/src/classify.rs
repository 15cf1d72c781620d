//! Event classification: which `event` label a message gets.
//!
//! [`classify_text`] is the pure part: it reads the top-level `"event"` field of a JSON text
//! message (Phoenix-style `{"event": "comment_created", "payload": {..}}`) and checks the
//! name's syntax. Bounding the number of distinct names (allow-list, learned-name cap) is
//! stateful and lives in [`WsMetrics`](crate::WsMetrics).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::message::{FrameKind, WsMessage};

/// Text messages longer than this many bytes are not parsed by default: they count as `text`.
pub const DEFAULT_MAX_PARSE_BYTES: usize = 64 * 1024;

/// The default longest event name kept, in characters.
pub const DEFAULT_MAX_EVENT_LEN: usize = 32;

/// The largest accepted `max_event_len`.
pub const MAX_EVENT_LEN_LIMIT: usize = 128;

/// The label of an event name that was rejected: invalid, too long, not allow-listed, or
/// beyond the cap of learned names.
pub const OTHER: &str = "other";

/// Limits for [`classify_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifyOptions {
    /// Text longer than this (in bytes) is not parsed and counts as `text`.
    /// Default [`DEFAULT_MAX_PARSE_BYTES`] (64 KiB); 0 turns parsing off.
    pub max_parse_bytes: usize,
    /// Event names longer than this (in characters) count as `other`.
    /// Default [`DEFAULT_MAX_EVENT_LEN`] (32).
    pub max_event_len: usize,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        ClassifyOptions {
            max_parse_bytes: DEFAULT_MAX_PARSE_BYTES,
            max_event_len: DEFAULT_MAX_EVENT_LEN,
        }
    }
}

/// What a message is, for the `event` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventLabel<'a> {
    /// A JSON object whose top-level `"event"` is a well-formed name: non-empty, at most
    /// `max_event_len` characters, all in `[A-Za-z0-9_.:-]`. Borrowed from the message.
    Event(&'a str),
    /// A JSON object whose top-level `"event"` is a string that is not a well-formed name
    /// (too long, another character, or written with JSON escapes): counted as `other`.
    Other,
    /// No event: the frame type (for text: not JSON, not an object, no string `"event"`
    /// field, or longer than `max_parse_bytes`).
    Frame(FrameKind),
}

impl<'a> EventLabel<'a> {
    /// The label value before any allow-list or cap: the name, `other` or the frame type.
    pub fn as_str(&self) -> &'a str {
        match *self {
            EventLabel::Event(name) => name,
            EventLabel::Other => OTHER,
            EventLabel::Frame(kind) => kind.as_str(),
        }
    }
}

impl fmt::Display for EventLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `c` may appear in a channel or event name: `[A-Za-z0-9_.:-]`.
pub(crate) const fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-')
}

/// Why `name` is not a well-formed event name of at most `max_len` characters, if it is not.
pub(crate) fn event_name_problem(name: &str, max_len: usize) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > max_len {
        Some("it is longer than the longest event name kept")
    } else if !name.bytes().all(is_name_byte) {
        Some("only A-Z, a-z, 0-9, '_', '.', ':' and '-' are allowed")
    } else {
        None
    }
}

/// Classifies the text of a text message.
///
/// Only a JSON object whose top-level `"event"` member is a string counts as an event
/// (Phoenix-style messages); the key must be written literally as `"event"`. Everything else
/// is [`EventLabel::Frame`]`(`[`FrameKind::Text`]`)`: plain text, other JSON values, objects
/// without the member or with a non-string one, invalid JSON, and any text longer than
/// `options.max_parse_bytes` (which is not parsed at all). An event name that is not
/// well-formed (see [`EventLabel::Event`]) gives [`EventLabel::Other`], so hostile clients
/// cannot inject label text. When the member appears twice, the last one counts, as in
/// `serde_json::Value`.
///
/// The common case allocates nothing: the name is borrowed from `text`, and the rest of the
/// object (nested payloads included) is checked without being stored; only a string written
/// with JSON escapes (`\n`, `\"`, `\u00e9`) elsewhere in the message costs one scratch buffer
/// for that message. Parsing stops at the first byte that is not valid JSON. This function never
/// panics, whatever the input (it is property-tested with arbitrary strings); nesting deeper
/// than `serde_json`'s recursion limit is invalid JSON, so `text`.
///
/// ```
/// use vigil_ws::{ClassifyOptions, EventLabel, FrameKind, classify_text};
///
/// let options = ClassifyOptions::default();
/// let phoenix = r#"{"topic":"room:1","event":"comment_created","payload":{"body":"hi"},"ref":"7"}"#;
/// assert_eq!(classify_text(phoenix, &options), EventLabel::Event("comment_created"));
/// assert_eq!(classify_text(r#"{"event":"a\nb"}"#, &options), EventLabel::Other);
/// assert_eq!(classify_text(r#"{"event":42}"#, &options), EventLabel::Frame(FrameKind::Text));
/// assert_eq!(classify_text("hello", &options).as_str(), "text");
/// ```
pub fn classify_text<'a>(text: &'a str, options: &ClassifyOptions) -> EventLabel<'a> {
    const TEXT: EventLabel<'static> = EventLabel::Frame(FrameKind::Text);
    if text.len() > options.max_parse_bytes
        || !text.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('{')
        // The key must be written literally, so this is a cheap necessary condition that
        // spares a full parse of JSON messages without an event.
        || !text.contains("\"event\"")
    {
        return TEXT;
    }
    match serde_json::from_str::<Envelope<'a>>(text) {
        Ok(Envelope {
            event: Some(EventField::Name(name)),
        }) => match event_name_problem(name, options.max_event_len) {
            None => EventLabel::Event(name),
            Some(_) => EventLabel::Other,
        },
        Ok(Envelope {
            event: Some(EventField::Escaped),
        }) => EventLabel::Other,
        _ => TEXT,
    }
}

/// Classifies any message: text through [`classify_text`], every other frame by its type.
///
/// ```
/// # #[cfg(feature = "tungstenite")] {
/// use tokio_tungstenite::tungstenite::Message;
/// use vigil_ws::{ClassifyOptions, EventLabel, FrameKind, classify};
///
/// let options = ClassifyOptions::default();
/// let msg = Message::text(r#"{"event":"phx_join"}"#);
/// assert_eq!(classify(&msg, &options), EventLabel::Event("phx_join"));
/// assert_eq!(classify(&Message::binary(vec![1, 2]), &options), EventLabel::Frame(FrameKind::Binary));
/// # }
/// ```
pub fn classify<'a, M: WsMessage + ?Sized>(message: &'a M, options: &ClassifyOptions) -> EventLabel<'a> {
    match message.frame_kind() {
        FrameKind::Text => classify_text(message.as_text().unwrap_or_default(), options),
        kind => EventLabel::Frame(kind),
    }
}

/// The part of a JSON object that matters: its top-level `"event"` member.
struct Envelope<'a> {
    event: Option<EventField<'a>>,
}

/// The value of the `"event"` member.
enum EventField<'a> {
    /// A string without escapes, borrowed from the input.
    Name(&'a str),
    /// A string with escapes (never a well-formed name once decoded, or a hostile spelling of one).
    Escaped,
    /// Not a string.
    NotString,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event = None;
        while let Some(IsEventKey(is_event)) = map.next_key()? {
            if is_event {
                event = Some(map.next_value()?);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(Envelope { event })
    }
}

/// A map key: whether it is `"event"`, written without escapes.
struct IsEventKey(bool);

impl<'de> Deserialize<'de> for IsEventKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = IsEventKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<IsEventKey, E> {
                Ok(IsEventKey(v == "event"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IsEventKey, E> {
                Ok(IsEventKey(false))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for EventField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventFieldVisitor)
    }
}

struct EventFieldVisitor;

impl<'de> Visitor<'de> for EventFieldVisitor {
    type Value = EventField<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(EventField::Name(v))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(EventField::Escaped)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(EventField::NotString)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(EventField::NotString)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(EventField::NotString)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(EventField::NotString)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(EventField::NotString)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(EventField::NotString)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_seq(seq).map(|Skip| EventField::NotString)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_map(map).map(|Skip| EventField::NotString)
    }
}

/// Any JSON value, checked and thrown away.
///
/// Unlike `serde::de::IgnoredAny` (for which `serde_json` keeps a stack of open brackets in
/// a scratch buffer, allocated per parse as soon as an ignored value nests two levels deep),
/// this recurses through the visitor, so skipping a nested payload allocates nothing; only a
/// string written with escapes is decoded into the scratch buffer. Depth is bounded by
/// `serde_json`'s recursion limit.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(text: &str) -> String {
        classify_text(text, &ClassifyOptions::default()).to_string()
    }

    #[test]
    fn json_objects_with_a_string_event_give_the_event() {
        assert_eq!(label(r#"{"event":"ping"}"#), "ping");
        assert_eq!(
            label(" \n\t{ \"event\" : \"phx_join\" , \"ref\": null }\r\n"),
            "phx_join"
        );
        assert_eq!(label(r#"{"payload":{"event":"inner"},"event":"outer"}"#), "outer");
        assert_eq!(label(r#"{"event":"a","event":"b"}"#), "b");
        assert_eq!(label(r#"{"event":"room:lobby.v2-x_y"}"#), "room:lobby.v2-x_y");
        assert_eq!(label(&format!(r#"{{"event":"{}"}}"#, "e".repeat(32))), "e".repeat(32));
    }

    #[test]
    fn malformed_event_names_are_other() {
        for text in [
            r#"{"event":""}"#,
            r#"{"event":"a\nb"}"#,
            r#"{"event":"a\"b"}"#,
            r#"{"event":"has space"}"#,
            r#"{"event":"\u0061"}"#,
            r#"{"event":"é"}"#,
            r#"{"event":"x}"} "#,
        ] {
            assert_eq!(label(text), "other", "{text}");
        }
        assert_eq!(label(&format!(r#"{{"event":"{}"}}"#, "e".repeat(33))), "other");
    }

    #[test]
    fn everything_else_is_text() {
        for text in [
            "",
            "hello",
            "\"event\"",
            r#"["event","x"]"#,
            r#"{"event":1}"#,
            r#"{"event":null}"#,
            r#"{"event":["x"]}"#,
            r#"{"event":{"name":"x"}}"#,
            r#"{"payload":{"event":"inner"}}"#,
            r#"{"\u0065vent":"x"}"#,
            r#"{"event":"x""#,
            r#"{"event":"x"} trailing"#,
            r#"{"event":"x"}{"#,
            &format!("{}\"event\"{}", "{".repeat(200), "}".repeat(200)),
        ] {
            assert_eq!(label(text), "text", "{text}");
        }
    }

    #[test]
    fn long_payloads_are_not_parsed() {
        let small = ClassifyOptions {
            max_parse_bytes: 20,
            ..ClassifyOptions::default()
        };
        assert_eq!(classify_text(r#"{"event":"x"}"#, &small), EventLabel::Event("x"));
        let long = format!(r#"{{"event":"x","pad":"{}"}}"#, "p".repeat(20));
        assert_eq!(classify_text(&long, &small), EventLabel::Frame(FrameKind::Text));
        let off = ClassifyOptions {
            max_parse_bytes: 0,
            ..ClassifyOptions::default()
        };
        assert_eq!(
            classify_text(r#"{"event":"x"}"#, &off),
            EventLabel::Frame(FrameKind::Text)
        );
        let short_names = ClassifyOptions {
            max_event_len: 3,
            ..ClassifyOptions::default()
        };
        assert_eq!(classify_text(r#"{"event":"abcd"}"#, &short_names), EventLabel::Other);
    }
}
