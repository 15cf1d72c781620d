//! The HTTP layer end to end, on real sockets: exact metrics, bounded labels, request ids in
//! headers and logs, and failures that still count.

#![allow(clippy::float_cmp)]

mod common;

use std::borrow::Cow;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{Client, eventually, run, serve};
use vigil_core::OwnedValue;
use vigil_http::{HttpMetricsLayer, RequestId};

const COUNT: &str = "http.request.count";
const DURATION: &str = "http.request.duration";
const SIZE: &str = "http.response.size";
const IN_FLIGHT: &str = "http.request.in_flight";

fn tags<'a>(route: &'a str, method: &'a str, status: &'a str) -> [(&'a str, &'a str); 3] {
    [("route", route), ("method", method), ("status", status)]
}

fn app() -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/api/videos/{id}/comments",
            get(|| async { "[]" }).post(|| async { (axum::http::StatusCode::CREATED, "{\"id\":1}") }),
        )
        .route(
            "/logs",
            get(|| async {
                tracing::info!(user_id = 7, "inside the handler");
                "logged"
            }),
        )
        .layer(HttpMetricsLayer::new())
}

#[test]
fn counts_durations_sizes_and_in_flight_exactly() {
    let seen = run(|_| async {
        let addr = serve(app()).await;
        let mut c = Client::connect(addr).await;
        for _ in 0..3 {
            let r = c.send("GET", "/api/videos/7/comments", &[], "").await;
            assert_eq!((r.status, r.body.as_str()), (200, "[]"));
        }
        let r = c.send("POST", "/api/videos/9/comments", &[], "{\"user_id\":1}").await;
        assert_eq!(r.status, 201);
        let r = c.send("HEAD", "/health", &[], "").await;
        assert_eq!(r.status, 200);
    });
    let m = &seen.metrics;
    let route = "/api/videos/{id}/comments";
    assert_eq!(m.counter(COUNT, &tags(route, "GET", "200")), Some(3));
    assert_eq!(m.counter(COUNT, &tags(route, "POST", "201")), Some(1));
    assert_eq!(m.counter(COUNT, &tags("/health", "HEAD", "200")), Some(1));
    let durations = m.histogram_values(DURATION, &tags(route, "GET", "200"));
    assert_eq!(durations.len(), 3);
    assert!(durations.iter().all(|d| *d >= 0.0 && *d < 5_000.0), "{durations:?}");
    assert_eq!(
        m.histogram_values(SIZE, &tags(route, "GET", "200")),
        vec![2.0, 2.0, 2.0]
    );
    assert_eq!(m.histogram_values(SIZE, &tags(route, "POST", "201")), vec![8.0]);
    assert_eq!(m.gauge_value(IN_FLIGHT, &[]), Some(0.0));
}

#[test]
fn ten_thousand_random_paths_make_one_route_series() {
    let seen = run(|_| async {
        let addr = serve(app()).await;
        let mut c = Client::connect(addr).await;
        for i in 0..10_000u32 {
            let path = format!("/scan/{}/{:x}", i, i.wrapping_mul(2_654_435_761));
            assert_eq!(c.send("GET", &path, &[], "").await.status, 404);
        }
    });
    let series: Vec<_> = seen
        .metrics
        .counters()
        .into_iter()
        .filter(|((name, _), _)| name == COUNT)
        .collect();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(
        seen.metrics.counter(COUNT, &tags("unmatched", "GET", "404")),
        Some(10_000)
    );
}

#[test]
fn unknown_methods_fold_into_other() {
    let seen = run(|_| async {
        let addr = serve(app()).await;
        let mut c = Client::connect(addr).await;
        for method in ["PROPFIND", "X-WEIRD", "BREW"] {
            c.send(method, "/health", &[], "").await;
        }
    });
    let series: Vec<_> = seen
        .metrics
        .counters()
        .into_iter()
        .filter(|((name, _), _)| name == COUNT)
        .collect();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].1, 3);
    assert!(
        series[0].0.1.contains(&("method".to_owned(), "OTHER".to_owned())),
        "{series:?}"
    );
}

#[test]
fn request_ids_are_echoed_or_generated_and_reach_every_log_line() {
    let seen = run(|_| async {
        let addr = serve(app()).await;
        let mut c = Client::connect(addr).await;
        let r = c.send("GET", "/logs", &[("x-request-id", "client-id-1")], "").await;
        assert_eq!(r.header("x-request-id"), Some("client-id-1"));
        let r = c
            .send("GET", "/logs", &[("x-request-id", "evil id\" with spaces")], "")
            .await;
        let generated = r.header("x-request-id").unwrap().to_owned();
        assert!(
            RequestId::parse(&generated).is_some() && generated.len() == 32,
            "{generated}"
        );
        let r = c.send("GET", "/logs", &[], "").await;
        assert_eq!(r.header("x-request-id").unwrap().len(), 32);
    });
    let lines: Vec<_> = seen
        .logs
        .records()
        .into_iter()
        .filter(|r| r.message == "inside the handler")
        .collect();
    assert_eq!(lines.len(), 3);
    let first = &lines[0];
    assert_eq!(first.field("request_id"), Some(&OwnedValue::Str("client-id-1".into())));
    assert_eq!(first.field("method"), Some(&OwnedValue::Str("GET".into())));
    assert_eq!(first.field("route"), Some(&OwnedValue::Str("/logs".into())));
    assert_eq!(first.field("user_id"), Some(&OwnedValue::I64(7)));
    let OwnedValue::Str(second) = lines[1].field("request_id").unwrap() else {
        panic!()
    };
    assert_ne!(&**second, "evil id\" with spaces");
}

#[test]
fn the_access_log_writes_one_record_per_request() {
    let seen = run(|_| async {
        let app = Router::new()
            .route("/a", get(|| async { "abc" }))
            .layer(HttpMetricsLayer::new().access_log(true));
        let addr = serve(app).await;
        let mut c = Client::connect(addr).await;
        c.send("GET", "/a", &[("x-request-id", "r-1")], "").await;
        c.send("GET", "/missing", &[], "").await;
    });
    let access: Vec<_> = seen
        .logs
        .records()
        .into_iter()
        .filter(|r| r.target == "vigil::access")
        .collect();
    assert_eq!(access.len(), 2);
    assert_eq!(access[0].field("status"), Some(&OwnedValue::Str("200".into())));
    assert_eq!(access[0].field("route"), Some(&OwnedValue::Str("/a".into())));
    assert_eq!(access[0].field("bytes"), Some(&OwnedValue::U64(3)));
    assert_eq!(access[0].field("request_id"), Some(&OwnedValue::Str("r-1".into())));
    assert!(matches!(access[0].field("duration_ms"), Some(OwnedValue::F64(d)) if *d >= 0.0));
    assert_eq!(access[1].field("status"), Some(&OwnedValue::Str("404".into())));
}

#[test]
fn inner_errors_count_with_status_error() {
    use tower::{Layer, ServiceExt};
    let seen = run(|_| async {
        let failing = tower::service_fn(|_req: http::Request<Body>| async {
            Err::<http::Response<Body>, std::io::Error>(std::io::Error::other("backend down"))
        });
        let svc = HttpMetricsLayer::new()
            .route_fn(|_| Some(Cow::Borrowed("/fails")))
            .layer(failing);
        let result = svc.oneshot(http::Request::new(Body::empty())).await;
        assert!(result.is_err());
    });
    assert_eq!(seen.metrics.counter(COUNT, &tags("/fails", "GET", "error")), Some(1));
    assert_eq!(seen.metrics.gauge_value(IN_FLIGHT, &[]), Some(0.0));
}

#[test]
fn panics_count_as_500_behind_catch_panic_and_as_panic_without_it() {
    use tower::ServiceExt;
    let seen = run(|_| async {
        let caught = Router::new()
            .route("/boom", get(boom))
            .layer(tower_http::catch_panic::CatchPanicLayer::new())
            .layer(HttpMetricsLayer::new());
        let addr = serve(caught).await;
        let mut c = Client::connect(addr).await;
        assert_eq!(c.send("GET", "/boom", &[], "").await.status, 500);

        let uncaught = Router::new()
            .route("/boom-uncaught", get(boom))
            .layer(HttpMetricsLayer::new());
        let request = http::Request::get("/boom-uncaught").body(Body::empty()).unwrap();
        let joined = tokio::spawn(uncaught.oneshot(request)).await;
        assert!(joined.unwrap_err().is_panic());
    });
    assert_eq!(seen.metrics.counter(COUNT, &tags("/boom", "GET", "500")), Some(1));
    assert_eq!(
        seen.metrics.counter(COUNT, &tags("/boom-uncaught", "GET", "panic")),
        Some(1)
    );
    assert_eq!(seen.metrics.gauge_value(IN_FLIGHT, &[]), Some(0.0));
}

#[test]
fn a_client_that_disconnects_mid_response_counts_as_cancelled() {
    let seen = run(|seen| async move {
        let app = Router::new()
            .route(
                "/stream",
                get(|| async {
                    let chunks = futures_stream(Duration::from_millis(5));
                    Body::from_stream(chunks)
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .layer(HttpMetricsLayer::new());
        let addr = serve(app).await;
        let mut c = Client::connect(addr).await;
        c.send_only("GET", "/stream").await;
        let first = c.read_some().await;
        assert!(String::from_utf8_lossy(&first).starts_with("HTTP/1.1 200"));
        drop(c);
        let mut slow = Client::connect(addr).await;
        slow.send_only("GET", "/slow").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(slow);
        eventually(|| seen.metrics.gauge_value(IN_FLIGHT, &[]) == Some(0.0)).await;
    });
    assert_eq!(
        seen.metrics.counter(COUNT, &tags("/stream", "GET", "cancelled")),
        Some(1)
    );
    assert_eq!(seen.metrics.counter(COUNT, &tags("/slow", "GET", "cancelled")), Some(1));
    assert_eq!(seen.metrics.gauge_value(IN_FLIGHT, &[]), Some(0.0));
}

async fn boom() -> &'static str {
    panic!("handler bug")
}

/// An endless body: one chunk every `every`.
fn futures_stream(every: Duration) -> impl futures_core::Stream<Item = Result<Vec<u8>, Infallible>> + Send {
    struct Ticks(tokio::time::Interval);
    impl futures_core::Stream for Ticks {
        type Item = Result<Vec<u8>, Infallible>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            self.0.poll_tick(cx).map(|_| Some(Ok(vec![b'x'; 1024])))
        }
    }
    Ticks(tokio::time::interval(every))
}

#[test]
fn plain_hyper_with_a_route_function() {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tower::Layer;
    let seen = run(|_| async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let layer = HttpMetricsLayer::new().route_fn(|req| {
            req.uri
                .path()
                .starts_with("/users/")
                .then_some(Cow::Borrowed("/users/{id}"))
        });
        let service = layer.layer(tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes_from("hello"))))
        }));
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let service = TowerToHyperService::new(service.clone());
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        let mut c = Client::connect(addr).await;
        assert_eq!(c.send("GET", "/users/1", &[], "").await.body, "hello");
        assert_eq!(c.send("GET", "/users/2", &[], "").await.body, "hello");
        assert_eq!(c.send("GET", "/other", &[], "").await.body, "hello");
    });
    assert_eq!(seen.metrics.counter(COUNT, &tags("/users/{id}", "GET", "200")), Some(2));
    assert_eq!(seen.metrics.counter(COUNT, &tags("unmatched", "GET", "200")), Some(1));
    assert_eq!(
        seen.metrics.histogram_values(SIZE, &tags("/users/{id}", "GET", "200")),
        vec![5.0, 5.0]
    );
}

fn bytes_from(s: &'static str) -> hyper::body::Bytes {
    hyper::body::Bytes::from_static(s.as_bytes())
}
