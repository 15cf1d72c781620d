//! [`SqlxQueryLayer`]: query metrics and slow-query warnings from sqlx's own query events.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing::dispatcher::WeakDispatch;
use tracing_core::field::{Field, Visit};
use tracing_core::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use vigil_core::catalogue::VIGIL_LOG_DROPPED;
use vigil_core::handles::{self, Update};

use crate::catalogue::DATABASE_QUERY_SLOW;
use crate::pool::PoolObserver;
use crate::sql::{DEFAULT_STATEMENT_LEN, Operation, classify, normalize};
use crate::timer::record_query;

/// The target of sqlx's per-query events.
pub const SQLX_QUERY_TARGET: &str = "sqlx::query";
/// The target of sqlx's pool-acquire events.
pub const SQLX_ACQUIRE_TARGET: &str = "sqlx::pool::acquire";
/// The target of this crate's slow-query warnings.
pub const SLOW_QUERY_TARGET: &str = "vigil::db";
/// The default slow-query threshold: 100 ms.
pub const DEFAULT_SLOW_THRESHOLD: Duration = Duration::from_millis(100);

/// Slow-query warnings waiting to be written; more are dropped (and counted).
const SLOW_QUEUE: usize = 256;

/// A `tracing_subscriber` layer that turns sqlx's own query events into query metrics, with
/// no per-query code: every query sqlx runs records `database.query.count` and
/// `database.query.duration` (ms), tagged `source` (the main table) and `operation`
/// (`select`, `insert`, ...; see [`classify`](crate::classify)).
///
/// A query slower than the threshold (default 100 ms, [`slow_threshold`](Self::slow_threshold))
/// also counts in `database.query.slow` and is logged at warn level, target `vigil::db`, with
/// the [normalised](crate::normalize) statement (literals replaced by `?`, cut to 1024 bytes;
/// bind values are never in it), `source`, `operation` and `duration_ms`.
///
/// With [`PoolOptions::acquire_time_level`] switched on, sqlx's pool-acquire events also
/// record `database.pool.acquire.duration`, tagged `pool` ([`pool_name`](Self::pool_name)).
///
/// # What you must switch on
///
/// - **The layer must see `sqlx::query` events at DEBUG** (sqlx logs each query at DEBUG, slow
///   ones at WARN) even when the console logs at INFO. Add it with its own per-layer filter,
///   [`filtered`](Self::filtered) (that is `with_filter(SqlxQueryLayer::filter())`), and give
///   the other layers per-layer filters too: a *global* level filter (a `LevelFilter` or
///   `EnvFilter` added as a layer of its own, `fmt().with_max_level(..)`, or tracing's
///   `max_level_*` / `release_max_level_*` features) below DEBUG hides the events from
///   every layer.
/// - **Keep sqlx's statement logging on**: `ConnectOptions::log_statements` and
///   `log_slow_statements` must not be `LevelFilter::Off` (sqlx's defaults, DEBUG and WARN,
///   are fine). A query whose level is off emits no event and is not measured. sqlx's own
///   slow-statement warning (after 1 s by default) carries the raw SQL with its literals; to
///   keep it out of the console while this layer still sees it, log it at DEBUG:
///   `log_slow_statements(LevelFilter::Debug, Duration::from_secs(1))`.
/// - For acquire times: `PoolOptions::acquire_time_level(LevelFilter::Debug)`.
///
/// # Limits
///
/// - sqlx emits the event when a query's result is dropped; the duration is sqlx's `elapsed`,
///   which includes the time the caller took to consume the rows of a streamed query.
/// - SQLite: `Transaction` begin, commit and rollback run without a query event in sqlx 0.9,
///   so they are not counted (explicit `sqlx::query("BEGIN")` statements are). SQLite's
///   events are emitted on the connection's worker thread, so they reach the *global*
///   subscriber and recorder only.
/// - Failed queries are counted like successful ones (the event carries no outcome).
/// - The slow-query warning is written from a background thread (a `tracing` event emitted
///   from inside another event's dispatch would be dropped or would disturb per-layer
///   filtering), so it may appear a moment after the query.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use vigil_db::SqlxQueryLayer;
///
/// let subscriber = tracing_subscriber::registry()
///     // .with(console_layer.with_filter(LevelFilter::INFO))  // per-layer, not global
///     .with(SqlxQueryLayer::new().slow_threshold(std::time::Duration::from_millis(250)).filtered());
/// # drop(subscriber);
/// ```
///
/// [`PoolOptions::acquire_time_level`]: https://docs.rs/sqlx/0.9/sqlx/pool/struct.PoolOptions.html#method.acquire_time_level
#[derive(Clone)]
pub struct SqlxQueryLayer {
    max_statement_len: usize,
    pool: PoolObserver,
    shared: Arc<Shared>,
}

/// What every clone of a layer shares.
struct Shared {
    slow_threshold_ns: AtomicU64,
    dispatch: OnceLock<WeakDispatch>,
    reporter: Mutex<Option<SyncSender<SlowQuery>>>,
    dropped: AtomicU64,
}

impl fmt::Debug for SqlxQueryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxQueryLayer")
            .field("slow_threshold", &self.slow_threshold_value())
            .field("max_statement_len", &self.max_statement_len)
            .field("pool", &self.pool.name())
            .finish_non_exhaustive()
    }
}

impl Default for SqlxQueryLayer {
    fn default() -> Self {
        Self::new()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl SqlxQueryLayer {
    /// A layer with a 100 ms slow-query threshold, statements cut to 1024 bytes in warnings,
    /// and acquire times tagged `pool="default"`.
    pub fn new() -> Self {
        SqlxQueryLayer {
            max_statement_len: DEFAULT_STATEMENT_LEN,
            pool: PoolObserver::new("default"),
            shared: Arc::new(Shared {
                slow_threshold_ns: AtomicU64::new(nanos(DEFAULT_SLOW_THRESHOLD)),
                dispatch: OnceLock::new(),
                reporter: Mutex::new(None),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Queries taking at least `threshold` are slow: counted in `database.query.slow` and
    /// logged. `Duration::MAX` turns the warnings off.
    #[must_use]
    pub fn slow_threshold(self, threshold: Duration) -> Self {
        self.set_slow_threshold(threshold);
        self
    }

    /// Changes the slow-query threshold of this layer and every clone of it, while it runs.
    pub fn set_slow_threshold(&self, threshold: Duration) {
        self.shared.slow_threshold_ns.store(nanos(threshold), Ordering::Relaxed);
    }

    /// The slow-query threshold.
    pub fn slow_threshold_value(&self) -> Duration {
        Duration::from_nanos(self.shared.slow_threshold_ns.load(Ordering::Relaxed))
    }

    /// The longest statement text written in a slow-query warning, in bytes (default 1024).
    #[must_use]
    pub fn max_statement_len(mut self, max: usize) -> Self {
        self.max_statement_len = max;
        self
    }

    /// The `pool` label of acquire times read from sqlx's `sqlx::pool::acquire` events (default
    /// `default`). The events do not say which pool they come from, so with several pools
    /// they all share this label; time acquires with [`PoolObserver::acquire`] instead to
    /// tell pools apart.
    #[must_use]
    pub fn pool_name(mut self, name: &str) -> Self {
        self.pool = PoolObserver::new(name);
        self
    }

    /// Slow-query warnings dropped because the writer thread was behind (also counted in
    /// `vigil.log.dropped{backend="db_slow_query", reason="queue_full"}`).
    pub fn dropped_warnings(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The per-layer filter this layer needs: `sqlx::query` and `sqlx::pool::acquire` at
    /// DEBUG and above, nothing else.
    pub fn filter() -> Targets {
        Targets::new()
            .with_target(SQLX_QUERY_TARGET, Level::DEBUG)
            .with_target(SQLX_ACQUIRE_TARGET, Level::DEBUG)
    }

    /// This layer with [its filter](Self::filter) as a per-layer filter: what to add to a
    /// subscriber.
    pub fn filtered<S>(self) -> Filtered<Self, Targets, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with_filter(Self::filter())
    }

    fn on_query(&self, event: &Event<'_>) {
        SCRATCH.with(|cell| {
            let mut guard = cell.try_borrow_mut().ok();
            let mut fallback = Scratch::default();
            let scratch = guard.as_deref_mut().unwrap_or(&mut fallback);
            scratch.statement.clear();
            scratch.summary.clear();
            let mut fields = QueryFields {
                scratch,
                elapsed_secs: None,
                elapsed: None,
            };
            event.record(&mut fields);
            let Some(elapsed) = fields
                .elapsed_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .or(fields.elapsed)
            else {
                return;
            };
            let sql = if scratch.statement.trim().is_empty() {
                scratch.summary.as_str()
            } else {
                scratch.statement.as_str()
            };
            let classified = classify(sql);
            let slow = nanos(elapsed) >= self.shared.slow_threshold_ns.load(Ordering::Relaxed);
            let source = classified.source_label();
            if slow {
                record_query(
                    source,
                    classified.operation,
                    elapsed,
                    Some(Update::Increment(DATABASE_QUERY_SLOW.name, 1)),
                );
                self.report_slow(SlowQuery {
                    statement: normalize(sql, self.max_statement_len),
                    source: source.to_owned(),
                    operation: classified.operation,
                    duration_ms: elapsed.as_secs_f64() * 1000.0,
                });
            } else {
                record_query(source, classified.operation, elapsed, None);
            }
        });
    }

    fn on_acquire(&self, event: &Event<'_>) {
        let mut fields = AcquireFields(None);
        event.record(&mut fields);
        if let Some(secs) = fields.0.filter(|s| s.is_finite() && *s >= 0.0) {
            self.pool.record_acquire(Duration::from_secs_f64(secs.min(1e9)));
        }
    }

    fn report_slow(&self, query: SlowQuery) {
        let mut reporter = self.shared.reporter.lock().unwrap_or_else(PoisonError::into_inner);
        if reporter.is_none() {
            *reporter = spawn_reporter(self.shared.dispatch.get().cloned());
        }
        let Some(sender) = reporter.as_ref() else {
            self.count_dropped("writer_unavailable");
            return;
        };
        match sender.try_send(query) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.count_dropped("queue_full"),
            Err(TrySendError::Disconnected(_)) => {
                *reporter = None;
                self.count_dropped("writer_unavailable");
            }
        }
    }

    fn count_dropped(&self, reason: &str) {
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        handles::increment(
            VIGIL_LOG_DROPPED.name,
            1,
            &[("backend", "db_slow_query"), ("reason", reason)],
        );
    }
}

/// One slow query, on its way to the writer thread.
struct SlowQuery {
    statement: String,
    source: String,
    operation: Operation,
    duration_ms: f64,
}

/// Starts the thread that writes slow-query warnings, outside any event's dispatch, into
/// `dispatch` (the subscriber the layer belongs to) or, without one, the default.
fn spawn_reporter(dispatch: Option<WeakDispatch>) -> Option<SyncSender<SlowQuery>> {
    let (sender, receiver) = mpsc::sync_channel::<SlowQuery>(SLOW_QUEUE);
    std::thread::Builder::new()
        .name("vigil-db-slow-query".to_owned())
        .spawn(move || {
            // Ends when every clone of the layer is gone (the senders are dropped).
            for q in receiver {
                let emit = || {
                    tracing::warn!(
                        target: "vigil::db",
                        source = q.source.as_str(),
                        operation = q.operation.as_str(),
                        duration_ms = q.duration_ms,
                        statement = q.statement.as_str(),
                        "slow query"
                    );
                };
                match dispatch.as_ref().and_then(WeakDispatch::upgrade) {
                    Some(d) => tracing::dispatcher::with_default(&d, emit),
                    None => emit(),
                }
            }
        })
        .ok()?;
    Some(sender)
}

impl<S: Subscriber> Layer<S> for SqlxQueryLayer {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.shared.dispatch.set(subscriber.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        match event.metadata().target() {
            SQLX_QUERY_TARGET => self.on_query(event),
            SQLX_ACQUIRE_TARGET => self.on_acquire(event),
            _ => {}
        }
    }
}

/// Per-thread buffers for the statement text, reused from event to event.
#[derive(Default)]
struct Scratch {
    statement: String,
    summary: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Reads the fields of sqlx 0.9's query event (sqlx-core `logger.rs`): `summary`,
/// `db.statement` (empty when `summary` holds the whole statement), `rows_affected`,
/// `rows_returned`, `elapsed` (a `Duration`, as Debug) and `elapsed_secs` (f64).
struct QueryFields<'a> {
    scratch: &'a mut Scratch,
    elapsed_secs: Option<f64>,
    elapsed: Option<Duration>,
}

impl Visit for QueryFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "db.statement" => self.scratch.statement.push_str(value),
            "summary" => self.scratch.summary.push_str(value),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "elapsed" => {
                let mut buf = SmallBuf::default();
                if write!(buf, "{value:?}").is_ok() {
                    self.elapsed = parse_debug_duration(buf.as_str());
                }
            }
            "db.statement" => {
                let _ = write!(self.scratch.statement, "{value:?}");
            }
            "summary" => {
                let _ = write!(self.scratch.summary, "{value:?}");
            }
            _ => {}
        }
    }
}

struct AcquireFields(Option<f64>);

impl Visit for AcquireFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "acquired_after_secs" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

/// A 32-byte stack buffer for formatting a `Duration`; longer output is an error.
#[derive(Default)]
struct SmallBuf {
    bytes: [u8; 32],
    len: usize,
}

impl SmallBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for SmallBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Parses `Duration`'s Debug output: `12ns`, `1.5µs`, `3.25ms`, `2s`.
fn parse_debug_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "ns" => 1e-9,
        "µs" | "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * scale).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debug_durations() {
        for d in [
            Duration::from_nanos(17),
            Duration::from_micros(1500),
            Duration::from_millis(3250),
            Duration::from_secs(2),
            Duration::from_nanos(1_234_567),
        ] {
            let parsed = parse_debug_duration(&format!("{d:?}")).unwrap();
            assert!(parsed.abs_diff(d) < Duration::from_micros(1), "{d:?} -> {parsed:?}");
        }
        assert_eq!(parse_debug_duration("soon"), None);
        assert_eq!(parse_debug_duration("5 days"), None);
    }
}
