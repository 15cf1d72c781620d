//! The performance targets: each measured ratio or value next to its goal, PASS or MISS. A miss
//! is reported, never a failure of the command (numbers from a shared machine move).

use std::fmt;

use super::results::Results;
use super::sources;

/// Whether a target was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Met.
    Pass,
    /// Not met.
    Miss,
    /// Not measured in the results at hand.
    NotMeasured,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Miss => "MISS",
            Status::NotMeasured => "not measured",
        })
    }
}

/// One target and how the run did against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What is measured.
    pub what: &'static str,
    /// The goal, as text (`≤ 1.00x`).
    pub goal: &'static str,
    /// What was measured, as text (`0.42x`).
    pub measured: String,
    /// The verdict.
    pub status: Status,
}

impl Target {
    fn new(what: &'static str, goal: &'static str, measured: Option<(String, bool)>) -> Self {
        match measured {
            Some((measured, pass)) => Target {
                what,
                goal,
                measured,
                status: if pass { Status::Pass } else { Status::Miss },
            },
            None => Target {
                what,
                goal,
                measured: "n/a".to_owned(),
                status: Status::NotMeasured,
            },
        }
    }
}

/// The labelled groups of the hot-path bench.
const LABELLED_GROUPS: [&str; 6] = [
    "counter_2_labels",
    "counter_5_labels",
    "gauge_2_labels",
    "gauge_5_labels",
    "histogram_2_labels",
    "histogram_5_labels",
];

/// Largest ratio of the render time per series between two consecutive series counts, per
/// tenfold growth, that still counts as linear.
pub const LINEAR_SLACK: f64 = 1.5;
/// Bytes a label set past the cardinality limit may keep, as a share of a series below it.
pub const OVERFLOW_SHARE: f64 = 0.05;

/// Every target, in the order of the issue.
pub fn evaluate(results: &Results) -> Vec<Target> {
    vec![
        facade_vs_client(results),
        handle_vs_atomic(results),
        http_vs(results, "bare"),
        http_vs(results, "axum-prometheus"),
        console_json(results),
        render_linear(results),
        render_vs_client(results),
        render_100k(results),
        memory_reported(results),
        memory_bounded(results),
        datadog_caller(results),
    ]
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The worst labelled update through the facade, against prometheus-client's `get_or_create`.
fn facade_vs_client(r: &Results) -> Target {
    let ratios: Vec<(&str, f64)> = LABELLED_GROUPS
        .iter()
        .filter_map(|g| {
            let facade = r.time(sources::FACADE, g, "vigil_facade");
            let client = r.time(sources::FACADE, g, "prometheus_client");
            Some((*g, ratio(facade, client)?))
        })
        .collect();
    let worst = ratios.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    Target::new(
        "labelled update through Vigil's facade vs prometheus-client `get_or_create` (worst of counter/gauge/histogram × 2/5 labels)",
        "≤ 1.00x",
        worst.map(|(group, worst)| {
            (
                format!("{worst:.2}x (worst: `{group}`, {} of 6 groups measured)", ratios.len()),
                worst <= 1.0,
            )
        }),
    )
}

fn handle_vs_atomic(r: &Results) -> Target {
    let g = "counter_2_labels";
    let value = ratio(
        r.time(sources::FACADE, g, "metrics_handle"),
        r.time(sources::FACADE, g, "atomic_add"),
    );
    Target::new(
        "pre-registered handle update vs a bare relaxed atomic add (counter)",
        "≤ 1.20x",
        value.map(|v| (format!("{v:.2}x"), v <= 1.2)),
    )
}

fn http_vs(r: &Results, peer: &str) -> Target {
    let value = r.wrk.as_ref().and_then(|w| w.vigil_ratio_to(peer));
    if peer == "bare" {
        Target::new(
            "HTTP throughput with Vigil's layer vs the bare app (wrk)",
            "≥ 0.97x",
            value.map(|v| (format!("{v:.3}x"), v >= 0.97)),
        )
    } else {
        Target::new(
            "HTTP throughput with Vigil's layer vs the axum-prometheus layer (wrk)",
            "≥ 1.00x",
            value.map(|v| (format!("{v:.3}x"), v >= 1.0)),
        )
    }
}

fn console_json(r: &Results) -> Target {
    let g = "log_event_3_fields_in_span";
    let value = ratio(
        r.time(sources::CONSOLE, g, "vigil_console_json"),
        r.time(sources::CONSOLE, g, "tracing_subscriber_json"),
    );
    Target::new(
        "console JSON log event, 3 fields inside a request span (enrichment on), vs tracing-subscriber's JSON formatter",
        "≤ 0.70x",
        value.map(|v| (format!("{v:.2}x"), v <= 0.7)),
    )
}

/// The render times of `lib` at each series count measured, ascending by count.
pub fn render_times(r: &Results, lib: &str) -> Vec<(usize, f64)> {
    let mut times: Vec<(usize, f64)> = r
        .criterion
        .iter()
        .filter(|m| m.source == sources::SCALING && m.group == "render_series")
        .filter_map(|m| {
            let (name, count) = m.bench.split_once('/')?;
            (name == lib).then_some((count.parse().ok()?, m.median_ns))
        })
        .collect();
    times.sort_by_key(|(n, _)| *n);
    times
}

/// Linear: from each series count to the next, the time grows at most [`LINEAR_SLACK`] times
/// faster than the count.
fn render_linear(r: &Results) -> Target {
    let times = render_times(r, "vigil");
    #[allow(clippy::cast_precision_loss)]
    let worst = times
        .windows(2)
        .map(|w| (w[1].1 / w[0].1) / (w[1].0 as f64 / w[0].0 as f64))
        .max_by(f64::total_cmp);
    let per_series: Vec<String> = times
        .iter()
        .map(|(n, t)| {
            #[allow(clippy::cast_precision_loss)]
            let each = t / *n as f64;
            format!("{each:.0} ns at {}", count_label(*n))
        })
        .collect();
    Target::new(
        "`/metrics` render time linear in series count (time growth ÷ series growth, worst step)",
        "≤ 1.50",
        worst.map(|w| {
            (
                format!("{w:.2} (per series: {})", per_series.join(", ")),
                w <= LINEAR_SLACK,
            )
        }),
    )
}

fn render_vs_client(r: &Results) -> Target {
    let value = ratio(
        r.time(sources::SCALING, "render_series", "vigil/10000"),
        r.time(sources::SCALING, "render_series", "prometheus_client/10000"),
    );
    Target::new(
        "`/metrics` render of 10k series vs prometheus-client's `encode`",
        "≤ 2.00x",
        value.map(|v| (format!("{v:.2}x"), v <= 2.0)),
    )
}

fn render_100k(r: &Results) -> Target {
    let value = r.time(sources::SCALING, "render_series", "vigil/100000");
    Target::new(
        "`/metrics` render of 100k series",
        "< 1 s",
        value.map(|ns| (format!("{:.0} ms", ns / 1e6), ns < 1e9)),
    )
}

fn memory_reported(r: &Results) -> Target {
    let counts = ["1000", "10000", "100000"];
    let found: Vec<String> = counts
        .iter()
        .filter_map(|n| {
            let bytes = r.side(sources::MEMORY, "memory_per_series", &format!("vigil/{n}"))?;
            Some(format!("{bytes:.0} B at {}", count_label(n.parse().ok()?)))
        })
        .collect();
    Target::new(
        "memory per series reported (Vigil's recorder, counters with 2 labels)",
        "reported",
        (!found.is_empty()).then(|| (found.join(", "), true)),
    )
}

fn memory_bounded(r: &Results) -> Target {
    let get = |bench| r.side(sources::MEMORY, "cardinality_limit", bench);
    let value = (|| {
        let limit = get("limit")?;
        let registered = get("label_sets_registered")?;
        let kept = get("series_kept")?;
        let below = get("bytes_per_series_below_limit")?;
        let past = get("bytes_per_label_set_past_limit")?;
        let bounded = kept <= limit + 1.0 && past <= OVERFLOW_SHARE * below;
        Some((
            format!(
                "{past:.1} B per label set past the limit vs {below:.0} B per series below it; \
                 {kept:.0} series kept of {registered:.0} label sets (limit {limit:.0})"
            ),
            bounded,
        ))
    })();
    Target::new(
        "memory bounded by the per-metric cardinality limit (2x the limit of label sets registered)",
        "past the limit ≤ 5% of a series; series ≤ limit + overflow",
        value,
    )
}

fn datadog_caller(r: &Results) -> Target {
    let g = "datadog_caller_log_event";
    let value = ratio(
        r.time(sources::DATADOG_LOGS, g, "console_json_and_datadog_down"),
        r.time(sources::DATADOG_LOGS, g, "console_json"),
    );
    Target::new(
        "Datadog logs, caller-side cost with the intake down (console + Datadog) vs console alone",
        "≤ 1.50x",
        value.map(|v| (format!("{v:.2}x"), v <= 1.5)),
    )
}

/// `1000` as `1k`, `100000` as `100k`.
pub fn count_label(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}
