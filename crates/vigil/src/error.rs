//! The umbrella crate's error.

/// Why [`crate::init`] or [`crate::VigilBuilder::install`] failed. Every message is one line
/// naming what to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is wrong or missing.
    #[error(transparent)]
    Config(#[from] vigil_core::ConfigError),
    /// The Prometheus backend could not start (for example: the port is taken).
    #[cfg(feature = "prometheus")]
    #[error(transparent)]
    Prometheus(#[from] vigil_metrics_prometheus::PrometheusError),
    /// The Datadog logs backend could not start (for example: a malformed `DATADOG_LOGS_URL`).
    #[cfg(feature = "datadog")]
    #[error(transparent)]
    DatadogLogs(#[from] vigil_log_datadog::Error),
    /// The Datadog trace exporter could not start.
    #[cfg(feature = "datadog")]
    #[error(transparent)]
    DatadogTraces(#[from] vigil_trace_datadog::Error),
    /// The DogStatsD backend could not start (for example: an agent address that does not resolve).
    #[cfg(feature = "dogstatsd")]
    #[error(transparent)]
    Dogstatsd(#[from] vigil_metrics_dogstatsd::DogStatsdError),
    /// The VM sampler could not start.
    #[cfg(feature = "vm")]
    #[error(transparent)]
    Vm(#[from] vigil_vm::VmError),
    /// A configured backend was compiled out.
    #[error("the {backend} backend is configured but vigil was built without its `{feature}` feature")]
    FeatureDisabled {
        /// The backend's name.
        backend: &'static str,
        /// The Cargo feature to enable.
        feature: &'static str,
    },
    /// Another `tracing` subscriber is already the global default.
    #[error("a global tracing subscriber is already installed; call vigil::init once, before any other subscriber")]
    SubscriberAlreadySet,
    /// Another `metrics` recorder is already installed.
    #[error("a global metrics recorder is already installed; call vigil::init once, before any other recorder")]
    RecorderAlreadySet,
    /// A background thread could not be started.
    #[error("cannot start a vigil background thread: {0}")]
    Thread(#[from] std::io::Error),
}
