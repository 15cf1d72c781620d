//! `ConnectionGuard` and `WsMetrics::record*` on their own, for other WebSocket libraries.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{all_messages, connections, durations, expected, run};
use vigil_ws::{ConnectionGuard, Direction, FrameKind, WsError, WsMetrics};

#[test]
fn a_guard_counts_one_connection_until_dropped() {
    let backend = run(|backend| async move {
        let first = ConnectionGuard::new("custom").unwrap();
        assert_eq!(connections(&backend, "custom"), Some(1.0));
        let second = ConnectionGuard::new("custom").unwrap().without_duration();
        assert_eq!(connections(&backend, "custom"), Some(2.0));
        assert_eq!(first.channel(), "custom");
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        drop(first);
        assert_eq!(connections(&backend, "custom"), Some(1.0));
        drop(second);
        assert_eq!(connections(&backend, "custom"), Some(0.0));
    });
    let durations = durations(&backend, "custom");
    assert_eq!(durations.len(), 1, "the second guard records no duration");
    assert!(durations[0] >= 15.0, "{durations:?} is in milliseconds");
}

#[test]
fn a_guard_is_released_by_a_panic() {
    let backend = run(|backend| async move {
        let guard = ConnectionGuard::new("custom").unwrap();
        let result = catch_unwind(AssertUnwindSafe(move || {
            let _guard = guard;
            panic!("handler bug (expected by the test)");
        }));
        assert!(result.is_err());
        assert_eq!(connections(&backend, "custom"), Some(0.0));
    });
    assert_eq!(durations(&backend, "custom").len(), 1);
}

#[test]
fn an_invalid_channel_is_an_error_and_counts_nothing() {
    let backend = run(|_| async move {
        let err = ConnectionGuard::new("user:42 comments").unwrap_err();
        assert!(matches!(err, WsError::InvalidChannel { .. }));
        assert_eq!(
            err.to_string(),
            "invalid WebSocket channel name \"user:42 comments\": only A-Z, a-z, 0-9, '_', '.', ':' and '-' are allowed"
        );
        let err = ConnectionGuard::new("x\ny").unwrap_err().to_string();
        assert!(err.contains(r#""x\ny""#), "the name is escaped: {err}");
    });
    assert!(backend.counters().is_empty());
    assert_eq!(connections(&backend, "user:42 comments"), None);
}

#[test]
fn record_counts_messages_by_hand() {
    let backend = run(|backend| async move {
        let metrics = WsMetrics::new("manual").unwrap();
        let guard = metrics.connection_guard();
        assert_eq!(connections(&backend, "manual"), Some(1.0));
        metrics.record_text(Direction::In, r#"{"event":"phx_join","topic":"room:1","payload":{}}"#);
        metrics.record_text(Direction::In, r#"{"event":"phx_join"}"#);
        metrics.record_text(Direction::Out, r#"{"event":"phx_reply"}"#);
        metrics.record_frame(Direction::Out, FrameKind::Binary);
        metrics.record_frame(Direction::In, FrameKind::Text);
        #[cfg(feature = "tungstenite")]
        {
            use tokio_tungstenite::tungstenite::Message;
            metrics.record(Direction::In, &Message::Ping(Vec::new().into()));
            metrics.record(Direction::Out, &Message::text(r#"{"event":"phx_reply"}"#));
        }
        drop(guard);
    });
    let mut rows = vec![
        ("phx_join", "in", 2),
        ("phx_reply", "out", 1),
        ("binary", "out", 1),
        ("text", "in", 1),
    ];
    if cfg!(feature = "tungstenite") {
        rows = vec![
            ("phx_join", "in", 2),
            ("phx_reply", "out", 2),
            ("binary", "out", 1),
            ("text", "in", 1),
            ("ping", "in", 1),
        ];
    }
    assert_eq!(all_messages(&backend, "manual"), expected(&rows));
    assert_eq!(connections(&backend, "manual"), Some(0.0));
    assert_eq!(durations(&backend, "manual").len(), 1);
}

#[test]
fn the_catalogue_has_the_websocket_metrics() {
    use vigil_core::catalogue::{self, MetricKind};
    let duration = catalogue::find("websocket.connection.duration").expect("in the catalogue");
    assert_eq!(duration.kind, MetricKind::Histogram);
    assert_eq!(duration.unit, Some(metrics::Unit::Milliseconds));
    assert_eq!(duration.tags, ["channel"]);
    assert_eq!(catalogue::WEBSOCKET_CONNECTIONS.tags, ["channel"]);
    assert_eq!(catalogue::WEBSOCKET_MESSAGES.tags, ["channel", "event", "direction"]);
}

#[test]
fn the_types_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<WsMetrics>();
    send_sync::<ConnectionGuard>();
    send_sync::<WsError>();
    #[cfg(feature = "tungstenite")]
    {
        fn fused<T: futures_util::stream::FusedStream>() {}
        type Socket = vigil_ws::InstrumentedSocket<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>;
        send_sync::<Socket>();
        fused::<Socket>();
    }
}
