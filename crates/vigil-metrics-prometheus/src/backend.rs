//! The recorder: Vigil's naming rules, unit conversion and cardinality limits in front of its
//! own storage (see `registry`), and the render of that storage on `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::formatting::sanitize_metric_name;
use vigil_core::catalogue;

use crate::PrometheusError;
use crate::cells::Scale;
use crate::registry::{Buckets, Family, GlobalLabels, Kind, OVERFLOW, Registered, SeriesHandle};
use crate::text::{NameRole, lint_clean_name, snake_case};

/// The label value every label of an overflow series carries.
pub const OVERFLOW_LABEL_VALUE: &str = OVERFLOW;
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
    /// None today: the configuration is checked as it is given (see
    /// [`buckets`](Self::buckets)). The `Result` stays for checks that need the whole
    /// configuration.
    pub fn build(self) -> Result<PrometheusBackend, PrometheusError> {
        // Catalogue histograms with buckets of their own (long-lived connections), by exported
        // name, in their recorded unit.
        let mut catalogue_buckets = HashMap::new();
        for def in catalogue::ALL {
            if let (catalogue::MetricKind::Histogram, Some(buckets)) = (def.kind, def.buckets) {
                let naming = Naming::of(def.name, Kind::Histogram, def.unit);
                catalogue_buckets.insert(naming.name, (naming.scale, buckets.to_vec()));
            }
        }
        let backend = PrometheusBackend {
            inner: Arc::new(Inner {
                names: RwLock::new(Names::default()),
                globals: GlobalLabels::new(&self.global_labels),
                max_series_per_metric: self.max_series_per_metric,
                max_metric_names: self.max_metric_names,
                names_full_warned: AtomicBool::new(false),
                buckets: self.buckets,
                catalogue_buckets,
                last_render_len: AtomicUsize::new(0),
            }),
        };
        for def in catalogue::ALL {
            backend.describe(def.name, def.kind.into(), def.unit, def.help);
        }
        Ok(backend)
    }
}

/// The catalogue's millisecond duration buckets, in seconds (1 ms to 10 s): for histograms
/// recorded in a time unit and exported in seconds.
pub fn duration_buckets_seconds() -> Vec<f64> {
    catalogue::DURATION_BUCKETS_MS.iter().map(|ms| ms / 1000.0).collect()
}

/// How a unit is exported: Prometheus wants base units (`promtool check metrics` rejects
/// `_milliseconds`), so time is converted to seconds and sizes to bytes.
fn base_unit(unit: Option<Unit>) -> (Option<Unit>, Scale) {
    match unit {
        Some(Unit::Seconds) => (Some(Unit::Seconds), Scale::One),
        Some(Unit::Milliseconds) => (Some(Unit::Seconds), Scale::Div(1e3)),
        Some(Unit::Microseconds) => (Some(Unit::Seconds), Scale::Div(1e6)),
        Some(Unit::Nanoseconds) => (Some(Unit::Seconds), Scale::Div(1e9)),
        Some(Unit::Bytes) => (Some(Unit::Bytes), Scale::One),
        Some(Unit::Kibibytes) => (Some(Unit::Bytes), Scale::Mul(1024.0)),
        Some(Unit::Mebibytes) => (Some(Unit::Bytes), Scale::Mul(1024.0 * 1024.0)),
        Some(Unit::Gibibytes) => (Some(Unit::Bytes), Scale::Mul(1024.0 * 1024.0 * 1024.0)),
        Some(Unit::Tebibytes) => (Some(Unit::Bytes), Scale::Mul(1024.0 * 1024.0 * 1024.0 * 1024.0)),
        // Counts need no suffix; rates and percentages have no Prometheus base unit.
        _ => (None, Scale::One),
    }
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

/// How a metric name is exported.
struct Naming {
    /// The exported name: sanitized, with its unit suffix and, for counters, `_total`.
    name: String,
    /// From the recorded unit to the exported base unit.
    scale: Scale,
}

impl Naming {
    fn of(name: &str, kind: Kind, unit: Option<Unit>) -> Self {
        let (exported_unit, scale) = base_unit(unit);
        // Counters hold integers: they keep their values and lose a non-base unit.
        let (exported_unit, scale) = if kind == Kind::Counter && scale != Scale::One {
            (None, Scale::One)
        } else {
            (exported_unit, scale)
        };
        let export = match kind {
            Kind::Counter => name
                .strip_suffix(".count")
                .or_else(|| name.strip_suffix("_count"))
                .filter(|s| !s.is_empty())
                .unwrap_or(name)
                .to_owned(),
            Kind::Gauge | Kind::Histogram => name.to_owned(),
        };
        // Lower-case snake case without `:` (promtool's linter rejects camelCase and colons).
        let mut name = snake_case(&sanitize_metric_name(&export)).replace(':', "_");
        if kind == Kind::Counter
            && let Some(base) = name.strip_suffix("_total")
        {
            // Added back below, after the parts are checked.
            name.truncate(base.len());
        }
        if name.is_empty() {
            name.push('_');
        }
        let base_suffix = match exported_unit {
            Some(Unit::Seconds) => Some("seconds"),
            Some(Unit::Bytes) => Some("bytes"),
            _ => None,
        };
        if let Some(suffix) = base_suffix {
            // A name ending in its recorded unit (`queue_kibibytes` recorded in KiB) ends in
            // the exported one instead; any other name gets the exported unit appended.
            let last_start = name.rfind('_').map_or(0, |i| i + 1);
            let last = &name[last_start..];
            if last == suffix || unit.is_some_and(|u| u.as_str() == last) {
                name.truncate(last_start);
            } else {
                name.push('_');
            }
            name.push_str(suffix);
        }
        let role = match kind {
            Kind::Counter => NameRole::CounterBase,
            Kind::Gauge => NameRole::Gauge,
            Kind::Histogram => NameRole::Histogram,
        };
        let mut name = lint_clean_name(&name, role);
        if kind == Kind::Counter {
            name.push_str("_total");
        }
        Naming { name, scale }
    }
}

/// What a metric name resolves to.
enum Target {
    /// Exported as this family (shared with other names exported under the same name).
    Family(Arc<Family>),
    /// Not exported: its exported name is taken by a metric stored differently.
    Conflict,
}

/// The registry of metric names.
#[derive(Default)]
struct Names {
    /// Metric name as recorded → what it resolves to.
    by_source: HashMap<Box<str>, Target, foldhash::fast::FixedState>,
    /// Every line name in use (a histogram's `_bucket`, `_sum` and `_count` too) → its family.
    by_line_name: HashMap<String, Arc<Family>, foldhash::fast::FixedState>,
    /// The families in the order they were created: the render's order.
    order: Vec<Arc<Family>>,
}

struct Inner {
    names: RwLock<Names>,
    globals: GlobalLabels,
    max_series_per_metric: usize,
    max_metric_names: usize,
    names_full_warned: AtomicBool,
    /// Bucket upper bounds of histograms with neither a time nor a size unit.
    buckets: Vec<f64>,
    /// Exported name → (scale, bounds in the recorded unit) of catalogue histograms with
    /// buckets of their own.
    catalogue_buckets: HashMap<String, (Scale, Vec<f64>)>,
    /// The length of the last render, to size the next one's buffer.
    last_render_len: AtomicUsize,
}

/// Vigil's Prometheus metrics backend: a [`metrics::Recorder`] with its own lock-free storage,
/// and the text it serves on `/metrics`.
///
/// It:
/// - follows Prometheus naming: counters end in `_total` (a trailing `.count` becomes
///   `_total`: `http.request.count` is `http_request_total`), invalid characters and colons
///   become `_`, names and label names are lower-case snake case, and a name part promtool's
///   linter rejects (a unit abbreviation such as `_ms`, a type such as `_gauge`, a non-base unit
///   such as `_hours`, another kind's suffix such as a gauge's `_total`) is joined to its
///   neighbour (`latency_ms` is `latencyms`), so `promtool check metrics` accepts any name;
/// - exports base units: a histogram described in milliseconds (the catalogue's durations) is
///   exported in seconds with a `_seconds` suffix and second buckets, its values converted;
///   sizes are exported in bytes with a `_bytes` suffix and size buckets;
/// - renders every histogram as a real histogram with buckets, never a summary;
/// - gives every metric HELP text (a generic one when it was not described before first use,
///   or described with an empty text);
/// - limits label sets per metric: past the limit, new label sets fold into one overflow
///   series (all label values `__overflow__`), counted by `vigil_metrics_overflow_total` and
///   logged once per metric, so memory stays bounded whatever label values arrive;
/// - never writes an invalid exposition: two metric names exported under one name share its
///   series when they store alike (same kind, unit and buckets); otherwise the later one is not
///   exported (logged once, and each registration counted by `vigil_metrics_overflow_total`
///   with its name), as is a name registered as another kind than it was first. The label
///   names `le`, `quantile` and `__name__` are exported as `exported_le` and so on.
///
/// Registering a series (the `metrics` macros, [`Recorder::register_counter`] and kin) takes
/// the metric's lock; the returned handles update atomics with no lock and no allocation (a
/// histogram record finds its bucket among the bounds, adds one to it and adds the value to
/// the sum), so callers cache them, as Vigil's facade does. Values are kept in the unit they
/// were recorded in and converted when rendered. Gauges and histograms ignore NaN and
/// infinities.
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

/// What a registration came to, acted on once the locks are released.
enum Outcome {
    Registered(Registered),
    /// Not exported: a name conflict, or a kind other than the metric's.
    Unexported {
        /// The metric's kind, when this is the first registration as another kind.
        first_kind_conflict: Option<Kind>,
    },
    /// Not exported: too many metric names.
    TooManyNames,
}

impl PrometheusBackend {
    /// A builder with the defaults.
    pub fn builder() -> PrometheusBackendBuilder {
        PrometheusBackendBuilder::default()
    }

    /// Renders every series in the Prometheus text exposition format: for each metric with at
    /// least one series, in the order the metrics were first described or recorded, its HELP
    /// and TYPE lines, then its series in the order they were registered.
    ///
    /// It takes each metric's lock for reading while it writes that metric, so it never
    /// blocks an update; the values of one series are read one by one, so a render racing
    /// with a histogram record may count it in the buckets but not yet in the sum.
    pub fn render(&self) -> String {
        let families = self.names_read().order.clone();
        let hint = self.inner.last_render_len.load(Ordering::Relaxed);
        let mut out = String::with_capacity(hint + hint / 8 + 1024);
        for family in &families {
            family.render(self.inner.globals.text(), &mut out);
        }
        self.inner.last_render_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// The name `name` is rendered under in the exposition text, once it was described or
    /// recorded (`None` before that, or when it was not exported because of the name limit
    /// or a conflict).
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
        self.family(name).map(|f| f.name.to_string())
    }

    /// The rendered name of `name` and the factor from its rendered values back to the
    /// recorded unit (1000 for a millisecond histogram exported in seconds).
    pub(crate) fn exported(&self, name: &str) -> Option<(String, f64)> {
        self.family(name).map(|f| (f.name.to_string(), f.scale.inverse()))
    }

    /// The number of label sets currently tracked for `name` (at most the limit; overflow
    /// series are not counted).
    pub fn series_count(&self, name: &str) -> usize {
        self.family(name).map_or(0, |f| f.series_count())
    }

    fn family(&self, name: &str) -> Option<Arc<Family>> {
        match self.names_read().by_source.get(name) {
            Some(Target::Family(f)) => Some(Arc::clone(f)),
            Some(Target::Conflict) | None => None,
        }
    }

    fn names_read(&self) -> std::sync::RwLockReadGuard<'_, Names> {
        self.inner.names.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn names_write(&self) -> std::sync::RwLockWriteGuard<'_, Names> {
        self.inner.names.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether one more metric name may be kept (the overflow counter always may).
    fn name_allowed(&self, names: &Names, name: &str) -> bool {
        names.by_source.len() < self.inner.max_metric_names || name == catalogue::VIGIL_METRICS_OVERFLOW.name
    }

    fn describe(&self, name: &str, kind: Kind, unit: Option<Unit>, help: &str) {
        let mut names = self.names_write();
        // A metric is described once: later descriptions (and units) change nothing.
        if names.by_source.contains_key(name) || !self.name_allowed(&names, name) {
            return;
        }
        // An empty (or blank) description would make no HELP text at all, which promtool
        // rejects: such a metric gets a generic one.
        let generic;
        let help = if help.trim().is_empty() {
            generic = format!("{name} (no description was given)");
            &generic
        } else {
            help
        };
        let target = self.create(&mut names, name, kind, unit, help);
        names.by_source.insert(name.into(), target);
    }

    /// The target of a new metric name: a new family, a compatible family already exported
    /// under the same name, or a conflict.
    fn create(&self, names: &mut Names, source: &str, kind: Kind, unit: Option<Unit>, help: &str) -> Target {
        let Naming { name, scale } = Naming::of(source, kind, unit);
        let buckets = (kind == Kind::Histogram).then(|| self.histogram_buckets(&name, scale));
        let line_names = Family::line_names(kind, &name);
        for line_name in &line_names {
            if let Some(existing) = names.by_line_name.get(line_name) {
                if *existing.name == *name && existing.stores_like(kind, scale, buckets.as_ref()) {
                    return Target::Family(Arc::clone(existing));
                }
                tracing::warn!(
                    metric = source,
                    exported = %name,
                    taken_by = %existing.name,
                    "metric's exported name is taken by another metric stored differently; it is not exported"
                );
                return Target::Conflict;
            }
        }
        let family = Arc::new(Family::new(kind, name, help, scale, buckets));
        for line_name in line_names {
            names.by_line_name.insert(line_name, Arc::clone(&family));
        }
        names.order.push(Arc::clone(&family));
        Target::Family(family)
    }

    /// The buckets of histogram `name` (exported name) recorded with `scale`: the catalogue's
    /// own for it, else second buckets for `_seconds`, size buckets for `_bytes`, else the
    /// builder's. Bounds in the recorded unit are derived exactly where the unit allows
    /// (milliseconds keep the catalogue's millisecond bounds), so a value on a bound is
    /// counted in that bound's bucket.
    fn histogram_buckets(&self, name: &str, scale: Scale) -> Buckets {
        let recorded = |exported: &[f64]| -> Vec<f64> { exported.iter().map(|b| b * scale.inverse()).collect() };
        if let Some((own_scale, bounds)) = self.inner.catalogue_buckets.get(name) {
            let exported: Vec<f64> = bounds.iter().map(|b| own_scale.apply(*b)).collect();
            if *own_scale == scale {
                return Buckets::new(bounds, &exported);
            }
            return Buckets::new(&recorded(&exported), &exported);
        }
        if name.ends_with("_seconds") {
            let exported = duration_buckets_seconds();
            let bounds: Vec<f64> = match scale {
                // Milliseconds, microseconds, nanoseconds: the millisecond bounds times 1, 10^3, 10^6.
                Scale::Div(d) if d >= 1e3 => catalogue::DURATION_BUCKETS_MS.iter().map(|ms| ms * (d / 1e3)).collect(),
                _ => recorded(&exported),
            };
            return Buckets::new(&bounds, &exported);
        }
        if name.ends_with("_bytes") {
            return Buckets::new(&recorded(SIZE_BUCKETS_BYTES), SIZE_BUCKETS_BYTES);
        }
        Buckets::new(&recorded(&self.inner.buckets), &self.inner.buckets)
    }

    /// Registers the series of `key` as `kind`, enforcing the limits; `None` when it is not
    /// exported.
    fn register(&self, key: &Key, kind: Kind) -> Option<SeriesHandle> {
        let name = key.name();
        let outcome = {
            let names = self.names_read();
            names
                .by_source
                .get(name)
                .map(|target| self.register_in(target, key, kind))
        };
        let outcome = outcome.unwrap_or_else(|| {
            let mut names = self.names_write();
            if !names.by_source.contains_key(name) {
                if !self.name_allowed(&names, name) {
                    return Outcome::TooManyNames;
                }
                let help = format!("{name} (no description was given before first use)");
                let target = self.create(&mut names, name, kind, None, &help);
                names.by_source.insert(name.into(), target);
            }
            let target = names
                .by_source
                .get(name)
                .unwrap_or_else(|| unreachable!("inserted above"));
            self.register_in(target, key, kind)
        });
        match outcome {
            Outcome::Registered(registered) => {
                if registered.overflowed {
                    if registered.first_overflow {
                        tracing::warn!(
                            metric = name,
                            limit = self.inner.max_series_per_metric,
                            "metric reached its label-set limit; new label sets are folded into its __overflow__ series"
                        );
                    }
                    self.count_overflow(name);
                }
                Some(registered.handle)
            }
            Outcome::Unexported { first_kind_conflict } => {
                if let Some(existing) = first_kind_conflict {
                    tracing::warn!(
                        metric = name,
                        kind = kind.as_str(),
                        existing = existing.as_str(),
                        "metric registered as another kind than it was first; it is not exported as that kind"
                    );
                }
                self.count_overflow(name);
                None
            }
            Outcome::TooManyNames => {
                self.count_too_many_names(name);
                None
            }
        }
    }

    fn register_in(&self, target: &Target, key: &Key, kind: Kind) -> Outcome {
        match target {
            Target::Family(family) if family.kind == kind => {
                Outcome::Registered(family.register(&self.inner.globals, key, self.inner.max_series_per_metric))
            }
            Target::Family(family) => Outcome::Unexported {
                first_kind_conflict: family.first_kind_conflict().then_some(family.kind),
            },
            Target::Conflict => Outcome::Unexported {
                first_kind_conflict: None,
            },
        }
    }

    /// Counts a registration that was folded or not exported, by metric name.
    fn count_overflow(&self, metric: &str) {
        if metric != catalogue::VIGIL_METRICS_OVERFLOW.name {
            let key = Key::from_parts(
                catalogue::VIGIL_METRICS_OVERFLOW.name,
                vec![Label::new("metric", metric.to_owned())],
            );
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
        self.register_counter(&key, &METADATA).increment(1);
    }
}

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

impl Recorder for PrometheusBackend {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.as_str(), Kind::Counter, unit, &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.as_str(), Kind::Gauge, unit, &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.as_str(), Kind::Histogram, unit, &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        match self.register(key, Kind::Counter) {
            Some(SeriesHandle::Counter(c)) => c,
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        match self.register(key, Kind::Gauge) {
            Some(SeriesHandle::Gauge(g)) => g,
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        match self.register(key, Kind::Histogram) {
            Some(SeriesHandle::Histogram(h)) => h,
            _ => Histogram::noop(),
        }
    }
}
