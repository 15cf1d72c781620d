//! The state shared by the callers and the sender thread: the bounded queue (in entries and
//! in bytes), recycled buffers, counters, and the flush and shutdown signals.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use vigil_core::catalogue::VIGIL_LOG_DROPPED;

use crate::catalogue::{VIGIL_DATADOG_LOGS_REQUESTS, VIGIL_DATADOG_LOGS_SENT, VIGIL_DATADOG_LOGS_TRUNCATED};

/// Buffers with more capacity than this are not recycled (and are shrunk to fit before they
/// are queued, so the byte bound counts what they really hold).
pub(crate) const RECYCLE_MAX_CAPACITY: usize = 16 * 1024;
/// How many empty buffers wait for reuse.
const POOL_SIZE: usize = 256;
/// The size of a fresh buffer.
pub(crate) const INITIAL_BUFFER: usize = 512;
/// The smallest entry there is, for the cheap "is there room at all" check before formatting.
pub(crate) const MIN_ENTRY_BYTES: usize = 128;

/// The `backend` tag of `vigil.log.dropped`.
pub(crate) const BACKEND: &str = "datadog";

/// Why a log entry was dropped: the `reason` tag of `vigil.log.dropped{backend="datadog"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was full (in entries or in bytes): the intake is down or slower than the
    /// application logs. Counted on the caller's thread.
    QueueFull,
    /// The intake refused the entry for good: HTTP 400, 413 for a single entry, or another
    /// unexpected 4xx/3xx status.
    Rejected,
    /// The intake refused the API key: HTTP 401 or 403.
    Unauthorized,
    /// The backend was shut down: the entry was logged after `shutdown`, or was still queued
    /// when the shutdown deadline passed.
    Shutdown,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Rejected,
        DropReason::Unauthorized,
        DropReason::Shutdown,
    ];

    /// The metric tag value: `queue_full`, `rejected`, `unauthorized`, `shutdown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Rejected => "rejected",
            DropReason::Unauthorized => "unauthorized",
            DropReason::Shutdown => "shutdown",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// What came of one request to the intake: the `outcome` tag of
/// `vigil.datadog.logs.requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    Accepted,
    Retried,
    Split,
    Rejected,
    Unauthorized,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Accepted,
        Outcome::Retried,
        Outcome::Split,
        Outcome::Rejected,
        Outcome::Unauthorized,
    ];

    const fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Retried => "retried",
            Outcome::Split => "split",
            Outcome::Rejected => "rejected",
            Outcome::Unauthorized => "unauthorized",
        }
    }
}

/// Exact counters of a [`DatadogLogBackend`](crate::DatadogLogBackend).
///
/// Every record handed to `log` is counted once as [`accepted`](Self::accepted) (it entered
/// the queue) or as dropped before the queue (`queue_full`, or `shutdown` after shutdown);
/// every accepted entry ends up [`delivered`](Self::delivered) or dropped. So once a flush
/// has returned `true`, `received() == delivered() + dropped_total()`.
///
/// Records emitted on the sender thread itself (its own reports, and the HTTP and TLS
/// libraries' logs) are not sent to Datadog, so that they cannot feed back into the queue;
/// they are counted in [`own_records_skipped`](Self::own_records_skipped), not as dropped,
/// and other backends (the console) still get them.
#[derive(Debug, Default)]
pub struct DatadogStats {
    queued_bytes: AtomicUsize,
    peak_queued_bytes: AtomicUsize,
    accepted: AtomicU64,
    caller_drops: AtomicU64,
    dropped: [AtomicU64; 4],
    delivered: AtomicU64,
    requests: [AtomicU64; 5],
    truncated: AtomicU64,
    own_skipped: AtomicU64,
}

impl DatadogStats {
    /// Records handed to `log` (not counting [`own_records_skipped`](Self::own_records_skipped)).
    pub fn received(&self) -> u64 {
        self.accepted() + self.caller_drops.load(Ordering::Relaxed)
    }

    /// Entries that entered the queue.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Entries the intake accepted (HTTP 2xx).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Entries dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }

    /// Entries dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }

    /// Requests sent to the intake (retries and the halves of split batches included).
    pub fn requests(&self) -> u64 {
        self.requests.iter().map(|r| r.load(Ordering::Relaxed)).sum()
    }

    /// Requests that failed in a way worth retrying (408, 429, 5xx, timeout, connection or
    /// I/O error) and were retried.
    pub fn retries(&self) -> u64 {
        self.requests_with(Outcome::Retried)
    }

    /// Batches split in halves after HTTP 413.
    pub fn splits(&self) -> u64 {
        self.requests_with(Outcome::Split)
    }

    /// Entries cut to the 1 MB limit (and marked `vigil.truncated`).
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }

    /// Records emitted on the sender thread, not sent to Datadog (see the type's docs).
    pub fn own_records_skipped(&self) -> u64 {
        self.own_skipped.load(Ordering::Relaxed)
    }

    /// Bytes of entries waiting in the queue now (the capacity of their buffers).
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// The most bytes ever waiting in the queue at once; never more than
    /// [`max_queue_bytes`](crate::DatadogLogBuilder::max_queue_bytes).
    pub fn peak_queued_bytes(&self) -> usize {
        self.peak_queued_bytes.load(Ordering::Relaxed)
    }

    fn requests_with(&self, outcome: Outcome) -> u64 {
        self.requests[outcome as usize].load(Ordering::Relaxed)
    }
}

/// One element of the queue.
pub(crate) enum Item {
    /// A formatted entry.
    Entry(Vec<u8>),
    /// A flush: signalled once every entry queued before it is delivered or dropped.
    Flush(Arc<FlushSignal>),
}

/// The completion of one flush.
#[derive(Debug, Default)]
pub(crate) struct FlushSignal {
    done: Mutex<bool>,
    cv: Condvar,
}

impl FlushSignal {
    pub(crate) fn complete(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }

    /// Waits until completed (true) or `deadline` (false); gives up early, returning the
    /// state, once `gone()` says nobody will complete it.
    pub(crate) fn wait_until(&self, deadline: Instant, gone: impl Fn() -> bool) -> bool {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            let now = Instant::now();
            if now >= deadline || gone() {
                return false;
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            done = self
                .cv
                .wait_timeout(done, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Counter values already handed to the `metrics` recorder.
#[derive(Debug, Default)]
struct Published {
    dropped: [u64; 4],
    delivered: u64,
    requests: [u64; 5],
    truncated: u64,
    /// The first publication is done: the truncated counter exists (at 0 until an entry is cut).
    started: bool,
}

/// State shared by the callers and the sender thread.
pub(crate) struct Shared {
    pub(crate) queue: ArrayQueue<Item>,
    pool: ArrayQueue<Vec<u8>>,
    pub(crate) max_bytes: usize,
    wake_entries: usize,
    wake_bytes: usize,
    pub(crate) stats: DatadogStats,
    wake_pending: AtomicBool,
    /// Set (before the unpark) by whoever wakes the sender. The sender checks it before it
    /// parks: an unpark token alone can be consumed by a library parking inside a request
    /// (`std::sync::mpsc` does), and the wake-up would be lost.
    wake_requested: AtomicBool,
    /// Set by `shutdown`: new records are dropped.
    pub(crate) closed: AtomicBool,
    /// Set by `shutdown`: the sender drains, then exits; after `deadline` it gives up.
    stopping: AtomicBool,
    /// Set when the sender thread has exited (however it ended) or `shutdown` has given up on
    /// it: nobody will complete a flush any more. An atomic, so that a flush waiting for its
    /// signal never needs a lock that `shutdown` holds while it completes that signal.
    sender_gone: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    pub(crate) sender: OnceLock<Thread>,
    published: Mutex<Published>,
}

impl Shared {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Shared {
            queue: ArrayQueue::new(capacity),
            pool: ArrayQueue::new(POOL_SIZE.min(capacity)),
            max_bytes,
            wake_entries: (capacity / 2).clamp(1, crate::MAX_BATCH_ENTRIES),
            wake_bytes: (max_bytes / 2).min(crate::MAX_PAYLOAD_BYTES),
            stats: DatadogStats::default(),
            wake_pending: AtomicBool::new(false),
            wake_requested: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            sender_gone: AtomicBool::new(false),
            deadline: Mutex::new(None),
            sender: OnceLock::new(),
            published: Mutex::new(Published::default()),
        }
    }

    /// A buffer to format an entry into: a recycled one when available.
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.pool.pop().unwrap_or_else(|| Vec::with_capacity(INITIAL_BUFFER))
    }

    /// Returns a buffer for reuse (if it is not too large).
    pub(crate) fn recycle(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() <= RECYCLE_MAX_CAPACITY {
            buffer.clear();
            let _ = self.pool.push(buffer);
        }
    }

    /// Whether there is obviously no room: checked before formatting, so that a full queue
    /// (the intake is down) costs the caller almost nothing.
    pub(crate) fn obviously_full(&self) -> bool {
        self.queue.is_full() || self.stats.queued_bytes.load(Ordering::Relaxed) + MIN_ENTRY_BYTES > self.max_bytes
    }

    /// Queues a formatted entry, or drops and counts it.
    pub(crate) fn enqueue(&self, mut entry: Vec<u8>) {
        if entry.capacity() > RECYCLE_MAX_CAPACITY {
            entry.shrink_to_fit();
        }
        let size = entry.capacity();
        let Some(queued) = self.reserve(size) else {
            self.recycle(entry);
            self.drop_before_queue(DropReason::QueueFull);
            return;
        };
        if let Err(Item::Entry(entry)) = self.queue.push(Item::Entry(entry)) {
            self.release(size);
            self.recycle(entry);
            self.drop_before_queue(DropReason::QueueFull);
            return;
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        if !self.wake_pending.load(Ordering::Relaxed)
            && (queued >= self.wake_bytes || self.queue.len() >= self.wake_entries)
            && !self.wake_pending.swap(true, Ordering::AcqRel)
        {
            self.wake();
        }
    }

    /// Reserves `size` bytes of the byte bound; returns the new total, or `None` when it
    /// would exceed the bound.
    fn reserve(&self, size: usize) -> Option<usize> {
        let bytes = &self.stats.queued_bytes;
        let mut current = bytes.load(Ordering::Relaxed);
        loop {
            let next = current.checked_add(size).filter(|n| *n <= self.max_bytes)?;
            match bytes.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if next > self.stats.peak_queued_bytes.load(Ordering::Relaxed) {
                        self.stats.peak_queued_bytes.fetch_max(next, Ordering::Relaxed);
                    }
                    return Some(next);
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn release(&self, size: usize) {
        self.stats.queued_bytes.fetch_sub(size, Ordering::AcqRel);
    }

    /// Takes the next item off the queue, releasing its bytes.
    pub(crate) fn pop(&self) -> Option<Item> {
        let item = self.queue.pop()?;
        if let Item::Entry(entry) = &item {
            self.release(entry.capacity());
        }
        Some(item)
    }

    /// Counts a record dropped before it entered the queue.
    pub(crate) fn drop_before_queue(&self, reason: DropReason) {
        self.stats.caller_drops.fetch_add(1, Ordering::Relaxed);
        self.count_drop(reason, 1);
    }

    /// Counts `n` entries dropped.
    pub(crate) fn count_drop(&self, reason: DropReason, n: u64) {
        self.stats.dropped[reason.index()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_delivered(&self, n: u64) {
        self.stats.delivered.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_request(&self, outcome: Outcome) {
        self.stats.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_truncated(&self) {
        self.stats.truncated.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_own_skipped(&self) {
        self.stats.own_skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Wakes the sender thread.
    pub(crate) fn wake(&self) {
        self.wake_requested.store(true, Ordering::SeqCst);
        if let Some(thread) = self.sender.get() {
            thread.unpark();
        }
    }

    /// Called by the sender: sleeps until woken or `timeout` passes.
    pub(crate) fn sleep(&self, timeout: Duration) {
        let end = Instant::now() + timeout;
        while !self.wake_requested.swap(false, Ordering::SeqCst) {
            let now = Instant::now();
            if now >= end {
                return;
            }
            std::thread::park_timeout(end - now);
        }
    }

    /// Called by the sender before it drains the queue: later entries may wake it again.
    pub(crate) fn clear_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    /// Asks the sender to deliver what is queued and stop, giving up at `deadline`.
    pub(crate) fn stop(&self, deadline: Instant) {
        self.closed.store(true, Ordering::SeqCst);
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        self.stopping.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Marks the sender as gone (see the field).
    pub(crate) fn mark_sender_gone(&self) {
        self.sender_gone.store(true, Ordering::SeqCst);
    }

    /// Whether the sender has exited or was given up on.
    pub(crate) fn sender_gone(&self) -> bool {
        self.sender_gone.load(Ordering::SeqCst)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The shutdown deadline, once `stop` was called.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if !self.stopping() {
            return None;
        }
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops everything queued (counted as `shutdown`) and completes waiting flushes.
    pub(crate) fn discard_queue(&self) -> u64 {
        let mut dropped = 0;
        while let Some(item) = self.pop() {
            match item {
                Item::Entry(entry) => {
                    dropped += 1;
                    self.recycle(entry);
                }
                Item::Flush(signal) => signal.complete(),
            }
        }
        self.count_drop(DropReason::Shutdown, dropped);
        dropped
    }

    /// Hands the counters' increases since the last call to the `metrics` recorder.
    pub(crate) fn publish_metrics(&self) {
        let mut published = self.published.lock().unwrap_or_else(PoisonError::into_inner);
        for reason in DropReason::ALL {
            let now = self.stats.dropped(reason);
            let delta = now - published.dropped[reason.index()];
            if delta > 0 {
                metrics::counter!(VIGIL_LOG_DROPPED.name, "backend" => BACKEND, "reason" => reason.as_str())
                    .increment(delta);
                published.dropped[reason.index()] = now;
            }
        }
        for outcome in Outcome::ALL {
            let now = self.stats.requests_with(outcome);
            let delta = now - published.requests[outcome as usize];
            if delta > 0 {
                metrics::counter!(VIGIL_DATADOG_LOGS_REQUESTS.name, "outcome" => outcome.as_str()).increment(delta);
                published.requests[outcome as usize] = now;
            }
        }
        let delivered = self.stats.delivered();
        if delivered > published.delivered {
            metrics::counter!(VIGIL_DATADOG_LOGS_SENT.name).increment(delivered - published.delivered);
            published.delivered = delivered;
        }
        let truncated = self.stats.truncated();
        // Registered by the first publication even at 0: truncation is rare, and a dashboard or
        // alert on it should read 0, not "no data", until an entry is cut.
        if truncated > published.truncated || !published.started {
            metrics::counter!(VIGIL_DATADOG_LOGS_TRUNCATED.name).increment(truncated - published.truncated);
            published.truncated = truncated;
        }
        published.started = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_bound_is_exact() {
        let shared = Shared::new(100, 4096);
        let mut queued = 0;
        for _ in 0..100 {
            let mut entry = shared.buffer();
            entry.resize(1000, b'x');
            let before = shared.stats.accepted();
            shared.enqueue(entry);
            if shared.stats.accepted() > before {
                queued += 1;
            }
        }
        assert!(shared.stats.peak_queued_bytes() <= 4096);
        assert_eq!(queued, shared.stats.accepted());
        assert_eq!(shared.stats.received(), 100);
        assert_eq!(shared.stats.dropped(DropReason::QueueFull), 100 - queued);
        while shared.pop().is_some() {}
        assert_eq!(shared.stats.queued_bytes(), 0);
    }

    #[test]
    fn entry_bound_is_exact() {
        let shared = Shared::new(3, usize::MAX / 2);
        for _ in 0..10 {
            shared.enqueue(b"{}".to_vec());
        }
        assert_eq!(shared.stats.accepted(), 3);
        assert_eq!(shared.stats.dropped(DropReason::QueueFull), 7);
        assert!(shared.obviously_full());
    }

    #[test]
    fn a_wake_up_is_not_lost_when_the_unpark_token_is() {
        // No thread to unpark: only the flag carries the wake-up, as when a library
        // consumed the unpark token while the sender was busy.
        let shared = Shared::new(8, 1 << 20);
        shared.wake();
        let started = Instant::now();
        shared.sleep(Duration::from_mins(10));
        assert!(started.elapsed() < Duration::from_mins(10));
    }

    #[test]
    fn discarding_completes_flushes() {
        let shared = Shared::new(8, 1 << 20);
        shared.enqueue(b"{}".to_vec());
        let signal = Arc::new(FlushSignal::default());
        assert!(shared.queue.push(Item::Flush(signal.clone())).is_ok());
        assert_eq!(shared.discard_queue(), 1);
        assert!(signal.wait_until(Instant::now(), || false));
        assert_eq!(shared.stats.dropped(DropReason::Shutdown), 1);
    }
}
