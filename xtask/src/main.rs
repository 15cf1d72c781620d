//! Project automation for Vigil, in the style of rust-analyzer's xtask: plain Rust, few
//! dependencies (`anyhow`; `vigil-core` and `metrics` for the metric catalogue the dashboards are
//! generated from; `ureq` with rustls for the Grafana, Datadog and Prometheus HTTP APIs).
//!
//! Run it through the cargo alias in `.cargo/config.toml`:
//!
//! ```text
//! cargo xtask ci [--skip <step>]...   everything CI checks, in order, failing fast
//! cargo xtask e2e                     end-to-end check of the examples, and of the dashboards and
//!                                     alert rules against a real Prometheus
//! cargo xtask dashboards [...]        generate the dashboards and alerts from the metric catalogue
//! cargo xtask dashboards publish ...  upload them to Grafana and/or Datadog
//! cargo xtask bench                   criterion benches and a markdown report
//! cargo xtask soak [--duration SECS]  load-and-soak run of realtime_server, report in target/
//! cargo xtask fuzz [--seconds N]      run the cargo-fuzz targets for a bounded time
//! cargo xtask help                    usage
//! ```

mod bench;
mod ci;
mod cmd;
mod dashboards;
mod e2e;
mod fuzz;
mod http;
mod json;
mod soak;
mod wrk;
mod ws;

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

/// The usage text printed by `cargo xtask help` and on a bad invocation.
fn usage() -> String {
    USAGE.replace("{DASHBOARDS}", &dashboards::usage())
}

/// The usage text, with `{DASHBOARDS}` standing for the dashboards command's part.
const USAGE: &str = "\
Usage: cargo xtask <command> [options]

Commands:
  ci [--skip <step>]...  run every CI check in order, failing fast:
                           fmt        cargo fmt --all -- --check
                           dashboards cargo xtask dashboards --check: the generated dashboards
                                      and alerts match the metric catalogue
                           clippy     cargo clippy --workspace --all-targets --all-features -- -D warnings
                           features   cargo check -p vigil --no-default-features [--features <f>]
                                      for every feature of crates/vigil (each alone) and for none
                           test       cargo nextest run (or cargo test) --workspace --all-features,
                                      then the doctests
                           doc        cargo doc --workspace --all-features --no-deps (RUSTDOCFLAGS=-D warnings)
                           deny       cargo deny check licenses bans sources
                           e2e        cargo xtask e2e
                           soak       cargo xtask soak --duration 60
                         --skip <step> (repeatable) skips a step, for local iteration only
  e2e                    build and run the quickstart example, scrape and lint its /metrics with
                         promtool, and check its JSON log lines; then run the realtime_server
                         example under HTTP and WebSocket traffic and check its metrics and logs;
                         then prove the dashboards and alert rules: promtool check/test rules, and
                         a real Prometheus scraping realtime_server under mixed traffic answers
                         every panel, variable and rule query with data
{DASHBOARDS}  bench [criterion|wrk]  run the criterion benches (metrics facade, console logger) and the wrk
                         run (hello-world axum: bare, Vigil's layer, axum-prometheus), and write
                         a markdown comparison with the peers to target/bench-report.md
  soak [--duration SECS] [--output PATH]
                         load-and-soak run of realtime_server (release build, default 600 s):
                         mixed HTTP, WebSocket and database load, a real Prometheus scraping
                         every 1 s, the Datadog intake flapping; then the same load without
                         Vigil (VIGIL_DISABLED=true) for a third of the time. Reports RSS over
                         time (must plateau), drops by reason, p50/p99 with and without Vigil,
                         and the WebSocket gauges back at 0, to target/soak-report.md
  fuzz [--seconds N] [TARGET...]
                         build the cargo-fuzz targets in fuzz/ (installing cargo-fuzz when
                         missing; RUSTC_BOOTSTRAP=1, so stable Rust will do) and run each for N
                         seconds (default 60) with libFuzzer; report runs, exec/s and crashes per
                         target and fail on any crash. Targets: prometheus_exposition,
                         sql_classifier, config_env, ws_classifier, console_format
  help                   print this text
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Dispatches on the first argument.
fn run() -> Result<()> {
    let mut args = env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    match command.as_deref() {
        None | Some("help" | "--help" | "-h") => {
            print!("{}", usage());
            Ok(())
        }
        Some("ci") => ci::run(&rest),
        Some("e2e") => {
            no_extra_args("e2e", &rest)?;
            e2e::run()
        }
        Some("bench") => bench::run(&rest),
        Some("dashboards") => dashboards::run(&rest),
        Some("soak") => soak::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some(other) => {
            eprint!("{}", usage());
            bail!("unknown command `{other}`")
        }
    }
}

/// Fails when a command that takes no options was given some.
fn no_extra_args(command: &str, rest: &[String]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        eprint!("{}", usage());
        bail!("`cargo xtask {command}` takes no arguments, got: {}", rest.join(" "))
    }
}

/// The workspace root: the parent of this package's directory.
///
/// # Panics
///
/// Never in practice: `xtask/` always has a parent directory.
#[must_use]
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set (relative paths are taken from the project
/// root, where every command of this tool runs), else `<project root>/target`.
#[must_use]
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => project_root().join("target"),
    }
}

/// Builds the `examples` package's example `name` (optimised when `release`) and returns the path
/// of its binary; `step` names the build in the output and in errors.
///
/// # Errors
///
/// When the build fails, or succeeds without leaving the binary where cargo puts it.
pub fn build_example(step: &str, name: &str, release: bool) -> Result<PathBuf> {
    let mut args = vec!["build"];
    if release {
        args.push("--release");
    }
    args.extend(["-p", "examples", "--example", name]);
    cmd::Cmd::cargo(format!("{step}: build {name}")).args(args).run()?;
    let binary = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("examples")
        .join(format!("{name}{}", env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        binary.is_file(),
        "{step}: the build succeeded but {} does not exist",
        binary.display()
    );
    Ok(binary)
}
