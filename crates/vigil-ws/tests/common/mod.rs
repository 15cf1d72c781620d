//! Shared helpers for the WebSocket tests: a readable recorder on a current-thread runtime,
//! metric accessors, a real tokio-tungstenite server and client on 127.0.0.1.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use vigil_core::catalogue::{WEBSOCKET_CONNECTION_DURATION, WEBSOCKET_CONNECTIONS, WEBSOCKET_MESSAGES};
use vigil_core::{BackendRecorder, MemoryMetricsBackend};
use vigil_ws::{InstrumentedSocket, WsMetrics};

pub type Backend = Arc<MemoryMetricsBackend>;

/// A tokio-tungstenite server-side socket, instrumented.
pub type ServerSocket = InstrumentedSocket<WebSocketStream<TcpStream>>;

/// A tokio-tungstenite client.
pub type Client = WebSocketStream<TcpStream>;

/// Runs `test` on a current-thread runtime under a local recorder that writes to an
/// in-memory backend, and returns the backend.
///
/// Local recorders are thread-local: server tasks, client and test all run on this one
/// thread, and the runtime (with any task still alive) is dropped while the recorder is
/// still installed, so every guard's decrement is recorded.
pub fn run<F, Fut>(test: F) -> Backend
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    let backend = Arc::new(MemoryMetricsBackend::new());
    let recorder = BackendRecorder::from_arc(backend.clone());
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let test = test(backend.clone());
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), test).await })
            .expect("the test finished within 30 s");
        drop(runtime);
    });
    backend
}

/// `websocket.connections{channel}`.
pub fn connections(backend: &Backend, channel: &str) -> Option<f64> {
    backend.gauge_value(WEBSOCKET_CONNECTIONS.name, &[("channel", channel)])
}

/// `websocket.messages{channel, event, direction}`.
pub fn messages(backend: &Backend, channel: &str, event: &str, direction: &str) -> Option<u64> {
    backend.counter(
        WEBSOCKET_MESSAGES.name,
        &[("channel", channel), ("event", event), ("direction", direction)],
    )
}

/// Every `websocket.messages` series of `channel` as (event, direction, count), sorted.
pub fn all_messages(backend: &Backend, channel: &str) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = backend
        .counters()
        .into_iter()
        .filter(|((name, _), _)| name == WEBSOCKET_MESSAGES.name)
        .filter_map(|((_, tags), n)| {
            let tag = |k: &str| tags.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            assert_eq!(tags.len(), 3, "{tags:?}");
            (tag("channel")? == channel).then(|| (tag("event").unwrap(), tag("direction").unwrap(), n))
        })
        .collect();
    out.sort();
    out
}

/// Turns `[("ping", "in", 3)]` into the shape of [`all_messages`].
pub fn expected(rows: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    let mut out: Vec<_> = rows
        .iter()
        .map(|(e, d, n)| ((*e).to_owned(), (*d).to_owned(), *n))
        .collect();
    out.sort();
    out
}

/// `websocket.connection.duration{channel}` observations.
pub fn durations(backend: &Backend, channel: &str) -> Vec<f64> {
    backend.histogram_values(WEBSOCKET_CONNECTION_DURATION.name, &[("channel", channel)])
}

/// Waits (yielding to the server tasks) until `condition` holds; fails after 5 s.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until the connection gauge of `channel` is `value`.
pub async fn wait_connections(backend: &Backend, channel: &str, value: f64) {
    eventually(
        &format!("websocket.connections{{channel={channel}}} == {value}"),
        || connections(backend, channel) == Some(value),
    )
    .await;
}

/// A tokio-tungstenite server on 127.0.0.1: each accepted connection is wrapped with
/// `metrics` and handed to `handler` in its own task.
pub struct Server {
    pub addr: SocketAddr,
    tasks: mpsc::UnboundedReceiver<JoinHandle<()>>,
    accept: JoinHandle<()>,
}

impl Server {
    pub async fn start<H, Fut>(metrics: WsMetrics, handler: H) -> Server
    where
        H: Fn(ServerSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, tasks) = mpsc::unbounded_channel();
        let handler = Arc::new(handler);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (metrics, handler) = (metrics.clone(), handler.clone());
                let task = tokio::spawn(async move {
                    let ws = tokio_tungstenite::accept_async(tcp).await.expect("server handshake");
                    handler(metrics.wrap(ws)).await;
                });
                let _ = tx.send(task);
            }
        });
        Server { addr, tasks, accept }
    }

    /// The task of the next accepted connection.
    pub async fn next_task(&mut self) -> JoinHandle<()> {
        self.tasks.recv().await.expect("a connection task")
    }

    /// A connected client.
    pub async fn connect(&self) -> Client {
        connect(self.addr, "/").await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A client of `ws://addr/path`.
pub async fn connect(addr: SocketAddr, path: &str) -> Client {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), tcp)
        .await
        .expect("client handshake");
    ws
}
