//! `cargo xtask bench`: runs the criterion benches and compares each bench with its group's peer
//! (the library Vigil is measured against), as a markdown table.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::json::{self, Value};
use crate::target_dir;

/// The benches to run: (package, bench target).
const BENCHES: [(&str, &str); 6] = [
    ("vigil", "facade"),
    ("vigil-log-console", "console"),
    ("vigil-http", "layer"),
    ("vigil-vm", "sample"),
    ("vigil-log-datadog", "caller"),
    ("vigil-trace-datadog", "spans"),
];

/// Bench names that are the reference in their group, in order of preference.
const PEERS: [&str; 6] = [
    "prometheus_client",
    "tracing_subscriber_json",
    "tracing_subscriber_text",
    "bare",
    // The Datadog logs backend's caller-side cost is compared with the console backend alone.
    "console_json",
    // A span through the Datadog tracer is compared with the same span without it.
    "registry_no_layer_root_span",
];

/// Directories criterion writes next to benchmark results that are not benchmarks themselves.
const NOT_BENCHES: [&str; 4] = ["report", "new", "base", "change"];

/// One measured benchmark.
#[derive(Debug, Clone, PartialEq)]
struct Measurement {
    /// The criterion group (`counter_2_labels`).
    group: String,
    /// The bench within the group (`vigil_facade`; `name/parameter` for parameterised ones).
    bench: String,
    /// Median time per iteration, in nanoseconds.
    median_ns: f64,
}

/// Runs the benches (`parts`: `criterion`, `wrk`, or both when empty), then prints the report
/// and writes it to `target/bench-report.md`.
///
/// # Errors
///
/// When a bench fails, or criterion's results are missing or unreadable.
pub fn run(parts: &[String]) -> Result<()> {
    for part in parts {
        if part != "criterion" && part != "wrk" {
            bail!("unknown bench part `{part}`: expected criterion or wrk");
        }
    }
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let mut report = String::new();
    if wants("criterion") {
        for (package, bench) in BENCHES {
            Cmd::cargo(format!("bench: {package}/{bench}"))
                .args(["bench", "-p", package, "--bench", bench])
                .run()?;
        }
        let criterion = criterion_dir();
        let measurements = collect(&criterion)?;
        report.push_str(&render(&measurements));
    }
    if wants("wrk") {
        let wrk = crate::wrk::run()?;
        report.push('\n');
        report.push_str(&wrk.render());
    }
    print!("\n{report}");
    let path = target_dir().join("bench-report.md");
    fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("\nwritten to {}", path.display());
    Ok(())
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else `<target>/criterion`.
fn criterion_dir() -> PathBuf {
    match std::env::var_os("CRITERION_HOME") {
        Some(home) if !home.is_empty() => crate::project_root().join(home),
        _ => target_dir().join("criterion"),
    }
}

/// Every bench under `criterion` that has `new/estimates.json`, sorted by group and bench.
fn collect(criterion: &Path) -> Result<Vec<Measurement>> {
    if !criterion.is_dir() {
        bail!(
            "no criterion results: {} does not exist (did the benches run and use criterion?)",
            criterion.display()
        );
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for group in subdirectories(criterion)? {
        walk(&group, &mut Vec::new(), &mut found, &mut missing)?;
    }
    for dir in &missing {
        eprintln!(
            "warning: {} has criterion output but no new/estimates.json; skipped",
            dir.display()
        );
    }
    if found.is_empty() {
        bail!(
            "no bench results (new/estimates.json) found under {}",
            criterion.display()
        );
    }
    let mut measurements = Vec::new();
    for (group, bench, file) in found {
        let median_ns = read_median(&file)?;
        measurements.push(Measurement {
            group,
            bench,
            median_ns,
        });
    }
    measurements.sort_by(|a, b| (&a.group, &a.bench).cmp(&(&b.group, &b.bench)));
    Ok(measurements)
}

/// Collects `(group, bench, estimates file)` below `dir`; `path` holds the names from the group down.
fn walk(
    dir: &Path,
    path: &mut Vec<String>,
    found: &mut Vec<(String, String, PathBuf)>,
    missing: &mut Vec<PathBuf>,
) -> Result<()> {
    path.push(file_name(dir));
    let estimates = dir.join("new/estimates.json");
    if estimates.is_file() && path.len() >= 2 {
        found.push((path[0].clone(), path[1..].join("/"), estimates));
    } else {
        if dir.join("new").is_dir() {
            missing.push(dir.to_path_buf());
        }
        for sub in subdirectories(dir)? {
            walk(&sub, path, found, missing)?;
        }
    }
    path.pop();
    Ok(())
}

/// The subdirectories of `dir` that may hold benches, sorted.
fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() && !NOT_BENCHES.contains(&file_name(&path).as_str()) {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The last component of a path, as text.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `median.point_estimate` (nanoseconds) from a criterion `estimates.json`.
fn read_median(file: &Path) -> Result<f64> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    median_from_estimates(&text).with_context(|| format!("in {}", file.display()))
}

/// `median.point_estimate` from the text of an `estimates.json`.
fn median_from_estimates(text: &str) -> Result<f64> {
    let value = json::parse(text)?;
    value
        .get("median")
        .and_then(|median| median.get("point_estimate"))
        .and_then(Value::as_f64)
        .context("no number at median.point_estimate")
}

/// The peer of `group`: the bench of that group named first in [`PEERS`].
fn peer_of<'a>(measurements: &'a [Measurement], group: &str) -> Option<&'a Measurement> {
    PEERS
        .iter()
        .find_map(|peer| measurements.iter().find(|m| m.group == group && m.bench == *peer))
}

/// The markdown report.
fn render(measurements: &[Measurement]) -> String {
    let mut out = String::from(
        "# Vigil benchmarks\n\nCriterion medians from this run; the ratio is the median divided by \
         the group's peer (lower is faster).\n\n| group | bench | median (ns) | ratio to peer |\n|---|---|---:|---:|\n",
    );
    let mut groups: Vec<&str> = Vec::new();
    for m in measurements {
        if !groups.contains(&m.group.as_str()) {
            groups.push(&m.group);
        }
        let ratio = match peer_of(measurements, &m.group) {
            Some(peer) if peer.bench == m.bench => "1.00x (peer)".to_owned(),
            Some(peer) if peer.median_ns > 0.0 => format!("{:.2}x", m.median_ns / peer.median_ns),
            Some(_) | None => "n/a".to_owned(),
        };
        let _ = writeln!(out, "| {} | {} | {:.1} | {ratio} |", m.group, m.bench, m.median_ns);
    }
    out.push('\n');
    for group in groups {
        match peer_of(measurements, group) {
            Some(peer) => {
                let _ = writeln!(out, "- peer of `{group}`: `{}`", peer.bench);
            }
            None => {
                let _ = writeln!(
                    out,
                    "- `{group}` has no peer bench (one of {}): no ratio",
                    PEERS.join(", ")
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(group: &str, bench: &str, median_ns: f64) -> Measurement {
        Measurement {
            group: group.to_owned(),
            bench: bench.to_owned(),
            median_ns,
        }
    }

    #[test]
    fn reads_the_median() {
        let text = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":40.1,"upper_bound":44.0},"point_estimate":42.0,"standard_error":1.0},
            "median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":40.0,"upper_bound":43.0},"point_estimate":41.5,"standard_error":0.9},
            "median_abs_dev":null,"slope":null,"std_dev":{"point_estimate":2.0}}"#;
        assert!((median_from_estimates(text).unwrap() - 41.5).abs() < f64::EPSILON);
        assert!(median_from_estimates(r#"{"mean":{"point_estimate":1}}"#).is_err());
        assert!(median_from_estimates("{").is_err());
    }

    #[test]
    fn report_table() {
        let ms = [
            m("counter_2_labels", "metrics_macro", 120.0),
            m("counter_2_labels", "prometheus_client", 40.0),
            m("counter_2_labels", "vigil_facade", 10.0),
            m("log_event_3_fields", "tracing_subscriber_json", 700.0),
            m("log_event_3_fields", "tracing_subscriber_text", 500.0),
            m("log_event_3_fields", "vigil_console_json", 350.0),
            m("render", "vigil", 1.0),
        ];
        let report = render(&ms);
        assert!(
            report.contains("| counter_2_labels | vigil_facade | 10.0 | 0.25x |"),
            "{report}"
        );
        assert!(
            report.contains("| counter_2_labels | metrics_macro | 120.0 | 3.00x |"),
            "{report}"
        );
        assert!(
            report.contains("| counter_2_labels | prometheus_client | 40.0 | 1.00x (peer) |"),
            "{report}"
        );
        assert!(
            report.contains("| log_event_3_fields | vigil_console_json | 350.0 | 0.50x |"),
            "{report}"
        );
        assert!(
            report.contains("| log_event_3_fields | tracing_subscriber_text | 500.0 | 0.71x |"),
            "{report}"
        );
        assert!(report.contains("| render | vigil | 1.0 | n/a |"), "{report}");
        assert!(report.contains("- `render` has no peer bench"), "{report}");
    }

    #[test]
    fn discovers_benches() {
        let root = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let estimates = r#"{"median":{"point_estimate":12.5}}"#;
        for dir in ["g/a/new", "g/b/p1/new", "g/report", "h/c/new", "h/report"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in ["g/a/new", "g/b/p1/new"] {
            fs::write(root.join(file).join("estimates.json"), estimates).unwrap();
        }
        let found = collect(&root).unwrap();
        assert_eq!(found, [m("g", "a", 12.5), m("g", "b/p1", 12.5)]);
        fs::remove_dir_all(&root).unwrap();
        assert!(collect(&root).unwrap_err().to_string().contains("does not exist"));
    }
}
