//! Helpers for the tracer tests: Datadog's real test agent (`ddapm-test-agent`, from `PyPI`) on
//! free loopback ports, a tiny HTTP client for its `/test/*` endpoints, and tracer setup.
//!
//! Without the `ddapm-test-agent` binary the tests print a skip message and return, unless
//! `VIGIL_REQUIRE_DDAPM` is set (as in CI), when they fail. Install it with
//! `pip install ddapm-test-agent`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use vigil_core::Resource;
use vigil_trace_datadog::{DatadogTraceLayer, DatadogTraceLayerBuilder};

/// The checks the agent runs on every payload (and pools, with
/// `DD_POOL_TRACE_CHECK_FAILURES=true`, for `/test/trace_check/failures`).
pub const ENABLED_CHECKS: &str = "trace_count_header,meta_tracer_version_header,trace_content_length";

/// How long the agent may take to start answering.
const START_TIMEOUT: Duration = Duration::from_mins(1);

/// A running `ddapm-test-agent`, killed (by PID) when dropped.
pub struct TestAgent {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

/// Finds the agent binary: `None` (after printing why) when it is missing and not required.
fn agent_binary(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("ddapm-test-agent"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("VIGIL_REQUIRE_DDAPM").is_none(),
            "{test}: ddapm-test-agent is not on PATH and VIGIL_REQUIRE_DDAPM is set (pip install ddapm-test-agent)"
        );
        eprintln!("SKIPPED {test}: ddapm-test-agent is not on PATH (pip install ddapm-test-agent to run it)");
    }
    found
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestAgent {
    /// Whether the agent can be started (prints the skip message when not; panics when it is
    /// missing and required).
    pub fn available(test: &str) -> bool {
        agent_binary(test).is_some()
    }

    /// Starts an agent on a free port; `None` when the binary is missing (see the module docs).
    /// A port taken by someone else between its choice and the agent's start is retried.
    pub fn start(test: &str) -> Option<TestAgent> {
        let binary = agent_binary(test)?;
        for _ in 0..2 {
            if let Ok(agent) = Self::spawn(&binary, free_port()) {
                return Some(agent);
            }
        }
        Some(Self::spawn(&binary, free_port()).unwrap_or_else(|log| panic!("ddapm-test-agent failed:\n{log}")))
    }

    /// Starts an agent on `port`; `None` when the binary is missing.
    pub fn start_on(test: &str, port: u16) -> Option<TestAgent> {
        let binary = agent_binary(test)?;
        Some(Self::spawn(&binary, port).unwrap_or_else(|log| panic!("ddapm-test-agent failed:\n{log}")))
    }

    /// Starts the agent and waits until it answers; the agent's output when it exits early.
    fn spawn(binary: &Path, port: u16) -> Result<TestAgent, String> {
        let log = std::env::temp_dir().join(format!("vigil-ddapm-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            // Its OTLP servers default to fixed ports: give each agent free ones.
            .args(["--otlp-http-port", &free_port().to_string()])
            .args(["--otlp-grpc-port", &free_port().to_string()])
            .env("ENABLED_CHECKS", ENABLED_CHECKS)
            .env("DD_POOL_TRACE_CHECK_FAILURES", "true")
            .env("SNAPSHOT_DIR", std::env::temp_dir())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start ddapm-test-agent");
        let mut agent = TestAgent { child, port, log };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if agent.child.try_wait().unwrap().is_some() {
                return Err(agent.log_text());
            }
            // Ready when it answers and its access log shows that *it* answered (not another
            // process that got the same port).
            if agent.get("/test/traces").0 == 200 && agent.log_text().contains("GET /test/traces") {
                return Ok(agent);
            }
            assert!(
                Instant::now() < deadline,
                "ddapm-test-agent did not answer:\n{}",
                agent.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What the agent printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path`: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr(), path)
    }

    /// Every span received, grouped by trace id (`GET /test/traces`).
    pub fn traces(&self) -> Vec<Vec<Value>> {
        let (status, body) = self.get("/test/traces");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until the agent has received `spans` spans in all (panics after 30 s).
    pub fn wait_for_spans(&self, spans: usize) -> Vec<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let traces = self.traces();
            let n: usize = traces.iter().map(Vec::len).sum();
            if n >= spans {
                return traces;
            }
            assert!(Instant::now() < deadline, "waited for {spans} spans, have {traces:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that no enabled check failed (`/test/trace_check/failures` answers 200).
    pub fn assert_checks_pass(&self) {
        let (status, body) = self.get("/test/trace_check/failures?return_all=true");
        assert_eq!(status, 200, "trace checks failed: {body}");
    }

    /// The trace payloads received (`GET /test/session/requests`), oldest first.
    pub fn payloads(&self) -> Vec<Payload> {
        let (status, body) = self.get("/test/session/requests");
        assert_eq!(status, 200, "{body}");
        let requests: Vec<Value> = serde_json::from_str(&body).unwrap();
        let mut payloads: Vec<Payload> = requests
            .iter()
            .filter(|r| r["url"].as_str().is_some_and(|u| u.ends_with("/v0.4/traces")))
            .map(|r| {
                let body = base64::engine::general_purpose::STANDARD
                    .decode(r["body"].as_str().unwrap())
                    .unwrap();
                Payload {
                    method: r["method"].as_str().unwrap().to_owned(),
                    headers: r["headers"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned()))
                        .collect(),
                    body,
                }
            })
            .collect();
        payloads.reverse();
        payloads
    }

    /// Forgets what was received so far (`GET /test/session/clear`).
    pub fn clear(&self) {
        assert_eq!(self.get("/test/session/clear").0, 200);
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One `PUT /v0.4/traces` the agent received.
#[derive(Debug)]
pub struct Payload {
    pub method: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Payload {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The number of spans of each trace in the msgpack body, decoded independently of the
    /// tracer's encoder.
    pub fn trace_sizes(&self) -> Vec<usize> {
        let traces: Vec<Vec<serde::de::IgnoredAny>> = rmp_serde::from_slice(&self.body).expect("msgpack body");
        traces.iter().map(Vec::len).collect()
    }
}

/// One HTTP/1.1 GET with `Connection: close`: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    if write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    if stream.read_to_end(&mut raw).is_err() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, String::new());
    };
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest.get(n + 2..).unwrap_or_default();
    }
    out
}

/// A tracer builder for `port`, with the test's service and quick retries.
pub fn tracer(port: u16) -> DatadogTraceLayerBuilder {
    DatadogTraceLayer::builder(Resource::new("vigil-test", "test").with_version("0.0.1"))
        .agent("127.0.0.1", port)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Runs `f` with `dispatch` as the default subscriber on this thread.
pub fn with_dispatch<R>(dispatch: &tracing::Dispatch, f: impl FnOnce() -> R) -> R {
    tracing::dispatcher::with_default(dispatch, f)
}

/// A multi-thread tokio runtime (2 workers) whose threads use `dispatch` as their default
/// subscriber.
pub fn runtime_with(dispatch: &tracing::Dispatch) -> tokio::runtime::Runtime {
    let d = Arc::new(dispatch.clone());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // Kept for the thread's life: the runtime's threads end with the runtime.
            std::mem::forget(tracing::dispatcher::set_default(&d));
        })
        .build()
        .unwrap()
}

/// A generous deadline for flushes in tests (never reached when things work).
pub fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// The span named `name` in `trace`.
pub fn span<'a>(trace: &'a [Value], name: &str) -> &'a Value {
    trace
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} in {trace:#?}"))
}

/// The span whose `resource` is `resource` in `trace`.
pub fn by_resource<'a>(trace: &'a [Value], resource: &str) -> &'a Value {
    trace
        .iter()
        .find(|s| s["resource"] == resource)
        .unwrap_or_else(|| panic!("no span with resource {resource} in {trace:#?}"))
}
