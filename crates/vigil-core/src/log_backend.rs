//! The log backend trait and its test implementations.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Level, OwnedValue, Record};

/// Where log records go: the console, Datadog, a file, your own.
///
/// This is the seed's `Logger` behaviour (`log(level, message, metadata)` and `flush()`).
/// [`crate::LogLayer`] builds each [`Record`] once and calls `log` on every configured
/// backend, on the thread that emitted the event.
///
/// # Contract
///
/// - `log` must not block on I/O: format or copy what you need and queue it; send it from
///   another thread. When the queue is full, drop the record and count it.
/// - `flush` delivers everything queued so far (it may block); it is called by
///   `Logger::flush` and at shutdown.
/// - Do not log from inside `log`: `tracing` drops events emitted on a thread that is
///   already dispatching one, to prevent infinite recursion.
/// - A panic inside `log` is caught and counted ([`crate::LogLayer::backend_panics`]); the
///   other backends still receive the record.
///
/// # Example
///
/// ```
/// use std::sync::Mutex;
/// use vigil_core::{LogBackend, Record};
///
/// /// Keeps the last message, for illustration only.
/// struct LastMessage(Mutex<String>);
///
/// impl LogBackend for LastMessage {
///     fn log(&self, record: &Record<'_>) {
///         let mut last = self.0.lock().unwrap();
///         last.clear();
///         last.push_str(record.message);
///     }
///     fn flush(&self) {}
/// }
/// ```
pub trait LogBackend: Send + Sync + 'static {
    /// Takes one record. Must not block on I/O.
    fn log(&self, record: &Record<'_>);

    /// Delivers everything queued so far.
    fn flush(&self);

    /// The minimum level this backend wants; records below it are not passed to `log`.
    /// Defaults to everything the layer lets through.
    fn min_level(&self) -> Level {
        Level::Trace
    }
}

impl<T: LogBackend + ?Sized> LogBackend for std::sync::Arc<T> {
    fn log(&self, record: &Record<'_>) {
        (**self).log(record);
    }
    fn flush(&self) {
        (**self).flush();
    }
    fn min_level(&self) -> Level {
        (**self).min_level()
    }
}

/// A backend that discards everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopLogBackend;

impl LogBackend for NoopLogBackend {
    fn log(&self, _record: &Record<'_>) {}
    fn flush(&self) {}
}

/// A record as kept by [`MemoryLogBackend`].
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedRecord {
    /// The level.
    pub level: Level,
    /// The target.
    pub target: String,
    /// The message.
    pub message: String,
    /// All fields, as [`Record::for_each_field`] yields them (event fields, then span fields).
    pub fields: Vec<(String, OwnedValue)>,
    /// The service name from the resource.
    pub service: String,
    /// The trace ids, when a tracer was installed.
    pub trace: Option<crate::trace::TraceIds>,
}

impl CapturedRecord {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&OwnedValue> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// A backend that keeps every record in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryLogBackend {
    records: Mutex<Vec<CapturedRecord>>,
    flushes: AtomicU64,
}

impl MemoryLogBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record received so far.
    pub fn records(&self) -> Vec<CapturedRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Removes and returns every record received so far.
    pub fn take(&self) -> Vec<CapturedRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// How many times `flush` was called.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

impl LogBackend for MemoryLogBackend {
    fn log(&self, record: &Record<'_>) {
        let mut fields = Vec::new();
        record.for_each_field(|n, v| fields.push((n.to_owned(), OwnedValue::from(v))));
        let captured = CapturedRecord {
            level: record.level,
            target: record.target.to_owned(),
            message: record.message.to_owned(),
            fields,
            service: record.resource.service.clone(),
            trace: record.trace,
        };
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(captured);
    }

    fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }
}
