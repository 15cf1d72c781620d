//! The single `tracing` layer that turns every event into one [`Record`] and hands it to
//! every [`LogBackend`].

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use smallvec::SmallVec;
use tracing_core::field::{Field as TracingField, Visit};
use tracing_core::span::{Attributes, Id, Record as SpanRecord};
use tracing_core::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::record::{Field, SpanFields, Stored, Value};
use crate::trace::TraceIds;
use crate::{Level, LogBackend, Record, Resource};

/// The target of events written through the seed-style facade (`vigil::Logger`).
pub const FACADE_TARGET: &str = "vigil::logger";

/// The marker field of facade events; the layer replaces it with the facade's fields.
const FACADE_MARKER: &str = "vigil.fields";

/// Arena-held strings longer than this are cut when the scratch buffer is reused.
const SCRATCH_KEEP_CAPACITY: usize = 64 * 1024;

/// A `tracing_subscriber` layer that builds one [`Record`] per event — message, level,
/// target, event fields, the fields of every enclosing span, the [`Resource`] — and passes
/// it to every backend.
///
/// The record is built in a per-thread scratch buffer, so a log event allocates nothing
/// here; backends decide what to copy.
///
/// ```
/// use std::sync::Arc;
/// use tracing_subscriber::prelude::*;
/// use vigil_core::{LogLayer, MemoryLogBackend, Resource};
///
/// let memory = Arc::new(MemoryLogBackend::new());
/// let layer = LogLayer::new(Resource::new("api", "test")).with_backend(memory.clone());
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("request", request_id = "r-1");
///     let _entered = span.enter();
///     tracing::info!(user_id = 42, "User logged in");
/// });
/// let records = memory.records();
/// assert_eq!(records[0].message, "User logged in");
/// assert!(records[0].field("request_id").is_some());
/// ```
#[derive(Clone)]
pub struct LogLayer {
    min_level: Level,
    backends: Vec<Arc<dyn LogBackend>>,
    resource: Arc<Resource>,
    panics: Arc<AtomicU64>,
}

impl fmt::Debug for LogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer")
            .field("backends", &self.backends.len())
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl LogLayer {
    /// A layer with no backends yet, for `resource`.
    pub fn new(resource: Resource) -> Self {
        LogLayer {
            min_level: Level::Trace,
            backends: Vec::new(),
            resource: Arc::new(resource),
            panics: Arc::default(),
        }
    }

    /// Ignores events and spans below `level` itself. Use it when a global filter lets more
    /// through for another layer (`vigil::init` does, so that sqlx's DEBUG query events reach
    /// the database layer): a global filter is cheaper than a per-layer one.
    #[must_use]
    pub fn with_min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Adds a backend.
    #[must_use]
    pub fn with_backend(mut self, backend: Arc<dyn LogBackend>) -> Self {
        self.backends.push(backend);
        self
    }

    /// The backends, in the order records reach them.
    pub fn backends(&self) -> &[Arc<dyn LogBackend>] {
        &self.backends
    }

    /// The resource attached to every record.
    pub fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }

    /// How many times a backend panicked inside `log` (the panic is caught and the record
    /// skipped for that backend).
    pub fn backend_panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Calls `flush` on every backend.
    pub fn flush(&self) {
        for b in &self.backends {
            b.flush();
        }
    }

    fn dispatch(&self, record: &Record<'_>) {
        for backend in &self.backends {
            if record.level >= backend.min_level() && catch_unwind(AssertUnwindSafe(|| backend.log(record))).is_err() {
                self.panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if Level::from_tracing(*attrs.metadata().level()) < self.min_level {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = SpanVisitor(SpanFields::new(attrs.metadata().name()));
        attrs.record(&mut visitor);
        span.extensions_mut().insert(visitor.0);
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            let mut visitor = SpanVisitor(std::mem::take(fields));
            values.record(&mut visitor);
            *fields = visitor.0;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.backends.is_empty() || Level::from_tracing(*event.metadata().level()) < self.min_level {
            return;
        }
        let timestamp = SystemTime::now();
        // The span fields are borrowed, not copied: the spans' extensions stay read-locked while
        // the record is dispatched (a backend must not record on the spans it is handed).
        let scope: SmallVec<[_; 8]> = ctx.event_scope(event).into_iter().flatten().collect();
        let extensions: SmallVec<[_; 8]> = scope.iter().map(SpanRef::extensions).collect();
        let spans: SmallVec<[&SpanFields; 8]> = extensions.iter().filter_map(|e| e.get::<SpanFields>()).collect();
        let trace = extensions.iter().find_map(|e| e.get::<TraceIds>().copied());
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let level = Level::from_tracing(*metadata.level());
        let from_log = normalized.is_some();

        SCRATCH.with(|cell| {
            let mut fallback;
            let mut guard;
            let scratch: &mut Scratch = if let Ok(g) = cell.try_borrow_mut() {
                guard = g;
                &mut guard
            } else {
                fallback = Scratch::default();
                &mut fallback
            };
            scratch.clear();
            let mut visitor = EventVisitor {
                scratch,
                from_log,
                facade: None,
            };
            event.record(&mut visitor);
            let facade = visitor.facade.take();
            let scratch: &Scratch = scratch;
            let build = |facade_fields: Option<&FacadeFields>| {
                let mut fields: SmallVec<[Field<'_>; 16]> = SmallVec::new();
                fields.extend(scratch.fields());
                if let Some(f) = facade_fields {
                    fields.extend(f.fields());
                } else if let Some(rendered) = &facade {
                    // A facade call made while another facade record was being dispatched
                    // (from inside a backend): its fields arrive only rendered.
                    fields.push(Field {
                        name: "fields",
                        value: Value::Str(&scratch.arena[rendered.clone()]),
                    });
                }
                let record = Record {
                    timestamp,
                    level,
                    target: metadata.target(),
                    message: scratch.message(),
                    fields: &fields,
                    spans: &spans,
                    trace,
                    resource: &self.resource,
                };
                self.dispatch(&record);
            };
            if facade.is_some() {
                FACADE.with(|f| match f.try_borrow() {
                    Ok(f) if f.active.replace(false) => build(Some(&f)),
                    _ => build(None),
                });
            } else {
                build(None);
            }
        });
    }
}

fn push_str(arena: &mut String, s: &str) -> Range<usize> {
    let start = arena.len();
    arena.push_str(s);
    start..arena.len()
}

fn push_fmt(arena: &mut String, args: fmt::Arguments<'_>) -> Range<usize> {
    let start = arena.len();
    let _ = arena.write_fmt(args);
    start..arena.len()
}

/// Per-thread buffer an event's fields are collected into.
#[derive(Default)]
struct Scratch {
    arena: String,
    message: Range<usize>,
    fields: Vec<(&'static str, Stored)>,
}

impl Scratch {
    fn clear(&mut self) {
        if self.arena.capacity() > SCRATCH_KEEP_CAPACITY {
            self.arena = String::new();
        }
        self.arena.clear();
        self.message = 0..0;
        self.fields.clear();
    }

    fn message(&self) -> &str {
        &self.arena[self.message.clone()]
    }

    fn fields(&self) -> impl Iterator<Item = Field<'_>> {
        self.fields.iter().map(|(name, value)| Field {
            name,
            value: value.resolve(&self.arena),
        })
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    static FACADE: RefCell<FacadeFields> = RefCell::new(FacadeFields::default());
}

struct EventVisitor<'s> {
    scratch: &'s mut Scratch,
    from_log: bool,
    /// Set when the event comes from [`emit`]: the rendered fields, in the arena.
    facade: Option<Range<usize>>,
}

impl EventVisitor<'_> {
    fn keep(&self, field: &TracingField) -> bool {
        !(self.from_log && field.name().starts_with("log."))
    }

    fn push(&mut self, field: &TracingField, value: Stored) {
        self.scratch.fields.push((field.name(), value));
    }
}

impl Visit for EventVisitor<'_> {
    fn record_str(&mut self, field: &TracingField, value: &str) {
        if field.name() == "message" {
            self.scratch.message = push_str(&mut self.scratch.arena, value);
        } else if self.keep(field) {
            let stored = Stored::store(Value::Str(value), &mut self.scratch.arena);
            self.push(field, stored);
        }
    }

    fn record_debug(&mut self, field: &TracingField, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.scratch.message = push_fmt(&mut self.scratch.arena, format_args!("{value:?}"));
        } else if field.name() == FACADE_MARKER {
            let payload_waiting = FACADE.with(|f| f.try_borrow().is_ok_and(|f| f.active.get()));
            // Render the fields only when the structured payload is not there to be taken.
            self.facade = Some(if payload_waiting {
                0..0
            } else {
                push_fmt(&mut self.scratch.arena, format_args!("{value:?}"))
            });
        } else if self.keep(field) {
            let stored = Stored::store_fmt(format_args!("{value:?}"), &mut self.scratch.arena);
            self.push(field, stored);
        }
    }

    fn record_error(&mut self, field: &TracingField, value: &(dyn std::error::Error + 'static)) {
        if self.keep(field) {
            let stored = Stored::store_fmt(format_args!("{value}"), &mut self.scratch.arena);
            self.push(field, stored);
        }
    }

    fn record_i64(&mut self, field: &TracingField, value: i64) {
        if self.keep(field) {
            self.push(field, Stored::I64(value));
        }
    }
    fn record_u64(&mut self, field: &TracingField, value: u64) {
        if self.keep(field) {
            self.push(field, Stored::U64(value));
        }
    }
    fn record_i128(&mut self, field: &TracingField, value: i128) {
        if self.keep(field) {
            self.push(field, Stored::I128(value));
        }
    }
    fn record_u128(&mut self, field: &TracingField, value: u128) {
        if self.keep(field) {
            self.push(field, Stored::U128(value));
        }
    }
    fn record_f64(&mut self, field: &TracingField, value: f64) {
        if self.keep(field) {
            self.push(field, Stored::F64(value));
        }
    }
    fn record_bool(&mut self, field: &TracingField, value: bool) {
        if self.keep(field) {
            self.push(field, Stored::Bool(value));
        }
    }
}

struct SpanVisitor(SpanFields);

impl Visit for SpanVisitor {
    fn record_str(&mut self, field: &TracingField, value: &str) {
        self.0.set(field.name(), Value::Str(value));
    }
    fn record_debug(&mut self, field: &TracingField, value: &dyn fmt::Debug) {
        self.0.set_fmt(field.name(), format_args!("{value:?}"));
    }
    fn record_error(&mut self, field: &TracingField, value: &(dyn std::error::Error + 'static)) {
        self.0.set_fmt(field.name(), format_args!("{value}"));
    }
    fn record_i64(&mut self, field: &TracingField, value: i64) {
        self.0.set(field.name(), Value::I64(value));
    }
    fn record_u64(&mut self, field: &TracingField, value: u64) {
        self.0.set(field.name(), Value::U64(value));
    }
    fn record_i128(&mut self, field: &TracingField, value: i128) {
        self.0.set(field.name(), Value::I128(value));
    }
    fn record_u128(&mut self, field: &TracingField, value: u128) {
        self.0.set(field.name(), Value::U128(value));
    }
    fn record_f64(&mut self, field: &TracingField, value: f64) {
        self.0.set(field.name(), Value::F64(value));
    }
    fn record_bool(&mut self, field: &TracingField, value: bool) {
        self.0.set(field.name(), Value::Bool(value));
    }
}

/// The fields of the facade call being emitted on this thread.
#[derive(Default)]
struct FacadeFields {
    /// Set by [`emit`], cleared by the first layer that takes the fields.
    active: std::cell::Cell<bool>,
    arena: String,
    fields: Vec<(Range<usize>, Stored)>,
}

impl FacadeFields {
    fn fields(&self) -> impl Iterator<Item = Field<'_>> {
        self.fields.iter().map(|(name, value)| Field {
            name: &self.arena[name.clone()],
            value: value.resolve(&self.arena),
        })
    }
}

/// Emits a log event with runtime field names, as the seed's `Logger.info(message, fields)`
/// does: a `tracing` event with target [`FACADE_TARGET`] goes through the current
/// subscriber, and [`LogLayer`] attaches `fields` to its record.
///
/// Other `tracing` layers see the message and a `vigil.fields` field rendering the fields as
/// `name=value` pairs.
pub fn emit(level: Level, message: &str, fields: &[Field<'_>]) {
    let rendered = FieldsDisplay(fields);
    let emit_event = || match level {
        Level::Trace => {
            tracing::event!(target: FACADE_TARGET, tracing::Level::TRACE, vigil.fields = %rendered, message = message);
        }
        Level::Debug => {
            tracing::event!(target: FACADE_TARGET, tracing::Level::DEBUG, vigil.fields = %rendered, message = message);
        }
        Level::Info => {
            tracing::event!(target: FACADE_TARGET, tracing::Level::INFO, vigil.fields = %rendered, message = message);
        }
        Level::Warning => {
            tracing::event!(target: FACADE_TARGET, tracing::Level::WARN, vigil.fields = %rendered, message = message);
        }
        Level::Error => {
            tracing::event!(target: FACADE_TARGET, tracing::Level::ERROR, vigil.fields = %rendered, message = message);
        }
    };
    FACADE.with(|cell| {
        let Ok(mut f) = cell.try_borrow_mut() else {
            // Called while this thread dispatches a facade record (from inside a backend):
            // `tracing` drops such nested events, so there is nothing to stage.
            emit_event();
            return;
        };
        if f.arena.capacity() > SCRATCH_KEEP_CAPACITY {
            f.arena = String::new();
        }
        f.arena.clear();
        f.fields.clear();
        for field in fields {
            let name = push_str(&mut f.arena, field.name);
            let value = Stored::store(field.value, &mut f.arena);
            f.fields.push((name, value));
        }
        f.active.set(true);
        drop(f);
        emit_event();
        if let Ok(f) = cell.try_borrow() {
            f.active.set(false);
        }
    });
}

struct FieldsDisplay<'a>(&'a [Field<'a>]);

impl fmt::Display for FieldsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match field.value {
                Value::Str(s) => write!(f, "{}={s:?}", field.name)?,
                other => write!(f, "{}={other}", field.name)?,
            }
        }
        Ok(())
    }
}
