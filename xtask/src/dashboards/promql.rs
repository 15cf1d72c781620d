//! Prometheus names of the catalogue's metrics, and the PromQL the dashboards and rules are built
//! from.
//!
//! [`prom_name`] applies the naming rules of `vigil-metrics-prometheus` (counters end in `_total`,
//! a trailing `.count` becoming `_total`; millisecond histograms are exported in seconds with a
//! `_seconds` suffix, byte sizes with `_bytes`; dots become underscores), so every name in a
//! generated query comes from a catalogue constant and the rules of the backend. A unit test
//! checks it against a real render of the backend.

use metrics::Unit;
use vigil_core::catalogue::{self, MetricDef, MetricKind};

/// The label matchers every dashboard query carries: the dashboard's template variables.
pub const DASHBOARD_FILTER: &str = r#"service="$service", environment="$environment", instance=~"$instance""#;

/// The range of `rate()` in dashboard queries: Grafana's `$__rate_interval` (at least four
/// scrape intervals, so a rate never sees fewer than two samples).
pub const RATE_INTERVAL: &str = "$__rate_interval";

/// The unit a value is exported in, and whether the backend converts it to get there.
fn base_unit(unit: Option<Unit>) -> (Option<&'static str>, bool) {
    match unit {
        Some(Unit::Seconds) => (Some("seconds"), false),
        Some(Unit::Milliseconds | Unit::Microseconds | Unit::Nanoseconds) => (Some("seconds"), true),
        Some(Unit::Bytes) => (Some("bytes"), false),
        Some(Unit::Kibibytes | Unit::Mebibytes | Unit::Gibibytes | Unit::Tebibytes) => (Some("bytes"), true),
        _ => (None, false),
    }
}

/// Replaces every character Prometheus does not allow in a metric name with `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            let ok = c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit());
            if ok { c } else { '_' }
        })
        .collect()
}

/// The name `vigil-metrics-prometheus` exports `def` under: for counters and gauges the series
/// name, for histograms the family name (its series add `_bucket`, `_sum` and `_count`).
///
/// `http.request.count` → `http_request_total`, `http.request.duration` (ms) →
/// `http_request_duration_seconds`, `process.memory.resident` (bytes) →
/// `process_memory_resident_bytes`.
pub fn prom_name(def: &MetricDef) -> String {
    let (unit, converted) = base_unit(def.unit);
    // Counters hold integers: a unit that would need converting is dropped instead.
    let unit = if def.kind == MetricKind::Counter && converted {
        None
    } else {
        unit
    };
    let base = match def.kind {
        MetricKind::Counter => def
            .name
            .strip_suffix(".count")
            .or_else(|| def.name.strip_suffix("_count"))
            .filter(|s| !s.is_empty())
            .unwrap_or(def.name),
        MetricKind::Gauge | MetricKind::Histogram => def.name,
    };
    let mut name = sanitize(base);
    if let Some(unit) = unit
        && !name.ends_with(unit)
    {
        name.push('_');
        name.push_str(unit);
    }
    if def.kind == MetricKind::Counter && !name.ends_with("total") {
        name.push_str("_total");
    }
    name
}

/// Which series of a metric a selector names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The counter or gauge itself.
    Value,
    /// A histogram's `_bucket` series.
    Bucket,
    /// A histogram's `_sum` series.
    Sum,
    /// A histogram's `_count` series.
    Count,
}

/// The series name of `part` of `def`.
///
/// # Panics
///
/// When asking a histogram for its [`Part::Value`] or a counter or gauge for a histogram part:
/// a bug in a dashboard definition, caught by the generator's tests.
pub fn series_name(def: &MetricDef, part: Part) -> String {
    let name = prom_name(def);
    match (def.kind, part) {
        (MetricKind::Counter | MetricKind::Gauge, Part::Value) => name,
        (MetricKind::Histogram, Part::Bucket) => format!("{name}_bucket"),
        (MetricKind::Histogram, Part::Sum) => format!("{name}_sum"),
        (MetricKind::Histogram, Part::Count) => format!("{name}_count"),
        (kind, part) => panic!("{} is a {}: it has no {part:?} series", def.name, kind.as_str()),
    }
}

/// Every series name the catalogue's metrics are exported under, with the metric each belongs to.
pub fn all_series_names() -> Vec<(String, &'static MetricDef)> {
    let mut names = Vec::new();
    for def in catalogue::ALL {
        match def.kind {
            MetricKind::Counter | MetricKind::Gauge => names.push((series_name(def, Part::Value), def)),
            MetricKind::Histogram => {
                for part in [Part::Bucket, Part::Sum, Part::Count] {
                    names.push((series_name(def, part), def));
                }
            }
        }
    }
    names
}

/// Where a query runs, which decides the label matchers every selector gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A dashboard: the `service`, `environment` and `instance` variables ([`DASHBOARD_FILTER`]).
    Dashboard,
    /// An alert rule: every service, environment and instance.
    Rule,
}

/// A selector for `part` of `def`, with the scope's matchers and `extra` ones
/// (`status=~"5.."`).
pub fn select(def: &MetricDef, part: Part, scope: Scope, extra: &[&str]) -> String {
    let mut matchers: Vec<&str> = Vec::new();
    if scope == Scope::Dashboard {
        matchers.push(DASHBOARD_FILTER);
    }
    matchers.extend_from_slice(extra);
    let name = series_name(def, part);
    if matchers.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", matchers.join(", "))
    }
}

/// `sum by (labels) (inner)`, or `sum(inner)` without labels.
pub fn sum_by(labels: &[&str], inner: &str) -> String {
    aggregate("sum", labels, inner)
}

/// `op by (labels) (inner)`, or `op(inner)` without labels.
pub fn aggregate(op: &str, labels: &[&str], inner: &str) -> String {
    if labels.is_empty() {
        format!("{op}({inner})")
    } else {
        format!("{op} by ({}) ({inner})", labels.join(", "))
    }
}

/// `rate(selector[window])`.
pub fn rate(selector: &str, window: &str) -> String {
    format!("rate({selector}[{window}])")
}

/// The `q` quantile of histogram `def` by `labels`, over `window`:
/// `histogram_quantile(q, sum by (le, labels) (rate(<bucket>[window])))`.
pub fn quantile(q: f64, def: &MetricDef, labels: &[&str], scope: Scope, extra: &[&str], window: &str) -> String {
    let mut by = vec!["le"];
    by.extend_from_slice(labels);
    let buckets = rate(&select(def, Part::Bucket, scope, extra), window);
    format!("histogram_quantile({q}, {})", sum_by(&by, &buckets))
}

/// Finds the catalogue series in a PromQL expression: for each occurrence of a known series name
/// as a whole identifier, the name and its selector text (the name with its `{...}` matchers, if
/// any). Identifiers directly followed by `{` that are no catalogue series are returned as errors.
///
/// # Errors
///
/// With the unknown metric names, so a misspelled name fails the generator's tests.
pub fn selectors(expr: &str) -> Result<Vec<(String, String)>, Vec<String>> {
    let known = all_series_names();
    let bytes = expr.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if b == b'"' || b == b'\'' || b == b'`' {
            quote = Some(b);
            i += 1;
            continue;
        }
        if !(b.is_ascii_alphabetic() || b == b'_' || b == b':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let ident = &expr[start..i];
        let braces = bytes.get(i) == Some(&b'{');
        let end = if braces {
            matching_brace(bytes, i).unwrap_or(bytes.len())
        } else {
            i
        };
        if known.iter().any(|(name, _)| name == ident) {
            found.push((ident.to_owned(), expr[start..end].to_owned()));
        } else if braces {
            unknown.push(ident.to_owned());
        }
        i = end;
    }
    if unknown.is_empty() { Ok(found) } else { Err(unknown) }
}

/// The offset just past the `}` closing the `{` at `open`, skipping quoted label values.
fn matching_brace(bytes: &[u8], open: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    let mut i = open + 1;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            None if b == b'"' || b == b'\'' || b == b'`' => quote = Some(b),
            None if b == b'}' => return Some(i + 1),
            Some(_) | None => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use vigil_core::catalogue::*;
    use vigil_metrics_prometheus::PrometheusBackend;

    use super::*;

    #[test]
    fn names_follow_the_backend_rules() {
        assert_eq!(prom_name(&HTTP_REQUEST_COUNT), "http_request_total");
        assert_eq!(prom_name(&HTTP_REQUEST_DURATION), "http_request_duration_seconds");
        assert_eq!(prom_name(&HTTP_RESPONSE_SIZE), "http_response_size_bytes");
        assert_eq!(prom_name(&PROCESS_START_TIME), "process_start_time_seconds");
        assert_eq!(prom_name(&WEBSOCKET_MESSAGES), "websocket_messages_total");
        assert_eq!(prom_name(&TOKIO_WORKER_PARKS), "tokio_worker_parks_total");
        assert_eq!(
            series_name(&DATABASE_QUERY_DURATION, Part::Bucket),
            "database_query_duration_seconds_bucket"
        );
        let odd = MetricDef {
            name: "9lives.bytes-sent",
            kind: MetricKind::Counter,
            unit: Some(Unit::Kibibytes),
            tags: &[],
            help: "x",
            buckets: None,
        };
        assert_eq!(prom_name(&odd), "_lives_bytes_sent_total");
    }

    /// Records one value of every catalogue metric through the real Prometheus backend and checks
    /// that each one is rendered under the name [`prom_name`] gives, with its type.
    #[test]
    fn names_match_a_real_render() {
        let backend = PrometheusBackend::builder()
            .global_label("service", "naming-test")
            .global_label("environment", "test")
            .build()
            .unwrap();
        metrics::with_local_recorder(&backend, || {
            for def in ALL {
                let labels: Vec<(String, String)> =
                    def.tags.iter().map(|t| ((*t).to_owned(), "x".to_owned())).collect();
                match def.kind {
                    MetricKind::Counter => metrics::counter!(def.name, &labels).increment(1),
                    MetricKind::Gauge => metrics::gauge!(def.name, &labels).set(1.0),
                    MetricKind::Histogram => metrics::histogram!(def.name, &labels).record(1.0),
                }
            }
        });
        let text = backend.render();
        let types: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        for def in ALL {
            let name = prom_name(def);
            assert_eq!(
                types.get(name.as_str()).copied(),
                Some(def.kind.as_str()),
                "{} should be rendered as the {} {name}; the render has the families {:?}",
                def.name,
                def.kind.as_str(),
                types.keys().collect::<Vec<_>>()
            );
            let first_series = match def.kind {
                MetricKind::Histogram => series_name(def, Part::Bucket),
                _ => series_name(def, Part::Value),
            };
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{first_series}{{"))),
                "no sample line for {first_series}"
            );
        }
    }

    #[test]
    fn selectors_and_quantiles() {
        assert_eq!(
            select(&HTTP_REQUEST_COUNT, Part::Value, Scope::Rule, &[r#"status=~"5..""#]),
            r#"http_request_total{status=~"5.."}"#
        );
        assert_eq!(
            select(&PROCESS_MEMORY_RESIDENT, Part::Value, Scope::Rule, &[]),
            "process_memory_resident_bytes"
        );
        assert_eq!(
            select(&HTTP_REQUESTS_IN_FLIGHT, Part::Value, Scope::Dashboard, &[]),
            format!("http_request_in_flight{{{DASHBOARD_FILTER}}}")
        );
        assert_eq!(
            quantile(0.95, &HTTP_REQUEST_DURATION, &["route"], Scope::Rule, &[], "5m"),
            "histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))"
        );
        assert_eq!(sum_by(&[], "x"), "sum(x)");
    }

    #[test]
    #[should_panic(expected = "has no Bucket series")]
    fn parts_must_fit_the_kind() {
        let _ = series_name(&HTTP_REQUEST_COUNT, Part::Bucket);
    }

    #[test]
    fn finding_selectors() {
        let expr = r#"sum by (route) (rate(http_request_total{service="$service", status=~"5.."}[5m])) / sum(rate(http_request_total[5m])) or vector(0)"#;
        let found = selectors(expr).unwrap();
        assert_eq!(
            found,
            [
                (
                    "http_request_total".to_owned(),
                    r#"http_request_total{service="$service", status=~"5.."}"#.to_owned()
                ),
                ("http_request_total".to_owned(), "http_request_total".to_owned()),
            ]
        );
        // Label values are no metric names, even when they look like one.
        let quoted = r#"sum by (route) (process_threads{route="http_request_total{x}"})"#;
        assert_eq!(
            selectors(quoted).unwrap(),
            [(
                "process_threads".to_owned(),
                r#"process_threads{route="http_request_total{x}"}"#.to_owned()
            )]
        );
        assert_eq!(
            selectors(r#"rate(http_requests_total{a="b"}[1m])"#).unwrap_err(),
            ["http_requests_total"]
        );
    }
}
