//! VM telemetry for Vigil: process, system and Tokio runtime metrics, sampled in the
//! background and recorded through the `metrics` facade, so every metrics backend (Prometheus,
//! a custom one) receives them.
//!
//! [`VmSampler`] runs on a dedicated OS thread: it samples once at start, then every interval
//! (10 s by default, `VM_SAMPLE_INTERVAL`), and stops at once when stopped or dropped —
//! `vigil::init()` starts one when the umbrella's `vm` feature is on and its guard stops it.
//! Having its own thread, it works with or without a Tokio runtime and never takes a worker
//! from the application's tasks.
//!
//! What a sample reads, and nothing more:
//! - this process (through sysinfo, refreshing only this process, never the host's other
//!   processes): CPU time, resident and virtual memory, start time and uptime; on Linux also
//!   threads (`/proc/self/status`) and open file descriptors (`/proc/self/fd`);
//! - the system: memory used and total, global CPU usage, and the load average (Unix);
//! - the Tokio runtime it was started in, if any, through Tokio's stable metrics API: workers,
//!   alive tasks, global queue depth, and (on targets with 64-bit atomics) the workers' busy
//!   time and park count, summed over workers.
//!
//! The metrics are the catalogue's `process.*`, `system.*` and `tokio.*` entries
//! ([`vigil_core::catalogue`]); the README lists them with units, tags and Prometheus names.
//! CPU usage is a rate between two readings, so the first sample has none (see
//! [`VmCollector`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vigil_core::{BackendRecorder, MemoryMetricsBackend};
//! use vigil_vm::VmSampler;
//!
//! // Normally the sampler publishes to the global recorder (`vigil::init` sets it up);
//! // here it publishes to an in-memory backend instead.
//! let memory = Arc::new(MemoryMetricsBackend::new());
//! let sampler = VmSampler::builder()
//!     .interval(Duration::from_secs(10))
//!     .recorder(Arc::new(BackendRecorder::from_arc(memory.clone())))
//!     .start()?;
//! while sampler.samples() == 0 {
//!     std::thread::sleep(Duration::from_millis(1));
//! }
//! sampler.stop(); // returns at once, without waiting for the next tick
//! assert!(memory.gauge_value("process.memory.resident", &[]).unwrap() > 0.0);
//! # Ok::<(), vigil_vm::VmError>(())
//! ```
//!
//! Cost: one sample (refresh and publish) is measured by `cargo bench -p vigil-vm --bench
//! sample`; see the README's Performance section for the figure and its share of a core.

mod error;
mod sample;
mod sampler;

pub use error::VmError;
pub use sample::{LoadAverage, ProcessSample, SystemSample, TokioSample, VmCollector, VmSample};
pub use sampler::{DEFAULT_INTERVAL, VmSampler, VmSamplerBuilder};
