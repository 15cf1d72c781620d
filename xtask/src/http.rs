//! A small blocking HTTP client for xtask's API calls (Prometheus queries, Grafana and Datadog
//! publishing): ureq with rustls, so `https://` works as well as `http://`; statuses are answers,
//! not errors, and request headers never appear in errors.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// The largest response body read, in bytes (a Datadog dashboard list can be large).
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// An HTTP response: the status and the body as text.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

/// A blocking HTTP/1.1 client with a timeout per request.
pub struct HttpClient {
    /// The ureq agent (connection pool, TLS configuration).
    agent: ureq::Agent,
}

impl HttpClient {
    /// A client whose requests each give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("vigil-xtask/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpClient { agent: config.into() }
    }

    /// Sends `method url` with `headers` and an optional body.
    ///
    /// # Errors
    ///
    /// When the URL is invalid, the connection or TLS fails, or the request times out. The
    /// message names the method and URL (never the headers, which may hold secrets).
    pub fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<HttpResponse> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(body.unwrap_or_default().as_bytes().to_vec())
            .with_context(|| format!("building the request {method} {url}"))?;
        let response = match self.agent.run(request) {
            Ok(response) => response,
            Err(err) => bail!("{method} {url}: {err}"),
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let bytes = body
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .with_context(|| format!("{method} {url}: reading the response body"))?;
        Ok(HttpResponse {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

/// Percent-encodes a query-string value (RFC 3986: everything but unreserved characters).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as a space) of a query-string value (the test servers use it).
#[cfg(test)]
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(value);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_round_trips() {
        let text = r#"sum by (le) (rate(x{a="b c",d=~"5.."}[1m])) > 0.5 & ü"#;
        let encoded = percent_encode(text);
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)),
            "{encoded}"
        );
        assert_eq!(percent_decode(&encoded), text);
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
