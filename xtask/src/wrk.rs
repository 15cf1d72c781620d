//! The HTTP benchmark of `cargo xtask bench`: wrk on loopback against one hello-world axum app
//! in three forms — bare, with Vigil's HTTP layer, with the axum-prometheus layer — alternating
//! the forms across rounds (bare throughput moves between rounds on a shared machine) and
//! comparing medians. Then the scrape latency of the Vigil form's `/metrics`, idle and while
//! wrk hammers the app.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::build_example;
use crate::cmd::Cmd;
use crate::http::HttpClient;
use crate::json::Value;

/// The forms of the app, as `http_bench_server` names them.
pub const VARIANTS: [&str; 3] = ["bare", "vigil", "axum-prometheus"];

/// How long and how hard the HTTP benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkConfig {
    /// Rounds; each round runs every form once, starting with a different one.
    pub rounds: usize,
    /// wrk's warm-up run per form and round, in seconds.
    pub warmup_seconds: u32,
    /// wrk's measured run per form and round, in seconds.
    pub measure_seconds: u32,
    /// wrk's threads (two cores: one wrk thread leaves the server one core and more).
    pub threads: u32,
    /// wrk's connections.
    pub connections: u32,
    /// Scrapes of `/metrics` with the app idle.
    pub idle_scrapes: usize,
    /// Scrapes of `/metrics` at most while wrk runs (fewer if the run ends first).
    pub loaded_scrapes: usize,
    /// Pause between two scrapes, in milliseconds.
    pub scrape_interval_ms: u64,
    /// Whether the server runs on CPU 0 with one Tokio worker and wrk on CPU 1 (`taskset`), so
    /// that the two never compete for a core and throughput measures the server's cost per
    /// request. Asked for by both configurations; [`run`] turns it off (and the report says so)
    /// on a machine with one CPU or without `taskset`.
    pub pinned: bool,
}

impl WrkConfig {
    /// The full run: 6 rounds of 2 s warm-up and 6 s measured per form (the machine's noise
    /// between runs is larger than the effect measured, so many alternating rounds), then 50
    /// idle scrapes and up to 100 under load.
    pub const FULL: WrkConfig = WrkConfig {
        rounds: 6,
        warmup_seconds: 2,
        measure_seconds: 6,
        threads: 1,
        connections: 16,
        idle_scrapes: 50,
        loaded_scrapes: 100,
        scrape_interval_ms: 50,
        pinned: true,
    };

    /// A smoke run (`--quick`): one short round, a few scrapes.
    pub const QUICK: WrkConfig = WrkConfig {
        rounds: 1,
        warmup_seconds: 1,
        measure_seconds: 3,
        threads: 1,
        connections: 16,
        idle_scrapes: 10,
        loaded_scrapes: 20,
        scrape_interval_ms: 50,
        pinned: true,
    };

    /// The wrk command line of a measured run (without the URL).
    pub fn wrk_args(&self, seconds: u32) -> String {
        format!(
            "{}wrk -t{} -c{} -d{seconds}s",
            if self.pinned { "taskset -c 1 " } else { "" },
            self.threads,
            self.connections
        )
    }

    /// How the server runs, for the report.
    pub fn server_placement(&self) -> &'static str {
        if self.pinned {
            "the server on CPU 0 (`taskset -c 0`, `TOKIO_WORKER_THREADS=1`), wrk on CPU 1"
        } else {
            "server and wrk unpinned (one CPU, or no `taskset`), the server with Tokio's default workers"
        }
    }
}

/// Scrape latencies of the Vigil form's `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeReport {
    /// Latencies with the app idle, in milliseconds, in scrape order.
    pub idle_ms: Vec<f64>,
    /// Latencies while wrk runs against the app, in milliseconds.
    pub loaded_ms: Vec<f64>,
    /// Size of the last `/metrics` body, in bytes.
    pub bytes: usize,
    /// wrk's requests per second during the loaded scrapes.
    pub rps_during: f64,
}

/// The result of the HTTP benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkReport {
    /// How it ran.
    pub config: WrkConfig,
    /// Requests per second of every run, per variant, in run order.
    pub runs: Vec<(&'static str, Vec<f64>)>,
    /// The scrape latencies, when measured.
    pub scrape: Option<ScrapeReport>,
}

impl WrkReport {
    /// The median requests per second of `variant`.
    pub fn median(&self, variant: &str) -> Option<f64> {
        let (_, values) = self.runs.iter().find(|(v, _)| *v == variant)?;
        median(values)
    }

    /// The median of the Vigil form divided by the median of `variant`.
    pub fn vigil_ratio_to(&self, variant: &str) -> Option<f64> {
        let base = self.median(variant).filter(|b| *b > 0.0)?;
        Some(self.median("vigil")? / base)
    }

    /// The markdown table of the throughput runs (without a heading).
    pub fn render(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "`{}` on loopback after a {} s warm-up per run, {}; {} round(s) alternating the forms \
             (each round starts with a different one); medians. Ratios are throughput ratios: higher \
             is better.\n\n\
             | form | runs (requests/s) | median (requests/s) | ratio to bare | ratio to axum-prometheus |\n\
             |---|---|---:|---:|---:|\n",
            c.wrk_args(c.measure_seconds),
            c.warmup_seconds,
            c.server_placement(),
            c.rounds
        );
        let bare = self.median("bare").filter(|b| *b > 0.0);
        let peer = self.median("axum-prometheus").filter(|b| *b > 0.0);
        for (variant, values) in &self.runs {
            let runs: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
            let Some(med) = median(values) else {
                let _ = writeln!(out, "| {variant} | — | not measured | n/a | n/a |");
                continue;
            };
            let ratio = |base: Option<f64>| base.map_or("n/a".to_owned(), |b| format!("{:.3}x", med / b));
            let _ = writeln!(
                out,
                "| {variant} | {} | {med:.0} | {} | {} |",
                runs.join(", "),
                ratio(bare),
                ratio(peer)
            );
        }
        out
    }

    /// The markdown table of the scrape latencies, when they were measured.
    pub fn render_scrapes(&self) -> Option<String> {
        self.scrape.as_ref().map(|s| s.render(&self.config))
    }

    /// The report as JSON, to keep it between runs.
    pub fn to_json(&self) -> Value {
        let c = &self.config;
        let nums = |values: &[f64]| Value::arr(values.iter().map(|v| Value::num(*v)));
        let count = |n: usize| Value::int(i64::try_from(n).unwrap_or(i64::MAX));
        let config = Value::obj([
            ("rounds", count(c.rounds)),
            ("warmup_seconds", Value::int(c.warmup_seconds.into())),
            ("measure_seconds", Value::int(c.measure_seconds.into())),
            ("threads", Value::int(c.threads.into())),
            ("connections", Value::int(c.connections.into())),
            ("idle_scrapes", count(c.idle_scrapes)),
            ("loaded_scrapes", count(c.loaded_scrapes)),
            (
                "scrape_interval_ms",
                Value::int(i64::try_from(c.scrape_interval_ms).unwrap_or(i64::MAX)),
            ),
            ("pinned", Value::Bool(c.pinned)),
        ]);
        let runs = Value::obj(self.runs.iter().map(|(v, values)| (*v, nums(values))));
        let scrape = self.scrape.as_ref().map_or(Value::Null, |s| {
            Value::obj([
                ("idle_ms", nums(&s.idle_ms)),
                ("loaded_ms", nums(&s.loaded_ms)),
                ("bytes", count(s.bytes)),
                ("rps_during", Value::num(s.rps_during)),
            ])
        });
        Value::obj([("config", config), ("runs", runs), ("scrape", scrape)])
    }

    /// A report kept with [`WrkReport::to_json`].
    ///
    /// # Errors
    ///
    /// When the JSON does not have that shape.
    pub fn from_json(value: &Value) -> Result<Self> {
        let config = value.get("config").context("no `config`")?;
        let int = |v: &Value, key: &str| -> Result<u64> {
            v.get(key)
                .and_then(Value::as_u64)
                .with_context(|| format!("no integer `{key}`"))
        };
        let small = |v: &Value, key: &str| -> Result<u32> { Ok(u32::try_from(int(v, key)?)?) };
        let size = |v: &Value, key: &str| -> Result<usize> { Ok(usize::try_from(int(v, key)?)?) };
        let nums = |v: &Value, key: &str| -> Result<Vec<f64>> {
            v.get(key)
                .and_then(Value::as_array)
                .with_context(|| format!("no array `{key}`"))?
                .iter()
                .map(|n| n.as_f64().with_context(|| format!("`{key}` holds a non-number")))
                .collect()
        };
        let config = WrkConfig {
            rounds: size(config, "rounds")?,
            warmup_seconds: small(config, "warmup_seconds")?,
            measure_seconds: small(config, "measure_seconds")?,
            threads: small(config, "threads")?,
            connections: small(config, "connections")?,
            idle_scrapes: size(config, "idle_scrapes")?,
            loaded_scrapes: size(config, "loaded_scrapes")?,
            scrape_interval_ms: int(config, "scrape_interval_ms")?,
            // Runs kept before pinning existed were not pinned.
            pinned: matches!(config.get("pinned"), Some(Value::Bool(true))),
        };
        let runs_value = value.get("runs").context("no `runs`")?;
        let mut runs = Vec::new();
        for (name, _) in runs_value.as_object().context("`runs` is not an object")? {
            let variant = VARIANTS
                .iter()
                .find(|v| *v == name)
                .with_context(|| format!("unknown form `{name}`"))?;
            runs.push((*variant, nums(runs_value, name)?));
        }
        let scrape = match value.get("scrape") {
            None | Some(Value::Null) => None,
            Some(s) => Some(ScrapeReport {
                idle_ms: nums(s, "idle_ms")?,
                loaded_ms: nums(s, "loaded_ms")?,
                bytes: size(s, "bytes")?,
                rps_during: s.get("rps_during").and_then(Value::as_f64).context("no `rps_during`")?,
            }),
        };
        Ok(WrkReport { config, runs, scrape })
    }
}

impl ScrapeReport {
    /// The markdown table of the scrape latencies.
    fn render(&self, c: &WrkConfig) -> String {
        let mut out = format!(
            "Scrape latency of the Vigil form's `/metrics` (one keep-alive client, a scrape every {} ms, \
             request sent to body read; {} bytes per scrape): idle, then while `{}` runs against the app \
             ({:.0} requests/s during the scrapes).\n\n\
             | app | scrapes | p50 (ms) | p99 (ms) | max (ms) |\n|---|---:|---:|---:|---:|\n",
            c.scrape_interval_ms,
            self.bytes,
            c.wrk_args(c.measure_seconds),
            self.rps_during
        );
        for (name, values) in [("idle", &self.idle_ms), ("under wrk load", &self.loaded_ms)] {
            let cell = |p: f64| percentile(values, p).map_or("n/a".to_owned(), |v| format!("{v:.2}"));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} |",
                values.len(),
                cell(0.5),
                cell(0.99),
                cell(1.0)
            );
        }
        out
    }
}

/// The median of `values`.
pub fn median(values: &[f64]) -> Option<f64> {
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

/// The `p` quantile (0 < p ≤ 1) of `values` by the nearest-rank method.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(p > 0.0 && p <= 1.0) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Builds the app, runs every round and the scrapes, and returns the measurements.
///
/// # Errors
///
/// When wrk cannot be installed, the app does not build or start, or wrk's output has no rate.
pub fn run(mut config: WrkConfig) -> Result<WrkReport> {
    ensure_wrk()?;
    if config.pinned && !can_pin() {
        eprintln!("wrk: one CPU or no taskset: server and wrk run unpinned");
        config.pinned = false;
    }
    let binary = build_example("bench", "http_bench_server", true)?;
    let mut runs: Vec<(&'static str, Vec<f64>)> = VARIANTS.iter().map(|v| (*v, Vec::new())).collect();
    for round in 0..config.rounds {
        for i in 0..VARIANTS.len() {
            let variant = VARIANTS[(round + i) % VARIANTS.len()];
            let rps = measure(&config, &binary, variant).with_context(|| format!("wrk run of the {variant} form"))?;
            println!("round {}: {variant}: {rps:.0} requests/s", round + 1);
            if let Some((_, values)) = runs.iter_mut().find(|(v, _)| *v == variant) {
                values.push(rps);
            }
        }
    }
    let scrape = scrapes(&config, &binary).context("scraping the vigil form's /metrics")?;
    print_ratios(&runs);
    Ok(WrkReport {
        config,
        runs,
        scrape: Some(scrape),
    })
}

/// Prints the median ratios of the Vigil form.
fn print_ratios(runs: &[(&'static str, Vec<f64>)]) {
    let med = |name: &str| runs.iter().find(|(v, _)| *v == name).and_then(|(_, v)| median(v));
    if let (Some(bare), Some(vigil), Some(peer)) = (med("bare"), med("vigil"), med("axum-prometheus")) {
        println!(
            "wrk medians: bare {bare:.0}, vigil {vigil:.0} ({:.3}x bare), axum-prometheus {peer:.0} (vigil {:.3}x it)",
            vigil / bare,
            vigil / peer
        );
    }
}

/// Whether the server and wrk can each have a CPU of their own.
fn can_pin() -> bool {
    let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cpus >= 2
        && Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Kills the server when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `variant` on free ports and waits until both listen; returns it with the app port
/// and the metrics port.
fn start(config: &WrkConfig, binary: &Path, variant: &str) -> Result<(Server, u16, u16)> {
    let port = free_port()?;
    let metrics_port = free_port()?;
    let mut command = if config.pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(binary).env("TOKIO_WORKER_THREADS", "1");
        c
    } else {
        Command::new(binary)
    };
    let server = Server(
        command
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
    let ports = if variant == "vigil" {
        vec![port, metrics_port]
    } else {
        vec![port]
    };
    for p in ports {
        while TcpStream::connect((Ipv4Addr::LOCALHOST, p)).is_err() {
            ensure!(
                Instant::now() < deadline,
                "the {variant} server did not listen on port {p} within 20 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
    Ok((server, port, metrics_port))
}

fn measure(config: &WrkConfig, binary: &Path, variant: &str) -> Result<f64> {
    let (server, port, _) = start(config, binary, variant)?;
    let url = format!("http://127.0.0.1:{port}/");
    wrk_output(
        &wrk(config, &url, config.warmup_seconds)
            .output()
            .context("running wrk")?,
    )?;
    let rps = wrk_output(
        &wrk(config, &url, config.measure_seconds)
            .output()
            .context("running wrk")?,
    )?;
    drop(server);
    Ok(rps)
}

/// Scrapes the Vigil form's `/metrics`: idle, then while wrk runs against the app.
fn scrapes(config: &WrkConfig, binary: &Path) -> Result<ScrapeReport> {
    let (server, port, metrics_port) = start(config, binary, "vigil")?;
    let app = format!("http://127.0.0.1:{port}/");
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let client = HttpClient::new(Duration::from_secs(10));
    let interval = Duration::from_millis(config.scrape_interval_ms);
    // Some traffic first, so the HTTP series exist.
    wrk_output(&wrk(config, &app, 1).output().context("running wrk")?)?;
    let mut bytes = 0;
    let mut idle_ms = Vec::with_capacity(config.idle_scrapes);
    for _ in 0..config.idle_scrapes {
        let (ms, size) = scrape(&client, &metrics)?;
        idle_ms.push(ms);
        bytes = size;
        thread::sleep(interval);
    }
    let started = Instant::now();
    let load = wrk(config, &app, config.measure_seconds)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting wrk")?;
    // Scrape from one second in until half a second before wrk stops.
    let until = started + Duration::from_secs(config.measure_seconds.into()).saturating_sub(Duration::from_millis(500));
    thread::sleep(Duration::from_secs(1));
    let mut loaded_ms = Vec::with_capacity(config.loaded_scrapes);
    while loaded_ms.len() < config.loaded_scrapes && Instant::now() < until {
        let (ms, size) = scrape(&client, &metrics)?;
        loaded_ms.push(ms);
        bytes = size;
        thread::sleep(interval);
    }
    let rps_during = wrk_output(&load.wait_with_output().context("waiting for wrk")?)?;
    drop(server);
    ensure!(!loaded_ms.is_empty(), "no scrape completed while wrk ran");
    println!(
        "scrapes: idle p50 {:.2} ms, under load p50 {:.2} ms p99 {:.2} ms ({} scrapes)",
        percentile(&idle_ms, 0.5).unwrap_or(0.0),
        percentile(&loaded_ms, 0.5).unwrap_or(0.0),
        percentile(&loaded_ms, 0.99).unwrap_or(0.0),
        loaded_ms.len()
    );
    Ok(ScrapeReport {
        idle_ms,
        loaded_ms,
        bytes,
        rps_during,
    })
}

/// One scrape: its latency in milliseconds and the body size.
fn scrape(client: &HttpClient, url: &str) -> Result<(f64, usize)> {
    let start = Instant::now();
    let response = client.send("GET", url, &[], None)?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    ensure!(response.status == 200, "GET {url} answered {}", response.status);
    Ok((ms, response.body.len()))
}

/// The wrk command for a run of `seconds` against `url`.
fn wrk(config: &WrkConfig, url: &str, seconds: u32) -> Command {
    let mut command = if config.pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", "wrk"]);
        c
    } else {
        Command::new("wrk")
    };
    command.args([
        format!("-t{}", config.threads),
        format!("-c{}", config.connections),
        format!("-d{seconds}s"),
        url.to_owned(),
    ]);
    command
}

/// The requests per second of a finished wrk run; fails on errors.
fn wrk_output(output: &std::process::Output) -> Result<f64> {
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

    fn report() -> WrkReport {
        WrkReport {
            config: WrkConfig::FULL,
            runs: vec![
                ("bare", vec![100.0, 110.0, 90.0]),
                ("vigil", vec![98.0, 97.0, 99.0]),
                ("axum-prometheus", vec![80.0]),
            ],
            scrape: Some(ScrapeReport {
                idle_ms: vec![0.5, 0.25, 0.75, 1.0],
                loaded_ms: (1..=100).map(f64::from).collect(),
                bytes: 4321,
                rps_during: 65000.0,
            }),
        }
    }

    #[test]
    fn parses_wrk_output() {
        let text = "Running 8s test @ http://127.0.0.1:4100/\n  1 threads and 16 connections\n\
                    Requests/sec:  70891.30\nTransfer/sec:      8.65MB\n";
        assert_eq!(parse_rps(text), Some(70891.30));
        assert_eq!(parse_rps("nothing"), None);
    }

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&hundred, 0.5), Some(50.0));
        assert_eq!(percentile(&hundred, 0.99), Some(99.0));
        assert_eq!(percentile(&hundred, 1.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[2.0, 1.0, 3.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1.0], 0.0), None);
    }

    #[test]
    fn renders_ratios_and_scrapes() {
        let report = report();
        assert_eq!(report.vigil_ratio_to("bare"), Some(0.98));
        let text = report.render();
        assert!(text.contains("| vigil | 98, 97, 99 | 98 | 0.980x | 1.225x |"), "{text}");
        assert!(
            text.contains("| bare | 100, 110, 90 | 100 | 1.000x | 1.250x |"),
            "{text}"
        );
        assert!(
            text.contains("| axum-prometheus | 80 | 80 | 0.800x | 1.000x |"),
            "{text}"
        );
        assert!(text.contains("`taskset -c 1 wrk -t1 -c16 -d6s`"), "{text}");
        assert!(text.contains("the server on CPU 0"), "{text}");
        let unpinned = WrkReport {
            config: WrkConfig {
                pinned: false,
                ..WrkConfig::FULL
            },
            ..report.clone()
        };
        assert!(unpinned.render().contains("`wrk -t1 -c16 -d6s`"));
        let text = report.render_scrapes().unwrap();
        assert!(text.contains("| idle | 4 | 0.50 | 1.00 | 1.00 |"), "{text}");
        assert!(
            text.contains("| under wrk load | 100 | 50.00 | 99.00 | 100.00 |"),
            "{text}"
        );
        assert!(text.contains("4321 bytes per scrape"), "{text}");
    }

    #[test]
    fn round_trips_through_json() {
        let report = report();
        let text = report.to_json().to_pretty();
        let back = WrkReport::from_json(&crate::json::parse(&text).unwrap()).unwrap();
        assert_eq!(back, report);
        let without = WrkReport { scrape: None, ..report };
        let back = WrkReport::from_json(&crate::json::parse(&without.to_json().to_compact()).unwrap()).unwrap();
        assert_eq!(back, without);
        let bad = r#"{"config": {"rounds": 1}, "runs": {}}"#;
        assert!(WrkReport::from_json(&crate::json::parse(bad).unwrap()).is_err());
    }
}
