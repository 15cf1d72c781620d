//! `classify_text` against an oracle on any text, for `tests/classify.rs` and the fuzz target
//! `fuzz/fuzz_targets/ws_classifier.rs` (which includes this file by path).
//!
//! The oracle is `serde_json::Value`: text within the size limit that it parses as an object
//! whose `"event"` member is a well-formed name gives that name; a string that is not a
//! well-formed name gives `other`; anything else gives `text`. Only where the text holds a
//! backslash (a key written with escapes may spell `event`, which the classifier does not
//! count) is the oracle partial.

#![allow(dead_code)]

use vigil_ws::{ClassifyOptions, EventLabel, FrameKind, classify_text};

/// `[A-Za-z0-9_.:-]`, the characters of a label value.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')
}

/// A well-formed event name: 1 to `max_len` characters of `[A-Za-z0-9_.:-]`.
pub fn is_well_formed(name: &str, max_len: usize) -> bool {
    !name.is_empty() && name.len() <= max_len && name.bytes().all(is_name_byte)
}

/// Checks `classify_text(text, options)`: a bounded label of name characters, a name that is
/// in the text, and the oracle's answer. Returns the first problem.
pub fn check_classify(text: &str, options: &ClassifyOptions) -> Result<(), String> {
    let label = classify_text(text, options);
    let value = label.as_str();
    if value.is_empty() || value.len() > options.max_event_len.max(6) || !value.bytes().all(is_name_byte) {
        return Err(format!("label {value:?} for {text:?}"));
    }
    if let EventLabel::Event(name) = label
        && (!is_well_formed(name, options.max_event_len) || !text.contains(&format!("\"{name}\"")))
    {
        return Err(format!("event {name:?} for {text:?}"));
    }
    match expected(text, options) {
        Some(Expected::Label(want)) if want != label => Err(format!("{label:?} for {text:?}, expected {want:?}")),
        Some(Expected::Event(want)) if label != EventLabel::Event(&want) => {
            Err(format!("{label:?} for {text:?}, expected the event {want:?}"))
        }
        _ => Ok(()),
    }
}

/// The oracle's answer: a label that borrows nothing, or an event name (owned: the oracle's
/// strings are its own).
enum Expected {
    Label(EventLabel<'static>),
    Event(String),
}

/// What the oracle says `text` gives, when it can tell.
fn expected(text: &str, options: &ClassifyOptions) -> Option<Expected> {
    const TEXT: EventLabel<'static> = EventLabel::Frame(FrameKind::Text);
    if text.len() > options.max_parse_bytes {
        return Some(Expected::Label(TEXT));
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Some(Expected::Label(TEXT));
    };
    let has_escapes = text.contains('\\');
    match map.get("event") {
        Some(_) if has_escapes => None,
        Some(serde_json::Value::String(name)) if is_well_formed(name, options.max_event_len) => {
            Some(Expected::Event(name.clone()))
        }
        Some(serde_json::Value::String(_)) => Some(Expected::Label(EventLabel::Other)),
        // No `event` member, or not a string.
        None | Some(_) => Some(Expected::Label(TEXT)),
    }
}
