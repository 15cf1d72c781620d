//! The seed-shaped metrics backend trait, its adapter to [`metrics::Recorder`], and test
//! implementations.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::registry::{Registry, Storage};
use smallvec::SmallVec;

/// A metrics destination with the seed's three calls: the `Metrics` behaviour.
///
/// Implement this for a custom backend and install it with the umbrella crate's builder
/// (`vigil::Vigil::builder().metrics_backend(..)`); [`BackendRecorder`] turns it into a
/// [`metrics::Recorder`], so `metrics::counter!` and `vigil::Metrics::increment` both reach it.
///
/// Calls arrive on the application's threads: like a log backend, a metrics backend must not
/// block on I/O (aggregate in memory, or queue and send from another thread).
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use vigil_core::MetricsBackend;
///
/// /// Counts every increment, whatever its name.
/// #[derive(Default)]
/// struct Total(AtomicU64);
///
/// impl MetricsBackend for Total {
///     fn increment(&self, _name: &str, value: u64, _tags: &[(&str, &str)]) {
///         self.0.fetch_add(value, Ordering::Relaxed);
///     }
///     fn gauge(&self, _name: &str, _value: f64, _tags: &[(&str, &str)]) {}
///     fn histogram(&self, _name: &str, _value: f64, _tags: &[(&str, &str)]) {}
/// }
/// ```
pub trait MetricsBackend: Send + Sync + 'static {
    /// Adds `value` to the counter `name` with `tags`.
    fn increment(&self, name: &str, value: u64, tags: &[(&str, &str)]);
    /// Sets the gauge `name` with `tags` to `value`.
    fn gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]);
    /// Records one observation of `value` in the histogram `name` with `tags`.
    fn histogram(&self, name: &str, value: f64, tags: &[(&str, &str)]);
    /// Called once per metric when it is described (help text and unit). Optional.
    fn describe(&self, _name: &str, _unit: Option<Unit>, _description: &str) {}
}

impl<T: MetricsBackend + ?Sized> MetricsBackend for Arc<T> {
    fn increment(&self, name: &str, value: u64, tags: &[(&str, &str)]) {
        (**self).increment(name, value, tags);
    }
    fn gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        (**self).gauge(name, value, tags);
    }
    fn histogram(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        (**self).histogram(name, value, tags);
    }
    fn describe(&self, name: &str, unit: Option<Unit>, description: &str) {
        (**self).describe(name, unit, description);
    }
}

/// Adapts a [`MetricsBackend`] into a [`metrics::Recorder`].
///
/// Handles are kept in a registry, one per series, so a gauge moved with `increment` and
/// `decrement` from several call sites keeps one value, and the backend always receives the
/// gauge's absolute value.
pub struct BackendRecorder<B: MetricsBackend> {
    registry: Registry<Key, BackendStorage<B>>,
    backend: Arc<B>,
}

impl<B: MetricsBackend> std::fmt::Debug for BackendRecorder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendRecorder").finish_non_exhaustive()
    }
}

impl<B: MetricsBackend> BackendRecorder<B> {
    /// Wraps `backend`.
    pub fn new(backend: B) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// Wraps a shared `backend`.
    pub fn from_arc(backend: Arc<B>) -> Self {
        BackendRecorder {
            registry: Registry::new(BackendStorage(backend.clone())),
            backend,
        }
    }

    /// The wrapped backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }
}

impl<B: MetricsBackend> Recorder for BackendRecorder<B> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.backend.describe(key.as_str(), unit, &description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.backend.describe(key.as_str(), unit, &description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.backend.describe(key.as_str(), unit, &description);
    }
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |h| Counter::from_arc(h.clone()))
    }
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        self.registry.get_or_create_gauge(key, |h| Gauge::from_arc(h.clone()))
    }
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

struct BackendStorage<B>(Arc<B>);

impl<B: MetricsBackend> Storage<Key> for BackendStorage<B> {
    type Counter = Arc<SeriesHandle<B>>;
    type Gauge = Arc<SeriesHandle<B>>;
    type Histogram = Arc<SeriesHandle<B>>;

    fn counter(&self, key: &Key) -> Self::Counter {
        Arc::new(SeriesHandle::new(self.0.clone(), key))
    }
    fn gauge(&self, key: &Key) -> Self::Gauge {
        Arc::new(SeriesHandle::new(self.0.clone(), key))
    }
    fn histogram(&self, key: &Key) -> Self::Histogram {
        Arc::new(SeriesHandle::new(self.0.clone(), key))
    }
}

/// One series of a [`BackendRecorder`]: the name, the tags and the last value.
struct SeriesHandle<B> {
    backend: Arc<B>,
    name: Box<str>,
    tags: Box<[(Box<str>, Box<str>)]>,
    /// The counter's total (for `absolute`) or the gauge's value as f64 bits.
    state: AtomicU64,
}

impl<B: MetricsBackend> SeriesHandle<B> {
    fn new(backend: Arc<B>, key: &Key) -> Self {
        SeriesHandle {
            backend,
            name: key.name().into(),
            tags: key.labels().map(|l| (l.key().into(), l.value().into())).collect(),
            state: AtomicU64::new(0),
        }
    }

    fn with_tags<R>(&self, f: impl FnOnce(&[(&str, &str)]) -> R) -> R {
        let tags: SmallVec<[(&str, &str); 8]> = self.tags.iter().map(|(k, v)| (&**k, &**v)).collect();
        f(&tags)
    }

    fn update_gauge(&self, op: impl Fn(f64) -> f64) {
        let mut new = 0.0;
        let _ = self.state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
            new = op(f64::from_bits(bits));
            Some(new.to_bits())
        });
        self.with_tags(|tags| self.backend.gauge(&self.name, new, tags));
    }
}

impl<B: MetricsBackend> CounterFn for SeriesHandle<B> {
    fn increment(&self, value: u64) {
        self.state.fetch_add(value, Ordering::Relaxed);
        self.with_tags(|tags| self.backend.increment(&self.name, value, tags));
    }

    fn absolute(&self, value: u64) {
        let previous = self.state.fetch_max(value, Ordering::AcqRel);
        if value > previous {
            self.with_tags(|tags| self.backend.increment(&self.name, value - previous, tags));
        }
    }
}

impl<B: MetricsBackend> GaugeFn for SeriesHandle<B> {
    fn increment(&self, value: f64) {
        self.update_gauge(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update_gauge(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update_gauge(|_| value);
    }
}

impl<B: MetricsBackend> HistogramFn for SeriesHandle<B> {
    fn record(&self, value: f64) {
        self.with_tags(|tags| self.backend.histogram(&self.name, value, tags));
    }
}

/// A metrics backend that discards everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopMetricsBackend;

impl MetricsBackend for NoopMetricsBackend {
    fn increment(&self, _: &str, _: u64, _: &[(&str, &str)]) {}
    fn gauge(&self, _: &str, _: f64, _: &[(&str, &str)]) {}
    fn histogram(&self, _: &str, _: f64, _: &[(&str, &str)]) {}
}

/// A series identity in [`MemoryMetricsBackend`]: the name and the sorted tags.
pub type SeriesKey = (String, Vec<(String, String)>);

fn series_key(name: &str, tags: &[(&str, &str)]) -> SeriesKey {
    let mut tags: Vec<(String, String)> = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tags.sort();
    (name.to_owned(), tags)
}

#[derive(Debug, Default)]
struct MemoryState {
    counters: BTreeMap<SeriesKey, u64>,
    gauges: BTreeMap<SeriesKey, f64>,
    histograms: BTreeMap<SeriesKey, Vec<f64>>,
    descriptions: BTreeMap<String, (Option<Unit>, String)>,
}

/// A metrics backend that keeps every value in memory, for tests.
///
/// ```
/// use vigil_core::{MemoryMetricsBackend, MetricsBackend};
///
/// let m = MemoryMetricsBackend::new();
/// m.increment("comments.created", 2, &[("region", "eu")]);
/// m.increment("comments.created", 1, &[("region", "eu")]);
/// assert_eq!(m.counter("comments.created", &[("region", "eu")]), Some(3));
/// ```
#[derive(Debug, Default)]
pub struct MemoryMetricsBackend {
    state: Mutex<MemoryState>,
}

impl MemoryMetricsBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The counter's total, if it was ever incremented.
    pub fn counter(&self, name: &str, tags: &[(&str, &str)]) -> Option<u64> {
        self.state().counters.get(&series_key(name, tags)).copied()
    }

    /// The gauge's value, if it was ever set.
    pub fn gauge_value(&self, name: &str, tags: &[(&str, &str)]) -> Option<f64> {
        self.state().gauges.get(&series_key(name, tags)).copied()
    }

    /// Every observation of the histogram, in order.
    pub fn histogram_values(&self, name: &str, tags: &[(&str, &str)]) -> Vec<f64> {
        self.state()
            .histograms
            .get(&series_key(name, tags))
            .cloned()
            .unwrap_or_default()
    }

    /// The description given for `name`, if any.
    pub fn description(&self, name: &str) -> Option<(Option<Unit>, String)> {
        self.state().descriptions.get(name).cloned()
    }

    /// Every counter series and its total.
    pub fn counters(&self) -> Vec<(SeriesKey, u64)> {
        self.state().counters.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

impl MetricsBackend for MemoryMetricsBackend {
    fn increment(&self, name: &str, value: u64, tags: &[(&str, &str)]) {
        *self.state().counters.entry(series_key(name, tags)).or_default() += value;
    }
    fn gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.state().gauges.insert(series_key(name, tags), value);
    }
    fn histogram(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.state()
            .histograms
            .entry(series_key(name, tags))
            .or_default()
            .push(value);
    }
    fn describe(&self, name: &str, unit: Option<Unit>, description: &str) {
        self.state()
            .descriptions
            .insert(name.to_owned(), (unit, description.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_routes_counters_gauges_and_histograms_to_the_backend() {
        let backend = Arc::new(MemoryMetricsBackend::new());
        let recorder = BackendRecorder::from_arc(backend.clone());
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!("jobs.done", Unit::Count, "Jobs done");
            metrics::counter!("jobs.done", "queue" => "email").increment(2);
            metrics::counter!("jobs.done", "queue" => "email").increment(3);
            metrics::counter!("jobs.done", "queue" => "email").absolute(10);
            metrics::counter!("jobs.done", "queue" => "email").absolute(4);
            let g = metrics::gauge!("users.online", "region" => "eu");
            g.set(5.0);
            metrics::gauge!("users.online", "region" => "eu").increment(2.0);
            metrics::gauge!("users.online", "region" => "eu").decrement(1.0);
            metrics::histogram!("lat", "route" => "/a").record(1.5);
            metrics::histogram!("lat", "route" => "/a").record(2.5);
        });
        assert_eq!(backend.counter("jobs.done", &[("queue", "email")]), Some(10));
        assert_eq!(backend.gauge_value("users.online", &[("region", "eu")]), Some(6.0));
        assert_eq!(backend.histogram_values("lat", &[("route", "/a")]), vec![1.5, 2.5]);
        assert_eq!(
            backend.description("jobs.done"),
            Some((Some(Unit::Count), "Jobs done".into()))
        );
    }

    #[test]
    fn memory_backend_treats_tag_order_as_irrelevant() {
        let m = MemoryMetricsBackend::new();
        m.increment("x", 1, &[("a", "1"), ("b", "2")]);
        m.increment("x", 1, &[("b", "2"), ("a", "1")]);
        assert_eq!(m.counter("x", &[("a", "1"), ("b", "2")]), Some(2));
        NoopMetricsBackend.increment("x", 1, &[]);
    }
}
