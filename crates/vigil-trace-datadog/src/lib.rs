//! Datadog APM traces from `tracing` spans.
//!
//! [`DatadogTraceLayer`] is a `tracing_subscriber` layer: every span becomes a Datadog span,
//! vigil-http's request span an `http.request` (type `web`, resource `GET /api/videos/{id}`),
//! every sqlx query a `sqlx.query` child (type `sql`, resource the normalised statement), and
//! each trace is sent to the Datadog agent's `/v0.4/traces` in msgpack when its local root
//! span closes. Every span's [`TraceIds`](vigil_core::trace::TraceIds) sit in its extensions,
//! so [`vigil_core::LogLayer`] puts them on every log record inside it (log/trace
//! correlation), and a request that came with trace headers continues the caller's trace
//! (see [`vigil_core::trace::with_remote_parent`]).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tracing_subscriber::prelude::*;
//! use vigil_core::Resource;
//! use vigil_trace_datadog::DatadogTraceLayer;
//!
//! let tracer = DatadogTraceLayer::builder(Resource::new("shop", "production").with_version("2.1.0"))
//!     .agent("localhost", 8126) // DD_AGENT_HOST, DD_TRACE_AGENT_PORT
//!     .db_system("postgresql")
//!     .build()?;
//! let sender = tracer.sender().clone();
//! let subscriber = tracing_subscriber::registry().with(tracer.filtered());
//! tracing::subscriber::with_default(subscriber, || {
//!     let request = tracing::info_span!(target: "vigil::http", "request",
//!         request_id = "r-1", method = "GET", route = "/api/videos/{id}", status = tracing::field::Empty);
//!     let _entered = request.enter();
//!     // ... handle the request; sqlx queries in here become child spans ...
//!     request.record("status", 200u16);
//! });
//! // On shutdown: send what is queued, within a deadline.
//! let delivered = sender.shutdown(Instant::now() + Duration::from_millis(100));
//! # let _ = delivered;
//! # Ok::<(), vigil_trace_datadog::Error>(())
//! ```
//!
//! # Delivery
//!
//! Closing a span never blocks and does no I/O: finished traces go through a bounded
//! lock-free queue to a [`TraceSender`] thread, which sends every second (or when the queue
//! is half full), retries 408, 429, 5xx and I/O errors with capped exponential backoff and
//! jitter, and counts whatever it must drop (`vigil.trace.dropped{reason}`, see
//! [`catalogue`]). [`TraceSender::flush_until`] and [`TraceSender::shutdown`] send what is
//! queued within a deadline.
//!
//! # Filtering
//!
//! sqlx reports queries at DEBUG: add the layer as [`DatadogTraceLayer::filtered`] (its own
//! per-layer filter) and keep global filters from hiding `sqlx::query` at DEBUG. The
//! [`DatadogTraceLayer`] docs say what exactly it needs.
//!
//! # Why not datadog-apm-sync's runtime
//!
//! The design names `datadog-apm-sync`. This crate keeps its span wire model (the `RawSpan`
//! fields: `service`, `name`, `resource`, `trace_id`, `span_id`, `parent_id`, `start`,
//! `duration`, `error`, `meta`, `metrics`, `type`), in the types the v0.4 endpoint wants, but not its runtime, which
//! cannot serve here:
//!
//! - it posts JSON to `/v0.3/traces`, an endpoint the agent deprecated (Datadog's test agent
//!   answers 404); this crate sends msgpack to `/v0.4/traces` with the headers the agent
//!   checks (`X-Datadog-Trace-Count` counts traces, not spans);
//! - it is a whole `Subscriber` and keys the current trace by OS thread, which breaks as soon
//!   as tokio moves a task to another worker; here the span registry gives the parent, so it
//!   is right across tasks and threads, and the layer composes with the others;
//! - its span ids are timestamps (collisions); here they are random 64-bit ids, and trace ids
//!   128-bit in Datadog's format;
//! - its channels are unbounded, so a slow agent grows memory without limit; here the queue
//!   is bounded and every drop counted;
//! - it maps error logs to INFO and sends a trace only on an event carrying
//!   `send_trace=<id>`; here an ERROR event marks its span as an error, and a trace is sent
//!   when its local root span closes.

mod builder;
pub mod catalogue;
mod clock;
mod error;
mod fields;
mod ids;
mod layer;
mod sender;
mod wire;

pub use builder::{
    DEFAULT_AGENT_HOST, DEFAULT_AGENT_PORT, DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_TRACE_SPANS, DEFAULT_QUEUE_CAPACITY,
    DatadogTraceLayerBuilder,
};
pub use error::Error;
pub use layer::{AUTO_KEEP, DatadogTraceLayer, PARTIAL_FLUSH_SPANS, SQLX_QUERY_TARGET};
pub use sender::{DROP_FLUSH_TIMEOUT, TraceSender, TraceStats};
pub use wire::{HTTP_SPAN_NAME, HTTP_SPAN_TARGET};
