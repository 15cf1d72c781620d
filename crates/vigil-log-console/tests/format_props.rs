//! Properties of the line formats on any record: exactly one line per record, no control
//! character in it (but the colours' own), and JSON that parses back to the same fields.
//! The fuzz target `fuzz/fuzz_targets/console_format.rs` runs the same checks.

#[path = "common/format_check.rs"]
mod format_check;

use format_check::{LEVELS, RecordInput, SPAN_FIELD_NAMES, check_record};
use proptest::prelude::*;
use vigil_core::OwnedValue;

/// Any string, or text made of what escaping and the formats care about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\\\\"\n\r\t\u{0}\u{1b}\u{7f}\u{85}\u{2028}\u{2029} =a{}é]{0,12}",
        prop::sample::select(
            &[
                "timestamp",
                "level",
                "message",
                "pid",
                "fields.level",
                "fields.fields.pid",
                "fields."
            ][..]
        )
        .prop_map(str::to_owned),
    ]
}

fn value() -> impl Strategy<Value = OwnedValue> {
    prop_oneof![
        text().prop_map(|s| OwnedValue::Str(s.into())),
        any::<i64>().prop_map(OwnedValue::I64),
        any::<u64>().prop_map(OwnedValue::U64),
        any::<i128>().prop_map(OwnedValue::I128),
        any::<u128>().prop_map(OwnedValue::U128),
        any::<f64>().prop_map(OwnedValue::F64),
        prop::sample::select(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e300, 5e-324][..])
            .prop_map(OwnedValue::F64),
        any::<bool>().prop_map(OwnedValue::Bool),
    ]
}

fn record() -> impl Strategy<Value = RecordInput> {
    let span = prop::collection::vec((0..SPAN_FIELD_NAMES.len(), value()), 0..4);
    (
        prop::sample::select(LEVELS),
        text(),
        text(),
        prop::collection::vec((text(), value()), 0..6),
        prop::collection::vec(span, 0..3),
        (text(), text(), text()),
        any::<u32>(),
        (any::<u64>(), any::<u32>()),
    )
        .prop_map(
            |(level, target, message, fields, spans, (service, environment, version), pid, time)| RecordInput {
                level,
                target,
                message,
                fields,
                spans,
                service,
                environment,
                version,
                pid,
                time,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn one_record_is_one_line_and_the_json_parses_back(input in record()) {
        if let Err(problem) = check_record(&input) {
            prop_assert!(false, "{}", problem);
        }
    }
}

fn record_with_fields(fields: &[(&str, &str)], span: &[(usize, &str)]) -> RecordInput {
    RecordInput {
        level: vigil_core::Level::Info,
        target: "t".to_owned(),
        message: "m".to_owned(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OwnedValue::Str((*v).into())))
            .collect(),
        spans: vec![span.iter().map(|(i, v)| (*i, OwnedValue::Str((*v).into()))).collect()],
        service: "svc".to_owned(),
        environment: "test".to_owned(),
        version: String::new(),
        pid: 1,
        time: (0, 0),
    }
}

/// Found by the property: a field named `fields.level` and a field named `level` (renamed to
/// `fields.level`) gave one JSON line with the key `fields.level` twice, so one value was lost
/// to any JSON reader.
#[test]
fn regression_a_field_named_like_a_renamed_one_keeps_its_own_key() {
    let level = SPAN_FIELD_NAMES.iter().position(|n| *n == "level").unwrap();
    check_record(&record_with_fields(&[("fields.level", "a")], &[(level, "b")])).unwrap();
    check_record(&record_with_fields(
        &[("level", "a"), ("fields.level", "b"), ("fields.fields.level", "c")],
        &[],
    ))
    .unwrap();
    check_record(&record_with_fields(
        &[("timestamp", "a"), ("fields.timestamp", "b")],
        &[],
    ))
    .unwrap();
}
