//! A minimal, std-only WebSocket client (RFC 6455), enough for the end-to-end check: the HTTP/1.1
//! upgrade with a verified `Sec-WebSocket-Accept`, masked text and close frames out, unmasked
//! text, binary, ping, pong and close frames in (fragmented messages reassembled), and read
//! timeouts everywhere so nothing hangs.
//!
//! Also home to the two small primitives the handshake needs, SHA-1 (FIPS 180-4) and base64
//! (RFC 4648), since xtask takes no dependencies.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};

/// The GUID RFC 6455 appends to the key before hashing it into `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest upgrade response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest message (or frame) accepted from the server.
const MAX_MESSAGE: u64 = 16 * 1024 * 1024;
/// Close code for a normal closure.
pub const CLOSE_NORMAL: u16 = 1000;

/// Frame opcodes (RFC 6455 section 5.2).
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// A UTF-8 text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// Connection close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// SHA-1 of `data` (FIPS 180-4). Only for the handshake: SHA-1 is not collision resistant.
// The one-letter names are the standard's.
#[allow(clippy::many_single_char_names)]
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut state: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let bit_len = u64::try_from(data.len()).unwrap_or(u64::MAX).wrapping_mul(8);
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let next = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, next);
        }
        for (h, v) in state.iter_mut().zip([a, b, c, d, e]) {
            *h = h.wrapping_add(v);
        }
    }
    let mut digest = [0u8; 20];
    for (out, h) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&h.to_be_bytes());
    }
    digest
}

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let group = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = (group >> (18 - 6 * i)) & 0x3F;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `Sec-WebSocket-Accept` a server must answer to `Sec-WebSocket-Key: key`.
pub fn accept_key(key: &str) -> String {
    base64(&sha1(format!("{key}{ACCEPT_GUID}").as_bytes()))
}

/// Unpredictable-enough bytes for handshake keys and masks, from the clock, the pid and a counter
/// (splitmix64). Not cryptographic; RFC 6455 only needs masks a script cannot guess ahead.
struct Entropy(u64);

impl Entropy {
    /// A generator seeded from the time, the pid and how many were made before.
    fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0));
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self(nanos ^ (u64::from(process::id()) << 32) ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The next 64 random-looking bits.
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A 4-byte masking key.
    fn mask(&mut self) -> [u8; 4] {
        let [a, b, c, d, ..] = self.next_u64().to_le_bytes();
        [a, b, c, d]
    }

    /// A fresh `Sec-WebSocket-Key`: base64 of 16 bytes.
    fn handshake_key(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        base64(&bytes)
    }
}

/// One frame as it appears on the wire, payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Whether this is the final fragment of its message.
    pub fin: bool,
    /// The opcode (see [`opcode`]).
    pub opcode: u8,
    /// Whether the sender masked it (clients must, servers must not).
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// Encodes one final frame with the given opcode, masking the payload with `mask` when given
/// (client-to-server frames must be masked).
pub fn encode_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        // The casts are lossless: each arm bounds the length.
        #[allow(clippy::cast_possible_truncation)]
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=0xFFFF => {
            out.push(mask_bit | 0x7E);
            out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 0x7F);
            out.extend_from_slice(&u64::try_from(len).unwrap_or(u64::MAX).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Decodes the frame at the start of `input`: `Ok(None)` when more bytes are needed, else the
/// frame and how many bytes it took. Rejects reserved bits (no extension was negotiated), unknown
/// opcodes, bad control frames and payloads over 16 MiB.
pub fn decode_frame(input: &[u8]) -> Result<Option<(Frame, usize)>> {
    let [first, second, rest @ ..] = input else {
        return Ok(None);
    };
    let fin = first & 0x80 != 0;
    ensure!(
        first & 0x70 == 0,
        "frame sets reserved bits {:#05b} (no extension was negotiated)",
        (first >> 4) & 0x7
    );
    let opcode = first & 0x0F;
    ensure!(
        matches!(
            opcode,
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY | opcode::CLOSE | opcode::PING | opcode::PONG
        ),
        "frame has the unknown opcode {opcode:#x}"
    );
    let masked = second & 0x80 != 0;
    let (length, header) = match second & 0x7F {
        126 => {
            let Some(bytes) = rest.get(..2) else { return Ok(None) };
            (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
        }
        127 => {
            let Some(bytes) = rest.get(..8) else { return Ok(None) };
            let mut be = [0u8; 8];
            be.copy_from_slice(bytes);
            let length = u64::from_be_bytes(be);
            ensure!(
                length >> 63 == 0,
                "frame length {length:#x} has the most significant bit set"
            );
            (length, 10)
        }
        short => (u64::from(short), 2),
    };
    if opcode >= opcode::CLOSE {
        ensure!(fin, "control frame (opcode {opcode:#x}) is fragmented");
        ensure!(
            length <= 125,
            "control frame (opcode {opcode:#x}) has a {length}-byte payload (max 125)"
        );
    }
    ensure!(
        length <= MAX_MESSAGE,
        "frame payload of {length} bytes exceeds {MAX_MESSAGE}"
    );
    let length = usize::try_from(length)?;
    let key_len = if masked { 4 } else { 0 };
    let total = header + key_len + length;
    if input.len() < total {
        return Ok(None);
    }
    let body = &input[header + key_len..total];
    let payload = if masked {
        let key = &input[header..header + 4];
        body.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k).collect()
    } else {
        body.to_vec()
    };
    Ok(Some((
        Frame {
            fin,
            opcode,
            masked,
            payload,
        },
        total,
    )))
}

/// A complete message from the server. Pings are answered and pongs skipped inside
/// [`WsClient::recv`], so they never show up here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A close frame: its status code (if any) and reason.
    Close(Option<u16>, String),
}

/// An open client connection.
pub struct WsClient {
    /// The socket.
    stream: TcpStream,
    /// Bytes read and not yet decoded into frames.
    buffer: Vec<u8>,
    /// A fragmented message being reassembled: its opcode and the payload so far.
    partial: Option<(u8, Vec<u8>)>,
    /// Masks for outgoing frames.
    entropy: Entropy,
    /// Whether a close frame was sent.
    close_sent: bool,
    /// What to call this client in messages (`ws client 1 (ws://127.0.0.1:4000/ws/videos/1)`).
    name: String,
}

impl WsClient {
    /// Connects to `ws://addr{path}` and performs the opening handshake, all within `timeout`.
    ///
    /// # Errors
    ///
    /// When the connection fails, the server does not answer `101`, or its upgrade headers are
    /// wrong (including a `Sec-WebSocket-Accept` that does not match the key sent).
    pub fn connect(label: &str, addr: SocketAddr, path: &str, timeout: Duration) -> Result<Self> {
        let name = format!("{label} (ws://{addr}{path})");
        let deadline = Instant::now() + timeout;
        let stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("{name}: connecting"))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut entropy = Entropy::new();
        let key = entropy.handshake_key();
        let mut client = Self {
            stream,
            buffer: Vec::new(),
            partial: None,
            entropy,
            close_sent: false,
            name,
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        client
            .stream
            .write_all(request.as_bytes())
            .and_then(|()| client.stream.flush())
            .with_context(|| format!("{}: sending the upgrade request", client.name))?;

        let head_end = loop {
            if let Some(end) = find(&client.buffer, b"\r\n\r\n") {
                break end;
            }
            ensure!(
                client.buffer.len() <= MAX_HEAD,
                "{}: the upgrade response head exceeds {MAX_HEAD} bytes",
                client.name
            );
            match client.fill(deadline)? {
                Fill::Data => {}
                Fill::Eof => bail!(
                    "{}: expected an HTTP 101 upgrade response, but the server closed the connection after {:?}",
                    client.name,
                    String::from_utf8_lossy(&client.buffer)
                ),
                Fill::Timeout => bail!(
                    "{}: expected an HTTP 101 upgrade response within {timeout:?}, got only {:?}",
                    client.name,
                    String::from_utf8_lossy(&client.buffer)
                ),
            }
        };
        let head = String::from_utf8_lossy(&client.buffer[..head_end]).into_owned();
        client.buffer.drain(..head_end + 4);
        check_upgrade(&head, &key).with_context(|| format!("{}: bad upgrade response:\n{head}", client.name))?;
        Ok(client)
    }

    /// Reads more bytes into the buffer, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<Fill> {
        let mut chunk = [0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Fill::Timeout);
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(Fill::Data);
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(Fill::Timeout);
                }
                Err(err) => return Err(err).with_context(|| format!("{}: reading", self.name)),
            }
        }
    }

    /// Sends one masked frame.
    fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        let frame = encode_frame(opcode, payload, Some(self.entropy.mask()));
        self.stream
            .write_all(&frame)
            .and_then(|()| self.stream.flush())
            .with_context(|| format!("{}: sending a frame (opcode {opcode:#x})", self.name))
    }

    /// Sends a text message.
    ///
    /// # Errors
    ///
    /// When writing fails.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.send_frame(opcode::TEXT, text.as_bytes())
    }

    /// Sends a close frame with `code` (once).
    fn send_close(&mut self, code: u16) -> Result<()> {
        if !self.close_sent {
            self.close_sent = true;
            self.send_frame(opcode::CLOSE, &code.to_be_bytes())?;
        }
        Ok(())
    }

    /// The next message, waiting at most `timeout`: `Ok(None)` when nothing arrived in time.
    /// Pings are answered with pongs, pongs skipped, fragments reassembled; a close frame from the
    /// server is answered with a close frame and returned.
    ///
    /// # Errors
    ///
    /// When the server closes the TCP connection without a close frame, sends an invalid frame
    /// (masked, bad fragmentation, text that is not UTF-8), or reading fails.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Message>> {
        match self.next(Instant::now() + timeout)? {
            Next::Message(message) => Ok(Some(message)),
            Next::Eof => bail!(
                "{}: the server closed the TCP connection without a close frame",
                self.name
            ),
            Next::Timeout => Ok(None),
        }
    }

    /// The next message, the end of the stream, or a timeout at `deadline`.
    fn next(&mut self, deadline: Instant) -> Result<Next> {
        loop {
            while let Some((frame, used)) = decode_frame(&self.buffer).with_context(|| self.name.clone())? {
                self.buffer.drain(..used);
                if let Some(message) = self.handle(frame)? {
                    return Ok(Next::Message(message));
                }
            }
            match self.fill(deadline)? {
                Fill::Data => {}
                Fill::Eof => return Ok(Next::Eof),
                Fill::Timeout => return Ok(Next::Timeout),
            }
        }
    }

    /// Handles one decoded frame; returns a message once one is complete.
    fn handle(&mut self, frame: Frame) -> Result<Option<Message>> {
        ensure!(
            !frame.masked,
            "{}: the server sent a masked frame (opcode {:#x}); RFC 6455 forbids that",
            self.name,
            frame.opcode
        );
        let (opcode, payload) = match frame.opcode {
            opcode::PING => {
                self.send_frame(opcode::PONG, &frame.payload)?;
                return Ok(None);
            }
            opcode::PONG => return Ok(None),
            opcode::CLOSE => {
                let (code, reason) = match frame.payload.as_slice() {
                    [] => (None, String::new()),
                    [hi, lo, reason @ ..] => (
                        Some(u16::from_be_bytes([*hi, *lo])),
                        String::from_utf8_lossy(reason).into_owned(),
                    ),
                    [_] => bail!("{}: close frame with a 1-byte payload", self.name),
                };
                // Echo the close unless this answers ours.
                self.send_close(code.unwrap_or(CLOSE_NORMAL))?;
                return Ok(Some(Message::Close(code, reason)));
            }
            opcode::CONTINUATION => {
                let Some((opcode, mut payload)) = self.partial.take() else {
                    bail!("{}: continuation frame without a message to continue", self.name)
                };
                payload.extend_from_slice(&frame.payload);
                ensure!(
                    u64::try_from(payload.len()).unwrap_or(u64::MAX) <= MAX_MESSAGE,
                    "{}: fragmented message exceeds {MAX_MESSAGE} bytes",
                    self.name
                );
                if !frame.fin {
                    self.partial = Some((opcode, payload));
                    return Ok(None);
                }
                (opcode, payload)
            }
            opcode => {
                ensure!(
                    self.partial.is_none(),
                    "{}: new data frame (opcode {opcode:#x}) while a fragmented message is unfinished",
                    self.name
                );
                if !frame.fin {
                    self.partial = Some((opcode, frame.payload));
                    return Ok(None);
                }
                (opcode, frame.payload)
            }
        };
        Ok(Some(if opcode == opcode::TEXT {
            Message::Text(
                String::from_utf8(payload).with_context(|| format!("{}: text message is not UTF-8", self.name))?,
            )
        } else {
            Message::Binary(payload)
        }))
    }

    /// Closes cleanly: sends a close frame with `code`, then waits up to `timeout` for the server's
    /// close frame (RFC 6455 section 5.5.1: it must answer one), skipping data messages that were
    /// already on their way. Tells whether the server answered or just closed the connection.
    ///
    /// # Errors
    ///
    /// When sending fails, or the server neither answers with a close frame nor closes the
    /// connection in time.
    pub fn close(mut self, code: u16, timeout: Duration) -> Result<Closed> {
        self.send_close(code)?;
        let deadline = Instant::now() + timeout;
        let closed = loop {
            match self.next(deadline)? {
                Next::Message(Message::Close(code, _)) => break Closed::Answered(code),
                Next::Message(_) => {}
                Next::Eof => break Closed::NotAnswered,
                Next::Timeout => bail!(
                    "{}: sent a close frame ({code}), expected the server's close frame (or at least the end of the \
                     connection) within {timeout:?}, got neither",
                    self.name
                ),
            }
        };
        let _ = self.stream.shutdown(Shutdown::Both);
        Ok(closed)
    }

    /// Drops the TCP connection without a close frame, as a vanished client would.
    pub fn drop_abruptly(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// What this client is called in messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Checks the status line and headers of the upgrade response.
fn check_upgrade(head: &str, key: &str) -> Result<()> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).unwrap_or_default();
    ensure!(
        status_line.starts_with("HTTP/1.1 ") && status == "101",
        "expected status 101 Switching Protocols, got {status_line:?}"
    );
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let upgrade = header("upgrade");
    ensure!(
        upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "expected `Upgrade: websocket`, got {upgrade:?}"
    );
    let connection = header("connection");
    ensure!(
        connection.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))),
        "expected `Connection: Upgrade`, got {connection:?}"
    );
    let expected = accept_key(key);
    let accept = header("sec-websocket-accept");
    ensure!(
        accept == Some(expected.as_str()),
        "expected `Sec-WebSocket-Accept: {expected}` (for the key {key}), got {accept:?}"
    );
    for unasked in ["sec-websocket-extensions", "sec-websocket-protocol"] {
        ensure!(
            header(unasked).is_none(),
            "the server chose {unasked}: {:?}, which the client did not offer",
            header(unasked)
        );
    }
    Ok(())
}

/// How the server took a client's close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// It answered with a close frame carrying this code (if any), as RFC 6455 requires.
    Answered(Option<u16>),
    /// It closed the TCP connection without answering the close frame.
    NotAnswered,
}

/// What [`WsClient::next`] got.
enum Next {
    /// A complete message.
    Message(Message),
    /// The server closed the connection.
    Eof,
    /// Nothing before the deadline.
    Timeout,
}

/// What [`WsClient::fill`] got.
enum Fill {
    /// More bytes are in the buffer.
    Data,
    /// The server closed the connection.
    Eof,
    /// Nothing arrived before the deadline.
    Timeout,
}

/// The offset of the first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::net::{Ipv4Addr, TcpListener};
    use std::thread;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    #[test]
    fn sha1_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(&sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(b"The quick brown fox jumps over the lazy dog")),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
        // 55, 56 and 64 bytes: the padding edge cases.
        assert_eq!(hex(&sha1(&[b'a'; 55])), "c1c8bbdc22796e28c0e15163d20899b65621d65a");
        assert_eq!(hex(&sha1(&[b'a'; 56])), "c2db330f6083854c99d4b5bfb6e8f29f201be699");
        assert_eq!(hex(&sha1(&[b'a'; 64])), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn base64_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output, "{input}");
        }
        assert_eq!(base64(&[0xFB, 0xFF, 0xBF]), "+/+/");
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn rfc6455_accept_key() {
        // RFC 6455 section 1.3's example (also `openssl dgst -sha1 -binary | base64`).
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            hex(&sha1(b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11")),
            "b37a4f2cc0624f1690f64606cf385945b2bec4ea"
        );
    }

    #[test]
    fn handshake_keys_are_16_bytes_and_differ() {
        let mut entropy = Entropy::new();
        let (a, b) = (entropy.handshake_key(), Entropy::new().handshake_key());
        assert_eq!(a.len(), 24);
        assert!(a.ends_with("=="));
        assert_ne!(a, b);
    }

    #[test]
    fn encoding_matches_rfc6455_examples() {
        // Section 5.7: a masked "Hello" from client to server.
        let masked = encode_frame(opcode::TEXT, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(
            masked,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        assert_eq!(
            encode_frame(opcode::TEXT, b"Hello", None),
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        let medium = encode_frame(opcode::BINARY, &[7; 256], None);
        assert_eq!(medium[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(medium.len(), 4 + 256);
        let large = encode_frame(opcode::BINARY, &vec![7; 65536], Some([1, 2, 3, 4]));
        assert_eq!(large[..10], [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(large.len(), 10 + 4 + 65536);
        assert_eq!(
            encode_frame(opcode::CLOSE, &1000u16.to_be_bytes(), None),
            [0x88, 0x02, 0x03, 0xE8]
        );
        assert_eq!(encode_frame(opcode::TEXT, &[b'x'; 125], None)[1], 125);
        assert_eq!(encode_frame(opcode::TEXT, &[b'x'; 126], None)[1..4], [126, 0, 126]);
        assert_eq!(
            encode_frame(opcode::TEXT, &vec![b'x'; 65535], None)[1..4],
            [126, 0xFF, 0xFF]
        );
    }

    #[test]
    fn decoding() {
        let frame = |fin, opcode, masked, payload: &[u8]| Frame {
            fin,
            opcode,
            masked,
            payload: payload.to_vec(),
        };
        let hello = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(
            decode_frame(&hello).unwrap(),
            Some((frame(true, opcode::TEXT, false, b"Hello"), 7))
        );
        for cut in 0..hello.len() {
            assert_eq!(decode_frame(&hello[..cut]).unwrap(), None, "{cut} bytes");
        }
        let masked = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0xFF];
        assert_eq!(
            decode_frame(&masked).unwrap(),
            Some((frame(true, opcode::TEXT, true, b"Hello"), 11))
        );
        // Fragments and a ping (section 5.7).
        assert_eq!(
            decode_frame(&[0x01, 0x03, 0x48, 0x65, 0x6c]).unwrap(),
            Some((frame(false, opcode::TEXT, false, b"Hel"), 5))
        );
        assert_eq!(
            decode_frame(&[0x80, 0x02, 0x6c, 0x6f]).unwrap(),
            Some((frame(true, opcode::CONTINUATION, false, b"lo"), 4))
        );
        assert_eq!(
            decode_frame(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]).unwrap(),
            Some((frame(true, opcode::PING, false, b"Hello"), 7))
        );
        // 16-bit and 64-bit lengths, and round trips through the encoder.
        for len in [0, 1, 125, 126, 127, 256, 65535, 65536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            for mask in [None, Some([9, 8, 7, 6])] {
                let bytes = encode_frame(opcode::BINARY, &payload, mask);
                let (decoded, used) = decode_frame(&bytes).unwrap().unwrap();
                assert_eq!(used, bytes.len(), "{len}");
                assert_eq!(decoded, frame(true, opcode::BINARY, mask.is_some(), &payload), "{len}");
                assert_eq!(decode_frame(&bytes[..bytes.len() - 1]).unwrap(), None, "{len}");
            }
        }
        // Errors.
        for bad in [
            &[0xC1, 0x00][..],                           // RSV1 set
            &[0x83, 0x00],                               // reserved opcode
            &[0x09, 0x00],                               // fragmented ping
            &[0x88, 0x7E, 0x00, 0x7E],                   // 126-byte close
            &[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0],    // 64-bit length with the top bit set
            &[0x82, 0x7F, 0, 0, 0, 0, 0x10, 0, 0, 1, 0], // over the size limit
        ] {
            assert!(decode_frame(bad).is_err(), "{bad:02x?}");
        }
    }

    /// A scripted server on a real socket: checks the handshake and the client's frames.
    #[test]
    fn client_against_a_scripted_server() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).unwrap();
                request.push(byte[0]);
            }
            let request = String::from_utf8(request).unwrap();
            assert!(request.starts_with("GET /ws/x HTTP/1.1\r\n"), "{request}");
            assert!(request.contains("Sec-WebSocket-Version: 13\r\n"), "{request}");
            let key = request
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_owned();
            let mut reply = format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                 sec-websocket-accept: {}\r\n\r\n",
                accept_key(&key)
            )
            .into_bytes();
            // A ping, a fragmented text message and a 300-byte text message, right behind the head.
            reply.extend(encode_frame(opcode::PING, b"p", None));
            reply.extend([0x01, 0x02, b'h', b'i']);
            reply.extend(encode_frame(opcode::CONTINUATION, b"!", None));
            reply.extend(encode_frame(opcode::TEXT, &[b'z'; 300], None));
            socket.write_all(&reply).unwrap();

            let mut read_frame = |socket: &mut TcpStream| {
                let mut buffer = Vec::new();
                loop {
                    if let Some((frame, _)) = decode_frame(&buffer).unwrap() {
                        return frame;
                    }
                    socket.read_exact(&mut byte).unwrap();
                    buffer.push(byte[0]);
                }
            };
            let pong = read_frame(&mut socket);
            assert_eq!(
                (pong.opcode, pong.masked, &pong.payload[..]),
                (opcode::PONG, true, &b"p"[..])
            );
            let text = read_frame(&mut socket);
            assert_eq!(
                (text.opcode, text.masked, &text.payload[..]),
                (opcode::TEXT, true, &b"yo"[..])
            );
            let close = read_frame(&mut socket);
            assert_eq!((close.opcode, &close.payload[..]), (opcode::CLOSE, &[0x03, 0xE8][..]));
            socket
                .write_all(&encode_frame(opcode::CLOSE, &[0x03, 0xE8], None))
                .unwrap();
        });

        let mut client = WsClient::connect("test client", addr, "/ws/x", Duration::from_secs(5)).unwrap();
        let timeout = Duration::from_secs(5);
        assert_eq!(client.recv(timeout).unwrap(), Some(Message::Text("hi!".to_owned())));
        assert_eq!(client.recv(timeout).unwrap(), Some(Message::Text("z".repeat(300))));
        assert_eq!(client.recv(Duration::from_millis(50)).unwrap(), None, "nothing more");
        client.send_text("yo").unwrap();
        assert_eq!(
            client.close(CLOSE_NORMAL, timeout).unwrap(),
            Closed::Answered(Some(1000))
        );
        server.join().unwrap();
    }

    #[test]
    fn wrong_accept_key_is_rejected() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut head = [0u8; 1024];
            let _ = socket.read(&mut head).unwrap();
            socket
                .write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                      Sec-WebSocket-Accept: s3pPLMBiTxaQ9kGzzZxwxKxsxaQ=\r\n\r\n",
                )
                .unwrap();
        });
        let err = WsClient::connect("test client", addr, "/", Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("Sec-WebSocket-Accept"), "{err:#}");
        server.join().unwrap();
    }
}
