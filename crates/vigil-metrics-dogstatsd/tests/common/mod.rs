//! Helpers for the DogStatsD tests: real sockets standing in for the Datadog Agent, and a strict
//! parser of DogStatsD lines written from the protocol's description (not from the exporter).

#![allow(dead_code)]

use std::io::{ErrorKind, Read};
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for an expected line before failing. Only a failing test waits this
/// long; nothing asserts on how long anything took.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long one receive call blocks before the predicate is checked again.
const POLL: Duration = Duration::from_millis(50);

/// Splits payloads into lines; every payload must end with a newline.
fn push_lines(lines: &mut Vec<String>, payload: &[u8]) {
    let text = std::str::from_utf8(payload).expect("payloads are UTF-8");
    assert!(text.ends_with('\n'), "payload does not end with a newline: {text:?}");
    lines.extend(text.split_terminator('\n').map(str::to_owned));
}

/// A UDP socket on 127.0.0.1 with a free port: the Agent's DogStatsD port.
pub struct UdpAgent {
    socket: UdpSocket,
}

impl UdpAgent {
    pub fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        socket.set_read_timeout(Some(POLL)).unwrap();
        UdpAgent { socket }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// Receives datagrams until `done` holds for all lines received so far; panics after
    /// [`PATIENCE`] with the lines received.
    pub fn lines_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        let mut buf = vec![0u8; 65_536];
        while !done(&lines) {
            assert!(
                Instant::now() < deadline,
                "expected lines did not arrive; got {lines:#?}"
            );
            match self.socket.recv(&mut buf) {
                Ok(n) => push_lines(&mut lines, &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        lines
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh socket path in the temporary directory (short enough for `sun_path`), removed on drop.
pub struct TempSocketPath(pub PathBuf);

impl TempSocketPath {
    pub fn new() -> Self {
        let name = format!(
            "vigil-dsd-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut path = std::env::temp_dir().join(&name);
        if path.as_os_str().len() > 100 {
            path = Path::new("/tmp").join(name);
        }
        let _ = std::fs::remove_file(&path);
        TempSocketPath(path)
    }
}

impl Drop for TempSocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A Unix datagram socket: the Agent's `dogstatsd_socket`.
pub struct UnixAgent {
    socket: UnixDatagram,
}

impl UnixAgent {
    pub fn bind(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).expect("bind a Unix datagram socket");
        socket.set_read_timeout(Some(POLL)).unwrap();
        UnixAgent { socket }
    }

    /// As [`UdpAgent::lines_until`].
    pub fn lines_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        let mut buf = vec![0u8; 65_536];
        while !done(&lines) {
            assert!(
                Instant::now() < deadline,
                "expected lines did not arrive; got {lines:#?}"
            );
            match self.socket.recv(&mut buf) {
                Ok(n) => push_lines(&mut lines, &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        lines
    }

    /// The lines of every datagram already queued, without waiting for more.
    pub fn lines_queued(&self) -> Vec<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => push_lines(&mut lines, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        self.socket.set_nonblocking(false).unwrap();
        lines
    }
}

/// A Unix stream socket: the Agent's `dogstatsd_stream_socket`. Frames are a 4-byte
/// little-endian length, then the payload.
pub struct UnixStreamAgent {
    listener: UnixListener,
}

impl UnixStreamAgent {
    pub fn bind(path: &Path) -> Self {
        UnixStreamAgent {
            listener: UnixListener::bind(path).expect("bind a Unix stream socket"),
        }
    }

    /// Accepts the forwarder's connection (waiting at most [`PATIENCE`]).
    pub fn accept(&self) -> UnixStream {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    return stream;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "the forwarder did not connect");
                    std::thread::sleep(POLL);
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// Reads frames from `stream` until `done` holds for the lines so far.
    pub fn lines_until(stream: &mut UnixStream, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        while !done(&lines) {
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).expect("a frame length");
            let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
            stream.read_exact(&mut payload).expect("a frame");
            push_lines(&mut lines, &payload);
        }
        lines
    }
}

/// One DogStatsD metric line, `name:value[:value...]|type[|@rate][|#tag,...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub values: Vec<f64>,
    pub kind: String,
    pub tags: Vec<String>,
}

/// Parses one line strictly: panics with the line on anything the protocol does not allow.
pub fn parse_line(line: &str) -> Line {
    let mut fields = line.split('|');
    let head = fields.next().unwrap();
    let (name, values) = head.split_once(':').unwrap_or_else(|| panic!("no value in {line:?}"));
    assert!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'),
        "bad metric name in {line:?}"
    );
    let values = values
        .split(':')
        .map(|v| {
            let x: f64 = v.parse().unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}"));
            assert!(x.is_finite(), "non-finite value in {line:?}");
            x
        })
        .collect();
    let kind = fields
        .next()
        .unwrap_or_else(|| panic!("no type in {line:?}"))
        .to_owned();
    assert!(["c", "g", "d", "h"].contains(&kind.as_str()), "bad type in {line:?}");
    let mut tags = Vec::new();
    for field in fields {
        if let Some(rate) = field.strip_prefix('@') {
            let r: f64 = rate.parse().unwrap_or_else(|_| panic!("bad rate in {line:?}"));
            assert!(r > 0.0 && r <= 1.0, "bad rate in {line:?}");
        } else if let Some(list) = field.strip_prefix('#') {
            assert!(tags.is_empty(), "two tag fields in {line:?}");
            for tag in list.split(',') {
                assert!(!tag.is_empty(), "empty tag in {line:?}");
                assert!(!tag.contains(['#', '\n', '\r']), "bad tag {tag:?} in {line:?}");
                assert!(!tag.starts_with(':'), "empty tag key in {line:?}");
                tags.push(tag.to_owned());
            }
        } else {
            panic!("unexpected field {field:?} in {line:?}");
        }
    }
    Line {
        name: name.to_owned(),
        values,
        kind,
        tags,
    }
}

/// The lines named `name` (parsed).
pub fn named(lines: &[String], name: &str) -> Vec<Line> {
    lines.iter().map(|l| parse_line(l)).filter(|l| l.name == name).collect()
}

/// The sum of the values of the lines named `name`.
pub fn sum(lines: &[String], name: &str) -> f64 {
    named(lines, name).iter().flat_map(|l| l.values.iter()).sum()
}
