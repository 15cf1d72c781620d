//! The Datadog logs backend: ships log records to the Datadog Logs HTTP intake
//! (`POST https://http-intake.logs.<site>/api/v2/logs`), batched, gzipped and retried, without
//! ever slowing the application down.
//!
//! - **On the caller's thread** a record is formatted into one JSON entry (in a recycled
//!   buffer) and pushed into a bounded lock-free queue — nothing else: no lock, no I/O. The
//!   queue is bounded in entries *and* in bytes; when it is full the entry is dropped and
//!   counted (`vigil.log.dropped{backend="datadog",reason="queue_full"}`), so memory stays
//!   bounded whatever the intake does.
//! - **A sender thread** collects entries into batches within the intake's documented limits
//!   (at most [`MAX_BATCH_ENTRIES`] entries and [`MAX_PAYLOAD_BYTES`] uncompressed), about
//!   once per flush interval or as soon as a batch is full, and posts them gzipped with the
//!   `DD-API-KEY` header. It holds at most one batch at a time.
//! - **Delivery**: 408, 429, 5xx, timeouts and connection or I/O errors are retried with
//!   capped exponential backoff and jitter, honouring `Retry-After` (seconds); 413 splits the
//!   batch in halves (a single entry still refused is dropped); 400 drops the batch; 401/403
//!   report a configuration error naming `DATADOG_API_KEY` (never its value) and drop. Each
//!   kind of failure is reported once (target `vigil::datadog`) until a delivery succeeds
//!   again, and everything dropped is counted: see [`DatadogStats`] and [`DropReason`].
//! - [`LogBackend::flush`] waits until everything logged before it is delivered or dropped
//!   (at most the flush timeout); [`DatadogLogBackend::shutdown`] does the same and stops the
//!   thread.
//! - Records logged on the sender thread itself — its reports, and the HTTP and TLS
//!   libraries' own logs — are not queued for Datadog (they reach the other backends, such as
//!   the console): a report about a failing intake can never feed more requests to it.
//!
//! The HTTP client is `ureq` with rustls (the `ring` provider) and Mozilla's root
//! certificates; plain `http://` URLs work too (a local forwarding proxy, a test intake). It
//! honours the usual proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
//!
//! # Entries
//!
//! Each record becomes one JSON object with `message`, `status` (`debug`, `info`, `warning`,
//! `error`; `trace` is sent as `debug`), `timestamp` (milliseconds since the Unix epoch),
//! `service` and `hostname` (from the record's [`Resource`](vigil_core::Resource)),
//! `ddsource` (default `rust`), `ddtags` (`env:<environment>,version:<version>` and the
//! configured tags), `logger.name` (the record's target), and every field of the record as
//! an attribute. A field whose name is one of [`RESERVED_ATTRIBUTES`] or starts with `dd.` is
//! sent as `fields.<name>`, so it cannot overwrite them. When the record carries trace ids,
//! `dd.trace_id` (the low 64 bits of the trace id) and `dd.span_id` are added as decimal
//! strings, the form Datadog's log/trace correlation expects (a string, because JSON
//! readers lose precision on integers above 2^53).
//!
//! An entry larger than [`MAX_ENTRY_BYTES`] is cut to fit: the message (and, if they alone
//! are too large, the fields) is cut on a character boundary, and the entry gains
//! `"vigil.truncated": true` ([`TRUNCATED_ATTRIBUTE`]) and `"vigil.original_size": <bytes>`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use tracing_subscriber::prelude::*;
//! use vigil_core::{LogLayer, Resource, Secret};
//! use vigil_log_datadog::DatadogLogBackend;
//!
//! # fn main() -> Result<(), vigil_log_datadog::Error> {
//! let datadog = Arc::new(
//!     DatadogLogBackend::builder(Secret::new("0123456789abcdef0123456789abcdef"))
//!         .site("datadoghq.eu")
//!         .tags(["team:payments"])
//!         # .url("http://127.0.0.1:9/api/v2/logs")
//!         .build()?,
//! );
//! let subscriber = tracing_subscriber::registry()
//!     .with(LogLayer::new(Resource::new("checkout", "production")).with_backend(datadog.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(order_id = 42, "order placed");
//! });
//! // Deliver what is queued and stop the sender thread (dropping the backend does the same).
//! datadog.shutdown(Instant::now() + Duration::from_millis(100));
//! # Ok(())
//! # }
//! ```

mod builder;
pub mod catalogue;
mod entry;
mod error;
mod queue;
mod sender;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_core::{Level, LogBackend, Record, Secret};

pub use builder::DatadogLogBuilder;
pub use entry::{ORIGINAL_SIZE_ATTRIBUTE, RESERVED_ATTRIBUTES, status};
pub use error::Error;
pub use queue::{DatadogStats, DropReason};
pub use sender::REPORT_TARGET;

use entry::EntryFormat;
use queue::Shared;

/// At most this many entries per request (the intake's documented limit).
pub const MAX_BATCH_ENTRIES: usize = 1000;
/// At most this many bytes per request body, uncompressed (the intake's 5 MB, read as
/// decimal megabytes to be safe).
pub const MAX_PAYLOAD_BYTES: usize = 5_000_000;
/// At most this many bytes per entry (the intake's 1 MB per log, read as decimal
/// megabytes); larger entries are cut and marked with [`TRUNCATED_ATTRIBUTE`].
pub const MAX_ENTRY_BYTES: usize = 1_000_000;
/// The attribute (`true`) that marks an entry cut to [`MAX_ENTRY_BYTES`].
pub const TRUNCATED_ATTRIBUTE: &str = "vigil.truncated";

/// A [`LogBackend`] that ships records to the Datadog logs intake. Build one with
/// [`DatadogLogBackend::builder`]; see the [crate docs](crate) for what it sends and how.
pub struct DatadogLogBackend {
    shared: Arc<Shared>,
    format: EntryFormat,
    url: String,
    min_level: Level,
    flush_timeout: Duration,
    handle: Mutex<Option<JoinHandle<()>>>,
    shutdown_ok: Mutex<Option<bool>>,
}

impl std::fmt::Debug for DatadogLogBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatadogLogBackend")
            .field("url", &self.url)
            .field("api_key", &"<redacted>")
            .field("queued", &self.shared.queue.len())
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

impl DatadogLogBackend {
    /// A builder with the defaults: site `datadoghq.com`, source `rust`, 10,000 queued
    /// entries and at most 32 MiB of them, a flush every second, a 10 s request timeout,
    /// backoff from 200 ms to 30 s, a 5 s flush timeout.
    pub fn builder(api_key: Secret) -> DatadogLogBuilder {
        DatadogLogBuilder::new(api_key)
    }

    /// The intake URL entries are posted to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The exact counters: delivered, dropped by reason, retries, requests, queued bytes.
    pub fn stats(&self) -> &DatadogStats {
        &self.shared.stats
    }

    /// Formats `record` as the JSON entry this backend would send, into `out`; returns
    /// whether it had to be cut to [`MAX_ENTRY_BYTES`].
    pub fn format_record(&self, record: &Record<'_>, out: &mut Vec<u8>) -> bool {
        entry::write_entry(out, record, &self.format)
    }

    /// Waits until every record logged before this call is delivered or dropped, or until
    /// `deadline`. Returns `true` if that happened in time.
    ///
    /// On the sender thread itself (from inside a report) it returns `false` at once.
    pub fn flush_until(&self, deadline: Instant) -> bool {
        if sender::on_sender_thread() {
            return false;
        }
        if self.sender_gone() {
            return self.shared.queue.is_empty();
        }
        let signal = Arc::new(queue::FlushSignal::default());
        let mut item = queue::Item::Flush(signal.clone());
        loop {
            match self.shared.queue.push(item) {
                Ok(()) => break,
                Err(back) => {
                    if Instant::now() >= deadline || self.sender_gone() {
                        return false;
                    }
                    item = back;
                    self.shared.wake();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        self.shared.wake();
        let done = signal.wait_until(deadline, || self.sender_gone());
        self.shared.publish_metrics();
        done
    }

    /// Delivers everything queued and stops the sender thread, giving up at `deadline`:
    /// whatever is still queued then is dropped (counted as [`DropReason::Shutdown`]).
    /// Records logged after this call are dropped the same way.
    ///
    /// Returns `true` if the thread stopped in time and nothing was dropped by the shutdown.
    /// Calling it again returns the first call's result.
    pub fn shutdown(&self, deadline: Instant) -> bool {
        let mut handle = self.handle.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(thread) = handle.take() else {
            return self
                .shutdown_ok
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or(false);
        };
        let dropped_before = self.shared.stats.dropped(DropReason::Shutdown);
        self.shared.stop(deadline);
        // The sender clips its last request to the deadline; allow it a moment to return.
        let give_up = deadline + Duration::from_millis(200);
        while !thread.is_finished() && Instant::now() < give_up {
            self.shared.wake();
            std::thread::sleep(Duration::from_millis(2));
        }
        let stopped = thread.is_finished();
        if stopped {
            let _ = thread.join();
        }
        // Nobody completes a flush from now on: flushes return at once.
        self.shared.mark_sender_gone();
        // Records that raced with the shutdown, or that a stuck sender did not reach.
        self.shared.discard_queue();
        self.shared.publish_metrics();
        let ok = stopped && self.shared.stats.dropped(DropReason::Shutdown) == dropped_before;
        *self.shutdown_ok.lock().unwrap_or_else(PoisonError::into_inner) = Some(ok);
        ok
    }

    /// Whether the sender thread is no longer running (or `shutdown` gave up on it).
    ///
    /// Lock-free on purpose: a flush calls it while it holds its signal's lock, and
    /// `shutdown` completes that signal while it holds the thread's handle.
    fn sender_gone(&self) -> bool {
        self.shared.sender_gone()
    }
}

impl LogBackend for DatadogLogBackend {
    fn log(&self, record: &Record<'_>) {
        let shared = &*self.shared;
        if sender::on_sender_thread() {
            shared.count_own_skipped();
            return;
        }
        if shared.closed.load(Ordering::Relaxed) {
            shared.drop_before_queue(DropReason::Shutdown);
            return;
        }
        if shared.obviously_full() {
            shared.drop_before_queue(DropReason::QueueFull);
            return;
        }
        let mut entry = shared.buffer();
        if entry::write_entry(&mut entry, record, &self.format) {
            shared.count_truncated();
        }
        shared.enqueue(entry);
    }

    /// Waits until everything logged before is delivered or dropped, at most the flush
    /// timeout.
    fn flush(&self) {
        self.flush_until(Instant::now() + self.flush_timeout);
    }

    fn min_level(&self) -> Level {
        self.min_level
    }
}

impl Drop for DatadogLogBackend {
    fn drop(&mut self) {
        self.shutdown(Instant::now() + self.flush_timeout);
    }
}
