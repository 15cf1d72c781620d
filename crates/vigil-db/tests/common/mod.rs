//! Test harness for sqlx: a global subscriber and recorder, installed once per test binary.
//!
//! SQLite emits sqlx's query events on each connection's worker thread, which a thread-local
//! subscriber (`with_default`) or recorder (`with_local_recorder`) never sees; so the layer
//! and the recorder are installed globally, like an application does, and forward to
//! per-test memory backends. Tests run one at a time.

#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use metrics::Unit;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use vigil_core::{
    BackendRecorder, CapturedRecord, LogBackend, LogLayer, MemoryLogBackend, MemoryMetricsBackend, MetricsBackend,
    Record, Resource,
};
use vigil_db::SqlxQueryLayer;

/// The `pool` label the global layer gives acquire times read from sqlx's events.
pub const EVENT_POOL: &str = "events";

/// Forwards to the current test's metrics backend.
#[derive(Default)]
struct SwitchMetrics(RwLock<Arc<MemoryMetricsBackend>>);

impl SwitchMetrics {
    fn current(&self) -> Arc<MemoryMetricsBackend> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl MetricsBackend for SwitchMetrics {
    fn increment(&self, name: &str, value: u64, tags: &[(&str, &str)]) {
        self.current().increment(name, value, tags);
    }
    fn gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.current().gauge(name, value, tags);
    }
    fn histogram(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.current().histogram(name, value, tags);
    }
    fn describe(&self, name: &str, unit: Option<Unit>, description: &str) {
        self.current().describe(name, unit, description);
    }
}

/// Forwards to the current test's log backend.
#[derive(Default)]
struct SwitchLogs(RwLock<Arc<MemoryLogBackend>>);

impl LogBackend for SwitchLogs {
    fn log(&self, record: &Record<'_>) {
        self.0.read().unwrap_or_else(PoisonError::into_inner).log(record);
    }
    fn flush(&self) {}
}

struct Global {
    metrics: Arc<SwitchMetrics>,
    logs: Arc<SwitchLogs>,
    layer: SqlxQueryLayer,
}

fn global() -> &'static Global {
    static GLOBAL: OnceLock<Global> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let metrics = Arc::new(SwitchMetrics::default());
        let logs = Arc::new(SwitchLogs::default());
        let layer = SqlxQueryLayer::new().pool_name(EVENT_POOL);
        // What `vigil::init` should build: every layer with its own per-layer filter, the
        // log pipeline at INFO, the query layer at DEBUG for sqlx's targets only.
        let subscriber = tracing_subscriber::registry()
            .with(
                LogLayer::new(Resource::new("db-test", "test"))
                    .with_backend(logs.clone())
                    .with_filter(LevelFilter::INFO),
            )
            .with(layer.clone().filtered());
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        metrics::set_global_recorder(BackendRecorder::from_arc(metrics.clone())).expect("no other global recorder");
        vigil_core::handles::remember_global_recorder();
        Global { metrics, logs, layer }
    })
}

/// What a test reads back.
#[derive(Clone)]
pub struct Observed {
    pub metrics: Arc<MemoryMetricsBackend>,
    pub logs: Arc<MemoryLogBackend>,
    /// The global layer (its slow-query threshold can be changed; it is reset per test).
    pub layer: SqlxQueryLayer,
}

impl Observed {
    /// The count of `database.query.count{source, operation}`.
    pub fn queries(&self, source: &str, operation: &str) -> u64 {
        self.metrics
            .counter("database.query.count", &[("source", source), ("operation", operation)])
            .unwrap_or(0)
    }

    /// Every `database.query.count` series: ((source, operation), count), sorted.
    pub fn query_counts(&self) -> Vec<((String, String), u64)> {
        let mut out: Vec<_> = self
            .metrics
            .counters()
            .into_iter()
            .filter(|((name, _), _)| name == "database.query.count")
            .map(|((_, tags), n)| {
                let tag = |k: &str| {
                    tags.iter()
                        .find(|(t, _)| t == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                ((tag("source"), tag("operation")), n)
            })
            .collect();
        out.sort();
        out
    }

    /// The total of every `database.query.count` series.
    pub fn total_queries(&self) -> u64 {
        self.query_counts().iter().map(|(_, n)| n).sum()
    }

    /// Records logged with target `target`.
    pub fn logs_of(&self, target: &str) -> Vec<CapturedRecord> {
        self.logs.records().into_iter().filter(|r| r.target == target).collect()
    }
}

fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on a current-thread tokio runtime with fresh metrics and logs, one test at a time.
pub fn run<F, Fut>(f: F) -> Observed
where
    F: FnOnce(Observed) -> Fut,
    Fut: Future<Output = ()>,
{
    let _serial = lock();
    let g = global();
    let observed = Observed {
        metrics: Arc::new(MemoryMetricsBackend::new()),
        logs: Arc::new(MemoryLogBackend::new()),
        layer: g.layer.clone(),
    };
    *g.metrics.0.write().unwrap_or_else(PoisonError::into_inner) = observed.metrics.clone();
    *g.logs.0.write().unwrap_or_else(PoisonError::into_inner) = observed.logs.clone();
    g.layer.set_slow_threshold(vigil_db::DEFAULT_SLOW_THRESHOLD);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(f(observed.clone()));
    drop(runtime);
    observed
}

/// Waits until `done()` holds (up to 10 s), for what lands on other threads.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
