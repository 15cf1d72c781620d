//! The SQL classifier and normaliser on any input: bounded, valid labels; the same
//! classification behind a leading comment; a normalisation cut cleanly at its limit; and no
//! string literal's content, in any quoting style, changing the classification or surviving
//! normalisation. The same checks run as proptests in `crates/vigil-db/tests/classify_props.rs`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vigil-db/tests/common/sql_check.rs"]
mod sql_check;

use sql_check::{LiteralStyle, check_literal, check_sql, literal};

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any statement, normalised to at most `max_len` bytes.
    Statement { sql: String, max_len: u8 },
    /// Any literal content in one of the quoting styles.
    Literal { content: String, style: u8 },
}

fuzz_target!(|input: Input| {
    match input {
        Input::Statement { sql, max_len } => {
            if let Err(problem) = check_sql(&sql, usize::from(max_len)) {
                panic!("{problem}");
            }
        }
        Input::Literal { content, style } => {
            let style = match style % 3 {
                0 => LiteralStyle::Quoted,
                1 => LiteralStyle::Escaped,
                _ => LiteralStyle::Dollar,
            };
            if let Some(lit) = literal(&content, style)
                && let Err(problem) = check_literal(&lit)
            {
                panic!("{problem}");
            }
        }
    }
});
