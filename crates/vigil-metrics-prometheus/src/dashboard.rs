//! The live dashboard: a bounded, in-process history of a few derived series (request rate,
//! latency percentiles, error ratio, WebSocket connections, database latency and pool use,
//! resident memory), sampled from the backend's own exposition text, and the page that draws
//! them.
//!
//! The page (`assets/`, served as one HTML document) knows no metric name: the JSON it polls names the charts, their units,
//! the catalogue metrics they come from, and their values.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_core::catalogue::{self, MetricDef};

use crate::PrometheusBackend;

/// The page's template, script and style sheet; [`page`] puts them together.
const PAGE_TEMPLATE: &str = include_str!("../assets/dashboard.html");
const PAGE_JS: &str = include_str!("../assets/dashboard.js");
const PAGE_CSS: &str = include_str!("../assets/dashboard.css");

/// The dashboard page, one self-contained HTML document (its script and style sheet inline),
/// and the `Content-Security-Policy` that allows exactly that script and that style sheet, by
/// their SHA-256 hashes, and requests to the metrics port itself.
pub(crate) struct Page {
    pub(crate) html: String,
    pub(crate) csp: String,
}

/// The page, built once.
pub(crate) fn page() -> &'static Page {
    static PAGE: std::sync::LazyLock<Page> = std::sync::LazyLock::new(|| {
        let html = PAGE_TEMPLATE
            .replace("{{STYLE}}", PAGE_CSS)
            .replace("{{SCRIPT}}", PAGE_JS);
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            sha256_base64(PAGE_JS),
            sha256_base64(PAGE_CSS)
        );
        Page { html, csp }
    });
    &PAGE
}

/// The SHA-256 of `text`, base64-encoded, as a CSP hash source writes it.
fn sha256_base64(text: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}

/// How often the dashboard samples the registry by default.
pub const DEFAULT_DASHBOARD_INTERVAL: Duration = Duration::from_secs(1);
/// Points kept by default: 10 minutes at one point a second (600 × 112 bytes, about 66 KiB).
pub const DEFAULT_DASHBOARD_HISTORY: usize = 600;
/// The most points a history keeps, whatever is asked (a day at one point a second, about
/// 9.2 MiB).
pub const MAX_DASHBOARD_HISTORY: usize = 86_400;

/// Whether and how the metrics server serves the live dashboard on `/dashboard`.
///
/// The default serves it, sampling every second and keeping the last 600 points (10 minutes).
///
/// ```
/// use std::time::Duration;
/// use vigil_metrics_prometheus::DashboardOptions;
///
/// let fast = DashboardOptions::default().interval(Duration::from_millis(250)).history(240);
/// let off = DashboardOptions::disabled();
/// assert_ne!(fast, off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardOptions {
    pub(crate) enabled: bool,
    pub(crate) interval: Duration,
    pub(crate) history: usize,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        DashboardOptions {
            enabled: true,
            interval: DEFAULT_DASHBOARD_INTERVAL,
            history: DEFAULT_DASHBOARD_HISTORY,
        }
    }
}

impl DashboardOptions {
    /// No dashboard: `/dashboard` answers 404 and nothing is sampled.
    #[must_use]
    pub fn disabled() -> Self {
        DashboardOptions {
            enabled: false,
            ..Self::default()
        }
    }

    /// How often the registry is sampled (one point per sample), kept between 10 ms and one
    /// hour. Each sample renders the whole registry once, as a scrape does.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.clamp(Duration::from_millis(10), Duration::from_hours(1));
        self
    }

    /// How many points are kept, between 2 and [`MAX_DASHBOARD_HISTORY`]; older points are
    /// dropped. A point takes 112 bytes.
    #[must_use]
    pub fn history(mut self, points: usize) -> Self {
        self.history = points.clamp(2, MAX_DASHBOARD_HISTORY);
        self
    }
}

/// The derived series, one value per point each.
#[derive(Clone, Copy)]
enum Series {
    HttpRate,
    HttpP50,
    HttpP95,
    HttpP99,
    HttpErrorPercent,
    WsConnections,
    DbP50,
    DbP95,
    DbP99,
    PoolInUse,
    PoolSize,
    PoolMax,
    MemoryResident,
}

const SERIES: usize = 13;

/// One chart of the page.
struct Chart {
    id: &'static str,
    title: &'static str,
    unit: &'static str,
    metrics: &'static [MetricDef],
    series: &'static [(&'static str, Series)],
}

const CHARTS: &[Chart] = &[
    Chart {
        id: "http_rate",
        title: "HTTP request rate",
        unit: "req/s",
        metrics: &[catalogue::HTTP_REQUEST_COUNT],
        series: &[("requests", Series::HttpRate)],
    },
    Chart {
        id: "http_latency",
        title: "HTTP latency",
        unit: "ms",
        metrics: &[catalogue::HTTP_REQUEST_DURATION],
        series: &[
            ("p50", Series::HttpP50),
            ("p95", Series::HttpP95),
            ("p99", Series::HttpP99),
        ],
    },
    Chart {
        id: "http_errors",
        title: "HTTP errors (5xx share)",
        unit: "%",
        metrics: &[catalogue::HTTP_REQUEST_COUNT],
        series: &[("5xx", Series::HttpErrorPercent)],
    },
    Chart {
        id: "ws_connections",
        title: "WebSocket connections",
        unit: "",
        metrics: &[catalogue::WEBSOCKET_CONNECTIONS],
        series: &[("open", Series::WsConnections)],
    },
    Chart {
        id: "db_latency",
        title: "Database query latency",
        unit: "ms",
        metrics: &[catalogue::DATABASE_QUERY_DURATION],
        series: &[("p50", Series::DbP50), ("p95", Series::DbP95), ("p99", Series::DbP99)],
    },
    Chart {
        id: "db_pool",
        title: "Database pool",
        unit: "",
        metrics: &[
            catalogue::DATABASE_POOL_IN_USE,
            catalogue::DATABASE_POOL_SIZE,
            catalogue::DATABASE_POOL_MAX,
        ],
        series: &[
            ("in use", Series::PoolInUse),
            ("open", Series::PoolSize),
            ("max", Series::PoolMax),
        ],
    },
    Chart {
        id: "memory",
        title: "Memory (process RSS)",
        unit: "bytes",
        metrics: &[catalogue::PROCESS_MEMORY_RESIDENT],
        series: &[("resident", Series::MemoryResident)],
    },
];

/// How a metric is read from the exposition text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The sum over its series; for `http.request.count`, also the sum of the 5xx series.
    Sum,
    /// Its buckets, summed over its series by upper bound.
    Buckets,
}

/// The metrics a sample reads, in [`Reading`] order.
const INPUTS: [(MetricDef, Read); 8] = [
    (catalogue::HTTP_REQUEST_COUNT, Read::Sum),
    (catalogue::HTTP_REQUEST_DURATION, Read::Buckets),
    (catalogue::DATABASE_QUERY_DURATION, Read::Buckets),
    (catalogue::WEBSOCKET_CONNECTIONS, Read::Sum),
    (catalogue::DATABASE_POOL_IN_USE, Read::Sum),
    (catalogue::DATABASE_POOL_SIZE, Read::Sum),
    (catalogue::DATABASE_POOL_MAX, Read::Sum),
    (catalogue::PROCESS_MEMORY_RESIDENT, Read::Sum),
];
const HTTP_COUNT: usize = 0;
const HTTP_DURATION: usize = 1;
const DB_DURATION: usize = 2;
const GAUGES: [(usize, Series); 5] = [
    (3, Series::WsConnections),
    (4, Series::PoolInUse),
    (5, Series::PoolSize),
    (6, Series::PoolMax),
    (7, Series::MemoryResident),
];

/// What one sample read of one input, in the catalogue's unit.
#[derive(Debug, Clone, Default, PartialEq)]
struct Reading {
    /// Whether the metric has at least one series.
    present: bool,
    /// The sum of its values (counters and gauges).
    sum: f64,
    /// The sum of its series whose `status` is 5xx (`http.request.count` only).
    errors: f64,
    /// Cumulative bucket counts by upper bound, ascending, `+Inf` last (histograms only).
    buckets: Vec<(f64, f64)>,
}

/// One point of the history.
#[derive(Debug, Clone, Copy)]
struct Point {
    /// Wall-clock time in milliseconds since the Unix epoch.
    t_ms: u64,
    /// One value per [`Series`]; NaN when there is none (served as `null`).
    values: [f64; SERIES],
}

struct State {
    points: VecDeque<Point>,
    previous: Option<(Duration, Vec<Reading>)>,
}

/// The dashboard's history: the last points of the derived series it shows, sampled from a
/// [`PrometheusBackend`].
///
/// [`MetricsServer`](crate::MetricsServer) keeps one and samples it on a timer; it is public
/// so that the derivation can be driven by hand (tests, other servers). Each
/// [`sample`](Self::sample) renders the registry once, as a scrape does, reads the catalogue
/// metrics the charts need from that text, and appends one point; with 1,000 series (4,000
/// lines) that takes about 1 ms in a release build (0.08 ms of it the render, the rest the
/// scan; `cargo bench -p vigil-metrics-prometheus --bench dashboard`), so 0.1% of a core at
/// one sample a second:
/// - request rate: the increase of `http.request.count` (all series) per second since the
///   previous sample; the 5xx share: the increase of its series whose `status` is 5xx, in
///   percent of the increase of all (none when there was no request);
/// - latency p50/p95/p99 of `http.request.duration` and `database.query.duration`, in
///   milliseconds, from the increase of their buckets since the previous sample, interpolated
///   within a bucket as Prometheus's `histogram_quantile` does (none when nothing was recorded);
/// - WebSocket connections, pool connections (in use, open, max) and resident memory: the
///   gauges' current values, summed over their series.
///
/// A series whose metric has not been recorded has no value, so an application without a
/// database shows "no data" there. Memory is bounded: at most `capacity` points of 112 bytes
/// (older ones are dropped) and the previous sample's bucket counts.
///
/// ```
/// use std::time::Duration;
/// use vigil_metrics_prometheus::{DashboardHistory, DashboardOptions, PrometheusBackend};
///
/// let backend = PrometheusBackend::builder().build().unwrap();
/// let history = DashboardHistory::new(backend.clone(), DashboardOptions::default());
/// history.sample(Duration::ZERO);
/// metrics::with_local_recorder(&backend, || {
///     metrics::counter!("http.request.count", "status" => "200").increment(10);
/// });
/// history.sample(Duration::from_secs(2));
/// assert_eq!(history.len(), 2);
/// assert!(history.to_json().contains(r#""values":[null,5]"#)); // 10 requests in 2 s
/// ```
pub struct DashboardHistory {
    backend: PrometheusBackend,
    capacity: usize,
    interval: Duration,
    /// Monotonic time zero: when the history was created.
    origin: Instant,
    /// Wall-clock milliseconds at monotonic time zero.
    origin_ms: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for DashboardHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardHistory")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl DashboardHistory {
    /// An empty history of at most `options`' number of points, whose monotonic time zero is
    /// now. `options`' interval is only reported to the page (it polls as often), since
    /// [`sample`](Self::sample) is called by the owner.
    pub fn new(backend: PrometheusBackend, options: DashboardOptions) -> Self {
        let origin_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        DashboardHistory {
            backend,
            capacity: options.history,
            interval: options.interval,
            origin: Instant::now(),
            origin_ms,
            state: Mutex::new(State {
                points: VecDeque::new(),
                previous: None,
            }),
        }
    }

    /// Samples the backend now and appends one point, dropping the oldest when full: what
    /// [`MetricsServer`](crate::MetricsServer) calls on its timer.
    pub fn sample_now(&self) {
        self.sample(self.origin.elapsed());
    }

    /// Samples the backend now and appends one point at `at`, dropping the oldest when full.
    ///
    /// `at` is the monotonic time of the sample since the history was created (given
    /// explicitly so that tests can replay a known timeline); rates divide by the difference between two samples' `at`,
    /// and a point's wall-clock time is the creation time plus `at`. A sample whose `at` is
    /// not after the previous one has no rates or percentiles.
    pub fn sample(&self, at: Duration) {
        let text = self.backend.render();
        let names: Vec<Option<(String, f64)>> = INPUTS.iter().map(|(def, _)| self.backend.exported(def.name)).collect();
        let readings = scan(&text, &names);
        let t_ms = self
            .origin_ms
            .saturating_add(u64::try_from(at.as_millis()).unwrap_or(u64::MAX));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = state.previous.as_ref().and_then(|(prev_at, prev)| {
            at.checked_sub(*prev_at)
                .filter(|d| !d.is_zero())
                .map(|d| (d.as_secs_f64(), prev.as_slice()))
        });
        let values = derive(previous, &readings);
        if state.points.len() >= self.capacity {
            state.points.pop_front();
        }
        state.points.push_back(Point { t_ms, values });
        state.previous = Some((at, readings));
    }

    /// The number of points kept.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).points.len()
    }

    /// Whether no point was sampled yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most points kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The history as the JSON the page polls (`GET /dashboard/data`):
    ///
    /// ```json
    /// {"interval_ms":1000,"capacity":600,"t":[1700000000000, ...],
    ///  "charts":[{"id":"http_latency","title":"HTTP latency","unit":"ms",
    ///             "metrics":["http.request.duration"],
    ///             "series":[{"name":"p50","values":[null, 3.9, ...]}, ...]}, ...]}
    /// ```
    ///
    /// `t` holds each point's wall-clock time in milliseconds since the Unix epoch, oldest
    /// first; every `values` array is as long as `t`, `null` where there is no value.
    pub fn to_json(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let points = &state.points;
        let mut out = String::with_capacity(1024 + points.len() * (16 + SERIES * 8));
        let _ = write!(
            out,
            "{{\"interval_ms\":{},\"capacity\":{},\"t\":[",
            self.interval.as_millis(),
            self.capacity
        );
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}", p.t_ms);
        }
        out.push_str("],\"charts\":[");
        for (c, chart) in CHARTS.iter().enumerate() {
            if c > 0 {
                out.push(',');
            }
            out.push_str("{\"id\":");
            json_string(&mut out, chart.id);
            out.push_str(",\"title\":");
            json_string(&mut out, chart.title);
            out.push_str(",\"unit\":");
            json_string(&mut out, chart.unit);
            out.push_str(",\"metrics\":[");
            for (m, def) in chart.metrics.iter().enumerate() {
                if m > 0 {
                    out.push(',');
                }
                json_string(&mut out, def.name);
            }
            out.push_str("],\"series\":[");
            for (s, (name, series)) in chart.series.iter().enumerate() {
                if s > 0 {
                    out.push(',');
                }
                out.push_str("{\"name\":");
                json_string(&mut out, name);
                out.push_str(",\"values\":[");
                for (i, p) in points.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_number(&mut out, p.values[*series as usize]);
                }
                out.push_str("]}");
            }
            out.push_str("]}");
        }
        out.push_str("]}");
        out
    }
}

/// Derives one point's values from this sample's readings and, when there is one, the
/// previous sample's readings with the seconds between them.
fn derive(previous: Option<(f64, &[Reading])>, now: &[Reading]) -> [f64; SERIES] {
    let mut values = [f64::NAN; SERIES];
    for (input, series) in GAUGES {
        if now[input].present {
            values[series as usize] = now[input].sum;
        }
    }
    let Some((seconds, before)) = previous else {
        return values;
    };
    let requests = &now[HTTP_COUNT];
    if requests.present {
        let increase = (requests.sum - before[HTTP_COUNT].sum).max(0.0);
        values[Series::HttpRate as usize] = increase / seconds;
        if increase > 0.0 {
            let errors = (requests.errors - before[HTTP_COUNT].errors).max(0.0);
            values[Series::HttpErrorPercent as usize] = 100.0 * errors / increase;
        }
    }
    for (input, [p50, p95, p99]) in [
        (HTTP_DURATION, [Series::HttpP50, Series::HttpP95, Series::HttpP99]),
        (DB_DURATION, [Series::DbP50, Series::DbP95, Series::DbP99]),
    ] {
        if !now[input].present {
            continue;
        }
        let increase = bucket_increase(&now[input].buckets, &before[input].buckets);
        for (q, series) in [(0.5, p50), (0.95, p95), (0.99, p99)] {
            values[series as usize] = quantile(q, &increase).unwrap_or(f64::NAN);
        }
    }
    values
}

/// The increase of cumulative bucket counts since `before` (a bucket absent before counts 0).
/// Bounds are matched exactly: both come from the same rendered text.
fn bucket_increase(now: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|&(le, count)| {
            let old = before
                .iter()
                .find(|(b, _)| b.to_bits() == le.to_bits())
                .map_or(0.0, |(_, c)| *c);
            (le, (count - old).max(0.0))
        })
        .collect()
}

/// The `q` quantile of cumulative `buckets` (ascending upper bounds, `+Inf` last), as
/// Prometheus's `histogram_quantile` computes it: linear interpolation within the bucket that
/// holds the rank, from 0 for the first bucket; the highest finite bound when the rank falls
/// in `+Inf`. `None` when the buckets hold nothing.
fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 || buckets.last()?.0 != f64::INFINITY {
        return None;
    }
    let rank = q * total;
    let i = buckets.iter().position(|&(_, count)| count >= rank)?;
    let (upper, count) = buckets[i];
    if upper == f64::INFINITY {
        return Some(if i == 0 { f64::NAN } else { buckets[i - 1].0 });
    }
    let (lower, below) = if i == 0 {
        if upper <= 0.0 {
            return Some(upper);
        }
        (0.0, 0.0)
    } else {
        buckets[i - 1]
    };
    let inside = count - below;
    if inside <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / inside)
}

/// Reads the [`INPUTS`] from the exposition `text`; `names[i]` is input `i`'s rendered name and
/// the factor from rendered values back to its catalogue unit (`None`: not exported).
fn scan(text: &str, names: &[Option<(String, f64)>]) -> Vec<Reading> {
    let mut readings = vec![Reading::default(); INPUTS.len()];
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Most lines are other metrics': match the name before parsing anything else.
        let Some(name_end) = line.find(['{', ' ']) else {
            continue;
        };
        let name = &line[..name_end];
        let matched = INPUTS
            .iter()
            .zip(names)
            .enumerate()
            .find_map(|(i, ((_, read), export))| {
                let (export, factor) = export.as_ref()?;
                let hit = match read {
                    Read::Sum => name == export,
                    Read::Buckets => name.strip_prefix(export.as_str()) == Some("_bucket"),
                };
                hit.then_some((i, *read, *factor))
            });
        let Some((i, read, factor)) = matched else {
            continue;
        };
        let Some((_, labels, value)) = split_sample(line) else {
            continue;
        };
        let reading = &mut readings[i];
        match read {
            Read::Sum => {
                reading.present = true;
                reading.sum += value * factor;
                if i == HTTP_COUNT && label(labels, "status").is_some_and(is_server_error) {
                    reading.errors += value;
                }
            }
            Read::Buckets => {
                let Some(le) = label(labels, "le").and_then(parse_value) else {
                    continue;
                };
                let le = if le.is_finite() { le * factor } else { le };
                reading.present = true;
                match reading.buckets.iter_mut().find(|(b, _)| b.to_bits() == le.to_bits()) {
                    Some((_, count)) => *count += value,
                    None => reading.buckets.push((le, value)),
                }
            }
        }
    }
    for reading in &mut readings {
        reading.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    readings
}

fn is_server_error(status: &str) -> bool {
    status.len() == 3 && status.starts_with('5') && status.bytes().all(|b| b.is_ascii_digit())
}

/// Splits an exposition line into name, label block (without braces) and value.
fn split_sample(line: &str) -> Option<(&str, &str, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let rest = &line[name_end..];
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inner) => {
            let close = labels_end(inner)?;
            (&inner[..close], &inner[close + 1..])
        }
        None => ("", rest),
    };
    let value = rest.split_ascii_whitespace().next().and_then(parse_value)?;
    Some((name, labels, value))
}

/// The index of the `}` closing a label block, skipping quoted values (with escapes).
fn labels_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match (quoted, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => quoted = !quoted,
            (false, _, b'}') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The raw (still escaped) value of label `key` in a label block.
fn label<'a>(mut labels: &'a str, key: &str) -> Option<&'a str> {
    while !labels.is_empty() {
        let eq = labels.find('=')?;
        let name = labels[..eq].trim_start_matches(',');
        let rest = labels[eq + 1..].strip_prefix('"')?;
        let mut end = None;
        let mut escaped = false;
        for (i, b) in rest.bytes().enumerate() {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end?;
        if name == key {
            return Some(&rest[..end]);
        }
        labels = &rest[end + 1..];
    }
    None
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn json_number(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str("null");
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn quantiles_interpolate_like_histogram_quantile() {
        // 90 in (2.5, 5], 10 in (25, 50].
        let b = [
            (1.0, 0.0),
            (2.5, 0.0),
            (5.0, 90.0),
            (25.0, 90.0),
            (50.0, 100.0),
            (INF, 100.0),
        ];
        assert!((quantile(0.5, &b).unwrap() - (2.5 + 2.5 * 50.0 / 90.0)).abs() < 1e-12);
        assert!((quantile(0.95, &b).unwrap() - 37.5).abs() < 1e-12);
        assert!((quantile(0.99, &b).unwrap() - 47.5).abs() < 1e-12);
        // From zero in the first bucket; the highest finite bound in +Inf; nothing: none.
        assert!((quantile(0.5, &[(10.0, 4.0), (INF, 4.0)]).unwrap() - 5.0).abs() < 1e-12);
        assert!((quantile(0.99, &[(10.0, 1.0), (INF, 4.0)]).unwrap() - 10.0).abs() < 1e-12);
        assert_eq!(quantile(0.5, &[(10.0, 0.0), (INF, 0.0)]), None);
        assert_eq!(quantile(0.5, &[]), None);
    }

    #[test]
    fn lines_split_with_quoted_braces_and_escapes() {
        let line = r#"m_bucket{route="/a/{id}",x="q\"}\\",le="0.5"} 7 1700000000"#;
        let (name, labels, value) = split_sample(line).unwrap();
        assert_eq!((name, value), ("m_bucket", 7.0));
        assert_eq!(label(labels, "route"), Some("/a/{id}"));
        assert_eq!(label(labels, "x"), Some(r#"q\"}\\"#));
        assert_eq!(label(labels, "le"), Some("0.5"));
        assert_eq!(label(labels, "missing"), None);
        assert_eq!(split_sample("up 1").unwrap(), ("up", "", 1.0));
        assert!(split_sample(r#"m{le="+Inf"} +Inf"#).unwrap().2.is_infinite());
        for bad in ["m", r#"m{a="1" 2"#, "m notanumber", r#"m{a="1"}"#] {
            assert_eq!(split_sample(bad), None, "{bad}");
        }
        // Malformed label blocks yield no value rather than a wrong one.
        assert_eq!(label("a=1", "a"), None);
        assert_eq!(label(r#"a="1"#, "a"), None);
    }

    #[test]
    fn only_three_digit_5xx_statuses_are_errors() {
        assert!(is_server_error("500") && is_server_error("503"));
        assert!(!is_server_error("404") && !is_server_error("5") && !is_server_error("5xx"));
        assert!(!is_server_error("__overflow__"));
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\nd");
        assert_eq!(s, r#""a\"b\\c\u000ad""#);
        let mut n = String::new();
        json_number(&mut n, f64::NAN);
        n.push(',');
        json_number(&mut n, 2.5);
        assert_eq!(n, "null,2.5");
    }
}
