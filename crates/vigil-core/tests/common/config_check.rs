//! The config loader on any environment, for `tests/config_props.rs` and the fuzz target
//! `fuzz/fuzz_targets/config_env.rs` (which includes this file by path): a clear error or a
//! valid config, never a panic, and never a secret in what it shows.

#![allow(dead_code)]

use vigil_core::config::{ENV_VARS, LoggerBackendKind};
use vigil_core::{Config, ConfigError};

/// The variables whose values are secrets: never shown by an error or a `Debug`.
pub const SECRET_VARS: &[&str] = &[
    "DATADOG_API_KEY",
    "DATADOG_APP_KEY",
    "PROMETHEUS_AUTH_TOKEN",
    "PROMETHEUS_BASIC_AUTH_PASSWORD",
];

/// The variables a check sets: every one Vigil reads but `VIGIL_CONFIG` (a file's path).
pub fn var_names() -> Vec<&'static str> {
    ENV_VARS
        .iter()
        .map(|v| v.name)
        .filter(|n| *n != "VIGIL_CONFIG")
        .collect()
}

/// Values worth trying for any variable: valid ones of each kind, and near misses.
pub const INTERESTING_VALUES: &[&str] = &[
    "",
    " ",
    "true",
    "false",
    "on",
    "0",
    "1",
    "8126",
    "65535",
    "65536",
    "+80",
    "3600",
    "3601",
    "info",
    "WARN",
    "json",
    "never",
    "console,datadog",
    ",",
    "prometheus, dogstatsd",
    "http",
    ":http",
    "https://intake.example:8443/api/v2/logs",
    "https://user:hunter2@intake.example/x",
    "http://",
    "team:core env:prod",
    "a\u{0}b",
    "é\n",
    "svc",
];

/// Loads with `vars` as the whole environment (a later pair wins over an earlier one).
pub fn load(vars: &[(String, String)]) -> Result<Config, ConfigError> {
    Config::load_with(|name| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn shown(result: &Result<Config, ConfigError>) -> String {
    match result {
        Ok(config) => format!("Ok({config:?})"),
        Err(e) => format!("Err({e})"),
    }
}

fn get<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// The part of a URL before the last `@` of its authority (`user:password`), if any.
fn userinfo(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| start..start + at)
}

/// Checks the loader on `vars`. Returns the first problem.
pub fn check_env(vars: &[(String, String)]) -> Result<(), String> {
    let result = load(vars);
    let text = shown(&result);
    if shown(&load(vars)) != text {
        return Err(format!("two loads of {vars:?} differ"));
    }
    match &result {
        Err(e) => check_error(vars, e)?,
        Ok(config) => check_config(vars, config)?,
    }
    // A secret changes nothing that is shown (only whether it is set counts).
    for secret in SECRET_VARS {
        if get(vars, secret).is_some() {
            let mut other = vars.to_vec();
            other.push(((*secret).to_owned(), "replaced-secret".to_owned()));
            let again = shown(&load(&other));
            if again != text {
                return Err(format!("{secret}'s value shows: {text} but {again} with another value"));
            }
        }
    }
    // So does a URL's user:password@ part.
    if let Some(url) = get(vars, "DATADOG_LOGS_URL")
        && let Some(range) = userinfo(url)
    {
        let mut replaced = url.to_owned();
        replaced.replace_range(range, "u");
        let mut other = vars.to_vec();
        other.push(("DATADOG_LOGS_URL".to_owned(), replaced));
        let again = shown(&load(&other));
        if again != text {
            return Err(format!(
                "DATADOG_LOGS_URL's user:password@ shows: {text} but {again} without it"
            ));
        }
    }
    Ok(())
}

fn check_error(vars: &[(String, String)], e: &ConfigError) -> Result<(), String> {
    let message = e.to_string();
    if message.is_empty() || message.chars().any(char::is_control) {
        return Err(format!("error message {message:?} is not one clear line"));
    }
    let names = var_names();
    match e {
        ConfigError::Env { var, .. } => {
            if get(vars, var).is_none() || !message.starts_with(var) {
                return Err(format!("{message:?} names {var}, which is not set to a value"));
            }
        }
        ConfigError::Missing { var, .. } => {
            if !names.contains(var) {
                return Err(format!("{message:?} names {var}, which Vigil does not read"));
            }
        }
        ConfigError::File { .. } => return Err(format!("a file error from the environment alone: {message:?}")),
    }
    Ok(())
}

fn check_config(vars: &[(String, String)], c: &Config) -> Result<(), String> {
    let name_ok = |s: &str| !s.is_empty() && !s.chars().any(char::is_control) && s.trim() == s;
    if !name_ok(&c.service) || !name_ok(&c.environment) {
        return Err(format!("bad service or environment in {c:?}"));
    }
    // The VIGIL_ variables win over the DD_ ones.
    for (field, vigil, dd) in [
        (&c.service, "VIGIL_SERVICE", "DD_SERVICE"),
        (&c.environment, "VIGIL_ENV", "DD_ENV"),
        (&c.version, "VIGIL_VERSION", "DD_VERSION"),
    ] {
        if let Some(v) = get(vars, vigil).or_else(|| get(vars, dd))
            && field != v.trim()
        {
            return Err(format!("{field:?} is not {vigil} or {dd} ({v:?})"));
        }
    }
    if let Some(port) = get(vars, "PROMETHEUS_PORT")
        && Some(c.prometheus.port.0) != port.trim().parse().ok()
    {
        return Err(format!(
            "PROMETHEUS_PORT={port:?} but the port is {}",
            c.prometheus.port.0
        ));
    }
    if c.prometheus.port.0 == 0 || !(1..=3600).contains(&c.vm.interval.0) {
        return Err(format!("a port or interval out of range in {c:?}"));
    }
    let datadog = c.datadog.enabled || c.logger_backends.contains(&LoggerBackendKind::Datadog);
    if datadog && c.datadog.api_key.as_ref().is_none_or(|k| k.expose().trim().is_empty()) {
        return Err("Datadog on without an API key".to_owned());
    }
    let p = &c.prometheus;
    if p.auth_token.as_ref().is_some_and(|t| t.expose().is_empty())
        || p.basic_auth_user.is_some() != p.basic_auth_password.is_some()
        || p.basic_auth_password.as_ref().is_some_and(|s| s.expose().is_empty())
    {
        return Err("metrics port auth that lets anyone in".to_owned());
    }
    Ok(())
}

/// Checks the loader on TOML text: a clear error naming the inline file, or a config.
pub fn check_toml(text: &str) -> Result<(), String> {
    match Config::from_toml_str(text) {
        Ok(_) => Ok(()),
        Err(ConfigError::File { path, message }) if path.as_os_str() == "<inline>" && !message.is_empty() => Ok(()),
        Err(e) => Err(format!("unexpected error {e:?} for {text:?}")),
    }
}
