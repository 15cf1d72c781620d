//! `classify_text` never panics and only ever reports well-formed, bounded event names.

#[path = "common/classify_check.rs"]
mod classify_check;

use proptest::prelude::*;
use vigil_ws::{ClassifyOptions, EventLabel, FrameKind, classify_text};

fn is_well_formed(name: &str, max_len: usize) -> bool {
    !name.is_empty()
        && name.len() <= max_len
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
}

/// Checks what holds for every input.
fn check(text: &str, options: &ClassifyOptions) -> Result<(), TestCaseError> {
    let label = classify_text(text, options);
    match label {
        EventLabel::Event(name) => {
            prop_assert!(is_well_formed(name, options.max_event_len), "{name:?}");
            prop_assert!(text.contains(&format!("\"{name}\"")), "{name:?} comes from the text");
            prop_assert!(text.len() <= options.max_parse_bytes);
        }
        EventLabel::Other => prop_assert!(text.len() <= options.max_parse_bytes),
        EventLabel::Frame(kind) => prop_assert_eq!(kind, FrameKind::Text),
    }
    let value = label.as_str();
    prop_assert!(!value.is_empty() && value.len() <= options.max_event_len.max(6));
    prop_assert!(!value.contains(['\n', '\r', '"', '\\', ' ']));
    Ok(())
}

/// JSON-ish text: fragments that matter to the parser, glued together at random.
fn json_ish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just(",".to_owned()),
        Just("\"".to_owned()),
        Just("\"event\"".to_owned()),
        Just("\"event\":".to_owned()),
        Just("\\".to_owned()),
        Just("\\u00".to_owned()),
        Just("\\ud800".to_owned()),
        Just("null".to_owned()),
        Just("-1.5e308".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        "[a-z_:.-]{0,40}",
        "\\PC{0,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

/// Valid JSON: arbitrary values, and objects with an `event` member of any kind.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "[a-z_]{1,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::vec(("event|[a-z]{1,8}|.{0,8}", inner), 0..8)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn options() -> impl Strategy<Value = ClassifyOptions> {
    (0usize..200, 1usize..=128).prop_map(|(max_parse_bytes, max_event_len)| ClassifyOptions {
        max_parse_bytes,
        max_event_len,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_strings(text in any::<String>()) {
        check(&text, &ClassifyOptions::default())?;
    }

    #[test]
    fn never_panics_on_json_ish_strings(text in json_ish(), options in options()) {
        check(&text, &ClassifyOptions::default())?;
        check(&text, &options)?;
    }

    #[test]
    fn never_panics_on_json_values(value in json_value(), options in options()) {
        let text = value.to_string();
        check(&text, &ClassifyOptions::default())?;
        check(&text, &options)?;
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        check(&pretty, &ClassifyOptions::default())?;
    }

    /// Oracle: for valid JSON within the size limit, the result is what `serde_json::Value` says.
    #[test]
    fn agrees_with_serde_json_value(
        event in prop_oneof![
            "[A-Za-z0-9_.:-]{1,40}".prop_map(serde_json::Value::String),
            ".{0,12}".prop_map(serde_json::Value::String),
            json_value(),
        ],
        rest in json_value(),
    ) {
        let mut object = serde_json::Map::new();
        if let serde_json::Value::Object(fields) = rest {
            object.extend(fields.into_iter().filter(|(k, _)| k != "event"));
        }
        object.insert("event".to_owned(), event.clone());
        let text = serde_json::Value::Object(object).to_string();
        let options = ClassifyOptions { max_parse_bytes: usize::MAX, ..ClassifyOptions::default() };
        let label = classify_text(&text, &options);
        match &event {
            serde_json::Value::String(name) if is_well_formed(name, 32) => {
                prop_assert_eq!(label, EventLabel::Event(name));
            }
            serde_json::Value::String(_) => prop_assert_eq!(label, EventLabel::Other),
            _ => prop_assert_eq!(label, EventLabel::Frame(FrameKind::Text)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Oracle on any text, mostly not JSON: `serde_json::Value` (see `common/classify_check.rs`,
    /// which the fuzz target `ws_classifier` runs too).
    #[test]
    fn agrees_with_serde_json_value_on_any_text(text in json_ish(), options in options()) {
        let unlimited = ClassifyOptions { max_parse_bytes: usize::MAX, ..options };
        for options in [ClassifyOptions::default(), options, unlimited] {
            if let Err(problem) = classify_check::check_classify(&text, &options) {
                prop_assert!(false, "{}", problem);
            }
        }
    }

    /// The same on valid JSON objects, pretty-printed or not, with an `event` of any kind.
    #[test]
    fn agrees_with_serde_json_value_on_any_object(value in json_value(), event in json_value()) {
        let mut object = serde_json::Map::new();
        if let serde_json::Value::Object(fields) = value {
            object.extend(fields);
        }
        object.insert("event".to_owned(), event);
        let value = serde_json::Value::Object(object);
        let options = ClassifyOptions { max_parse_bytes: usize::MAX, ..ClassifyOptions::default() };
        for text in [value.to_string(), serde_json::to_string_pretty(&value).unwrap()] {
            if let Err(problem) = classify_check::check_classify(&text, &options) {
                prop_assert!(false, "{}", problem);
            }
        }
    }
}

#[test]
fn deeply_nested_input_does_not_overflow_the_stack() {
    let options = ClassifyOptions::default();
    for depth in [127, 128, 129, 10_000, 30_000] {
        let text = format!(r#"{{"event":"x","p":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let label = classify_text(&text, &options);
        assert!(
            matches!(label, EventLabel::Event("x") | EventLabel::Frame(FrameKind::Text)),
            "{depth}"
        );
    }
    let text = format!(r#"{{"event":"x","p":{}}}"#, "{\"a\":".repeat(20_000));
    assert_eq!(classify_text(&text, &options), EventLabel::Frame(FrameKind::Text));
}
