//! A stand-in for the Datadog side of `realtime_server` in the dashboards stage: one HTTP server
//! on 127.0.0.1 that is both the logs intake (`POST /api/v2/logs`) and the trace agent
//! (`/v0.4/traces`), and a UDP socket that receives DogStatsD.
//!
//! The intake and the agent each fail their first two requests (500, then 400) and accept the
//! rest, so the exporters' retry, rejection and drop counters have something to count. The
//! DogStatsD lines are parsed into the metric names and tags the Datadog dashboards and monitors
//! query.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

/// The statuses the intake and the agent answer their first requests with; later ones succeed.
const FAILURES: [u16; 2] = [500, 400];
/// The largest request body read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What the fake received.
#[derive(Default)]
pub(super) struct Received {
    /// Statuses answered to the logs intake's requests, in order.
    pub logs: Vec<u16>,
    /// Statuses answered to the trace agent's requests, in order.
    pub traces: Vec<u16>,
    /// DogStatsD: metric name → tag key → the values seen.
    pub metrics: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// DogStatsD datagrams received.
    pub datagrams: usize,
    /// When the last datagram arrived.
    pub last_datagram: Option<Instant>,
}

/// The running fake; dropping it stops both threads.
pub(super) struct FakeDatadog {
    /// The HTTP port (logs intake and trace agent).
    pub http_port: u16,
    /// The DogStatsD UDP port.
    pub udp_port: u16,
    /// What was received so far.
    received: Arc<Mutex<Received>>,
    /// Set to stop the threads.
    stop: Arc<AtomicBool>,
    /// The HTTP and UDP threads.
    threads: Vec<JoinHandle<()>>,
}

impl FakeDatadog {
    /// Binds free loopback ports and starts serving.
    pub fn start() -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the fake Datadog HTTP port")?;
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the fake DogStatsD port")?;
        udp.set_read_timeout(Some(Duration::from_millis(100)))?;
        listener.set_nonblocking(true)?;
        let http_port = listener.local_addr()?.port();
        let udp_port = udp.local_addr()?.port();
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));

        let (state, stopped) = (Arc::clone(&received), Arc::clone(&stop));
        let http = thread::Builder::new()
            .name("fake-datadog-http".to_owned())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &state),
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(20));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            })?;
        let (state, stopped) = (Arc::clone(&received), Arc::clone(&stop));
        let statsd = thread::Builder::new()
            .name("fake-dogstatsd".to_owned())
            .spawn(move || {
                let mut buffer = vec![0u8; 65_536];
                while !stopped.load(Ordering::Relaxed) {
                    if let Ok(n) = udp.recv(&mut buffer) {
                        let text = String::from_utf8_lossy(&buffer[..n]);
                        let mut received = state.lock().unwrap_or_else(PoisonError::into_inner);
                        received.datagrams += 1;
                        received.last_datagram = Some(Instant::now());
                        for line in text.lines().filter(|l| !l.is_empty()) {
                            if let Some((name, tags)) = parse_dogstatsd(line) {
                                let entry = received.metrics.entry(name).or_default();
                                for (key, value) in tags {
                                    entry.entry(key).or_default().insert(value);
                                }
                            }
                        }
                    }
                }
            })?;
        Ok(FakeDatadog {
            http_port,
            udp_port,
            received,
            stop,
            threads: vec![http, statsd],
        })
    }

    /// The logs intake's URL.
    pub fn logs_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2/logs", self.http_port)
    }

    /// Runs `f` on what was received so far.
    pub fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.received.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for FakeDatadog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Answers one request (then closes the connection).
fn serve(stream: TcpStream, state: &Mutex<Received>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((method, path)) = read_request(&stream) else {
        return;
    };
    let (status, body) = {
        let mut received = state.lock().unwrap_or_else(PoisonError::into_inner);
        if method == "POST" && path.starts_with("/api/v2/logs") {
            let status = FAILURES.get(received.logs.len()).copied().unwrap_or(202);
            received.logs.push(status);
            (status, "{}")
        } else if path.starts_with("/v0.4/traces") && (method == "PUT" || method == "POST") {
            let status = FAILURES.get(received.traces.len()).copied().unwrap_or(200);
            received.traces.push(status);
            (status, r#"{"rate_by_service":{}}"#)
        } else {
            (404, "{}")
        }
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// Reads a request's line, headers and body (`Content-Length` or chunked); returns the method
/// and path.
fn read_request(stream: &TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size.min(MAX_BODY) + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; length.min(MAX_BODY)];
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path))
}

/// Parses `name:value[:value...]|type[|@rate][|#k:v,k2:v2]...` into the name and its tags
/// (a tag without `:` has an empty value).
pub(super) fn parse_dogstatsd(line: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut sections = line.split('|');
    let head = sections.next()?;
    let (name, _) = head.split_once(':')?;
    if name.is_empty() {
        return None;
    }
    let mut tags = Vec::new();
    for section in sections {
        if let Some(list) = section.strip_prefix('#') {
            for tag in list.split(',').filter(|t| !t.is_empty()) {
                let (key, value) = tag.split_once(':').unwrap_or((tag, ""));
                tags.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    Some((name.to_owned(), tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dogstatsd_lines() {
        let (name, tags) =
            parse_dogstatsd("http.request.duration:12.5:3|d|#route:/api/videos/{id},status:200,service:api").unwrap();
        assert_eq!(name, "http.request.duration");
        assert_eq!(
            tags,
            [
                ("route".to_owned(), "/api/videos/{id}".to_owned()),
                ("status".to_owned(), "200".to_owned()),
                ("service".to_owned(), "api".to_owned()),
            ]
        );
        assert_eq!(parse_dogstatsd("up:1|g").unwrap(), ("up".to_owned(), vec![]));
        assert_eq!(
            parse_dogstatsd("x:1|c|@0.5|#solo").unwrap().1,
            [("solo".to_owned(), String::new())]
        );
        assert!(parse_dogstatsd("no value").is_none());
        assert!(parse_dogstatsd(":1|c").is_none());
    }

    #[test]
    fn fails_twice_then_accepts() {
        let fake = FakeDatadog::start().unwrap();
        let statuses: Vec<u16> = (0..3)
            .map(|_| {
                let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, fake.http_port)).unwrap();
                write!(
                    stream,
                    "POST /api/v2/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]"
                )
                .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                response[9..12].parse().unwrap()
            })
            .collect();
        assert_eq!(statuses, [500, 400, 202]);
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .send_to(b"a.b:1|c|#service:s\nc.d:2|g", (Ipv4Addr::LOCALHOST, fake.udp_port))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while fake.with(|r| r.datagrams) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        fake.with(|r| {
            assert_eq!(r.logs, [500, 400, 202]);
            assert!(r.metrics["a.b"]["service"].contains("s"));
            assert!(r.metrics.contains_key("c.d"));
        });
    }
}
