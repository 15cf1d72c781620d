//! `cargo xtask ci`: every check CI runs, in order, failing fast, with a summary of the steps.

use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::{dashboards, e2e, project_root, soak};

/// The steps of `cargo xtask ci`, in the order they run; these names are what `--skip` takes.
/// `soak` is the short form of `cargo xtask soak` ([`SOAK_ARGS`]).
const STEPS: [&str; 9] = [
    "fmt",
    "dashboards",
    "clippy",
    "features",
    "test",
    "doc",
    "deny",
    "e2e",
    "soak",
];

/// The `soak` step: a one-minute soak (and 20 s without Vigil) instead of the default ten.
const SOAK_ARGS: [&str; 2] = ["--duration", "60"];

/// What happened to one row of the summary.
enum Outcome {
    /// Finished successfully.
    Passed,
    /// Failed; CI stopped here.
    Failed,
    /// Skipped with `--skip`.
    Skipped,
    /// Not reached because an earlier step failed.
    NotRun,
}

/// One row of the summary table.
struct Row {
    /// The step, with a detail for steps run several times (`features: db`).
    name: String,
    /// What happened.
    outcome: Outcome,
    /// How long it took (zero when it did not run).
    duration: Duration,
}

/// Runs `cargo xtask ci [--skip <step>]...`.
///
/// # Errors
///
/// On bad arguments, or naming the first step that failed.
pub fn run(args: &[String]) -> Result<()> {
    let skip = parse_skips(args)?;
    if !skip.is_empty() {
        let banner = "!".repeat(72);
        eprintln!(
            "{banner}\n!! xtask ci: SKIPPING {} (local iteration only; CI runs every step)\n{banner}",
            skip.join(", ")
        );
    }

    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failure = None;
    for step in STEPS {
        if skip.contains(&step) {
            rows.push(Row {
                name: step.to_owned(),
                outcome: Outcome::Skipped,
                duration: Duration::ZERO,
            });
            continue;
        }
        if failure.is_some() {
            rows.push(Row {
                name: step.to_owned(),
                outcome: Outcome::NotRun,
                duration: Duration::ZERO,
            });
            continue;
        }
        eprintln!("\n==> xtask ci: {step}");
        let step_started = Instant::now();
        let rows_before = rows.len();
        if let Err(err) = run_step(step, &mut rows) {
            // A step that failed before recording its own row (say, an unreadable manifest) still shows.
            if !rows[rows_before..].iter().any(|r| matches!(r.outcome, Outcome::Failed)) {
                rows.push(Row {
                    name: step.to_owned(),
                    outcome: Outcome::Failed,
                    duration: step_started.elapsed(),
                });
            }
            failure = Some((step, err));
        }
    }

    print_summary(&rows, started.elapsed(), &skip);
    if let Some((step, err)) = failure {
        return Err(err.context(format!("xtask ci: step {step} failed")));
    }
    println!("xtask ci: ok");
    Ok(())
}

/// Reads the `--skip <step>` options.
fn parse_skips(args: &[String]) -> Result<Vec<&'static str>> {
    let mut skip = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let name = if arg == "--skip" {
            args.next().context("`--skip` needs a step name")?.as_str()
        } else if let Some(name) = arg.strip_prefix("--skip=") {
            name
        } else {
            bail!("unknown argument `{arg}` for `cargo xtask ci`; it takes only `--skip <step>`");
        };
        let Some(&step) = STEPS.iter().find(|&&s| s == name) else {
            bail!("`--skip {name}`: no such step; the steps are {}", STEPS.join(", "));
        };
        if !skip.contains(&step) {
            skip.push(step);
        }
    }
    Ok(skip)
}

/// Runs one step, adding its rows (one, or one per feature) to the summary.
fn run_step(step: &str, rows: &mut Vec<Row>) -> Result<()> {
    if step == "features" {
        return check_features(rows);
    }
    let started = Instant::now();
    let result = match step {
        "fmt" => Cmd::cargo("fmt").args(["fmt", "--all", "--", "--check"]).run(),
        // The generated dashboards and alerts must match the catalogue and alerts/thresholds.json.
        "dashboards" => dashboards::check_up_to_date(),
        "clippy" => Cmd::cargo("clippy")
            .args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])
            .run(),
        "test" => test(),
        "doc" => Cmd::cargo("doc")
            .args(["doc", "--workspace", "--all-features", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings")
            .run(),
        "deny" => deny(),
        "e2e" => e2e::run(),
        "soak" => soak::run(&SOAK_ARGS.map(str::to_owned)),
        other => unreachable!("unknown step {other}"),
    };
    rows.push(Row {
        name: step.to_owned(),
        outcome: if result.is_ok() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        duration: started.elapsed(),
    });
    result
}

/// `cargo check -p vigil --no-default-features --features <f>` for each feature of the umbrella
/// crate alone, then with no feature at all.
fn check_features(rows: &mut Vec<Row>) -> Result<()> {
    let manifest = project_root().join("crates/vigil/Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .with_context(|| format!("reading the umbrella crate's features from {}", manifest.display()))?;
    let features = parse_features(&text);
    if features.is_empty() {
        bail!("found no features in the [features] table of {}", manifest.display());
    }
    eprintln!("features of crates/vigil (each checked alone): {}", features.join(", "));

    let mut runs: Vec<Option<&str>> = features.iter().map(|f| Some(f.as_str())).collect();
    runs.push(None);
    for feature in runs {
        let label = feature.unwrap_or("(none)");
        let step = format!("features: {label}");
        let mut cmd = Cmd::cargo(step.clone()).args(["check", "-p", "vigil", "--no-default-features"]);
        if let Some(feature) = feature {
            cmd = cmd.args(["--features", feature]);
        }
        let started = Instant::now();
        let result = cmd.run();
        rows.push(Row {
            name: step,
            outcome: if result.is_ok() {
                Outcome::Passed
            } else {
                Outcome::Failed
            },
            duration: started.elapsed(),
        });
        result?;
    }
    Ok(())
}

/// The feature names of a manifest's `[features]` table, in file order, without `default`.
///
/// Simple line parsing: the table runs from its header to the next table header; a feature is a
/// `name = [...]` line at bracket depth zero (arrays may span lines), comments are ignored.
fn parse_features(manifest: &str) -> Vec<String> {
    let mut features = Vec::new();
    let mut in_table = false;
    let mut depth = 0usize;
    for raw in manifest.lines() {
        let line = strip_comment(raw).trim();
        if depth == 0 && line.starts_with('[') {
            in_table =
                !line.starts_with("[[") && line.trim_start_matches('[').trim_end_matches(']').trim() == "features";
            continue;
        }
        if !in_table {
            continue;
        }
        if depth == 0
            && let Some((key, _)) = line.split_once('=')
        {
            let key = key.trim().trim_matches('"').trim_matches('\'');
            if !key.is_empty() && key != "default" {
                features.push(key.to_owned());
            }
        }
        depth = bracket_depth_after(line, depth);
    }
    features
}

/// The line without a trailing `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return &line[..i],
            None => {}
        }
    }
    line
}

/// The array nesting depth after `line`, starting from `depth` (brackets in strings ignored).
fn bracket_depth_after(line: &str, mut depth: usize) -> usize {
    let mut quote = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '[' => depth += 1,
            None if c == ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth
}

/// The tests: nextest when installed, else `cargo test`; then the doctests (nextest runs none).
///
/// What tests need is installed first — `promtool`, PostgreSQL, Datadog's `ddapm-test-agent`,
/// Chromium — and `VIGIL_REQUIRE_PROMTOOL`, `VIGIL_REQUIRE_POSTGRES`, `VIGIL_REQUIRE_DDAPM` and
/// `VIGIL_REQUIRE_CHROMIUM` make those tests fail rather than skip when it is missing anyway.
fn test() -> Result<()> {
    e2e::ensure_promtool()?;
    ensure_postgres()?;
    // The trace tests start Datadog's test agent themselves; it only has to be on PATH.
    let ddapm_dir = e2e::ensure_ddapm_test_agent()?;
    e2e::ensure_chromium()?;
    let path = std::env::join_paths(
        std::iter::once(ddapm_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )?;
    let with_env = |cmd: Cmd| {
        cmd.env("VIGIL_REQUIRE_PROMTOOL", "1")
            .env("VIGIL_REQUIRE_POSTGRES", "1")
            .env("VIGIL_REQUIRE_DDAPM", "1")
            .env("VIGIL_REQUIRE_CHROMIUM", "1")
            .env("PATH", path.clone())
    };
    if Cmd::cargo("test").args(["nextest", "--version"]).succeeds() {
        with_env(Cmd::cargo("test").args(["nextest", "run", "--workspace", "--all-features"])).run()?;
    } else {
        eprintln!("cargo-nextest is not installed: using `cargo test`");
        with_env(Cmd::cargo("test").args(["test", "--workspace", "--all-features"])).run()?;
    }
    with_env(Cmd::cargo("test: doctests").args(["test", "--workspace", "--all-features", "--doc"])).run()
}

/// Makes sure PostgreSQL's server binaries are installed (the database tests start a
/// throwaway cluster with them), installing Debian's `postgresql` when running as root.
/// Installed here, once, so tests running in parallel never race on apt.
fn ensure_postgres() -> Result<()> {
    let installed = || {
        fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .any(|e| e.path().join("bin/initdb").is_file())
    };
    if installed() {
        return Ok(());
    }
    eprintln!("PostgreSQL is not installed: installing the Debian package `postgresql` for the database tests");
    Cmd::new("test: install postgresql", "apt-get").arg("update").run()?;
    Cmd::new("test: install postgresql", "apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "postgresql"])
        .run()
        .context("PostgreSQL could not be installed (apt-get install postgresql); the database tests need it")?;
    if !installed() {
        bail!("apt-get install postgresql succeeded but no /usr/lib/postgresql/*/bin/initdb exists");
    }
    Ok(())
}

/// `cargo deny check licenses bans sources`, installing cargo-deny first if needed.
fn deny() -> Result<()> {
    if !Cmd::cargo("deny").args(["deny", "--version"]).succeeds() {
        eprintln!("cargo-deny is not installed: installing it with `cargo install cargo-deny --locked`");
        Cmd::cargo("deny: install cargo-deny")
            .args(["install", "cargo-deny", "--locked"])
            .run()?;
    }
    eprintln!(
        "note: cargo-deny advisories are NOT checked here: they need the RustSec database from \
         GitHub, which this environment cannot reach. Run `cargo deny check advisories` where it can."
    );
    Cmd::cargo("deny")
        .args(["deny", "check", "licenses", "bans", "sources"])
        .run()
}

/// Prints the summary table of every step with its outcome and duration.
fn print_summary(rows: &[Row], total: Duration, skip: &[&str]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    let _ = writeln!(out, "\nxtask ci summary");
    let _ = writeln!(out, "{:<width$}  {:<7}  {:>9}", "step", "result", "duration");
    let _ = writeln!(out, "{}", "-".repeat(width + 20));
    for row in rows {
        let result = match row.outcome {
            Outcome::Passed => "ok",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "SKIPPED",
            Outcome::NotRun => "not run",
        };
        let duration = match row.outcome {
            Outcome::Passed | Outcome::Failed => format_duration(row.duration),
            Outcome::Skipped | Outcome::NotRun => "-".to_owned(),
        };
        let _ = writeln!(out, "{:<width$}  {result:<7}  {duration:>9}", row.name);
    }
    let _ = writeln!(out, "{}", "-".repeat(width + 20));
    let _ = writeln!(out, "{:<width$}  {:<7}  {:>9}", "total", "", format_duration(total));
    if !skip.is_empty() {
        let _ = writeln!(out, "!! SKIPPED: {} -- this is not a full CI run", skip.join(", "));
    }
    print!("{out}");
}

/// `12.3s` or `2m05s`.
fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_table() {
        let manifest = r#"
[package]
name = "vigil"
description = "x = [y]"

[features]
default = ["console", "prometheus"]
# a comment = ["no"]
console = ["dep:vigil-log-console"]
prometheus = ["dep:vigil-metrics-prometheus", "vigil-core/prometheus"] # trailing = comment
"datadog" = []
full = [
    "console",
    "prometheus",
    "datadog", # with = comment
    "weird[x]",
]
_internal-tests = []

[dependencies]
vigil-core = { workspace = true }
ws = { version = "1" }
"#;
        assert_eq!(
            parse_features(manifest),
            ["console", "prometheus", "datadog", "full", "_internal-tests"]
        );
    }

    #[test]
    fn features_table_missing_or_last() {
        assert!(parse_features("[package]\nname = \"x\"\n").is_empty());
        assert_eq!(parse_features("[features]\na = []\nb=[\"a\"]"), ["a", "b"]);
        assert_eq!(parse_features("[ features ]\na = []\n[[bin]]\nb = []"), ["a"]);
    }

    #[test]
    fn comments_and_quotes() {
        assert_eq!(strip_comment(r#"a = ["x#y"] # c"#), r#"a = ["x#y"] "#);
        assert_eq!(strip_comment(r##"a = "q\"#" # c"##), r##"a = "q\"#" "##);
        assert_eq!(bracket_depth_after(r#"a = ["[", "]x"#, 0), 1);
    }

    #[test]
    fn skips() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_skips(&args(&["--skip", "e2e", "--skip=deny", "--skip", "e2e"])).unwrap(),
            ["e2e", "deny"]
        );
        assert!(parse_skips(&args(&["--skip"])).is_err());
        assert!(parse_skips(&args(&["--skip", "lint"])).is_err());
        assert!(parse_skips(&args(&["--fast"])).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
