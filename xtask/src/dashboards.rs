//! `cargo xtask dashboards`: generates the Grafana and Datadog dashboards, the Prometheus alert
//! rules with their `promtool` tests, and the Datadog monitors from the metric catalogue
//! (`vigil_core::catalogue`), so a renamed metric changes every query that uses it.
//!
//! ```text
//! cargo xtask dashboards [--check] [--reset] [--error-rate R] [--slow-query-ms MS]
//!                        [--memory-bytes B] [--pool-saturation R] [--latency-ms MS]
//! cargo xtask dashboards publish [--grafana URL] [--grafana-folder UID] [--datadog] [--datadog-url URL]
//! ```
//!
//! Outputs (checked in; CI fails when they are stale):
//! - `dashboards/grafana/*.json`: five Grafana dashboards (basic metrics, request latency,
//!   database, WebSocket, infrastructure);
//! - `dashboards/datadog/*.json`: the same five for Datadog, plus APM and log analytics;
//! - `alerts/prometheus/rules.yml` and `rules_test.yml`: five alert rules and their tests;
//! - `alerts/datadog/monitors.json`: the same five alerts as Datadog monitors;
//! - `alerts/thresholds.json`: the thresholds the files were generated with.

pub mod alerts;
pub mod datadog;
pub mod grafana;
pub mod promql;
pub mod publish;
pub mod thresholds;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::project_root;
use thresholds::{FLAGS, Thresholds};

/// Where the thresholds are kept, relative to the project root.
pub const THRESHOLDS_FILE: &str = "alerts/thresholds.json";
/// The Grafana dashboards' directory.
pub const GRAFANA_DIR: &str = "dashboards/grafana";
/// The Datadog dashboards' directory.
pub const DATADOG_DIR: &str = "dashboards/datadog";
/// The Prometheus rules file.
pub const RULES_FILE: &str = "alerts/prometheus/rules.yml";
/// The promtool tests of the rules.
pub const RULES_TEST_FILE: &str = "alerts/prometheus/rules_test.yml";
/// The Datadog monitors file.
pub const MONITORS_FILE: &str = "alerts/datadog/monitors.json";

/// The usage of `cargo xtask dashboards`.
pub fn usage() -> String {
    let mut flags = String::new();
    for flag in &FLAGS {
        let _ = writeln!(
            flags,
            "                           {:<22} {}",
            format!("{} <v>", flag.name),
            flag.help
        );
    }
    format!(
        "  dashboards [options]   generate the dashboards and alerts from the metric catalogue:
                           dashboards/grafana, dashboards/datadog, alerts/prometheus, alerts/datadog
                           --check                write nothing; fail if the checked-in files are stale
                           --reset                start from the default thresholds, not {THRESHOLDS_FILE}
{flags}                           (a threshold flag left out keeps its value in {THRESHOLDS_FILE})
  dashboards publish     upload the checked-in dashboards (and monitors), overwriting by uid/title:
                           --grafana <url>         to Grafana (token in GRAFANA_TOKEN)
                           --grafana-folder <uid>  into this Grafana folder
                           --datadog               to Datadog (DATADOG_API_KEY, DATADOG_APP_KEY,
                                                   DATADOG_SITE, default datadoghq.com)
                           --datadog-url <url>     Datadog API base URL (overrides DATADOG_SITE)
"
    )
}

/// Runs `cargo xtask dashboards ...`.
///
/// # Errors
///
/// On bad arguments, unreadable thresholds, stale files with `--check`, or I/O errors.
pub fn run(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("publish") {
        return publish::run(&args[1..]);
    }
    let mut check = false;
    let mut reset = false;
    let mut changes: Vec<(String, String)> = Vec::new();
    let mut remaining = args.iter();
    while let Some(arg) = remaining.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        match flag {
            "--check" if inline.is_none() => check = true,
            "--reset" if inline.is_none() => reset = true,
            flag if FLAGS.iter().any(|f| f.name == flag) => {
                let value = match inline {
                    Some(value) => value,
                    None => remaining
                        .next()
                        .with_context(|| format!("`{flag}` needs a value"))?
                        .clone(),
                };
                changes.push((flag.to_owned(), value));
            }
            _ => bail!(
                "unknown argument `{arg}` for `cargo xtask dashboards`; see `cargo xtask help`\n{}",
                usage()
            ),
        }
    }
    if check && (reset || !changes.is_empty()) {
        bail!("`--check` checks the files against {THRESHOLDS_FILE}; it takes no threshold flags");
    }

    let mut thresholds = if reset {
        Thresholds::default()
    } else {
        recorded_thresholds()?
    };
    for (flag, value) in &changes {
        thresholds.set(flag, value)?;
    }
    thresholds.validate()?;
    let files = generate(&thresholds);
    if check {
        return check_files(&files);
    }
    write_files(&files)?;
    println!(
        "wrote {} files (dashboards/, alerts/) with thresholds {}",
        files.len(),
        thresholds.as_flags()
    );
    Ok(())
}

/// The thresholds in `alerts/thresholds.json`, or the defaults when it does not exist.
///
/// # Errors
///
/// When the file exists but cannot be read or holds invalid thresholds.
pub fn recorded_thresholds() -> Result<Thresholds> {
    let path = project_root().join(THRESHOLDS_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let t = Thresholds::from_json(&text).with_context(|| format!("reading {}", path.display()))?;
            t.validate().with_context(|| format!("in {}", path.display()))?;
            Ok(t)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Thresholds::default()),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Every generated file: its path relative to the project root, and its content.
pub fn generate(t: &Thresholds) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dashboard in grafana::dashboards(t) {
        files.push((
            format!("{GRAFANA_DIR}/{}", dashboard.file),
            format!("{}\n", grafana::to_json(&dashboard).to_pretty()),
        ));
    }
    for dashboard in datadog::dashboards(t) {
        files.push((
            format!("{DATADOG_DIR}/{}", dashboard.file),
            format!("{}\n", datadog::to_json(&dashboard).to_pretty()),
        ));
    }
    let alerts = alerts::alerts(t);
    files.push((RULES_FILE.to_owned(), alerts::rules_yaml(&alerts, t)));
    files.push((RULES_TEST_FILE.to_owned(), alerts::rules_test_yaml(&alerts)));
    files.push((
        MONITORS_FILE.to_owned(),
        format!("{}\n", alerts::monitors_json(&alerts).to_pretty()),
    ));
    files.push((THRESHOLDS_FILE.to_owned(), t.to_json()));
    files
}

/// `*.json` files in the dashboard directories that the generator does not make (a renamed or
/// removed dashboard), relative to the project root.
fn unexpected_files(root: &Path, files: &[(String, String)]) -> Result<Vec<String>> {
    let mut extra = Vec::new();
    for dir in [GRAFANA_DIR, DATADOG_DIR] {
        let entries = match fs::read_dir(root.join(dir)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("listing {dir}")),
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let relative = format!("{dir}/{name}");
            let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
            if json && !files.iter().any(|(generated, _)| *generated == relative) {
                extra.push(relative);
            }
        }
    }
    extra.sort();
    Ok(extra)
}

/// Writes the files, creating directories, and removes stale dashboard files.
fn write_files(files: &[(String, String)]) -> Result<()> {
    let root = project_root();
    for stale in unexpected_files(&root, files)? {
        fs::remove_file(root.join(&stale)).with_context(|| format!("removing the stale {stale}"))?;
        println!("removed {stale} (no longer generated)");
    }
    for (path, content) in files {
        let full = root.join(path);
        if let Some(dir) = full.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        if fs::read_to_string(&full).ok().as_deref() != Some(content.as_str()) {
            fs::write(&full, content).with_context(|| format!("writing {}", full.display()))?;
            println!("wrote {path}");
        }
    }
    Ok(())
}

/// What is stale: files missing or different from `files`, and unexpected dashboard files.
fn stale_files(root: &Path, files: &[(String, String)]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (path, content) in files {
        match fs::read_to_string(root.join(path)) {
            Ok(actual) if actual == *content => {}
            Ok(actual) => problems.push(format!(
                "{path} differs from what the generator makes ({})",
                first_difference(&actual, content)
            )),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => problems.push(format!("{path} is missing")),
            Err(err) => problems.push(format!("{path} cannot be read: {err}")),
        }
    }
    for extra in unexpected_files(root, files)? {
        problems.push(format!("{extra} is no longer generated"));
    }
    Ok(problems)
}

/// `line N: expected "...", found "..."` for the first differing line.
fn first_difference(actual: &str, expected: &str) -> String {
    let mut expected_lines = expected.lines();
    for (n, line) in actual.lines().enumerate() {
        match expected_lines.next() {
            Some(wanted) if wanted == line => {}
            Some(wanted) => return format!("line {}: expected {wanted:?}, found {line:?}", n + 1),
            None => return format!("line {}: unexpected {line:?} after the end", n + 1),
        }
    }
    match expected_lines.next() {
        Some(wanted) => format!("ends before the expected {wanted:?}"),
        None => "line endings differ".to_owned(),
    }
}

/// Fails unless the checked-in files are exactly what the generator makes.
fn check_files(files: &[(String, String)]) -> Result<()> {
    let problems = stale_files(&project_root(), files)?;
    if problems.is_empty() {
        println!("dashboards and alerts are up to date ({} files)", files.len());
        return Ok(());
    }
    bail!(
        "the generated dashboards and alerts are stale:\n  {}\nrun `cargo xtask dashboards` and commit the result",
        problems.join("\n  ")
    )
}

/// The check CI runs: the checked-in files against the catalogue and `alerts/thresholds.json`.
///
/// # Errors
///
/// When a file is stale, missing, or no longer generated; the message says to run
/// `cargo xtask dashboards`.
pub fn check_up_to_date() -> Result<()> {
    let thresholds = recorded_thresholds()?;
    check_files(&generate(&thresholds))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use vigil_core::catalogue::{self, MetricKind};

    use super::*;
    use crate::json::{self, Value};

    /// Catalogue metrics deliberately left out of the dashboards, with the reason. Empty today:
    /// every metric has a panel.
    const EXCLUDED: &[(&str, &str)] = &[];

    #[test]
    fn every_catalogue_metric_has_a_grafana_panel() {
        let t = Thresholds::default();
        let mut used = BTreeSet::new();
        for dashboard in grafana::dashboards(&t) {
            for panel in &dashboard.panels {
                for target in &panel.targets {
                    for (name, _) in promql::selectors(&target.expr).unwrap_or_else(|unknown| {
                        panic!(
                            "{} / {}: unknown metrics {unknown:?} in {}",
                            dashboard.title, panel.title, target.expr
                        )
                    }) {
                        used.insert(name);
                    }
                }
            }
        }
        for def in catalogue::ALL {
            let names: Vec<String> = promql::all_series_names()
                .into_iter()
                .filter(|(_, d)| d.name == def.name)
                .map(|(n, _)| n)
                .collect();
            let shown = names.iter().any(|n| used.contains(n));
            let excluded = EXCLUDED.iter().any(|(name, _)| *name == def.name);
            assert!(
                shown ^ excluded,
                "{} ({names:?}) must be used by a Grafana panel or listed in EXCLUDED with a reason, not both/neither",
                def.name
            );
        }
    }

    #[test]
    fn every_catalogue_metric_has_a_datadog_widget_and_names_are_real() {
        let t = Thresholds::default();
        let mut used = BTreeSet::new();
        for dashboard in datadog::dashboards(&t) {
            for (_, query) in datadog::metric_queries(&datadog::to_json(&dashboard)) {
                let refs = datadog::metric_refs(&query);
                assert_eq!(refs.len(), 1, "{query}");
                let name = refs[0].name.as_str();
                if dashboard.file == "apm.json" {
                    assert!(name.starts_with("trace.http.request"), "{query}");
                    continue;
                }
                let def = catalogue::find(name)
                    .unwrap_or_else(|| panic!("{}: {name} is not in the catalogue ({query})", dashboard.title));
                if def.kind == MetricKind::Histogram {
                    assert!(
                        ["p50", "p95", "p99", "avg", "count", "max"]
                            .iter()
                            .any(|a| query.starts_with(&format!("{a}:"))),
                        "{query}: a distribution wants a percentile or avg/count"
                    );
                }
                if def.kind == MetricKind::Counter {
                    assert!(
                        query.ends_with(".as_rate()") || query.ends_with(".as_count()"),
                        "{query}"
                    );
                }
                for tag in query
                    .split(" by {")
                    .nth(1)
                    .map(|g| {
                        g.trim_end_matches(".as_rate()")
                            .trim_end_matches(".as_count()")
                            .trim_end_matches('}')
                    })
                    .into_iter()
                    .flat_map(|g| g.split(','))
                {
                    assert!(
                        def.tags.contains(&tag) || ["host", "service", "env"].contains(&tag),
                        "{query}: {name} has no tag {tag}"
                    );
                }
                used.insert(def.name);
            }
        }
        for def in catalogue::ALL {
            assert!(
                used.contains(def.name) || EXCLUDED.iter().any(|(n, _)| *n == def.name),
                "{} has no Datadog widget",
                def.name
            );
        }
    }

    #[test]
    fn generated_files_are_valid_json_with_unique_ids() {
        let files = generate(&Thresholds::default());
        assert_eq!(files.len(), 5 + 7 + 4);
        let mut uids = BTreeSet::new();
        let mut titles = BTreeSet::new();
        for (path, content) in &files {
            assert!(content.ends_with('\n'), "{path}");
            if Path::new(path).extension().is_none_or(|e| e != "json") {
                continue;
            }
            let value = json::parse(content).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(value.duplicate_keys().is_empty(), "{path}");
            if path.starts_with(GRAFANA_DIR) {
                assert!(
                    uids.insert(value.get("uid").and_then(Value::as_str).unwrap().to_owned()),
                    "{path}"
                );
                let panels = value.get("panels").and_then(Value::as_array).unwrap();
                let mut panel_titles = BTreeSet::new();
                for panel in panels {
                    let title = panel.get("title").and_then(Value::as_str).unwrap();
                    assert!(panel_titles.insert(title), "{path}: panel {title} twice");
                    let unit = panel
                        .get("fieldConfig")
                        .and_then(|f| f.get("defaults"))
                        .and_then(|d| d.get("unit"));
                    assert!(
                        unit.and_then(Value::as_str).is_some_and(|u| !u.is_empty()),
                        "{path}: {title} has no unit"
                    );
                }
                let variables: Vec<&str> = value
                    .get("templating")
                    .and_then(|t| t.get("list"))
                    .and_then(Value::as_array)
                    .unwrap()
                    .iter()
                    .filter_map(|v| v.get("name").and_then(Value::as_str))
                    .collect();
                assert_eq!(
                    variables,
                    ["datasource", "service", "environment", "instance"],
                    "{path}"
                );
            }
            if path.starts_with(DATADOG_DIR) {
                assert!(
                    titles.insert(value.get("title").and_then(Value::as_str).unwrap().to_owned()),
                    "{path}"
                );
                assert_eq!(value.get("layout_type").and_then(Value::as_str), Some("ordered"));
            }
        }
    }

    #[test]
    fn thresholds_appear_where_alerts_exist() {
        let t = Thresholds {
            error_rate: 0.02,
            slow_query_ms: 250.0,
            memory_bytes: 2 << 30,
            pool_saturation: 0.9,
            latency_ms: 750.0,
        };
        let files = generate(&t);
        let file = |name: &str| {
            files
                .iter()
                .find(|(p, _)| p.ends_with(name))
                .map(|(_, c)| c.as_str())
                .unwrap()
        };
        let grafana_latency = file("grafana/request-latency.json");
        assert!(
            grafana_latency.contains("\"value\": 0.75"),
            "latency threshold in seconds"
        );
        assert!(grafana_latency.contains("\"value\": 0.02"), "error-rate threshold");
        assert!(grafana_latency.contains("\"mode\": \"line+area\""), "threshold drawn");
        assert!(file("grafana/database.json").contains("\"value\": 0.25"));
        assert!(file("grafana/database.json").contains("\"value\": 0.9"));
        assert!(file("grafana/infrastructure.json").contains("\"value\": 2147483648"));
        assert!(file("datadog/request-latency.json").contains("\"y = 750\""));
        assert!(file("datadog/database.json").contains("\"y = 250\""));
        assert!(
            file("datadog/basic-metrics.json").contains("\"value\": 2,"),
            "error-rate percent on the stat"
        );
        let rules = file("prometheus/rules.yml");
        for needle in ["> 0.02\n", "> 0.25\n", "> 2147483648\n", "> 0.9\n", "> 0.75\n"] {
            assert!(rules.contains(needle), "{needle:?}");
        }
        assert!(file("alerts/thresholds.json").contains("\"latency_ms\": 750"));

        // Percentages of ratios are rounded: 0.07 is 7, not 7.000000000000001.
        let noisy = Thresholds {
            error_rate: 0.07,
            pool_saturation: 0.57,
            ..t
        };
        for (path, content) in generate(&noisy) {
            assert!(
                !content.contains("0000000000") && !content.contains("9999999999"),
                "float noise in {path}"
            );
        }
        assert!(file("datadog/monitors.json").contains("> 750\""));
    }

    #[test]
    fn staleness_is_reported_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("vigil-dashboards-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let files = generate(&Thresholds::default());
        for (path, content) in &files {
            let full = dir.join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, content).unwrap();
        }
        assert!(stale_files(&dir, &files).unwrap().is_empty());

        let target = dir.join(GRAFANA_DIR).join("database.json");
        let changed = fs::read_to_string(&target)
            .unwrap()
            .replace("database_query_total", "database_queries_total");
        fs::write(&target, changed).unwrap();
        fs::write(dir.join(DATADOG_DIR).join("old.json"), "{}").unwrap();
        fs::remove_file(dir.join(MONITORS_FILE)).unwrap();
        let problems = stale_files(&dir, &files).unwrap().join("\n");
        assert!(
            problems.contains("dashboards/grafana/database.json differs"),
            "{problems}"
        );
        assert!(problems.contains("database_queries_total"), "{problems}");
        assert!(
            problems.contains("dashboards/datadog/old.json is no longer generated"),
            "{problems}"
        );
        assert!(
            problems.contains("alerts/datadog/monitors.json is missing"),
            "{problems}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn arguments() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(run(&args(&["--bogus"])).is_err());
        assert!(run(&args(&["--check", "--latency-ms", "300"])).is_err());
        assert!(run(&args(&["--latency-ms"])).is_err());
        let err = run(&args(&["--latency-ms=20000", "--check"])).unwrap_err().to_string();
        assert!(err.contains("--check"), "{err}");
    }

    /// Runs `promtool test rules` on rules generated with several thresholds, so the test
    /// cases and the annotation rendering hold for more than the defaults. Skips without
    /// promtool unless `VIGIL_REQUIRE_PROMTOOL` is set.
    #[test]
    fn promtool_accepts_rules_for_several_thresholds() {
        let Some(promtool) = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("promtool"))
                .find(|p| p.is_file())
        }) else {
            assert!(
                std::env::var_os("VIGIL_REQUIRE_PROMTOOL").is_none(),
                "promtool is required but not on PATH"
            );
            eprintln!("skipping: promtool is not on PATH");
            return;
        };
        let dir = std::env::temp_dir().join(format!("vigil-rules-test-{}", std::process::id()));
        for (i, t) in [
            Thresholds::default(),
            Thresholds {
                error_rate: 0.123,
                slow_query_ms: 1.0,
                memory_bytes: 1_000_000_000,
                pool_saturation: 0.995,
                latency_ms: 9999.0,
            },
            Thresholds {
                error_rate: 0.5,
                slow_query_ms: 2000.0,
                memory_bytes: 3 << 29,
                pool_saturation: 0.05,
                latency_ms: 33.0,
            },
        ]
        .into_iter()
        .enumerate()
        {
            t.validate().unwrap();
            let case = dir.join(i.to_string());
            fs::create_dir_all(&case).unwrap();
            let list = alerts::alerts(&t);
            fs::write(case.join("rules.yml"), alerts::rules_yaml(&list, &t)).unwrap();
            fs::write(case.join("rules_test.yml"), alerts::rules_test_yaml(&list)).unwrap();
            for args in [
                &["check", "rules", "rules.yml"][..],
                &["test", "rules", "rules_test.yml"][..],
            ] {
                let out = std::process::Command::new(&promtool)
                    .args(args)
                    .current_dir(&case)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "promtool {args:?} failed for {t:?}:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
