//! The HTTP benchmark of `cargo xtask bench`: wrk on loopback against one hello-world axum app
//! in three forms — bare, with Vigil's HTTP layer, with the axum-prometheus layer — alternating
//! the forms across rounds (bare throughput moves between rounds on a shared machine) and
//! comparing medians.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::cmd::Cmd;
use crate::target_dir;

/// The forms of the app, as `http_bench_server` names them.
pub const VARIANTS: [&str; 3] = ["bare", "vigil", "axum-prometheus"];
/// Rounds; each round runs every form once, starting with a different one.
const ROUNDS: usize = 3;
/// wrk's warm-up and measured durations per run, in seconds.
const WARMUP_SECONDS: u32 = 2;
const MEASURE_SECONDS: u32 = 8;
/// wrk's threads and connections (two cores: one wrk thread leaves the server one core and more).
const WRK_THREADS: u32 = 1;
const WRK_CONNECTIONS: u32 = 16;

/// The result of the HTTP benchmark.
pub struct WrkReport {
    /// Requests per second of every run, per variant, in run order.
    pub runs: Vec<(&'static str, Vec<f64>)>,
}

impl WrkReport {
    /// The median requests per second of `variant`.
    pub fn median(&self, variant: &str) -> Option<f64> {
        let (_, values) = self.runs.iter().find(|(v, _)| *v == variant)?;
        median(values)
    }

    /// The markdown section of the report.
    pub fn render(&self) -> String {
        let mut out = format!(
            "## HTTP: wrk on loopback, hello-world axum app\n\n`wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{MEASURE_SECONDS}s` \
             after a {WARMUP_SECONDS} s warm-up, {ROUNDS} rounds alternating the forms; medians.\n\n\
             | form | runs (requests/s) | median | ratio to bare |\n|---|---|---:|---:|\n"
        );
        let bare = self.median("bare");
        for (variant, values) in &self.runs {
            let runs: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
            let med = median(values).unwrap_or(0.0);
            let ratio = bare
                .filter(|b| *b > 0.0)
                .map_or("n/a".to_owned(), |b| format!("{:.3}x", med / b));
            let _ = writeln!(out, "| {variant} | {} | {med:.0} | {ratio} |", runs.join(", "));
        }
        if let (Some(v), Some(p)) = (self.median("vigil"), self.median("axum-prometheus"))
            && p > 0.0
        {
            let _ = writeln!(out, "\nVigil's layer / axum-prometheus's layer: {:.3}x", v / p);
        }
        out
    }
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        f64::midpoint(sorted[mid - 1], sorted[mid])
    } else {
        sorted[mid]
    })
}

/// Builds the app, runs every round, and returns the measurements.
///
/// # Errors
///
/// When wrk cannot be installed, the app does not build or start, or wrk's output has no rate.
pub fn run() -> Result<WrkReport> {
    ensure_wrk()?;
    Cmd::cargo("bench: build http_bench_server")
        .args(["build", "--release", "-p", "examples", "--example", "http_bench_server"])
        .run()?;
    let binary = target_dir()
        .join("release/examples")
        .join(format!("http_bench_server{}", std::env::consts::EXE_SUFFIX));
    ensure!(binary.is_file(), "{} was not built", binary.display());
    let mut runs: Vec<(&'static str, Vec<f64>)> = VARIANTS.iter().map(|v| (*v, Vec::new())).collect();
    for round in 0..ROUNDS {
        for i in 0..VARIANTS.len() {
            let variant = VARIANTS[(round + i) % VARIANTS.len()];
            let rps = measure(&binary, variant).with_context(|| format!("wrk run of the {variant} form"))?;
            println!("round {}: {variant}: {rps:.0} requests/s", round + 1);
            if let Some((_, values)) = runs.iter_mut().find(|(v, _)| *v == variant) {
                values.push(rps);
            }
        }
    }
    Ok(WrkReport { runs })
}

/// Kills the server when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure(binary: &std::path::Path, variant: &str) -> Result<f64> {
    let port = free_port()?;
    let metrics_port = free_port()?;
    let server = Server(
        Command::new(binary)
            .arg(variant)
            .env("PORT", port.to_string())
            .env("PROMETHEUS_PORT", metrics_port.to_string())
            .env("PROMETHEUS_HOST", "127.0.0.1")
            .env("LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        ensure!(
            Instant::now() < deadline,
            "the {variant} server did not listen on port {port} within 20 s"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/");
    wrk(&url, WARMUP_SECONDS)?;
    let rps = wrk(&url, MEASURE_SECONDS)?;
    drop(server);
    Ok(rps)
}

fn wrk(url: &str, seconds: u32) -> Result<f64> {
    let output = Command::new("wrk")
        .args([
            format!("-t{WRK_THREADS}"),
            format!("-c{WRK_CONNECTIONS}"),
            format!("-d{seconds}s"),
            url.to_owned(),
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    if text.contains("Non-2xx or 3xx responses") || text.contains("Socket errors") {
        bail!("wrk saw errors:\n{text}");
    }
    parse_rps(&text).with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))
}

/// The `Requests/sec:` figure of wrk's output.
fn parse_rps(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// Finds wrk, installing Debian's package when running as root.
fn ensure_wrk() -> Result<()> {
    if Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return Ok(());
    }
    eprintln!("wrk is not installed: installing the Debian package `wrk`");
    Cmd::new("bench: install wrk", "apt-get").arg("update").run()?;
    Cmd::new("bench: install wrk", "apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "wrk"])
        .run()
        .context("wrk could not be installed (apt-get install wrk)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 8s test @ http://127.0.0.1:4100/\n  1 threads and 16 connections\n\
                    Requests/sec:  70891.30\nTransfer/sec:      8.65MB\n";
        assert_eq!(parse_rps(text), Some(70891.30));
        assert_eq!(parse_rps("nothing"), None);
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let report = WrkReport {
            runs: vec![
                ("bare", vec![100.0, 110.0, 90.0]),
                ("vigil", vec![98.0, 97.0, 99.0]),
                ("axum-prometheus", vec![80.0]),
            ],
        };
        let text = report.render();
        assert!(text.contains("| vigil | 98, 97, 99 | 98 | 0.980x |"), "{text}");
        assert!(text.contains("axum-prometheus's layer: 1.225x"), "{text}");
    }
}
