//! The crate's error type.

/// What can go wrong when configuring WebSocket telemetry.
///
/// Every variant is a configuration mistake, reported when [`WsMetrics`](crate::WsMetrics) or a
/// [`ConnectionGuard`](crate::ConnectionGuard) is built; nothing on the message path fails.
/// Names are shown with `{:?}` so that a name containing a newline or a quote cannot forge a
/// log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The channel name is empty, too long or has a character outside `[A-Za-z0-9_.:-]`.
    #[error("invalid WebSocket channel name {channel:?}: {reason}")]
    InvalidChannel {
        /// The rejected name.
        channel: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An allow-listed event name is empty, too long or has a character outside
    /// `[A-Za-z0-9_.:-]`.
    #[error("invalid WebSocket event name {name:?} in the allow-list: {reason}")]
    InvalidEventName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A numeric option is out of range.
    #[error("WebSocket metrics option {option} = {value}: expected {accepted}")]
    InvalidOption {
        /// The option's name, as the builder method is called.
        option: &'static str,
        /// The rejected value.
        value: usize,
        /// What is accepted.
        accepted: &'static str,
    },
}
