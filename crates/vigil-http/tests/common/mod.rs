//! Test harness: a current-thread runtime running server and client on one thread, inside a
//! local metrics recorder and a local tracing subscriber, so each test reads exact values.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing_subscriber::prelude::*;
use vigil_core::{BackendRecorder, LogLayer, MemoryLogBackend, MemoryMetricsBackend, Resource};

/// What a test can read back.
#[derive(Clone)]
pub struct Observed {
    pub metrics: Arc<MemoryMetricsBackend>,
    pub logs: Arc<MemoryLogBackend>,
}

/// Runs `f` on a current-thread runtime with a readable recorder and subscriber; `f` gets a
/// view of what is recorded, to wait on.
pub fn run<F, Fut>(f: F) -> Observed
where
    F: FnOnce(Observed) -> Fut,
    Fut: Future<Output = ()>,
{
    let metrics = Arc::new(MemoryMetricsBackend::new());
    let logs = Arc::new(MemoryLogBackend::new());
    let recorder = BackendRecorder::from_arc(metrics.clone());
    let subscriber = tracing_subscriber::registry()
        .with(LogLayer::new(Resource::new("http-test", "test")).with_backend(logs.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let observed = Observed { metrics, logs };
    let view = observed.clone();
    metrics::with_local_recorder(&recorder, || {
        tracing::subscriber::with_default(subscriber, || runtime.block_on(f(view)));
    });
    drop(runtime);
    observed
}

/// Serves an axum router on 127.0.0.1 (port chosen by the OS) in a task; returns its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A response read by [`Client`].
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 keep-alive client over one real TCP connection.
pub struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buffer: Vec::new(),
        }
    }

    /// Sends a request and reads the response (Content-Length or chunked bodies).
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            let _ = write!(req, "{k}: {v}\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.write_all(req.as_bytes()).await.unwrap();
        self.read_reply(method == "HEAD").await
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed early");
        self.buffer.extend_from_slice(&chunk[..n]);
    }

    async fn read_reply(&mut self, head_only: bool) -> Reply {
        let head_end = loop {
            if let Some(i) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.buffer[..head_end].to_vec()).unwrap();
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if head_only {
        } else if let Some(len) = find("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buffer.len() < len {
                self.fill().await;
            }
            body = self.buffer.drain(..len).collect();
        } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    self.fill().await;
                };
                let size =
                    usize::from_str_radix(std::str::from_utf8(&self.buffer[..line_end]).unwrap().trim(), 16).unwrap();
                self.buffer.drain(..line_end + 2);
                while self.buffer.len() < size + 2 {
                    self.fill().await;
                }
                body.extend(self.buffer.drain(..size));
                self.buffer.drain(..2);
                if size == 0 {
                    break;
                }
            }
        }
        Reply {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }

    /// Sends a request without waiting for the answer.
    pub async fn send_only(&mut self, method: &str, path: &str) {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
        self.stream.write_all(req.as_bytes()).await.unwrap();
    }

    /// Reads whatever arrives next (at least one byte).
    pub async fn read_some(&mut self) -> Vec<u8> {
        self.fill().await;
        std::mem::take(&mut self.buffer)
    }
}

/// Polls `check` until it holds (the server records asynchronously), for at most 5 s.
pub async fn eventually(mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}
