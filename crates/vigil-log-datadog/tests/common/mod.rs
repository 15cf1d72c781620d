//! Test helpers: an in-process Datadog logs intake that enforces the documented protocol
//! (written from Datadog's API reference, not from the backend's code), and builders of
//! records.
//!
//! The intake checks every request: `POST /api/v2/logs`, the `DD-API-KEY` header (401 when
//! missing, 403 when wrong), `Content-Type: application/json`, `Content-Encoding: gzip`, a gzip
//! body that inflates to at most 5 MB, a JSON array of 1 to 1000 objects, each at most 1 MB,
//! with a string `message`, a known `status` and a numeric `timestamp`. A request that breaks a
//! rule is answered as Datadog documents it (400 or 413) and recorded as a *violation*: tests
//! assert there are none. A valid request is answered from the script (202 by default) and,
//! when the answer is 2xx, its entries are recorded.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::net::TcpSocket;
use tokio::task::AbortHandle;
use vigil_core::{Level, LogBackend, LogLayer, MemoryLogBackend, Resource};

/// The API key the intake accepts.
pub const API_KEY: &str = "c0ffee5ecret0123456789abcdefdead";

/// Documented limits.
pub const MAX_PAYLOAD: usize = 5_000_000;
pub const MAX_ENTRIES: usize = 1000;
pub const MAX_ENTRY: usize = 1_000_000;

/// What the intake answers to a valid request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// This status.
    Status(u16),
    /// This status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// No answer at all: the request hangs.
    Hang,
}

/// One request the intake saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub status: Option<u16>,
    pub entries: usize,
    pub uncompressed: usize,
    pub api_key: Option<String>,
}

type Responder = Box<dyn FnMut(&[Value]) -> Reply + Send>;

struct State {
    api_key: String,
    script: VecDeque<Reply>,
    responder: Responder,
    entries: Vec<Value>,
    requests: Vec<Seen>,
    violations: Vec<String>,
}

/// The in-test intake. Stopped (and its port closed) when dropped.
pub struct Intake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Intake {
    /// Starts an intake on a free loopback port, accepting [`API_KEY`].
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State {
            api_key: API_KEY.to_owned(),
            script: VecDeque::new(),
            responder: Box::new(|_| Reply::Status(202)),
            entries: Vec::new(),
            requests: Vec::new(),
            violations: Vec::new(),
        }));
        let mut intake = Intake {
            addr: "127.0.0.1:0".parse().unwrap(),
            state,
            runtime: Some(runtime),
            tasks: Arc::default(),
        };
        intake.listen();
        intake
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().unwrap()
    }

    /// Binds `self.addr` (port 0 the first time) and serves it.
    fn listen(&mut self) {
        let addr = self.addr;
        let listener = self.runtime().block_on(async move {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.bind(addr).unwrap();
            socket.listen(128).unwrap()
        });
        self.addr = listener.local_addr().unwrap();
        let state = self.state.clone();
        let tasks = self.tasks.clone();
        let accept = self.runtime().spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                let mut tasks = lock(&tasks);
                tasks.retain(|t| !t.is_finished());
                tasks.push(connection.abort_handle());
            }
        });
        lock(&self.tasks).push(accept.abort_handle());
    }

    /// Stops listening and closes every connection: connections are refused until
    /// [`come_back`](Self::come_back).
    pub fn go_down(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        // Let the aborted tasks drop their sockets.
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_err(),
            "the intake still accepts connections"
        );
    }

    /// Listens again on the same port.
    pub fn come_back(&mut self) {
        self.listen();
    }

    /// The intake URL.
    pub fn url(&self) -> String {
        format!("http://{}/api/v2/logs", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next valid requests with `replies`, in order, before the responder.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state).script.extend(replies);
    }

    /// Answers valid requests (after the script) with `f(entries)`.
    pub fn respond_with(&self, f: impl FnMut(&[Value]) -> Reply + Send + 'static) {
        lock(&self.state).responder = Box::new(f);
    }

    /// Every accepted entry, in arrival order.
    pub fn entries(&self) -> Vec<Value> {
        lock(&self.state).entries.clone()
    }

    /// How many entries were accepted.
    pub fn entry_count(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// Every request seen.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.state).requests.clone()
    }

    /// Every protocol violation seen.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// Waits until `n` entries were accepted, at most `timeout`.
    pub fn wait_for_entries(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.entry_count() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.entry_count() >= n
    }

    /// Waits until `n` requests were seen, at most `timeout`.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if lock(&self.state).requests.len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Intake {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn response(status: u16, retry_after: Option<u64>, body: &str) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json");
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    // The compressed body of a valid request is far below this.
    let Ok(body) = Limited::new(body, 4 * MAX_PAYLOAD).collect().await else {
        lock(&state).violations.push("compressed body above 20 MB".into());
        return Ok(response(413, None, "{}"));
    };
    let body = body.to_bytes();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let api_key = header("dd-api-key");
    let checked = check(&parts.method, parts.uri.path(), &header, &body, &lock(&state).api_key);
    let reply = {
        let mut s = lock(&state);
        let mut seen = Seen {
            at: Instant::now(),
            status: None,
            entries: 0,
            uncompressed: 0,
            api_key,
        };
        let reply = match checked {
            Err((status, Some(violation))) => {
                s.violations.push(violation);
                Reply::Status(status)
            }
            Err((status, None)) => Reply::Status(status),
            Ok((entries, uncompressed)) => {
                seen.entries = entries.len();
                seen.uncompressed = uncompressed;
                let reply = match s.script.pop_front() {
                    Some(reply) => reply,
                    None => (s.responder)(&entries),
                };
                if matches!(reply, Reply::Status(200..=299)) {
                    s.entries.extend(entries);
                }
                reply
            }
        };
        seen.status = match &reply {
            Reply::Status(code) | Reply::RetryAfter(code, _) => Some(*code),
            Reply::Hang => None,
        };
        s.requests.push(seen);
        reply
    };
    Ok(match reply {
        Reply::Status(code) => response(code, None, "{}"),
        Reply::RetryAfter(code, secs) => response(code, Some(secs), "{}"),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_hours(1)).await;
            response(504, None, "{}")
        }
    })
}

type Checked = Result<(Vec<Value>, usize), (u16, Option<String>)>;

/// The documented protocol. `Err((status, violation))`: the answer, and what rule was broken
/// (`None` for a wrong API key, which is not our client's fault).
fn check(
    method: &hyper::Method,
    path: &str,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    api_key: &str,
) -> Checked {
    let violation = |status: u16, what: String| Err((status, Some(what)));
    if path != "/api/v2/logs" {
        return violation(404, format!("path {path}"));
    }
    if method != hyper::Method::POST {
        return violation(405, format!("method {method}"));
    }
    match header("dd-api-key") {
        None => return violation(401, "no DD-API-KEY header".into()),
        Some(key) if key != api_key => return Err((403, None)),
        Some(_) => {}
    }
    if header("content-type").as_deref() != Some("application/json") {
        return violation(400, format!("content-type {:?}", header("content-type")));
    }
    if header("content-encoding").as_deref() != Some("gzip") {
        return violation(400, format!("content-encoding {:?}", header("content-encoding")));
    }
    let mut json = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(body).take(MAX_PAYLOAD as u64 + 1);
    if let Err(e) = decoder.read_to_end(&mut json) {
        return violation(400, format!("bad gzip: {e}"));
    }
    if json.len() > MAX_PAYLOAD {
        return violation(413, "payload above 5 MB uncompressed".into());
    }
    let raw: Vec<Box<RawValue>> = match serde_json::from_slice(&json) {
        Ok(raw) => raw,
        Err(e) => return violation(400, format!("not a JSON array: {e}")),
    };
    if raw.is_empty() {
        return violation(400, "empty array".into());
    }
    if raw.len() > MAX_ENTRIES {
        return violation(413, format!("{} entries", raw.len()));
    }
    let mut entries = Vec::with_capacity(raw.len());
    for r in &raw {
        if r.get().len() > MAX_ENTRY {
            return violation(400, format!("entry of {} bytes", r.get().len()));
        }
        let entry: Value = match serde_json::from_str(r.get()) {
            Ok(v) => v,
            Err(e) => return violation(400, format!("bad entry: {e}")),
        };
        let Some(object) = entry.as_object() else {
            return violation(400, "entry is not an object".into());
        };
        if !object.get("message").is_some_and(Value::is_string) {
            return violation(400, "entry without a string message".into());
        }
        let status = object.get("status").and_then(Value::as_str).unwrap_or("");
        if ![
            "emerg", "alert", "critical", "error", "warning", "notice", "info", "debug",
        ]
        .contains(&status)
        {
            return violation(400, format!("unknown status {status:?}"));
        }
        if !object.get("timestamp").is_some_and(Value::is_u64) {
            return violation(400, "timestamp is not milliseconds since the epoch".into());
        }
        for key in ["service", "hostname", "ddsource", "ddtags"] {
            if !object.get(key).is_some_and(Value::is_string) {
                return violation(400, format!("{key} is not a string"));
            }
        }
        entries.push(entry);
    }
    Ok((entries, json.len()))
}

/// The `seq` field of every entry, asserting each appears once.
pub fn sequence_numbers(entries: &[Value]) -> Vec<u64> {
    let mut seqs: Vec<u64> = entries
        .iter()
        .map(|e| e["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {e}")))
        .collect();
    seqs.sort_unstable();
    let before = seqs.len();
    seqs.dedup();
    assert_eq!(before, seqs.len(), "duplicated entries");
    seqs
}

/// The resource used by the tests.
pub fn resource() -> Resource {
    Resource::new("checkout", "test").with_version("1.2.3")
}

/// Logs one record with a `seq` field directly through `backend.log`.
pub fn log_seq(backend: &dyn LogBackend, resource: &Resource, seq: u64, message: &str) {
    let fields = [vigil_core::Field::new("seq", seq)];
    backend.log(&vigil_core::Record {
        timestamp: std::time::SystemTime::now(),
        level: Level::Info,
        target: "tests::seq",
        message,
        fields: &fields,
        spans: &[],
        trace: None,
        resource,
    });
}

/// Every record emitted anywhere in this test process (the sender threads' reports
/// included), through a global subscriber with the `log` bridge installed.
pub fn captured() -> &'static Arc<MemoryLogBackend> {
    static CAPTURED: OnceLock<Arc<MemoryLogBackend>> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        use tracing_subscriber::prelude::*;
        let memory = Arc::new(MemoryLogBackend::new());
        let layer = LogLayer::new(resource()).with_backend(memory.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        let _ = tracing_log::LogTracer::init();
        memory
    })
}

/// A builder for `intake` with test-friendly timings: no interval flush (tests flush
/// explicitly, so batches are deterministic), short backoff, generous flush timeout.
pub fn builder(intake: &Intake) -> vigil_log_datadog::DatadogLogBuilder {
    vigil_log_datadog::DatadogLogBackend::builder(vigil_core::Secret::new(API_KEY))
        .url(intake.url())
        .flush_interval(Duration::from_hours(1))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .request_timeout(Duration::from_secs(10))
        .flush_timeout(Duration::from_secs(30))
}

/// A deadline `secs` from now.
pub fn within(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// The sender's reports about the intake at `url`.
pub fn reports_for(url: &str) -> Vec<vigil_core::CapturedRecord> {
    captured()
        .records()
        .into_iter()
        .filter(|r| r.target == vigil_log_datadog::REPORT_TARGET)
        .filter(|r| matches!(r.field("url"), Some(vigil_core::OwnedValue::Str(u)) if &**u == url))
        .collect()
}

/// Polls `condition` every few milliseconds until it holds (true) or `timeout` passes.
pub fn wait_until(timeout: Duration, condition: impl Fn() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    condition()
}
