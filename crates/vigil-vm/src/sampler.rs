//! The background sampler: a dedicated thread that samples and publishes at an interval.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics::Recorder;
use tokio::runtime::Handle;
use vigil_core::config::VmConfig;

use crate::{VmCollector, VmError};

/// The default sample interval (the `vm.interval` default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The accepted intervals.
const INTERVALS: std::ops::RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_hours(1);

/// Samples process, system and Tokio runtime metrics on a dedicated OS thread: once at start,
/// then every interval, until [`stop`](Self::stop) is called or the sampler is dropped (both
/// wake the thread at once and wait for it to finish).
///
/// A thread of its own, rather than a Tokio task, so the sampler works with or without a
/// runtime and never competes with the application's tasks for a worker. It reads the Tokio
/// runtime it was started in (if any; see [`VmSamplerBuilder::runtime`]) through its handle.
///
/// ```
/// use std::time::Duration;
///
/// let sampler = vigil_vm::VmSampler::builder().interval(Duration::from_secs(10)).start().unwrap();
/// // ... the application runs; the process.*, system.* and tokio.* metrics are kept current ...
/// sampler.stop();
/// ```
#[must_use = "dropping the sampler stops it"]
pub struct VmSampler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for VmSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmSampler")
            .field("samples", &self.samples())
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

/// State shared with the sampler thread.
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    stop: bool,
    samples: u64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl VmSampler {
    /// A builder: interval 10 s, the current Tokio runtime (if any), the global recorder.
    pub fn builder() -> VmSamplerBuilder {
        VmSamplerBuilder::default()
    }

    /// Starts a sampler with `config`'s interval (`enabled` is the caller's business), reading
    /// the Tokio runtime this is called in, if any, and publishing to the global recorder.
    ///
    /// # Errors
    ///
    /// As [`VmSamplerBuilder::start`].
    pub fn start(config: &VmConfig) -> Result<VmSampler, VmError> {
        Self::builder().interval(config.interval.as_duration()).start()
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        self.shared.lock().samples
    }

    /// Stops the thread and waits for it; a sample in progress finishes first.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for VmSampler {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Which Tokio runtime the sampler reads.
#[derive(Default)]
enum RuntimeChoice {
    /// The one `start` is called in, if any.
    #[default]
    Current,
    /// The one given, or none.
    Given(Option<Handle>),
}

/// Configures a [`VmSampler`].
#[derive(Default)]
pub struct VmSamplerBuilder {
    interval: Option<Duration>,
    runtime: RuntimeChoice,
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
}

impl std::fmt::Debug for VmSamplerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmSamplerBuilder")
            .field("interval", &self.interval)
            .field("runtime_given", &matches!(self.runtime, RuntimeChoice::Given(_)))
            .field("recorder", &self.recorder.is_some())
            .finish()
    }
}

impl VmSamplerBuilder {
    /// The time between samples, 1 ms to 1 hour; default 10 s.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// The Tokio runtime to read, or `None` for no Tokio metrics. Default: the runtime
    /// [`start`](Self::start) is called in, if any.
    #[must_use]
    pub fn runtime(mut self, runtime: Option<Handle>) -> Self {
        self.runtime = RuntimeChoice::Given(runtime);
        self
    }

    /// Publishes to `recorder` instead of the global `metrics` recorder (for tests, or to
    /// keep VM metrics apart).
    #[must_use]
    pub fn recorder(mut self, recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Starts the sampler thread; the first sample is taken at once.
    ///
    /// # Errors
    ///
    /// [`VmError::Interval`] for an interval outside 1 ms to 1 hour,
    /// [`VmError::UnsupportedPlatform`] where sysinfo cannot tell the process's id, and
    /// [`VmError::Spawn`] when the thread cannot be started.
    pub fn start(self) -> Result<VmSampler, VmError> {
        let interval = self.interval.unwrap_or(DEFAULT_INTERVAL);
        if !INTERVALS.contains(&interval) {
            return Err(VmError::Interval(interval));
        }
        let runtime = match self.runtime {
            RuntimeChoice::Current => Handle::try_current().ok(),
            RuntimeChoice::Given(runtime) => runtime,
        };
        let collector = VmCollector::with_runtime(runtime)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let recorder = self.recorder;
        let thread = std::thread::Builder::new()
            .name("vigil-vm".to_owned())
            .spawn(move || match recorder {
                Some(r) => metrics::with_local_recorder(&*r, || run(collector, &thread_shared, interval)),
                None => run(collector, &thread_shared, interval),
            })
            .map_err(VmError::Spawn)?;
        Ok(VmSampler {
            shared,
            thread: Some(thread),
        })
    }
}

/// The sampler loop: sample, publish, wait for the next tick or the stop signal.
fn run(mut collector: VmCollector, shared: &Shared, interval: Duration) {
    let mut next = Instant::now();
    loop {
        collector.sample().publish();
        let mut state = shared.lock();
        state.samples += 1;
        // Fixed-rate ticks; after a stall (a suspended machine), start again from now.
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now + interval;
        }
        while !state.stop {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = shared
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.stop {
            return;
        }
    }
}
