//! An axum 0.8 server (`WebSocketUpgrade`) with a tokio-tungstenite client on 127.0.0.1.

#![cfg(feature = "axum")]

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use common::{Client, all_messages, connect, durations, expected, messages, run, wait_connections};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use vigil_ws::WsMetrics;

async fn comments(ws: WebSocketUpgrade, State(metrics): State<WsMetrics>) -> Response {
    ws.on_upgrade(move |socket| async move {
        let mut socket = metrics.wrap(socket);
        while let Some(Ok(message)) = socket.next().await {
            let AxumMessage::Text(text) = &message else { continue };
            if text.as_str().contains(r#""event":"post_comment""#) {
                let reply = AxumMessage::text(r#"{"event":"comment_created","payload":{}}"#);
                if socket.send(reply).await.is_err() {
                    break;
                }
            } else if text.as_str() == "panic" {
                panic!("handler bug (expected by the test)");
            }
        }
    })
}

async fn serve(metrics: WsMetrics) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/ws/comments", get(comments)).with_state(metrics);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn send_text(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.expect("send");
}

#[test]
fn axum_sockets_are_counted_exactly() {
    let backend = run(|backend| async move {
        let addr = serve(WsMetrics::new("comments").unwrap()).await;
        let mut client = connect(addr, "/ws/comments").await;
        wait_connections(&backend, "comments", 1.0).await;
        for _ in 0..3 {
            send_text(&mut client, r#"{"event":"ping"}"#).await;
        }
        client.send(Message::binary(vec![7])).await.unwrap();
        send_text(&mut client, r#"{"event":"post_comment","payload":{"body":"a"}}"#).await;
        send_text(&mut client, r#"{"event":"post_comment","payload":{"body":"b"}}"#).await;
        for _ in 0..2 {
            let reply = client.next().await.unwrap().unwrap();
            assert_eq!(reply.to_text().unwrap(), r#"{"event":"comment_created","payload":{}}"#);
        }
        client.close(None).await.unwrap();
        while let Some(Ok(_)) = client.next().await {}
        wait_connections(&backend, "comments", 0.0).await;
    });
    assert_eq!(
        all_messages(&backend, "comments"),
        expected(&[
            ("ping", "in", 3),
            ("binary", "in", 1),
            ("post_comment", "in", 2),
            ("close", "in", 1),
            ("comment_created", "out", 2),
        ])
    );
    assert_eq!(durations(&backend, "comments").len(), 1);
}

#[test]
fn axum_gauge_returns_to_zero_after_disconnects_and_a_panic() {
    let backend = run(|backend| async move {
        let addr = serve(WsMetrics::new("comments").unwrap()).await;
        let mut dropped = connect(addr, "/ws/comments").await;
        let reset = connect(addr, "/ws/comments").await;
        let mut panicking = connect(addr, "/ws/comments").await;
        wait_connections(&backend, "comments", 3.0).await;

        send_text(&mut dropped, r#"{"event":"ping"}"#).await;
        common::eventually("the ping arrived", || {
            messages(&backend, "comments", "ping", "in") == Some(1)
        })
        .await;
        drop(dropped);
        wait_connections(&backend, "comments", 2.0).await;

        reset.get_ref().set_zero_linger().unwrap();
        drop(reset);
        wait_connections(&backend, "comments", 1.0).await;

        send_text(&mut panicking, "panic").await;
        wait_connections(&backend, "comments", 0.0).await;
        assert!(matches!(panicking.next().await, Some(Err(_)) | None));
    });
    assert_eq!(durations(&backend, "comments").len(), 3);
    assert_eq!(
        all_messages(&backend, "comments"),
        expected(&[("ping", "in", 1), ("text", "in", 1)])
    );
}
