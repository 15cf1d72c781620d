//! The Prometheus backend end to end: naming, units, escaping, limits, the HTTP endpoint.

#![allow(clippy::float_cmp, clippy::cast_precision_loss)]

mod common;

use common::{http, parse_exposition, promtool_check};
use metrics::Unit;
use vigil_metrics_prometheus::{MetricsServer, PrometheusBackend, PrometheusError};

fn backend() -> PrometheusBackend {
    PrometheusBackend::builder()
        .global_label("service", "svc")
        .global_label("environment", "test")
        .max_series_per_metric(100)
        .build()
        .unwrap()
}

#[test]
fn catalogue_and_user_metrics_follow_prometheus_naming_and_pass_promtool() {
    let b = backend();
    metrics::with_local_recorder(&b, || {
        let tags = [("route", "/api/videos/{id}"), ("method", "GET"), ("status", "200")];
        metrics::counter!("http.request.count", &tags).increment(3);
        metrics::histogram!("http.request.duration", &tags).record(12.0);
        metrics::histogram!("http.request.duration", &tags).record(480.0);
        metrics::gauge!("websocket.connections", "channel" => "comments").set(2.0);
        metrics::counter!("comments.created", "region" => "eu").increment(1);
        metrics::gauge!("users.online").set(5.0);
        metrics::histogram!("request.duration", "route" => "/api/comments").record(42.0);
        metrics::describe_gauge!("queue.size", Unit::Kibibytes, "Queue size.");
        metrics::gauge!("queue.size").set(2.0);
    });
    let text = b.render();
    let samples = parse_exposition(&text);
    let find = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert_eq!(find("http_request_total").value, 3.0);
    assert_eq!(find("http_request_total").label("route"), Some("/api/videos/{id}"));
    assert_eq!(find("http_request_total").label("service"), Some("svc"));
    assert_eq!(find("http_request_total").label("environment"), Some("test"));
    // Milliseconds are exported as seconds.
    assert!((find("http_request_duration_seconds_sum").value - 0.492).abs() < 1e-9);
    assert_eq!(find("http_request_duration_seconds_count").value, 2.0);
    let le_25ms = samples
        .iter()
        .find(|s| s.name == "http_request_duration_seconds_bucket" && s.label("le") == Some("0.025"))
        .expect("a 25 ms bucket");
    assert_eq!(le_25ms.value, 1.0);
    assert_eq!(find("websocket_connections").value, 2.0);
    assert_eq!(find("comments_created_total").value, 1.0);
    assert_eq!(find("users_online").value, 5.0);
    // A histogram without a unit keeps its values and gets the millisecond buckets.
    assert!(
        samples
            .iter()
            .any(|s| s.name == "request_duration_bucket" && s.label("le") == Some("50"))
    );
    assert_eq!(find("queue_size_bytes").value, 2048.0);
    metrics::with_local_recorder(&b, || {
        metrics::histogram!("http.response.size", "route" => "/a", "method" => "GET", "status" => "200").record(300.0);
    });
    let text = b.render();
    let samples = parse_exposition(&text);
    let le_1k = samples
        .iter()
        .find(|s| s.name == "http_response_size_bytes_bucket" && s.label("le") == Some("1024"))
        .unwrap_or_else(|| panic!("size buckets in\n{text}"));
    assert_eq!(le_1k.value, 1.0);
    // Connection durations get their own buckets, up to a day.
    metrics::with_local_recorder(&b, || {
        metrics::histogram!("websocket.connection.duration", "channel" => "comments").record(90_000.0);
    });
    let text = b.render();
    let samples = parse_exposition(&text);
    let le_5min = samples
        .iter()
        .find(|s| s.name == "websocket_connection_duration_seconds_bucket" && s.label("le") == Some("300"))
        .unwrap_or_else(|| panic!("connection buckets in\n{text}"));
    assert_eq!(le_5min.value, 1.0);
    assert!(
        samples
            .iter()
            .any(|s| s.name == "websocket_connection_duration_seconds_bucket" && s.label("le") == Some("86400"))
    );
    assert!(!text.contains("summary"), "histograms must not be summaries:\n{text}");
    for name in [
        "http_request_total",
        "comments_created_total",
        "users_online",
        "request_duration",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}:\n{text}");
    }
    if let Some(out) = promtool_check(&text) {
        assert!(out.is_empty(), "promtool check metrics complained:\n{out}\n---\n{text}");
    }
}

#[test]
fn label_values_are_escaped_and_parse_back() {
    let b = backend();
    let nasty = "quote\" backslash\\ newline\n unicode é 日本 \u{1F600}";
    metrics::with_local_recorder(&b, || {
        metrics::counter!("escapes", "value" => nasty, "bad-label key" => "x").increment(1);
        metrics::counter!("bad name!with-chars.count").increment(1);
    });
    let text = b.render();
    let samples = parse_exposition(&text);
    let s = samples.iter().find(|s| s.name == "escapes_total").unwrap();
    assert_eq!(s.label("value"), Some(nasty));
    assert_eq!(s.label("bad_label_key"), Some("x"));
    assert!(samples.iter().any(|s| s.name == "bad_name_with_chars_total"), "{text}");
    if let Some(out) = promtool_check(&text) {
        assert!(out.is_empty(), "promtool check metrics complained:\n{out}\n---\n{text}");
    }
}

#[test]
fn cardinality_is_bounded_and_overflow_is_counted() {
    let b = backend();
    metrics::with_local_recorder(&b, || {
        for i in 0..10_000 {
            metrics::counter!("requests.by.user", "user_id" => i.to_string()).increment(1);
        }
        // A series admitted before the limit keeps working after it.
        metrics::counter!("requests.by.user", "user_id" => "0").increment(1);
    });
    assert_eq!(b.series_count("requests.by.user"), 100);
    let text = b.render();
    let samples = parse_exposition(&text);
    let series: Vec<_> = samples.iter().filter(|s| s.name == "requests_by_user_total").collect();
    assert_eq!(series.len(), 101, "100 series and one overflow series");
    let overflow = series
        .iter()
        .find(|s| s.label("user_id") == Some("__overflow__"))
        .unwrap();
    assert_eq!(overflow.value, 9_900.0);
    assert_eq!(
        series.iter().find(|s| s.label("user_id") == Some("0")).unwrap().value,
        2.0
    );
    let counted = samples
        .iter()
        .find(|s| s.name == "vigil_metrics_overflow_total" && s.label("metric") == Some("requests.by.user"))
        .unwrap();
    assert_eq!(counted.value, 9_900.0);
    assert!(text.len() < 64 * 1024, "render stays small: {} bytes", text.len());
}

#[test]
fn overflow_is_logged_once_per_metric() {
    use std::sync::Arc;
    use tracing_subscriber::prelude::*;
    use vigil_core::{Level, LogLayer, MemoryLogBackend, Resource};

    let logs = Arc::new(MemoryLogBackend::new());
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::new(Resource::new("svc", "test")).with_backend(logs.clone()));
    let b = PrometheusBackend::builder().max_series_per_metric(2).build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&b, || {
            for i in 0..50 {
                metrics::counter!("a.metric", "k" => i.to_string()).increment(1);
                metrics::counter!("b.metric", "k" => i.to_string()).increment(1);
            }
        });
    });
    let warnings: Vec<_> = logs
        .records()
        .into_iter()
        .filter(|r| r.level == Level::Warning)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().all(|w| w.message.contains("label-set limit")));
    assert!(
        warnings
            .iter()
            .any(|w| w.field("metric") == Some(&vigil_core::OwnedValue::Str("a.metric".into())))
    );
}

#[test]
fn metric_names_are_bounded_too() {
    let b = PrometheusBackend::builder().max_metric_names(20).build().unwrap();
    metrics::with_local_recorder(&b, || {
        for i in 0..100 {
            metrics::counter!(format!("dynamic.metric.{i}")).increment(1);
        }
    });
    let samples = parse_exposition(&b.render());
    let dynamic = samples.iter().filter(|s| s.name.starts_with("dynamic_metric_")).count();
    // The catalogue's descriptions take some of the 20 names.
    assert!(dynamic < 20, "{dynamic}");
    let dropped = samples
        .iter()
        .find(|s| s.name == "vigil_metrics_overflow_total" && s.label("metric") == Some("__too_many_metrics__"))
        .unwrap();
    assert_eq!(dropped.value, (100 - dynamic) as f64);
}

#[test]
fn bad_buckets_are_rejected() {
    let err = PrometheusBackend::builder().buckets(&[1.0, 1.0]).unwrap_err();
    assert!(err.to_string().contains("strictly increasing"), "{err}");
    assert!(PrometheusBackend::builder().buckets(&[]).is_err());
    assert!(PrometheusBackend::builder().buckets(&[1.0, f64::NAN]).is_err());
}

#[test]
fn the_endpoint_serves_metrics_and_nothing_else() {
    let b = backend();
    metrics::with_local_recorder(&b, || metrics::counter!("served").increment(7));
    let server = MetricsServer::start(b, "127.0.0.1", 0).unwrap();
    let addr = server.local_addr();
    let (status, head, body) = http(addr, "GET", "/metrics");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("served_total{service=\"svc\",environment=\"test\"} 7"),
        "{body}"
    );
    assert_eq!(http(addr, "GET", "/").0, 404);
    assert_eq!(http(addr, "GET", "/metrics/extra").0, 404);
    assert_eq!(http(addr, "POST", "/metrics").0, 405);
    assert_eq!(http(addr, "HEAD", "/metrics").0, 200);
    server.shutdown();
    assert!(std::net::TcpStream::connect(addr).is_err(), "closed after shutdown");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = MetricsServer::start(backend(), "127.0.0.1", port).unwrap_err();
    assert!(matches!(err, PrometheusError::Bind { .. }));
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("PROMETHEUS_PORT"),
        "{message}"
    );
    let err = MetricsServer::start(backend(), "no-such-host.invalid", 9568).unwrap_err();
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
}
