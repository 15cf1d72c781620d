//! Vigil's Prometheus metrics backend, the seed's default.
//!
//! [`PrometheusBackend`] is a [`metrics::Recorder`] with its own lock-free storage (an update
//! through a handle is one or two atomic operations) and a fast text render, with Prometheus
//! naming (so `promtool check metrics` accepts the output), real histograms, base units,
//! global labels and a per-metric cardinality limit. [`MetricsServer`] serves it
//! on `GET /metrics` (default port 9568), next to a live dashboard on `GET /dashboard` for a
//! developer with no Grafana at hand: request rate, latency percentiles, error ratio,
//! WebSocket connections, database latency and pool use, and memory, over the last 10
//! minutes, from a bounded in-process [`DashboardHistory`].
//!
//! ```no_run
//! use vigil_metrics_prometheus::{MetricsServer, PrometheusBackend};
//!
//! let backend = PrometheusBackend::builder()
//!     .global_label("service", "api")
//!     .global_label("environment", "production")
//!     .build()?;
//! metrics::set_global_recorder(backend.clone()).expect("no recorder installed yet");
//! let server = MetricsServer::start(backend, "0.0.0.0", 9568)?;
//! metrics::counter!("comments.created").increment(1);
//! # Ok::<(), vigil_metrics_prometheus::PrometheusError>(())
//! ```

mod auth;
mod backend;
mod cells;
mod dashboard;
mod registry;
mod server;
mod text;

use std::net::SocketAddr;

pub use auth::MetricsAuth;
pub use backend::{
    DEFAULT_MAX_METRIC_NAMES, DEFAULT_MAX_SERIES_PER_METRIC, OVERFLOW_LABEL_VALUE, PrometheusBackend,
    PrometheusBackendBuilder, SIZE_BUCKETS_BYTES, TOO_MANY_METRICS, duration_buckets_seconds,
};
pub use dashboard::{
    DEFAULT_DASHBOARD_HISTORY, DEFAULT_DASHBOARD_INTERVAL, DashboardHistory, DashboardOptions, MAX_DASHBOARD_HISTORY,
};
pub use server::{CONTENT_TYPE_TEXT, MetricsServer, ServerOptions, dashboard_csp};

/// Errors of the Prometheus backend.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The endpoint's address could not be bound: the port is taken, or the address is not
    /// one of this host's.
    #[error("cannot serve /metrics on {addr} (PROMETHEUS_HOST/PROMETHEUS_PORT): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The endpoint's host name does not resolve.
    #[error("cannot resolve PROMETHEUS_HOST {host:?}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The server thread or its runtime could not start.
    #[error("cannot start the /metrics server: {0}")]
    Runtime(std::io::Error),
    /// Histogram buckets must be finite, non-empty and strictly increasing.
    #[error("invalid histogram buckets {0:?}: expected finite, strictly increasing values")]
    Buckets(Vec<f64>),
}
