//! Reading one sample ([`VmCollector::sample`]) and publishing it ([`VmSample::publish`]).

use std::time::{Duration, Instant};

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::runtime::Handle;
use vigil_core::catalogue;
use vigil_core::handles::{gauge_set, increment};

use crate::VmError;

/// The default shortest time between two CPU readings: sysinfo's minimum for the system CPU
/// usage (200 ms on Linux, macOS and Windows), and at least 10 ms, the granularity of the
/// process's CPU time.
fn default_min_cpu_window() -> Duration {
    sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(10))
}

/// Reads process, system and Tokio runtime figures; each [`sample`](Self::sample) refreshes only
/// what it reports: this process (CPU time and memory, never the other processes of the host),
/// the system's memory and global CPU usage, and the load average.
///
/// CPU usage is a rate over the time since the previous CPU reading, so it needs two readings
/// at least 200 ms apart (sysinfo's minimum): [`new`](Self::new) takes the first, and a sample
/// taken sooner than that after the previous CPU reading reports no CPU usage (`None`) rather
/// than a bogus 0 or 100 %. The sampler's first sample, taken at start, therefore has no CPU
/// usage; every later one has (at intervals of 200 ms or more).
///
/// ```
/// let mut collector = vigil_vm::VmCollector::new().unwrap();
/// let sample = collector.sample();
/// assert!(sample.process.resident_memory_bytes > 0);
/// assert!(sample.system.memory_total_bytes >= sample.system.memory_used_bytes);
/// sample.publish(); // to the installed `metrics` recorder
/// ```
pub struct VmCollector {
    system: System,
    pid: Pid,
    runtime: Option<Handle>,
    /// When CPU was last read, and this process's CPU time then (ms).
    last_cpu: (Instant, u64),
    /// The previous Tokio reading, for the busy ratio and the park count.
    last_tokio: Option<TokioTotals>,
    /// CPU is read only when this long has passed since the previous reading.
    min_cpu_window: Duration,
}

impl std::fmt::Debug for VmCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmCollector")
            .field("pid", &self.pid)
            .field("runtime", &self.runtime.is_some())
            .finish_non_exhaustive()
    }
}

/// Cumulative Tokio figures, summed over the workers.
#[derive(Clone, Copy, Debug)]
struct TokioTotals {
    at: Instant,
    busy: Duration,
    parks: u64,
}

impl VmCollector {
    /// A collector for this process, sampling the Tokio runtime it is created in (if any).
    ///
    /// # Errors
    ///
    /// [`VmError::UnsupportedPlatform`] where sysinfo cannot tell the process's id.
    pub fn new() -> Result<Self, VmError> {
        Self::with_runtime(Handle::try_current().ok())
    }

    /// A collector for this process, sampling `runtime`'s metrics (none when `None`).
    ///
    /// # Errors
    ///
    /// [`VmError::UnsupportedPlatform`] where sysinfo cannot tell the process's id.
    pub fn with_runtime(runtime: Option<Handle>) -> Result<Self, VmError> {
        let pid = sysinfo::get_current_pid().map_err(VmError::UnsupportedPlatform)?;
        let mut collector = VmCollector {
            system: System::new(),
            pid,
            runtime,
            last_cpu: (Instant::now(), 0),
            last_tokio: None,
            min_cpu_window: default_min_cpu_window(),
        };
        // The first CPU reading: the base the next one is measured against.
        collector.refresh_process(true);
        collector
            .system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        collector.last_cpu = (Instant::now(), collector.process_cpu_ms());
        Ok(collector)
    }

    /// Reads CPU usage only when at least `window` has passed since the previous CPU reading
    /// (default 200 ms, sysinfo's minimum for an accurate system CPU usage). Shorter windows
    /// give noisier figures; the benchmark uses zero so that every sample pays for the CPU
    /// reading, as every sample of the sampler does at its default interval.
    #[must_use]
    pub fn with_min_cpu_window(mut self, window: Duration) -> Self {
        self.min_cpu_window = window;
        self
    }

    /// Whether Tokio runtime metrics are read.
    pub fn has_runtime(&self) -> bool {
        self.runtime.is_some()
    }

    fn refresh_process(&mut self, cpu: bool) {
        let mut kind = ProcessRefreshKind::nothing().with_memory().without_tasks();
        if cpu {
            kind = kind.with_cpu();
        }
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::Some(&[self.pid]), false, kind);
    }

    fn process_cpu_ms(&self) -> u64 {
        self.system
            .process(self.pid)
            .map_or(0, sysinfo::Process::accumulated_cpu_time)
    }

    /// Reads one sample. See the type's documentation for what is refreshed and for CPU usage.
    pub fn sample(&mut self) -> VmSample {
        let now = Instant::now();
        let cpu_window = now.duration_since(self.last_cpu.0);
        let read_cpu = cpu_window >= self.min_cpu_window && !cpu_window.is_zero();

        self.refresh_process(read_cpu);
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let (mut process_cpu, mut system_cpu) = (None, None);
        if read_cpu {
            self.system
                .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
            let cpu_ms = self.process_cpu_ms();
            let used = Duration::from_millis(cpu_ms.saturating_sub(self.last_cpu.1));
            process_cpu = Some(used.as_secs_f64() / cpu_window.as_secs_f64());
            system_cpu = Some((f64::from(self.system.global_cpu_usage()) / 100.0).clamp(0.0, 1.0));
            self.last_cpu = (now, cpu_ms);
        }

        let process = match self.system.process(self.pid) {
            Some(p) => ProcessSample {
                cpu_usage: process_cpu,
                resident_memory_bytes: p.memory(),
                virtual_memory_bytes: p.virtual_memory(),
                threads: procfs::threads(),
                open_fds: procfs::open_fds(),
                start_time_seconds: p.start_time(),
                uptime_seconds: p.run_time(),
            },
            None => ProcessSample::default(),
        };
        let system = SystemSample {
            cpu_usage: system_cpu,
            memory_used_bytes: self.system.used_memory(),
            memory_total_bytes: self.system.total_memory(),
            load_average: load_average(),
        };
        let tokio = self.sample_tokio(now);
        VmSample { process, system, tokio }
    }

    fn sample_tokio(&mut self, now: Instant) -> Option<TokioSample> {
        let metrics = self.runtime.as_ref()?.metrics();
        let workers = metrics.num_workers();
        let mut sample = TokioSample {
            workers,
            alive_tasks: metrics.num_alive_tasks(),
            global_queue_depth: metrics.global_queue_depth(),
            busy_ratio: None,
            parks: None,
        };
        #[cfg(target_has_atomic = "64")]
        {
            let totals = TokioTotals {
                at: now,
                busy: (0..workers).map(|w| metrics.worker_total_busy_duration(w)).sum(),
                parks: (0..workers).map(|w| metrics.worker_park_count(w)).sum(),
            };
            let last_parks = self.last_tokio.map_or(0, |t| t.parks);
            sample.parks = Some(totals.parks.saturating_sub(last_parks));
            if let Some(last) = self.last_tokio {
                let wall = now.duration_since(last.at).as_secs_f64() * usize_to_f64(workers);
                if wall > 0.0 {
                    let busy = totals.busy.saturating_sub(last.busy).as_secs_f64();
                    sample.busy_ratio = Some((busy / wall).clamp(0.0, 1.0));
                }
            }
            self.last_tokio = Some(totals);
        }
        #[cfg(not(target_has_atomic = "64"))]
        let _ = now;
        Some(sample)
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn usize_to_f64(n: usize) -> f64 {
    n as f64
}

#[allow(clippy::cast_precision_loss)] // byte counts and seconds far below 2^52
fn u64_to_f64(n: u64) -> f64 {
    n as f64
}

#[cfg(unix)]
#[allow(clippy::unnecessary_wraps)] // `None` on other platforms
fn load_average() -> Option<LoadAverage> {
    let l = System::load_average();
    Some(LoadAverage {
        one: l.one,
        five: l.five,
        fifteen: l.fifteen,
    })
}

#[cfg(not(unix))]
fn load_average() -> Option<LoadAverage> {
    None
}

/// Thread and file descriptor counts, from `/proc/self` (Linux only: elsewhere `None`).
mod procfs {
    /// The `Threads:` line of `/proc/self/status`.
    #[cfg(target_os = "linux")]
    pub(super) fn threads() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
    }

    /// The entries of `/proc/self/fd`, less the one that lists them.
    #[cfg(target_os = "linux")]
    pub(super) fn open_fds() -> Option<u64> {
        let entries = std::fs::read_dir("/proc/self/fd").ok()?;
        Some((entries.count() as u64).saturating_sub(1))
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn threads() -> Option<u64> {
        None
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn open_fds() -> Option<u64> {
        None
    }
}

/// One reading of the process, the system and the Tokio runtime.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VmSample {
    /// This process.
    pub process: ProcessSample,
    /// The host (or the container, where the kernel reports it so).
    pub system: SystemSample,
    /// The Tokio runtime, when the collector has one.
    pub tokio: Option<TokioSample>,
}

/// This process's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// CPU used since the previous CPU reading, in cores: 1.0 is one core fully busy, and it
    /// may exceed 1 on several cores. `None` when the previous reading is too recent.
    pub cpu_usage: Option<f64>,
    /// Resident set size, in bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: u64,
    /// OS threads (Linux only).
    pub threads: Option<u64>,
    /// Open file descriptors (Linux only).
    pub open_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: u64,
    /// How long the process has run, in seconds.
    pub uptime_seconds: u64,
}

/// The system's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemSample {
    /// CPU used on all cores since the previous CPU reading, 0 to 1. `None` when the previous
    /// reading is too recent.
    pub cpu_usage: Option<f64>,
    /// Memory in use, in bytes.
    pub memory_used_bytes: u64,
    /// Total memory, in bytes.
    pub memory_total_bytes: u64,
    /// The load average (Unix only).
    pub load_average: Option<LoadAverage>,
}

/// The load average: runnable (and on Linux, uninterruptible) tasks, averaged.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadAverage {
    /// Over 1 minute.
    pub one: f64,
    /// Over 5 minutes.
    pub five: f64,
    /// Over 15 minutes.
    pub fifteen: f64,
}

/// The Tokio runtime's figures (its stable metrics API), summed over workers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokioSample {
    /// Worker threads.
    pub workers: usize,
    /// Tasks spawned and not yet finished.
    pub alive_tasks: usize,
    /// Tasks waiting in the global (injection) queue.
    pub global_queue_depth: usize,
    /// The share of the workers' time spent busy since the previous sample, 0 to 1 (`None` on
    /// the first sample, and on targets without 64-bit atomics).
    pub busy_ratio: Option<f64>,
    /// Times the workers parked since the previous sample (since the runtime started, on the
    /// first sample; `None` on targets without 64-bit atomics).
    pub parks: Option<u64>,
}

impl VmSample {
    /// Records this sample through the `metrics` recorder in effect on this thread (the
    /// global one unless a local recorder is set), with Vigil's cached handles. Figures that
    /// are `None` are not recorded. The metrics are the catalogue's `process.*`, `system.*`
    /// and `tokio.*` entries.
    pub fn publish(&self) {
        let p = &self.process;
        if let Some(cpu) = p.cpu_usage {
            gauge_set(catalogue::PROCESS_CPU_USAGE.name, cpu, &[]);
        }
        gauge_set(
            catalogue::PROCESS_MEMORY_RESIDENT.name,
            u64_to_f64(p.resident_memory_bytes),
            &[],
        );
        gauge_set(
            catalogue::PROCESS_MEMORY_VIRTUAL.name,
            u64_to_f64(p.virtual_memory_bytes),
            &[],
        );
        if let Some(threads) = p.threads {
            gauge_set(catalogue::PROCESS_THREADS.name, u64_to_f64(threads), &[]);
        }
        if let Some(fds) = p.open_fds {
            gauge_set(catalogue::PROCESS_OPEN_FDS.name, u64_to_f64(fds), &[]);
        }
        gauge_set(
            catalogue::PROCESS_START_TIME.name,
            u64_to_f64(p.start_time_seconds),
            &[],
        );
        gauge_set(catalogue::PROCESS_UPTIME.name, u64_to_f64(p.uptime_seconds), &[]);

        let s = &self.system;
        if let Some(cpu) = s.cpu_usage {
            gauge_set(catalogue::SYSTEM_CPU_USAGE.name, cpu, &[]);
        }
        gauge_set(catalogue::SYSTEM_MEMORY_USED.name, u64_to_f64(s.memory_used_bytes), &[]);
        gauge_set(
            catalogue::SYSTEM_MEMORY_TOTAL.name,
            u64_to_f64(s.memory_total_bytes),
            &[],
        );
        if let Some(load) = s.load_average {
            for (period, value) in [("1m", load.one), ("5m", load.five), ("15m", load.fifteen)] {
                gauge_set(catalogue::SYSTEM_LOAD.name, value, &[("period", period)]);
            }
        }

        if let Some(t) = &self.tokio {
            gauge_set(catalogue::TOKIO_WORKERS.name, usize_to_f64(t.workers), &[]);
            gauge_set(catalogue::TOKIO_TASKS_ALIVE.name, usize_to_f64(t.alive_tasks), &[]);
            gauge_set(
                catalogue::TOKIO_QUEUE_DEPTH.name,
                usize_to_f64(t.global_queue_depth),
                &[],
            );
            if let Some(busy) = t.busy_ratio {
                gauge_set(catalogue::TOKIO_WORKERS_BUSY.name, busy, &[]);
            }
            if let Some(parks) = t.parks {
                increment(catalogue::TOKIO_WORKER_PARKS.name, parks, &[]);
            }
        }
    }
}
