//! WebSocket telemetry for Vigil: how many connections each channel has, how many messages
//! of each event go in and out, and how long connections last.
//!
//! Wrap each accepted WebSocket with [`WsMetrics::wrap`] and use the wrapper as the socket.
//! It works with tokio-tungstenite's `WebSocketStream` (feature `tungstenite`, on by default),
//! axum's `WebSocket` (feature `axum`) and any `Stream + Sink` of messages implementing
//! [`WsMessage`]; for other libraries, [`ConnectionGuard`] and [`WsMetrics::record`] do the
//! same by hand.
//!
//! | metric | kind | tags | recorded |
//! |---|---|---|---|
//! | `websocket.connections` | gauge | channel | +1 on wrap, -1 on close, error, disconnect, drop, cancellation or panic |
//! | `websocket.messages` | counter | channel, event, direction | each message received (`in`) or sent (`out`) |
//! | `websocket.connection.duration` | histogram (ms) | channel | once per connection, when it ends (can be turned off) |
//!
//! The names come from [`vigil_core::catalogue`]; values go to whatever `metrics` recorder is
//! installed (`vigil::init` installs Vigil's), through cached handles: a repeated update takes
//! no lock and allocates nothing. Every label is bounded:
//!
//! - `channel` is a name the application chooses per kind of socket (`"comments"`), checked
//!   when [`WsMetrics`] is built: never put a user id or a per-room topic in it;
//! - `event` is the top-level `"event"` of a JSON text message (Phoenix-style
//!   `{"event": "comment_created", "payload": ..}`), limited to an allow-list or to the first
//!   32 distinct names seen, and to short names of `[A-Za-z0-9_.:-]`; anything else is
//!   `other`. Messages without an event count as their frame type: `text`, `binary`, `ping`,
//!   `pong`, `close`. See [`classify_text`];
//! - `direction` is `in` or `out`.
//!
//! # With axum
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # mod example {
//! use axum::extract::ws::{Message, WebSocketUpgrade};
//! use axum::extract::State;
//! use axum::response::Response;
//! use axum::routing::get;
//! use axum::Router;
//! use futures_util::{SinkExt, StreamExt};
//! use vigil_ws::WsMetrics;
//!
//! async fn comments(ws: WebSocketUpgrade, State(metrics): State<WsMetrics>) -> Response {
//!     ws.on_upgrade(move |socket| async move {
//!         // websocket.connections{channel="comments"} + 1, until the socket is dropped
//!         let mut socket = metrics.wrap(socket);
//!         while let Some(Ok(message)) = socket.next().await {
//!             // counted: {event="post_comment", direction="in"}
//!             if let Message::Text(_) = message {
//!                 // counted: {event="comment_created", direction="out"}
//!                 let reply = Message::text(r#"{"event":"comment_created","payload":{}}"#);
//!                 if socket.send(reply).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         }
//!     })
//! }
//!
//! pub fn app() -> Result<Router, vigil_ws::WsError> {
//!     let metrics = WsMetrics::new("comments")?;
//!     Ok(Router::new().route("/ws/comments", get(comments)).with_state(metrics))
//! }
//! # }
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #     use futures_util::{SinkExt, StreamExt};
//! #     use tokio_tungstenite::tungstenite::Message;
//! #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! #     let addr = listener.local_addr()?;
//! #     tokio::spawn(async move { axum::serve(listener, example::app().unwrap()).await });
//! #     let tcp = tokio::net::TcpStream::connect(addr).await?;
//! #     let (mut client, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws/comments"), tcp).await?;
//! #     client.send(Message::text(r#"{"event":"post_comment","payload":{"body":"hi"}}"#)).await?;
//! #     let reply = client.next().await.unwrap()?;
//! #     assert_eq!(reply.to_text()?, r#"{"event":"comment_created","payload":{}}"#);
//! #     client.close(None).await?;
//! #     Ok(())
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! # With tokio-tungstenite
//!
//! ```
//! # #[cfg(feature = "tungstenite")]
//! # mod example {
//! use futures_util::{SinkExt, StreamExt};
//! use tokio::net::TcpListener;
//! use tokio_tungstenite::tungstenite::Message;
//! use vigil_ws::WsMetrics;
//!
//! pub async fn serve(listener: TcpListener, metrics: WsMetrics) -> std::io::Result<()> {
//!     loop {
//!         let (tcp, _) = listener.accept().await?;
//!         let metrics = metrics.clone();
//!         tokio::spawn(async move {
//!             let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
//!             // Split halves share the guard: the connection counts until the stream ends
//!             // or both halves are dropped.
//!             let (mut tx, mut rx) = metrics.wrap(ws).split();
//!             while let Some(Ok(message)) = rx.next().await {
//!                 if message.is_text() && tx.send(message).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! }
//! # }
//! # #[cfg(feature = "tungstenite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #     use futures_util::{SinkExt, StreamExt};
//! #     use tokio_tungstenite::tungstenite::Message;
//! #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! #     let addr = listener.local_addr()?;
//! #     tokio::spawn(example::serve(listener, vigil_ws::WsMetrics::new("echo")?));
//! #     let tcp = tokio::net::TcpStream::connect(addr).await?;
//! #     let (mut client, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp).await?;
//! #     client.send(Message::text(r#"{"event":"ping"}"#)).await?;
//! #     assert_eq!(client.next().await.unwrap()?.to_text()?, r#"{"event":"ping"}"#);
//! #     client.close(None).await?;
//! #     Ok(())
//! # }
//! # #[cfg(not(feature = "tungstenite"))]
//! # fn main() {}
//! ```
//!
//! # Other WebSocket libraries
//!
//! ```
//! use vigil_ws::{Direction, FrameKind, WsMetrics};
//!
//! let metrics = WsMetrics::new("presence")?;
//! let guard = metrics.connection_guard(); // or ConnectionGuard::new("presence")?
//! metrics.record_text(Direction::In, r#"{"event":"phx_join","topic":"room:7"}"#);
//! metrics.record_frame(Direction::Out, FrameKind::Binary);
//! drop(guard); // also on error, panic or cancellation: the guard lives in the task
//! # Ok::<(), vigil_ws::WsError>(())
//! ```
//!
//! # Features
//!
//! | feature | adds | default |
//! |---|---|---|
//! | `tungstenite` | [`WsMessage`] for `tokio_tungstenite::tungstenite::Message` (tokio-tungstenite 0.30) | yes |
//! | `axum` | [`WsMessage`] for `axum::extract::ws::Message` (axum 0.8) | no |

mod classify;
mod error;
mod events;
mod guard;
mod message;
mod socket;
mod ws_metrics;

pub use classify::{
    ClassifyOptions, DEFAULT_MAX_EVENT_LEN, DEFAULT_MAX_PARSE_BYTES, EventLabel, MAX_EVENT_LEN_LIMIT, OTHER, classify,
    classify_text,
};
pub use error::WsError;
pub use guard::ConnectionGuard;
pub use message::{Direction, FrameKind, WsMessage};
pub use socket::InstrumentedSocket;
pub use ws_metrics::{DEFAULT_MAX_LEARNED_EVENTS, MAX_CHANNEL_LEN, MAX_EVENT_NAMES_LIMIT, WsMetrics, WsMetricsBuilder};
