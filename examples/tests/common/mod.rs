//! Helpers for the example tests: locate and run example binaries, a tiny HTTP client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The path of a built example, brought up to date once per test process (`cargo test`
/// builds examples only when no filter skips them, and a binary left from an earlier build may
/// be stale; when it is fresh the build is a no-op).
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "examples", "--example", name])
            .status()
            .unwrap();
        assert!(status.success(), "building the {name} example failed");
        built.push(name.to_owned());
    }
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `realtime_server`'s environment in these tests: the API on `api_port` and the metrics port on
/// `metrics_port`, both on 127.0.0.1, JSON logs at info, an in-memory database. A test appends
/// its own variables; a later entry for the same variable wins.
pub fn realtime_env(api_port: u16, metrics_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("PORT", api_port.to_string()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PROMETHEUS_PORT", metrics_port.to_string()),
        ("PROMETHEUS_HOST", "127.0.0.1".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
        ("VIGIL_SERVICE", "realtime_server".to_owned()),
        ("DATABASE_URL", "sqlite::memory:".to_owned()),
    ]
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A running example whose stdout lines are collected; killed when dropped.
pub struct Running {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts example `name` with `env`; its stdout lines are kept, its stderr is the test's.
    pub fn start(name: &str, env: &[(&str, String)]) -> Running {
        Self::spawn(name, env, false)
    }

    /// As [`start`](Self::start), keeping stderr's lines too (after stdout's, in `lines`).
    pub fn start_capturing_stderr(name: &str, env: &[(&str, String)]) -> Running {
        Self::spawn(name, env, true)
    }

    fn spawn(name: &str, env: &[(&str, String)], capture_stderr: bool) -> Running {
        let mut cmd = Command::new(example(name));
        cmd.stdout(Stdio::piped()).stderr(if capture_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            let errors = stderr.map(|stderr| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let kept: Vec<String> = BufReader::new(stderr).lines().map_while(Result::ok).collect();
                    sink.lock().unwrap().extend(kept);
                })
            });
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
            if let Some(errors) = errors {
                let _ = errors.join();
            }
        });
        Running {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits until a stdout line satisfies `pred`, for at most 20 s.
    pub fn wait_for_line(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such line; got {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and every stdout line.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let lines = self.lines.lock().unwrap().clone();
        (code, lines)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `addr` accepts connections, for at most 20 s.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, headers, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

/// The Prometheus tests' helpers; the chunked decoder is shared rather than copied.
#[path = "../../../crates/vigil-metrics-prometheus/tests/common/mod.rs"]
mod prometheus_helpers;

#[allow(unused_imports)] // each test binary uses a part of it
pub use prometheus_helpers::{dechunk, http_with};

/// The value of the sample whose line starts with `prefix`, in Prometheus text.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
