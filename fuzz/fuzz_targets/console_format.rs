//! The console formats on any record: exactly one line, ending in its only `\n`, with no
//! control character but the colours' own escape sequences; and JSON that parses back to the
//! same keys and values (checked by `crates/vigil-log-console/tests/common/format_check.rs`,
//! which the crate's proptests run too).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vigil_core::OwnedValue;

#[path = "../../crates/vigil-log-console/tests/common/format_check.rs"]
mod format_check;

use format_check::{LEVELS, RecordInput, check_record};

#[derive(Arbitrary, Debug)]
enum FuzzValue {
    Str(String),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

impl From<FuzzValue> for OwnedValue {
    fn from(v: FuzzValue) -> Self {
        match v {
            FuzzValue::Str(s) => OwnedValue::Str(s.into()),
            FuzzValue::I64(v) => OwnedValue::I64(v),
            FuzzValue::U64(v) => OwnedValue::U64(v),
            FuzzValue::I128(v) => OwnedValue::I128(v),
            FuzzValue::U128(v) => OwnedValue::U128(v),
            FuzzValue::F64(v) => OwnedValue::F64(v),
            FuzzValue::Bool(v) => OwnedValue::Bool(v),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    level: u8,
    target: String,
    message: String,
    fields: Vec<(String, FuzzValue)>,
    spans: Vec<Vec<(u8, FuzzValue)>>,
    service: String,
    environment: String,
    version: String,
    pid: u32,
    time: (u64, u32),
}

fuzz_target!(|input: Input| {
    let record = RecordInput {
        level: LEVELS[usize::from(input.level) % LEVELS.len()],
        target: input.target,
        message: input.message,
        fields: input.fields.into_iter().take(40).map(|(k, v)| (k, v.into())).collect(),
        spans: input
            .spans
            .into_iter()
            .take(4)
            .map(|s| s.into_iter().take(8).map(|(i, v)| (usize::from(i), v.into())).collect())
            .collect(),
        service: input.service,
        environment: input.environment,
        version: input.version,
        pid: input.pid,
        time: input.time,
    };
    if let Err(problem) = check_record(&record) {
        panic!("{problem}");
    }
});
