//! The `realtime_server` stage of `cargo xtask e2e`: runs the example as a real process, drives
//! HTTP and WebSocket traffic at it (two subscribers, five comments, the error paths, a clean and
//! an abrupt disconnect), then checks the exact values of its Prometheus series, lints them with
//! `promtool`, stops it with SIGTERM and checks every JSON log line it wrote.
//!
//! Outputs: `target/e2e/realtime_server_metrics.txt` (the last scrape) and
//! `target/e2e/realtime_server_stdout.jsonl` (everything the example wrote to stdout).

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use super::{
    App, POLL_INTERVAL, Response, SERVICE, STARTUP_TIMEOUT, http_get, http_request, is_rfc3339_utc, parse_sample_value,
    promtool_check, realtime_env, tail,
};
use crate::json::{self, Value};
use crate::ws::{self, Closed, Message, WsClient};
use crate::{build_example, target_dir};

/// The example's name, as cargo knows it.
const EXAMPLE: &str = "realtime_server";
/// `VIGIL_ENV`, expected as the `environment` label and log field.
const ENVIRONMENT: &str = "ci";
/// How long a WebSocket client waits for an expected frame.
const WS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client listens, after its five events, to make sure no sixth arrives.
const QUIET_PERIOD: Duration = Duration::from_millis(300);
/// How long to wait for `websocket_connections` to drop to 0 once both clients left.
const GAUGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the example may take to exit after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// The video the traffic targets (one the example seeds).
const VIDEO: u64 = 1;
/// Comments posted.
const COMMENTS: u64 = 5;
/// The comments route, as the HTTP layer labels it.
const COMMENTS_ROUTE: &str = "/api/videos/{video_id}/comments";
/// The WebSocket channel label.
const CHANNEL: &str = "comments";
/// The log message of a created comment.
const CREATED_MESSAGE: &str = "Comment created";

/// Where this stage saves what it saw.
struct Files {
    /// The last `/metrics` scrape.
    metrics: PathBuf,
    /// The example's stdout.
    stdout: PathBuf,
}

impl Files {
    /// "see `<file>` and `<file>`", naming the files that exist.
    fn pointer(&self) -> String {
        let saved: Vec<String> = [
            ("the last /metrics scrape", &self.metrics),
            ("the example's stdout", &self.stdout),
        ]
        .into_iter()
        .filter(|(_, path)| path.is_file())
        .map(|(what, path)| format!("{what} is in {}", path.display()))
        .collect();
        if saved.is_empty() {
            "nothing was saved".to_owned()
        } else {
            saved.join("; ")
        }
    }
}

/// A comment the traffic created, and how.
#[derive(Debug, Clone)]
struct Created {
    /// 1-based position in the posting order.
    n: u64,
    /// The id the API answered.
    id: u64,
    /// The user that posted it.
    user_id: u64,
    /// Which client posted it: 1 sends its own `x-request-id`, 2 lets the server make one.
    client: u8,
    /// The `x-request-id` the response carried.
    request_id: String,
}

/// What the run produced, for the log check and the summary.
struct Traffic {
    /// The comments created, in order.
    comments: Vec<Created>,
    /// The metrics check's counts.
    metrics: MetricsReport,
    /// How the server took client 1's close frame.
    closed: Closed,
}

/// Runs the stage.
///
/// # Errors
///
/// When any step fails; the message says what was expected, what was seen, and where the saved
/// files are.
pub(super) fn run(promtool: &Path) -> Result<()> {
    let binary = build_example("e2e", EXAMPLE, false)?;
    let out_dir = target_dir().join("e2e");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let files = Files {
        metrics: out_dir.join("realtime_server_metrics.txt"),
        stdout: out_dir.join("realtime_server_stdout.jsonl"),
    };
    for stale in [&files.metrics, &files.stdout] {
        match fs::remove_file(stale) {
            Err(err) if err.kind() != ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("removing {}", stale.display()));
            }
            _ => {}
        }
    }

    let (api_port, metrics_port) = two_free_ports()?;
    let mut envs = realtime_env(api_port, metrics_port, ENVIRONMENT, "sqlite::memory:");
    envs.push(("HTTP_ACCESS_LOG", "true".to_owned()));
    let mut app = App::start(&binary, &envs)?;
    let outcome = exercise(&mut app, api_port, metrics_port, promtool, &files.metrics).and_then(|traffic| {
        let status = app.terminate(SHUTDOWN_TIMEOUT)?;
        Ok((traffic, status))
    });
    let pid = app.pid;
    let stdout = app.stop();
    fs::write(&files.stdout, &stdout).with_context(|| format!("writing {}", files.stdout.display()))?;
    let (traffic, status) = match outcome {
        Ok(done) => done,
        Err(err) => {
            eprintln!("{}", tail(&stdout, 30));
            return Err(err.context(format!("e2e realtime_server failed ({})", files.pointer())));
        }
    };
    if status.code() != Some(0) {
        eprintln!("{}", tail(&stdout, 30));
        bail!(
            "e2e realtime_server: after SIGTERM the example exited with {status}, expected exit status 0 ({})",
            files.pointer()
        );
    }
    let logs = check_logs(&stdout, pid, &traffic.comments)
        .with_context(|| format!("e2e realtime_server: log check failed ({})", files.pointer()))?;

    println!("first \"{CREATED_MESSAGE}\" log line:\n  {}", logs.first_created_line);
    println!(
        "e2e realtime_server: ok ({} samples in {} metric families, all labelled service=\"{SERVICE}\" \
         environment=\"{ENVIRONMENT}\" first, {} exact series checks passed; 2 WebSocket clients each got a pong \
         and {COMMENTS}/{COMMENTS} comment_created in order, client 1 sent close 1000 ({}), client 2 dropped; \
         {} JSON log lines, {} \"{CREATED_MESSAGE}\", {} access-log lines, exit 0 after SIGTERM)",
        traffic.metrics.samples,
        traffic.metrics.families,
        traffic.metrics.checks,
        describe_close(traffic.closed),
        logs.lines,
        logs.created_lines,
        logs.access_lines,
    );
    Ok(())
}

/// How the server took client 1's close frame, for messages.
fn describe_close(closed: Closed) -> String {
    match closed {
        Closed::Answered(Some(code)) => format!("the server answered close {code}"),
        Closed::Answered(None) => "the server answered with a close frame without a code".to_owned(),
        Closed::NotAnswered => "WARNING: the server closed the TCP connection without answering the close frame, \
                                 which RFC 6455 section 5.5.1 requires"
            .to_owned(),
    }
}

/// Two distinct free loopback ports (both listeners are held while the second is chosen).
fn two_free_ports() -> Result<(u16, u16)> {
    let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0 to find a free port")?;
    let second = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0 to find a free port")?;
    Ok((first.local_addr()?.port(), second.local_addr()?.port()))
}

/// Everything done while the example runs: wait, traffic, scrape, lint, metric values.
fn exercise(app: &mut App, api_port: u16, metrics_port: u16, promtool: &Path, metrics_file: &Path) -> Result<Traffic> {
    wait_listening(app, &[("PORT", api_port), ("PROMETHEUS_PORT", metrics_port)])?;
    let (comments, closed) = drive_traffic(api_port)?;
    ensure!(
        !matches!(closed, Closed::NotAnswered),
        "WebSocket client 1 sent a close frame (1000) and the server closed the TCP connection without \
         answering it, which RFC 6455 section 5.5.1 requires"
    );
    let body = wait_for_gauge_zero(app, metrics_port, metrics_file)?;
    promtool_check(promtool, metrics_file)?;
    let mut metrics = check_metrics(&body).with_context(|| format!("checking {}", metrics_file.display()))?;
    metrics.checks += check_vm_metrics(&body).with_context(|| format!("checking {}", metrics_file.display()))?;
    Ok(Traffic {
        comments,
        metrics,
        closed,
    })
}

/// Waits until every port accepts TCP connections, within [`STARTUP_TIMEOUT`] in total.
fn wait_listening(app: &mut App, ports: &[(&str, u16)]) -> Result<()> {
    let started = Instant::now();
    for (what, port) in ports {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        eprintln!("waiting for {addr} ({what}) to accept connections");
        loop {
            if let Some(status) = app.child.try_wait()? {
                bail!("the example exited ({status}) before {addr} ({what}) accepted connections");
            }
            let Err(last) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
                break;
            };
            ensure!(
                started.elapsed() < STARTUP_TIMEOUT,
                "expected {addr} ({what}) to accept connections within {STARTUP_TIMEOUT:?}; last attempt: {last}"
            );
            thread::sleep(POLL_INTERVAL);
        }
    }
    eprintln!(
        "both ports accept connections after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Fails unless `response` has status `expected`; the message shows the body.
fn expect_status(what: &str, response: &Response, expected: u16) -> Result<()> {
    ensure!(
        response.status == expected,
        "{what}: expected HTTP {expected}, got {} with body {:?}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    Ok(())
}

/// Parses a response body as JSON.
fn json_body(what: &str, response: &Response) -> Result<Value> {
    let text = std::str::from_utf8(&response.body).with_context(|| format!("{what}: the body is not UTF-8"))?;
    json::parse(text).with_context(|| format!("{what}: expected a JSON body, got {text:?}"))
}

/// The traffic: health, two subscribers with ping/pong, five comments pushed to both, the
/// listing, the error paths, then one clean close and one abrupt disconnect. Returns the comments
/// and how the server took the close frame.
fn drive_traffic(port: u16) -> Result<(Vec<Created>, Closed)> {
    let health = http_get(port, "/health").context("GET /health")?;
    expect_status("GET /health", &health, 200)?;

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let path = format!("/ws/videos/{VIDEO}");
    let mut clients = [
        WsClient::connect("ws client 1", addr, &path, WS_TIMEOUT)?,
        WsClient::connect("ws client 2", addr, &path, WS_TIMEOUT)?,
    ];
    // A pong proves the server's socket task runs, so it is subscribed before any comment.
    for client in &mut clients {
        ping_pong(client)?;
    }

    let comments = (1..=COMMENTS)
        .map(|n| post_comment(port, n))
        .collect::<Result<Vec<_>>>()?;
    for client in &mut clients {
        expect_comment_events(client, &comments)?;
    }

    let what = format!("GET /api/videos/{VIDEO}/comments");
    let listing = http_get(port, &format!("/api/videos/{VIDEO}/comments")).with_context(|| what.clone())?;
    expect_status(&what, &listing, 200)?;
    let ids: Vec<Option<u64>> = match json_body(&what, &listing)? {
        Value::Array(items) => items.iter().map(|c| c.get("id").and_then(Value::as_u64)).collect(),
        other => bail!("{what}: expected a JSON array of {COMMENTS} comments, got {other:?}"),
    };
    let expected_ids: Vec<Option<u64>> = comments.iter().map(|c| Some(c.id)).collect();
    ensure!(
        ids == expected_ids,
        "{what}: expected {COMMENTS} comments with the ids {expected_ids:?} in order, got ids {ids:?}"
    );

    check_error_paths(port)?;

    let [first, second] = clients;
    let name = first.name().to_owned();
    let closed = first
        .close(ws::CLOSE_NORMAL, WS_TIMEOUT)
        .with_context(|| format!("{name}: clean close"))?;
    eprintln!("{name}: sent close 1000; {}", describe_close(closed));
    eprintln!("{}: dropping the TCP connection without a close frame", second.name());
    second.drop_abruptly();
    Ok((comments, closed))
}

/// Sends `{"event":"ping"}` and expects the next message to be a text frame with `"event":"pong"`.
fn ping_pong(client: &mut WsClient) -> Result<()> {
    client.send_text(r#"{"event":"ping"}"#)?;
    let name = client.name().to_owned();
    match client.recv(WS_TIMEOUT)? {
        Some(Message::Text(text)) => {
            let event = json::parse(&text)
                .ok()
                .and_then(|v| v.get("event").and_then(Value::as_str).map(str::to_owned));
            ensure!(
                event.as_deref() == Some("pong"),
                "{name}: sent {{\"event\":\"ping\"}}, expected a text frame with \"event\":\"pong\", got {text:?}"
            );
            Ok(())
        }
        Some(other) => {
            bail!("{name}: sent {{\"event\":\"ping\"}}, expected a text frame with \"event\":\"pong\", got {other:?}")
        }
        None => bail!(
            "{name}: sent {{\"event\":\"ping\"}}, expected a text frame with \"event\":\"pong\" within {WS_TIMEOUT:?}, got nothing"
        ),
    }
}

/// Posts comment `n`: odd ones as client 1 (with `x-request-id: e2e-request-<n>`), even ones as
/// client 2 (no request id: the server makes one).
fn post_comment(port: u16, n: u64) -> Result<Created> {
    let client: u8 = if n % 2 == 1 { 1 } else { 2 };
    let own_id = format!("e2e-request-{n}");
    let mut headers = vec![("Content-Type", "application/json")];
    if client == 1 {
        headers.push(("x-request-id", own_id.as_str()));
    }
    let path = format!("/api/videos/{VIDEO}/comments");
    let body = format!(r#"{{"user_id": {n}, "body": "comment {n}"}}"#);
    let what = format!("POST {path} {body} (comment {n}, client {client})");
    let response = http_request(port, "POST", &path, &headers, Some(body.as_bytes())).with_context(|| what.clone())?;
    expect_status(&what, &response, 201)?;
    let comment = json_body(&what, &response)?;
    let id = comment.get("id").and_then(Value::as_u64);
    let Some(id) = id else {
        bail!("{what}: expected a JSON object whose \"id\" is a number, got {comment:?}")
    };
    let expected_body = format!("comment {n}");
    for (key, ok) in [
        ("user_id", comment.get("user_id").and_then(Value::as_u64) == Some(n)),
        (
            "video_id",
            comment.get("video_id").and_then(Value::as_u64) == Some(VIDEO),
        ),
        (
            "body",
            comment.get("body").and_then(Value::as_str) == Some(&expected_body),
        ),
    ] {
        ensure!(ok, "{what}: the created comment's {key:?} is wrong: {comment:?}");
    }
    let echoed = response.header("x-request-id").unwrap_or_default().to_owned();
    if client == 1 {
        ensure!(
            echoed == own_id,
            "{what}: sent x-request-id: {own_id}, expected the response to echo it, got {:?}",
            response.header("x-request-id")
        );
    } else {
        ensure!(
            !echoed.is_empty(),
            "{what}: expected the response to carry the x-request-id the server generated, got none"
        );
    }
    Ok(Created {
        n,
        id,
        user_id: n,
        client,
        request_id: echoed,
    })
}

/// Expects exactly one `comment_created` text frame per comment, in order, and nothing more.
fn expect_comment_events(client: &mut WsClient, comments: &[Created]) -> Result<()> {
    let name = client.name().to_owned();
    for (index, comment) in comments.iter().enumerate() {
        let expected = format!(
            "a text frame with \"event\":\"comment_created\" and payload.id {} ({} of {})",
            comment.id,
            index + 1,
            comments.len()
        );
        let text = match client.recv(WS_TIMEOUT)? {
            Some(Message::Text(text)) => text,
            Some(other) => bail!("{name}: expected {expected}, got {other:?}"),
            None => bail!("{name}: expected {expected} within {WS_TIMEOUT:?}, got nothing"),
        };
        let event = json::parse(&text).ok();
        let kind = event.as_ref().and_then(|e| e.get("event")).and_then(Value::as_str);
        let id = event
            .as_ref()
            .and_then(|e| e.get("payload"))
            .and_then(|p| p.get("id"))
            .and_then(Value::as_u64);
        ensure!(
            kind == Some("comment_created") && id == Some(comment.id),
            "{name}: expected {expected}, got {text:?}"
        );
    }
    match client.recv(QUIET_PERIOD)? {
        None => Ok(()),
        Some(extra) => bail!(
            "{name}: expected exactly {} comment_created frames, got one more message: {extra:?}",
            comments.len()
        ),
    }
}

/// The error paths: bad JSON, a blank body, an unknown video, an unknown route.
fn check_error_paths(port: u16) -> Result<()> {
    let comments = format!("/api/videos/{VIDEO}/comments");
    let cases: [(&str, &str, Option<&str>, u16); 4] = [
        ("POST", &comments, Some("not json"), 400),
        ("POST", &comments, Some(r#"{"user_id": 1, "body": "  "}"#), 422),
        (
            "POST",
            "/api/videos/999/comments",
            Some(r#"{"user_id": 1, "body": "comment 999"}"#),
            404,
        ),
        ("GET", "/no/such/path", None, 404),
    ];
    for (method, path, body, expected) in cases {
        let what = match body {
            Some(body) => format!("{method} {path} {body}"),
            None => format!("{method} {path}"),
        };
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        let response =
            http_request(port, method, path, headers, body.map(str::as_bytes)).with_context(|| what.clone())?;
        expect_status(&what, &response, expected)?;
        if path.starts_with("/api/") {
            let error = json_body(&what, &response)?;
            ensure!(
                error.get("error").and_then(Value::as_str).is_some(),
                "{what}: expected a JSON body {{\"error\": <text>}}, got {error:?}"
            );
        }
    }
    Ok(())
}

/// One parsed sample line.
struct Sample {
    /// The metric name.
    name: String,
    /// The labels, in order.
    labels: Vec<(String, String)>,
    /// The value, parsed.
    value: Option<f64>,
    /// The line as scraped.
    line: String,
}

/// Parses every sample line of a scrape.
fn parse_samples(body: &str) -> Result<Vec<Sample>> {
    body.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, labels, value) =
                parse_sample_value(line).with_context(|| format!("bad sample line {line:?}"))?;
            Ok(Sample {
                name,
                labels,
                value: value.parse().ok(),
                line: line.to_owned(),
            })
        })
        .collect()
}

/// The labels every sample must start with, in this order.
fn global_labels() -> [(&'static str, &'static str); 2] {
    [("service", SERVICE), ("environment", ENVIRONMENT)]
}

/// `name{service="..",environment="..",own..}` as Prometheus writes it.
fn series(name: &str, own: &[(&str, &str)]) -> String {
    let labels: Vec<String> = global_labels()
        .iter()
        .chain(own)
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// The sample named `name` whose labels are exactly the global ones followed by `own`, in order.
fn lookup<'a>(samples: &'a [Sample], name: &str, own: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && s.labels.len() == 2 + own.len()
            && s.labels
                .iter()
                .zip(global_labels().iter().chain(own))
                .all(|((k, v), (ek, ev))| k == ek && v == ev)
    })
}

/// The value of the series, if scraped.
fn value_of(samples: &[Sample], name: &str, own: &[(&str, &str)]) -> Option<f64> {
    lookup(samples, name, own).and_then(|s| s.value)
}

/// Polls `/metrics` until `websocket_connections{..,channel="comments"}` is 0 (both clients are
/// gone), within [`GAUGE_TIMEOUT`]; saves the last scrape to `metrics_file` and returns it.
fn wait_for_gauge_zero(app: &mut App, port: u16, metrics_file: &Path) -> Result<String> {
    let gauge = [("channel", CHANNEL)];
    let wanted = series("websocket_connections", &gauge);
    eprintln!("waiting up to {GAUGE_TIMEOUT:?} for {wanted} to be 0");
    let started = Instant::now();
    loop {
        if let Some(status) = app.child.try_wait()? {
            bail!("the example exited ({status}) while /metrics was being scraped");
        }
        let response = http_get(port, "/metrics").context("GET /metrics")?;
        expect_status("GET /metrics", &response, 200)?;
        let body = String::from_utf8(response.body).context("GET /metrics: the body is not UTF-8")?;
        fs::write(metrics_file, &body).with_context(|| format!("writing {}", metrics_file.display()))?;
        let samples = parse_samples(&body).with_context(|| format!("parsing {}", metrics_file.display()))?;
        let seen = value_of(&samples, "websocket_connections", &gauge);
        if seen == Some(0.0) {
            eprintln!(
                "{wanted} is 0 after {:.1}s; scrape saved to {}",
                started.elapsed().as_secs_f64(),
                metrics_file.display()
            );
            return Ok(body);
        }
        ensure!(
            started.elapsed() < GAUGE_TIMEOUT,
            "expected {wanted} 0 within {GAUGE_TIMEOUT:?} of both WebSocket clients leaving, got {} \
             (the last scrape is in {})",
            seen.map_or_else(|| "no such sample".to_owned(), |v| v.to_string()),
            metrics_file.display()
        );
        thread::sleep(POLL_INTERVAL);
    }
}

/// What the metrics check counted.
#[derive(Debug)]
struct MetricsReport {
    /// Sample lines.
    samples: usize,
    /// `# TYPE` lines.
    families: usize,
    /// Series whose value was checked.
    checks: usize,
}

/// Every sample starts with the global labels; the listed series have exactly these values.
fn check_metrics(body: &str) -> Result<MetricsReport> {
    let samples = parse_samples(body)?;
    let families = body.lines().filter(|l| l.trim_start().starts_with("# TYPE ")).count();
    let mislabelled: Vec<&str> = samples
        .iter()
        .filter(|s| {
            s.labels.len() < 2
                || s.labels
                    .iter()
                    .zip(global_labels())
                    .any(|((k, v), (ek, ev))| k != ek || v != ev)
        })
        .map(|s| s.line.as_str())
        .collect();
    ensure!(
        mislabelled.is_empty(),
        "expected every sample to start with the labels service=\"{SERVICE}\",environment=\"{ENVIRONMENT}\" \
         in that order; {} of {} do not, for example:\n  {}",
        mislabelled.len(),
        samples.len(),
        mislabelled.iter().take(5).copied().collect::<Vec<_>>().join("\n  ")
    );

    let expectations = expectations();
    let mut problems = Vec::new();
    for Expectation { name, own, value } in &expectations {
        let wanted = series(name, own);
        match (lookup(&samples, name, own), value) {
            (None, _) => {
                let same_name: Vec<&str> = samples
                    .iter()
                    .filter(|s| s.name == *name)
                    .map(|s| s.line.as_str())
                    .take(8)
                    .collect();
                problems.push(format!(
                    "expected the sample {wanted}, found none; samples named {name}: {}",
                    if same_name.is_empty() {
                        "none".to_owned()
                    } else {
                        format!("\n      {}", same_name.join("\n      "))
                    }
                ));
            }
            (Some(sample), Some(expected)) => {
                if sample.value.is_none_or(|v| (v - expected).abs() > 1e-9) {
                    problems.push(format!("expected {wanted} {expected}, got: {}", sample.line));
                }
            }
            (Some(_), None) => {}
        }
    }
    ensure!(
        problems.is_empty(),
        "{} of {} series checks failed:\n  {}",
        problems.len(),
        expectations.len(),
        problems.join("\n  ")
    );
    Ok(MetricsReport {
        samples: samples.len(),
        families,
        checks: expectations.len(),
    })
}

/// The VM series (`vigil-vm`, sampled as soon as `vigil::init` returns) that must be above 0,
/// with their own labels; the Linux-only ones are checked on Linux.
fn vm_expectations() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let mut wanted = vec![
        ("process_memory_resident_bytes", vec![]),
        ("process_memory_virtual_bytes", vec![]),
        ("process_start_time_seconds", vec![]),
        ("system_memory_total_bytes", vec![]),
        ("system_memory_used_bytes", vec![]),
        ("tokio_workers", vec![]),
    ];
    if cfg!(target_os = "linux") {
        wanted.push(("process_threads", vec![]));
        wanted.push(("process_open_fds", vec![]));
    }
    wanted
}

/// The VM series are served with the global labels and plausible values: those of
/// [`vm_expectations`] above 0, `system_load` at or above 0 for each period (Unix), and
/// `tokio_tasks_alive` and `tokio_queue_depth` present. Returns the number of series checked.
fn check_vm_metrics(body: &str) -> Result<usize> {
    let samples = parse_samples(body)?;
    let mut problems = Vec::new();
    let mut checks = 0;
    let mut check = |name: &str, own: &[(&str, &str)], min: f64, strictly: bool| {
        checks += 1;
        let wanted = series(name, own);
        match lookup(&samples, name, own).map(|s| (s.value, &s.line)) {
            None => problems.push(format!("expected the VM sample {wanted}, found none")),
            Some((Some(v), _)) if v > min || (!strictly && v >= min) => {}
            Some((_, line)) => problems.push(format!(
                "expected {wanted} {} {min}, got: {line}",
                if strictly { ">" } else { ">=" }
            )),
        }
    };
    for (name, own) in vm_expectations() {
        check(name, &own, 0.0, true);
    }
    if cfg!(unix) {
        for period in ["1m", "5m", "15m"] {
            check("system_load", &[("period", period)], 0.0, false);
        }
    }
    check("tokio_tasks_alive", &[], 0.0, false);
    check("tokio_queue_depth", &[], 0.0, false);
    ensure!(
        problems.is_empty(),
        "{} of {checks} VM series checks failed (is the `vm` feature on for the example?):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    Ok(checks)
}

/// One series the metrics check looks up, and the value it must have.
struct Expectation {
    /// The metric name.
    name: &'static str,
    /// Its own labels, after the global ones.
    own: Vec<(&'static str, &'static str)>,
    /// The exact value; `None`: the sample must exist, with any value.
    value: Option<f64>,
}

/// The series the traffic must have produced, with their exact values.
fn expectations() -> Vec<Expectation> {
    let comments = |method: &'static str, status: &'static str| {
        vec![("route", COMMENTS_ROUTE), ("method", method), ("status", status)]
    };
    let post_201 = comments("POST", "201");
    let mut post_201_inf = post_201.clone();
    post_201_inf.push(("le", "+Inf"));
    let channel = vec![("channel", CHANNEL)];
    let messages = |event: &'static str, direction: &'static str| {
        vec![("channel", CHANNEL), ("event", event), ("direction", direction)]
    };
    let total = "http_request_total";
    let expect = |name, own, value| Expectation { name, own, value };
    vec![
        expect(total, post_201.clone(), Some(5.0)),
        expect(total, comments("POST", "400"), Some(1.0)),
        expect(total, comments("POST", "422"), Some(1.0)),
        expect(total, comments("POST", "404"), Some(1.0)),
        expect(total, comments("GET", "200"), Some(1.0)),
        expect(
            total,
            vec![("route", "unmatched"), ("method", "GET"), ("status", "404")],
            Some(1.0),
        ),
        expect(
            total,
            vec![("route", "/health"), ("method", "GET"), ("status", "200")],
            Some(1.0),
        ),
        expect("http_request_duration_seconds_bucket", post_201_inf, Some(5.0)),
        expect("http_request_duration_seconds_sum", post_201.clone(), None),
        expect("http_request_duration_seconds_count", post_201.clone(), Some(5.0)),
        expect("http_response_size_bytes_count", post_201, None),
        expect("http_request_in_flight", vec![], Some(0.0)),
        expect(
            "websocket_messages_total",
            messages("comment_created", "out"),
            Some(10.0),
        ),
        expect("websocket_messages_total", messages("ping", "in"), Some(2.0)),
        expect("websocket_messages_total", messages("pong", "out"), Some(2.0)),
        expect("websocket_connections", channel.clone(), Some(0.0)),
        expect("websocket_connection_duration_seconds_count", channel, Some(2.0)),
        expect("comments_created_total", vec![], Some(5.0)),
        // Database telemetry: sqlx's query events classified, and the pool sampled.
        expect(
            "database_query_total",
            vec![("source", "comments"), ("operation", "insert")],
            Some(5.0),
        ),
        expect(
            "database_query_total",
            vec![("source", "comments"), ("operation", "select")],
            Some(1.0),
        ),
        expect(
            "database_query_duration_seconds_count",
            vec![("source", "comments"), ("operation", "insert")],
            Some(5.0),
        ),
        expect("database_pool_max", vec![("pool", "main")], Some(1.0)),
        expect("database_pool_size", vec![("pool", "main")], None),
    ]
}

/// What the log check found.
#[derive(Debug)]
struct LogReport {
    /// Lines, all JSON objects.
    lines: usize,
    /// "Comment created" lines.
    created_lines: usize,
    /// Access-log lines.
    access_lines: usize,
    /// The first "Comment created" line, as written.
    first_created_line: String,
}

/// Checks the complete stdout of the stopped example: one JSON object per line, one
/// "Comment created" line per comment with the right fields, access-log lines, "Stopped" last.
fn check_logs(stdout: &[u8], pid: u32, comments: &[Created]) -> Result<LogReport> {
    let text = std::str::from_utf8(stdout).context("stdout is not UTF-8")?;
    ensure!(!text.is_empty(), "expected JSON log lines on stdout, got nothing");
    let Some(complete) = text.strip_suffix('\n') else {
        bail!(
            "expected stdout to end with a newline (the example exited by itself), but the last line is cut: {:?}",
            text.rsplit('\n').next().unwrap_or_default()
        )
    };
    let mut report = LogReport {
        lines: 0,
        created_lines: 0,
        access_lines: 0,
        first_created_line: String::new(),
    };
    let mut problems = Vec::new();
    let mut seen_ids = Vec::new();
    let mut last_message = None;
    for (index, line) in complete.split('\n').enumerate() {
        let number = index + 1;
        let value = match json::parse(line) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => bail!("expected every stdout line to be a JSON object; line {number} is not: {line:?}"),
            Err(err) => bail!("expected every stdout line to be a JSON object; line {number} is not ({err}): {line:?}"),
        };
        let duplicates = value.duplicate_keys();
        ensure!(
            duplicates.is_empty(),
            "stdout line {number} repeats the keys {duplicates:?}: {line:?}"
        );
        report.lines += 1;
        let message = value.get("message").and_then(Value::as_str);
        last_message = message.map(str::to_owned);
        if message == Some(CREATED_MESSAGE) {
            report.created_lines += 1;
            if report.created_lines == 1 {
                line.clone_into(&mut report.first_created_line);
            }
            match check_created_line(&value, pid, comments) {
                Ok(id) => seen_ids.push(id),
                Err(err) => problems.push(format!("line {number}: {err:#}\n      {line}")),
            }
        }
        let target = value.get("target").and_then(Value::as_str);
        if target == Some("vigil::access") && message == Some("request completed") {
            report.access_lines += 1;
            if value.get("status").is_none() {
                problems.push(format!(
                    "line {number}: access-log line without a \"status\" field\n      {line}"
                ));
            }
        }
    }
    if report.created_lines != comments.len() {
        problems.push(format!(
            "expected exactly {} lines with \"message\": {CREATED_MESSAGE:?}, got {}",
            comments.len(),
            report.created_lines
        ));
    }
    for comment in comments {
        let times = seen_ids.iter().filter(|id| **id == comment.id).count();
        if times != 1 {
            problems.push(format!(
                "expected one {CREATED_MESSAGE:?} line for comment_id {} (comment {}), got {times}",
                comment.id, comment.n
            ));
        }
    }
    if report.access_lines == 0 {
        problems.push(
            "expected access-log lines (\"target\": \"vigil::access\", \"message\": \"request completed\") since \
             HTTP_ACCESS_LOG=true, got none"
                .to_owned(),
        );
    }
    if last_message.as_deref() != Some("Stopped") {
        problems.push(format!(
            "expected the last line's \"message\" to be \"Stopped\", got {last_message:?}"
        ));
    }
    ensure!(
        problems.is_empty(),
        "{} problem(s) in {} JSON log lines:\n  {}",
        problems.len(),
        report.lines,
        problems.join("\n  ")
    );
    Ok(report)
}

/// Checks one "Comment created" line against the comment it names; returns its `comment_id`.
fn check_created_line(value: &Value, pid: u32, comments: &[Created]) -> Result<u64> {
    let string = |key: &str| -> Result<&str> {
        value
            .get(key)
            .with_context(|| format!("missing key {key:?}"))?
            .as_str()
            .with_context(|| format!("{key:?} is not a string"))
    };
    let number = |key: &str| -> Result<u64> {
        value
            .get(key)
            .with_context(|| format!("missing key {key:?}"))?
            .as_u64()
            .with_context(|| format!("{key:?} is not a non-negative integer"))
    };
    let timestamp = string("timestamp")?;
    ensure!(
        is_rfc3339_utc(timestamp),
        "\"timestamp\" {timestamp:?} is not RFC 3339 UTC"
    );
    for (key, expected) in [
        ("level", "info"),
        ("service", SERVICE),
        ("environment", ENVIRONMENT),
        ("route", COMMENTS_ROUTE),
        ("method", "POST"),
    ] {
        let actual = string(key)?;
        ensure!(actual == expected, "expected {key:?} {expected:?}, got {actual:?}");
    }
    let logged_pid = number("pid")?;
    ensure!(
        logged_pid == u64::from(pid),
        "expected \"pid\" {pid} (the child's pid), got {logged_pid}"
    );
    let video_id = number("video_id")?;
    ensure!(video_id == VIDEO, "expected \"video_id\" {VIDEO}, got {video_id}");
    let comment_id = number("comment_id")?;
    let Some(comment) = comments.iter().find(|c| c.id == comment_id) else {
        bail!(
            "\"comment_id\" {comment_id} is none of the created ids {:?}",
            comments.iter().map(|c| c.id).collect::<Vec<_>>()
        )
    };
    let user_id = number("user_id")?;
    ensure!(
        user_id == comment.user_id,
        "expected \"user_id\" {} for comment_id {comment_id}, got {user_id}",
        comment.user_id
    );
    let request_id = string("request_id")?;
    let how = if comment.client == 1 {
        "client 1 sent it as x-request-id"
    } else {
        "the response to client 2 carried it as x-request-id"
    };
    ensure!(
        request_id == comment.request_id,
        "expected \"request_id\" {:?} ({how}) for comment_id {comment_id}, got {request_id:?}",
        comment.request_id
    );
    Ok(comment_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(n: u64, id: u64, client: u8, request_id: &str) -> Created {
        Created {
            n,
            id,
            user_id: n,
            client,
            request_id: request_id.to_owned(),
        }
    }

    const PID: u32 = 4242;

    fn created_line(n: u64, id: u64, request_id: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-01-02T03:04:05.6Z","level":"info","message":"Comment created","target":"vigil::logger","service":"realtime_server","environment":"ci","pid":4242,"user_id":{n},"comment_id":{id},"video_id":1,"request_id":"{request_id}","method":"POST","route":"/api/videos/{{video_id}}/comments"}}"#
        )
    }

    fn stdout(lines: &[String]) -> String {
        let mut out = String::new();
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    #[test]
    fn logs() {
        let comments = [created(1, 10, 1, "e2e-request-1"), created(2, 11, 2, "abc")];
        let access = r#"{"level":"info","message":"request completed","target":"vigil::access","status":"201"}"#;
        let stopped = r#"{"level":"info","message":"Stopped","target":"vigil::logger"}"#;
        let good = vec![
            created_line(1, 10, "e2e-request-1"),
            access.to_owned(),
            created_line(2, 11, "abc"),
            stopped.to_owned(),
        ];
        let report = check_logs(stdout(&good).as_bytes(), PID, &comments).unwrap();
        assert_eq!((report.lines, report.created_lines, report.access_lines), (4, 2, 1));

        let check = |lines: &[String]| {
            check_logs(stdout(lines).as_bytes(), PID, &comments)
                .unwrap_err()
                .to_string()
        };
        let mut bad = good.clone();
        bad[0] = created_line(1, 10, "e2e-request-9");
        assert!(check(&bad).contains("e2e-request-1"));
        bad = good.clone();
        bad.swap(2, 3);
        assert!(check(&bad).contains("\"Stopped\""));
        bad = good.clone();
        bad.remove(1);
        assert!(check(&bad).contains("access-log"));
        bad = good.clone();
        bad[1] = access.replace(r#","status":"201""#, "");
        assert!(check(&bad).contains("status"));
        bad = good.clone();
        bad.insert(1, created_line(1, 10, "e2e-request-1"));
        assert!(check(&bad).contains("exactly 2"));
        bad = good.clone();
        bad[2] = bad[2].replace("\"pid\":4242", "\"pid\":1");
        assert!(check(&bad).contains("pid"));
        bad = good.clone();
        bad[2] = bad[2].replace("\"user_id\":2", "\"user_id\":3");
        assert!(check(&bad).contains("user_id"));
        bad = good.clone();
        bad.insert(0, "not json".to_owned());
        assert!(check(&bad).contains("JSON object"));
        let cut = format!("{}{{\"cut", stdout(&good));
        assert!(check_logs(cut.as_bytes(), PID, &comments).is_err());
    }

    #[test]
    fn metrics() {
        let g = r#"service="realtime_server",environment="ci""#;
        let route = r#"route="/api/videos/{video_id}/comments""#;
        let ws = r#"channel="comments""#;
        let good = format!(
            "# TYPE http_request_total counter
http_request_total{{{g},{route},method=\"POST\",status=\"201\"}} 5
http_request_total{{{g},{route},method=\"POST\",status=\"400\"}} 1
http_request_total{{{g},{route},method=\"POST\",status=\"422\"}} 1
http_request_total{{{g},{route},method=\"POST\",status=\"404\"}} 1
http_request_total{{{g},{route},method=\"GET\",status=\"200\"}} 1
http_request_total{{{g},route=\"unmatched\",method=\"GET\",status=\"404\"}} 1
http_request_total{{{g},route=\"/health\",method=\"GET\",status=\"200\"}} 1
http_request_duration_seconds_bucket{{{g},{route},method=\"POST\",status=\"201\",le=\"+Inf\"}} 5
http_request_duration_seconds_sum{{{g},{route},method=\"POST\",status=\"201\"}} 0.01
http_request_duration_seconds_count{{{g},{route},method=\"POST\",status=\"201\"}} 5
http_response_size_bytes_count{{{g},{route},method=\"POST\",status=\"201\"}} 5
http_request_in_flight{{{g}}} 0
websocket_messages_total{{{g},{ws},event=\"comment_created\",direction=\"out\"}} 10
websocket_messages_total{{{g},{ws},event=\"ping\",direction=\"in\"}} 2
websocket_messages_total{{{g},{ws},event=\"pong\",direction=\"out\"}} 2
websocket_connections{{{g},{ws}}} 0
websocket_connection_duration_seconds_count{{{g},{ws}}} 2
comments_created_total{{{g}}} 5
database_query_total{{{g},source=\"comments\",operation=\"insert\"}} 5
database_query_total{{{g},source=\"comments\",operation=\"select\"}} 1
database_query_duration_seconds_count{{{g},source=\"comments\",operation=\"insert\"}} 5
database_pool_max{{{g},pool=\"main\"}} 1
database_pool_size{{{g},pool=\"main\"}} 1
"
        );
        let report = check_metrics(&good).unwrap();
        assert_eq!((report.samples, report.families, report.checks), (23, 1, 23));

        let wrong_value = good.replace("direction=\"in\"} 2", "direction=\"in\"} 3");
        assert_ne!(wrong_value, good);
        let err = check_metrics(&wrong_value).unwrap_err().to_string();
        assert!(err.contains("direction=\"in\"} 2, got"), "{err}");
        let reordered = good.replace(
            "comments_created_total{service=\"realtime_server\",environment=\"ci\"}",
            "comments_created_total{environment=\"ci\",service=\"realtime_server\"}",
        );
        let err = check_metrics(&reordered).unwrap_err().to_string();
        assert!(err.contains("in that order"), "{err}");
        let extra_label = good.replace("http_request_in_flight{", "http_request_in_flight{x=\"1\",");
        assert!(check_metrics(&extra_label).is_err());
        let missing = good.replace("websocket_connection_duration_seconds_count", "other_count");
        let err = check_metrics(&missing).unwrap_err().to_string();
        assert!(err.contains("found none"), "{err}");
    }

    #[test]
    fn vm_metrics() {
        use std::fmt::Write as _;

        let g = r#"service="realtime_server",environment="ci""#;
        let mut good = String::new();
        for (name, _) in vm_expectations() {
            writeln!(good, "{name}{{{g}}} 3").unwrap();
        }
        for period in ["1m", "5m", "15m"] {
            writeln!(good, "system_load{{{g},period=\"{period}\"}} 0").unwrap();
        }
        writeln!(good, "tokio_tasks_alive{{{g}}} 4\ntokio_queue_depth{{{g}}} 0").unwrap();
        let checks = check_vm_metrics(&good).unwrap();
        assert_eq!(checks, vm_expectations().len() + if cfg!(unix) { 5 } else { 2 });

        let zero = good.replace(&format!("tokio_workers{{{g}}} 3"), &format!("tokio_workers{{{g}}} 0"));
        let err = check_vm_metrics(&zero).unwrap_err().to_string();
        assert!(err.contains("tokio_workers") && err.contains("> 0"), "{err}");
        let missing = good.replace("process_memory_resident_bytes", "other");
        let err = check_vm_metrics(&missing).unwrap_err().to_string();
        assert!(err.contains("found none") && err.contains("vm"), "{err}");
        let unlabelled = good.replace(&format!("tokio_workers{{{g}}}"), "tokio_workers{}");
        assert!(check_vm_metrics(&unlabelled).is_err());
    }

    #[test]
    fn series_text() {
        assert_eq!(
            series("x_total", &[("channel", "comments")]),
            r#"x_total{service="realtime_server",environment="ci",channel="comments"}"#
        );
    }
}
