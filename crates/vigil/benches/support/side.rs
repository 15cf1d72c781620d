//! Results that are not times (bytes, counts) or that criterion does not keep, written for
//! `cargo xtask bench` to the JSON file named by `VIGIL_BENCH_OUT`, and printed.

use std::path::Path;

/// One measured value.
pub struct Side {
    /// The group, as a criterion group (`memory_per_series`).
    pub group: String,
    /// The bench within the group (`vigil/1000`).
    pub bench: String,
    /// The unit of `value` (`bytes`, `allocations`, `count`).
    pub unit: &'static str,
    /// The value.
    pub value: f64,
}

impl Side {
    /// A value of `group`/`bench` in `unit`.
    pub fn new(group: impl Into<String>, bench: impl Into<String>, unit: &'static str, value: f64) -> Self {
        Side {
            group: group.into(),
            bench: bench.into(),
            unit,
            value,
        }
    }
}

/// Prints `values` and, when `VIGIL_BENCH_OUT` names a file, writes them there as
/// `{"measurements": [{"group", "bench", "unit", "value"}, ...]}`.
///
/// # Panics
///
/// When the file cannot be written: the benchmark run is then incomplete and must say so.
pub fn publish(values: &[Side]) {
    for v in values {
        println!("{}/{}: {:.1} {}", v.group, v.bench, v.value, v.unit);
    }
    let Some(path) = std::env::var_os("VIGIL_BENCH_OUT").filter(|p| !p.is_empty()) else {
        return;
    };
    let measurements: Vec<serde_json::Value> = values
        .iter()
        // JSON has no NaN or infinity; a value that is not finite is left out (and so is
        // reported as missing).
        .filter(|v| v.value.is_finite())
        .map(|v| serde_json::json!({ "group": v.group, "bench": v.bench, "unit": v.unit, "value": v.value }))
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({ "measurements": measurements }))
        .expect("serialising plain values");
    let path = Path::new(&path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
