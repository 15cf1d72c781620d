//! The crate's error type.

/// What can go wrong setting up database telemetry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `PoolMetrics::spawn` was called outside a tokio runtime.
    #[error("PoolMetrics::spawn needs a tokio runtime: call it from inside one (for example in your async main)")]
    NoRuntime,
    /// `PoolMetrics::spawn` was given a zero interval.
    #[error("the pool sampling interval must be greater than zero")]
    ZeroInterval,
}
