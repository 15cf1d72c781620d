//! [`DatadogTraceLayer`]: tracing spans (and sqlx query events) as Datadog APM spans.

use std::fmt::{self, Write as _};
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use vigil_core::trace::{self, TraceIds};

use crate::clock::Clock;
use crate::fields::{Fields, FieldsVisitor, Value};
use crate::sender::{TraceSender, TraceStats};
use crate::wire::{Chunk, FinishedSpan, Kind};
use crate::{DatadogTraceLayerBuilder, ids};

/// The target of sqlx's per-query events.
pub const SQLX_QUERY_TARGET: &str = "sqlx::query";

/// Datadog's `AUTO_KEEP` sampling priority: what a trace started here gets.
pub const AUTO_KEEP: i8 = 1;

/// Spans of one trace gathered before they are sent as a chunk even though the trace is not
/// finished (Datadog's partial flush), so a long-lived root does not hold them all.
pub const PARTIAL_FLUSH_SPANS: usize = 1000;

/// A `tracing_subscriber` layer that turns spans into Datadog APM spans and sends each trace
/// to the Datadog agent when its local root span closes.
///
/// - **Parents** come from the span registry, so a span entered in another task or thread
///   (`.instrument(span)`, `span.in_scope`) keeps its parent. A span with no local parent
///   starts a trace, or continues the caller's when it was created inside
///   [`vigil_core::trace::with_remote_parent`] (the caller's sampling priority is kept).
/// - **Ids**: random 64-bit span ids; 128-bit trace ids as Datadog makes them (upper half =
///   32-bit unix seconds and 32 zero bits), the upper half sent as `_dd.p.tid`. Every span
///   gets a [`TraceIds`] in its extensions, which [`vigil_core::LogLayer`] copies into each
///   log record and [`vigil_core::trace::current`] returns.
/// - **HTTP**: vigil-http's request span (target `vigil::http`, name `request`) becomes
///   `http.request`, type `web`, resource `METHOD /route`, with `http.method`, `http.route`,
///   `http.status_code` (from a recorded `status`), `http.request_id`, `span.kind=server`;
///   a status of 500 or more marks it as an error.
/// - **Database**: each `sqlx::query` event becomes a finished child span of the event's
///   span: `sqlx.query`, type `sql`, resource the statement [normalised](vigil_db::normalize)
///   (literals replaced by `?`), `span.kind=client`, `db.operation`, `db.sql.table`,
///   `db.system` when [configured](DatadogTraceLayerBuilder::db_system), and rows as
///   metrics. It starts `elapsed` before the event.
/// - **Any other span**: name and resource are the span's name (a `resource` or `otel.name`
///   field overrides the resource, `span.type` sets the type); text and boolean fields
///   become meta, numbers metrics.
/// - **Errors**: an ERROR event inside a span, or an `error` field, sets `error: 1` and
///   `error.message` (the event's message or the field's text) and `error.type` (from an
///   `error.type` or `error.kind` field of the event).
/// - `service`, `env` and `version` come from the [`vigil_core::Resource`]; local roots carry
///   `_dd.top_level`, and each chunk's first span `_sampling_priority_v1` and `_dd.p.tid`.
///
/// # What the layer must see
///
/// sqlx logs each query at DEBUG. Add the layer with its own per-layer filter,
/// [`filtered`](Self::filtered) (spans and events at INFO and above, `sqlx::query` at
/// DEBUG), and give other layers per-layer filters too: a *global* level filter below DEBUG
/// (a `LevelFilter` layer, `EnvFilter` as a layer of its own, tracing's `max_level_*`
/// features) hides sqlx's events from every layer. Alternatively keep one global filter that
/// lets `sqlx::query=debug` through (as `vigil::init` does) and add this layer unfiltered:
/// it ignores every event that is neither a query nor an error.
///
/// Keep sqlx's statement logging on (`ConnectOptions::log_statements` not `Off`). SQLite's
/// driver emits the event on its worker thread, inside the caller's span: that thread uses
/// the *global* default subscriber, so the query spans appear only when the subscriber is
/// installed globally (as it is in an application).
///
/// # Limits
///
/// - tracing-subscriber's registry closes a span only after all its children: a child that
///   outlives its parent (a span moved into a detached task) keeps the parent, and so the
///   trace, open, and the parent's duration runs until then. Spans finished meanwhile go
///   out in partial chunks of [`PARTIAL_FLUSH_SPANS`].
/// - Every trace started here is kept (`AUTO_KEEP`); the agent's `rate_by_service` answer is
///   not applied, so there is no client-side sampling. A caller's decision is kept.
///
/// # Cost on the caller's thread
///
/// Creating a span: a registry lookup of the parent, one random number, one clock read, its
/// fields recorded compactly (all text in one string) and two extension entries. Closing
/// it: one lock of *its own trace's* buffer (never a global lock) and a push; the local
/// root's close moves the chunk to a lock-free bounded queue. No I/O: the
/// [`TraceSender`]'s thread maps and encodes the spans and talks to the agent.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tracing_subscriber::prelude::*;
/// use vigil_core::Resource;
/// use vigil_trace_datadog::DatadogTraceLayer;
///
/// let layer = DatadogTraceLayer::builder(Resource::new("api", "test"))
///     .agent("127.0.0.1", 9) // normally nothing listens there: the trace is dropped, and counted
///     .max_retries(0)
///     .build()?;
/// let sender = layer.sender().clone();
/// let subscriber = tracing_subscriber::registry().with(layer.filtered());
/// tracing::subscriber::with_default(subscriber, || {
///     let _request = tracing::info_span!("checkout", cart_items = 3).entered();
///     let ids = vigil_core::trace::current().expect("the span has trace ids");
///     assert_ne!(ids.span_id, 0);
/// });
/// sender.shutdown(Instant::now() + Duration::from_secs(5));
/// let stats = sender.stats();
/// assert_eq!(stats.sent_traces + stats.dropped_traces, 1, "delivered or counted, never lost");
/// # Ok::<(), vigil_trace_datadog::Error>(())
/// ```
#[derive(Clone)]
pub struct DatadogTraceLayer {
    inner: Arc<Inner>,
}

struct Inner {
    sender: TraceSender,
    max_trace_spans: usize,
    clock: Arc<Clock>,
}

impl fmt::Debug for DatadogTraceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatadogTraceLayer")
            .field("max_trace_spans", &self.inner.max_trace_spans)
            .field("sender", &self.inner.sender)
            .finish()
    }
}

impl DatadogTraceLayer {
    /// A builder for a layer whose spans carry `resource`'s service, environment and version.
    pub fn builder(resource: vigil_core::Resource) -> DatadogTraceLayerBuilder {
        DatadogTraceLayerBuilder::new(resource)
    }

    pub(crate) fn from_parts(sender: TraceSender, max_trace_spans: usize, clock: Arc<Clock>) -> Self {
        DatadogTraceLayer {
            inner: Arc::new(Inner {
                sender,
                max_trace_spans: max_trace_spans.max(1),
                clock,
            }),
        }
    }

    /// The id of a new trace started at `unix_nanos`.
    fn new_trace_id(unix_nanos: i64) -> u128 {
        ids::trace_id(u64::try_from(unix_nanos / 1_000_000_000).unwrap_or(0))
    }

    /// The per-layer filter this layer needs: spans and events at INFO and above, and
    /// sqlx's query events at DEBUG.
    pub fn filter() -> Targets {
        Targets::new()
            .with_default(Level::INFO)
            .with_target(SQLX_QUERY_TARGET, Level::DEBUG)
    }

    /// This layer with [its filter](Self::filter) as a per-layer filter: what to add to a
    /// subscriber.
    pub fn filtered<S>(self) -> Filtered<Self, Targets, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with_filter(Self::filter())
    }

    /// The sender: flush, shut down, read the counters.
    pub fn sender(&self) -> &TraceSender {
        &self.inner.sender
    }

    /// Shorthand for [`TraceSender::flush_until`].
    pub fn flush_until(&self, deadline: Instant) -> bool {
        self.inner.sender.flush_until(deadline)
    }

    /// Shorthand for [`TraceSender::shutdown`].
    pub fn shutdown(&self, deadline: Instant) -> bool {
        self.inner.sender.shutdown(deadline)
    }

    /// Shorthand for [`TraceSender::stats`].
    pub fn stats(&self) -> TraceStats {
        self.inner.sender.stats()
    }

    fn finish(&self, trace: &TraceBuffer, span: FinishedSpan, closes_open: bool) {
        let local_root = span.local_root;
        let mut over_cap = false;
        let chunk = {
            let mut state = trace.state.lock().unwrap_or_else(PoisonError::into_inner);
            // One place is kept for the local root, whatever closes before it.
            if local_root || state.kept + usize::from(!state.root_closed) < self.inner.max_trace_spans {
                state.kept += 1;
                state.spans.push(span);
            } else {
                over_cap = true;
            }
            let open = if closes_open {
                trace.open.fetch_sub(1, Ordering::AcqRel).saturating_sub(1)
            } else {
                trace.open.load(Ordering::Acquire)
            };
            state.root_closed |= local_root;
            let send = local_root || (state.root_closed && open == 0) || state.spans.len() >= PARTIAL_FLUSH_SPANS;
            (send && !state.spans.is_empty()).then(|| mem::take(&mut state.spans))
        };
        if over_cap {
            self.inner.sender.count_spans_over_cap(1);
        }
        if let Some(spans) = chunk {
            self.inner.sender.enqueue(Chunk {
                trace_id: trace.trace_id,
                priority: trace.priority,
                spans,
            });
        }
    }

    fn on_query<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let now = self.inner.clock.unix_nanos(Instant::now());
        let mut fields = Fields::default();
        let mut visitor = QueryVisitor {
            fields: &mut fields,
            elapsed: None,
        };
        event.record(&mut visitor);
        let elapsed = visitor.elapsed.unwrap_or_default();
        let start = now.saturating_sub(nanos(elapsed));
        let parent = ctx.event_span(event).and_then(|span| {
            let ext = span.extensions();
            ext.get::<SpanState>().map(|s| (s.ids.span_id, s.trace.clone()))
        });
        let (trace, parent_id, local_root) = match parent {
            Some((parent_id, trace)) => (trace, parent_id, false),
            None => (Arc::new(TraceBuffer::new(Self::new_trace_id(now), AUTO_KEEP)), 0, true),
        };
        let span = FinishedSpan {
            metadata: event.metadata(),
            kind: Kind::SqlxQuery,
            span_id: ids::span_id(),
            parent_id,
            start,
            duration: nanos(elapsed),
            local_root,
            error: false,
            fields,
        };
        self.finish(&trace, span, false);
    }
}

/// What the layer keeps in a span's extensions while it is open.
struct SpanState {
    ids: TraceIds,
    parent_id: u64,
    start_unix: i64,
    start: Instant,
    local_root: bool,
    error: bool,
    fields: Fields,
    trace: Arc<TraceBuffer>,
}

/// The spans of one local trace, shared by its open spans: one lock per trace.
struct TraceBuffer {
    trace_id: u128,
    priority: i8,
    /// Spans created and not yet closed.
    open: AtomicUsize,
    state: Mutex<TraceState>,
}

#[derive(Default)]
struct TraceState {
    spans: Vec<FinishedSpan>,
    /// Spans kept so far, for the per-trace cap.
    kept: usize,
    root_closed: bool,
}

impl TraceBuffer {
    fn new(trace_id: u128, priority: i8) -> Self {
        TraceBuffer {
            trace_id,
            priority,
            open: AtomicUsize::new(0),
            state: Mutex::new(TraceState::default()),
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl<S> Layer<S> for DatadogTraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().as_ref().and_then(|p: &SpanRef<'_, S>| {
            let ext = p.extensions();
            ext.get::<SpanState>().map(|s| (s.ids.span_id, s.trace.clone()))
        });
        let start = Instant::now();
        let start_unix = self.inner.clock.unix_nanos(start);
        let (trace, parent_id, local_root) = if let Some((parent_id, trace)) = parent {
            (trace, parent_id, false)
        } else {
            // A local root: it continues the caller's trace when the HTTP layer offered one.
            let (trace_id, parent_id, priority) = match trace::take_remote_parent() {
                Some(r) if r.trace_id != 0 && r.span_id != 0 => {
                    (r.trace_id, r.span_id, r.sampling_priority.unwrap_or(AUTO_KEEP))
                }
                _ => (Self::new_trace_id(start_unix), 0, AUTO_KEEP),
            };
            (Arc::new(TraceBuffer::new(trace_id, priority)), parent_id, true)
        };
        trace.open.fetch_add(1, Ordering::AcqRel);
        let mut fields = Fields::default();
        attrs.record(&mut FieldsVisitor(&mut fields));
        let ids = TraceIds {
            trace_id: trace.trace_id,
            span_id: ids::span_id(),
        };
        let state = SpanState {
            ids,
            parent_id,
            start_unix,
            start,
            local_root,
            error: false,
            fields,
            trace,
        };
        let mut ext = span.extensions_mut();
        // `replace`, not `insert`: a second tracer layer must not panic the application.
        ext.replace(ids);
        ext.replace(trace::SamplingPriority(state.trace.priority));
        ext.replace(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(state) = ext.get_mut::<SpanState>() {
            values.record(&mut FieldsVisitor(&mut state.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if metadata.target() == SQLX_QUERY_TARGET {
            self.on_query(event, &ctx);
            return;
        }
        if *metadata.level() != Level::ERROR {
            return;
        }
        let Some(span) = ctx.event_span(event) else { return };
        // Read the event before taking the span's extensions: recording runs the values' own
        // `Debug`/`Display` code, which may log, and another layer handling that event reads
        // the same span's extensions (a re-entrant lock: a deadlock).
        let mut found = ErrorFields::default();
        event.record(&mut found);
        let mut ext = span.extensions_mut();
        let Some(state) = ext.get_mut::<SpanState>() else {
            return;
        };
        state.error = true;
        if state.fields.get("error.message").is_some() {
            return;
        }
        let message = found
            .message
            .as_deref()
            .or(found.error.as_deref())
            .unwrap_or("error event");
        state.fields.set_str("error.message", message);
        if let Some(kind) = found.kind.as_deref() {
            state.fields.set_str_if_absent("error.type", kind);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        let finished = FinishedSpan {
            metadata: span.metadata(),
            kind: Kind::Span,
            span_id: state.ids.span_id,
            parent_id: state.parent_id,
            start: state.start_unix,
            duration: nanos(state.start.elapsed()),
            local_root: state.local_root,
            error: state.error,
            fields: state.fields,
        };
        self.finish(&state.trace, finished, true);
    }
}

/// Reads sqlx 0.9's query event (sqlx-core `logger.rs`): `summary`, `db.statement` (empty
/// when `summary` holds the whole statement), `rows_affected`, `rows_returned`,
/// `elapsed_secs` (f64) and `elapsed` (a `Duration`, as Debug: the fallback).
struct QueryVisitor<'a> {
    fields: &'a mut Fields,
    elapsed: Option<Duration>,
}

impl Visit for QueryVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if matches!(field.name(), "summary" | "db.statement") {
            self.fields.set_str(field.name(), value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if matches!(field.name(), "rows_affected" | "rows_returned") {
            self.fields.set(field.name(), Value::U64(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(v) = u64::try_from(value) {
            self.record_u64(field, v);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" && value.is_finite() && value >= 0.0 {
            self.elapsed = Duration::try_from_secs_f64(value).ok();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "summary" | "db.statement" => self.fields.set_fmt(field.name(), |t| write!(t, "{value:?}")),
            "elapsed" if self.elapsed.is_none() => {
                let mut buf = String::new();
                if write!(buf, "{value:?}").is_ok() {
                    self.elapsed = parse_debug_duration(&buf);
                }
            }
            _ => {}
        }
    }
}

/// The message, `error` and error type fields of an ERROR event.
#[derive(Default)]
struct ErrorFields {
    message: Option<String>,
    error: Option<String>,
    kind: Option<String>,
}

impl Visit for ErrorFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "error" | "error.message" => &mut self.error,
            "error.type" | "error.kind" | "exception.type" => &mut self.kind,
            _ => return,
        };
        let mut text = String::new();
        if write!(text, "{value:?}").is_ok() {
            *slot = Some(text);
        }
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
        ] {
            let parsed = parse_debug_duration(&format!("{d:?}")).unwrap();
            assert!(parsed.abs_diff(d) < Duration::from_micros(1), "{d:?} -> {parsed:?}");
        }
        assert_eq!(parse_debug_duration("soon"), None);
    }

    #[test]
    fn durations_saturate() {
        assert_eq!(nanos(Duration::MAX), i64::MAX);
    }
}
