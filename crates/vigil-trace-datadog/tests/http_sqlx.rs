//! One HTTP request span with a real sqlx SQLite query inside, sent to Datadog's test agent:
//! one trace, the query a child of the request, every enabled agent check passing, and the
//! trace's shape equal to the committed snapshot.
//!
//! The snapshot is `tests/snapshots/http_request_with_sqlite_query.json`, with ids, times
//! and the process id replaced by placeholders. After an intended change, rewrite it with
//!
//! ```text
//! VIGIL_UPDATE_SNAPSHOTS=1 cargo test -p vigil-trace-datadog --test http_sqlx
//! ```
//!
//! and review the diff. This file holds a single test: sqlx's SQLite driver emits its query
//! events on its own worker thread, which sees only the *global* subscriber.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{TestAgent, tracer};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tracing::Instrument as _;
use tracing_subscriber::prelude::*;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/snapshots/http_request_with_sqlite_query.json"
);

#[test]
fn an_http_request_with_a_sqlite_query_is_one_trace_matching_the_snapshot() {
    let Some(agent) = TestAgent::start("an_http_request_with_a_sqlite_query_is_one_trace_matching_the_snapshot") else {
        return;
    };
    let layer = tracer(agent.port)
        .db_system("sqlite")
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer.clone().filtered())).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ids = runtime.block_on(async {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().in_memory(true))
            .await
            .unwrap();
        // Set-up queries outside any span: traces of their own, not part of the request's.
        sqlx::query("CREATE TABLE videos (id INTEGER PRIMARY KEY, title TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO videos (id, title) VALUES (1, 'Intro'), (2, 'Rust')")
            .execute(&pool)
            .await
            .unwrap();

        // The request span as vigil-http creates it; the status is recorded at the end.
        let request = tracing::info_span!(
            target: "vigil::http",
            "request",
            request_id = "req-42",
            method = "GET",
            route = "/api/videos/{id}",
            status = tracing::field::Empty,
        );
        let ids = vigil_core::trace::of(&request).expect("trace ids on the request span");
        let rows = async {
            sqlx::query("SELECT id, title FROM videos WHERE id = ? AND title <> 'secret'")
                .bind(1)
                .fetch_all(&pool)
                .await
                .unwrap()
        }
        .instrument(request.clone())
        .await;
        assert_eq!(rows.len(), 1);
        request.record("status", 200u16);
        drop(request);
        pool.close().await;
        ids
    });

    // The request's trace, by its id (the set-up traces are separate).
    let path = format!("/test/traces?trace_ids={}", ids.trace_id_low());
    let wait = Instant::now() + Duration::from_secs(30);
    let trace = loop {
        let (status, body) = agent.get(&path);
        assert_eq!(status, 200, "{body}");
        let traces: Vec<Vec<Value>> = serde_json::from_str(&body).unwrap();
        if traces.first().is_some_and(|t| t.len() >= 2) {
            break traces.into_iter().next().unwrap();
        }
        assert!(Instant::now() < wait, "the request's trace did not arrive: {traces:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(layer.flush_until(Instant::now() + Duration::from_secs(30)));
    agent.assert_checks_pass();

    // Exactly one trace holds the request and its query, and it holds nothing else.
    let all = agent.traces();
    let holding = |needle: &str| {
        all.iter()
            .filter(|t| {
                t.iter()
                    .any(|s| s["resource"].as_str().unwrap_or_default().contains(needle))
            })
            .count()
    };
    assert_eq!(holding("GET /api/videos/{id}"), 1, "{all:#?}");
    assert_eq!(holding("FROM videos WHERE id"), 1, "{all:#?}");
    assert_eq!(trace.len(), 2, "{trace:#?}");
    let root = trace
        .iter()
        .find(|s| s["name"] == "http.request")
        .expect("the request span");
    let query = trace
        .iter()
        .find(|s| s["name"] == "sqlx.query")
        .expect("the query span");
    assert_eq!(root["span_id"].as_u64(), Some(ids.span_id));
    assert_eq!(root["parent_id"], 0);
    assert_eq!(query["parent_id"], root["span_id"]);
    assert!(
        !serde_json::to_string(&all).unwrap().contains("secret"),
        "no literal reaches the agent"
    );

    assert_matches_snapshot(&normalise(&trace));
}

/// Compares `shape` with the committed snapshot, or rewrites the snapshot when
/// `VIGIL_UPDATE_SNAPSHOTS` is set.
fn assert_matches_snapshot(shape: &Value) {
    let rendered = serde_json::to_string_pretty(shape).unwrap() + "\n";
    if std::env::var_os("VIGIL_UPDATE_SNAPSHOTS").is_some() {
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

/// The trace with what differs from run to run replaced by placeholders: trace and span ids
/// (parents kept as references to the placeholder of their span), start and duration, the
/// `_dd.p.tid` value and the process id. Each is checked before it is replaced. Spans are
/// ordered parents first.
fn normalise(trace: &[Value]) -> Value {
    let mut spans: Vec<Value> = trace.to_vec();
    spans.sort_by_key(|s| (s["parent_id"] != 0, s["name"].as_str().unwrap_or_default().to_owned()));
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
            assert_eq!(pid.as_f64(), Some(f64::from(std::process::id())));
            *pid = json!("<pid>");
        }
    }
    Value::Array(spans)
}
