//! Vigil: observability for Rust services — structured logs, metrics and telemetry with
//! pluggable backends, configured once.
//!
//! ```no_run
//! use vigil::{Logger, Metrics, fields};
//!
//! fn main() {
//!     // Console logs and a Prometheus endpoint on :9568, configured from the environment
//!     // (LOG_LEVEL, PROMETHEUS_PORT, ...) and vigil.toml.
//!     let guard = vigil::init().unwrap_or_else(|e| {
//!         eprintln!("error: {e}");
//!         std::process::exit(2)
//!     });
//!
//!     Logger::info("User logged in", fields!(user_id = 42));
//!     Metrics::increment("comments.created", 1, &[("region", "us-east")]);
//!     tracing::info!(video_id = 7, "tracing macros reach the same backends");
//!     metrics::counter!("videos.uploaded").increment(1);
//!
//!     guard.shutdown(std::time::Duration::from_secs(5));
//! }
//! ```
//!
//! # Features
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `console` | the console logger backend (`vigil-log-console`) | yes |
//! | `prometheus` | the Prometheus metrics backend and `/metrics` (`vigil-metrics-prometheus`) | yes |
//! | `http` | HTTP request telemetry: a tower layer (`vigil-http`), see [`Guard::http_layer`] | no |
//! | `ws` | WebSocket telemetry for axum and tokio-tungstenite sockets (`vigil-ws`) | no |
//! | `vm` | process, system and Tokio runtime metrics, sampled in the background by [`init`] (`vigil-vm`) | no |
//! | `db` | database telemetry: sqlx query metrics and slow-query warnings installed by `init`, pool metrics (`vigil-db`) | no |
//! | `datadog`, `dogstatsd` | reserved for the crates that are not in this release yet | no |
//! | `full` | everything | no |
//!
//! Custom backends implement [`LogBackend`] or [`MetricsBackend`] and are added with
//! [`Vigil::builder`].

mod error;
mod facade_logger;
mod facade_metrics;
mod install;

pub use error::Error;
pub use facade_logger::Logger;
pub use facade_metrics::Metrics;
pub use install::{DEFAULT_SHUTDOWN_TIMEOUT, Guard, Vigil, VigilBuilder, init};

pub use vigil_core::{
    self as core, BackendRecorder, CapturedRecord, Config, ConfigError, Field, Level, LogBackend, LogLayer,
    MemoryLogBackend, MemoryMetricsBackend, MetricsBackend, NoopLogBackend, NoopMetricsBackend, OwnedValue,
    QueuedWriter, Record, Resource, Secret, Value, catalogue, config,
};

/// The console logger backend.
#[cfg(feature = "console")]
pub use vigil_log_console as console;

/// The Prometheus metrics backend.
#[cfg(feature = "prometheus")]
pub use vigil_metrics_prometheus as prometheus;

/// The Datadog logs backend ([`datadog_logs::DatadogLogBackend`]), installed by [`init`] when
/// `ENABLE_DATADOG` is on.
#[cfg(feature = "datadog")]
pub use vigil_log_datadog as datadog_logs;

/// Datadog APM traces ([`datadog_traces::DatadogTraceLayer`]), installed by [`init`] when
/// `ENABLE_DATADOG` is on and `DD_TRACE_ENABLED` is not false.
#[cfg(feature = "datadog")]
pub use vigil_trace_datadog as datadog_traces;

/// The DogStatsD metrics backend ([`dogstatsd::DogStatsdBackend`]), installed by [`init`] with
/// `metrics_backends = ["dogstatsd"]`.
#[cfg(feature = "dogstatsd")]
pub use vigil_metrics_dogstatsd as dogstatsd;

/// HTTP telemetry: [`http::HttpMetricsLayer`].
#[cfg(feature = "http")]
pub use vigil_http as http;

/// WebSocket telemetry: [`ws::WsMetrics`].
#[cfg(feature = "ws")]
pub use vigil_ws as ws;

/// VM telemetry: [`vm::VmSampler`], which [`init`] starts when `vm.enabled` (the default).
#[cfg(feature = "vm")]
pub use vigil_vm as vm;

/// Database telemetry: [`db::SqlxQueryLayer`] (installed by `init`), [`db::PoolMetrics`],
/// [`db::QueryTimer`].
#[cfg(feature = "db")]
pub use vigil_db as db;

/// Re-exported so custom backends and tests need no extra dependency.
pub use metrics;
/// Re-exported so applications log with the same crate version Vigil reads.
pub use tracing;

/// The README's Rust examples, compiled as doctests so they stay true (they use every feature).
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
