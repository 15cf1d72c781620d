//! HTTP telemetry for tower stacks: axum 0.8, plain hyper 1 (through hyper-util's tower
//! adapter), tonic, or any `tower::Service<http::Request<_>>`.
//!
//! Add [`HttpMetricsLayer`] once and every request is measured — count, duration, response
//! size, in-flight — with bounded `route`, `method` and `status` labels, gets a request id,
//! and runs inside a `tracing` span that puts `request_id`, `method` and `route` on every log
//! line written while handling it.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use vigil_http::HttpMetricsLayer;
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .route("/api/videos/{id}/comments", get(|| async { "[]" }))
//!     .layer(HttpMetricsLayer::new().access_log(true));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Metrics (names from `vigil_core::catalogue`):
//!
//! | metric | kind | tags |
//! |---|---|---|
//! | `http.request.count` | counter | route, method, status |
//! | `http.request.duration` | histogram (ms) | route, method, status |
//! | `http.response.size` | histogram (bytes) | route, method, status |
//! | `http.request.in_flight` | gauge | |
//!
//! Distributed tracing: when a tracer is installed (such as `vigil-trace-datadog`), the request
//! span continues the caller's trace from `traceparent` or Datadog's `x-datadog-*` headers, and
//! records the response `status` (and `error` for failed requests) on the span;
//! [`propagation::inject`] passes the current trace on to the services you call.

mod labels;
pub mod propagation;
mod request_id;
mod service;

pub use labels::{
    OTHER_METHOD, RouteFn, RouteInput, STATUS_CANCELLED, STATUS_ERROR, STATUS_PANIC, UNMATCHED_ROUTE, method_label,
};
pub use request_id::{MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER, RequestId};
pub use service::{HttpMetrics, HttpMetricsLayer, MeteredBody, ResponseFuture};
