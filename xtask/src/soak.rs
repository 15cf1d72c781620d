//! `cargo xtask soak [--duration SECS] [--output PATH]`: a bounded soak of `realtime_server`
//! (release build) under a steady mix of HTTP, WebSocket and database load.
//!
//! 1. With Vigil, for `--duration` (default 600 s): JSON console logs to a file, a real
//!    Prometheus (Debian's `prometheus`, alert rules loaded) scraping `/metrics` every second,
//!    and Datadog logs and traces on, sent to a stand-in ([`FakeDatadog::start_flapping`]) that
//!    cycles through accepting (202), answering 503 and refusing connections.
//! 2. Without Vigil (`VIGIL_DISABLED=true`: no `vigil::init`, no layer or wrapper), the same
//!    load for a third of the duration (20 to 120 s), as the latency baseline.
//!
//! The load: [`HTTP_CLIENTS`] threads, each on its own keep-alive connection, paced at one
//! request every [`HTTP_INTERVAL`] (half of them `POST` a comment, which the database stores and
//! the server broadcasts; the rest list comments, videos or health, and a tenth are deliberate
//! 404s and 422s), and [`WS_CLIENTS`] threads that connect to `/ws/videos/{id}`, ping every
//! second, receive the broadcasts for a few seconds and leave, alternately with a close frame
//! and by dropping the TCP connection. Client-side latency of every HTTP request is recorded;
//! the server's `VmRSS` is sampled from `/proc/<pid>/status`.
//!
//! At the end of the Vigil run every `websocket_connections` series must return to 0, the
//! intake is settled (accepting) so the queued records drain, and the drop and delivery counters
//! are read from `/metrics`. The report goes to `target/soak-report.md` (or `--output`), the RSS
//! series to `target/soak/rss_*.csv`; the command fails on RSS that does not plateau (see
//! [`plateau`]), a WebSocket gauge that stays above 0, a server that crashes or exits uncleanly
//! after SIGTERM, or any unexpected HTTP or WebSocket error.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use vigil_core::catalogue::{self, MetricDef};

use crate::dashboards::RULES_FILE;
use crate::dashboards::promql::prom_name;
use crate::e2e::dashboards::{Api, Prometheus, free_ports};
use crate::e2e::fake_datadog::{FakeDatadog, IntakeMode, Received};
use crate::e2e::{ensure_prometheus_package, kill_and_reap, parse_sample_value, realtime_env, tail, terminate};
use crate::http::HttpClient;
use crate::ws::{self, Message, WsClient};
use crate::{build_example, project_root, target_dir};

/// The default length of the run with Vigil, in seconds.
const DEFAULT_DURATION_SECS: u64 = 600;
/// The shortest run accepted: the plateau rule needs quarters with several samples.
const MIN_DURATION_SECS: u64 = 20;
/// The run without Vigil lasts a third of the duration, within these bounds (seconds).
const COMPARISON_SECS: (u64, u64) = (20, 120);
/// `VIGIL_ENV`.
const ENVIRONMENT: &str = "soak";
/// `DATADOG_API_KEY` (the fake intake does not check it).
const FAKE_API_KEY: &str = "soak0000000000000000000000000fake";
/// Videos the example seeds, which the load spreads over.
const VIDEOS: u64 = 3;
/// HTTP client threads.
const HTTP_CLIENTS: usize = 4;
/// Pause between the requests of one HTTP client: 4 clients at 25 req/s, 100 req/s in all.
const HTTP_INTERVAL: Duration = Duration::from_millis(40);
/// WebSocket client threads.
const WS_CLIENTS: usize = 4;
/// How long a WebSocket client stays connected, cycled through by connection.
const WS_HOLD_SECS: [u64; 4] = [1, 2, 3, 5];
/// How often a connected WebSocket client pings.
const WS_PING_EVERY: Duration = Duration::from_secs(1);
/// Timeout of each HTTP request, WebSocket handshake, pong and close.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The fake Datadog intake's schedule, repeated: 40 s a cycle.
const FLAPPING: [(IntakeMode, Duration); 3] = [
    (IntakeMode::Accept, Duration::from_secs(20)),
    (IntakeMode::Unavailable, Duration::from_secs(10)),
    (IntakeMode::Refuse, Duration::from_secs(10)),
];
/// Plateau rule: the last quarter's mean RSS may exceed the second quarter's by this share...
const PLATEAU_GROWTH: f64 = 0.20;
/// ...plus this many bytes.
const PLATEAU_SLACK_BYTES: f64 = 4.0 * MIB;
/// One mebibyte.
const MIB: f64 = 1024.0 * 1024.0;
/// How long the server may take to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_mins(1);
/// How long the WebSocket gauges may take to return to 0 once every client left.
const GAUGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait, once the intake settled, for it to accept logs and traces again (the
/// exporters back off up to 30 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(45);
/// How long the server may take to exit after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Problems kept, per run, for the report.
const MAX_PROBLEMS: usize = 10;

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    /// The run with Vigil.
    duration: Duration,
    /// The report file.
    output: PathBuf,
}

impl Options {
    /// The run without Vigil: a third of the duration, within [`COMPARISON_SECS`].
    fn comparison(&self) -> Duration {
        let secs = (self.duration.as_secs() / 3).clamp(COMPARISON_SECS.0, COMPARISON_SECS.1);
        Duration::from_secs(secs.min(self.duration.as_secs()))
    }

    /// The RSS sampling interval: a 60th of the run, 1 to 5 s.
    fn rss_interval(&self) -> Duration {
        Duration::from_secs((self.duration.as_secs() / 60).clamp(1, 5))
    }
}

/// Reads `--duration SECS` and `--output PATH` (also as `--name=value`).
fn parse_args(args: &[String]) -> Result<Options> {
    let mut options = Options {
        duration: Duration::from_secs(DEFAULT_DURATION_SECS),
        output: target_dir().join("soak-report.md"),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> Result<String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => args.next().cloned().with_context(|| format!("`{name}` needs a value")),
            }
        };
        match name {
            "--duration" => {
                let text = value()?;
                let secs: u64 = text.parse().ok().filter(|s| *s >= MIN_DURATION_SECS).with_context(|| {
                    format!("`--duration {text}`: expected a whole number of seconds, at least {MIN_DURATION_SECS}")
                })?;
                options.duration = Duration::from_secs(secs);
            }
            "--output" => options.output = PathBuf::from(value()?),
            _ => {
                bail!("unknown argument `{arg}` for `cargo xtask soak`; it takes `--duration SECS` and `--output PATH`")
            }
        }
    }
    Ok(options)
}

/// Runs `cargo xtask soak`.
///
/// # Errors
///
/// On bad arguments, when the build or a process fails, when the server crashes, or when the
/// verdict is a failure (the report is written first).
pub fn run(args: &[String]) -> Result<()> {
    let options = parse_args(args)?;
    let started = Instant::now();
    let prometheus = ensure_prometheus_package("prometheus")?;
    let binary = build_example("soak", "realtime_server", true)?;
    let out_dir = target_dir().join("soak");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    eprintln!(
        "\n==> soak: realtime_server with Vigil for {} s (Prometheus every 1 s, Datadog intake flapping)",
        options.duration.as_secs()
    );
    let (with, vigil) = with_vigil(&binary, &prometheus, &options, &out_dir)?;
    eprintln!(
        "\n==> soak: realtime_server without Vigil (VIGIL_DISABLED=true) for {} s",
        options.comparison().as_secs()
    );
    let without = without_vigil(&binary, &options, &out_dir)?;

    let report = Report {
        duration: options.duration,
        comparison: options.comparison(),
        rss_interval: options.rss_interval(),
        with,
        without,
        vigil,
    };
    for run in [&report.with, &report.without] {
        let csv = out_dir.join(format!("rss_{}.csv", run.label.replace(' ', "_")));
        fs::write(&csv, rss_csv(&run.rss)).with_context(|| format!("writing {}", csv.display()))?;
    }
    if let Some(parent) = options.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(&options.output, render(&report)).with_context(|| format!("writing {}", options.output.display()))?;
    println!("{}", summary(&report));
    println!(
        "soak: report in {} ({:.0} s in all)",
        options.output.display(),
        started.elapsed().as_secs_f64()
    );
    let failures = report.failures();
    if !failures.is_empty() {
        bail!(
            "soak failed:\n  {}\n(report: {})",
            failures.join("\n  "),
            options.output.display()
        );
    }
    println!("soak: ok");
    Ok(())
}

/// The run with Vigil: returns its load figures and what Vigil and the intake reported.
fn with_vigil(
    binary: &Path,
    prometheus_binary: &Path,
    options: &Options,
    out_dir: &Path,
) -> Result<(RunSummary, VigilSide)> {
    let fake = FakeDatadog::start_flapping(FLAPPING.to_vec())?;
    let [api_port, metrics_port, prometheus_port] = free_ports()?;
    let database = fresh_database(out_dir, "with_vigil")?;
    let stdout = out_dir.join("with_vigil_stdout.jsonl");
    let mut envs = realtime_env(api_port, metrics_port, ENVIRONMENT, &database.display().to_string());
    envs.extend([
        ("ENABLE_DATADOG", "true".to_owned()),
        ("DATADOG_API_KEY", FAKE_API_KEY.to_owned()),
        ("DATADOG_LOGS_URL", fake.logs_url()),
        ("DD_AGENT_HOST", "127.0.0.1".to_owned()),
        ("DD_TRACE_AGENT_PORT", fake.http_port.to_string()),
    ]);
    let mut server = Server::start(binary, &envs, &stdout)?;
    let prometheus_log = out_dir.join("prometheus.log");
    let outcome = (|| -> Result<(Load, VigilSide)> {
        server.wait_listening(&[api_port, metrics_port])?;
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, metrics_port));
        let prometheus = Prometheus::start(
            prometheus_binary,
            prometheus_port,
            target,
            &project_root().join(RULES_FILE),
            &prometheus_log,
            None,
        )?;
        let prometheus_started = Instant::now();
        let api = Api {
            client: HttpClient::new(TIMEOUT),
            base: format!("http://127.0.0.1:{prometheus_port}"),
        };
        // No waiting for Prometheus to come up (a few seconds): the load starts at once, and the
        // scrapes are counted at the end.
        let load = drive(
            &mut server,
            api_port,
            options.duration,
            options.rss_interval(),
            "with Vigil",
        )?;

        let metrics = HttpClient::new(TIMEOUT);
        let gauges = wait_for_ws_gauges(&metrics, metrics_port)?;
        fake.settle();
        let settled = fake.with(|r| (r.logs.len(), r.traces.len()));
        let settled_at = Instant::now();
        let drained = wait_for("the intake to accept logs and traces again", DRAIN_TIMEOUT, || {
            Ok(fake.with(|r| r.logs[settled.0..].contains(&202) && r.traces[settled.1..].contains(&200)))
        })
        .ok()
        .map(|()| settled_at.elapsed());
        // The exporters publish their counters at least every second.
        thread::sleep(Duration::from_millis(1500));
        let body = scrape(&metrics, metrics_port)?;
        let metrics_file = out_dir.join("with_vigil_metrics.txt");
        fs::write(&metrics_file, &body).with_context(|| format!("writing {}", metrics_file.display()))?;
        let samples = parse_metrics(&body).with_context(|| format!("parsing {}", metrics_file.display()))?;

        let window = prometheus_started.elapsed().as_secs() + 1;
        let sum_of = |expr: &str| -> f64 { api.query(expr).ok().map_or(0.0, |s| s.iter().map(|s| s.value).sum()) };
        let scraped = (
            sum_of(&format!("count_over_time(up[{window}s])")),
            sum_of(&format!("sum_over_time(up[{window}s])")),
        );
        let vigil = VigilSide {
            drops: rows(
                &samples,
                &[
                    &catalogue::VIGIL_LOG_DROPPED,
                    &catalogue::VIGIL_TRACE_DROPPED,
                    &catalogue::VIGIL_TRACE_SPANS_DROPPED,
                ],
            ),
            delivery: rows(
                &samples,
                &[
                    &catalogue::VIGIL_DATADOG_LOGS_SENT,
                    &catalogue::VIGIL_DATADOG_LOGS_REQUESTS,
                    &catalogue::VIGIL_TRACE_SENT,
                    &catalogue::VIGIL_TRACE_SEND_ERRORS,
                ],
            ),
            intake: fake.with(IntakeSummary::of),
            drained,
            gauges,
            scrapes: scraped,
        };
        drop(prometheus);
        Ok((load, vigil))
    })();
    finish(server, outcome, "with Vigil", &stdout)
}

/// The run without Vigil: `VIGIL_DISABLED=true`, nothing but the API.
fn without_vigil(binary: &Path, options: &Options, out_dir: &Path) -> Result<RunSummary> {
    let [api_port, _, _] = free_ports()?;
    let database = fresh_database(out_dir, "without_vigil")?;
    let stdout = out_dir.join("without_vigil_stdout.log");
    let envs = [
        ("PORT", api_port.to_string()),
        ("HOST", "127.0.0.1".to_owned()),
        ("DATABASE_URL", database.display().to_string()),
        ("VIGIL_DISABLED", "true".to_owned()),
    ];
    let mut server = Server::start(binary, &envs, &stdout)?;
    let outcome = (|| -> Result<(Load, ())> {
        server.wait_listening(&[api_port])?;
        let load = drive(
            &mut server,
            api_port,
            options.comparison(),
            options.rss_interval(),
            "without Vigil",
        )?;
        Ok((load, ()))
    })();
    finish(server, outcome, "without Vigil", &stdout).map(|(run, ())| run)
}

/// Stops the server with SIGTERM (whatever the outcome) and builds the run's summary, or
/// returns the error with the tail of the server's output.
fn finish<T>(
    mut server: Server,
    outcome: Result<(Load, T)>,
    label: &'static str,
    stdout: &Path,
) -> Result<(RunSummary, T)> {
    let exit = server.terminate(SHUTDOWN_TIMEOUT);
    let output = || tail(&fs::read(stdout).unwrap_or_default(), 30);
    let (load, extra) = match outcome {
        Ok(done) => done,
        Err(err) => {
            eprintln!("{}", output());
            return Err(err.context(format!(
                "soak {label} failed (the server's output is in {})",
                stdout.display()
            )));
        }
    };
    let (exit, clean_exit) = match exit {
        Ok(status) if status.success() => (format!("{status} after SIGTERM"), true),
        Ok(status) => {
            eprintln!("{}", output());
            (format!("{status} after SIGTERM, expected exit status 0"), false)
        }
        Err(err) => (format!("{err:#}"), false),
    };
    let run = RunSummary {
        label,
        elapsed: load.elapsed,
        stats: load.stats,
        rss: load.rss,
        exit,
        clean_exit,
    };
    Ok((run, extra))
}

/// A fresh SQLite database file in `dir` (any old one and its WAL files removed).
fn fresh_database(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match fs::remove_file(&file) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("removing {}", file.display()));
            }
            _ => {}
        }
    }
    Ok(path)
}

/// Polls `ready` every 250 ms until it answers true, within `timeout`.
fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let started = Instant::now();
    loop {
        if ready()? {
            eprintln!("waited {:.1}s for {what}", started.elapsed().as_secs_f64());
            return Ok(());
        }
        ensure!(started.elapsed() < timeout, "expected {what} within {timeout:?}");
        thread::sleep(Duration::from_millis(250));
    }
}

/// `GET /metrics` on the metrics port, expecting 200.
fn scrape(client: &HttpClient, port: u16) -> Result<String> {
    let response = client.send("GET", &format!("http://127.0.0.1:{port}/metrics"), &[], None)?;
    ensure!(response.status == 200, "GET /metrics answered {}", response.status);
    Ok(response.body)
}

/// Polls `/metrics` until every `websocket_connections` series is 0, within [`GAUGE_TIMEOUT`].
fn wait_for_ws_gauges(client: &HttpClient, port: u16) -> Result<GaugeCheck> {
    let name = prom_name(&catalogue::WEBSOCKET_CONNECTIONS);
    let started = Instant::now();
    loop {
        let samples = parse_metrics(&scrape(client, port)?)?;
        let series: Vec<(String, f64)> = samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| (s.series(), s.value))
            .collect();
        let ok = !series.is_empty() && series.iter().all(|(_, v)| *v == 0.0);
        if ok || started.elapsed() >= GAUGE_TIMEOUT {
            return Ok(GaugeCheck {
                series,
                waited: started.elapsed(),
                ok,
            });
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The running server; dropping it kills the process (by its pid) and reaps it.
struct Server {
    /// The process.
    child: Child,
    /// Its pid.
    pid: u32,
}

impl Server {
    /// Starts `binary` with `envs`, stdout and stderr to `output`.
    fn start(binary: &Path, envs: &[(&str, String)], output: &Path) -> Result<Self> {
        let file = File::create(output).with_context(|| format!("creating {}", output.display()))?;
        let shown: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "$ {} {} > {} 2>&1 &",
            shown.join(" "),
            binary.display(),
            output.display()
        );
        let child = Command::new(binary)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .current_dir(project_root())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id();
        Ok(Server { child, pid })
    }

    /// The exit status, if the process has exited.
    fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait().context("checking on the server")
    }

    /// Waits until every port accepts TCP connections.
    fn wait_listening(&mut self, ports: &[u16]) -> Result<()> {
        let started = Instant::now();
        for port in ports {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
            while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
                if let Some(status) = self.exited()? {
                    bail!("the server exited ({status}) before {addr} accepted connections");
                }
                ensure!(
                    started.elapsed() < STARTUP_TIMEOUT,
                    "expected {addr} to accept connections within {STARTUP_TIMEOUT:?}"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit.
    fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        terminate(&mut self.child, "server", timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child, "server");
    }
}

/// What one run's load produced.
struct Load {
    /// The clients' figures, merged.
    stats: LoadStats,
    /// RSS samples.
    rss: Vec<RssSample>,
    /// How long the load ran.
    elapsed: Duration,
}

/// One RSS sample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RssSample {
    /// Seconds since the load started.
    secs: f64,
    /// `VmRSS`, in bytes.
    bytes: u64,
}

/// What the clients counted.
#[derive(Debug, Default, Clone)]
struct LoadStats {
    /// Client-side duration of every HTTP request that got an answer, in milliseconds.
    latencies_ms: Vec<f64>,
    /// The same, of the `GET` requests only.
    get_ms: Vec<f64>,
    /// The same, of the `POST` requests only (each writes to the database or fails validation).
    post_ms: Vec<f64>,
    /// HTTP requests sent.
    requests: u64,
    /// The deliberate 404s and 422s, answered as expected.
    expected_errors: u64,
    /// Answers other than the expected status, and requests that got no answer.
    unexpected: u64,
    /// WebSocket handshakes completed.
    ws_connections: u64,
    /// Their durations, in milliseconds.
    ws_connect_ms: Vec<f64>,
    /// Connections left with a close frame (answered by the server).
    ws_clean: u64,
    /// Connections left by dropping the TCP connection.
    ws_abrupt: u64,
    /// Pongs received.
    ws_pongs: u64,
    /// Broadcast messages received (`comment_created`, `lagged`).
    ws_broadcasts: u64,
    /// Failed handshakes, missing pongs, unanswered closes, connections the server dropped.
    ws_errors: u64,
    /// The first problems, described.
    problems: Vec<String>,
}

impl LoadStats {
    /// Keeps `problem` if there is room.
    fn problem(&mut self, problem: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// Adds another client's figures.
    fn merge(&mut self, other: LoadStats) {
        self.latencies_ms.extend(other.latencies_ms);
        self.get_ms.extend(other.get_ms);
        self.post_ms.extend(other.post_ms);
        self.requests += other.requests;
        self.expected_errors += other.expected_errors;
        self.unexpected += other.unexpected;
        self.ws_connections += other.ws_connections;
        self.ws_connect_ms.extend(other.ws_connect_ms);
        self.ws_clean += other.ws_clean;
        self.ws_abrupt += other.ws_abrupt;
        self.ws_pongs += other.ws_pongs;
        self.ws_broadcasts += other.ws_broadcasts;
        self.ws_errors += other.ws_errors;
        for problem in other.problems {
            self.problem(problem);
        }
    }
}

/// Runs the load for `duration` against the server on `api_port`, sampling its RSS every
/// `interval`; fails if the server exits meanwhile.
fn drive(server: &mut Server, api_port: u16, duration: Duration, interval: Duration, label: &str) -> Result<Load> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, api_port));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let end = started + duration;
    let mut clients: Vec<JoinHandle<LoadStats>> = Vec::new();
    for id in 0..HTTP_CLIENTS {
        let stop = Arc::clone(&stop);
        clients.push(
            thread::Builder::new()
                .name(format!("soak-http-{id}"))
                .spawn(move || http_client(id, addr, end, &stop))?,
        );
    }
    for id in 0..WS_CLIENTS {
        let stop = Arc::clone(&stop);
        clients.push(
            thread::Builder::new()
                .name(format!("soak-ws-{id}"))
                .spawn(move || ws_client(id, addr, end, &stop))?,
        );
    }

    let mut rss = Vec::new();
    let mut crashed = None;
    let mut next_sample = started;
    let mut next_progress = started + Duration::from_secs(30);
    loop {
        if let Some(status) = server.exited()? {
            crashed = Some((status, started.elapsed()));
            break;
        }
        let now = Instant::now();
        if now >= next_sample {
            if let Some(bytes) = read_rss(server.pid) {
                rss.push(RssSample {
                    secs: now.duration_since(started).as_secs_f64(),
                    bytes,
                });
            }
            next_sample += interval;
        }
        if now >= next_progress {
            let last = rss.last().map_or(0.0, |s| f64_of(s.bytes) / MIB);
            eprintln!(
                "soak {label}: {:.0}/{} s, RSS {last:.1} MiB",
                now.duration_since(started).as_secs_f64(),
                duration.as_secs()
            );
            next_progress += Duration::from_secs(30);
        }
        if now >= end {
            break;
        }
        thread::sleep(
            next_sample
                .min(end)
                .saturating_duration_since(now)
                .min(Duration::from_millis(100)),
        );
    }
    if crashed.is_some() {
        stop.store(true, Ordering::Relaxed);
    }
    let mut stats = LoadStats::default();
    for client in clients {
        match client.join() {
            Ok(one) => stats.merge(one),
            Err(_) => bail!("a load client thread panicked"),
        }
    }
    if let Some((status, at)) = crashed {
        bail!(
            "the server crashed: it exited ({status}) {:.0} s into the {label} run",
            at.as_secs_f64()
        );
    }
    // The RSS once every client has left.
    if let Some(bytes) = read_rss(server.pid) {
        rss.push(RssSample {
            secs: started.elapsed().as_secs_f64(),
            bytes,
        });
    }
    Ok(Load {
        stats,
        rss,
        elapsed: started.elapsed(),
    })
}

/// One planned HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Planned {
    /// `GET` or `POST`.
    method: &'static str,
    /// The path.
    path: String,
    /// The JSON body of a `POST`.
    body: Option<String>,
    /// The status it must get.
    expected: u16,
}

/// Request `n` of HTTP client `client`, in a cycle of ten: five comments posted, three
/// listings of comments, one of videos or health, one deliberate 404 or 422. The video moves
/// on every cycle.
fn plan(client: usize, n: u64) -> Planned {
    let cycle = n / 10;
    let video = 1 + (u64::try_from(client).unwrap_or_default() + cycle) % VIDEOS;
    let comments = format!("/api/videos/{video}/comments");
    let get = |path: String| Planned {
        method: "GET",
        path,
        body: None,
        expected: 200,
    };
    let post = |path: String, body: String, expected| Planned {
        method: "POST",
        path,
        body: Some(body),
        expected,
    };
    let user = client + 1;
    match n % 10 {
        0..=4 => post(
            comments,
            format!(r#"{{"user_id": {user}, "body": "soak comment {n} from client {client}"}}"#),
            201,
        ),
        5..=7 => get(comments),
        8 if cycle.is_multiple_of(2) => get("/api/videos".to_owned()),
        8 => get("/health".to_owned()),
        _ if cycle.is_multiple_of(2) => post(
            "/api/videos/999/comments".to_owned(),
            format!(r#"{{"user_id": {user}, "body": "no such video"}}"#),
            404,
        ),
        _ => post(comments, format!(r#"{{"user_id": {user}, "body": "   "}}"#), 422),
    }
}

/// One HTTP client: a keep-alive connection, one request every [`HTTP_INTERVAL`] until `end`.
fn http_client(id: usize, addr: SocketAddr, end: Instant, stop: &AtomicBool) -> LoadStats {
    let client = HttpClient::new(TIMEOUT);
    let mut stats = LoadStats::default();
    let mut next = Instant::now();
    let mut n = 0;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let request = plan(id, n);
        n += 1;
        let url = format!("http://{addr}{}", request.path);
        let headers: &[(&str, &str)] = if request.body.is_some() {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        let sent = Instant::now();
        let answer = client.send(request.method, &url, headers, request.body.as_deref());
        let took = sent.elapsed();
        stats.requests += 1;
        match answer {
            Ok(response) => {
                stats.latencies_ms.push(millis(took));
                if request.method == "GET" {
                    stats.get_ms.push(millis(took));
                } else {
                    stats.post_ms.push(millis(took));
                }
                if response.status != request.expected {
                    stats.unexpected += 1;
                    stats.problem(format!(
                        "{} {}: expected {}, got {} {:?}",
                        request.method,
                        request.path,
                        request.expected,
                        response.status,
                        response.body.chars().take(200).collect::<String>()
                    ));
                } else if request.expected >= 400 {
                    stats.expected_errors += 1;
                }
            }
            Err(err) => {
                stats.unexpected += 1;
                stats.problem(format!("{} {}: {err:#}", request.method, request.path));
            }
        }
        // Steady pacing: a late request does not make the next ones burst.
        next += HTTP_INTERVAL;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        thread::sleep(next - now);
    }
    stats
}

/// One WebSocket client: connects, pings and receives for a while, leaves (alternately with a
/// close frame and by dropping the connection), and again, until `end`.
fn ws_client(id: usize, addr: SocketAddr, end: Instant, stop: &AtomicBool) -> LoadStats {
    let mut stats = LoadStats::default();
    let mut cycle: usize = 0;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let video = 1 + u64::try_from(id + cycle).unwrap_or_default() % VIDEOS;
        let path = format!("/ws/videos/{video}");
        let hold = Duration::from_secs(WS_HOLD_SECS[(id + cycle) % WS_HOLD_SECS.len()]);
        let clean = cycle.is_multiple_of(2);
        cycle += 1;
        let started = Instant::now();
        let mut client = match WsClient::connect(&format!("ws client {id}"), addr, &path, TIMEOUT) {
            Ok(client) => client,
            Err(err) => {
                stats.ws_errors += 1;
                stats.problem(format!("{err:#}"));
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        stats.ws_connections += 1;
        stats.ws_connect_ms.push(millis(started.elapsed()));
        if let Err(err) = hold_connection(&mut client, (Instant::now() + hold).min(end), &mut stats) {
            stats.ws_errors += 1;
            stats.problem(format!("{err:#}"));
            client.drop_abruptly();
        } else if clean {
            match client.close(ws::CLOSE_NORMAL, TIMEOUT) {
                Ok(_) => stats.ws_clean += 1,
                Err(err) => {
                    stats.ws_errors += 1;
                    stats.problem(format!("{err:#}"));
                }
            }
        } else {
            client.drop_abruptly();
            stats.ws_abrupt += 1;
        }
    }
    stats
}

/// Pings every [`WS_PING_EVERY`] (each ping answered before the next) and counts what arrives,
/// until `leave_at` and the last pong.
fn hold_connection(client: &mut WsClient, leave_at: Instant, stats: &mut LoadStats) -> Result<()> {
    let mut next_ping = Instant::now();
    let mut awaiting: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if awaiting.is_none() && now >= next_ping && now < leave_at {
            client.send_text(r#"{"event":"ping"}"#)?;
            awaiting = Some(now);
            next_ping = now + WS_PING_EVERY;
        }
        let wait_until = match awaiting {
            Some(sent) => {
                ensure!(now < sent + TIMEOUT, "{}: no pong within {TIMEOUT:?}", client.name());
                sent + TIMEOUT
            }
            None if now >= leave_at => return Ok(()),
            None => next_ping.min(leave_at),
        };
        let wait = wait_until.saturating_duration_since(now).max(Duration::from_millis(1));
        match client.recv(wait)? {
            Some(Message::Text(text)) if text.contains(r#""event":"pong""#) => {
                stats.ws_pongs += 1;
                awaiting = None;
            }
            Some(Message::Text(_)) => stats.ws_broadcasts += 1,
            Some(Message::Close(code, reason)) => {
                bail!(
                    "{}: the server closed the connection ({code:?} {reason:?})",
                    client.name()
                )
            }
            Some(Message::Binary(_)) | None => {}
        }
    }
}

/// The `VmRSS` of process `pid`, in bytes.
fn read_rss(pid: u32) -> Option<u64> {
    parse_vm_rss(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The `VmRSS:  1234 kB` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    let scale = match words.next()? {
        "kB" => 1024,
        "mB" | "MB" => 1024 * 1024,
        "B" => 1,
        _ => return None,
    };
    value.checked_mul(scale)
}

/// One sample of a `/metrics` body.
#[derive(Debug, Clone, PartialEq)]
struct MetricSample {
    /// The series name.
    name: String,
    /// Its labels, in order.
    labels: Vec<(String, String)>,
    /// Its value.
    value: f64,
}

impl MetricSample {
    /// `name{labels}` without the `service` and `environment` labels every series carries.
    fn series(&self) -> String {
        let own: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| k != "service" && k != "environment")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        if own.is_empty() {
            self.name.clone()
        } else {
            format!("{}{{{}}}", self.name, own.join(","))
        }
    }
}

/// Parses the sample lines of a Prometheus text-format body (comments and blank lines skipped).
fn parse_metrics(body: &str) -> Result<Vec<MetricSample>> {
    let mut samples = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = parse_sample_value(line).with_context(|| format!("bad sample line {line:?}"))?;
        let value = match value.as_str() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            other => other
                .parse()
                .with_context(|| format!("bad value {other:?} in {line:?}"))?,
        };
        samples.push(MetricSample { name, labels, value });
    }
    Ok(samples)
}

/// Every series of the metrics `defs` (by their Prometheus names), as `(series, value)`.
fn rows(samples: &[MetricSample], defs: &[&MetricDef]) -> Vec<(String, f64)> {
    defs.iter()
        .flat_map(|def| {
            let name = prom_name(def);
            samples
                .iter()
                .filter(move |s| s.name == name)
                .map(|s| (s.series(), s.value))
        })
        .collect()
}

/// What the fake intake and agent answered.
#[derive(Debug, Clone, Default, PartialEq)]
struct IntakeSummary {
    /// Logs requests answered 202.
    logs_accepted: usize,
    /// Logs requests answered 503.
    logs_unavailable: usize,
    /// Compressed bytes of the accepted logs requests.
    logs_bytes: u64,
    /// Trace requests answered 200.
    traces_accepted: usize,
    /// Trace requests answered 503.
    traces_unavailable: usize,
    /// Windows during which connections were refused.
    refusals: usize,
    /// Their total length.
    refused_for: Duration,
}

impl IntakeSummary {
    /// Counts what `received` holds.
    fn of(received: &Received) -> Self {
        let count = |statuses: &[u16], status| statuses.iter().filter(|s| **s == status).count();
        IntakeSummary {
            logs_accepted: count(&received.logs, 202),
            logs_unavailable: count(&received.logs, 503),
            logs_bytes: received.logs_bytes_accepted,
            traces_accepted: count(&received.traces, 200),
            traces_unavailable: count(&received.traces, 503),
            refusals: received.refusals,
            refused_for: received.refused_for,
        }
    }
}

/// The WebSocket gauges once every client left.
#[derive(Debug, Clone, PartialEq)]
struct GaugeCheck {
    /// Every `websocket_connections` series and its last value.
    series: Vec<(String, f64)>,
    /// How long it took to see them all at 0 (or the timeout).
    waited: Duration,
    /// Whether there were some, all at 0.
    ok: bool,
}

/// What the run with Vigil reported besides the load.
#[derive(Debug, Clone)]
struct VigilSide {
    /// Drop counters (`vigil_log_dropped_total`, `vigil_trace_dropped_total`,
    /// `vigil_trace_spans_dropped_total`), by labels.
    drops: Vec<(String, f64)>,
    /// Delivery counters of the Datadog logs and trace exporters.
    delivery: Vec<(String, f64)>,
    /// What the fake intake answered.
    intake: IntakeSummary,
    /// How long the intake took to get logs and traces again once settled (`None`: not within
    /// [`DRAIN_TIMEOUT`]).
    drained: Option<Duration>,
    /// The WebSocket gauge check.
    gauges: GaugeCheck,
    /// Prometheus: scrapes of `/metrics` and how many succeeded.
    scrapes: (f64, f64),
}

/// One run's figures.
#[derive(Debug, Clone)]
struct RunSummary {
    /// "with Vigil" or "without Vigil".
    label: &'static str,
    /// How long the load ran.
    elapsed: Duration,
    /// The clients' figures.
    stats: LoadStats,
    /// RSS samples.
    rss: Vec<RssSample>,
    /// How the server exited.
    exit: String,
    /// Whether it exited 0 after SIGTERM.
    clean_exit: bool,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
struct Report {
    /// The run with Vigil, planned.
    duration: Duration,
    /// The run without Vigil, planned.
    comparison: Duration,
    /// The RSS sampling interval.
    rss_interval: Duration,
    /// The run with Vigil.
    with: RunSummary,
    /// The run without Vigil.
    without: RunSummary,
    /// What Vigil and the intake reported.
    vigil: VigilSide,
}

/// The plateau check of a run's RSS.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plateau {
    /// Mean RSS of the second quarter of the run, in bytes.
    second_quarter: f64,
    /// Mean RSS of the last quarter, in bytes.
    last_quarter: f64,
    /// The most the last quarter may reach.
    limit: f64,
}

impl Plateau {
    /// Whether the RSS plateaued.
    fn ok(&self) -> bool {
        self.last_quarter <= self.limit
    }
}

/// The plateau rule over a run of `length` seconds: the mean RSS of the last quarter
/// (`t >= 3/4 length`) may exceed the mean of the second quarter (`1/4 <= t/length < 1/2`) by at
/// most [`PLATEAU_GROWTH`] plus [`PLATEAU_SLACK_BYTES`]. The first quarter is warm-up (allocator
/// arenas, the SQLite page cache, connection pools and histogram buffers filling up), so it is
/// left out. `None` when a quarter has no sample.
fn plateau(samples: &[RssSample], length: f64) -> Option<Plateau> {
    let mean = |from: f64, to: f64| {
        let inside: Vec<f64> = samples
            .iter()
            .filter(|s| s.secs >= from * length && (s.secs < to * length || to >= 1.0))
            .map(|s| f64_of(s.bytes))
            .collect();
        (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / f64_of(inside.len() as u64))
    };
    let second_quarter = mean(0.25, 0.5)?;
    let last_quarter = mean(0.75, 1.0)?;
    Some(Plateau {
        second_quarter,
        last_quarter,
        limit: second_quarter * (1.0 + PLATEAU_GROWTH) + PLATEAU_SLACK_BYTES,
    })
}

/// The `per_mille`-th value (nearest rank) of `sorted`: 500 is the median, 990 the p99.
fn percentile(sorted: &[f64], per_mille: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * per_mille).div_ceil(1000).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// p50, p99 and the maximum of `values`, in their unit.
fn latency(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some((percentile(&sorted, 500)?, percentile(&sorted, 990)?, *sorted.last()?))
}

impl Report {
    /// The plateau check of the run with Vigil.
    fn plateau(&self) -> Option<Plateau> {
        plateau(&self.with.rss, self.with.elapsed.as_secs_f64())
    }

    /// The reasons the soak fails; empty when it passes.
    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        match self.plateau() {
            Some(p) if !p.ok() => failures.push(format!(
                "RSS did not plateau: the last quarter's mean {:.1} MiB exceeds the limit {:.1} MiB (second quarter {:.1} MiB)",
                p.last_quarter / MIB,
                p.limit / MIB,
                p.second_quarter / MIB
            )),
            Some(_) => {}
            None => failures.push("too few RSS samples to check the plateau".to_owned()),
        }
        if self.vigil.scrapes.1 < 1.0 {
            failures.push(
                "Prometheus never scraped /metrics successfully (its output is in target/soak/prometheus.log)"
                    .to_owned(),
            );
        }
        if !self.vigil.gauges.ok {
            failures.push(if self.vigil.gauges.series.is_empty() {
                "no websocket_connections series on /metrics".to_owned()
            } else {
                format!(
                    "WebSocket gauges not back to 0 {:.1} s after every client left: {}",
                    self.vigil.gauges.waited.as_secs_f64(),
                    series_list(&self.vigil.gauges.series)
                )
            });
        }
        for run in [&self.with, &self.without] {
            if !run.clean_exit {
                failures.push(format!("{}: the server exited uncleanly: {}", run.label, run.exit));
            }
            if run.stats.requests == 0 {
                failures.push(format!("{}: no HTTP request was sent", run.label));
            }
            if run.stats.unexpected > 0 {
                failures.push(format!(
                    "{}: {} of {} HTTP requests got an unexpected answer or none",
                    run.label, run.stats.unexpected, run.stats.requests
                ));
            }
            if run.stats.ws_errors > 0 {
                failures.push(format!("{}: {} WebSocket errors", run.label, run.stats.ws_errors));
            }
        }
        failures
    }
}

/// `a 1, b 0`.
fn series_list(series: &[(String, f64)]) -> String {
    series
        .iter()
        .map(|(s, v)| format!("{s} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The markdown report.
fn render(report: &Report) -> String {
    let mut out = String::new();
    let failures = report.failures();
    let _ = writeln!(out, "# Soak report: realtime_server\n");
    if failures.is_empty() {
        let _ = writeln!(out, "Verdict: **PASS**\n");
    } else {
        let _ = writeln!(out, "Verdict: **FAIL**\n");
        for failure in &failures {
            let _ = writeln!(out, "- {failure}");
        }
        out.push('\n');
    }

    render_parameters(&mut out, report);
    render_latency(&mut out, report);
    render_rss(&mut out, report);
    render_drops(&mut out, report);
    render_delivery(&mut out, report);
    render_websocket(&mut out, report);
    render_errors(&mut out, report);
    out
}

/// The parameters table.
fn render_parameters(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Parameters\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| run with Vigil | {} s planned, {:.0} s run (release build, JSON console logs to a file) |",
        report.duration.as_secs(),
        report.with.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| run without Vigil | {} s planned, {:.0} s run (`VIGIL_DISABLED=true`: no `vigil::init`, no layer or wrapper) |",
        report.comparison.as_secs(),
        report.without.elapsed.as_secs_f64()
    );
    let rate = f64_of(HTTP_CLIENTS as u64) * 1000.0 / millis(HTTP_INTERVAL);
    let _ = writeln!(
        out,
        "| HTTP load | {HTTP_CLIENTS} keep-alive clients, {rate:.0} req/s in all, paced: 50% POST a comment, 30% GET \
         comments, 10% GET /api/videos or /health, 10% deliberate 404/422, over {VIDEOS} videos |"
    );
    let _ = writeln!(
        out,
        "| WebSocket load | {WS_CLIENTS} clients: connect to /ws/videos/{{id}}, ping every {} s, receive the broadcasts for \
         {} s, leave alternately with a close frame and by dropping the TCP connection |",
        WS_PING_EVERY.as_secs(),
        WS_HOLD_SECS.map(|s| s.to_string()).join("/")
    );
    let _ = writeln!(
        out,
        "| database | SQLite file (WAL), fresh for each run, written by every POST |"
    );
    let _ = writeln!(
        out,
        "| Prometheus | a real `prometheus` scraping /metrics every 1 s, alert rules loaded: {:.0} scrapes, {:.0} up |",
        report.vigil.scrapes.0, report.vigil.scrapes.1
    );
    let schedule: Vec<String> = FLAPPING
        .iter()
        .map(|(mode, d)| {
            let what = match mode {
                IntakeMode::Accept => "accept (202)",
                IntakeMode::Unavailable => "503",
                IntakeMode::Refuse => "connections refused",
            };
            format!("{} s {what}", d.as_secs())
        })
        .collect();
    let _ = writeln!(
        out,
        "| Datadog | logs and traces on, to a fake intake cycling: {}; accepting for good once the load ends |",
        schedule.join(", ")
    );
    let _ = writeln!(
        out,
        "| RSS | VmRSS from /proc/<pid>/status every {} s |\n",
        report.rss_interval.as_secs()
    );
}

/// Picks some of a run's latencies.
type LatenciesOf = fn(&LoadStats) -> &[f64];

/// The latency table, with and without Vigil: all requests, then `GET`s and `POST`s apart.
fn render_latency(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## HTTP latency (client side)\n");
    let _ = writeln!(
        out,
        "| requests | run | count | p50 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|"
    );
    let kinds: [(&str, LatenciesOf); 3] = [
        ("all", |s| &s.latencies_ms),
        ("GET", |s| &s.get_ms),
        ("POST", |s| &s.post_ms),
    ];
    for (kind, values) in kinds {
        let with = latency(values(&report.with.stats));
        let without = latency(values(&report.without.stats));
        for (run, figures) in [(&report.with, with), (&report.without, without)] {
            let cell = |f: fn((f64, f64, f64)) -> f64| figures.map_or("-".to_owned(), |l| format!("{:.2}", f(l)));
            let _ = writeln!(
                out,
                "| {kind} | {} | {} | {} | {} | {} |",
                run.label,
                values(&run.stats).len(),
                cell(|l| l.0),
                cell(|l| l.1),
                cell(|l| l.2)
            );
        }
        if let (Some(w), Some(wo)) = (with, without) {
            let _ = writeln!(
                out,
                "| {kind} | ratio with / without | | {:.2}x | {:.2}x | |",
                w.0 / wo.0,
                w.1 / wo.1
            );
        }
    }
    out.push('\n');
}

/// The RSS table and the plateau rule.
fn render_rss(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## RSS over time (with Vigil)\n");
    let _ = writeln!(out, "| t (s) | RSS (MiB) |\n|---:|---:|");
    for sample in thin(&report.with.rss, 13) {
        let _ = writeln!(out, "| {:.0} | {:.1} |", sample.secs, f64_of(sample.bytes) / MIB);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "Plateau rule: the mean RSS of the last quarter of the run may exceed the mean of the second quarter by at \
         most {:.0}% + {:.0} MiB (the first quarter is warm-up: allocator arenas, the SQLite page cache, pools and \
         buffers filling up).",
        PLATEAU_GROWTH * 100.0,
        PLATEAU_SLACK_BYTES / MIB
    );
    match report.plateau() {
        Some(p) => {
            let _ = writeln!(
                out,
                "Second quarter {:.1} MiB, last quarter {:.1} MiB, limit {:.1} MiB: **{}**.",
                p.second_quarter / MIB,
                p.last_quarter / MIB,
                p.limit / MIB,
                if p.ok() { "plateau" } else { "GROWING" }
            );
        }
        None => {
            let _ = writeln!(out, "Too few samples to apply it: **FAILED**.");
        }
    }
    let rss_line = |run: &RunSummary| match (run.rss.first(), run.rss.last(), run.rss.iter().map(|s| s.bytes).max()) {
        (Some(first), Some(last), Some(peak)) => format!(
            "{:.1} MiB at the start, {:.1} MiB at the end, peak {:.1} MiB",
            f64_of(first.bytes) / MIB,
            f64_of(last.bytes) / MIB,
            f64_of(peak) / MIB
        ),
        _ => "no samples".to_owned(),
    };
    let _ = writeln!(
        out,
        "\nWith Vigil: {}. Without Vigil: {}.\n",
        rss_line(&report.with),
        rss_line(&report.without)
    );
}

/// The drop counters.
fn render_drops(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Dropped records (from /metrics at the end)\n");
    if report.vigil.drops.is_empty() {
        let _ = writeln!(out, "None: no drop counter was exported.\n");
    } else {
        let _ = writeln!(out, "| series | dropped |\n|---|---:|");
        for (series, value) in &report.vigil.drops {
            let _ = writeln!(out, "| `{series}` | {value} |");
        }
        out.push('\n');
    }
}

/// What the intake answered and the exporters counted.
fn render_delivery(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Datadog delivery\n");
    let intake = &report.vigil.intake;
    let _ = writeln!(
        out,
        "The fake intake answered {} logs requests 202 ({:.1} KiB of gzip accepted) and {} with 503; {} trace \
         requests 200 and {} with 503; it refused connections {} times, {:.0} s in all.",
        intake.logs_accepted,
        f64_of(intake.logs_bytes) / 1024.0,
        intake.logs_unavailable,
        intake.traces_accepted,
        intake.traces_unavailable,
        intake.refusals,
        intake.refused_for.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{}\n",
        match report.vigil.drained {
            Some(d) => format!(
                "Once it accepted for good, logs and traces arrived again after {:.1} s.",
                d.as_secs_f64()
            ),
            None => format!(
                "Once it accepted for good, logs and traces did NOT both arrive within {} s.",
                DRAIN_TIMEOUT.as_secs()
            ),
        }
    );
    if !report.vigil.delivery.is_empty() {
        let _ = writeln!(out, "| series (Vigil's side) | value |\n|---|---:|");
        for (series, value) in &report.vigil.delivery {
            let _ = writeln!(out, "| `{series}` | {value} |");
        }
        out.push('\n');
    }
}

/// The WebSocket figures and gauges.
fn render_websocket(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## WebSocket\n");
    let _ = writeln!(
        out,
        "| run | connections | clean closes | dropped | pongs | broadcasts received | errors | connect p99 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in [&report.with, &report.without] {
        let s = &run.stats;
        let connect = latency(&s.ws_connect_ms).map_or("-".to_owned(), |l| format!("{:.2}", l.1));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {connect} |",
            run.label, s.ws_connections, s.ws_clean, s.ws_abrupt, s.ws_pongs, s.ws_broadcasts, s.ws_errors
        );
    }
    let gauges = &report.vigil.gauges;
    let _ = writeln!(
        out,
        "\nGauges once every client left: {} ({}, checked for {:.1} s).\n",
        if gauges.series.is_empty() {
            "no websocket_connections series".to_owned()
        } else {
            series_list(&gauges.series)
        },
        if gauges.ok { "all 0" } else { "NOT all 0" },
        gauges.waited.as_secs_f64()
    );
}

/// Unexpected answers, problems and exits.
fn render_errors(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Errors and exits\n");
    for run in [&report.with, &report.without] {
        let _ = writeln!(
            out,
            "- {}: {} unexpected HTTP answers (and {} deliberate 404/422 as expected), {} WebSocket errors; server {}.",
            run.label, run.stats.unexpected, run.stats.expected_errors, run.stats.ws_errors, run.exit
        );
        for problem in &run.stats.problems {
            let _ = writeln!(out, "  - {}", problem.replace('\n', " "));
        }
    }
}

/// At most `n` samples of `samples`, evenly spread, always with the first and the last.
fn thin(samples: &[RssSample], n: usize) -> Vec<RssSample> {
    if samples.len() <= n || n < 2 {
        return samples.to_vec();
    }
    (0..n).map(|i| samples[i * (samples.len() - 1) / (n - 1)]).collect()
}

/// The RSS samples as CSV.
fn rss_csv(samples: &[RssSample]) -> String {
    let mut out = "secs,rss_bytes\n".to_owned();
    for sample in samples {
        let _ = writeln!(out, "{:.1},{}", sample.secs, sample.bytes);
    }
    out
}

/// The closing summary, a few lines.
fn summary(report: &Report) -> String {
    let mut out = String::new();
    let rss = |run: &RunSummary| match (run.rss.first(), run.rss.last()) {
        (Some(a), Some(b)) => format!("{:.1} -> {:.1} MiB", f64_of(a.bytes) / MIB, f64_of(b.bytes) / MIB),
        _ => "no samples".to_owned(),
    };
    let _ = writeln!(out, "\nsoak summary");
    let plateau = report.plateau().map_or("not checked".to_owned(), |p| {
        format!(
            "{} (last quarter {:.1} MiB, limit {:.1} MiB)",
            if p.ok() { "plateau" } else { "GROWING" },
            p.last_quarter / MIB,
            p.limit / MIB
        )
    });
    let _ = writeln!(
        out,
        "  RSS with Vigil ({:.0} s): {}, {plateau}",
        report.with.elapsed.as_secs_f64(),
        rss(&report.with)
    );
    let figures = |run: &RunSummary| {
        latency(&run.stats.latencies_ms).map_or("no requests".to_owned(), |(p50, p99, _)| {
            format!("{} requests, p50 {p50:.2} ms, p99 {p99:.2} ms", run.stats.requests)
        })
    };
    let _ = writeln!(out, "  HTTP with Vigil: {}", figures(&report.with));
    let _ = writeln!(
        out,
        "  HTTP without Vigil ({:.0} s): {}",
        report.without.elapsed.as_secs_f64(),
        figures(&report.without)
    );
    if let (Some(w), Some(wo)) = (
        latency(&report.with.stats.latencies_ms),
        latency(&report.without.stats.latencies_ms),
    ) {
        let _ = writeln!(out, "  p99 ratio with/without: {:.2}x", w.1 / wo.1);
    }
    let drops: Vec<String> = report
        .vigil
        .drops
        .iter()
        .filter(|(_, v)| *v != 0.0)
        .map(|(s, v)| format!("{s} {v}"))
        .collect();
    let _ = writeln!(
        out,
        "  dropped: {}",
        if drops.is_empty() {
            "nothing".to_owned()
        } else {
            drops.join(", ")
        }
    );
    let intake = &report.vigil.intake;
    let _ = writeln!(
        out,
        "  intake: logs {} accepted / {} answered 503, traces {} / {}, refused {} times",
        intake.logs_accepted,
        intake.logs_unavailable,
        intake.traces_accepted,
        intake.traces_unavailable,
        intake.refusals
    );
    let _ = writeln!(
        out,
        "  WebSocket: {} connections, gauges {}",
        report.with.stats.ws_connections,
        if report.vigil.gauges.ok {
            "back to 0"
        } else {
            "NOT back to 0"
        }
    );
    let failures = report.failures();
    let _ = write!(out, "  verdict: {}", if failures.is_empty() { "PASS" } else { "FAIL" });
    out
}

/// A duration in milliseconds.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `n` as a float (exact below 2^53, which every count here is).
#[allow(clippy::cast_precision_loss)]
fn f64_of(n: u64) -> f64 {
    n as f64
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact values, parsed or computed from exact inputs
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments() {
        let default = parse_args(&[]).unwrap();
        assert_eq!(default.duration, Duration::from_mins(10));
        assert!(default.output.ends_with("soak-report.md"));
        assert_eq!(default.comparison(), Duration::from_mins(2));
        assert_eq!(default.rss_interval(), Duration::from_secs(5));

        let short = parse_args(&args(&["--duration", "60", "--output=x/r.md"])).unwrap();
        assert_eq!(short.duration, Duration::from_mins(1));
        assert_eq!(short.output, PathBuf::from("x/r.md"));
        assert_eq!(short.comparison(), Duration::from_secs(20));
        assert_eq!(short.rss_interval(), Duration::from_secs(1));
        assert_eq!(
            parse_args(&args(&["--duration=180"])).unwrap().comparison(),
            Duration::from_mins(1)
        );
        assert_eq!(
            parse_args(&args(&["--duration=20"])).unwrap().comparison(),
            Duration::from_secs(20)
        );

        for bad in [
            &["--duration"][..],
            &["--duration", "abc"],
            &["--duration", "19"],
            &["--duration=-5"],
            &["--output"],
            &["--fast"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 500), Some(50.0));
        assert_eq!(percentile(&values, 990), Some(99.0));
        assert_eq!(percentile(&values, 1000), Some(100.0));
        assert_eq!(percentile(&values, 0), Some(1.0));
        assert_eq!(percentile(&[7.0], 990), Some(7.0));
        assert_eq!(percentile(&[], 500), None);
        // Nearest rank: p99 of 10 values is the 10th, p50 the 5th.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 990), Some(10.0));
        assert_eq!(percentile(&ten, 500), Some(5.0));
        // `latency` sorts first.
        assert_eq!(latency(&[3.0, 1.0, 2.0]), Some((2.0, 3.0, 3.0)));
        assert_eq!(latency(&[]), None);
    }

    fn series(points: &[(f64, f64)]) -> Vec<RssSample> {
        points
            .iter()
            .map(|&(secs, mib)| RssSample {
                secs,
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                bytes: (mib * MIB) as u64,
            })
            .collect()
    }

    #[test]
    fn plateau_rule() {
        // Warm-up growth in the first quarter does not count; flat afterwards passes.
        let flat = series(&[
            (0.0, 10.0),
            (10.0, 20.0),
            (30.0, 30.0),
            (45.0, 30.0),
            (80.0, 31.0),
            (99.0, 31.0),
        ]);
        let p = plateau(&flat, 100.0).unwrap();
        assert!((p.second_quarter / MIB - 30.0).abs() < 1e-6);
        assert!((p.last_quarter / MIB - 31.0).abs() < 1e-6);
        assert!((p.limit / MIB - (30.0 * 1.2 + 4.0)).abs() < 1e-6);
        assert!(p.ok());
        // 30 MiB may grow to 40 MiB (36 + 4), not beyond.
        let edge = series(&[(30.0, 30.0), (80.0, 40.0)]);
        assert!(plateau(&edge, 100.0).unwrap().ok());
        let leak = series(&[(30.0, 30.0), (80.0, 40.5)]);
        assert!(!plateau(&leak, 100.0).unwrap().ok());
        // The last sample (taken at the very end, t = length) counts in the last quarter.
        let end = series(&[(30.0, 30.0), (100.0, 50.0)]);
        assert!(!plateau(&end, 100.0).unwrap().ok());
        // A quarter without samples: no verdict.
        assert!(plateau(&series(&[(10.0, 1.0), (80.0, 1.0)]), 100.0).is_none());
        assert!(plateau(&series(&[(30.0, 1.0)]), 100.0).is_none());
        assert!(plateau(&[], 100.0).is_none());
    }

    #[test]
    fn vm_rss() {
        let status = "Name:\trealtime_server\nVmPeak:\t  900 kB\nVmRSS:\t   23456 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(23456 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: lots kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: 12 GB\n"), None);
        // This very process has one.
        assert!(read_rss(std::process::id()).is_some_and(|b| b > 0));
    }

    #[test]
    fn metrics_text() {
        let body = "\
# HELP vigil_log_dropped_total Log records a Vigil backend dropped.
# TYPE vigil_log_dropped_total counter
vigil_log_dropped_total{service=\"realtime_server\",environment=\"soak\",backend=\"datadog\",reason=\"queue_full\"} 12
vigil_log_dropped_total{service=\"realtime_server\",environment=\"soak\",backend=\"console\",reason=\"queue_full\"} 0
vigil_trace_dropped_total{service=\"realtime_server\",environment=\"soak\",reason=\"send_failed\"} 3

websocket_connections{service=\"realtime_server\",environment=\"soak\",channel=\"comments\"} 0
vigil_datadog_logs_sent_total{service=\"realtime_server\",environment=\"soak\"} 4.5e3
http_request_duration_seconds_bucket{le=\"+Inf\"} 7
odd{a=\"b\"} NaN
";
        let samples = parse_metrics(body).unwrap();
        assert_eq!(samples.len(), 7);
        assert_eq!(samples[0].name, "vigil_log_dropped_total");
        assert_eq!(samples[0].value, 12.0);
        assert_eq!(
            samples[0].series(),
            r#"vigil_log_dropped_total{backend="datadog",reason="queue_full"}"#
        );
        assert_eq!(samples[4].series(), "vigil_datadog_logs_sent_total");
        assert_eq!(samples[4].value, 4500.0);
        assert!(samples[6].value.is_nan());

        let drops = rows(
            &samples,
            &[&catalogue::VIGIL_LOG_DROPPED, &catalogue::VIGIL_TRACE_DROPPED],
        );
        assert_eq!(
            drops,
            [
                (
                    r#"vigil_log_dropped_total{backend="datadog",reason="queue_full"}"#.to_owned(),
                    12.0
                ),
                (
                    r#"vigil_log_dropped_total{backend="console",reason="queue_full"}"#.to_owned(),
                    0.0
                ),
                (r#"vigil_trace_dropped_total{reason="send_failed"}"#.to_owned(), 3.0),
            ]
        );
        assert_eq!(
            rows(&samples, &[&catalogue::WEBSOCKET_CONNECTIONS]),
            [(r#"websocket_connections{channel="comments"}"#.to_owned(), 0.0)]
        );
        assert!(parse_metrics("up{a=1} 1").is_err());
        assert!(parse_metrics("up one").is_err());
    }

    #[test]
    fn request_plan() {
        let plans: Vec<Planned> = (0..20).map(|n| plan(1, n)).collect();
        let count = |method: &str, expected: u16| {
            plans
                .iter()
                .filter(|p| p.method == method && p.expected == expected)
                .count()
        };
        assert_eq!(count("POST", 201), 10);
        assert_eq!(count("GET", 200), 8);
        assert_eq!(count("POST", 404), 1);
        assert_eq!(count("POST", 422), 1);
        assert_eq!(plans[0].path, "/api/videos/2/comments");
        assert_eq!(plans[10].path, "/api/videos/3/comments");
        assert_eq!(plan(2, 10).path, "/api/videos/1/comments");
        assert_eq!(plans[8].path, "/api/videos");
        assert_eq!(plans[18].path, "/health");
        assert_eq!(plans[9].path, "/api/videos/999/comments");
        assert!(plans[0].body.as_deref().is_some_and(|b| b.contains(r#""user_id": 2"#)));
        assert!(
            plans[19]
                .body
                .as_deref()
                .is_some_and(|b| b.contains(r#""body": "   ""#))
        );
        assert!(plans.iter().all(|p| (p.method == "POST") == p.body.is_some()));
    }

    #[test]
    fn thinning() {
        let samples = series(&(0..100).map(|i| (f64::from(i), 1.0)).collect::<Vec<_>>());
        let thinned = thin(&samples, 13);
        assert_eq!(thinned.len(), 13);
        assert_eq!(thinned[0].secs, 0.0);
        assert_eq!(thinned[12].secs, 99.0);
        assert_eq!(thin(&samples[..5], 13).len(), 5);
        assert_eq!(rss_csv(&samples[..1]), format!("secs,rss_bytes\n0.0,{}\n", 1024 * 1024));
    }

    /// A report from fixed numbers: 120 s with Vigil at a flat 30 MiB after warm-up.
    fn fixed_report() -> Report {
        let mut rss = series(&[(0.0, 12.0), (15.0, 25.0)]);
        rss.extend(series(
            &(3..=12).map(|i| (f64::from(i) * 10.0, 30.0)).collect::<Vec<_>>(),
        ));
        let stats = |base: f64| LoadStats {
            latencies_ms: (1..=100).map(|i| base * f64::from(i)).collect(),
            get_ms: (1..=40).map(|i| base * f64::from(i)).collect(),
            post_ms: (41..=100).map(|i| base * f64::from(i)).collect(),
            requests: 100,
            expected_errors: 10,
            ws_connections: 40,
            ws_connect_ms: vec![0.5, 0.7],
            ws_clean: 20,
            ws_abrupt: 20,
            ws_pongs: 90,
            ws_broadcasts: 1234,
            ..LoadStats::default()
        };
        let run = |label, secs: u64, base, rss| RunSummary {
            label,
            elapsed: Duration::from_secs(secs),
            stats: stats(base),
            rss,
            exit: "exit status: 0 after SIGTERM".to_owned(),
            clean_exit: true,
        };
        Report {
            duration: Duration::from_mins(2),
            comparison: Duration::from_secs(40),
            rss_interval: Duration::from_secs(2),
            with: run("with Vigil", 120, 0.02, rss),
            without: run("without Vigil", 40, 0.01, series(&[(0.0, 8.0), (39.0, 9.0)])),
            vigil: VigilSide {
                drops: vec![
                    (
                        r#"vigil_log_dropped_total{backend="datadog",reason="queue_full"}"#.to_owned(),
                        0.0,
                    ),
                    (r#"vigil_trace_dropped_total{reason="send_failed"}"#.to_owned(), 7.0),
                ],
                delivery: vec![(
                    r#"vigil_datadog_logs_requests_total{outcome="retried"}"#.to_owned(),
                    5.0,
                )],
                intake: IntakeSummary {
                    logs_accepted: 50,
                    logs_unavailable: 4,
                    logs_bytes: 2048,
                    traces_accepted: 60,
                    traces_unavailable: 3,
                    refusals: 3,
                    refused_for: Duration::from_secs(30),
                },
                drained: Some(Duration::from_millis(2500)),
                gauges: GaugeCheck {
                    series: vec![(r#"websocket_connections{channel="comments"}"#.to_owned(), 0.0)],
                    waited: Duration::from_millis(200),
                    ok: true,
                },
                scrapes: (120.0, 120.0),
            },
        }
    }

    #[test]
    fn report_rendering() {
        let report = fixed_report();
        assert!(report.failures().is_empty(), "{:?}", report.failures());
        let text = render(&report);
        for expected in [
            "Verdict: **PASS**",
            "| all | with Vigil | 100 | 1.00 | 1.98 | 2.00 |",
            "| all | without Vigil | 100 | 0.50 | 0.99 | 1.00 |",
            "| all | ratio with / without | | 2.00x | 2.00x | |",
            "| GET | with Vigil | 40 | 0.40 | 0.80 | 0.80 |",
            "| POST | without Vigil | 60 | 0.70 | 1.00 | 1.00 |",
            "| POST | ratio with / without | | 2.00x | 2.00x | |",
            "| 0 | 12.0 |",
            "| 120 | 30.0 |",
            "Second quarter 30.0 MiB, last quarter 30.0 MiB, limit 40.0 MiB: **plateau**.",
            "With Vigil: 12.0 MiB at the start, 30.0 MiB at the end, peak 30.0 MiB.",
            r#"| `vigil_trace_dropped_total{reason="send_failed"}` | 7 |"#,
            "answered 50 logs requests 202 (2.0 KiB of gzip accepted) and 4 with 503",
            "refused connections 3 times, 30 s in all",
            "arrived again after 2.5 s",
            r#"websocket_connections{channel="comments"} 0 (all 0, checked for 0.2 s)"#,
            "| with Vigil | 40 | 20 | 20 | 90 | 1234 | 0 | 0.70 |",
            "120 scrapes, 120 up",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        let summary = summary(&report);
        assert!(summary.contains("p99 ratio with/without: 2.00x"), "{summary}");
        assert!(
            summary.contains(r#"dropped: vigil_trace_dropped_total{reason="send_failed"} 7"#),
            "{summary}"
        );
        assert!(summary.ends_with("verdict: PASS"), "{summary}");
    }

    #[test]
    fn report_failures() {
        let mut report = fixed_report();
        report.with.rss.push(RssSample {
            secs: 120.0,
            bytes: 400 * 1024 * 1024,
        });
        report.vigil.gauges.ok = false;
        report.vigil.gauges.series[0].1 = 2.0;
        report.without.clean_exit = false;
        report.without.exit = "signal: 11 (SIGSEGV) after SIGTERM".to_owned();
        report.with.stats.unexpected = 3;
        report
            .with
            .stats
            .problems
            .push("GET /health: expected 200, got 500".to_owned());
        report.without.stats.ws_errors = 1;
        let failures = report.failures();
        assert_eq!(failures.len(), 5, "{failures:#?}");
        assert!(failures[0].starts_with("RSS did not plateau"), "{}", failures[0]);
        assert!(failures[1].contains(r#"websocket_connections{channel="comments"} 2"#));
        let text = render(&report);
        assert!(text.contains("Verdict: **FAIL**"));
        assert!(text.contains("**GROWING**"));
        assert!(text.contains("  - GET /health: expected 200, got 500"));
        assert!(summary(&report).ends_with("verdict: FAIL"));

        report.vigil.gauges.series.clear();
        assert!(
            report
                .failures()
                .iter()
                .any(|f| f == "no websocket_connections series on /metrics")
        );
        report.vigil.scrapes = (30.0, 0.0);
        assert!(
            report
                .failures()
                .iter()
                .any(|f| f.starts_with("Prometheus never scraped"))
        );
    }
}
