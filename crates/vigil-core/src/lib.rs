//! The core of Vigil: the types and traits every backend and collector shares, and no backend
//! code.
//!
//! - Logs: every `tracing` event (and every call of the seed-style facade) becomes one
//!   [`Record`], built once by [`LogLayer`] and handed to each [`LogBackend`].
//! - Metrics: the `metrics` crate is the facade; a seed-shaped [`MetricsBackend`] becomes a
//!   `metrics::Recorder` through [`BackendRecorder`].
//! - [`Config`]: typed configuration from defaults, a TOML file and environment variables.
//! - [`catalogue`]: every metric Vigil records, defined once.
//! - Test doubles: [`NoopLogBackend`], [`MemoryLogBackend`], [`NoopMetricsBackend`],
//!   [`MemoryMetricsBackend`].
//!
//! ```
//! use std::sync::Arc;
//! use tracing_subscriber::prelude::*;
//! use vigil_core::{Level, LogLayer, MemoryLogBackend, Resource};
//!
//! let logs = Arc::new(MemoryLogBackend::new());
//! let subscriber = tracing_subscriber::registry()
//!     .with(LogLayer::new(Resource::new("api", "test")).with_backend(logs.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::warn!(user_id = 7, "quota almost used");
//! });
//! assert_eq!(logs.records()[0].level, Level::Warning);
//! ```

pub mod catalogue;
pub mod config;
pub mod handles;
mod layer;
mod level;
mod log_backend;
mod metrics_backend;
mod record;
mod resource;
pub mod trace;
mod writer;

pub use config::{Config, ConfigError, Secret};
pub use layer::{FACADE_TARGET, LogLayer, emit};
pub use level::{Level, ParseLevelError};
pub use log_backend::{CapturedRecord, LogBackend, MemoryLogBackend, NoopLogBackend};
pub use metrics_backend::{BackendRecorder, MemoryMetricsBackend, MetricsBackend, NoopMetricsBackend, SeriesKey};
pub use record::{Field, NumberLike, OwnedValue, Record, SpanFields, Value};
pub use resource::Resource;
pub use writer::{QueuedWriter, WriterStats};
