//! Properties of the config loader on any environment: a clear error (one line, naming a
//! variable that is set) or a valid config, never a panic; the `VIGIL_` variables win over
//! the `DD_` ones; no secret, nor a URL's `user:password@`, is ever shown. The fuzz target
//! `fuzz/fuzz_targets/config_env.rs` runs the same checks.

#[path = "common/config_check.rs"]
mod config_check;

use config_check::{INTERESTING_VALUES, check_env, check_toml, var_names};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(INTERESTING_VALUES).prop_map(str::to_owned),
        "[a-z0-9:,./@ -]{0,16}",
        "https?://[a-z:@]{0,8}[/?#]?[a-z@]{0,4}",
    ]
}

fn env() -> impl Strategy<Value = Vec<(String, String)>> {
    let names = var_names();
    prop::collection::vec((prop::sample::select(names).prop_map(str::to_owned), value()), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_environment_gives_a_clear_error_or_a_valid_config(vars in env()) {
        if let Err(problem) = check_env(&vars) {
            prop_assert!(false, "{}", problem);
        }
    }

    #[test]
    fn any_toml_gives_a_clear_error_or_a_config(
        text in prop_oneof![
            any::<String>(),
            (prop::sample::select(&["service", "log.level", "prometheus.port", "vm.interval", "datadog.tags", "logger_backends"][..]), value())
                .prop_map(|(key, v)| {
                    let (table, key) = key.rsplit_once('.').map_or(("", key), |(t, k)| (t, k));
                    let table = if table.is_empty() { String::new() } else { format!("[{table}]\n") };
                    format!("{table}{key} = {v:?}\n")
                }),
        ],
    ) {
        if let Err(problem) = check_toml(&text) {
            prop_assert!(false, "{}", problem);
        }
    }
}
