//! The dashboard in a real browser: headless Chromium loads `/dashboard` while traffic runs,
//! the page's charts get data (and "no data" where a metric is absent), the page reports no
//! error, and a screenshot is kept as a CI artefact in `<target>/dashboard/dashboard.png`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::browser::{chromium_or_skip, console_messages, run, target_dir};
use common::{DASHBOARD_CHARTS, http};
use vigil_core::catalogue;
use vigil_metrics_prometheus::{DashboardOptions, MetricsServer, PrometheusBackend};

/// The longest one Chromium run may take before it is killed.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(40);

/// Records traffic like a realtime app: HTTP requests (some 500s), WebSocket connections, query
/// durations, a database pool's use and resident memory, until `stop` (at most 60 s).
fn traffic(backend: PrometheusBackend, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        metrics::with_local_recorder(&backend, || {
            let ok = [("route", "/api/videos/{id}"), ("method", "GET"), ("status", "200")];
            let failed = [("route", "/api/videos/{id}"), ("method", "GET"), ("status", "500")];
            let query = [("source", "videos"), ("operation", "SELECT")];
            for i in 0..12_000_u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let tags = if i % 20 == 0 { &failed } else { &ok };
                metrics::counter!(catalogue::HTTP_REQUEST_COUNT.name, tags).increment(1);
                metrics::histogram!(catalogue::HTTP_REQUEST_DURATION.name, tags).record(f64::from(2 + i % 40));
                metrics::histogram!(catalogue::DATABASE_QUERY_DURATION.name, &query).record(f64::from(1 + i % 7));
                metrics::gauge!(catalogue::WEBSOCKET_CONNECTIONS.name, "channel" => "comments")
                    .set(f64::from(10 + (i / 50) % 15));
                metrics::gauge!(catalogue::PROCESS_MEMORY_RESIDENT.name)
                    .set(f64::from(48 + (i / 100) % 8) * 1024.0 * 1024.0);
                metrics::gauge!(catalogue::DATABASE_POOL_IN_USE.name, "pool" => "main").set(f64::from((i / 30) % 6));
                metrics::gauge!(catalogue::DATABASE_POOL_SIZE.name, "pool" => "main").set(6.0);
                metrics::gauge!(catalogue::DATABASE_POOL_MAX.name, "pool" => "main").set(10.0);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    })
}

/// The value of attribute `attr` in the start tag of the element with id `id`, in `dom`.
fn attribute<'a>(dom: &'a str, id: &str, attr: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let tag_start = dom[..start].rfind('<')?;
    let tag = &dom[tag_start..start + dom[start..].find('>')?];
    let at = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// Checks that Chromium logs the page's console to stderr, so that finding no console message
/// in a run means something.
fn assert_console_is_logged(chromium: &Path, out_dir: &Path) {
    let probe = run(
        chromium,
        &out_dir.join("profile-probe"),
        &[
            "--dump-dom",
            "data:text/html,<script>console.error('vigil-console-probe')</script>",
        ],
        CHROMIUM_DEADLINE,
    );
    assert!(
        console_messages(&probe.stderr)
            .iter()
            .any(|l| l.contains("vigil-console-probe")),
        "this Chromium does not log the page's console to stderr; the console check would be blind:\n{}",
        probe.stderr
    );
}

/// Waits until the server's history has `n` request-rate values (bounded by a deadline).
fn wait_for_points(addr: SocketAddr, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http(addr, "GET", "/dashboard/data").2;
        let data: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rates = data["charts"][0]["series"][0]["values"].as_array().unwrap();
        if rates.iter().filter(|v| v.is_number()).count() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "the server sampled too little: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks the page's own report of its state in the dumped DOM: every chart drawn with data.
fn assert_page_drew_charts(dom: &str) {
    assert_eq!(
        attribute(dom, "charts", "data-ready"),
        Some("true"),
        "the page never drew:\n{dom}"
    );
    assert_eq!(attribute(dom, "status", "data-state"), Some("live"), "{dom}");
    for chart in DASHBOARD_CHARTS {
        let id = format!("chart-{chart}");
        assert_eq!(attribute(dom, &id, "data-state"), Some("data"), "{chart}:\n{dom}");
        let points: usize = attribute(dom, &id, "data-points").unwrap().parse().unwrap();
        assert!(points >= 5, "{chart} has {points} points");
    }
    assert!(!dom.contains(">no data</text>"), "{dom}");
    assert_no_page_errors(dom);
}

/// Checks that the page reported no script error in the dumped DOM.
fn assert_no_page_errors(dom: &str) {
    assert_eq!(
        attribute(dom, "errors", "hidden"),
        Some(""),
        "the page reported errors:\n{dom}"
    );
    // The count the page keeps on <body> (the inline script's text names it too).
    let body = dom
        .find("<body")
        .map(|at| &dom[at..at + dom[at..].find('>').unwrap_or(0)]);
    assert!(
        body.is_some_and(|tag| !tag.contains("data-errors")),
        "the page reported errors:\n{dom}"
    );
}

/// Checks that no message reached the console in `runs` (errors, CSP violations...).
fn assert_silent_console(runs: &[&common::browser::Run]) {
    for run in runs {
        let console = console_messages(&run.stderr);
        assert!(
            console.is_empty(),
            "the page logged to the console (errors, CSP violations...): {console:#?}"
        );
    }
}

#[test]
fn chromium_shows_live_charts_without_errors() {
    let Some(chromium) = chromium_or_skip("chromium_shows_live_charts_without_errors") else {
        return;
    };
    let out_dir = target_dir().join("dashboard");
    std::fs::create_dir_all(&out_dir).unwrap();
    assert_console_is_logged(&chromium, &out_dir);

    let backend = PrometheusBackend::builder()
        .global_label("service", "dashboard-test")
        .build()
        .unwrap();
    let options = DashboardOptions::default()
        .interval(Duration::from_millis(100))
        .history(300);
    let server = MetricsServer::start_with(backend.clone(), "127.0.0.1", 0, options).unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let recorder = traffic(backend, Arc::clone(&stop));
    // Some history first, so the page has lines to draw at once.
    wait_for_points(addr, 10);

    let url = format!("http://{addr}/dashboard");
    let budget = "--virtual-time-budget=3000";
    let dom_run = run(
        &chromium,
        &out_dir.join("profile-dom"),
        &[budget, "--dump-dom", &url],
        CHROMIUM_DEADLINE,
    );
    let screenshot = out_dir.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = format!("--screenshot={}", screenshot.display());
    let shot_run = run(
        &chromium,
        &out_dir.join("profile-shot"),
        &[budget, "--window-size=1280,900", &shot, &url],
        CHROMIUM_DEADLINE,
    );
    stop.store(true, Ordering::Relaxed);
    recorder.join().unwrap();
    server.shutdown();

    let dom = &dom_run.stdout;
    std::fs::write(out_dir.join("dashboard.dom.html"), dom).unwrap();
    assert!(
        dom_run.status.success(),
        "chromium --dump-dom failed:\n{}",
        dom_run.stderr
    );
    assert!(
        shot_run.status.success(),
        "chromium --screenshot failed:\n{}",
        shot_run.stderr
    );
    assert_page_drew_charts(dom);
    assert_silent_console(&[&dom_run, &shot_run]);

    let png = std::fs::read(&screenshot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", screenshot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a screenshot"
    );
    eprintln!("screenshot: {}", screenshot.display());
}

#[test]
fn chromium_shows_no_data_without_errors_before_any_metric() {
    let Some(chromium) = chromium_or_skip("chromium_shows_no_data_without_errors_before_any_metric") else {
        return;
    };
    let out_dir = target_dir().join("dashboard");
    std::fs::create_dir_all(&out_dir).unwrap();
    let backend = PrometheusBackend::builder().build().unwrap();
    let options = DashboardOptions::default().interval(Duration::from_millis(100));
    let server = MetricsServer::start_with(backend, "127.0.0.1", 0, options).unwrap();
    let url = format!("http://{}/dashboard", server.local_addr());
    let dom_run = run(
        &chromium,
        &out_dir.join("profile-empty"),
        &["--virtual-time-budget=2000", "--dump-dom", &url],
        CHROMIUM_DEADLINE,
    );
    server.shutdown();
    let dom = &dom_run.stdout;
    assert!(
        dom_run.status.success(),
        "chromium --dump-dom failed:\n{}",
        dom_run.stderr
    );
    assert_eq!(
        attribute(dom, "charts", "data-ready"),
        Some("true"),
        "the page never drew:\n{dom}"
    );
    // Nothing was recorded: every chart says so, and nothing fails.
    for chart in DASHBOARD_CHARTS {
        let id = format!("chart-{chart}");
        assert_eq!(attribute(dom, &id, "data-state"), Some("no-data"), "{chart}:\n{dom}");
    }
    assert_eq!(dom.matches(">no data</text>").count(), DASHBOARD_CHARTS.len(), "{dom}");
    assert_no_page_errors(dom);
    assert_silent_console(&[&dom_run]);
}
