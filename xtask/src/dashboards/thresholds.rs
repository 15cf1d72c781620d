//! The alert thresholds: their defaults, the flags of `cargo xtask dashboards` that change them,
//! and `alerts/thresholds.json`, where the values the checked-in files were generated with are
//! kept (so a regeneration, and CI's staleness check, use the same ones).

use std::fmt::Write as _;

use anyhow::{Context as _, Result, bail, ensure};
use vigil_core::catalogue::{self, MetricDef};

use crate::json::{self, Value};

/// The thresholds the five alerts fire above.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// High error rate: the share of HTTP requests answered 5xx, above 0 and below 1.
    pub error_rate: f64,
    /// Slow database queries: p95 query duration, in milliseconds.
    pub slow_query_ms: f64,
    /// High memory usage: resident memory (RSS) of one process, in bytes.
    pub memory_bytes: u64,
    /// Connection pool saturation: connections in use over the pool's maximum, above 0 and below 1.
    pub pool_saturation: f64,
    /// High latency: p95 HTTP request duration, in milliseconds.
    pub latency_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            error_rate: 0.05,
            slow_query_ms: 100.0,
            memory_bytes: 1024 * 1024 * 1024,
            pool_saturation: 0.8,
            latency_ms: 500.0,
        }
    }
}

/// One threshold flag: its name, the key in `thresholds.json`, and what it means.
pub struct Flag {
    /// `--error-rate`.
    pub name: &'static str,
    /// `error_rate`.
    pub key: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// The threshold flags, in the order of the alerts.
pub const FLAGS: [Flag; 5] = [
    Flag {
        name: "--error-rate",
        key: "error_rate",
        help: "share of HTTP requests answered 5xx, 0 < R < 1 (default 0.05)",
    },
    Flag {
        name: "--slow-query-ms",
        key: "slow_query_ms",
        help: "p95 database query duration in ms (default 100)",
    },
    Flag {
        name: "--memory-bytes",
        key: "memory_bytes",
        help: "process resident memory, bytes or with KiB/MiB/GiB/TiB (default 1GiB)",
    },
    Flag {
        name: "--pool-saturation",
        key: "pool_saturation",
        help: "connections in use over the pool maximum, 0 < R < 1 (default 0.8)",
    },
    Flag {
        name: "--latency-ms",
        key: "latency_ms",
        help: "p95 HTTP request duration in ms (default 500)",
    },
];

impl Thresholds {
    /// Sets the threshold of `flag` (`--latency-ms`) from its command-line text.
    ///
    /// # Errors
    ///
    /// When the flag is unknown or the value does not parse.
    pub fn set(&mut self, flag: &str, value: &str) -> Result<()> {
        let number = || -> Result<f64> {
            let n: f64 = value
                .trim()
                .parse()
                .with_context(|| format!("{flag} {value:?}: expected a number"))?;
            ensure!(n.is_finite(), "{flag} {value:?}: expected a finite number");
            Ok(n)
        };
        match flag {
            "--error-rate" => self.error_rate = number()?,
            "--slow-query-ms" => self.slow_query_ms = number()?,
            "--memory-bytes" => self.memory_bytes = parse_bytes(value).with_context(|| format!("{flag} {value:?}"))?,
            "--pool-saturation" => self.pool_saturation = number()?,
            "--latency-ms" => self.latency_ms = number()?,
            other => bail!("unknown threshold flag `{other}`"),
        }
        Ok(())
    }

    /// Checks every threshold can be crossed: ratios strictly between 0 and 1, durations within
    /// the histogram's finite buckets (`histogram_quantile` never answers more than the largest
    /// finite bucket bound, so a higher threshold could never fire), memory above 0.
    ///
    /// # Errors
    ///
    /// Naming the flag, the value and what is accepted.
    pub fn validate(&self) -> Result<()> {
        for (flag, value) in [
            ("--error-rate", self.error_rate),
            ("--pool-saturation", self.pool_saturation),
        ] {
            ensure!(
                value > 0.0 && value < 1.0,
                "{flag} {value}: expected a ratio above 0 and below 1 (0.05 is 5%)"
            );
        }
        for (flag, value, def) in [
            (
                "--slow-query-ms",
                self.slow_query_ms,
                &catalogue::DATABASE_QUERY_DURATION,
            ),
            ("--latency-ms", self.latency_ms, &catalogue::HTTP_REQUEST_DURATION),
        ] {
            let buckets = buckets_ms(def);
            let (first, last) = (buckets[0], buckets[buckets.len() - 1]);
            ensure!(
                value >= first && value < last,
                "{flag} {value}: expected at least {first} and below {last} ms, the smallest and largest finite \
                 bucket of {} (a p95 computed from its buckets can never exceed the largest)",
                def.name
            );
        }
        ensure!(self.memory_bytes > 0, "--memory-bytes 0: expected a positive size");
        Ok(())
    }

    /// Reads `alerts/thresholds.json`.
    ///
    /// # Errors
    ///
    /// When the text is not a JSON object with exactly the five keys, each a number.
    pub fn from_json(text: &str) -> Result<Self> {
        let value = json::parse(text).context("not valid JSON")?;
        let members = value.as_object().context("expected a JSON object")?;
        let duplicates = value.duplicate_keys();
        ensure!(duplicates.is_empty(), "the keys {duplicates:?} appear more than once");
        for (key, _) in members {
            ensure!(
                FLAGS.iter().any(|f| f.key == key),
                "unknown key {key:?}; the keys are {}",
                FLAGS.iter().map(|f| f.key).collect::<Vec<_>>().join(", ")
            );
        }
        let mut thresholds = Thresholds::default();
        for flag in &FLAGS {
            let number = value
                .get(flag.key)
                .with_context(|| format!("missing key {:?}", flag.key))?;
            let Value::Number(text) = number else {
                bail!("{:?} is {number:?}, expected a number", flag.key);
            };
            thresholds
                .set(flag.name, text)
                .with_context(|| format!("key {:?}", flag.key))?;
        }
        Ok(thresholds)
    }

    /// The content of `alerts/thresholds.json`.
    pub fn to_json(self) -> String {
        let value = Value::obj([
            ("error_rate", Value::num(self.error_rate)),
            ("slow_query_ms", Value::num(self.slow_query_ms)),
            ("memory_bytes", Value::Number(self.memory_bytes.to_string())),
            ("pool_saturation", Value::num(self.pool_saturation)),
            ("latency_ms", Value::num(self.latency_ms)),
        ]);
        format!("{}\n", value.to_pretty())
    }

    /// The flags that reproduce these thresholds, for messages (`--error-rate 0.05 ...`).
    pub fn as_flags(self) -> String {
        format!(
            "--error-rate {} --slow-query-ms {} --memory-bytes {} --pool-saturation {} --latency-ms {}",
            self.error_rate, self.slow_query_ms, self.memory_bytes, self.pool_saturation, self.latency_ms
        )
    }
}

/// The bucket bounds of a duration histogram, in milliseconds.
pub fn buckets_ms(def: &MetricDef) -> &'static [f64] {
    def.buckets.unwrap_or(catalogue::DURATION_BUCKETS_MS)
}

/// Parses `1073741824`, `1GiB`, `512MiB`, `1.5GiB` (binary prefixes; a bare number is bytes).
fn parse_bytes(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => bail!("unknown unit {other:?}: expected bytes, or a number with KiB, MiB, GiB or TiB"),
    };
    let n: f64 = number
        .parse()
        .with_context(|| format!("expected a number of bytes, got {number:?}"))?;
    #[allow(clippy::cast_precision_loss)]
    let bytes = n * scale as f64;
    ensure!(
        bytes.is_finite() && bytes >= 0.0 && bytes < 2f64.powi(63) && bytes.fract() == 0.0,
        "{text:?} is not a whole number of bytes that fits in 63 bits"
    );
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

/// A size for people: `1GiB`, `1.5GiB`, `512MiB`, `1000B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["TiB", "GiB", "MiB", "KiB"];
    for (i, unit) in UNITS.iter().enumerate() {
        let scale = 1u64 << (10 * (4 - i));
        if bytes >= scale {
            #[allow(clippy::cast_precision_loss)]
            let value = bytes as f64 / scale as f64;
            return format!("{}{unit}", trim_number(value, 2));
        }
    }
    format!("{bytes}B")
}

/// A duration in milliseconds for people: `500ms`, `1.5s`.
pub fn human_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{}s", trim_number(ms / 1000.0, 3))
    } else {
        format!("{}ms", trim_number(ms, 3))
    }
}

/// A ratio as a percentage for people: `5%`, `0.5%`, `80%`.
pub fn human_percent(ratio: f64) -> String {
    format!("{}%", trim_number(ratio * 100.0, 3))
}

/// `value` with at most `decimals` decimals, without trailing zeros.
fn trim_number(value: f64, decimals: usize) -> String {
    let mut text = String::new();
    let _ = write!(text, "{value:.decimals$}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        trimmed.to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let defaults = Thresholds::default();
        defaults.validate().unwrap();
        assert_eq!(Thresholds::from_json(&defaults.to_json()).unwrap(), defaults);
        let text = defaults.to_json();
        assert!(text.contains("\"latency_ms\": 500"), "{text}");
        assert!(text.contains("\"memory_bytes\": 1073741824"), "{text}");
    }

    #[test]
    fn flags_change_and_validate() {
        let mut t = Thresholds::default();
        t.set("--latency-ms", "250").unwrap();
        t.set("--memory-bytes", "512MiB").unwrap();
        t.set("--error-rate", "0.01").unwrap();
        assert_eq!((t.latency_ms, t.memory_bytes, t.error_rate), (250.0, 512 << 20, 0.01));
        t.validate().unwrap();
        assert_eq!(Thresholds::from_json(&t.to_json()).unwrap(), t);

        for (flag, bad) in [
            ("--error-rate", "1"),
            ("--error-rate", "0"),
            ("--pool-saturation", "1.5"),
            ("--latency-ms", "10000"),
            ("--latency-ms", "0.5"),
            ("--slow-query-ms", "20000"),
        ] {
            let mut t = Thresholds::default();
            t.set(flag, bad).unwrap();
            let err = t.validate().unwrap_err().to_string();
            assert!(err.contains(flag) && err.contains(bad), "{flag} {bad}: {err}");
        }
        assert!(Thresholds::default().set("--latency-ms", "fast").is_err());
        assert!(Thresholds::default().set("--latency-ms", "inf").is_err());
        assert!(Thresholds::default().set("--memory-bytes", "1GB").is_err());
        assert!(Thresholds::default().set("--memory-bytes", "0.5B").is_err());
        assert!(Thresholds::default().set("--nope", "1").is_err());
    }

    #[test]
    fn bad_files() {
        for bad in [
            "[]",
            "{}",
            r#"{"error_rate": 0.05}"#,
            r#"{"error_rate": "0.05", "slow_query_ms": 100, "memory_bytes": 1, "pool_saturation": 0.8, "latency_ms": 500}"#,
            r#"{"error_rate": 0.05, "slow_query_ms": 100, "memory_bytes": 1, "pool_saturation": 0.8, "latency_ms": 500, "x": 1}"#,
            r#"{"error_rate": 0.05, "error_rate": 0.05, "slow_query_ms": 100, "memory_bytes": 1, "pool_saturation": 0.8, "latency_ms": 500}"#,
        ] {
            assert!(Thresholds::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(1 << 30), "1GiB");
        assert_eq!(human_bytes(3 << 29), "1.5GiB");
        assert_eq!(human_bytes(512 << 20), "512MiB");
        assert_eq!(human_bytes(1000), "1000B");
        assert_eq!(human_ms(500.0), "500ms");
        assert_eq!(human_ms(1500.0), "1.5s");
        assert_eq!(human_ms(2.5), "2.5ms");
        assert_eq!(human_percent(0.05), "5%");
        assert_eq!(human_percent(0.005), "0.5%");
        assert_eq!(human_percent(0.8), "80%");
    }
}
