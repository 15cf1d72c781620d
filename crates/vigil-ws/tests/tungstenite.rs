//! tokio-tungstenite server and client on 127.0.0.1: exact message counts and labels, and the
//! connection gauge back at 0 however a connection ends.

#![cfg(feature = "tungstenite")]

mod common;

use std::time::Duration;

use common::{
    Backend, Client, Server, ServerSocket, all_messages, connections, durations, eventually, expected, messages, run,
    wait_connections,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use vigil_ws::WsMetrics;

/// Reads until the connection ends; answers each `post_comment` with a `comment_created`.
async fn comments_handler(mut socket: ServerSocket) {
    while let Some(Ok(message)) = socket.next().await {
        if message.to_text().is_ok_and(|t| t.contains(r#""event":"post_comment""#)) {
            let reply = Message::text(r#"{"topic":"video:1","event":"comment_created","payload":{"id":1}}"#);
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    }
}

/// Reads until the connection ends.
async fn drain(mut socket: ServerSocket) {
    while let Some(Ok(_)) = socket.next().await {}
}

/// Sends a close frame and reads until the server has finished the close handshake.
async fn close(mut client: Client) {
    client.close(None).await.expect("close");
    while let Some(Ok(_)) = client.next().await {}
}

async fn send_text(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.expect("send");
}

#[test]
fn messages_are_counted_per_channel_event_and_direction() {
    let backend = run(|backend| async move {
        let server = Server::start(WsMetrics::new("comments").unwrap(), comments_handler).await;
        let mut client = server.connect().await;
        wait_connections(&backend, "comments", 1.0).await;

        for _ in 0..3 {
            send_text(&mut client, r#"{"event":"ping"}"#).await;
        }
        client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        for body in ["first", "second"] {
            let text = format!(r#"{{"topic":"video:1","event":"post_comment","payload":{{"body":"{body}"}}}}"#);
            send_text(&mut client, &text).await;
        }
        send_text(&mut client, "hello").await;
        for _ in 0..2 {
            let reply = client.next().await.unwrap().unwrap();
            assert!(reply.to_text().unwrap().contains("comment_created"));
        }
        close(client).await;
        wait_connections(&backend, "comments", 0.0).await;
    });

    assert_eq!(
        all_messages(&backend, "comments"),
        expected(&[
            ("ping", "in", 3),
            ("binary", "in", 1),
            ("post_comment", "in", 2),
            ("text", "in", 1),
            ("close", "in", 1),
            ("comment_created", "out", 2),
        ])
    );
    assert_eq!(connections(&backend, "comments"), Some(0.0));
    let durations = durations(&backend, "comments");
    assert_eq!(durations.len(), 1);
    assert!(durations[0] > 0.0 && durations[0] < 30_000.0, "{durations:?}");
}

#[test]
fn event_names_are_bounded_and_hostile_names_are_other() {
    let backend = run(|backend| async move {
        let server = Server::start(WsMetrics::new("chat").unwrap(), drain).await;
        let mut client = server.connect().await;
        let long = "x".repeat(33);
        let hostile = [
            r#"{"event":"a\nb"}"#.to_owned(),
            r#"{"event":"a\"} forged{b"}"#.to_owned(),
            r#"{"event":"<script>"}"#.to_owned(),
            r#"{"event":"two words"}"#.to_owned(),
            r#"{"event":"\u0070ing"}"#.to_owned(),
            format!(r#"{{"event":"{long}"}}"#),
        ];
        for text in &hostile {
            send_text(&mut client, text).await;
        }
        // 33 distinct well-formed names: the first 32 are learned, the 33rd is `other`.
        for i in 0..33 {
            send_text(&mut client, &format!(r#"{{"event":"e{i:02}","payload":{{}}}}"#)).await;
        }
        send_text(&mut client, r#"{"event":"e00"}"#).await;
        send_text(&mut client, r#"{"event":5}"#).await;
        close(client).await;
        wait_connections(&backend, "chat", 0.0).await;
    });

    let mut rows: Vec<(String, &str, u64)> = (1..32).map(|i| (format!("e{i:02}"), "in", 1)).collect();
    rows.extend([
        ("e00".to_owned(), "in", 2),
        ("other".to_owned(), "in", 7),
        ("text".to_owned(), "in", 1),
        ("close".to_owned(), "in", 1),
    ]);
    let rows: Vec<(&str, &str, u64)> = rows.iter().map(|(e, d, n)| (e.as_str(), *d, *n)).collect();
    assert_eq!(all_messages(&backend, "chat"), expected(&rows));
    assert_eq!(messages(&backend, "chat", "e32", "in"), None);
}

#[test]
fn an_allow_list_keeps_only_its_names() {
    let backend = run(|backend| async move {
        let metrics = WsMetrics::builder("feed")
            .allow_events(["comment_created", "comment_deleted"])
            .build()
            .unwrap();
        let server = Server::start(metrics, drain).await;
        let mut client = server.connect().await;
        send_text(&mut client, r#"{"event":"comment_created"}"#).await;
        send_text(&mut client, r#"{"event":"typing"}"#).await;
        send_text(&mut client, r#"{"event":"comment_created"}"#).await;
        close(client).await;
        wait_connections(&backend, "feed", 0.0).await;
    });
    assert_eq!(
        all_messages(&backend, "feed"),
        expected(&[("comment_created", "in", 2), ("other", "in", 1), ("close", "in", 1)])
    );
}

#[test]
fn frame_types_are_counted_in_both_directions() {
    let backend = run(|backend| async move {
        let server = Server::start(
            WsMetrics::new("frames").unwrap(),
            |mut socket: ServerSocket| async move {
                socket.send(Message::Ping(b"hb".to_vec().into())).await.unwrap();
                while let Some(Ok(message)) = socket.next().await {
                    if message.is_text() || message.is_binary() {
                        socket.send(message).await.unwrap();
                    }
                }
            },
        )
        .await;
        let mut client = server.connect().await;
        client.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
        client
            .send(Message::Pong(b"unsolicited".to_vec().into()))
            .await
            .unwrap();
        client.send(Message::binary(vec![0xff])).await.unwrap();
        send_text(&mut client, "plain").await;
        send_text(&mut client, "[1,2]").await;
        let mut echoed = Vec::new();
        while echoed.len() < 3 {
            let message = client.next().await.unwrap().unwrap();
            if message.is_text() || message.is_binary() {
                echoed.push(message);
            }
        }
        assert_eq!(echoed[1], Message::text("plain"));
        close(client).await;
        wait_connections(&backend, "frames", 0.0).await;
    });
    assert_eq!(
        all_messages(&backend, "frames"),
        expected(&[
            ("ping", "in", 1),
            ("pong", "in", 2), // the unsolicited one, and the client's answer to "hb"
            ("binary", "in", 1),
            ("text", "in", 2),
            ("close", "in", 1),
            ("ping", "out", 1),
            ("binary", "out", 1),
            ("text", "out", 2),
        ])
    );
}

#[test]
fn the_gauge_returns_to_zero_when_clients_vanish_mid_connection() {
    let backend = run(|backend| async move {
        let mut server = Server::start(WsMetrics::new("abrupt").unwrap(), drain).await;

        // 1. The client drops its TCP connection without a close frame.
        let mut dropped = server.connect().await;
        send_text(&mut dropped, r#"{"event":"ping"}"#).await;
        // 2. The client dies in the middle of a frame: a header announcing 126+ bytes, then EOF.
        let mut half_frame = server.connect().await;
        // 3. The connection is reset (RST, not FIN).
        let reset = server.connect().await;
        reset.get_ref().set_zero_linger().unwrap();
        // 4. The client's task is cancelled while it is connected.
        let addr = server.addr;
        let client_task = tokio::spawn(async move {
            let mut client = common::connect(addr, "/").await;
            client.send(Message::text("hello")).await.unwrap();
            std::future::pending::<()>().await;
        });

        let mut server_tasks = Vec::new();
        for _ in 0..4 {
            server_tasks.push(server.next_task().await);
        }
        wait_connections(&backend, "abrupt", 4.0).await;
        eventually("the cancelled client's message arrived", || {
            messages(&backend, "abrupt", "text", "in") == Some(1)
        })
        .await;

        drop(dropped);
        half_frame.get_mut().write_all(&[0x81, 0xfe, 0x01]).await.unwrap();
        half_frame.get_mut().flush().await.unwrap();
        drop(half_frame);
        drop(reset);
        client_task.abort();
        assert!(client_task.await.unwrap_err().is_cancelled());

        wait_connections(&backend, "abrupt", 0.0).await;
        for task in server_tasks {
            task.await.expect("the server handler ended normally");
        }
    });
    assert_eq!(connections(&backend, "abrupt"), Some(0.0));
    assert_eq!(durations(&backend, "abrupt").len(), 4);
    // No close frame ever arrived.
    assert_eq!(
        all_messages(&backend, "abrupt"),
        expected(&[("ping", "in", 1), ("text", "in", 1)])
    );
}

#[test]
fn the_gauge_returns_to_zero_when_the_server_task_is_cancelled() {
    let backend = run(|backend| async move {
        let mut server = Server::start(
            WsMetrics::new("cancelled").unwrap(),
            |socket: ServerSocket| async move {
                let _socket = socket;
                std::future::pending::<()>().await;
            },
        )
        .await;
        let client = server.connect().await;
        let task = server.next_task().await;
        wait_connections(&backend, "cancelled", 1.0).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        // The task's future, and the socket in it, is dropped by the time `await` returns.
        assert_eq!(connections(&backend, "cancelled"), Some(0.0));
        drop(client);
    });
    assert_eq!(durations(&backend, "cancelled").len(), 1);
}

#[test]
fn the_gauge_returns_to_zero_when_the_handler_panics() {
    let backend = run(|backend| async move {
        let mut server = Server::start(
            WsMetrics::new("panicky").unwrap(),
            |mut socket: ServerSocket| async move {
                let _ = socket.next().await;
                panic!("handler bug (expected by the test)");
            },
        )
        .await;
        let mut client = server.connect().await;
        let task = server.next_task().await;
        wait_connections(&backend, "panicky", 1.0).await;
        send_text(&mut client, r#"{"event":"boom"}"#).await;
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(connections(&backend, "panicky"), Some(0.0));
        // The client sees the connection go away without a close handshake.
        assert!(matches!(client.next().await, Some(Err(_)) | None));
    });
    assert_eq!(messages(&backend, "panicky", "boom", "in"), Some(1));
    assert_eq!(durations(&backend, "panicky").len(), 1);
}

async fn gauge(backend: &Backend, channel: &str) -> Option<f64> {
    tokio::task::yield_now().await;
    connections(backend, channel)
}

#[test]
fn split_halves_keep_the_connection_until_both_are_dropped() {
    run(|backend| async move {
        let b = backend.clone();
        let mut server = Server::start(WsMetrics::new("split").unwrap(), move |socket: ServerSocket| {
            let backend = b.clone();
            async move {
                let (sink, stream) = socket.split();
                assert_eq!(gauge(&backend, "split").await, Some(1.0));
                drop(stream);
                assert_eq!(gauge(&backend, "split").await, Some(1.0), "the sink half keeps it");
                drop(sink);
                assert_eq!(gauge(&backend, "split").await, Some(0.0));
            }
        })
        .await;
        let _client = server.connect().await;
        server.next_task().await.await.expect("handler assertions");
    });
}

#[test]
fn the_end_of_the_stream_closes_the_connection_while_a_sender_holds_the_sink() {
    let backend = run(|backend| async move {
        let b = backend.clone();
        let mut server = Server::start(WsMetrics::new("fanout").unwrap(), move |socket: ServerSocket| {
            let backend = b.clone();
            async move {
                let (mut sink, mut stream) = socket.split();
                // A broadcast-style sender that outlives the connection until its next send.
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(4);
                let sender = tokio::spawn(async move {
                    while let Some(message) = rx.recv().await {
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                });
                tx.send(Message::text(r#"{"event":"presence_state"}"#)).await.unwrap();
                while let Some(Ok(_)) = stream.next().await {}
                assert_eq!(gauge(&backend, "fanout").await, Some(0.0));
                assert!(!sender.is_finished(), "the sender still holds the sink half");
                drop(tx);
                sender.await.unwrap();
            }
        })
        .await;
        let mut client = server.connect().await;
        let task = server.next_task().await;
        let first = client.next().await.unwrap().unwrap();
        assert_eq!(first.to_text().unwrap(), r#"{"event":"presence_state"}"#);
        drop(client);
        task.await.expect("handler assertions");
    });
    assert_eq!(
        all_messages(&backend, "fanout"),
        expected(&[("presence_state", "out", 1)])
    );
    assert_eq!(durations(&backend, "fanout").len(), 1);
}

#[test]
fn channels_are_counted_separately_and_durations_can_be_turned_off() {
    let backend = run(|backend| async move {
        let comments = Server::start(WsMetrics::new("comments").unwrap(), drain).await;
        let presence_metrics = WsMetrics::builder("presence").record_duration(false).build().unwrap();
        let presence = Server::start(presence_metrics, drain).await;

        let c1 = comments.connect().await;
        let c2 = comments.connect().await;
        let mut p1 = presence.connect().await;
        wait_connections(&backend, "comments", 2.0).await;
        wait_connections(&backend, "presence", 1.0).await;
        send_text(&mut p1, r#"{"event":"presence_diff"}"#).await;

        close(c1).await;
        wait_connections(&backend, "comments", 1.0).await;
        assert_eq!(connections(&backend, "presence"), Some(1.0));
        drop(c2);
        close(p1).await;
        wait_connections(&backend, "comments", 0.0).await;
        wait_connections(&backend, "presence", 0.0).await;
    });
    assert_eq!(durations(&backend, "comments").len(), 2);
    assert!(durations(&backend, "presence").is_empty());
    assert_eq!(
        all_messages(&backend, "presence"),
        expected(&[("presence_diff", "in", 1), ("close", "in", 1)])
    );
    assert_eq!(all_messages(&backend, "comments"), expected(&[("close", "in", 1)]));
}

#[test]
fn closing_the_sink_closes_the_connection() {
    let backend = run(|backend| async move {
        let b = backend.clone();
        let mut server = Server::start(WsMetrics::new("closer").unwrap(), move |mut socket: ServerSocket| {
            let backend = b.clone();
            async move {
                socket.send(Message::text("bye")).await.unwrap();
                socket.close().await.unwrap();
                assert!(!socket.is_counted_open());
                assert_eq!(connections(&backend, "closer"), Some(0.0));
                // The socket is still alive: the guard does not count twice on drop.
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(socket);
                assert_eq!(connections(&backend, "closer"), Some(0.0));
            }
        })
        .await;
        let mut client = server.connect().await;
        let task = server.next_task().await;
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("bye"));
        assert!(matches!(client.next().await.unwrap().unwrap(), Message::Close(_)));
        task.await.expect("handler assertions");
    });
    assert_eq!(durations(&backend, "closer").len(), 1);
    assert_eq!(all_messages(&backend, "closer"), expected(&[("text", "out", 1)]));
}
