//! `SqlxQueryLayer` on events shaped like sqlx 0.9's, emitted on the test's thread (as sqlx's
//! PostgreSQL and `MySQL` drivers do), under a local subscriber and recorder.

#![cfg(feature = "sqlx")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use vigil_core::{BackendRecorder, LogLayer, MemoryLogBackend, MemoryMetricsBackend, OwnedValue, Resource};
use vigil_db::SqlxQueryLayer;

struct Seen {
    metrics: Arc<MemoryMetricsBackend>,
    logs: Arc<MemoryLogBackend>,
}

fn with_layer(layer: SqlxQueryLayer, f: impl FnOnce(&Seen)) -> Seen {
    let metrics = Arc::new(MemoryMetricsBackend::new());
    let logs = Arc::new(MemoryLogBackend::new());
    let recorder = BackendRecorder::from_arc(metrics.clone());
    let subscriber = tracing_subscriber::registry().with(layer.filtered()).with(
        LogLayer::new(Resource::new("db-test", "test"))
            .with_backend(logs.clone())
            .with_filter(LevelFilter::INFO),
    );
    let seen = Seen { metrics, logs };
    metrics::with_local_recorder(&recorder, || tracing::subscriber::with_default(subscriber, || f(&seen)));
    seen
}

/// An event as sqlx-core 0.9's `QueryLogger::finish` writes it for a fast query.
fn sqlx_event(sql: &str, elapsed: Duration) {
    let mut summary = sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
    let statement = if summary == sql {
        String::new()
    } else {
        summary.push_str(" …");
        format!("\n\n{sql}\n")
    };
    tracing::debug!(
        target: "sqlx::query",
        summary,
        db.statement = statement,
        rows_affected = 1_u64,
        rows_returned = 0_u64,
        ?elapsed,
        elapsed_secs = elapsed.as_secs_f64(),
    );
}

fn count(s: &Seen, source: &str, operation: &str) -> Option<u64> {
    s.metrics
        .counter("database.query.count", &[("source", source), ("operation", operation)])
}

#[test]
fn short_and_long_statements_are_classified() {
    let seen = with_layer(SqlxQueryLayer::new(), |_| {
        sqlx_event("BEGIN", Duration::from_micros(30));
        sqlx_event("SELECT * FROM videos", Duration::from_micros(300));
        sqlx_event(
            "SELECT id, title FROM public.videos WHERE id = $1",
            Duration::from_millis(2),
        );
        sqlx_event(
            "INSERT INTO comments (body) VALUES ($1) RETURNING id",
            Duration::from_millis(3),
        );
        // Another target, or another level on the console's side, is not a query.
        tracing::debug!(target: "sqlx::query_builder", summary = "SELECT 1", elapsed_secs = 0.1);
        tracing::info!(target: "app", "hello");
    });
    assert_eq!(count(&seen, "unknown", "begin"), Some(1));
    assert_eq!(count(&seen, "videos", "select"), Some(2));
    assert_eq!(count(&seen, "comments", "insert"), Some(1));
    let d = seen.metrics.histogram_values(
        "database.query.duration",
        &[("source", "videos"), ("operation", "select")],
    );
    assert_eq!(d.len(), 2);
    assert!((d[0] - 0.3).abs() < 1e-6 && (d[1] - 2.0).abs() < 1e-6, "{d:?}");
    // The console layer (INFO) got the app's line but none of sqlx's DEBUG events.
    let logs = seen.logs.records();
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(logs[0].target, "app");
}

#[test]
fn elapsed_debug_is_used_without_elapsed_secs() {
    let seen = with_layer(SqlxQueryLayer::new(), |_| {
        let elapsed = Duration::from_micros(1500);
        tracing::debug!(target: "sqlx::query", summary = "DELETE FROM comments", db.statement = "", ?elapsed);
        tracing::debug!(target: "sqlx::query", summary = "DELETE FROM comments");
    });
    assert_eq!(
        count(&seen, "comments", "delete"),
        Some(1),
        "an event without a duration is skipped"
    );
    let d = seen.metrics.histogram_values(
        "database.query.duration",
        &[("source", "comments"), ("operation", "delete")],
    );
    assert!((d[0] - 1.5).abs() < 1e-6, "{d:?}");
}

#[test]
fn slow_queries_warn_into_the_layers_own_subscriber() {
    let layer = SqlxQueryLayer::new()
        .slow_threshold(Duration::from_millis(50))
        .max_statement_len(40);
    let handle = layer.clone();
    let seen = with_layer(layer, |seen| {
        sqlx_event("SELECT * FROM videos WHERE id = 1", Duration::from_millis(49));
        sqlx_event(
            "UPDATE videos SET title = 'a very secret title' WHERE id = 42 AND owner = $1",
            Duration::from_millis(50),
        );
        handle.set_slow_threshold(Duration::MAX);
        sqlx_event("SELECT * FROM videos", Duration::from_secs(30));
        // The warning is written by a background thread into this (local) subscriber.
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.logs.records().is_empty() {
            assert!(Instant::now() < deadline, "no slow-query warning");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(handle.dropped_warnings(), 0);
    });
    let warnings: Vec<_> = seen
        .logs
        .records()
        .into_iter()
        .filter(|r| r.target == "vigil::db")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w.field("source"), Some(&OwnedValue::Str("videos".into())));
    assert_eq!(w.field("operation"), Some(&OwnedValue::Str("update".into())));
    assert_eq!(
        w.field("statement"),
        Some(&OwnedValue::Str("UPDATE videos SET title = ? WHERE id …".into()))
    );
    let tags = [("source", "videos"), ("operation", "update")];
    assert_eq!(seen.metrics.counter("database.query.slow", &tags), Some(1));
    assert_eq!(
        seen.metrics
            .counter("database.query.slow", &[("source", "videos"), ("operation", "select")]),
        None
    );
}
