//! The crate's error type.

/// What can go wrong building a [`DatadogTraceLayer`](crate::DatadogTraceLayer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The agent host is empty, too long, or not a host name or IP address.
    #[error("Datadog agent host {host:?}: expected a host name or an IP address")]
    InvalidAgentHost {
        /// The host as given.
        host: String,
    },
    /// The agent port is 0.
    #[error("Datadog agent port 0: expected a port number 1-65535")]
    InvalidAgentPort,
    /// A setting is out of its range.
    #[error("trace setting {setting}: {expected}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is accepted.
        expected: &'static str,
    },
    /// The sender thread could not be started.
    #[error("could not start the trace sender thread: {0}")]
    Spawn(#[source] std::io::Error),
}
