//! [`TraceSender`]: the bounded queue of finished traces and the thread that sends them to the
//! Datadog agent.

use std::fmt;
use std::io::Read as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use vigil_core::handles;

use crate::catalogue::{VIGIL_TRACE_DROPPED, VIGIL_TRACE_SEND_ERRORS, VIGIL_TRACE_SENT, VIGIL_TRACE_SPANS_DROPPED};
use crate::clock::Clock;
use crate::wire::{Chunk, Payload, ServiceInfo};

/// Encoded bytes after which a payload is sent and the next one started.
const PAYLOAD_TARGET_BYTES: usize = 4 * 1024 * 1024;
/// The agent refuses payloads over 50 MB: a single chunk larger than this is dropped.
const PAYLOAD_MAX_BYTES: usize = 45 * 1024 * 1024;
/// The payload buffer is shrunk back to this after an unusually large payload.
const PAYLOAD_KEEP_BYTES: usize = 1024 * 1024;
/// The most response body read (and discarded) from the agent, so the connection is reused.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// The `Datadog-Meta-Lang-Version` header: the compiler that built this crate.
const LANG_VERSION: &str = env!("VIGIL_RUSTC_VERSION");
/// The `Datadog-Meta-Tracer-Version` header.
const TRACER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a trace chunk was dropped: the `reason` tag of `vigil.trace.dropped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// The queue was full: the application produced traces faster than the agent took them.
    QueueFull,
    /// Every retry failed.
    SendFailed,
    /// The agent answered with a status that is not worth retrying (4xx other than 408/429).
    Rejected,
    /// A single trace encoded larger than the agent accepts.
    TooLarge,
    /// Still queued or being retried when the shutdown deadline passed, or finished after it.
    Shutdown,
}

impl DropReason {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::SendFailed => "send_failed",
            DropReason::Rejected => "rejected",
            DropReason::TooLarge => "too_large",
            DropReason::Shutdown => "shutdown",
        }
    }
}

/// Counts spans over the per-trace cap (`vigil.trace.spans.dropped{reason="trace_too_large"}`).
pub(crate) const TRACE_TOO_LARGE: &str = "trace_too_large";

/// How failed sends are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) max_retries: u32,
}

/// Everything the sender thread needs.
#[derive(Clone, Debug)]
pub(crate) struct SenderConfig {
    pub(crate) url: String,
    pub(crate) flush_interval: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    /// The layer's clock, re-synchronised with the wall clock whenever the thread wakes.
    pub(crate) clock: Arc<Clock>,
    pub(crate) info: ServiceInfo,
}

/// Counters of a [`TraceSender`], as [`TraceSender::stats`] returns them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceStats {
    /// Traces (chunks) waiting in the queue.
    pub queued: usize,
    /// Traces (chunks) the agent accepted.
    pub sent_traces: u64,
    /// Spans the agent accepted.
    pub sent_spans: u64,
    /// Payloads the agent accepted.
    pub payloads: u64,
    /// Traces (chunks) dropped, for any reason (`vigil.trace.dropped`).
    pub dropped_traces: u64,
    /// Spans dropped: the spans of dropped traces and those over the per-trace cap
    /// (`vigil.trace.spans.dropped`).
    pub dropped_spans: u64,
    /// Failed attempts to send a payload, each retried or not (`vigil.trace.send.errors`).
    pub send_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent_traces: AtomicU64,
    sent_spans: AtomicU64,
    payloads: AtomicU64,
    dropped_traces: AtomicU64,
    dropped_spans: AtomicU64,
    send_errors: AtomicU64,
    /// Chunks taken off the queue and then dropped (not delivered).
    lost_after_dequeue: AtomicU64,
}

/// State shared by the layer, the handles and the sender thread.
struct Shared {
    queue: ArrayQueue<Chunk>,
    counters: Counters,
    /// Chunks accepted into the queue.
    accepted: AtomicU64,
    /// Chunks taken off the queue and delivered or dropped.
    finished: AtomicU64,
    /// No more chunks are accepted.
    closed: AtomicBool,
    /// The sender is parked until its next tick; a producer that fills the queue to half
    /// wakes it (once).
    sleeping: AtomicBool,
    flush_requested: AtomicBool,
    /// Set by `shutdown`: the thread sends what is queued until then, and exits.
    stop_deadline: Mutex<Option<Instant>>,
    /// The thread has exited.
    exited: AtomicBool,
    /// Signalled after every payload and when the thread exits.
    progress: Condvar,
    progress_lock: Mutex<()>,
    thread: OnceLock<Thread>,
}

impl Shared {
    fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    fn stop_deadline(&self) -> Option<Instant> {
        *self.stop_deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        let _guard = self.progress_lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.progress.notify_all();
    }

    /// Waits until `done()` or the deadline; returns `done()`.
    fn wait_until(&self, deadline: Instant, done: impl Fn() -> bool) -> bool {
        let mut guard = self.progress_lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if done() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.exited.load(Ordering::Acquire) {
                return done();
            }
            // Bounded waits: a notification lost to a race costs at most 50 ms.
            let wait = (deadline - now).min(Duration::from_millis(50));
            guard = self
                .progress
                .wait_timeout(guard, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn count_dropped(&self, reason: DropReason, traces: u64, spans: u64) {
        self.counters.dropped_traces.fetch_add(traces, Ordering::Relaxed);
        self.counters.dropped_spans.fetch_add(spans, Ordering::Relaxed);
        handles::increment(VIGIL_TRACE_DROPPED.name, traces, &[("reason", reason.as_str())]);
        handles::increment(VIGIL_TRACE_SPANS_DROPPED.name, spans, &[("reason", reason.as_str())]);
    }

    fn count_spans_over_cap(&self, spans: u64) {
        self.counters.dropped_spans.fetch_add(spans, Ordering::Relaxed);
        handles::increment(VIGIL_TRACE_SPANS_DROPPED.name, spans, &[("reason", TRACE_TOO_LARGE)]);
    }
}

/// The owner of the sender thread: shuts it down when the last handle goes.
struct Owner {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<()>>>,
    capacity: usize,
}

impl Drop for Owner {
    fn drop(&mut self) {
        shutdown(&self.shared, &self.handle, Instant::now() + DROP_FLUSH_TIMEOUT);
    }
}

/// How long dropping the last handle waits for queued traces to be sent.
pub const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends finished traces to the Datadog agent from a dedicated thread.
///
/// Traces wait in a bounded lock-free queue: [`DatadogTraceLayer`](crate::DatadogTraceLayer)
/// never blocks and never does I/O; when the queue is full the trace is dropped and counted
/// (`vigil.trace.dropped{reason="queue_full"}`). The thread sends everything queued every
/// flush interval (default 1 s), or sooner when the queue is half full or a flush is asked
/// for, as msgpack to the agent's `/v0.4/traces`, retrying on 408, 429, 5xx and I/O errors
/// with capped exponential backoff and jitter.
///
/// Cheap to clone; the thread stops when [`shutdown`](Self::shutdown) is called or when the
/// last clone (and the last layer using it) is dropped, which waits up to
/// [`DROP_FLUSH_TIMEOUT`] for queued traces.
#[derive(Clone)]
pub struct TraceSender {
    owner: Arc<Owner>,
}

impl fmt::Debug for TraceSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceSender")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TraceSender {
    /// Starts the sender thread.
    pub(crate) fn spawn(config: SenderConfig) -> std::io::Result<Self> {
        let capacity = config.queue_capacity.max(1);
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(capacity),
            counters: Counters::default(),
            accepted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            stop_deadline: Mutex::new(None),
            exited: AtomicBool::new(false),
            progress: Condvar::new(),
            progress_lock: Mutex::new(()),
            thread: OnceLock::new(),
        });
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("vigil-trace-sender".to_owned())
            .spawn(move || {
                /// Marks the thread as gone however it ends, so no waiter waits in vain.
                struct Exited<'a>(&'a Shared);
                impl Drop for Exited<'_> {
                    fn drop(&mut self) {
                        self.0.closed.store(true, Ordering::Release);
                        self.0.exited.store(true, Ordering::Release);
                        self.0.notify();
                    }
                }
                let _exited = Exited(&thread_shared);
                run(&thread_shared, &config);
            })?;
        let _ = shared.thread.set(handle.thread().clone());
        Ok(TraceSender {
            owner: Arc::new(Owner {
                shared,
                handle: Mutex::new(Some(handle)),
                capacity,
            }),
        })
    }

    /// Queues a finished chunk; never blocks. Dropped and counted when the queue is full or
    /// the sender is shut down.
    pub(crate) fn enqueue(&self, chunk: Chunk) {
        let shared = &self.owner.shared;
        let spans = chunk.spans.len() as u64;
        if shared.closed.load(Ordering::Acquire) {
            shared.count_dropped(DropReason::Shutdown, 1, spans);
            return;
        }
        if shared.queue.push(chunk).is_err() {
            shared.count_dropped(DropReason::QueueFull, 1, spans);
            return;
        }
        shared.accepted.fetch_add(1, Ordering::AcqRel);
        if shared.queue.len() * 2 >= self.owner.capacity && shared.sleeping.swap(false, Ordering::AcqRel) {
            shared.wake();
        }
    }

    /// Counts spans dropped because their trace reached the per-trace cap.
    pub(crate) fn count_spans_over_cap(&self, spans: u64) {
        self.owner.shared.count_spans_over_cap(spans);
    }

    /// Sends everything queued before this call now, and waits until it is delivered or
    /// `deadline` passes.
    ///
    /// Returns `true` when every trace queued before the call was delivered; `false` when the
    /// deadline passed first or some of them had to be dropped (see [`stats`](Self::stats)).
    pub fn flush_until(&self, deadline: Instant) -> bool {
        let shared = &self.owner.shared;
        let target = shared.accepted.load(Ordering::Acquire);
        let lost_before = shared.counters.lost_after_dequeue.load(Ordering::Acquire);
        shared.flush_requested.store(true, Ordering::Release);
        shared.wake();
        let done = shared.wait_until(deadline, || shared.finished.load(Ordering::Acquire) >= target);
        done && shared.counters.lost_after_dequeue.load(Ordering::Acquire) == lost_before
    }

    /// Stops accepting traces, sends what is queued until `deadline`, and stops the thread.
    /// Whatever is still queued or failing at the deadline is dropped and counted
    /// (`reason="shutdown"`), as are traces that finish afterwards.
    ///
    /// Returns `true` when everything queued was delivered before the deadline. It never waits
    /// past the deadline: a request already in flight may still finish (within its request
    /// timeout) after it returns. Calling it again returns at once, with `false`.
    pub fn shutdown(&self, deadline: Instant) -> bool {
        shutdown(&self.owner.shared, &self.owner.handle, deadline)
    }

    /// The sender's counters.
    pub fn stats(&self) -> TraceStats {
        let shared = &self.owner.shared;
        let c = &shared.counters;
        TraceStats {
            queued: shared.queue.len(),
            sent_traces: c.sent_traces.load(Ordering::Relaxed),
            sent_spans: c.sent_spans.load(Ordering::Relaxed),
            payloads: c.payloads.load(Ordering::Relaxed),
            dropped_traces: c.dropped_traces.load(Ordering::Relaxed),
            dropped_spans: c.dropped_spans.load(Ordering::Relaxed),
            send_errors: c.send_errors.load(Ordering::Relaxed),
        }
    }
}

fn shutdown(shared: &Shared, handle: &Mutex<Option<JoinHandle<()>>>, deadline: Instant) -> bool {
    let lost_before = shared.counters.lost_after_dequeue.load(Ordering::Acquire);
    let was_closed = shared.closed.swap(true, Ordering::AcqRel);
    {
        let mut stop = shared.stop_deadline.lock().unwrap_or_else(PoisonError::into_inner);
        if stop.is_none() {
            *stop = Some(deadline);
        }
    }
    shared.wake();
    let exited = shared.wait_until(deadline, || shared.exited.load(Ordering::Acquire));
    if exited && let Some(h) = handle.lock().unwrap_or_else(PoisonError::into_inner).take() {
        let _ = h.join();
    }
    if exited {
        // Pushed by a producer that saw the sender still open while it was closing.
        while let Some(chunk) = shared.queue.pop() {
            shared.count_dropped(DropReason::Shutdown, 1, chunk.spans.len() as u64);
            shared.counters.lost_after_dequeue.fetch_add(1, Ordering::AcqRel);
            shared.finished.fetch_add(1, Ordering::AcqRel);
        }
    }
    !was_closed && exited && shared.counters.lost_after_dequeue.load(Ordering::Acquire) == lost_before
}

/// The sender thread.
fn run(shared: &Shared, config: &SenderConfig) {
    let agent = http_agent(config);
    let mut payload = Payload::default();
    let mut pending: Option<Chunk> = None;
    let capacity = config.queue_capacity.max(1);
    let mut next_tick = Instant::now() + config.flush_interval;
    loop {
        // Sleep until the tick, a flush, a shutdown, or a half-full queue.
        loop {
            let now = Instant::now();
            let due = now >= next_tick
                || shared.flush_requested.load(Ordering::Acquire)
                || shared.queue.len() * 2 >= capacity
                || shared.stop_deadline().is_some();
            if due {
                break;
            }
            shared.sleeping.store(true, Ordering::Release);
            // Re-check after announcing the sleep, so a producer's wake-up is not lost.
            if shared.queue.len() * 2 >= capacity || shared.flush_requested.load(Ordering::Acquire) {
                shared.sleeping.store(false, Ordering::Release);
                break;
            }
            std::thread::park_timeout(next_tick - now);
            shared.sleeping.store(false, Ordering::Release);
        }
        shared.flush_requested.store(false, Ordering::Release);
        config.clock.resync();
        let stop = shared.stop_deadline();
        // Send everything queued now, payload by payload.
        loop {
            payload.clear();
            let mut taken = 0u64;
            while payload.bytes().len() < PAYLOAD_TARGET_BYTES {
                let Some(chunk) = pending.take().or_else(|| shared.queue.pop()) else {
                    break;
                };
                payload.push(&chunk, &config.info);
                if payload.bytes().len() > PAYLOAD_MAX_BYTES {
                    if taken == 0 {
                        // This chunk alone is too large for the agent.
                        drop_after_dequeue(shared, DropReason::TooLarge, 1, chunk.spans.len() as u64);
                        payload.clear();
                        continue;
                    }
                    // Send what came before; this chunk starts the next payload.
                    payload.undo_last();
                    pending = Some(chunk);
                    break;
                }
                taken += 1;
            }
            if taken == 0 {
                break;
            }
            send_with_retry(shared, config, &agent, &payload, taken);
            if payload.bytes().len() > PAYLOAD_TARGET_BYTES {
                payload.shrink(PAYLOAD_KEEP_BYTES);
            }
            shared.notify();
        }
        next_tick = Instant::now() + config.flush_interval;
        if stop.is_some() {
            if let Some(chunk) = pending.take() {
                drop_after_dequeue(shared, DropReason::Shutdown, 1, chunk.spans.len() as u64);
            }
            return;
        }
    }
}

fn drop_after_dequeue(shared: &Shared, reason: DropReason, traces: u64, spans: u64) {
    shared.count_dropped(reason, traces, spans);
    shared.counters.lost_after_dequeue.fetch_add(traces, Ordering::AcqRel);
    shared.finished.fetch_add(traces, Ordering::AcqRel);
}

fn http_agent(config: &SenderConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // The agent is local: never go through a proxy from the environment.
        .proxy(None)
        .timeout_connect(Some(config.connect_timeout))
        .timeout_global(Some(config.request_timeout))
        .max_redirects(0)
        .user_agent(concat!("vigil-trace-datadog/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The outcome of one attempt.
enum Attempt {
    Delivered,
    Retry(&'static str),
    Reject,
}

fn attempt(agent: &ureq::Agent, config: &SenderConfig, payload: &Payload, timeout: Duration) -> Attempt {
    let request = agent
        .put(&config.url)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .header("Content-Type", "application/msgpack")
        .header("Datadog-Meta-Lang", "rust")
        .header("Datadog-Meta-Lang-Version", LANG_VERSION)
        .header("Datadog-Meta-Lang-Interpreter", "rustc")
        .header("Datadog-Meta-Tracer-Version", TRACER_VERSION)
        .header("Datadog-Client-Computed-Top-Level", "yes")
        .header("X-Datadog-Trace-Count", payload.traces().to_string());
    match request.send(payload.bytes()) {
        Ok(mut response) => {
            // Read (and discard) the answer, so the connection can be reused.
            let mut sink = Vec::new();
            let _ = response
                .body_mut()
                .as_reader()
                .take(MAX_RESPONSE_BYTES)
                .read_to_end(&mut sink);
            match response.status().as_u16() {
                200..=299 => Attempt::Delivered,
                408 => Attempt::Retry("http_408"),
                429 => Attempt::Retry("http_429"),
                500..=599 => Attempt::Retry("http_5xx"),
                _ => Attempt::Reject,
            }
        }
        Err(ureq::Error::Timeout(_)) => Attempt::Retry("timeout"),
        Err(_) => Attempt::Retry("io"),
    }
}

/// Sends one payload, retrying with capped exponential backoff and full jitter in the upper
/// half of each step, until it is delivered, rejected, out of retries, or out of time.
fn send_with_retry(shared: &Shared, config: &SenderConfig, agent: &ureq::Agent, payload: &Payload, chunks: u64) {
    let mut backoff = config.retry.initial_backoff;
    let mut retries = 0u32;
    loop {
        let deadline = shared.stop_deadline();
        let timeout = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(config.request_timeout),
            None => config.request_timeout,
        };
        if timeout.is_zero() {
            drop_after_dequeue(shared, DropReason::Shutdown, chunks, payload.spans());
            return;
        }
        let reason = match attempt(agent, config, payload, timeout) {
            Attempt::Delivered => {
                let c = &shared.counters;
                c.sent_traces.fetch_add(chunks, Ordering::Relaxed);
                c.sent_spans.fetch_add(payload.spans(), Ordering::Relaxed);
                c.payloads.fetch_add(1, Ordering::Relaxed);
                handles::increment(VIGIL_TRACE_SENT.name, chunks, &[]);
                shared.finished.fetch_add(chunks, Ordering::AcqRel);
                return;
            }
            Attempt::Reject => {
                count_send_error(shared, "http_4xx");
                drop_after_dequeue(shared, DropReason::Rejected, chunks, payload.spans());
                return;
            }
            Attempt::Retry(reason) => reason,
        };
        count_send_error(shared, reason);
        if retries >= config.retry.max_retries {
            drop_after_dequeue(shared, DropReason::SendFailed, chunks, payload.spans());
            return;
        }
        retries += 1;
        let wait = jitter(backoff);
        backoff = (backoff * 2).min(config.retry.max_backoff);
        // Sleep, but wake for a shutdown (whose deadline may cut the wait short).
        let until = Instant::now() + wait;
        loop {
            let now = Instant::now();
            let limit = shared.stop_deadline().map_or(until, |d| d.min(until));
            if now >= limit {
                break;
            }
            std::thread::park_timeout(limit - now);
        }
    }
}

fn count_send_error(shared: &Shared, reason: &'static str) {
    shared.counters.send_errors.fetch_add(1, Ordering::Relaxed);
    handles::increment(VIGIL_TRACE_SEND_ERRORS.name, 1, &[("reason", reason)]);
}

/// A wait between half of `backoff` and all of it, chosen at random.
fn jitter(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_upper_half() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_millis(100));
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn drop_reasons_are_bounded_labels() {
        for r in [
            DropReason::QueueFull,
            DropReason::SendFailed,
            DropReason::Rejected,
            DropReason::TooLarge,
            DropReason::Shutdown,
        ] {
            assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
