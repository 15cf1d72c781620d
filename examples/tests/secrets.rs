//! Secrets never leave the process: `realtime_server` runs with a sentinel value for every
//! secret Vigil takes (the Datadog API and application keys, the metrics port's bearer token
//! and basic-auth password), at debug level with the access log on, Datadog logs shipped to
//! an in-test intake and traces failing against an agent that is not there. Everything it
//! produces is searched for the sentinels: stdout and stderr, `/metrics`, the dashboard page
//! and its data, every log entry the intake received, and the errors of start-ups refused for
//! a bad value next to the secrets.

mod common;
#[path = "../../crates/vigil-log-datadog/tests/common/mod.rs"]
mod intake;

use std::process::Command;

use common::{Running, example, free_port, http, http_with, loopback, realtime_env, wait_listening};

const APP_KEY: &str = "vigil-sentinel-app-key-4b1d9e";
const TOKEN: &str = "vigil-sentinel-token-93fe0a";
const PASSWORD: &str = "vigil-sentinel-password-c7a251";
/// base64("prom:vigil-sentinel-password-c7a251")
const BASIC: &str = "Basic cHJvbTp2aWdpbC1zZW50aW5lbC1wYXNzd29yZC1jN2EyNTE=";

fn sentinels() -> [&'static str; 4] {
    [intake::API_KEY, APP_KEY, TOKEN, PASSWORD]
}

/// Asserts that no sentinel appears in `text`, naming where it was.
fn assert_clean(place: &str, text: &str) {
    for secret in sentinels() {
        assert!(
            !text.contains(secret),
            "a secret ({secret}) appears in {place}:\n{text}"
        );
    }
}

/// The secrets and their companions, as environment variables.
fn secret_env(intake: &intake::Intake) -> Vec<(&'static str, String)> {
    vec![
        ("ENABLE_DATADOG", "true".to_owned()),
        ("DATADOG_API_KEY", intake::API_KEY.to_owned()),
        ("DATADOG_APP_KEY", APP_KEY.to_owned()),
        ("DATADOG_LOGS_URL", intake.url()),
        ("PROMETHEUS_AUTH_TOKEN", TOKEN.to_owned()),
        ("PROMETHEUS_BASIC_AUTH_USER", "prom".to_owned()),
        ("PROMETHEUS_BASIC_AUTH_PASSWORD", PASSWORD.to_owned()),
    ]
}

#[test]
fn no_secret_reaches_any_output() {
    let intake = intake::Intake::start();
    let (api_port, metrics_port) = (free_port(), free_port());
    let mut env = realtime_env(api_port, metrics_port);
    env.extend(secret_env(&intake));
    env.extend([
        ("LOG_LEVEL", "debug".to_owned()),
        ("HTTP_ACCESS_LOG", "true".to_owned()),
        // Traces on, to an agent that is not there: the sender's errors are output too.
        ("DD_AGENT_HOST", "127.0.0.1".to_owned()),
        ("DD_TRACE_AGENT_PORT", free_port().to_string()),
    ]);
    let running = Running::start_capturing_stderr("realtime_server", &env);
    let (api, metrics) = (loopback(api_port), loopback(metrics_port));
    wait_listening(api);
    wait_listening(metrics);

    let (status, _, body) = http(api, "POST", "/api/videos/3/comments", r#"{"user_id": 9, "body": "hi"}"#);
    assert_eq!(status, 201, "{body}");
    assert_eq!(http(api, "GET", "/api/videos/3/comments", "").0, 200);
    assert_eq!(http(api, "GET", "/no-such-route", "").0, 404);

    // The metrics port refuses without a credential, and says nothing secret while refusing.
    let (status, head, body) = http_with(metrics, "GET", "/metrics", &[]);
    assert_eq!(status, 401);
    assert_clean("a 401 of the metrics port", &format!("{head}\n{body}"));
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, exposition) = http_with(metrics, "GET", "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(status, 200);
    assert!(exposition.contains("http_request_total"), "{exposition}");
    assert_clean("/metrics", &exposition);
    for path in ["/dashboard", "/dashboard/data"] {
        let (status, _, body) = http_with(metrics, "GET", path, &[("Authorization", BASIC)]);
        assert_eq!(status, 200, "{path}");
        assert_clean(path, &body);
    }

    let (code, lines) = running.terminate();
    assert_eq!(code, Some(0), "{lines:#?}");
    let output = lines.join("\n");
    assert!(output.contains("Comment created"), "the run logged: {output}");
    assert_clean("the server's stdout and stderr", &output);

    let entries = intake.entries();
    assert!(
        entries.iter().any(|e| e["message"] == "Comment created"),
        "the logs reached the intake: {entries:#?}"
    );
    assert_clean(
        "the log entries sent to Datadog",
        &serde_json::to_string(&entries).unwrap(),
    );
    // The key travels where it must, in the DD-API-KEY header, and nowhere else.
    assert!(
        intake
            .requests()
            .iter()
            .all(|r| r.api_key.as_deref() == Some(intake::API_KEY)),
        "every request carried the key in its header"
    );
}

#[test]
fn refused_start_ups_do_not_show_the_secrets() {
    let intake = intake::Intake::start();
    for (var, bad) in [
        ("PROMETHEUS_PORT", "not-a-port".to_owned()),
        ("LOG_LEVEL", "loud".to_owned()),
        (
            "DATADOG_LOGS_URL",
            format!("http://prom:{PASSWORD}@127.0.0.1:9/v2/logs"),
        ),
        ("PROMETHEUS_BASIC_AUTH_USER", format!("prom:{PASSWORD}")),
        ("DD_TRACE_AGENT_PORT", "0".to_owned()),
    ] {
        let mut cmd = Command::new(example("realtime_server"));
        for (k, v) in secret_env(&intake) {
            cmd.env(k, v);
        }
        cmd.env(var, &bad).env("PORT", free_port().to_string());
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{var}={bad:?} must stop start-up: {text}");
        assert!(text.contains(var), "the error names {var}: {text}");
        assert_clean(&format!("the error for {var}"), &text);
    }
}
