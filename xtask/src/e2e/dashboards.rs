//! The dashboards stage of `cargo xtask e2e`: proves the generated dashboards and alert rules
//! against a real Prometheus, so a metric renamed in the catalogue, a wrong label or a broken
//! expression can never leave a panel or a rule silently empty.
//!
//! 1. The checked-in files must be what the generator makes (`cargo xtask dashboards --check`),
//!    and `promtool check rules` / `promtool test rules` must pass.
//! 2. `realtime_server` runs with `DEBUG_ROUTES=true` (a deliberately slow query and a 500
//!    route), `DB_SLOW_QUERY_MS=20` and `VM_SAMPLE_INTERVAL=1`, with Datadog on: its logs,
//!    traces and DogStatsD metrics go to a stand-in ([`super::fake_datadog`]) whose intake and
//!    agent fail their first requests (500, then 400), so the exporters' delivery, retry and drop
//!    metrics are real too. A real Prometheus (Debian's `prometheus`) scrapes it every second
//!    with the rules loaded, from a temporary directory, on free loopback ports.
//! 3. Three rounds of traffic: HTTP (2xx, 400, 422, 404, 500), WebSocket (connect, ping, comment
//!    events, clean close, dropped connection, one connection held throughout) and database
//!    (inserts, selects, slow queries), each round scraped before the next.
//! 4. Every variable query, every panel query of every Grafana dashboard (variables substituted),
//!    every metric selector in them, and every rule's signal and expression go through
//!    Prometheus's `/api/v1/query`; each must parse and return data (panels and signals: at
//!    least one finite value). The empty ones are listed by dashboard and panel title, and fail
//!    the stage; so does a rule whose evaluation is not healthy.
//! 5. Every metric of every Datadog dashboard and monitor (but the APM dashboard's trace
//!    metrics, which the Datadog agent computes) must have been sent by the DogStatsD backend,
//!    with the tags the query groups and filters by, and the `service` and `env` tags.
//!
//! Files: `target/e2e/dashboards_prometheus.log` (Prometheus's output) and
//! `target/e2e/dashboards_realtime_server.jsonl` (the example's stdout).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};
use vigil_core::catalogue::{self, MetricDef};

use super::fake_datadog::FakeDatadog;
use super::{
    App, POLL_INTERVAL, Response, SERVICE, STARTUP_TIMEOUT, ensure_prometheus_package, http_request, realtime_env,
};
use crate::dashboards::{
    self, DATADOG_DIR, GRAFANA_DIR, MONITORS_FILE, RULES_FILE, RULES_TEST_FILE, alerts, datadog, promql,
};
use crate::http::{HttpClient, percent_encode};
use crate::json::{self, Value};
use crate::ws::{self, Message, WsClient};
use crate::{build_example, project_root, target_dir};

/// `VIGIL_ENV` of the example, the `$environment`.
const ENVIRONMENT: &str = "e2e";
/// The scrape job's name.
const JOB: &str = "vigil";
/// The API key the example sends to the fake intake (not a real key).
const FAKE_API_KEY: &str = "e2e0000000000000000000000000fake";
/// `DB_SLOW_QUERY_MS` of the example: queries slower than this count as slow.
const SLOW_QUERY_MS: f64 = 20.0;
/// Rounds of traffic, each scraped before the next, so every rate has increases to see.
const ROUNDS: u32 = 3;
/// The pause between rounds (longer than the 1 s scrape interval).
const ROUND_GAP: Duration = Duration::from_millis(1300);
/// What `$__rate_interval` becomes: long enough to cover the whole run.
const RATE_INTERVAL: &str = "1m";
/// How long a WebSocket client waits for a frame.
const WS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long Prometheus may take to become ready, scrape the target, or evaluate the rules.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one Prometheus API call may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Metrics this run cannot produce in bounded time, with the reason. Their selectors may be
/// empty, and so may a panel query made only of them (it is reported as not exercised); every
/// other selector and query must have data.
const NOT_EXERCISED: &[(&MetricDef, &str)] = &[
    (
        &catalogue::DATABASE_POOL_ACQUIRE_TIMEOUTS,
        "needs a pool acquire to time out (sqlx waits 30 s by default)",
    ),
    (
        &catalogue::VIGIL_METRICS_OVERFLOW,
        "needs a metric past its label-set limit",
    ),
];

/// Whether `series` (an exported series name) belongs to a metric in [`NOT_EXERCISED`].
fn not_exercised(series: &str) -> bool {
    promql::all_series_names()
        .iter()
        .any(|(name, def)| name == series && NOT_EXERCISED.iter().any(|(d, _)| d.name == def.name))
}

/// A running Prometheus; dropping it kills the process (by its pid) and removes its data.
pub(crate) struct Prometheus {
    /// The process.
    child: Child,
    /// Its web port on 127.0.0.1.
    port: u16,
    /// The temporary directory (config and TSDB).
    dir: PathBuf,
    /// Where its output goes.
    log: PathBuf,
}

impl Prometheus {
    /// Writes the config and starts `prometheus` on `port`, scraping `target` every second with
    /// `rules` loaded, sending `bearer` as its `Authorization` when given.
    pub(crate) fn start(
        binary: &Path,
        port: u16,
        target: SocketAddr,
        rules: &Path,
        log: &Path,
        bearer: Option<&str>,
    ) -> Result<Self> {
        let dir = target_dir()
            .join("e2e")
            .join(format!("prometheus-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("data")).with_context(|| format!("creating {}", dir.display()))?;
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{target}']\n",
            json::Value::str(rules.display().to_string()).to_compact()
        );
        if let Some(token) = bearer {
            // JSON strings are YAML strings.
            let _ = writeln!(
                config,
                "    authorization:\n      type: Bearer\n      credentials: {}",
                json::Value::str(token).to_compact()
            );
        }
        let config_file = dir.join("prometheus.yml");
        fs::write(&config_file, config).with_context(|| format!("writing {}", config_file.display()))?;
        let output = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let args = [
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".to_owned(),
        ];
        eprintln!("$ {} {} &", binary.display(), args.join(" "));
        let child = Command::new(binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Prometheus {
            child,
            port,
            dir,
            log: log.to_path_buf(),
        })
    }

    /// The last lines Prometheus wrote, for error messages.
    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let shown = &lines[lines.len().saturating_sub(20)..];
        format!(
            "--- Prometheus's output, last {} lines ---\n{}\n---",
            shown.len(),
            shown.join("\n")
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("stopping Prometheus (pid {})", self.child.id());
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Prometheus's HTTP API.
pub(crate) struct Api {
    /// The client.
    pub(crate) client: HttpClient,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
}

/// One sample of a query result: its labels and its value.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// The labels.
    labels: BTreeMap<String, String>,
    /// The value (`NaN` included).
    pub(crate) value: f64,
}

impl Api {
    /// `GET path`, expecting a JSON answer with `"status": "success"`; returns `data`.
    fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self.client.send("GET", &url, &[("Accept", "application/json")], None)?;
        let body = json::parse(&response.body)
            .with_context(|| format!("HTTP {}: not JSON: {:?}", response.status, response.body))?;
        if body.get("status").and_then(Value::as_str) != Some("success") {
            let kind = body.get("errorType").and_then(Value::as_str).unwrap_or("?");
            let error = body.get("error").and_then(Value::as_str).unwrap_or(&response.body);
            bail!("HTTP {} ({kind}): {error}", response.status);
        }
        body.get("data").cloned().context("the answer has no \"data\"")
    }

    /// Runs an instant query.
    pub(crate) fn query(&self, expr: &str) -> Result<Vec<Sample>> {
        let data = self.get(&format!("/api/v1/query?query={}", percent_encode(expr)))?;
        parse_result(&data)
    }
}

/// The samples of a query's `data` (vector or scalar).
fn parse_result(data: &Value) -> Result<Vec<Sample>> {
    let value_of = |pair: &Value| -> Result<f64> {
        let text = pair
            .as_array()
            .and_then(|p| p.get(1))
            .and_then(Value::as_str)
            .context("a sample value is not [time, \"value\"]")?;
        Ok(match text {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().with_context(|| format!("bad sample value {other:?}"))?,
        })
    };
    let result = data.get("result").context("no \"result\"")?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => result
            .as_array()
            .context("a vector result is not an array")?
            .iter()
            .map(|item| {
                let labels = item
                    .get("metric")
                    .and_then(Value::as_object)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect();
                Ok(Sample {
                    labels,
                    value: value_of(item.get("value").context("a vector sample has no value")?)?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: value_of(result)?,
        }]),
        other => bail!("unexpected result type {other:?}"),
    }
}

/// Replaces the dashboard variables by the values of this run; fails on any other `$`.
fn substitute(expr: &str, instance: &str) -> Result<String> {
    let escaped_instance = instance.replace('.', r"\\.");
    let text = expr
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$service", SERVICE)
        .replace("$environment", ENVIRONMENT)
        .replace("$instance", &escaped_instance);
    ensure!(!text.contains('$'), "an unknown variable is left in {text}");
    Ok(text)
}

/// One problem found, with where.
struct Problem {
    /// `Vigil / Database performance / Pool saturation`.
    place: String,
    /// What went wrong.
    what: String,
}

/// What the checks counted, for the summary.
#[derive(Default)]
struct Counts {
    /// Dashboards checked.
    dashboards: usize,
    /// Panels checked.
    panels: usize,
    /// Panel queries run.
    queries: usize,
    /// Variable queries run.
    variables: usize,
    /// Distinct selectors with data.
    selectors: usize,
    /// Rules whose signal and expression were run.
    rules: usize,
    /// HTTP requests sent.
    requests: usize,
    /// WebSocket connections opened.
    connections: usize,
    /// Slow queries run.
    slow_queries: usize,
    /// Panel queries left empty because they only show [`NOT_EXERCISED`] metrics.
    unexercised: Vec<String>,
    /// Datadog dashboard and monitor metric references found in what DogStatsD sent.
    datadog_refs: usize,
    /// Distinct metric names the DogStatsD backend sent.
    dogstatsd_names: usize,
    /// Statuses the fake logs intake answered.
    logs: Vec<u16>,
    /// Statuses the fake trace agent answered.
    traces: Vec<u16>,
}

/// Runs the stage.
///
/// # Errors
///
/// When the files are stale, promtool fails, a process cannot start, or any query is empty or
/// fails; the message lists every empty panel by dashboard and title.
pub(super) fn run(promtool: &Path) -> Result<()> {
    let started = Instant::now();
    eprintln!("\n==> e2e dashboards: the generated files are up to date");
    dashboards::check_up_to_date()?;
    let root = project_root();
    let rules_file = root.join(RULES_FILE);
    let rule_count = promtool_rules(promtool, &rules_file, &root.join(RULES_TEST_FILE))?;
    let prometheus_binary = ensure_prometheus_package("prometheus")?;

    let binary = build_example("e2e", "realtime_server", false)?;
    let out_dir = target_dir().join("e2e");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let stdout_file = out_dir.join("dashboards_realtime_server.jsonl");
    let log_file = out_dir.join("dashboards_prometheus.log");

    let [api_port, metrics_port, prometheus_port] = free_ports()?;
    let fake = FakeDatadog::start()?;
    // The metrics port behind a bearer token: Prometheus must send it to scrape at all.
    let token = format!("e2e-token-{:x}", std::process::id() ^ 0x5eed_cafe);
    let mut envs = realtime_env(api_port, metrics_port, ENVIRONMENT, "sqlite::memory:");
    envs.extend([
        ("DEBUG_ROUTES", "true".to_owned()),
        ("DB_SLOW_QUERY_MS", format!("{SLOW_QUERY_MS}")),
        ("VM_SAMPLE_INTERVAL", "1".to_owned()),
        ("ENABLE_DATADOG", "true".to_owned()),
        ("DATADOG_API_KEY", FAKE_API_KEY.to_owned()),
        ("DATADOG_LOGS_URL", fake.logs_url()),
        ("DD_AGENT_HOST", "127.0.0.1".to_owned()),
        ("DD_TRACE_AGENT_PORT", fake.http_port.to_string()),
        ("METRICS_BACKENDS", "prometheus,dogstatsd".to_owned()),
        ("DD_DOGSTATSD_PORT", fake.udp_port.to_string()),
        ("PROMETHEUS_AUTH_TOKEN", token.clone()),
    ]);
    let mut app = App::start(&binary, &envs)?;
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, metrics_port));
    let outcome = (|| {
        wait_listening(&mut app, &[api_port, metrics_port])?;
        check_metrics_auth(metrics_port, &token)?;
        let prometheus = Prometheus::start(
            &prometheus_binary,
            prometheus_port,
            target,
            &rules_file,
            &log_file,
            Some(&token),
        )?;
        let result = prove(&mut app, &prometheus, &fake, api_port, &target.to_string());
        if result.is_err() {
            eprintln!("{}", prometheus.log_tail());
        }
        drop(prometheus);
        result
    })();
    let stdout = app.stop();
    fs::write(&stdout_file, &stdout).with_context(|| format!("writing {}", stdout_file.display()))?;
    let mut counts = outcome.with_context(|| {
        format!(
            "e2e dashboards failed (the example's stdout is in {}, Prometheus's output in {})",
            stdout_file.display(),
            log_file.display()
        )
    })?;
    counts.rules = rule_count;
    print_summary(&counts, started.elapsed());
    Ok(())
}

/// Prints what was checked: the not-exercised metrics and queries, then one summary line.
fn print_summary(counts: &Counts, elapsed: Duration) {
    if !counts.unexercised.is_empty() {
        println!(
            "e2e dashboards: {} panel queries show only metrics this run cannot produce, and were empty:\n  {}",
            counts.unexercised.len(),
            counts.unexercised.join("\n  ")
        );
    }
    println!("e2e dashboards: metrics not exercised, by design:");
    for (def, reason) in NOT_EXERCISED {
        println!("  {}: {reason}", promql::prom_name(def));
    }
    println!(
        "e2e dashboards: ok ({} Grafana dashboards: {} panels; {} of {} panel queries and all {} variable queries \
         returned data from a real Prometheus, the other {} show only the {} metrics not exercised; {} distinct \
         metric selectors had data; {} alert rules loaded and healthy, each signal with data, promtool check and \
         test rules passed; {} Datadog dashboard and monitor metric references matched what the DogStatsD \
         backend sent ({} metric names, with their tags); the fake Datadog intake answered {:?} and the fake \
         agent {:?}; traffic: {} HTTP requests incl. 400/404/422/500, {} WebSocket connections, {} slow \
         queries; {:.1}s)",
        counts.dashboards,
        counts.panels,
        counts.queries - counts.unexercised.len(),
        counts.queries,
        counts.variables,
        counts.unexercised.len(),
        NOT_EXERCISED.len(),
        counts.selectors,
        counts.rules,
        counts.datadog_refs,
        counts.dogstatsd_names,
        counts.logs,
        counts.traces,
        counts.requests,
        counts.connections,
        counts.slow_queries,
        elapsed.as_secs_f64(),
    );
}

/// The metrics port answers 401 without the bearer token, and 200 with it.
fn check_metrics_auth(port: u16, token: &str) -> Result<()> {
    let client = HttpClient::new(QUERY_TIMEOUT);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let refused = client.send("GET", &url, &[], None)?;
    ensure!(
        refused.status == 401,
        "GET /metrics without the token answered {}, not 401",
        refused.status
    );
    let bearer = format!("Bearer {token}");
    let served = client.send("GET", &url, &[("Authorization", &bearer)], None)?;
    ensure!(
        served.status == 200,
        "GET /metrics with the token answered {}",
        served.status
    );
    eprintln!("e2e dashboards: /metrics needs the bearer token (401 without, 200 with)");
    Ok(())
}

/// `promtool check rules` and `promtool test rules`; returns the number of rules found.
fn promtool_rules(promtool: &Path, rules: &Path, tests: &Path) -> Result<usize> {
    let run = |args: &[&str], file: &Path| -> Result<String> {
        let dir = file.parent().unwrap_or(Path::new("."));
        let name = file.file_name().context("a rules file has no name")?;
        eprintln!("$ promtool {} {}", args.join(" "), file.display());
        let output = Command::new(promtool)
            .args(args)
            .arg(name)
            .current_dir(dir)
            .output()
            .context("running promtool")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ensure!(
            output.status.success(),
            "promtool {} {} failed ({}):\n{text}",
            args.join(" "),
            file.display(),
            output.status
        );
        Ok(text)
    };
    let checked = run(&["check", "rules"], rules)?;
    eprint!("{checked}");
    let count = checked
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("SUCCESS: ")?
                .strip_suffix(" rules found")?
                .parse()
                .ok()
        })
        .context("promtool check rules did not say how many rules it found")?;
    eprint!("{}", run(&["test", "rules"], tests)?);
    Ok(count)
}

/// Three distinct free loopback ports (all held while they are chosen).
pub(crate) fn free_ports() -> Result<[u16; 3]> {
    let bind = || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0 to find a free port");
    let held = [bind()?, bind()?, bind()?];
    Ok([
        held[0].local_addr()?.port(),
        held[1].local_addr()?.port(),
        held[2].local_addr()?.port(),
    ])
}

/// Waits until every port accepts TCP connections.
fn wait_listening(app: &mut App, ports: &[u16]) -> Result<()> {
    let started = Instant::now();
    for port in ports {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        loop {
            if let Some(status) = app.child.try_wait()? {
                bail!("the example exited ({status}) before {addr} accepted connections");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                break;
            }
            ensure!(
                started.elapsed() < STARTUP_TIMEOUT,
                "expected {addr} to accept connections within {STARTUP_TIMEOUT:?}"
            );
            thread::sleep(POLL_INTERVAL);
        }
    }
    Ok(())
}

/// Everything done while both processes run: wait for Prometheus, traffic, then the checks.
fn prove(app: &mut App, prometheus: &Prometheus, fake: &FakeDatadog, api_port: u16, instance: &str) -> Result<Counts> {
    let api = Api {
        client: HttpClient::new(QUERY_TIMEOUT),
        base: format!("http://127.0.0.1:{}", prometheus.port),
    };
    wait_until("Prometheus to be ready", || {
        let response = api.client.send("GET", &format!("{}/-/ready", api.base), &[], None)?;
        Ok(response.status == 200)
    })?;
    let up = format!(r#"up{{job="{JOB}"}} == 1"#);
    wait_until("Prometheus to scrape realtime_server", || {
        Ok(!api.query(&up)?.is_empty())
    })?;

    let mut counts = Counts::default();
    drive_traffic(app, api_port, &mut counts)?;
    let traffic_end = unix_now();
    let traffic_end_instant = Instant::now();
    // The last round must be scraped, and the rules evaluated on it.
    let last_scrape = format!(r#"timestamp(up{{job="{JOB}"}})"#);
    wait_until("a scrape after the last round", || {
        Ok(api.query(&last_scrape)?.iter().any(|s| s.value > traffic_end))
    })?;
    let health = wait_for_rules(&api)?;
    eprintln!("rules: {health}");

    let mut problems = Vec::new();
    let mut selectors = BTreeMap::new();
    check_grafana(&api, instance, &mut counts, &mut selectors, &mut problems)?;
    check_rules(&api, &mut selectors, &mut problems)?;
    counts.selectors = selectors.values().filter(|has| **has).count();
    // The DogStatsD backend flushes every 2 s: wait for a flush after the traffic.
    wait_until("a DogStatsD flush after the last round", || {
        Ok(fake.with(|r| r.last_datagram.is_some_and(|t| t > traffic_end_instant)))
    })?;
    check_datadog(fake, &mut counts, &mut problems)?;
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.place, p.what)).collect();
        bail!(
            "{} of the dashboard and rule queries returned no data or failed:\n  {}",
            problems.len(),
            list.join("\n  ")
        );
    }
    Ok(counts)
}

/// Seconds since the Unix epoch, as a float.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Polls `ready` until it answers true, within [`PROMETHEUS_TIMEOUT`].
fn wait_until(what: &str, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let started = Instant::now();
    loop {
        let last = match ready() {
            Ok(true) => {
                eprintln!("waited {:.1}s for {what}", started.elapsed().as_secs_f64());
                return Ok(());
            }
            Ok(false) => "not yet".to_owned(),
            Err(err) => format!("{err:#}"),
        };
        ensure!(
            started.elapsed() < PROMETHEUS_TIMEOUT,
            "expected {what} within {PROMETHEUS_TIMEOUT:?}; last attempt: {last}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until every loaded rule was evaluated and is healthy; returns a one-line summary.
fn wait_for_rules(api: &Api) -> Result<String> {
    let mut summary = String::new();
    wait_until("the rules to be evaluated and healthy", || {
        let data = api.get("/api/v1/rules")?;
        let mut rules = Vec::new();
        for group in data.get("groups").and_then(Value::as_array).unwrap_or_default() {
            for rule in group.get("rules").and_then(Value::as_array).unwrap_or_default() {
                let name = rule.get("name").and_then(Value::as_str).unwrap_or("?").to_owned();
                let health = rule.get("health").and_then(Value::as_str).unwrap_or("?").to_owned();
                let error = rule.get("lastError").and_then(Value::as_str).unwrap_or("").to_owned();
                let state = rule.get("state").and_then(Value::as_str).unwrap_or("?").to_owned();
                rules.push((name, health, error, state));
            }
        }
        ensure!(!rules.is_empty(), "Prometheus has loaded no rules");
        if let Some((name, _, error, _)) = rules.iter().find(|(_, h, _, _)| h == "err") {
            bail!("rule {name} failed to evaluate: {error}");
        }
        summary = rules
            .iter()
            .map(|(name, health, _, state)| format!("{name} {health} ({state})"))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(rules.iter().all(|(_, health, _, _)| health == "ok"))
    })?;
    Ok(summary)
}

/// The traffic: a slow-query calibration, then [`ROUNDS`] rounds, one WebSocket client
/// connected throughout.
fn drive_traffic(app: &mut App, port: u16, counts: &mut Counts) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let rows = calibrate_slow_query(port, counts)?;
    let mut steady = WsClient::connect("steady ws client", addr, "/ws/videos/1", WS_TIMEOUT)?;
    counts.connections += 1;
    ping_pong(&mut steady)?;
    for round in 1..=ROUNDS {
        if let Some(status) = app.child.try_wait()? {
            bail!("the example exited ({status}) during the traffic");
        }
        eprintln!("traffic round {round} of {ROUNDS}");
        one_round(addr, round, rows, counts)?;
        thread::sleep(ROUND_GAP);
    }
    // Read what the steady client was sent, then leave cleanly.
    while steady.recv(Duration::from_millis(100))?.is_some() {}
    let _ = steady.close(ws::CLOSE_NORMAL, WS_TIMEOUT);
    Ok(())
}

/// Sends one request and checks its status.
fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    expected: u16,
    counts: &mut Counts,
) -> Result<Response> {
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("Content-Type", "application/json")]
    } else {
        &[]
    };
    let response = http_request(port, method, path, headers, body.map(str::as_bytes))
        .with_context(|| format!("{method} {path}"))?;
    counts.requests += 1;
    ensure!(
        response.status == expected,
        "{method} {path}: expected HTTP {expected}, got {} with body {:?}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    Ok(response)
}

/// Finds a row count that makes `/debug/slow_query/{rows}` take at least twice
/// `DB_SLOW_QUERY_MS`, quadrupling from 20,000.
fn calibrate_slow_query(port: u16, counts: &mut Counts) -> Result<u64> {
    let mut rows: u64 = 20_000;
    loop {
        let response = request(port, "GET", &format!("/debug/slow_query/{rows}"), None, 200, counts)?;
        counts.slow_queries += 1;
        let body = json::parse(&String::from_utf8_lossy(&response.body)).context("/debug/slow_query: not JSON")?;
        let elapsed = body
            .get("elapsed_ms")
            .and_then(Value::as_f64)
            .context("/debug/slow_query: no elapsed_ms")?;
        if elapsed >= 2.0 * SLOW_QUERY_MS {
            eprintln!("slow query: {rows} rows take {elapsed:.0} ms (DB_SLOW_QUERY_MS={SLOW_QUERY_MS})");
            return Ok(rows);
        }
        ensure!(
            rows < 50_000_000 / 4,
            "/debug/slow_query/{rows} still took only {elapsed:.1} ms; expected at least {} ms",
            2.0 * SLOW_QUERY_MS
        );
        rows *= 4;
    }
}

/// One round: HTTP successes and errors, two WebSocket clients with pings and comment events
/// (one closes cleanly, one drops), slow queries.
fn one_round(addr: SocketAddr, round: u32, rows: u64, counts: &mut Counts) -> Result<()> {
    let port = addr.port();
    request(port, "GET", "/health", None, 200, counts)?;
    request(port, "GET", "/api/videos", None, 200, counts)?;
    let mut clients = [
        WsClient::connect("ws client a", addr, "/ws/videos/1", WS_TIMEOUT)?,
        WsClient::connect("ws client b", addr, "/ws/videos/1", WS_TIMEOUT)?,
    ];
    counts.connections += 2;
    for client in &mut clients {
        ping_pong(client)?;
    }
    let comments = "/api/videos/1/comments";
    for n in 1..=2 {
        let body = format!(r#"{{"user_id": {n}, "body": "round {round} comment {n}"}}"#);
        request(port, "POST", comments, Some(&body), 201, counts)?;
    }
    for client in &mut clients {
        for n in 1..=2 {
            match client.recv(WS_TIMEOUT)? {
                Some(Message::Text(text)) if text.contains("comment_created") => {}
                other => bail!(
                    "{}: expected comment_created event {n} of 2, got {other:?}",
                    client.name()
                ),
            }
        }
    }
    request(port, "GET", comments, None, 200, counts)?;
    request(port, "POST", comments, Some("not json"), 400, counts)?;
    request(
        port,
        "POST",
        comments,
        Some(r#"{"user_id": 1, "body": "  "}"#),
        422,
        counts,
    )?;
    request(
        port,
        "POST",
        "/api/videos/999/comments",
        Some(r#"{"user_id": 1, "body": "x"}"#),
        404,
        counts,
    )?;
    request(port, "GET", "/no/such/path", None, 404, counts)?;
    for _ in 0..2 {
        request(port, "GET", "/debug/fail", None, 500, counts)?;
        request(port, "GET", &format!("/debug/slow_query/{rows}"), None, 200, counts)?;
        counts.slow_queries += 1;
    }
    let [a, b] = clients;
    a.close(ws::CLOSE_NORMAL, WS_TIMEOUT)
        .context("ws client a: clean close")?;
    b.drop_abruptly();
    Ok(())
}

/// Sends `{"event":"ping"}` and expects a pong.
fn ping_pong(client: &mut WsClient) -> Result<()> {
    client.send_text(r#"{"event":"ping"}"#)?;
    match client.recv(WS_TIMEOUT)? {
        Some(Message::Text(text)) if text.contains("pong") => Ok(()),
        other => bail!("{}: expected a pong, got {other:?}", client.name()),
    }
}

/// Whether a query answered data: at least one sample, and one finite value when `finite`.
fn check_samples(samples: &[Sample], finite: bool) -> Option<String> {
    if samples.is_empty() {
        return Some("no data".to_owned());
    }
    if finite && !samples.iter().any(|s| s.value.is_finite()) {
        return Some(format!(
            "{} series, none with a finite value (all NaN or infinite)",
            samples.len()
        ));
    }
    None
}

/// Runs one expression; records a problem if it fails or (per `finite`) has no data.
fn expect_data(api: &Api, place: &str, expr: &str, finite: bool, problems: &mut Vec<Problem>) -> Option<Vec<Sample>> {
    match api.query(expr) {
        Ok(samples) => {
            if let Some(what) = check_samples(&samples, finite) {
                problems.push(Problem {
                    place: place.to_owned(),
                    what: format!("{what}: {expr}"),
                });
                None
            } else {
                Some(samples)
            }
        }
        Err(err) => {
            problems.push(Problem {
                place: place.to_owned(),
                what: format!("query failed ({err:#}): {expr}"),
            });
            None
        }
    }
}

/// Checks every catalogue selector in `expr` has data (except the not-exercised metrics).
fn check_selectors(api: &Api, place: &str, expr: &str, seen: &mut BTreeMap<String, bool>, problems: &mut Vec<Problem>) {
    let found = match promql::selectors(expr) {
        Ok(found) => found,
        Err(unknown) => {
            problems.push(Problem {
                place: place.to_owned(),
                what: format!("unknown metric names {unknown:?} in {expr}"),
            });
            return;
        }
    };
    for (name, selector) in found {
        if seen.contains_key(&selector) {
            continue;
        }
        let exempt = not_exercised(&name);
        let has_data = api.query(&format!("count({selector})")).is_ok_and(|s| !s.is_empty());
        seen.insert(selector.clone(), has_data);
        if !has_data && !exempt {
            problems.push(Problem {
                place: place.to_owned(),
                what: format!("the selector {selector} matches no series"),
            });
        }
    }
}

/// Runs every variable and panel query of every Grafana dashboard file.
fn check_grafana(
    api: &Api,
    instance: &str,
    counts: &mut Counts,
    selectors: &mut BTreeMap<String, bool>,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let dir = project_root().join(GRAFANA_DIR);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let dashboard = json::parse(&text).with_context(|| format!("parsing {}", file.display()))?;
        let title = dashboard.get("title").and_then(Value::as_str).unwrap_or("?").to_owned();
        counts.dashboards += 1;

        let variables = dashboard
            .get("templating")
            .and_then(|t| t.get("list"))
            .and_then(Value::as_array)
            .unwrap_or_default();
        for variable in variables
            .iter()
            .filter(|v| v.get("type").and_then(Value::as_str) == Some("query"))
        {
            let name = variable.get("name").and_then(Value::as_str).unwrap_or("?");
            let query = variable.get("query").and_then(Value::as_str).unwrap_or("");
            let place = format!("{title} / variable ${name}");
            counts.variables += 1;
            let Some((selector, label)) = parse_label_values(query) else {
                problems.push(Problem {
                    place,
                    what: format!("not a label_values(metric, label) query: {query}"),
                });
                continue;
            };
            let expected = match name {
                "service" => SERVICE,
                "environment" => ENVIRONMENT,
                _ => instance,
            };
            let expr = format!("count by ({label}) ({})", substitute(&selector, instance)?);
            if let Some(samples) = expect_data(api, &place, &expr, false, problems)
                && !samples
                    .iter()
                    .any(|s| s.labels.get(&label).map(String::as_str) == Some(expected))
            {
                let values: Vec<&str> = samples
                    .iter()
                    .filter_map(|s| s.labels.get(&label).map(String::as_str))
                    .collect();
                problems.push(Problem {
                    place,
                    what: format!("expected the value {expected:?} among {values:?} ({expr})"),
                });
            }
        }

        for panel in dashboard.get("panels").and_then(Value::as_array).unwrap_or_default() {
            let panel_title = panel.get("title").and_then(Value::as_str).unwrap_or("?");
            counts.panels += 1;
            for target in panel.get("targets").and_then(Value::as_array).unwrap_or_default() {
                let expr = target.get("expr").and_then(Value::as_str).unwrap_or("");
                let legend = target.get("legendFormat").and_then(Value::as_str).unwrap_or("");
                let place = format!("{title} / {panel_title} [{legend}]");
                let expr = substitute(expr, instance)?;
                counts.queries += 1;
                // A query made only of metrics this run cannot produce may be empty.
                let only_unexercised = promql::selectors(&expr)
                    .is_ok_and(|found| !found.is_empty() && found.iter().all(|(name, _)| not_exercised(name)));
                if only_unexercised && api.query(&expr).is_ok_and(|s| s.is_empty()) {
                    counts.unexercised.push(place.clone());
                } else {
                    expect_data(api, &place, &expr, true, problems);
                }
                check_selectors(api, &place, &expr, selectors, problems);
            }
        }
    }
    Ok(())
}

/// Checks every metric of the Datadog dashboards (but APM's trace metrics) and monitors against
/// what the DogStatsD backend sent: the name, the tags grouped and filtered by, `service`/`env`.
fn check_datadog(fake: &FakeDatadog, counts: &mut Counts, problems: &mut Vec<Problem>) -> Result<()> {
    let root = project_root();
    let mut sources: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let dir = root.join(DATADOG_DIR);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let dashboard = json::parse(&text).with_context(|| format!("parsing {}", file.display()))?;
        let title = dashboard.get("title").and_then(Value::as_str).unwrap_or("?").to_owned();
        sources.push((format!("Datadog: {title}"), datadog::metric_queries(&dashboard)));
    }
    let monitors_text = fs::read_to_string(root.join(MONITORS_FILE)).context("reading the monitors")?;
    let monitors = json::parse(&monitors_text).context("parsing the monitors")?;
    let monitor_queries = monitors
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            Some((
                m.get("name")?.as_str()?.to_owned(),
                m.get("query")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    sources.push(("Datadog monitor".to_owned(), monitor_queries));

    let (logs, traces, names) = fake.with(|r| (r.logs.clone(), r.traces.clone(), r.metrics.len()));
    counts.logs = logs;
    counts.traces = traces;
    counts.dogstatsd_names = names;
    fake.with(|received| {
        for (source, queries) in &sources {
            for (title, query) in queries {
                for reference in datadog::metric_refs(query) {
                    // Trace metrics are computed by the Datadog agent from the spans, not sent.
                    if reference.name.starts_with("trace.") {
                        continue;
                    }
                    let place = format!("{source} / {title}");
                    let exempt = NOT_EXERCISED.iter().any(|(def, _)| def.name == reference.name);
                    let Some(tags) = received.metrics.get(&reference.name) else {
                        if !exempt {
                            problems.push(Problem {
                                place,
                                what: format!("the DogStatsD backend never sent {} ({query})", reference.name),
                            });
                        }
                        continue;
                    };
                    counts.datadog_refs += 1;
                    let mut wanted: Vec<(String, Option<String>)> = vec![
                        ("service".to_owned(), Some(SERVICE.to_owned())),
                        ("env".to_owned(), Some(ENVIRONMENT.to_owned())),
                    ];
                    wanted.extend(
                        reference
                            .by
                            .iter()
                            .filter(|t| t.as_str() != "host")
                            .map(|t| (t.clone(), None)),
                    );
                    wanted.extend(reference.filters.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
                    for (key, value) in wanted {
                        let values = tags.get(&key);
                        let ok = match (&value, values) {
                            (_, None) => false,
                            (None, Some(_)) => true,
                            (Some(pattern), Some(values)) => values.iter().any(|v| wildcard(pattern, v)),
                        };
                        if !ok {
                            let seen: Vec<&String> = tags.keys().collect();
                            problems.push(Problem {
                                place: place.clone(),
                                what: format!(
                                    "{} was sent without the tag {key}{} (its tags: {seen:?}; {query})",
                                    reference.name,
                                    value.map(|v| format!(":{v}")).unwrap_or_default()
                                ),
                            });
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// Datadog's tag value wildcard: `5*` matches `500`; `*` anywhere matches any run.
fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, rest)) => {
            let Some(tail) = value.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && wildcard(rest, &tail[i..]))
        }
    }
}

/// `label_values(metric{matchers}, label)` → (`metric{matchers}`, `label`).
fn parse_label_values(query: &str) -> Option<(String, String)> {
    let inner = query.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_owned(), label.trim().to_owned()))
}

/// Runs every rule's signal (must have data) and expression (must run), and reports whether
/// each would fire on this traffic.
fn check_rules(api: &Api, selectors: &mut BTreeMap<String, bool>, problems: &mut Vec<Problem>) -> Result<()> {
    let thresholds = dashboards::recorded_thresholds()?;
    for alert in alerts::alerts(&thresholds) {
        let place = format!("rule {}", alert.name);
        let signal = expect_data(api, &format!("{place} (signal)"), &alert.signal, true, problems);
        check_selectors(api, &place, &alert.signal, selectors, problems);
        match api.query(&alert.expr()) {
            Ok(firing) => {
                let peak = signal
                    .iter()
                    .flatten()
                    .map(|s| s.value)
                    .filter(|v| v.is_finite())
                    .fold(f64::NEG_INFINITY, f64::max);
                eprintln!(
                    "rule {}: signal {} series, highest {peak:.4} against the threshold {}: {}",
                    alert.name,
                    signal.as_ref().map_or(0, Vec::len),
                    alert.threshold,
                    if firing.is_empty() {
                        "would not fire".to_owned()
                    } else {
                        format!("condition true for {} series", firing.len())
                    }
                );
            }
            Err(err) => problems.push(Problem {
                place: format!("{place} (expression)"),
                what: format!("query failed ({err:#}): {}", alert.expr()),
            }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution() {
        let expr =
            r#"sum(rate(x{service="$service", environment="$environment", instance=~"$instance"}[$__rate_interval]))"#;
        assert_eq!(
            substitute(expr, "127.0.0.1:9000").unwrap(),
            r#"sum(rate(x{service="realtime_server", environment="e2e", instance=~"127\\.0\\.0\\.1:9000"}[1m]))"#
        );
        assert!(substitute("rate(x[$__range])", "i").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("5*", "500") && wildcard("*", "") && wildcard("a*c", "abbc") && wildcard("x", "x"));
        assert!(!wildcard("5*", "404") && !wildcard("a*c", "abd") && !wildcard("x", "xy"));
    }

    #[test]
    fn label_values() {
        assert_eq!(
            parse_label_values(r#"label_values(up{service="$service", environment="x"}, instance)"#),
            Some((
                r#"up{service="$service", environment="x"}"#.to_owned(),
                "instance".to_owned()
            ))
        );
        assert_eq!(parse_label_values("up"), None);
    }

    #[test]
    fn results() {
        let vector = json::parse(
            r#"{"resultType":"vector","result":[{"metric":{"route":"/a"},"value":[1.5,"0.25"]},{"metric":{},"value":[1.5,"NaN"]}]}"#,
        )
        .unwrap();
        let samples = parse_result(&vector).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels.get("route").map(String::as_str), Some("/a"));
        assert!((samples[0].value - 0.25).abs() < f64::EPSILON && samples[1].value.is_nan());
        assert_eq!(check_samples(&samples, true), None);
        assert!(check_samples(&samples[1..], true).unwrap().contains("finite"));
        assert_eq!(check_samples(&samples[1..], false), None);
        assert_eq!(check_samples(&[], false).as_deref(), Some("no data"));
        let scalar = json::parse(r#"{"resultType":"scalar","result":[1.5,"+Inf"]}"#).unwrap();
        assert!(parse_result(&scalar).unwrap()[0].value.is_infinite());
        assert!(parse_result(&json::parse(r#"{"resultType":"matrix","result":[]}"#).unwrap()).is_err());
    }
}
