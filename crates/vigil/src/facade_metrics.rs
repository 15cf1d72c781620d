//! The seed's metrics facade: `Metrics::increment`, `Metrics::gauge`, `Metrics::histogram`.

use vigil_core::handles;

/// The seed's metrics facade. Updates go to every installed metrics backend through the
/// `metrics` crate, exactly like `metrics::counter!`, but handles are cached, so a labelled
/// update costs a hash and an atomic add instead of a registry lookup.
///
/// Tag values should be bounded (a region, a route template, a status): each distinct set of
/// tags is a series. Backends cap the series per metric (Prometheus:
/// `PROMETHEUS_MAX_SERIES_PER_METRIC`), folding the excess into an overflow series.
///
/// ```
/// use vigil::Metrics;
///
/// Metrics::increment("comments.created", 1, &[("region", "us-east")]);
/// Metrics::gauge("users.online", 42.0, &[("region", "us-east")]);
/// Metrics::histogram("comment.creation.duration", 12.5, &[("region", "us-east")]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Metrics;

impl Metrics {
    /// Adds `value` to the counter `name` with `tags`.
    pub fn increment(name: &str, value: u64, tags: &[(&str, &str)]) {
        handles::increment(name, value, tags);
    }

    /// Sets the gauge `name` with `tags` to `value`.
    pub fn gauge(name: &str, value: f64, tags: &[(&str, &str)]) {
        handles::gauge_set(name, value, tags);
    }

    /// Records `value` in the histogram `name` with `tags`. Non-finite values are ignored.
    pub fn histogram(name: &str, value: f64, tags: &[(&str, &str)]) {
        handles::histogram(name, value, tags);
    }
}
