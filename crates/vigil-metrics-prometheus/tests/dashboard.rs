//! The live dashboard: its routes and headers, the exact values of its JSON, its bounded
//! history, and the server sampling on its own.

#![allow(clippy::float_cmp, clippy::cast_precision_loss)]

mod common;

use std::time::{Duration, Instant};

use common::{DASHBOARD_CHARTS, header, http};
use serde_json::Value;
use vigil_core::catalogue;
use vigil_metrics_prometheus::{DashboardHistory, DashboardOptions, MetricsServer, PrometheusBackend, dashboard_csp};

fn backend() -> PrometheusBackend {
    PrometheusBackend::builder()
        .global_label("service", "svc")
        .global_label("environment", "test")
        .build()
        .unwrap()
}

/// The SHA-256 of `text`, base64-encoded: a CSP hash source.
fn sha256_base64(text: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("invalid JSON ({e}): {json}"))
}

/// The values of the series named `series` of the chart `chart`, as `Option<f64>` (null: None).
fn series(data: &Value, chart: &str, series: &str) -> Vec<Option<f64>> {
    let chart = data["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == chart)
        .unwrap_or_else(|| panic!("no chart {chart}"));
    let s = chart["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == series)
        .unwrap_or_else(|| panic!("no series {series} in {chart}"));
    s["values"].as_array().unwrap().iter().map(Value::as_f64).collect()
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 1e-9 * expected.abs().max(1.0))
}

fn record_request(status: &'static str, ms: f64) {
    let tags = [("route", "/api/videos/{id}"), ("method", "GET"), ("status", status)];
    metrics::counter!(catalogue::HTTP_REQUEST_COUNT.name, &tags).increment(1);
    metrics::histogram!(catalogue::HTTP_REQUEST_DURATION.name, &tags).record(ms);
}

#[test]
fn the_json_shows_exact_rates_percentiles_and_error_share() {
    let b = backend();
    let history = DashboardHistory::new(b.clone(), DashboardOptions::default());
    // Traffic before the first sample is not part of any rate.
    metrics::with_local_recorder(&b, || record_request("200", 7000.0));
    history.sample(Duration::ZERO);
    metrics::with_local_recorder(&b, || {
        // 100 requests in 2 s: 90 of 3 ms (bucket 2.5-5), 10 of 40 ms (bucket 25-50), 5 of them 500s.
        for _ in 0..90 {
            record_request("200", 3.0);
        }
        for i in 0..10 {
            record_request(if i < 5 { "500" } else { "200" }, 40.0);
        }
        // Queries: 3 of 0.5 ms (bucket 0-1), 1 of 20 ms (bucket 10-25).
        for ms in [0.5, 0.5, 0.5, 20.0] {
            metrics::histogram!(catalogue::DATABASE_QUERY_DURATION.name, "source" => "db", "operation" => "SELECT")
                .record(ms);
        }
        metrics::gauge!(catalogue::WEBSOCKET_CONNECTIONS.name, "channel" => "comments").set(3.0);
        metrics::gauge!(catalogue::WEBSOCKET_CONNECTIONS.name, "channel" => "presence").set(4.0);
        metrics::gauge!(catalogue::PROCESS_MEMORY_RESIDENT.name).set(52_428_800.0);
        // Two pools: the chart sums them.
        for (pool, in_use, size, max) in [("main", 3.0, 5.0, 10.0), ("replica", 1.0, 2.0, 4.0)] {
            metrics::gauge!(catalogue::DATABASE_POOL_IN_USE.name, "pool" => pool).set(in_use);
            metrics::gauge!(catalogue::DATABASE_POOL_SIZE.name, "pool" => pool).set(size);
            metrics::gauge!(catalogue::DATABASE_POOL_MAX.name, "pool" => pool).set(max);
        }
    });
    history.sample(Duration::from_secs(2));
    history.sample(Duration::from_millis(3500)); // nothing happened since
    assert_eq!(history.len(), 3);

    let data = parse(&history.to_json());
    assert_eq!(data["interval_ms"], 1000);
    assert_eq!(data["capacity"], 600);
    let t: Vec<u64> = data["t"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!((t[1] - t[0], t[2] - t[0]), (2000, 3500));

    assert_eq!(series(&data, "http_rate", "requests"), [None, Some(50.0), Some(0.0)]);
    let p50 = series(&data, "http_latency", "p50");
    let p95 = series(&data, "http_latency", "p95");
    let p99 = series(&data, "http_latency", "p99");
    assert_eq!(
        (p50[0], p50[2], p95[2], p99[2]),
        (None, None, None, None),
        "no request: no percentile"
    );
    assert!(close(p50[1], 2.5 + 2.5 * 50.0 / 90.0), "{p50:?}");
    assert!(close(p95[1], 25.0 + 25.0 * 5.0 / 10.0), "{p95:?}");
    assert!(close(p99[1], 25.0 + 25.0 * 9.0 / 10.0), "{p99:?}");
    assert_eq!(series(&data, "http_errors", "5xx"), [None, Some(5.0), None]);

    let db50 = series(&data, "db_latency", "p50");
    let db99 = series(&data, "db_latency", "p99");
    assert!(close(db50[1], 1.0 * 2.0 / 3.0), "{db50:?}"); // rank 2 of 4: 2 of the 3 in (0, 1]
    assert!(close(db99[1], 10.0 + 15.0 * (3.96 - 3.0)), "{db99:?}"); // rank 3.96: the 1 in (10, 25]

    // Gauges: their current value, summed over series, from the sample they were set in.
    assert_eq!(series(&data, "ws_connections", "open"), [None, Some(7.0), Some(7.0)]);
    assert_eq!(
        series(&data, "memory", "resident"),
        [None, Some(52_428_800.0), Some(52_428_800.0)]
    );
    for (name, value) in [("in use", 4.0), ("open", 7.0), ("max", 14.0)] {
        assert_eq!(
            series(&data, "db_pool", name),
            [None, Some(value), Some(value)],
            "{name}"
        );
    }
}

#[test]
fn charts_name_their_catalogue_metrics_and_the_page_names_none() {
    let history = DashboardHistory::new(backend(), DashboardOptions::default());
    let data = parse(&history.to_json());
    assert_eq!(data["t"].as_array().unwrap().len(), 0);
    let charts = data["charts"].as_array().unwrap();
    let ids: Vec<&str> = charts.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, DASHBOARD_CHARTS);
    for chart in charts {
        for m in chart["metrics"].as_array().unwrap() {
            assert!(
                catalogue::find(m.as_str().unwrap()).is_some(),
                "{m} is not in the catalogue"
            );
        }
        for s in chart["series"].as_array().unwrap() {
            assert_eq!(s["values"].as_array().unwrap().len(), 0);
        }
    }
    // The page gets every metric name from the JSON.
    let server = MetricsServer::start(backend(), "127.0.0.1", 0).unwrap();
    let b = backend();
    for path in ["/dashboard"] {
        let (_, _, text) = http(server.local_addr(), "GET", path);
        for def in catalogue::ALL {
            assert!(!text.contains(def.name), "{path} names {}", def.name);
            let exported = b.exported_name(def.name).unwrap();
            assert!(!text.contains(&exported), "{path} names {exported}");
        }
    }
}

#[test]
fn the_history_is_bounded_and_drops_the_oldest_points() {
    let b = backend();
    let history = DashboardHistory::new(b.clone(), DashboardOptions::default().history(5));
    assert_eq!(history.capacity(), 5);
    assert!(history.is_empty());
    for i in 0..8_u32 {
        metrics::with_local_recorder(&b, || {
            metrics::gauge!(catalogue::PROCESS_MEMORY_RESIDENT.name).set(f64::from(i));
        });
        history.sample(Duration::from_secs(u64::from(i)));
        assert_eq!(history.len(), (i as usize + 1).min(5));
    }
    let data = parse(&history.to_json());
    assert_eq!(data["capacity"], 5);
    let t: Vec<u64> = data["t"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(t.len(), 5);
    assert!(t.windows(2).all(|w| w[1] - w[0] == 1000), "{t:?}");
    let kept: Vec<Option<f64>> = (3..8).map(|i| Some(f64::from(i))).collect();
    assert_eq!(series(&data, "memory", "resident"), kept);
    // Options are clamped to sane bounds.
    let tiny = DashboardHistory::new(b, DashboardOptions::default().history(0));
    assert_eq!(tiny.capacity(), 2);
}

#[test]
fn a_sample_not_after_the_previous_one_has_no_rates() {
    let b = backend();
    let history = DashboardHistory::new(b.clone(), DashboardOptions::default());
    history.sample(Duration::from_secs(5));
    metrics::with_local_recorder(&b, || record_request("200", 3.0));
    history.sample(Duration::from_secs(5));
    let data = parse(&history.to_json());
    assert_eq!(series(&data, "http_rate", "requests"), [None, None]);
    assert_eq!(series(&data, "http_latency", "p50"), [None, None]);
}

#[test]
fn exported_names_match_the_rendered_text() {
    let b = backend();
    metrics::with_local_recorder(&b, || {
        for def in catalogue::ALL {
            match def.kind {
                catalogue::MetricKind::Counter => metrics::counter!(def.name).increment(1),
                catalogue::MetricKind::Gauge => metrics::gauge!(def.name).set(1.0),
                catalogue::MetricKind::Histogram => metrics::histogram!(def.name).record(1.0),
            }
        }
    });
    let samples = common::parse_exposition(&b.render());
    for def in catalogue::ALL {
        let name = b.exported_name(def.name).unwrap();
        let expected = match def.kind {
            catalogue::MetricKind::Histogram => format!("{name}_count"),
            _ => name.clone(),
        };
        assert!(
            samples.iter().any(|s| s.name == expected),
            "{} is not rendered as {expected}",
            def.name
        );
    }
}

#[test]
fn dashboard_routes_answer_read_only_with_strict_headers() {
    let server = MetricsServer::start(backend(), "127.0.0.1", 0).unwrap();
    let addr = server.local_addr();
    for (path, content_type) in [
        ("/dashboard", "text/html; charset=utf-8"),
        ("/dashboard/data", "application/json"),
    ] {
        let (status, head, body) = http(addr, "GET", path);
        assert_eq!(status, 200, "{path}: {head}");
        assert_eq!(header(&head, "content-type").as_deref(), Some(content_type), "{path}");
        assert_eq!(header(&head, "cache-control").as_deref(), Some("no-store"), "{path}");
        assert_eq!(
            header(&head, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            header(&head, "content-security-policy").as_deref(),
            Some(dashboard_csp()),
            "{path}"
        );
        assert!(!body.is_empty(), "{path}");
        if path == "/dashboard/data" {
            parse(&body);
        } else {
            // HEAD: the same headers, the length of the body, and no body.
            let (status, head_only, rest) = http(addr, "HEAD", path);
            assert_eq!(status, 200, "{path}");
            assert_eq!(header(&head_only, "content-type").as_deref(), Some(content_type));
            assert_eq!(
                header(&head_only, "content-length"),
                Some(body.len().to_string()),
                "{path}"
            );
            assert_eq!(rest, "", "{path}");
        }
        for method in ["POST", "PUT", "DELETE"] {
            let (status, head, _) = http(addr, method, path);
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(header(&head, "allow").as_deref(), Some("GET, HEAD"));
        }
    }
    // One self-contained document: its one script and one style sheet inline, nothing loaded
    // from anywhere but the data it polls.
    let html = http(addr, "GET", "/dashboard").2;
    assert_eq!(html.matches("<script>").count(), 1, "{html}");
    assert_eq!(html.matches("<style>").count(), 1, "{html}");
    for external in [" src=", "<link", "@import", "url(", "https://", "{{"] {
        assert!(!html.contains(external), "the page has {external:?}");
    }
    // The one http:// in it is the SVG namespace name, an identifier that is never fetched.
    assert_eq!(
        html.matches("http://").count(),
        html.matches("'http://www.w3.org/2000/svg'").count(),
        "the page names an http:// address"
    );
    assert!(
        !html.contains("style="),
        "inline style attributes would need 'unsafe-inline'"
    );
    // The policy allows exactly the inline script and style sheet served, by their hashes.
    let inline = |open: &str, close: &str| {
        let start = html.find(open).unwrap() + open.len();
        let end = start + html[start..].find(close).unwrap();
        html[start..end].to_owned()
    };
    let csp = dashboard_csp();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
    for (directive, content) in [
        ("script-src", inline("<script>", "</script>")),
        ("style-src", inline("<style>", "</style>")),
    ] {
        let expected = format!("{directive} 'sha256-{}';", sha256_base64(&content));
        assert!(csp.contains(&expected), "{csp} lacks {expected}");
    }
    for path in [
        "/dashboard/",
        "/dashboard/data/x",
        "/dashboard/app.js",
        "/dashboard.js",
        "/Dashboard",
        "/",
    ] {
        assert_eq!(http(addr, "GET", path).0, 404, "{path}");
    }
    assert_eq!(http(addr, "GET", "/metrics").0, 200);
}

#[test]
fn a_disabled_dashboard_is_not_served() {
    let server = MetricsServer::start_with(backend(), "127.0.0.1", 0, DashboardOptions::disabled()).unwrap();
    let addr = server.local_addr();
    for path in ["/dashboard", "/dashboard/data"] {
        let (status, _, body) = http(addr, "GET", path);
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, "not found: Vigil serves /metrics\n");
    }
    assert_eq!(http(addr, "GET", "/metrics").0, 200);
}

#[test]
fn the_server_samples_the_registry_on_its_own() {
    let b = backend();
    let options = DashboardOptions::default()
        .interval(Duration::from_millis(20))
        .history(50);
    let server = MetricsServer::start_with(b.clone(), "127.0.0.1", 0, options).unwrap();
    let addr = server.local_addr();
    // Record until a point shows requests and a p95 (bounded: a deadline, not a timing claim).
    let deadline = Instant::now() + Duration::from_secs(30);
    let data = loop {
        metrics::with_local_recorder(&b, || {
            for _ in 0..5 {
                record_request("200", 3.0);
            }
        });
        let (status, _, body) = http(addr, "GET", "/dashboard/data");
        assert_eq!(status, 200);
        let data = parse(&body);
        let rate = series(&data, "http_rate", "requests");
        let p95 = series(&data, "http_latency", "p95");
        if rate.iter().flatten().any(|r| *r > 0.0) && p95.iter().flatten().next().is_some() {
            break data;
        }
        assert!(Instant::now() < deadline, "no sampled point in 30 s: {body}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(data["interval_ms"], 20);
    assert_eq!(data["capacity"], 50);
    // All 3 ms: every percentile falls in the (2.5, 5] bucket.
    let p95 = series(&data, "http_latency", "p95");
    assert!(p95.iter().flatten().all(|v| *v > 2.5 && *v <= 5.0), "{p95:?}");
    server.shutdown();
}
