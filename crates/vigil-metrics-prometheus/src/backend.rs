//! The recorder: metrics-exporter-prometheus behind Vigil's naming rules, unit conversion and
//! per-metric cardinality limit.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{
    Counter, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::formatting::sanitize_metric_name;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use vigil_core::catalogue;

use crate::PrometheusError;

/// The label value every label of an overflow series carries.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";
/// The `metric` label of the overflow counter when the number of metric names hits its limit.
pub const TOO_MANY_METRICS: &str = "__too_many_metrics__";

/// Default label sets per metric.
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 1000;
/// Default number of distinct metric names.
pub const DEFAULT_MAX_METRIC_NAMES: usize = 10_000;

/// Bucket upper bounds for histograms in bytes (sizes): 64 B to 16 MiB, by fours.
pub const SIZE_BUCKETS_BYTES: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

/// Configures a [`PrometheusBackend`].
#[derive(Debug, Clone)]
pub struct PrometheusBackendBuilder {
    global_labels: Vec<(String, String)>,
    max_series_per_metric: usize,
    max_metric_names: usize,
    buckets: Vec<f64>,
}

impl Default for PrometheusBackendBuilder {
    fn default() -> Self {
        PrometheusBackendBuilder {
            global_labels: Vec::new(),
            max_series_per_metric: DEFAULT_MAX_SERIES_PER_METRIC,
            max_metric_names: DEFAULT_MAX_METRIC_NAMES,
            buckets: catalogue::DURATION_BUCKETS_MS.to_vec(),
        }
    }
}

impl PrometheusBackendBuilder {
    /// Adds a label to every series (Vigil adds `service` and `environment`).
    #[must_use]
    pub fn global_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.global_labels.push((key.into(), value.into()));
        self
    }

    /// Label sets kept per metric; past it, new label sets fold into one overflow series
    /// whose label values are all `__overflow__` (default 1000).
    #[must_use]
    pub fn max_series_per_metric(mut self, n: usize) -> Self {
        self.max_series_per_metric = n.max(1);
        self
    }

    /// Distinct metric names kept; past it, new names are not exported (default 10000).
    #[must_use]
    pub fn max_metric_names(mut self, n: usize) -> Self {
        self.max_metric_names = n.max(1);
        self
    }

    /// Bucket upper bounds for histograms without a time unit (default: the millisecond
    /// duration buckets of the catalogue, 1 to 10000).
    ///
    /// # Errors
    ///
    /// When `buckets` is empty, not increasing, or not finite.
    pub fn buckets(mut self, buckets: &[f64]) -> Result<Self, PrometheusError> {
        if buckets.is_empty() || buckets.iter().any(|b| !b.is_finite()) || buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(PrometheusError::Buckets(buckets.to_vec()));
        }
        self.buckets = buckets.to_vec();
        Ok(self)
    }

    /// Builds the recorder and describes the catalogue's metrics to it.
    ///
    /// # Errors
    ///
    /// When the exporter rejects the configuration.
    pub fn build(self) -> Result<PrometheusBackend, PrometheusError> {
        let mut builder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets(&self.buckets)
            .map_err(|e| PrometheusError::Exporter(e.to_string()))?
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &duration_buckets_seconds())
            .map_err(|e| PrometheusError::Exporter(e.to_string()))?
            .set_buckets_for_metric(Matcher::Suffix("_bytes".to_owned()), SIZE_BUCKETS_BYTES)
            .map_err(|e| PrometheusError::Exporter(e.to_string()))?;
        for (k, v) in &self.global_labels {
            builder = builder.add_global_label(k, v);
        }
        // Catalogue histograms with buckets of their own (long-lived connections), in base units.
        for def in catalogue::ALL {
            if let (catalogue::MetricKind::Histogram, Some(buckets)) = (def.kind, def.buckets) {
                let (state, _) = PrometheusBackend::new_state(def.name, Kind::Histogram, def.unit);
                let scale = state.scale.unwrap_or(1.0);
                let scaled: Vec<f64> = buckets.iter().map(|b| b * scale).collect();
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(state.export_name.as_str().to_owned()), &scaled)
                    .map_err(|e| PrometheusError::Exporter(e.to_string()))?;
            }
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let backend = PrometheusBackend {
            inner: Arc::new(Inner {
                recorder,
                handle,
                names: RwLock::new(HashMap::new()),
                max_series_per_metric: self.max_series_per_metric,
                max_metric_names: self.max_metric_names,
                names_full_warned: AtomicBool::new(false),
                hasher: foldhash::fast::FixedState::default(),
            }),
        };
        for def in catalogue::ALL {
            backend.describe(def.name, def.kind.into(), def.unit, def.help.into());
        }
        Ok(backend)
    }
}

/// The catalogue's millisecond duration buckets, in seconds (1 ms to 10 s): for histograms
/// recorded in a time unit and exported in seconds.
pub fn duration_buckets_seconds() -> Vec<f64> {
    catalogue::DURATION_BUCKETS_MS.iter().map(|ms| ms / 1000.0).collect()
}

/// The name the exporter renders for `export` (it sanitizes the name, then adds the unit and,
/// for counters, `_total` when missing), mirroring metrics-exporter-prometheus's formatting.
fn rendered_name(export: &str, kind: Kind, exported_unit: Option<Unit>) -> String {
    let mut name = sanitize_metric_name(export);
    if kind == Kind::Counter {
        // Only seconds and bytes survive `base_unit`; the name already ends in seconds.
        if exported_unit == Some(Unit::Bytes) && !name.ends_with("bytes") {
            name.push_str("_bytes");
        }
        if !name.ends_with("total") {
            name.push_str("_total");
        }
    }
    name
}

/// How a unit is exported: Prometheus wants base units (`promtool check metrics` rejects
/// `_milliseconds`), so time is converted to seconds and sizes to bytes.
fn base_unit(unit: Option<Unit>) -> (Option<Unit>, Option<f64>) {
    match unit {
        Some(Unit::Seconds) => (Some(Unit::Seconds), None),
        Some(Unit::Milliseconds) => (Some(Unit::Seconds), Some(1e-3)),
        Some(Unit::Microseconds) => (Some(Unit::Seconds), Some(1e-6)),
        Some(Unit::Nanoseconds) => (Some(Unit::Seconds), Some(1e-9)),
        Some(Unit::Bytes) => (Some(Unit::Bytes), None),
        Some(Unit::Kibibytes) => (Some(Unit::Bytes), Some(1024.0)),
        Some(Unit::Mebibytes) => (Some(Unit::Bytes), Some(1024.0 * 1024.0)),
        Some(Unit::Gibibytes) => (Some(Unit::Bytes), Some(1024.0 * 1024.0 * 1024.0)),
        Some(Unit::Tebibytes) => (Some(Unit::Bytes), Some(1024.0 * 1024.0 * 1024.0 * 1024.0)),
        // Counts need no suffix; rates and percentages have no Prometheus base unit.
        _ => (None, None),
    }
}

/// What kind of metric a name was registered or described as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl From<catalogue::MetricKind> for Kind {
    fn from(k: catalogue::MetricKind) -> Self {
        match k {
            catalogue::MetricKind::Counter => Kind::Counter,
            catalogue::MetricKind::Gauge => Kind::Gauge,
            catalogue::MetricKind::Histogram => Kind::Histogram,
        }
    }
}

/// Per metric name: how it is exported and which label sets it has.
struct NameState {
    /// The name handed to the exporter (which sanitizes it and adds `_total` / unit suffixes).
    export_name: KeyName,
    /// The name the exporter renders: `export_name` sanitized, with its suffixes.
    rendered_name: String,
    /// Multiplier from the recorded unit to the exported base unit, when they differ.
    scale: Option<f64>,
    /// Hashes of the label sets seen, up to the limit.
    series: HashSet<u64>,
    /// Whether the overflow warning was logged.
    warned: bool,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    names: RwLock<HashMap<String, NameState>>,
    max_series_per_metric: usize,
    max_metric_names: usize,
    names_full_warned: AtomicBool,
    hasher: foldhash::fast::FixedState,
}

/// Vigil's Prometheus metrics backend: a [`metrics::Recorder`] built on
/// metrics-exporter-prometheus, and the text it serves on `/metrics`.
///
/// On top of the exporter it:
/// - follows Prometheus naming: counters end in `_total` (a trailing `.count` becomes
///   `_total`: `http.request.count` is `http_request_total`), invalid characters become `_`;
/// - exports base units: a histogram described in milliseconds (the catalogue's durations) is
///   exported in seconds with a `_seconds` suffix and second buckets, its values converted;
///   sizes are exported in bytes with a `_bytes` suffix and size buckets;
/// - renders every histogram as a real histogram with buckets, never a summary;
/// - gives every metric HELP text (a generic one when it was not described before first use);
/// - limits label sets per metric: past the limit, new label sets fold into one overflow
///   series (all label values `__overflow__`), counted by `vigil_metrics_overflow_total` and
///   logged once per metric, so memory stays bounded whatever label values arrive.
///
/// Cloning is cheap and shares the registry.
///
/// ```
/// use vigil_metrics_prometheus::PrometheusBackend;
///
/// let backend = PrometheusBackend::builder().global_label("service", "api").build().unwrap();
/// metrics::with_local_recorder(&backend, || {
///     metrics::counter!("comments.created", "region" => "eu").increment(1);
///     metrics::histogram!("http.request.duration", "route" => "/a", "method" => "GET", "status" => "200").record(12.0);
/// });
/// let text = backend.render();
/// assert!(text.contains(r#"comments_created_total{service="api",region="eu"} 1"#));
/// assert!(text.contains("http_request_duration_seconds_bucket"));
/// ```
#[derive(Clone)]
pub struct PrometheusBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PrometheusBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusBackend")
            .field("max_series_per_metric", &self.inner.max_series_per_metric)
            .field("max_metric_names", &self.inner.max_metric_names)
            .finish_non_exhaustive()
    }
}

/// The result of resolving a key against the limits.
enum Resolved {
    /// Export under this key (`None`: the key as given), scaling values by `scale`.
    Export { key: Option<Key>, scale: Option<f64> },
    /// Too many metric names: not exported.
    Dropped,
}

impl PrometheusBackend {
    /// A builder with the defaults.
    pub fn builder() -> PrometheusBackendBuilder {
        PrometheusBackendBuilder::default()
    }

    /// Renders every series in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }

    /// Drains histogram buffers; the `/metrics` server calls it every few seconds.
    pub fn run_upkeep(&self) {
        self.inner.handle.run_upkeep();
    }

    /// The name `name` is rendered under in the exposition text, once it was described or
    /// recorded (`None` before that, or when it was not exported because of the name limit).
    ///
    /// Counters get `_total` (`http.request.count` is `http_request_total`); time and size
    /// metrics get their base unit (`http.request.duration` is `http_request_duration_seconds`,
    /// whose lines add `_bucket`, `_sum` and `_count`).
    ///
    /// ```
    /// use vigil_metrics_prometheus::PrometheusBackend;
    ///
    /// let backend = PrometheusBackend::builder().build().unwrap();
    /// assert_eq!(backend.exported_name("http.request.count").as_deref(), Some("http_request_total"));
    /// assert_eq!(
    ///     backend.exported_name("http.request.duration").as_deref(),
    ///     Some("http_request_duration_seconds")
    /// );
    /// assert_eq!(backend.exported_name("never.seen"), None);
    /// ```
    pub fn exported_name(&self, name: &str) -> Option<String> {
        self.names_read().get(name).map(|s| s.rendered_name.clone())
    }

    /// The rendered name of `name` and the factor from its rendered values back to the
    /// recorded unit (1000 for a millisecond histogram exported in seconds).
    pub(crate) fn exported(&self, name: &str) -> Option<(String, f64)> {
        self.names_read()
            .get(name)
            .map(|s| (s.rendered_name.clone(), s.scale.map_or(1.0, |scale| 1.0 / scale)))
    }

    /// The number of label sets currently tracked for `name` (at most the limit).
    pub fn series_count(&self, name: &str) -> usize {
        self.names_read().get(name).map_or(0, |s| s.series.len())
    }

    fn names_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, NameState>> {
        self.inner.names.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn names_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, NameState>> {
        self.inner.names.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn new_state(name: &str, kind: Kind, unit: Option<Unit>) -> (NameState, Option<Unit>) {
        let (exported_unit, scale) = base_unit(unit);
        // Counters hold integers: they keep their values and lose a non-base unit.
        let (exported_unit, scale) = if kind == Kind::Counter && scale.is_some() {
            (None, None)
        } else {
            (exported_unit, scale)
        };
        let mut export = match kind {
            Kind::Counter => name
                .strip_suffix(".count")
                .or_else(|| name.strip_suffix("_count"))
                .filter(|s| !s.is_empty())
                .unwrap_or(name)
                .to_owned(),
            Kind::Gauge | Kind::Histogram => name.to_owned(),
        };
        // The unit goes into the key's name (not only the rendered name) so bucket matchers see it.
        if exported_unit == Some(Unit::Seconds) && !export.ends_with("seconds") {
            export.push_str("_seconds");
        }
        if kind != Kind::Counter && exported_unit == Some(Unit::Bytes) && !export.ends_with("bytes") {
            export.push_str("_bytes");
        }
        let rendered_name = rendered_name(&export, kind, exported_unit);
        let state = NameState {
            export_name: KeyName::from(export),
            rendered_name,
            scale,
            series: HashSet::new(),
            warned: false,
        };
        (state, exported_unit)
    }

    fn describe(&self, name: &str, kind: Kind, unit: Option<Unit>, help: SharedString) {
        let mut names = self.names_write();
        // A metric is described once: later descriptions (and units) do not change its name.
        if names.contains_key(name) || names.len() >= self.inner.max_metric_names {
            return;
        }
        let (state, exported_unit) = Self::new_state(name, kind, unit);
        let export_name = state.export_name.clone();
        names.insert(name.to_owned(), state);
        drop(names);
        self.describe_inner(kind, export_name, exported_unit, help);
    }

    fn describe_inner(&self, kind: Kind, name: KeyName, unit: Option<Unit>, help: SharedString) {
        let r = &self.inner.recorder;
        match kind {
            Kind::Counter => r.describe_counter(name, unit, help),
            Kind::Gauge => r.describe_gauge(name, unit, help),
            Kind::Histogram => r.describe_histogram(name, unit, help),
        }
    }

    fn label_hash(&self, key: &Key) -> u64 {
        let mut h = self.inner.hasher.build_hasher();
        for label in key.labels() {
            label.key().hash(&mut h);
            label.value().hash(&mut h);
        }
        h.finish()
    }

    fn resolve(&self, key: &Key, kind: Kind) -> Resolved {
        let name = key.name();
        let hash = self.label_hash(key);
        {
            let names = self.names_read();
            if let Some(state) = names.get(name)
                && state.series.contains(&hash)
            {
                return Resolved::Export {
                    key: Self::export_key(state, key, false),
                    scale: state.scale,
                };
            }
        }
        let mut names = self.names_write();
        if !names.contains_key(name) {
            if names.len() >= self.inner.max_metric_names {
                drop(names);
                self.count_too_many_names(name);
                return Resolved::Dropped;
            }
            let (state, unit) = Self::new_state(name, kind, None);
            let export_name = state.export_name.clone();
            names.insert(name.to_owned(), state);
            // Undescribed metrics still get HELP text, so `promtool check metrics` accepts them.
            self.describe_inner(
                kind,
                export_name,
                unit,
                format!("{name} (no description was given before first use)").into(),
            );
        }
        let limit = self.inner.max_series_per_metric;
        let state = names.get_mut(name).unwrap_or_else(|| unreachable!("inserted above"));
        if state.series.contains(&hash) || state.series.len() < limit {
            state.series.insert(hash);
            return Resolved::Export {
                key: Self::export_key(state, key, false),
                scale: state.scale,
            };
        }
        let first_overflow = !std::mem::replace(&mut state.warned, true);
        let resolved = Resolved::Export {
            key: Self::export_key(state, key, true),
            scale: state.scale,
        };
        drop(names);
        if first_overflow {
            tracing::warn!(
                metric = name,
                limit,
                "metric reached its label-set limit; new label sets are folded into its __overflow__ series"
            );
        }
        self.count_overflow(name);
        resolved
    }

    /// The key to hand the exporter, or `None` when the given key can be used as it is.
    fn export_key(state: &NameState, key: &Key, overflow: bool) -> Option<Key> {
        if overflow {
            let labels: Vec<Label> = key
                .labels()
                .map(|l| Label::new(l.key().to_owned(), OVERFLOW_LABEL_VALUE))
                .collect();
            Some(Key::from_parts(state.export_name.clone(), labels))
        } else if state.export_name.as_str() == key.name() {
            None
        } else {
            Some(Key::from_parts(
                state.export_name.clone(),
                key.labels().cloned().collect::<Vec<_>>(),
            ))
        }
    }

    fn count_overflow(&self, metric: &str) {
        let key = Key::from_parts(
            catalogue::VIGIL_METRICS_OVERFLOW.name,
            vec![Label::new("metric", metric.to_owned())],
        );
        if metric != catalogue::VIGIL_METRICS_OVERFLOW.name {
            self.register_counter(&key, &METADATA).increment(1);
        }
    }

    fn count_too_many_names(&self, name: &str) {
        if !self.inner.names_full_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                metric = name,
                limit = self.inner.max_metric_names,
                "too many metric names; new metric names are not exported"
            );
        }
        let key = Key::from_parts(
            catalogue::VIGIL_METRICS_OVERFLOW.name,
            vec![Label::new("metric", TOO_MANY_METRICS)],
        );
        let mut names = self.names_write();
        // The overflow counter itself is always allowed.
        if !names.contains_key(catalogue::VIGIL_METRICS_OVERFLOW.name) {
            let (state, _) = Self::new_state(catalogue::VIGIL_METRICS_OVERFLOW.name, Kind::Counter, None);
            names.insert(catalogue::VIGIL_METRICS_OVERFLOW.name.to_owned(), state);
        }
        let state = names
            .get(catalogue::VIGIL_METRICS_OVERFLOW.name)
            .unwrap_or_else(|| unreachable!("inserted above"));
        let export = Self::export_key(state, &key, false).unwrap_or(key);
        drop(names);
        self.inner.recorder.register_counter(&export, &METADATA).increment(1);
    }
}

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

impl Recorder for PrometheusBackend {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.as_str(), Kind::Counter, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.as_str(), Kind::Gauge, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.as_str(), Kind::Histogram, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        match self.resolve(key, Kind::Counter) {
            Resolved::Export { key: export, .. } => self
                .inner
                .recorder
                .register_counter(export.as_ref().unwrap_or(key), metadata),
            Resolved::Dropped => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        match self.resolve(key, Kind::Gauge) {
            Resolved::Export { key: export, scale } => {
                let gauge = self
                    .inner
                    .recorder
                    .register_gauge(export.as_ref().unwrap_or(key), metadata);
                match scale {
                    None => gauge,
                    Some(scale) => Gauge::from_arc(Arc::new(Scaled { inner: gauge, scale })),
                }
            }
            Resolved::Dropped => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        match self.resolve(key, Kind::Histogram) {
            Resolved::Export { key: export, scale } => {
                let histogram = self
                    .inner
                    .recorder
                    .register_histogram(export.as_ref().unwrap_or(key), metadata);
                match scale {
                    None => histogram,
                    Some(scale) => Histogram::from_arc(Arc::new(Scaled {
                        inner: histogram,
                        scale,
                    })),
                }
            }
            Resolved::Dropped => Histogram::noop(),
        }
    }
}

/// A gauge or histogram whose values are converted to the exported base unit.
struct Scaled<T> {
    inner: T,
    scale: f64,
}

impl HistogramFn for Scaled<Histogram> {
    fn record(&self, value: f64) {
        self.inner.record(value * self.scale);
    }
}

impl GaugeFn for Scaled<Gauge> {
    fn increment(&self, value: f64) {
        self.inner.increment(value * self.scale);
    }
    fn decrement(&self, value: f64) {
        self.inner.decrement(value * self.scale);
    }
    fn set(&self, value: f64) {
        self.inner.set(value * self.scale);
    }
}
