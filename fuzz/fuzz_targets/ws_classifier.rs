//! The WebSocket event classifier on any text, with any limits: a bounded label of name
//! characters, and what `serde_json::Value` says the text is (the oracle of
//! `crates/vigil-ws/tests/common/classify_check.rs`, which the crate's proptests run too).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vigil_ws::ClassifyOptions;

#[path = "../../crates/vigil-ws/tests/common/classify_check.rs"]
mod classify_check;

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    max_parse_bytes: u16,
    max_event_len: u8,
}

fuzz_target!(|input: Input| {
    let limited = ClassifyOptions {
        max_parse_bytes: usize::from(input.max_parse_bytes),
        max_event_len: usize::from(input.max_event_len % 128) + 1,
    };
    for options in [ClassifyOptions::default(), limited] {
        if let Err(problem) = classify_check::check_classify(&input.text, &options) {
            panic!("{problem}");
        }
    }
});
