//! The `realtime_server` example, run as a real process: its API, its WebSocket channel, and the
//! telemetry Vigil adds to both, scraped from its /metrics endpoint.

#![allow(clippy::float_cmp, clippy::too_many_lines)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Running, free_port, http, loopback, realtime_env, sample, wait_listening};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

struct Server {
    running: Running,
    api: SocketAddr,
    metrics: SocketAddr,
}

fn start() -> Server {
    let (api_port, metrics_port) = (free_port(), free_port());
    let running = Running::start("realtime_server", &realtime_env(api_port, metrics_port));
    let (api, metrics) = (loopback(api_port), loopback(metrics_port));
    wait_listening(api);
    wait_listening(metrics);
    Server { running, api, metrics }
}

fn scrape(server: &Server) -> String {
    let (status, _, body) = http(server.metrics, "GET", "/metrics", "");
    assert_eq!(status, 200);
    body
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const GLOBAL: &str = r#"service="realtime_server",environment="development""#;

#[tokio::test]
async fn comments_flow_over_http_and_websocket_with_telemetry() {
    let server = start();
    assert_eq!(http(server.api, "GET", "/health", "").0, 200);

    let url = format!("ws://{}/ws/videos/1", server.api);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let metrics = scrape(&server);
    assert_eq!(
        sample(
            &metrics,
            &format!(r#"websocket_connections{{{GLOBAL},channel="comments"}}"#)
        ),
        Some(1.0),
        "{metrics}"
    );

    let (status, head, body) = http(
        server.api,
        "POST",
        "/api/videos/1/comments",
        r#"{"user_id": 7, "body": "First!"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert!(head.to_ascii_lowercase().contains("x-request-id:"), "{head}");
    let comment = json(&body);
    assert_eq!(comment["user_id"], 7);
    assert_eq!(comment["body"], "First!");

    let pushed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let pushed = json(pushed.to_text().unwrap());
    assert_eq!(pushed["event"], "comment_created");
    assert_eq!(pushed["payload"]["id"], comment["id"]);

    ws.send(Message::text(r#"{"event":"ping"}"#)).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(json(pong.to_text().unwrap())["event"], "pong");

    let (status, _, body) = http(server.api, "GET", "/api/videos/1/comments", "");
    assert_eq!(status, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 1);

    // Bad input: clear JSON errors, counted with their status.
    assert_eq!(http(server.api, "POST", "/api/videos/1/comments", "not json").0, 400);
    assert_eq!(
        http(
            server.api,
            "POST",
            "/api/videos/1/comments",
            r#"{"user_id": 1, "body": " "}"#
        )
        .0,
        422
    );
    assert_eq!(
        http(
            server.api,
            "POST",
            "/api/videos/999/comments",
            r#"{"user_id": 1, "body": "x"}"#
        )
        .0,
        404
    );
    assert_eq!(http(server.api, "GET", "/api/videos/abc/comments", "").0, 400);
    assert_eq!(http(server.api, "GET", "/wp-admin.php", "").0, 404);

    // The client vanishes without a close frame: the gauge still returns to 0.
    drop(ws);
    let mut gauge = None;
    for _ in 0..100 {
        let metrics = scrape(&server);
        gauge = sample(
            &metrics,
            &format!(r#"websocket_connections{{{GLOBAL},channel="comments"}}"#),
        );
        if gauge == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gauge, Some(0.0));

    let m = scrape(&server);
    let route = "/api/videos/{video_id}/comments";
    let count = |method: &str, status: &str| {
        sample(
            &m,
            &format!(r#"http_request_total{{{GLOBAL},route="{route}",method="{method}",status="{status}"}}"#),
        )
    };
    assert_eq!(count("POST", "201"), Some(1.0), "{m}");
    assert_eq!(count("GET", "200"), Some(1.0), "{m}");
    assert_eq!(count("POST", "400"), Some(1.0), "{m}");
    assert_eq!(count("POST", "422"), Some(1.0), "{m}");
    assert_eq!(count("POST", "404"), Some(1.0), "{m}");
    assert_eq!(
        sample(
            &m,
            &format!(r#"http_request_total{{{GLOBAL},route="unmatched",method="GET",status="404"}}"#)
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        m.contains(r#"http_request_duration_seconds_bucket{service="realtime_server""#),
        "{m}"
    );
    let messages = |event: &str, direction: &str| {
        sample(
            &m,
            &format!(
                r#"websocket_messages_total{{{GLOBAL},channel="comments",event="{event}",direction="{direction}"}}"#
            ),
        )
    };
    assert_eq!(messages("comment_created", "out"), Some(1.0), "{m}");
    assert_eq!(messages("ping", "in"), Some(1.0), "{m}");
    assert_eq!(messages("pong", "out"), Some(1.0), "{m}");
    assert_eq!(sample(&m, "comments_created_total{"), Some(1.0), "{m}");
    assert_eq!(
        sample(&m, &format!("http_request_in_flight{{{GLOBAL}}}")),
        Some(0.0),
        "{m}"
    );

    // Logs: the seed's "Good" example, with the request's id from its span.
    let line = server.running.wait_for_line(|l| l.contains("\"Comment created\""));
    let line = json(&line);
    assert_eq!(line["user_id"], 7);
    assert_eq!(line["video_id"], 1);
    assert_eq!(line["comment_id"], comment["id"]);
    assert_eq!(line["route"], route);
    assert_eq!(line["method"], "POST");
    assert_eq!(line["request_id"].as_str().unwrap().len(), 32);
    assert_eq!(line["service"], "realtime_server");
}

#[tokio::test]
async fn graceful_shutdown_closes_sockets_and_flushes_every_log_line() {
    let server = start();
    let url = format!("ws://{}/ws/videos/2", server.api);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    for i in 0..20 {
        let body = format!(r#"{{"user_id": {}, "body": "comment {i}"}}"#, i + 1);
        assert_eq!(http(server.api, "POST", "/api/videos/2/comments", &body).0, 201);
    }
    for _ in 0..20 {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(json(msg.to_text().unwrap())["event"], "comment_created");
    }
    let (code, lines) = server.running.terminate();
    assert_eq!(code, Some(0));
    // The server closed the socket itself.
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap();
    assert!(matches!(end, None | Some(Ok(Message::Close(_)) | Err(_))), "{end:?}");
    let created = lines.iter().filter(|l| l.contains("\"Comment created\"")).count();
    assert_eq!(created, 20);
    assert!(
        lines
            .iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().contains("\"Stopped\""), "{:?}", lines.last());
}
