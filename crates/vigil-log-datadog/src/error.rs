//! The crate's error type.

/// Why a [`crate::DatadogLogBackend`] could not be built.
///
/// Every message names the setting and the offending value, except for the API key, whose
/// value is never shown.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The intake URL given to [`crate::DatadogLogBuilder::url`] is not usable.
    #[error("invalid Datadog logs intake URL {value:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (any user-info part replaced by `<redacted>`).
        value: String,
        /// What is wrong and what is accepted.
        reason: &'static str,
    },
    /// The site given to [`crate::DatadogLogBuilder::site`] is not a host name.
    #[error("invalid Datadog site {value:?}: expected a host name such as datadoghq.com or datadoghq.eu")]
    InvalidSite {
        /// The site as given.
        value: String,
    },
    /// A tag given to [`crate::DatadogLogBuilder::tags`] cannot be sent in `ddtags`.
    #[error("invalid Datadog tag {value:?}: {reason}")]
    InvalidTag {
        /// The tag as given.
        value: String,
        /// What is wrong and what is accepted.
        reason: &'static str,
    },
    /// The API key is empty or cannot be sent as an HTTP header value. The key itself is
    /// never part of the message.
    #[error("invalid DATADOG_API_KEY: {reason}")]
    InvalidApiKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A numeric or duration setting is out of range.
    #[error("invalid Datadog logs setting {name}={value}: expected {expected}")]
    InvalidSetting {
        /// The builder method, such as `queue_capacity`.
        name: &'static str,
        /// The value as given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The sender thread could not be started.
    #[error("cannot start the Datadog logs sender thread: {0}")]
    Spawn(#[source] std::io::Error),
}
