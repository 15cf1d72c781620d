//! The errors of this crate.

/// What can go wrong starting the VM sampler.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The interval is outside 1 ms to 1 hour.
    #[error("VM sample interval {0:?}: expected 1 ms to 1 hour")]
    Interval(std::time::Duration),
    /// The platform does not tell a process its own id (sysinfo does not support it).
    #[error("cannot read this process's id on this platform: {0}")]
    UnsupportedPlatform(&'static str),
    /// The operating system refused to start the sampler thread.
    #[error("starting the VM sampler thread: {0}")]
    Spawn(#[source] std::io::Error),
}
