//! The config loader on any environment: a clear error (one line, naming a variable that is
//! set) or a valid config, never a panic; no secret, nor a URL's `user:password@`, ever shown;
//! and any TOML text: a clear error or a config. The same checks run as proptests in
//! `crates/vigil-core/tests/config_props.rs`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vigil-core/tests/common/config_check.rs"]
mod config_check;

use config_check::{INTERESTING_VALUES, check_env, check_toml, var_names};

#[derive(Arbitrary, Debug)]
enum Value {
    Any(String),
    Known(u8),
}

#[derive(Arbitrary, Debug)]
enum Input {
    Env(Vec<(u8, Value)>),
    Toml(String),
}

fuzz_target!(|input: Input| {
    match input {
        Input::Env(pairs) => {
            let names = var_names();
            let vars: Vec<(String, String)> = pairs
                .into_iter()
                .take(16)
                .map(|(name, value)| {
                    let value = match value {
                        Value::Any(s) => s,
                        Value::Known(i) => INTERESTING_VALUES[usize::from(i) % INTERESTING_VALUES.len()].to_owned(),
                    };
                    (names[usize::from(name) % names.len()].to_owned(), value)
                })
                .collect();
            if let Err(problem) = check_env(&vars) {
                panic!("{problem}");
            }
        }
        Input::Toml(text) => {
            if let Err(problem) = check_toml(&text) {
                panic!("{problem}");
            }
        }
    }
});
