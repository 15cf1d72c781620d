//! Configuration of a [`DatadogLogBackend`], validated once in [`DatadogLogBuilder::build`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigil_core::{Level, Secret};

#[cfg(doc)]
use crate::MAX_ENTRY_BYTES;
use crate::entry::EntryFormat;
use crate::queue::Shared;
use crate::sender::{Sender, SenderConfig};
use crate::{DatadogLogBackend, Error};

/// The longest tag Datadog keeps.
const MAX_TAG_CHARS: usize = 200;
/// At most this many configured tags.
const MAX_TAGS: usize = 100;
/// The longest `ddsource`.
const MAX_SOURCE_CHARS: usize = 100;
/// The smallest byte bound accepted for the queue.
const MIN_QUEUE_BYTES: usize = 4096;
/// The longest duration accepted for any setting: far beyond any sensible value, and far from
/// the overflow of `Instant + Duration` (which panics).
const MAX_DURATION: Duration = Duration::from_hours(1);

/// Configures a [`DatadogLogBackend`]; created by [`DatadogLogBackend::builder`].
///
/// `Debug` never shows the API key.
#[derive(Debug)]
pub struct DatadogLogBuilder {
    api_key: Secret,
    site: String,
    url: Option<String>,
    tags: Vec<String>,
    source: String,
    queue_capacity: usize,
    max_queue_bytes: usize,
    flush_interval: Duration,
    request_timeout: Duration,
    backoff: (Duration, Duration),
    flush_timeout: Duration,
    min_level: Level,
}

impl DatadogLogBuilder {
    pub(crate) fn new(api_key: Secret) -> Self {
        DatadogLogBuilder {
            api_key,
            site: "datadoghq.com".to_owned(),
            url: None,
            tags: Vec::new(),
            source: "rust".to_owned(),
            queue_capacity: 10_000,
            max_queue_bytes: 32 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            backoff: (Duration::from_millis(200), Duration::from_secs(30)),
            flush_timeout: Duration::from_secs(5),
            min_level: Level::Trace,
        }
    }

    /// The Datadog site (default `datadoghq.com`): entries go to
    /// `https://http-intake.logs.<site>/api/v2/logs`. Ignored when [`url`](Self::url) is set.
    #[must_use]
    pub fn site(mut self, site: impl Into<String>) -> Self {
        self.site = site.into();
        self
    }

    /// The full intake URL, overriding the site: `http://` or `https://`, for a local proxy
    /// or a test intake (`DATADOG_LOGS_URL`).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Tags added to every entry's `ddtags`, after `env:` and `version:` (such as
    /// `team:payments`). Each must be at most 200 characters, without commas or control
    /// characters; at most 100 tags.
    #[must_use]
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The `ddsource` of every entry (default `rust`).
    #[must_use]
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Entries queued before new ones are dropped (default 10,000).
    #[must_use]
    pub fn queue_capacity(mut self, entries: usize) -> Self {
        self.queue_capacity = entries;
        self
    }

    /// Bytes of queued entries (the capacity of their buffers) before new ones are dropped
    /// (default 32 MiB, at least 4 KiB). An entry larger than the bound is always dropped, so
    /// keep it above [`MAX_ENTRY_BYTES`] if megabyte logs must get through. Besides the queue,
    /// the sender holds at most one batch (up to 5 MB) and its compressed copy.
    #[must_use]
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// How often queued entries are sent when no batch fills up (default 1 s, at most 1 hour).
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// The longest one request may take, connection included, before it is abandoned and
    /// retried (default 10 s, at most 1 hour).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The first wait before a retry and the longest one (default 200 ms and 30 s). Each
    /// retry of a batch doubles the wait, up to `max`; the actual wait is a random point
    /// between half and all of it, and at least the intake's `Retry-After`. Both at most 1 hour.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max);
        self
    }

    /// The longest [`LogBackend::flush`](vigil_core::LogBackend::flush) and dropping the
    /// backend wait for delivery (default 5 s, at most 1 hour).
    #[must_use]
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Records below `level` are not sent to Datadog (default: all that reach the backend).
    #[must_use]
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Validates the configuration and starts the sender thread.
    ///
    /// # Errors
    ///
    /// A bad URL, site, tag, source, API key or limit (the message names the setting and the
    /// value, never the API key's), or when the thread cannot be started.
    pub fn build(self) -> Result<DatadogLogBackend, Error> {
        let url = if let Some(url) = &self.url {
            validate_url(url)?
        } else {
            validate_site(&self.site)?;
            let site = self.site.to_ascii_lowercase();
            format!("https://http-intake.logs.{site}/api/v2/logs")
        };
        validate_api_key(&self.api_key)?;
        for tag in &self.tags {
            validate_tag(tag)?;
        }
        if self.tags.len() > MAX_TAGS {
            return Err(setting("tags", self.tags.len(), "at most 100 tags"));
        }
        if self.source.is_empty()
            || self.source.chars().count() > MAX_SOURCE_CHARS
            || self.source.chars().any(char::is_control)
        {
            return Err(Error::InvalidSetting {
                name: "source",
                value: format!("{:?}", self.source),
                expected: "a name of 1 to 100 characters without control characters, such as rust",
            });
        }
        if self.queue_capacity == 0 {
            return Err(setting("queue_capacity", self.queue_capacity, "at least 1 entry"));
        }
        if self.max_queue_bytes < MIN_QUEUE_BYTES {
            return Err(setting("max_queue_bytes", self.max_queue_bytes, "at least 4096 bytes"));
        }
        if self.flush_interval.is_zero() || self.flush_interval > MAX_DURATION {
            return Err(setting_duration("flush_interval", self.flush_interval));
        }
        if self.request_timeout.is_zero() || self.request_timeout > MAX_DURATION {
            return Err(setting_duration("request_timeout", self.request_timeout));
        }
        let (initial, max) = self.backoff;
        if initial.is_zero() || max < initial || max > MAX_DURATION {
            return Err(Error::InvalidSetting {
                name: "backoff",
                value: format!("({initial:?}, {max:?})"),
                expected: "an initial wait above zero and a maximum at least as long, at most 1 hour",
            });
        }
        if self.flush_timeout > MAX_DURATION {
            return Err(Error::InvalidSetting {
                name: "flush_timeout",
                value: format!("{:?}", self.flush_timeout),
                expected: "a duration of at most 1 hour",
            });
        }

        let shared = Arc::new(Shared::new(self.queue_capacity, self.max_queue_bytes));
        let sender = Sender::new(
            shared.clone(),
            SenderConfig {
                url: url.clone(),
                api_key: self.api_key,
                flush_interval: self.flush_interval,
                request_timeout: self.request_timeout,
                backoff_initial: initial,
                backoff_max: max,
            },
        );
        let handle = std::thread::Builder::new()
            .name("vigil-datadog-logs".to_owned())
            .spawn(move || sender.run())
            .map_err(Error::Spawn)?;
        let _ = shared.sender.set(handle.thread().clone());
        Ok(DatadogLogBackend {
            shared,
            format: EntryFormat::new(&self.source, &self.tags),
            url,
            min_level: self.min_level,
            flush_timeout: self.flush_timeout,
            handle: Mutex::new(Some(handle)),
            shutdown_ok: Mutex::new(None),
        })
    }
}

fn setting(name: &'static str, value: usize, expected: &'static str) -> Error {
    Error::InvalidSetting {
        name,
        value: value.to_string(),
        expected,
    }
}

fn setting_duration(name: &'static str, value: Duration) -> Error {
    Error::InvalidSetting {
        name,
        value: format!("{value:?}"),
        expected: "a duration above zero and at most 1 hour",
    }
}

/// Checks an intake URL: `http://` or `https://`, a host, no user info. Returns it as the
/// URL to post to.
fn validate_url(url: &str) -> Result<String, Error> {
    let bad = |reason| Error::InvalidUrl {
        value: redact_userinfo(url),
        reason,
    };
    let trimmed = url.trim();
    let lower = trimmed.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(bad(
            "expected an http:// or https:// URL, such as https://http-intake.logs.datadoghq.com/api/v2/logs",
        ));
    }
    let uri: ureq::http::Uri = trimmed.parse().map_err(|_| bad("not a valid URL"))?;
    let Some(authority) = uri.authority() else {
        return Err(bad("the URL has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad(
            "user info in the URL is not supported (the API key is sent in the DD-API-KEY header)",
        ));
    }
    if authority.host().is_empty() {
        return Err(bad("the URL has no host"));
    }
    if authority.port().is_some() && authority.port_u16().is_none_or(|p| p == 0) {
        return Err(bad("the port must be 1-65535"));
    }
    Ok(trimmed.to_owned())
}

/// The URL with any `user:password@` part replaced, for error messages.
fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_owned(),
    }
}

fn validate_site(site: &str) -> Result<(), Error> {
    let ok = !site.is_empty()
        && site.len() <= 253
        && site.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSite { value: site.to_owned() })
    }
}

fn validate_api_key(key: &Secret) -> Result<(), Error> {
    let key = key.expose();
    if key.trim().is_empty() {
        return Err(Error::InvalidApiKey { reason: "it is empty" });
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidApiKey {
            reason: "it must be printable ASCII without spaces (a Datadog API key is 32 hex digits)",
        });
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), Error> {
    let bad = |reason| Error::InvalidTag {
        value: tag.to_owned(),
        reason,
    };
    if tag.is_empty() {
        return Err(bad("a tag cannot be empty"));
    }
    if tag.chars().count() > MAX_TAG_CHARS {
        return Err(bad("a tag is at most 200 characters"));
    }
    if tag.contains(',') {
        return Err(bad(
            "a tag cannot contain a comma (ddtags is comma-separated): give tags one by one",
        ));
    }
    if tag.chars().any(char::is_control) {
        return Err(bad("a tag cannot contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdef0123456789abcdef0123456789";

    fn builder() -> DatadogLogBuilder {
        DatadogLogBuilder::new(Secret::new(KEY))
    }

    fn error(b: DatadogLogBuilder) -> String {
        let message = b.build().unwrap_err().to_string();
        assert!(!message.contains(KEY), "{message}");
        message
    }

    #[test]
    fn site_becomes_the_intake_url() {
        let backend = builder().site("datadoghq.eu").build().unwrap();
        assert_eq!(backend.url(), "https://http-intake.logs.datadoghq.eu/api/v2/logs");
        let backend = builder().build().unwrap();
        assert_eq!(backend.url(), "https://http-intake.logs.datadoghq.com/api/v2/logs");
        let backend = builder()
            .site("us3.datadoghq.com")
            .url("http://127.0.0.1:8080/x")
            .build()
            .unwrap();
        assert_eq!(backend.url(), "http://127.0.0.1:8080/x");
    }

    #[test]
    fn bad_urls_are_named() {
        assert_eq!(
            error(builder().url("ftp://example.com/logs")),
            "invalid Datadog logs intake URL \"ftp://example.com/logs\": expected an http:// or https:// URL, such as \
             https://http-intake.logs.datadoghq.com/api/v2/logs"
        );
        assert!(error(builder().url("http://")).contains("\"http://\""));
        assert!(error(builder().url("http://exa mple.com/")).contains("not a valid URL"));
        assert!(error(builder().url("http://127.0.0.1:0/")).contains("port"));
        let message = error(builder().url("https://user:hunter2@example.com/logs"));
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("https://<redacted>@example.com/logs"), "{message}");
    }

    #[test]
    fn bad_sites_tags_and_settings_are_named() {
        assert_eq!(
            error(builder().site("https://datadoghq.com")),
            "invalid Datadog site \"https://datadoghq.com\": expected a host name such as datadoghq.com or datadoghq.eu"
        );
        assert!(error(builder().site("")).contains("\"\""));
        assert_eq!(
            error(builder().tags(["team:a,b"])),
            "invalid Datadog tag \"team:a,b\": a tag cannot contain a comma (ddtags is comma-separated): give tags \
             one by one"
        );
        assert!(error(builder().tags([""])).contains("empty"));
        assert!(error(builder().tags(["x".repeat(201)])).contains("200"));
        assert!(error(builder().tags(["a\nb"])).contains("control"));
        assert!(error(builder().tags((0..101).map(|i| format!("t:{i}")))).contains("100 tags"));
        assert!(error(builder().source("")).contains("source"));
        assert_eq!(
            error(builder().queue_capacity(0)),
            "invalid Datadog logs setting queue_capacity=0: expected at least 1 entry"
        );
        assert!(error(builder().max_queue_bytes(10)).contains("max_queue_bytes=10"));
        assert!(error(builder().flush_interval(Duration::ZERO)).contains("flush_interval=0ns"));
        assert!(error(builder().request_timeout(Duration::ZERO)).contains("request_timeout"));
        assert!(error(builder().backoff(Duration::from_secs(2), Duration::from_secs(1))).contains("backoff"));
    }

    #[test]
    fn durations_that_would_overflow_an_instant_are_refused() {
        // `Instant::now() + d` panics for these: on the sender thread (interval, backoff) or on
        // the caller's (flush and drop wait `flush_timeout`).
        assert_eq!(
            error(builder().flush_interval(Duration::MAX)),
            format!(
                "invalid Datadog logs setting flush_interval={:?}: expected a duration above zero and at most 1 hour",
                Duration::MAX
            )
        );
        assert!(error(builder().request_timeout(Duration::MAX)).contains("request_timeout"));
        assert!(error(builder().backoff(Duration::from_secs(1), Duration::MAX)).contains("backoff"));
        assert!(error(builder().flush_timeout(Duration::MAX)).contains("flush_timeout"));
        let ok = builder()
            .url("http://127.0.0.1:9/api/v2/logs")
            .flush_interval(Duration::from_hours(1))
            .request_timeout(Duration::from_hours(1))
            .backoff(Duration::from_secs(1), Duration::from_hours(1))
            .flush_timeout(Duration::ZERO)
            .build();
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn bad_api_keys_are_refused_without_showing_them() {
        let message = DatadogLogBuilder::new(Secret::new("  "))
            .build()
            .unwrap_err()
            .to_string();
        assert_eq!(message, "invalid DATADOG_API_KEY: it is empty");
        let message = DatadogLogBuilder::new(Secret::new("secret value\n"))
            .build()
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("invalid DATADOG_API_KEY"), "{message}");
        assert!(!message.contains("secret value"), "{message}");
    }

    #[test]
    fn debug_redacts_the_key() {
        let b = builder().tags(["team:core"]);
        let text = format!("{b:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("team:core"));
        let backend = b.url("http://127.0.0.1:9/api/v2/logs").build().unwrap();
        let text = format!("{backend:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
