//! A TCP proxy in front of a test server (the logs intake, the trace agent) that misbehaves on
//! command, one connection at a time: it passes a connection through, drops it after part of
//! the request (a server dying mid-batch), resets it, holds it without answering (slower than
//! any timeout), or answers an error status itself; and it can stop listening (the server is
//! down) and come back on the same port. Plain threads and std sockets, so it works under any
//! client.

#![allow(dead_code)] // each test binary uses a part of it

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the proxy does with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Pass it through to the upstream server, both ways.
    Pass,
    /// Read the request head and the first bytes of its body, then close without answering:
    /// the server died mid-batch.
    DieMidRequest,
    /// Close as soon as the request starts arriving, leaving it unread, so the kernel resets
    /// the connection.
    Reset,
    /// Read everything and never answer (until the proxy stops).
    Hang,
    /// Read the whole request and answer this status, with an empty body, then close.
    Respond(u16),
}

#[derive(Default)]
struct State {
    script: VecDeque<Fault>,
    /// The fault applied to each connection, in order.
    applied: Vec<Fault>,
}

/// The proxy; stops (and drops every connection it holds) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Whether the proxy should listen.
    listening: Arc<AtomicBool>,
    /// Whether it does, as the accept loop last saw.
    bound: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `upstream` on a free loopback port, listening.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let proxy = FaultProxy {
            addr,
            upstream,
            state: Arc::default(),
            listening: Arc::new(AtomicBool::new(true)),
            bound: Arc::default(),
            stop: Arc::default(),
            thread: None,
        };
        proxy.spawn()
    }

    /// A proxy to `upstream` whose port is chosen now but which does not listen until
    /// [`up`](Self::up): the server is down at start.
    pub fn start_down(upstream: SocketAddr) -> FaultProxy {
        let proxy = FaultProxy::start(upstream);
        proxy.down();
        proxy
    }

    fn spawn(mut self) -> FaultProxy {
        let (addr, upstream) = (self.addr, self.upstream);
        let (state, listening, bound, stop) = (
            self.state.clone(),
            self.listening.clone(),
            self.bound.clone(),
            self.stop.clone(),
        );
        self.thread = Some(std::thread::spawn(move || {
            accept_loop(addr, upstream, &state, &listening, &bound, &stop);
        }));
        self.wait_bound(true);
        self
    }

    /// Waits until the accept loop has bound (or closed) its listener.
    fn wait_bound(&self, bound: bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.bound.load(Ordering::SeqCst) != bound {
            assert!(
                Instant::now() < deadline,
                "the proxy on {} did not change state",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The faults for the next connections, in order; connections past the script pass.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().script.extend(faults);
    }

    /// The fault applied to each connection so far.
    pub fn applied(&self) -> Vec<Fault> {
        self.state.lock().unwrap().applied.clone()
    }

    /// Stops listening: connections are refused until [`up`](Self::up). Connections already
    /// passing through are not cut.
    pub fn down(&self) {
        self.listening.store(false, Ordering::SeqCst);
        self.wait_bound(false);
    }

    /// Listens again, on the same port.
    pub fn up(&self) {
        self.listening.store(true, Ordering::SeqCst);
        self.wait_bound(true);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    addr: SocketAddr,
    upstream: SocketAddr,
    state: &Mutex<State>,
    listening: &AtomicBool,
    bound: &AtomicBool,
    stop: &Arc<AtomicBool>,
) {
    let mut listener: Option<TcpListener> = None;
    let mut held = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match (listening.load(Ordering::SeqCst), &listener) {
            (true, None) => match TcpListener::bind(addr) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener = Some(l);
                    bound.store(true, Ordering::SeqCst);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            },
            (false, Some(_)) => {
                listener = None;
                bound.store(false, Ordering::SeqCst);
            }
            _ => {}
        }
        let Some(l) = &listener else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        match l.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).unwrap();
                let fault = {
                    let mut s = state.lock().unwrap();
                    let fault = s.script.pop_front().unwrap_or(Fault::Pass);
                    s.applied.push(fault);
                    fault
                };
                let stop = stop.clone();
                held.push(std::thread::spawn(move || handle(client, upstream, fault, &stop)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => {}
        }
    }
    drop(listener);
    for thread in held {
        let _ = thread.join();
    }
}

/// The length of the request head in `seen` (all of it when the head has not ended).
fn head_len(seen: &[u8]) -> usize {
    seen.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(seen.len(), |p| p + 4)
}

/// Reads from `client` until the end of the request head and `body_bytes` more bytes (or
/// the client stops sending), with a bound on the wait.
fn read_request_start(client: &mut TcpStream, body_bytes: usize) -> Vec<u8> {
    client.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        if head_end.is_some_and(|end| seen.len() >= end + body_bytes) {
            break;
        }
        let want = head_end.map_or(buf.len(), |end| (end + body_bytes - seen.len()).min(buf.len()));
        match client.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    seen
}

/// The `Content-Length` of a request whose head (at least) is in `seen`.
fn content_length(seen: &[u8]) -> Option<usize> {
    let end = seen.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&seen[..end]);
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn handle(mut client: TcpStream, upstream: SocketAddr, fault: Fault, stop: &AtomicBool) {
    match fault {
        Fault::Respond(status) => {
            let seen = read_request_start(&mut client, 0);
            let want = content_length(&seen).unwrap_or(0);
            let have = seen.len() - head_len(&seen);
            let mut rest = vec![0u8; want.saturating_sub(have)];
            let _ = client.read_exact(&mut rest);
            let reason = match status {
                408 => "Request Timeout",
                429 => "Too Many Requests",
                500 => "Internal Server Error",
                502 => "Bad Gateway",
                503 => "Service Unavailable",
                _ => "Error",
            };
            let _ = write!(
                client,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = client.shutdown(Shutdown::Write);
        }
        Fault::Pass => {
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(Shutdown::Write);
            });
            let mut server = server;
            let _ = std::io::copy(&mut server, &mut client);
            let _ = client.shutdown(Shutdown::Write);
            let _ = up.join();
        }
        Fault::DieMidRequest => {
            let _ = read_request_start(&mut client, 16);
            // Dropped with the rest of the request unread: the client sees the connection end
            // (reset) before any response.
        }
        Fault::Reset => {
            // Wait for the request to start arriving, read none of it, close: a reset.
            client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut byte = [0u8; 1];
            let _ = client.peek(&mut byte);
        }
        Fault::Hang => {
            let _ = read_request_start(&mut client, usize::MAX / 2);
            client.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::SeqCst) {
                match client.read(&mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        }
    }
}
