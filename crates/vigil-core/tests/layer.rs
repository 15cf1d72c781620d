//! The log layer: one record per event, with span fields, facade fields and log-crate records.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::prelude::*;
use vigil_core::{Field, Level, LogBackend, LogLayer, MemoryLogBackend, OwnedValue, Record, Resource, emit};

fn with_memory(f: impl FnOnce()) -> Vec<vigil_core::CapturedRecord> {
    let memory = Arc::new(MemoryLogBackend::new());
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::new(Resource::new("svc", "test")).with_backend(memory.clone()));
    tracing::subscriber::with_default(subscriber, f);
    memory.take()
}

#[test]
fn span_fields_reach_every_record_inside_the_span_even_across_tasks_of_threads() {
    let records = with_memory(|| {
        let outer = tracing::info_span!("request", request_id = "r-1", status = tracing::field::Empty);
        let _o = outer.enter();
        let inner = tracing::info_span!("db", request_id = "r-1-db", table = "comments");
        inner.in_scope(|| tracing::info!("inner"));
        outer.record("status", 201);
        tracing::info!("outer");
        // A span handed to another thread keeps its fields there.
        let moved = inner.clone();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        std::thread::scope(|s| {
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || moved.in_scope(|| tracing::info!("other thread")));
            });
        });
    });
    let by = |m: &str| records.iter().find(|r| r.message == m).unwrap().clone();
    let inner = by("inner");
    assert_eq!(inner.field("request_id"), Some(&OwnedValue::Str("r-1-db".into())));
    assert_eq!(inner.field("table"), Some(&OwnedValue::Str("comments".into())));
    let outer = by("outer");
    assert_eq!(outer.field("request_id"), Some(&OwnedValue::Str("r-1".into())));
    assert_eq!(outer.field("status"), Some(&OwnedValue::I64(201)));
    assert_eq!(outer.field("table"), None);
    let other = by("other thread");
    assert_eq!(other.field("table"), Some(&OwnedValue::Str("comments".into())));
    assert_eq!(other.field("request_id"), Some(&OwnedValue::Str("r-1-db".into())));
}

#[test]
fn facade_fields_have_runtime_names() {
    let name = String::from("video.id");
    let records = with_memory(|| {
        emit(
            Level::Warning,
            "Comment created",
            &[Field::new("user_id", 42u64), Field::new(&name, "v-1")],
        );
        // An event after the facade call does not inherit its fields.
        tracing::info!("plain");
    });
    assert_eq!(records[0].level, Level::Warning);
    assert_eq!(records[0].target, vigil_core::FACADE_TARGET);
    assert_eq!(records[0].message, "Comment created");
    assert_eq!(
        records[0].fields,
        vec![
            ("user_id".to_owned(), OwnedValue::U64(42)),
            ("video.id".to_owned(), OwnedValue::Str("v-1".into())),
        ]
    );
    assert!(records[1].fields.is_empty(), "{:?}", records[1]);
}

/// A backend that logs from inside `log`, as a careless custom backend might.
struct Reentrant {
    memory: Arc<MemoryLogBackend>,
    depth: AtomicU64,
}

impl LogBackend for Reentrant {
    fn log(&self, record: &Record<'_>) {
        self.memory.log(record);
        if self.depth.fetch_add(1, Ordering::SeqCst) == 0 {
            emit(Level::Info, "from inside a backend", &[Field::new("nested", true)]);
            tracing::info!(also = 1, "tracing from inside a backend");
        }
    }
    fn flush(&self) {}
}

/// `tracing` itself drops events emitted while an event is being dispatched on the same
/// thread; this checks that such a backend neither deadlocks nor panics, and that the next
/// facade call still gets its own fields.
#[test]
fn logging_from_inside_a_backend_neither_deadlocks_nor_mixes_fields() {
    let memory = Arc::new(MemoryLogBackend::new());
    let backend = Arc::new(Reentrant {
        memory: memory.clone(),
        depth: AtomicU64::new(0),
    });
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::new(Resource::new("svc", "test")).with_backend(backend));
    tracing::subscriber::with_default(subscriber, || {
        emit(Level::Info, "outer", &[Field::new("outer_field", 1i64)]);
        emit(Level::Info, "next", &[Field::new("next_field", 2i64)]);
    });
    let records = memory.take();
    let messages: Vec<_> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["outer", "next"]);
    assert_eq!(records[1].fields, vec![("next_field".to_owned(), OwnedValue::I64(2))]);
}

#[test]
fn log_crate_records_join_the_pipeline_with_their_own_target() {
    let records = with_memory(|| {
        let record = log::Record::builder()
            .args(format_args!("from the log crate"))
            .level(log::Level::Warn)
            .target("some_library::pool")
            .module_path_static(Some("some_library::pool"))
            .build();
        tracing_log::format_trace(&record).unwrap();
    });
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message, "from the log crate");
    assert_eq!(records[0].level, Level::Warning);
    assert_eq!(records[0].target, "some_library::pool");
    assert!(
        records[0].fields.iter().all(|(n, _)| !n.starts_with("log.")),
        "{:?}",
        records[0].fields
    );
}

struct Panicking;
impl LogBackend for Panicking {
    fn log(&self, _: &Record<'_>) {
        panic!("backend bug");
    }
    fn flush(&self) {}
}

#[test]
fn a_panicking_backend_does_not_reach_the_caller_or_the_other_backends() {
    let memory = Arc::new(MemoryLogBackend::new());
    let layer = LogLayer::new(Resource::new("svc", "test"))
        .with_backend(Arc::new(Panicking))
        .with_backend(memory.clone());
    let probe = layer.clone();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!("still delivered");
    });
    assert_eq!(memory.records().len(), 1);
    assert_eq!(probe.backend_panics(), 1);
}

#[test]
fn backends_choose_their_minimum_level() {
    struct WarnOnly(Arc<MemoryLogBackend>);
    impl LogBackend for WarnOnly {
        fn log(&self, r: &Record<'_>) {
            self.0.log(r);
        }
        fn flush(&self) {}
        fn min_level(&self) -> Level {
            Level::Warning
        }
    }
    let memory = Arc::new(MemoryLogBackend::new());
    let subscriber = tracing_subscriber::registry()
        .with(LogLayer::new(Resource::new("svc", "test")).with_backend(Arc::new(WarnOnly(memory.clone()))));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("skipped");
        tracing::warn!("kept");
    });
    let records = memory.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message, "kept");
}

/// A stand-in tracer: gives every span ids, as `vigil-trace-datadog` does.
struct IdsLayer;

impl<S> tracing_subscriber::Layer<S> for IdsLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let span = ctx.span(id).unwrap();
        let parent = vigil_core::trace::take_remote_parent().map_or(0, |p| p.trace_id);
        span.extensions_mut().insert(vigil_core::trace::TraceIds {
            trace_id: parent,
            span_id: id.into_u64(),
        });
    }
}

#[test]
fn records_carry_the_innermost_spans_trace_ids() {
    use vigil_core::trace::{RemoteParent, TraceIds};
    let memory = Arc::new(MemoryLogBackend::new());
    let subscriber = tracing_subscriber::registry()
        .with(IdsLayer)
        .with(LogLayer::new(Resource::new("svc", "test")).with_backend(memory.clone()));
    let mut inner_ids = None;
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("outside");
        let parent = RemoteParent {
            trace_id: 99,
            span_id: 1,
            sampling_priority: None,
        };
        let outer = vigil_core::trace::with_remote_parent(parent, || tracing::info_span!("request"));
        let _o = outer.enter();
        let inner = tracing::info_span!("db");
        inner.in_scope(|| {
            inner_ids = vigil_core::trace::current();
            tracing::info!("inside");
        });
    });
    let records = memory.take();
    assert_eq!(records[0].trace, None, "no span, no trace");
    let inside: Option<TraceIds> = records[1].trace;
    assert!(inside.is_some());
    assert_eq!(inside, inner_ids, "the innermost span's ids");
    assert_eq!(
        inside.unwrap().trace_id,
        0,
        "the inner span was not created under with_remote_parent"
    );
}
