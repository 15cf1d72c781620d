//! `cargo xtask bench`: runs the benchmark suite — the criterion benches of the metric hot path,
//! scaling, memory, logging, HTTP layer and background work, then wrk against the example HTTP
//! server with scrapes of its `/metrics` — and writes `BENCHMARKS.md`: method, machine,
//! commands, the targets with PASS/MISS, and tables of ratios to the peers.
//!
//! Each bench target keeps its results apart (`<target>/vigil-bench/`), emptied before it runs,
//! so a report never mixes in results of a bench that no longer exists; a sub-selection
//! (`cargo xtask bench facade wrk`) reruns only those parts and reports the rest from the last run.

mod machine;
mod report;
mod results;
mod targets;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::json;
use crate::wrk::{self, WrkConfig, WrkReport};
use crate::{project_root, target_dir};

use machine::Machine;
use report::Settings;
use results::Results;

/// The bench targets (`package/bench`) the report's sections read.
pub mod sources {
    /// Metric updates: the hot path and two threads (`crates/vigil/benches/facade.rs`).
    pub const FACADE: &str = "vigil/facade";
    /// Updates across many series and `/metrics` renders (`crates/vigil/benches/scaling.rs`).
    pub const SCALING: &str = "vigil/scaling";
    /// Memory per series and the cardinality limit (`crates/vigil/benches/memory.rs`).
    pub const MEMORY: &str = "vigil/memory";
    /// Log events through the console backend and tracing-subscriber.
    pub const CONSOLE: &str = "vigil-log-console/console";
    /// Bytes allocated per log event.
    pub const CONSOLE_ALLOC: &str = "vigil-log-console/console_alloc";
    /// The HTTP layer in process.
    pub const HTTP: &str = "vigil-http/layer";
    /// The VM sampler.
    pub const VM: &str = "vigil-vm/sample";
    /// The Datadog logs backend's caller-side cost.
    pub const DATADOG_LOGS: &str = "vigil-log-datadog/caller";
    /// Spans through the Datadog trace layer.
    pub const DATADOG_TRACES: &str = "vigil-trace-datadog/spans";
}

/// The bench targets of the suite, in run order.
const BENCHES: [&str; 9] = [
    sources::FACADE,
    sources::SCALING,
    sources::MEMORY,
    sources::CONSOLE,
    sources::CONSOLE_ALLOC,
    sources::HTTP,
    sources::VM,
    sources::DATADOG_LOGS,
    sources::DATADOG_TRACES,
];

/// Packages all of whose `[[bench]]` targets run as well, read from their manifests (their
/// benches are added to by other work; criterion results of theirs land in the appendix).
const DISCOVERED: [&str; 1] = ["vigil-metrics-prometheus"];

/// Criterion's settings for every bench (a group may set its own).
const CRITERION_ARGS: [&str; 4] = ["--warm-up-time", "1", "--measurement-time", "2"];
/// Criterion's settings for a `--quick` smoke run.
const QUICK_CRITERION_ARGS: [&str; 6] = [
    "--warm-up-time",
    "0.2",
    "--measurement-time",
    "0.4",
    "--sample-size",
    "10",
];

/// The usage of `cargo xtask bench`.
const USAGE: &str = "\
Usage: cargo xtask bench [--quick] [--note TEXT] [--output PATH] [PART]...

Runs the benchmark suite and writes the report: BENCHMARKS.md after a full run, else
target/bench-report.md (or PATH). Targets that are missed are reported, not failed.

  PART        criterion      every criterion bench (metrics, logging, HTTP layer, background work)
              wrk            the HTTP run under wrk and the /metrics scrape latency
              <bench>        one bench target, as package/bench or its bench name if unique
                             (facade, scaling, memory, console, console_alloc, layer, ...)
              none           everything
  --quick     a smoke run: very short measurements (report to target/bench-report.md)
  --note TEXT a line for the report (for example: numbers from a busy, shared machine)
  --output P  write the report to P
";

/// The parsed command line.
#[derive(Debug, Default, PartialEq)]
struct Options {
    quick: bool,
    note: Option<String>,
    output: Option<PathBuf>,
    parts: Vec<String>,
    help: bool,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--help" | "-h" => options.help = true,
            "--note" => options.note = Some(args.next().context("--note needs a text")?.clone()),
            "--output" => options.output = Some(PathBuf::from(args.next().context("--output needs a path")?)),
            flag if flag.starts_with('-') => bail!("unknown option `{flag}`\n\n{USAGE}"),
            part => options.parts.push(part.to_owned()),
        }
    }
    Ok(options)
}

/// What one invocation runs.
#[derive(Debug, PartialEq)]
struct Selection {
    /// Bench targets (`package/bench`), in suite order.
    benches: Vec<String>,
    /// Whether the wrk run is part of it.
    wrk: bool,
}

/// The parts of `suite` that `parts` select (all when empty).
fn select(suite: &[String], parts: &[String]) -> Result<Selection> {
    if parts.is_empty() {
        return Ok(Selection {
            benches: suite.to_vec(),
            wrk: true,
        });
    }
    let mut chosen: Vec<&String> = Vec::new();
    let mut wrk = false;
    for part in parts {
        match part.as_str() {
            "criterion" => chosen.extend(suite),
            "wrk" => wrk = true,
            name => {
                let matches: Vec<&String> = suite
                    .iter()
                    .filter(|s| *s == name || s.split_once('/').is_some_and(|(_, bench)| bench == name))
                    .collect();
                match matches.as_slice() {
                    [one] => chosen.push(one),
                    [] => bail!(
                        "unknown bench part `{name}`: expected criterion, wrk or one of {}",
                        suite.join(", ")
                    ),
                    many => bail!(
                        "`{name}` names several bench targets ({}): use package/bench",
                        many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }
            }
        }
    }
    let benches = suite.iter().filter(|s| chosen.contains(s)).cloned().collect();
    Ok(Selection { benches, wrk })
}

/// The `name`s of the `[[bench]]` sections of a Cargo manifest.
fn bench_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bench = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if in_bench
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            names.push(value.trim().trim_matches('"').to_owned());
        }
    }
    names
}

/// Every bench target of the suite: [`BENCHES`], then those of the [`DISCOVERED`] packages.
fn suite() -> Result<Vec<String>> {
    let mut all: Vec<String> = BENCHES.iter().map(|s| (*s).to_owned()).collect();
    for package in DISCOVERED {
        let path = project_root().join("crates").join(package).join("Cargo.toml");
        let manifest = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        all.extend(bench_names(&manifest).into_iter().map(|b| format!("{package}/{b}")));
    }
    Ok(all)
}

/// Where the bench results live: `<target>/vigil-bench`.
fn results_dir() -> PathBuf {
    target_dir().join("vigil-bench")
}

fn criterion_home(dir: &Path, source: &str) -> PathBuf {
    dir.join("criterion").join(source.replace('/', "."))
}

fn side_file(dir: &Path, source: &str) -> PathBuf {
    dir.join("side").join(format!("{}.json", source.replace('/', ".")))
}

fn wrk_file(dir: &Path) -> PathBuf {
    dir.join("wrk.json")
}

/// Runs one bench target with its own, emptied, result places.
fn run_bench(dir: &Path, source: &str, criterion_args: &[&str]) -> Result<()> {
    let (package, bench) = source.split_once('/').context("a bench target is package/bench")?;
    let home = criterion_home(dir, source);
    let side = side_file(dir, source);
    if home.exists() {
        fs::remove_dir_all(&home).with_context(|| format!("emptying {}", home.display()))?;
    }
    if side.exists() {
        fs::remove_file(&side).with_context(|| format!("removing {}", side.display()))?;
    }
    fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    Cmd::cargo(format!("bench: {source}"))
        .env("CRITERION_HOME", &home)
        .env("VIGIL_BENCH_OUT", &side)
        .args(["bench", "-p", package, "--bench", bench, "--"])
        .args(criterion_args.iter().copied())
        .run()
}

/// Everything kept for the bench targets of `suite` and the last wrk run.
fn load(dir: &Path, suite: &[String]) -> Result<Results> {
    let mut results = Results::default();
    for source in suite {
        results
            .criterion
            .extend(results::collect_criterion(source, &criterion_home(dir, source))?);
        results
            .side
            .extend(results::read_side(source, &side_file(dir, source))?);
    }
    let wrk = wrk_file(dir);
    if wrk.is_file() {
        let text = fs::read_to_string(&wrk).with_context(|| format!("reading {}", wrk.display()))?;
        let value = json::parse(&text).with_context(|| format!("in {}", wrk.display()))?;
        results.wrk = Some(WrkReport::from_json(&value).with_context(|| format!("in {}", wrk.display()))?);
    }
    Ok(results)
}

/// Runs the selected parts, then writes the report.
///
/// # Errors
///
/// On a bad command line, when a bench or the wrk run fails (the report is still written with
/// what was measured), or when results cannot be read or the report written.
pub fn run(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    if options.help {
        print!("{USAGE}");
        return Ok(());
    }
    let suite = suite()?;
    let selection = select(&suite, &options.parts)?;
    let full = selection.benches.len() == suite.len() && selection.wrk;
    let criterion_args: &[&str] = if options.quick {
        &QUICK_CRITERION_ARGS
    } else {
        &CRITERION_ARGS
    };
    let wrk_config = if options.quick {
        WrkConfig::QUICK
    } else {
        WrkConfig::FULL
    };
    let dir = results_dir();
    let mut machine = Machine::detect();
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    for source in &selection.benches {
        if let Err(err) = run_bench(&dir, source, criterion_args) {
            eprintln!("error: {err:#}");
            failures.push(format!("{source}: {err:#}"));
        }
    }
    if selection.wrk {
        let file = wrk_file(&dir);
        if file.exists() {
            fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
        match wrk::run(wrk_config) {
            Ok(report) => {
                fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                fs::write(&file, report.to_json().to_pretty())
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                failures.push(format!("wrk: {err:#}"));
            }
        }
    }
    machine.finish();
    let results = load(&dir, &suite)?;
    let mut reused: Vec<String> = suite
        .iter()
        .filter(|s| !selection.benches.contains(s))
        .cloned()
        .collect();
    if !selection.wrk {
        reused.push("wrk".to_owned());
    }
    let mut invocation = String::from("cargo xtask bench");
    for arg in args {
        invocation.push(' ');
        invocation.push_str(arg);
    }
    let settings = Settings {
        invocation,
        quick: options.quick,
        note: options.note.clone(),
        criterion_args: criterion_args.iter().map(|a| (*a).to_owned()).collect(),
        wrk: wrk_config,
        benches: suite.clone(),
        reused,
    };
    let text = report::render(&results, &machine, &settings);
    let path = match &options.output {
        Some(path) => project_root().join(path),
        None if full && !options.quick => project_root().join("BENCHMARKS.md"),
        None => target_dir().join("bench-report.md"),
    };
    fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("\nTargets:");
    for t in targets::evaluate(&results) {
        println!(
            "  {:<12} {} — {} (goal {})",
            t.status.to_string(),
            t.what,
            t.measured,
            t.goal
        );
    }
    println!(
        "\nreport written to {} ({:.1} min)",
        path.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{} part(s) failed:\n  {}", failures.len(), failures.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::machine::Machine;
    use super::results::{Measurement, Results, SideValue};
    use super::targets::{Status, evaluate};
    use super::*;
    use crate::wrk::ScrapeReport;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_options() {
        let o = parse_options(&args(&["--quick", "--note", "busy machine", "facade", "wrk"])).unwrap();
        assert!(o.quick);
        assert_eq!(o.note.as_deref(), Some("busy machine"));
        assert_eq!(o.parts, ["facade", "wrk"]);
        assert!(parse_options(&args(&["--note"])).is_err());
        assert!(parse_options(&args(&["--fast"])).is_err());
        assert_eq!(
            parse_options(&args(&["--output", "x.md"])).unwrap().output,
            Some(PathBuf::from("x.md"))
        );
    }

    #[test]
    fn selects_parts() {
        let suite = args(&[
            "vigil/facade",
            "vigil/memory",
            "vigil-log-console/console",
            "prom/memory",
        ]);
        let all = select(&suite, &[]).unwrap();
        assert_eq!(all.benches, suite);
        assert!(all.wrk);
        let some = select(&suite, &args(&["console", "vigil/facade"])).unwrap();
        assert_eq!(some.benches, ["vigil/facade", "vigil-log-console/console"]);
        assert!(!some.wrk);
        let wrk = select(&suite, &args(&["wrk"])).unwrap();
        assert!(wrk.benches.is_empty() && wrk.wrk);
        assert_eq!(select(&suite, &args(&["criterion"])).unwrap().benches, suite);
        let ambiguous = select(&suite, &args(&["memory"])).unwrap_err().to_string();
        assert!(ambiguous.contains("several"), "{ambiguous}");
        assert_eq!(
            select(&suite, &args(&["prom/memory"])).unwrap().benches,
            ["prom/memory"]
        );
        assert!(
            select(&suite, &args(&["nope"]))
                .unwrap_err()
                .to_string()
                .contains("unknown")
        );
    }

    #[test]
    fn reads_bench_names_from_a_manifest() {
        let manifest = "[package]\nname = \"p\"\n\n[[bench]]\nname = \"backend\"\nharness = false\n\n\
                        [dev-dependencies]\nname = \"not-a-bench\"\n\n[[bench]]\nharness = false\nname = \"memory\"\n\n[lints]\n";
        assert_eq!(bench_names(manifest), ["backend", "memory"]);
        assert!(bench_names("[package]\nname = \"p\"\n").is_empty());
    }

    fn m(source: &str, group: &str, bench: &str, median_ns: f64) -> Measurement {
        Measurement {
            source: source.to_owned(),
            group: group.to_owned(),
            bench: bench.to_owned(),
            median_ns,
        }
    }

    fn side(source: &str, group: &str, bench: &str, unit: &str, value: f64) -> SideValue {
        SideValue {
            source: source.to_owned(),
            group: group.to_owned(),
            bench: bench.to_owned(),
            unit: unit.to_owned(),
            value,
        }
    }

    /// Fixed hot-path and two-thread medians: the facade at 12 ns except with a histogram and 5
    /// labels (50 ns, 1.25x prometheus-client: the worst labelled group).
    fn hot_path_fixture(out: &mut Vec<Measurement>) {
        let facade = sources::FACADE;
        for kind in ["counter", "gauge", "histogram"] {
            for labels in [0, 2, 5] {
                let group = format!("{kind}_{labels}_labels");
                let ours = if group == "histogram_5_labels" { 50.0 } else { 12.0 };
                out.push(m(facade, &group, "vigil_facade", ours));
                out.push(m(facade, &group, "metrics_macro", 120.0));
                out.push(m(facade, &group, "metrics_handle", 5.5));
                out.push(m(facade, &group, "prometheus_client", 40.0));
                out.push(m(facade, &group, "prometheus", 30.0));
            }
        }
        out.push(m(facade, "counter_2_labels", "atomic_add", 5.0));
        for (bench, ns) in [
            ("vigil_facade", 30.0),
            ("metrics_handle", 20.0),
            ("prometheus_client", 80.0),
            ("prometheus", 60.0),
            ("atomic_add", 15.0),
        ] {
            out.push(m(facade, "counter_2_labels_2_threads", bench, ns));
        }
    }

    /// Fixed scaling medians: Vigil renders 1k in 0.1 ms, 10k in 1.2 ms (1.2 per step), 100k
    /// in 15 ms (1.25 per step).
    fn scaling_fixture(out: &mut Vec<Measurement>) {
        let scaling = sources::SCALING;
        for (n, facade, client) in [(1000, 15.0, 45.0), (10000, 60.0, 50.0), (100_000, 150.0, 90.0)] {
            out.push(m(scaling, "update_across_series", &format!("vigil_facade/{n}"), facade));
            out.push(m(
                scaling,
                "update_across_series",
                &format!("prometheus_client/{n}"),
                client,
            ));
            out.push(m(scaling, "update_across_series", &format!("prometheus/{n}"), 70.0));
        }
        for (n, vigil, client, prom) in [
            (1000, 100_000.0, 90_000.0, 500_000.0),
            (10000, 1_200_000.0, 1_000_000.0, 5_000_000.0),
            (100_000, 15_000_000.0, 11_000_000.0, 60_000_000.0),
        ] {
            out.push(m(scaling, "render_series", &format!("vigil/{n}"), vigil));
            out.push(m(scaling, "render_series", &format!("prometheus_client/{n}"), client));
            out.push(m(scaling, "render_series", &format!("prometheus/{n}"), prom));
        }
    }

    /// Fixed logging, HTTP, background and other medians.
    fn other_fixture(out: &mut Vec<Measurement>) {
        for (group, vigil, peer) in [
            ("log_event_3_fields", "vigil_console_json", "tracing_subscriber_json"),
            (
                "log_event_3_fields_in_span",
                "vigil_console_json",
                "tracing_subscriber_json",
            ),
            (
                "log_event_3_fields_text",
                "vigil_console_text",
                "tracing_subscriber_text",
            ),
            (
                "log_event_3_fields_text_in_span",
                "vigil_console_text",
                "tracing_subscriber_text",
            ),
        ] {
            out.push(m(sources::CONSOLE, group, vigil, 400.0));
            out.push(m(sources::CONSOLE, group, peer, 1000.0));
        }
        out.push(m(sources::HTTP, "http_request", "bare", 2000.0));
        out.push(m(sources::HTTP, "http_request", "vigil_layer", 2500.0));
        out.push(m(sources::VM, "vm_sample", "refresh_and_publish", 250_000.0));
        let logs = "datadog_caller_log_event";
        out.push(m(sources::DATADOG_LOGS, logs, "console_json", 400.0));
        out.push(m(sources::DATADOG_LOGS, logs, "console_json_and_datadog_down", 700.0));
        let traces = sources::DATADOG_TRACES;
        out.push(m(traces, "span_3_fields", "registry_no_layer_root_span", 200.0));
        out.push(m(traces, "span_3_fields", "datadog_layer_root_span", 500.0));
        out.push(m("other/backend", "render_counters", "vigil/1000", 300.0));
        out.push(m("other/backend", "render_counters", "prometheus_client/1000", 200.0));
        out.push(m("other/backend", "render_counters", "vigil/10000", 3000.0));
    }

    /// Fixed values measured aside.
    fn side_fixture() -> Vec<SideValue> {
        let mem = sources::MEMORY;
        let mut out = Vec::new();
        for (n, vigil) in [(1000, 340.0), (10000, 300.0), (100_000, 290.0)] {
            out.push(side(mem, "memory_per_series", &format!("vigil/{n}"), "bytes", vigil));
            out.push(side(
                mem,
                "allocations_per_series",
                &format!("vigil/{n}"),
                "allocations",
                4.0,
            ));
            out.push(side(
                mem,
                "memory_per_series",
                &format!("prometheus_client/{n}"),
                "bytes",
                170.0,
            ));
            out.push(side(
                mem,
                "memory_per_series",
                &format!("prometheus/{n}"),
                "bytes",
                400.0,
            ));
            let size = 2048.0 * f64::from(n / 1000);
            out.push(side(
                sources::SCALING,
                "render_size",
                &format!("vigil/{n}"),
                "bytes",
                size,
            ));
        }
        for (bench, unit, value) in [
            ("limit", "count", 1000.0),
            ("label_sets_registered", "count", 2000.0),
            ("series_kept", "count", 1001.0),
            ("bytes_per_series_below_limit", "bytes", 292.9),
            ("bytes_per_label_set_past_limit", "bytes", 0.3),
        ] {
            out.push(side(mem, "cardinality_limit", bench, unit, value));
        }
        let alloc = sources::CONSOLE_ALLOC;
        out.push(side(
            alloc,
            "log_bytes_per_event",
            "vigil_console_json/in_span",
            "bytes",
            0.0,
        ));
        out.push(side(
            alloc,
            "log_allocations_per_event",
            "vigil_console_json/in_span",
            "allocations",
            0.0,
        ));
        out.push(side(
            alloc,
            "log_bytes_per_event",
            "tracing_subscriber_json/in_span",
            "bytes",
            912.0,
        ));
        let console = sources::CONSOLE;
        out.push(side(
            console,
            "log_queue_dropped",
            "vigil_console_json/no_span",
            "count",
            0.0,
        ));
        out.push(side(
            console,
            "log_queue_written",
            "vigil_console_json/no_span",
            "count",
            5000.0,
        ));
        out.push(side(
            console,
            "log_queue_dropped",
            "vigil_console_json/in_span",
            "count",
            3.0,
        ));
        out.push(side(
            console,
            "log_queue_written",
            "vigil_console_json/in_span",
            "count",
            4000.0,
        ));
        out
    }

    /// A fixed set of results covering every section.
    fn fixture() -> Results {
        let mut criterion = Vec::new();
        hot_path_fixture(&mut criterion);
        scaling_fixture(&mut criterion);
        other_fixture(&mut criterion);
        Results {
            criterion,
            side: side_fixture(),
            wrk: Some(WrkReport {
                config: WrkConfig::FULL,
                runs: vec![
                    ("bare", vec![100.0, 110.0, 90.0]),
                    ("vigil", vec![98.0, 97.0, 99.0]),
                    ("axum-prometheus", vec![80.0]),
                ],
                scrape: Some(ScrapeReport {
                    idle_ms: vec![0.5, 0.25],
                    loaded_ms: vec![2.0, 4.0, 3.0],
                    bytes: 9000,
                    rps_during: 60000.0,
                }),
            }),
        }
    }

    fn machine() -> Machine {
        Machine {
            cpu: "AMD EPYC 7B13".to_owned(),
            cores: 2,
            kernel: "6.1.0".to_owned(),
            rustc: "rustc 1.95.0".to_owned(),
            date: "2026-11-25 13:20 UTC".to_owned(),
            load_start: Some("1.50 1.20 1.00".to_owned()),
            load_end: Some("2.00 1.50 1.10".to_owned()),
        }
    }

    fn settings() -> Settings {
        Settings {
            invocation: "cargo xtask bench".to_owned(),
            quick: false,
            note: Some("numbers from a busy, shared machine".to_owned()),
            criterion_args: args(&CRITERION_ARGS),
            wrk: WrkConfig::FULL,
            benches: args(&["vigil/facade", "vigil-metrics-prometheus/backend"]),
            reused: Vec::new(),
        }
    }

    #[test]
    fn targets_from_fixed_results() {
        let targets = evaluate(&fixture());
        let line = |t: &targets::Target| format!("{} | {} | {}", t.goal, t.measured, t.status);
        let lines: Vec<String> = targets.iter().map(line).collect();
        assert_eq!(
            lines,
            [
                "≤ 1.00x | 1.25x (worst: `histogram_5_labels`, 6 of 6 groups measured) | MISS",
                "≤ 1.20x | 1.10x | PASS",
                "≥ 0.97x | 0.980x | PASS",
                "≥ 1.00x | 1.225x | PASS",
                "≤ 0.70x | 0.40x | PASS",
                "≤ 1.50 | 1.25 (per series: 100 ns at 1k, 120 ns at 10k, 150 ns at 100k) | PASS",
                "≤ 2.00x | 1.20x | PASS",
                "< 1 s | 15 ms | PASS",
                "reported | 340 B at 1k, 300 B at 10k, 290 B at 100k | PASS",
                "past the limit ≤ 5% of a series; series ≤ limit + overflow | 0.3 B per label set past the \
                 limit vs 293 B per series below it; 1001 series kept of 2000 label sets (limit 1000) | PASS",
                "≤ 1.50x | 1.75x | MISS",
            ]
        );
        let empty = evaluate(&Results::default());
        assert!(
            empty
                .iter()
                .all(|t| t.status == Status::NotMeasured && t.measured == "n/a")
        );
    }

    #[test]
    fn report_rows_from_fixed_results() {
        let text = report::render(&fixture(), &machine(), &settings());
        for row in [
            "Written by `cargo xtask bench` on 2026-11-25 13:20 UTC.",
            "**Note:** numbers from a busy, shared machine",
            "| AMD EPYC 7B13 | 2 | 6.1.0 | rustc 1.95.0 | 2026-11-25 13:20 UTC | 1.50 1.20 1.00 → 2.00 1.50 1.10 |",
            "cargo bench -p vigil --bench facade -- --warm-up-time 1 --measurement-time 2",
            "cargo bench -p vigil-metrics-prometheus --bench backend -- --warm-up-time 1 --measurement-time 2",
            "taskset -c 1 wrk -t1 -c16 -d2s http://127.0.0.1:<port>/   # warm-up",
            // Hot path: facade, macro, handle, prometheus-client, prometheus, two ratios.
            "| counter | 2 | 12.0 | 120 | 5.50 | 40.0 | 30.0 | 0.30x | 0.40x |",
            "| histogram | 5 | 50.0 | 120 | 5.50 | 40.0 | 30.0 | 1.25x | 1.67x |",
            "a bare relaxed atomic add takes 5.00 ns; a counter handle update 5.50 ns, 1.10x the floor.",
            // Two threads.
            "| Vigil facade | 12.0 | 30.0 | 2.50x |",
            "| atomic add | 5.00 | 15.0 | 3.00x |",
            // Scaling.
            "| 10k | 60.0 | 50.0 | 70.0 | 1.20x | 0.86x |",
            "| 100k | 290 B (4.0) | 170 B | 400 B | 1.71x | 0.72x |",
            "the first 1000 keep 293 B each; each one past the limit keeps 0.3 B",
            "The metric ends with 1001 series.",
            "| 10k | 1.20 | 1.00 | 5.00 | 1.20x | 0.24x | 120 | 20 / n/a / n/a |",
            "| 100k | 15.00 | 11.00 | 60.00 | 1.36x | 0.25x | 150 | 200 / n/a / n/a |",
            // Scrapes and HTTP.
            "| under wrk load | 3 | 3.00 | 4.00 | 4.00 |",
            "| vigil | 98, 97, 99 | 98 | 0.980x | 1.225x |",
            "| vigil_layer | 2500 | 1.25x |",
            // Logging: ns, ratio, events/s, bytes.
            "| JSON | request span | 400 | 1000 | 0.40x | 2.50 M | 1.00 M | 0 B, 0.00 | 912 B |",
            "| text | none | 400 | 1000 | 0.40x | 2.50 M | 1.00 M | n/a | n/a |",
            "Lines Vigil's console queue dropped during the timed runs: 3 (of 9000 written).",
            // Background work.
            "| refresh_and_publish | 250.0 |",
            "| console_json_and_datadog_down | 700 | 1.75x |",
            "| span_3_fields, root | 200 | 500 | 2.50x |",
            // Targets.
            "| Datadog logs, caller-side cost with the intake down (console + Datadog) vs console alone | ≤ 1.50x | 1.75x | MISS |",
            // Appendix: parameterised benches compare with the peer of the same parameter.
            "| other/backend | render_counters | vigil/1000 | 300 | 1.50x |",
            "| other/backend | render_counters | prometheus_client/1000 | 200 | 1.00x (peer) |",
            "| other/backend | render_counters | vigil/10000 | 3000 | n/a |",
            "| vigil/memory | cardinality_limit | bytes_per_series_below_limit | 292.90 | bytes |",
        ] {
            assert!(text.contains(row), "missing {row:?} in:\n{text}");
        }
        assert!(!text.contains("Smoke run"), "{text}");
        // The VM sampler has no child-span rows to invent.
        assert!(!text.contains("span_3_fields, child"), "{text}");
    }

    #[test]
    fn report_without_results_says_so() {
        let mut s = settings();
        s.quick = true;
        s.note = None;
        s.reused = args(&["vigil/facade", "wrk"]);
        let text = report::render(&Results::default(), &machine(), &s);
        assert!(text.contains("**Smoke run (`--quick`)**"), "{text}");
        assert!(
            text.contains("results kept from an earlier run): vigil/facade, wrk."),
            "{text}"
        );
        assert!(
            text.contains("| counter | 0 | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"),
            "{text}"
        );
        assert!(
            text.contains("### Scrape latency under load\n\nNot measured in this run."),
            "{text}"
        );
        assert!(!text.contains("**Note:**"), "{text}");
    }
}
