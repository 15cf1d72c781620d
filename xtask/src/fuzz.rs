//! `cargo xtask fuzz`: builds the cargo-fuzz targets in `fuzz/` and runs each for a bounded
//! time with libFuzzer, then reports runs, speed and crashes per target.
//!
//! cargo-fuzz needs nightly-only compiler flags (`-Zsanitizer=address` and the coverage
//! instrumentation); `RUSTC_BOOTSTRAP=1` lets the stable toolchain take them, so no nightly
//! toolchain is needed. Each target's corpus is kept in `fuzz/corpus/<target>` (not in git)
//! and grows from run to run; a crash leaves its input in `fuzz/artifacts/<target>/`, to be
//! turned into a regression test in the crate it found a bug in. CI does not run this: it runs
//! the same properties as proptests in the crates' tests.

use std::fmt::Write as _;
use std::io::BufReader;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::project_root;

/// The fuzz targets, in `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: &[&str] = &[
    "prometheus_exposition",
    "sql_classifier",
    "config_env",
    "ws_classifier",
    "console_format",
];

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// A single input running longer than this (seconds) counts as a crash (a hang).
const INPUT_TIMEOUT: u64 = 20;

/// What one target's run came to.
#[derive(Debug, Default)]
struct Outcome {
    /// Inputs executed (libFuzzer's `stat::number_of_executed_units`, or its `Done N runs`).
    runs: Option<u64>,
    /// Executions per second.
    execs_per_sec: Option<u64>,
    /// Inputs added to the corpus in this run.
    new_units: Option<u64>,
    /// Peak resident memory, MB.
    peak_rss_mb: Option<u64>,
    /// The crashing input libFuzzer wrote, if it crashed.
    artifact: Option<String>,
    /// Whether the run failed (a crash, a hang, a leak, or libFuzzer not starting).
    failed: bool,
    /// Wall-clock time.
    elapsed: Duration,
}

/// `cargo xtask fuzz [--seconds N] [TARGET...]`.
pub fn run(args: &[String]) -> Result<()> {
    let (seconds, targets) = parse_args(args)?;
    ensure_cargo_fuzz()?;
    eprintln!(
        "fuzzing {} target(s) for {seconds} s each (about {} s in all, plus the build)",
        targets.len(),
        seconds * targets.len() as u64
    );
    // `cargo fuzz build` takes one target, or none for all of them.
    let builds: Vec<Option<&str>> = if targets.len() == TARGETS.len() {
        vec![None]
    } else {
        targets.iter().copied().map(Some).collect()
    };
    for target in builds {
        Cmd::cargo("fuzz: build")
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "build"])
            .args(target)
            .run()?;
    }
    let mut outcomes = Vec::new();
    for target in &targets {
        let outcome = run_target(target, seconds)?;
        outcomes.push((*target, outcome));
    }
    eprintln!("\n{}", report(&outcomes));
    let failed: Vec<&str> = outcomes.iter().filter(|(_, o)| o.failed).map(|(t, _)| *t).collect();
    if !failed.is_empty() {
        bail!(
            "fuzz target(s) failed: {} (reproduce with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <artifact>`, \
             then add the input as a regression test)",
            failed.join(", ")
        );
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(u64, Vec<&'static str>)> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| format!("--seconds {value:?}: expected a whole number of seconds above 0"))?;
            }
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(t) => targets.push(*t),
                None => bail!("unknown fuzz target `{name}`; the targets are: {}", TARGETS.join(", ")),
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok((seconds, targets))
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is not available.
fn ensure_cargo_fuzz() -> Result<()> {
    if Cmd::cargo("fuzz: probe").args(["fuzz", "--version"]).succeeds() {
        return Ok(());
    }
    eprintln!("cargo-fuzz is not installed: installing it with `cargo install cargo-fuzz --locked`");
    Cmd::cargo("fuzz: install cargo-fuzz")
        .args(["install", "cargo-fuzz", "--locked"])
        .run()
}

/// Runs one target for `seconds`, forwarding libFuzzer's messages (but its progress lines)
/// and reading its statistics.
fn run_target(target: &str, seconds: u64) -> Result<Outcome> {
    let cmd = Cmd::cargo(format!("fuzz: {target}"))
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT}"))
        .arg("-rss_limit_mb=4096")
        .arg("-print_final_stats=1");
    std::fs::create_dir_all(project_root().join("fuzz/corpus").join(target))?;
    cmd.echo();
    let start = Instant::now();
    let mut child = cmd
        .to_command()
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("step fuzz: {target}: could not start `{cmd}`"))?;
    let stderr = child.stderr.take().context("libFuzzer's stderr")?;
    let reader = thread::spawn(move || read_output(BufReader::new(stderr)));
    // libFuzzer stops itself after -max_total_time; this only bounds a libFuzzer that does not.
    let deadline = start + Duration::from_secs(seconds + 300);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            eprintln!("fuzz: {target} overran its time by 300 s: stopping it");
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let mut outcome = reader.join().unwrap_or_default();
    outcome.elapsed = start.elapsed();
    outcome.failed = outcome.artifact.is_some() || !status.is_some_and(|s| s.success());
    Ok(outcome)
}

/// Forwards libFuzzer's output (without its per-input progress and new-function lines) and
/// reads its numbers.
fn read_output(stderr: impl std::io::BufRead) -> Outcome {
    let mut outcome = Outcome::default();
    for line in stderr.lines() {
        let Ok(line) = line else { break };
        let progress = (line.starts_with('#') && !line.contains("DONE")) || line.trim_start().starts_with("NEW_FUNC");
        if !progress {
            eprintln!("{line}");
        }
        let number = |prefix: &str| line.strip_prefix(prefix).and_then(|v| v.trim().parse().ok());
        if let Some(n) = number("stat::number_of_executed_units:") {
            outcome.runs = Some(n);
        } else if let Some(n) = number("stat::average_exec_per_sec:") {
            outcome.execs_per_sec = Some(n);
        } else if let Some(n) = number("stat::new_units_added:") {
            outcome.new_units = Some(n);
        } else if let Some(n) = number("stat::peak_rss_mb:") {
            outcome.peak_rss_mb = Some(n);
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // `Done 6162 runs in 31 second(s)`.
            outcome.runs = outcome
                .runs
                .or_else(|| rest.split(' ').next().and_then(|n| n.parse().ok()));
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            outcome.artifact = Some(path.trim().to_owned());
        }
    }
    outcome
}

fn shown(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// The per-target table.
fn report(outcomes: &[(&str, Outcome)]) -> String {
    let mut out = String::from("fuzz report\n");
    let _ = writeln!(
        out,
        "{:<24} {:>12} {:>9} {:>8} {:>8} {:>7}  result",
        "target", "runs", "exec/s", "new", "rss MB", "time"
    );
    for (target, o) in outcomes {
        let result = match (&o.artifact, o.failed) {
            (Some(artifact), _) => format!("CRASH: {artifact}"),
            (None, true) => "FAILED (see the output above)".to_owned(),
            (None, false) => "ok, no crash".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<24} {:>12} {:>9} {:>8} {:>8} {:>6}s  {result}",
            target,
            shown(o.runs),
            shown(o.execs_per_sec),
            shown(o.new_units),
            shown(o.peak_rss_mb),
            o.elapsed.as_secs()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_pick_targets_and_seconds() {
        let (seconds, targets) = parse_args(&[]).unwrap();
        assert_eq!((seconds, targets.len()), (DEFAULT_SECONDS, TARGETS.len()));
        let args = ["--seconds", "5", "sql_classifier"].map(String::from);
        assert_eq!(parse_args(&args).unwrap(), (5, vec!["sql_classifier"]));
        assert!(parse_args(&["nope".to_owned()]).is_err());
        assert!(parse_args(&["--seconds".to_owned(), "0".to_owned()]).is_err());
    }

    #[test]
    fn libfuzzer_output_gives_the_numbers_and_the_artifact() {
        let text = "\
#1024\tpulse  cov: 10 ft: 12 corp: 3/9b exec/s: 512 rss: 40Mb
==1== ERROR: libFuzzer: deadly signal
artifact_prefix='/p/fuzz/artifacts/x/'; Test unit written to /p/fuzz/artifacts/x/crash-abc
stat::number_of_executed_units: 2048
stat::average_exec_per_sec:     512
stat::new_units_added:          7
stat::peak_rss_mb:              41
";
        let o = read_output(text.as_bytes());
        assert_eq!(
            (o.runs, o.execs_per_sec, o.new_units, o.peak_rss_mb),
            (Some(2048), Some(512), Some(7), Some(41))
        );
        assert_eq!(o.artifact.as_deref(), Some("/p/fuzz/artifacts/x/crash-abc"));
        let o = read_output("Done 6162 runs in 31 second(s)\n".as_bytes());
        assert_eq!(o.runs, Some(6162));
    }
}
