//! A stand-in for the Datadog side of `realtime_server` in the dashboards stage: one HTTP server
//! on 127.0.0.1 that is both the logs intake (`POST /api/v2/logs`) and the trace agent
//! (`/v0.4/traces`), and a UDP socket that receives DogStatsD.
//!
//! The intake and the agent each fail their first two requests (500, then 400) and accept the
//! rest, so the exporters' retry, rejection and drop counters have something to count. The
//! DogStatsD lines are parsed into the metric names and tags the Datadog dashboards and monitors
//! query.
//!
//! [`FakeDatadog::start_flapping`] makes it flap instead, for `cargo xtask soak`: it cycles
//! through a schedule of [`IntakeMode`]s (accepting, answering 503, refusing connections by
//! closing its listening socket), counting what it accepted, until [`FakeDatadog::settle`].

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

/// What a flapping intake (and agent) does during one phase of its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntakeMode {
    /// Accept everything: 202 for logs, 200 for traces.
    Accept,
    /// Answer every request 503 Service Unavailable.
    Unavailable,
    /// Close the listening socket, so connections are refused; it is bound again (same port)
    /// when the phase ends.
    Refuse,
}

/// The mode a flapping fake is in `elapsed` after it started: the `schedule` repeats.
/// An empty schedule (or one of zero length) always accepts.
pub(crate) fn mode_at(schedule: &[(IntakeMode, Duration)], elapsed: Duration) -> IntakeMode {
    let cycle: Duration = schedule.iter().map(|(_, d)| *d).sum();
    if cycle.is_zero() {
        return IntakeMode::Accept;
    }
    let mut at = Duration::from_nanos(u64::try_from(elapsed.as_nanos() % cycle.as_nanos()).unwrap_or_default());
    for (mode, length) in schedule {
        if at < *length {
            return *mode;
        }
        at -= *length;
    }
    IntakeMode::Accept
}

/// What the fake received.
#[derive(Default)]
pub(crate) struct Received {
    /// Statuses answered to the logs intake's requests, in order.
    pub logs: Vec<u16>,
    /// Bytes of the (compressed) request bodies of the logs requests answered 202.
    pub logs_bytes_accepted: u64,
    /// Flapping: how many times the listening socket was closed to refuse connections.
    pub refusals: usize,
    /// Flapping: how long, in total, connections were refused (windows still open not counted).
    pub refused_for: Duration,
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
pub(crate) struct FakeDatadog {
    /// The HTTP port (logs intake and trace agent).
    pub http_port: u16,
    /// The DogStatsD UDP port.
    pub udp_port: u16,
    /// What was received so far.
    received: Arc<Mutex<Received>>,
    /// Set to stop the threads.
    stop: Arc<AtomicBool>,
    /// Set to stop flapping: accept from then on.
    settled: Arc<AtomicBool>,
    /// The HTTP and UDP threads.
    threads: Vec<JoinHandle<()>>,
}

impl FakeDatadog {
    /// Binds free loopback ports and starts serving; the first two requests of the intake and
    /// of the agent fail (500, then 400), the rest are accepted.
    pub fn start() -> Result<Self> {
        Self::start_with(None)
    }

    /// Like [`FakeDatadog::start`], but the intake and the agent flap through `schedule` (which
    /// repeats) from now on, until [`FakeDatadog::settle`]; no request fails otherwise.
    pub fn start_flapping(schedule: Vec<(IntakeMode, Duration)>) -> Result<Self> {
        Self::start_with(Some(schedule))
    }

    /// Stops flapping: from now on the intake and the agent accept everything.
    pub fn settle(&self) {
        self.settled.store(true, Ordering::Relaxed);
    }

    /// Binds free loopback ports and starts serving, flapping through `schedule` if given.
    fn start_with(schedule: Option<Vec<(IntakeMode, Duration)>>) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the fake Datadog HTTP port")?;
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the fake DogStatsD port")?;
        udp.set_read_timeout(Some(Duration::from_millis(100)))?;
        listener.set_nonblocking(true)?;
        let http_port = listener.local_addr()?.port();
        let udp_port = udp.local_addr()?.port();
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let settled = Arc::new(AtomicBool::new(false));

        let (state, stopped, calm) = (Arc::clone(&received), Arc::clone(&stop), Arc::clone(&settled));
        let http = thread::Builder::new()
            .name("fake-datadog-http".to_owned())
            .spawn(move || {
                let started = Instant::now();
                let mut listener = Some(listener);
                let mut refused_since = None;
                while !stopped.load(Ordering::Relaxed) {
                    let mode = match &schedule {
                        Some(_) if calm.load(Ordering::Relaxed) => Some(IntakeMode::Accept),
                        Some(schedule) => Some(mode_at(schedule, started.elapsed())),
                        None => None,
                    };
                    if mode == Some(IntakeMode::Refuse) {
                        if listener.take().is_some() {
                            refused_since = Some(Instant::now());
                            state.lock().unwrap_or_else(PoisonError::into_inner).refusals += 1;
                        }
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    let Some(open) = listener.as_ref() else {
                        // Bind the same port again (std sets SO_REUSEADDR on Unix).
                        match TcpListener::bind((Ipv4Addr::LOCALHOST, http_port))
                            .and_then(|l| l.set_nonblocking(true).map(|()| l))
                        {
                            Ok(bound) => {
                                listener = Some(bound);
                                if let Some(since) = refused_since.take() {
                                    let mut received = state.lock().unwrap_or_else(PoisonError::into_inner);
                                    received.refused_for += since.elapsed();
                                }
                            }
                            Err(_) => thread::sleep(Duration::from_millis(20)),
                        }
                        continue;
                    };
                    match open.accept() {
                        Ok((stream, _)) => serve(stream, &state, mode),
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
            settled,
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

/// Answers one request (then closes the connection): flapping in `mode`, or, when `None`,
/// failing the first requests with [`FAILURES`].
fn serve(stream: TcpStream, state: &Mutex<Received>, mode: Option<IntakeMode>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((method, path, length)) = read_request(&stream) else {
        return;
    };
    let status_for = |seen: usize, ok: u16| match mode {
        None => FAILURES.get(seen).copied().unwrap_or(ok),
        Some(IntakeMode::Unavailable) => 503,
        Some(IntakeMode::Accept | IntakeMode::Refuse) => ok,
    };
    let (status, body) = {
        let mut received = state.lock().unwrap_or_else(PoisonError::into_inner);
        if method == "POST" && path.starts_with("/api/v2/logs") {
            let status = status_for(received.logs.len(), 202);
            received.logs.push(status);
            if status == 202 {
                received.logs_bytes_accepted += u64::try_from(length).unwrap_or(u64::MAX);
            }
            (status, "{}")
        } else if path.starts_with("/v0.4/traces") && (method == "PUT" || method == "POST") {
            let status = status_for(received.traces.len(), 200);
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

/// Reads a request's line, headers and body (`Content-Length` or chunked); returns the method,
/// the path and the body's length.
fn read_request(stream: &TcpStream) -> Option<(String, String, usize)> {
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
        length = 0;
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size.min(MAX_BODY) + 2];
            reader.read_exact(&mut chunk).ok()?;
            length += size;
            if size == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; length.min(MAX_BODY)];
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path, length))
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

    #[test]
    fn schedule_repeats() {
        use IntakeMode::{Accept, Refuse, Unavailable};
        let ms = Duration::from_millis;
        let schedule = [(Accept, ms(300)), (Unavailable, ms(100)), (Refuse, ms(200))];
        for (at, mode) in [
            (0, Accept),
            (299, Accept),
            (300, Unavailable),
            (399, Unavailable),
            (400, Refuse),
            (599, Refuse),
            (600, Accept),
            (950, Unavailable),
            (1_000, Refuse),
            (6_450, Refuse),
        ] {
            assert_eq!(mode_at(&schedule, ms(at)), mode, "at {at} ms");
        }
        assert_eq!(mode_at(&[], ms(5)), Accept);
        assert_eq!(mode_at(&[(Refuse, Duration::ZERO)], ms(5)), Accept);
    }

    /// `POST /api/v2/logs` once; `None` when the connection is refused.
    fn post_logs(port: u16) -> Option<u16> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
        write!(
            stream,
            "POST /api/v2/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n[{{}}]"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.get(9..12)?.parse().ok()
    }

    /// Polls `f` for up to 10 s until it answers true.
    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn flapping_answers_503_then_accepts_when_settled() {
        let fake = FakeDatadog::start_flapping(vec![(IntakeMode::Unavailable, Duration::from_hours(1))]).unwrap();
        assert_eq!(post_logs(fake.http_port), Some(503));
        fake.settle();
        assert!(eventually(|| post_logs(fake.http_port) == Some(202)));
        fake.with(|r| {
            assert_eq!(r.logs.first(), Some(&503));
            assert_eq!(r.logs.last(), Some(&202));
            assert_eq!(r.logs_bytes_accepted, 4);
        });
    }

    #[test]
    fn flapping_refuses_connections_then_rebinds() {
        let fake = FakeDatadog::start_flapping(vec![(IntakeMode::Refuse, Duration::from_hours(1))]).unwrap();
        let port = fake.http_port;
        assert!(
            eventually(|| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()),
            "connections to {port} were never refused"
        );
        fake.settle();
        assert!(eventually(|| post_logs(port) == Some(202)), "never accepted again");
        fake.with(|r| {
            assert_eq!(r.refusals, 1);
            assert!(r.refused_for > Duration::ZERO);
            assert_eq!(r.logs.iter().filter(|s| **s == 202).count(), r.logs.len());
        });
    }
}
