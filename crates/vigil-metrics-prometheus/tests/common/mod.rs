//! Helpers for the Prometheus tests: a tiny HTTP client, an independent exposition-format
//! parser, promtool, and headless Chromium.

#![allow(dead_code)]

pub mod browser;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

/// Every chart of the `/dashboard` page, in its order.
pub const DASHBOARD_CHARTS: [&str; 7] = [
    "http_rate",
    "http_latency",
    "http_errors",
    "ws_connections",
    "db_latency",
    "db_pool",
    "memory",
];

/// One HTTP/1.1 request; returns (status, headers, body).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    http_with(addr, method, path, &[])
}

/// One HTTP/1.1 request with extra `headers`; returns (status, headers, body).
pub fn http_with(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut extra = String::new();
    for (k, v) in headers {
        for part in [*k, ": ", *v, "\r\n"] {
            extra.push_str(part);
        }
    }
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

/// The value of header `name` in a response head (case-insensitive name), if present.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Decodes a `Transfer-Encoding: chunked` body.
pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

/// A sample: metric name, labels (in order), value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parses the text exposition format strictly (written from the format's specification, not
/// from the exporter's code). Panics with the offending line on anything malformed.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(
            name.chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())),
            "bad metric name in {line}"
        );
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if rest.starts_with('{') {
            rest = &rest[1..];
            loop {
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let eq = rest.find('=').unwrap_or_else(|| panic!("label without = in {line}"));
                let key = rest[..eq].to_owned();
                assert!(
                    key.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()),
                    "bad label name in {line}"
                );
                rest = rest[eq + 1..]
                    .strip_prefix('"')
                    .unwrap_or_else(|| panic!("unquoted label in {line}"));
                let mut value = String::new();
                let mut chars = rest.char_indices();
                let end = loop {
                    let (i, c) = chars
                        .next()
                        .unwrap_or_else(|| panic!("unterminated label value in {line}"));
                    match c {
                        '"' => break i,
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            other => panic!("bad escape {other:?} in {line}"),
                        },
                        '\n' => panic!("raw newline in {line}"),
                        c => value.push(c),
                    }
                };
                labels.push((key, value));
                rest = &rest[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        let value_text = rest.trim().split(' ').next().unwrap();
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

/// Runs `promtool check metrics` on `text`. Returns its combined output, or `None` when
/// promtool is not installed and `VIGIL_REQUIRE_PROMTOOL` is not set (`cargo xtask ci` sets
/// it after installing promtool, so there the check always runs).
pub fn promtool_check(text: &str) -> Option<String> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("VIGIL_REQUIRE_PROMTOOL").is_none(),
                "promtool is required but failed to start: {e}"
            );
            eprintln!("promtool not installed: skipping the lint (cargo xtask ci installs it)");
            return None;
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && all.is_empty() {
        all = format!("promtool exited with {}", out.status);
    }
    Some(all)
}
