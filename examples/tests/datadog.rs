//! `realtime_server` with Datadog on, configured only by environment variables: one comment
//! posted produces one trace at Datadog's real test agent (`ddapm-test-agent`) — the HTTP root
//! span and a database child span — that passes the agent's checks and matches the committed
//! snapshot; the request's logs reach an in-test logs intake that enforces the documented
//! protocol, carrying that trace's ids; and the API key appears nowhere in the output.
//!
//! Rewrite the snapshot with
//! `VIGIL_UPDATE_SNAPSHOTS=1 cargo test -p examples --test datadog`.

#![allow(clippy::too_many_lines)]

mod common;
#[path = "../../crates/vigil-log-datadog/tests/common/mod.rs"]
mod intake;
#[path = "../../crates/vigil-trace-datadog/tests/common/mod.rs"]
mod trace_agent;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Running, free_port, loopback, realtime_env, wait_listening};
use serde_json::{Value, json};

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/snapshots/realtime_server_post_comment.json"
);
const ROUTE: &str = "/api/videos/{video_id}/comments";
const REQUEST_ID: &str = "req-datadog-e2e-1";

/// An HTTP/1.1 request with an `x-request-id`, answered with status and body.
fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nx-request-id: {REQUEST_ID}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Starts `realtime_server` with Datadog on, sending to `agent` and `intake`, with `extra`
/// variables; returns it and its API address once it listens.
fn start_server(
    agent: &trace_agent::TestAgent,
    intake: &intake::Intake,
    extra: &[(&'static str, String)],
) -> (Running, SocketAddr) {
    let (api_port, metrics_port) = (free_port(), free_port());
    let mut env = realtime_env(api_port, metrics_port);
    env.extend([
        ("VIGIL_ENV", "e2e".to_owned()),
        ("VIGIL_VERSION", "1.2.3".to_owned()),
        ("VM_METRICS", "false".to_owned()),
        ("ENABLE_DATADOG", "true".to_owned()),
        ("DATADOG_API_KEY", intake::API_KEY.to_owned()),
        ("DATADOG_LOGS_URL", intake.url()),
        ("DD_TAGS", "team:realtime".to_owned()),
        ("DD_AGENT_HOST", "127.0.0.1".to_owned()),
        ("DD_TRACE_AGENT_PORT", agent.addr().port().to_string()),
    ]);
    env.extend(extra.iter().cloned());
    let running = Running::start("realtime_server", &env);
    let api = loopback(api_port);
    wait_listening(api);
    (running, api)
}

#[test]
fn one_request_is_one_trace_and_its_logs_carry_the_trace_ids() {
    let test = "one_request_is_one_trace_and_its_logs_carry_the_trace_ids";
    let Some(agent) = trace_agent::TestAgent::start(test) else {
        return;
    };
    let intake = intake::Intake::start();
    let (running, api) = start_server(&agent, &intake, &[]);

    let (status, body) = post(api, "/api/videos/1/comments", r#"{"user_id": 7, "body": "First!"}"#);
    assert_eq!(status, 201, "{body}");
    let comment: Value = serde_json::from_str(&body).unwrap();

    // A clean shutdown delivers every queued trace and log.
    let (code, lines) = running.terminate();
    assert_eq!(code, Some(0), "{lines:#?}");
    let output = lines.join("\n");
    assert!(!output.contains(intake::API_KEY), "the API key reached the console");

    // Exactly one trace for the request: its local root is the HTTP span.
    let traces = agent.traces();
    let ours: Vec<&Vec<Value>> = traces
        .iter()
        .filter(|t| {
            t.iter().any(|s| {
                s["name"] == "http.request" && s["meta"]["http.request_id"] == REQUEST_ID && s["parent_id"] == 0
            })
        })
        .collect();
    assert_eq!(ours.len(), 1, "one trace for the request: {traces:#?}");
    let trace = ours[0];
    let root = trace.iter().find(|s| s["name"] == "http.request").unwrap();
    assert_eq!(root["resource"], format!("POST {ROUTE}"));
    assert_eq!(root["meta"]["http.status_code"], "201");
    let trace_id = root["trace_id"].as_u64().unwrap();
    assert!(trace.iter().all(|s| s["trace_id"].as_u64() == Some(trace_id)));
    let db: Vec<&Value> = trace.iter().filter(|s| s["name"] == "sqlx.query").collect();
    assert!(!db.is_empty(), "a database child span: {trace:#?}");
    assert!(db.iter().all(|s| s["parent_id"] == root["span_id"]), "{trace:#?}");
    assert!(
        db.iter()
            .any(|s| s["resource"].as_str().unwrap().starts_with("INSERT INTO comments")),
        "{db:#?}"
    );
    assert!(
        !serde_json::to_string(trace).unwrap().contains("First!"),
        "no bound value reaches the agent"
    );
    agent.assert_checks_pass();
    assert_matches_snapshot(&normalise(trace));

    // The request's log lines reached the intake with the trace's ids.
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    let entries = intake.entries();
    let created = entries
        .iter()
        .find(|e| e["message"] == "Comment created")
        .unwrap_or_else(|| panic!("no 'Comment created' log: {entries:#?}"));
    assert_eq!(created["service"], "realtime_server");
    assert_eq!(created["status"], "info");
    assert_eq!(created["request_id"], REQUEST_ID);
    assert_eq!(created["comment_id"], comment["id"]);
    let tags = created["ddtags"].as_str().unwrap();
    for tag in ["env:e2e", "version:1.2.3", "team:realtime"] {
        assert!(tags.split(',').any(|t| t == tag), "{tags}");
    }
    assert_eq!(created["dd.trace_id"], trace_id.to_string(), "{created:#}");
    let span_ids: Vec<String> = trace
        .iter()
        .map(|s| s["span_id"].as_u64().unwrap().to_string())
        .collect();
    assert!(
        span_ids.contains(&created["dd.span_id"].as_str().unwrap().to_owned()),
        "the log's span is in the trace: {created:#}"
    );
    let requests = intake.requests();
    assert!(!requests.is_empty());
    assert!(
        !format!("{entries:?}").contains(intake::API_KEY),
        "the API key is in no log entry"
    );
}

/// Compares `shape` with the committed snapshot, or rewrites it when `VIGIL_UPDATE_SNAPSHOTS`
/// is set.
fn assert_matches_snapshot(shape: &Value) {
    let rendered = serde_json::to_string_pretty(shape).unwrap() + "\n";
    if std::env::var_os("VIGIL_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(SNAPSHOT).parent().unwrap()).unwrap();
        std::fs::write(SNAPSHOT, &rendered).unwrap();
        eprintln!("updated {SNAPSHOT}");
        return;
    }
    let expected = std::fs::read_to_string(SNAPSHOT)
        .unwrap_or_else(|e| panic!("{SNAPSHOT}: {e}; create it with VIGIL_UPDATE_SNAPSHOTS=1"));
    assert!(
        rendered == expected,
        "the trace differs from {SNAPSHOT} (VIGIL_UPDATE_SNAPSHOTS=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{rendered}"
    );
}

/// The trace with what differs from run to run replaced by placeholders — ids (parents kept
/// as references to their span's placeholder), times, `_dd.p.tid`, the process id — each
/// checked before it is replaced. Spans are ordered parents first, then by name and resource.
fn normalise(trace: &[Value]) -> Value {
    let mut spans: Vec<Value> = trace.to_vec();
    spans.sort_by_key(|s| {
        (
            s["parent_id"] != 0,
            s["name"].as_str().unwrap_or_default().to_owned(),
            s["resource"].as_str().unwrap_or_default().to_owned(),
        )
    });
    let labels: HashMap<u64, String> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s["span_id"].as_u64().unwrap(), format!("<span {}>", i + 1)))
        .collect();
    for s in &mut spans {
        let span_id = s["span_id"].as_u64().unwrap();
        let parent_id = s["parent_id"].as_u64().unwrap();
        assert!(s["trace_id"].as_u64().unwrap() != 0);
        assert!(s["start"].as_i64().unwrap() > 0);
        assert!(s["duration"].as_i64().unwrap() >= 0);
        s["trace_id"] = json!("<trace id>");
        s["span_id"] = json!(labels[&span_id]);
        s["parent_id"] = if parent_id == 0 {
            json!(0)
        } else {
            json!(labels.get(&parent_id).expect("the parent is in the trace"))
        };
        s["start"] = json!("<start>");
        s["duration"] = json!("<duration>");
        if let Some(tid) = s["meta"].get_mut("_dd.p.tid") {
            let text = tid.as_str().unwrap();
            assert!(text.len() == 16 && u64::from_str_radix(text, 16).is_ok(), "{text}");
            *tid = json!("<tid>");
        }
        if let Some(pid) = s["metrics"].get_mut("process_id") {
            assert!(pid.as_f64().unwrap() > 0.0);
            *pid = json!("<pid>");
        }
    }
    Value::Array(spans)
}

#[test]
fn dd_trace_enabled_false_keeps_the_logs_and_sends_no_trace() {
    let test = "dd_trace_enabled_false_keeps_the_logs_and_sends_no_trace";
    let Some(agent) = trace_agent::TestAgent::start(test) else {
        return;
    };
    let intake = intake::Intake::start();
    let (running, api) = start_server(&agent, &intake, &[("DD_TRACE_ENABLED", "false".to_owned())]);
    let (status, body) = post(api, "/api/videos/1/comments", r#"{"user_id": 7, "body": "First!"}"#);
    assert_eq!(status, 201, "{body}");
    let (code, lines) = running.terminate();
    assert_eq!(code, Some(0), "{lines:#?}");

    // The logs still go to the intake, without trace ids: there is no trace to correlate with.
    let entries = intake.entries();
    let created = entries
        .iter()
        .find(|e| e["message"] == "Comment created")
        .unwrap_or_else(|| panic!("no 'Comment created' log: {entries:#?}"));
    assert_eq!(created["request_id"], REQUEST_ID);
    assert!(entries.iter().all(|e| e.get("dd.trace_id").is_none()), "{entries:#?}");
    // And the agent received nothing from the server.
    let traces = agent.traces();
    assert!(
        traces.is_empty(),
        "traces were sent with DD_TRACE_ENABLED=false: {traces:#?}"
    );
}
