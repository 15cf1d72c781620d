//! The results of a bench run: criterion medians, the values benches write aside (bytes,
//! counts), and the wrk run; read from where each bench target left them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::json::{self, Value};
use crate::wrk::WrkReport;

/// Directories criterion writes next to benchmark results that are not benchmarks themselves.
const NOT_BENCHES: [&str; 4] = ["report", "new", "base", "change"];

/// One criterion benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The bench target that produced it (`vigil/facade`).
    pub source: String,
    /// The criterion group (`counter_2_labels`).
    pub group: String,
    /// The bench within the group (`vigil_facade`; `name/parameter` for parameterised ones).
    pub bench: String,
    /// Median time per iteration, in nanoseconds.
    pub median_ns: f64,
}

/// One value a bench wrote aside (see `benches/support/side.rs` in the bench crates).
#[derive(Debug, Clone, PartialEq)]
pub struct SideValue {
    /// The bench target that produced it (`vigil/memory`).
    pub source: String,
    /// The group (`memory_per_series`).
    pub group: String,
    /// The bench within the group (`vigil/1000`).
    pub bench: String,
    /// The unit (`bytes`, `allocations`, `count`).
    pub unit: String,
    /// The value.
    pub value: f64,
}

/// Everything one report is made of.
#[derive(Debug, Default)]
pub struct Results {
    /// Criterion medians, sorted by source, group and bench.
    pub criterion: Vec<Measurement>,
    /// Values written aside, in the order written.
    pub side: Vec<SideValue>,
    /// The wrk run, if there was one.
    pub wrk: Option<WrkReport>,
}

impl Results {
    /// The median of `group`/`bench` from `source`, in nanoseconds.
    pub fn time(&self, source: &str, group: &str, bench: &str) -> Option<f64> {
        self.criterion
            .iter()
            .find(|m| m.source == source && m.group == group && m.bench == bench)
            .map(|m| m.median_ns)
    }

    /// The value of `group`/`bench` written aside by `source`.
    pub fn side(&self, source: &str, group: &str, bench: &str) -> Option<f64> {
        self.side
            .iter()
            .find(|v| v.source == source && v.group == group && v.bench == bench)
            .map(|v| v.value)
    }

    /// The criterion groups of `source`, in order.
    pub fn groups(&self, source: &str) -> Vec<&str> {
        let mut groups: Vec<&str> = Vec::new();
        for m in self.criterion.iter().filter(|m| m.source == source) {
            if !groups.contains(&m.group.as_str()) {
                groups.push(&m.group);
            }
        }
        groups
    }
}

/// Every bench under `criterion` (a `CRITERION_HOME`) that has `new/estimates.json`, sorted by
/// group and bench, attributed to `source`. A directory that does not exist has none.
///
/// # Errors
///
/// When a directory cannot be listed or an estimates file is unreadable.
pub fn collect_criterion(source: &str, criterion: &Path) -> Result<Vec<Measurement>> {
    if !criterion.is_dir() {
        return Ok(Vec::new());
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
    let mut measurements = Vec::new();
    for (group, bench, file) in found {
        let median_ns = read_median(&file)?;
        measurements.push(Measurement {
            source: source.to_owned(),
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
pub fn median_from_estimates(text: &str) -> Result<f64> {
    let value = json::parse(text)?;
    value
        .get("median")
        .and_then(|median| median.get("point_estimate"))
        .and_then(Value::as_f64)
        .context("no number at median.point_estimate")
}

/// The values in a side file (`{"measurements": [{"group", "bench", "unit", "value"}]}`),
/// attributed to `source`; a file that does not exist holds none.
///
/// # Errors
///
/// When the file cannot be read or does not have that shape.
pub fn read_side(source: &str, file: &Path) -> Result<Vec<SideValue>> {
    if !file.is_file() {
        return Ok(Vec::new());
    }
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    parse_side(source, &text).with_context(|| format!("in {}", file.display()))
}

/// The values in the text of a side file.
pub fn parse_side(source: &str, text: &str) -> Result<Vec<SideValue>> {
    let value = json::parse(text)?;
    let Some(items) = value.get("measurements").and_then(Value::as_array) else {
        bail!("no `measurements` array");
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let text = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .with_context(|| format!("measurement {i}: no string `{key}`"))
            };
            Ok(SideValue {
                source: source.to_owned(),
                group: text("group")?,
                bench: text("bench")?,
                unit: text("unit")?,
                value: item
                    .get("value")
                    .and_then(Value::as_f64)
                    .with_context(|| format!("measurement {i}: no number `value`"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(group: &str, bench: &str, median_ns: f64) -> Measurement {
        Measurement {
            source: "p/b".to_owned(),
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
        let found = collect_criterion("p/b", &root).unwrap();
        assert_eq!(found, [m("g", "a", 12.5), m("g", "b/p1", 12.5)]);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(collect_criterion("p/b", &root).unwrap(), []);
    }

    #[test]
    fn reads_side_values() {
        let text = r#"{"measurements": [
            {"group": "memory_per_series", "bench": "vigil/1000", "unit": "bytes", "value": 312.5},
            {"group": "cardinality_limit", "bench": "limit", "unit": "count", "value": 1000}
        ]}"#;
        let values = parse_side("vigil/memory", text).unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(values[0].source, "vigil/memory");
        assert_eq!(values[0].bench, "vigil/1000");
        assert!((values[0].value - 312.5).abs() < f64::EPSILON);
        assert_eq!(values[1].unit, "count");
        let results = Results {
            side: values,
            ..Results::default()
        };
        assert_eq!(results.side("vigil/memory", "cardinality_limit", "limit"), Some(1000.0));
        assert_eq!(results.side("vigil/other", "cardinality_limit", "limit"), None);
        assert!(parse_side("x", r#"{"measurements": [{"group": "g"}]}"#).is_err());
        assert!(parse_side("x", "{}").is_err());
    }
}
