//! [`DatadogTraceLayerBuilder`]: where the agent is, and how traces are queued and sent.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use vigil_core::Resource;

use crate::clock::Clock;
use crate::sender::{RetryPolicy, SenderConfig, TraceSender};
use crate::wire::ServiceInfo;
use crate::{DatadogTraceLayer, Error};

/// The agent host when none is configured (`DD_AGENT_HOST`).
pub const DEFAULT_AGENT_HOST: &str = "localhost";
/// The agent's trace port when none is configured (`DD_TRACE_AGENT_PORT`).
pub const DEFAULT_AGENT_PORT: u16 = 8126;
/// How often queued traces are sent.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Traces (chunks) the queue holds.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Spans kept per trace; more are dropped and counted.
pub const DEFAULT_MAX_TRACE_SPANS: usize = 10_000;
/// The longest duration accepted for any setting: far beyond any sensible value, and far from
/// the overflow of `Instant + Duration` (which panics, here on the sender thread).
const MAX_DURATION: Duration = Duration::from_hours(1);

/// Configures a [`DatadogTraceLayer`] and starts its [`TraceSender`].
///
/// ```
/// use std::time::Duration;
/// use vigil_core::Resource;
/// use vigil_trace_datadog::DatadogTraceLayer;
///
/// let layer = DatadogTraceLayer::builder(Resource::new("api", "production").with_version("1.4.2"))
///     .agent("datadog-agent", 8126)
///     .flush_interval(Duration::from_millis(500))
///     .db_system("postgresql")
///     .build()?;
/// # layer.sender().shutdown(std::time::Instant::now());
/// # Ok::<(), vigil_trace_datadog::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DatadogTraceLayerBuilder {
    resource: Resource,
    agent_host: String,
    agent_port: u16,
    flush_interval: Duration,
    queue_capacity: usize,
    max_trace_spans: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    db_system: Option<String>,
    max_statement_len: usize,
}

impl DatadogTraceLayerBuilder {
    pub(crate) fn new(resource: Resource) -> Self {
        DatadogTraceLayerBuilder {
            resource,
            agent_host: DEFAULT_AGENT_HOST.to_owned(),
            agent_port: DEFAULT_AGENT_PORT,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_trace_spans: DEFAULT_MAX_TRACE_SPANS,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                max_retries: u32::MAX,
            },
            db_system: None,
            max_statement_len: 5_000,
        }
    }

    /// The agent's host and trace port (default `localhost:8126`; the umbrella crate reads
    /// `DD_AGENT_HOST` and `DD_TRACE_AGENT_PORT`).
    #[must_use]
    pub fn agent(mut self, host: impl Into<String>, port: u16) -> Self {
        self.agent_host = host.into();
        self.agent_port = port;
        self
    }

    /// How often queued traces are sent (default 1 s, at most 1 hour). The queue is also sent
    /// as soon as it is half full.
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// How many finished traces (chunks) wait for the sender (default 1024); more are dropped
    /// and counted.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// The most spans kept of one trace (default 10,000); more are dropped and counted in
    /// `vigil.trace.spans.dropped{reason="trace_too_large"}`.
    #[must_use]
    pub fn max_trace_spans(mut self, max: usize) -> Self {
        self.max_trace_spans = max;
        self
    }

    /// How long connecting to the agent may take (default 2 s, at most 1 hour).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request to the agent may take in all (default 10 s, at most 1 hour).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The wait before the first retry, doubled for each next one up to `max` (defaults
    /// 100 ms and 5 s; at most 1 hour). Each wait is chosen at random in its upper half
    /// (jitter).
    #[must_use]
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry.initial_backoff = initial;
        self.retry.max_backoff = max;
        self
    }

    /// How many times a failed payload is retried (on 408, 429, 5xx, timeouts and I/O errors)
    /// before it is dropped and counted (`reason="send_failed"`). By default there is no limit,
    /// as for logs: a payload is retried until the agent takes it or the sender shuts down
    /// (its deadline drops what is left, counted), while new traces wait in the bounded queue
    /// and, past it, are dropped and counted (`reason="queue_full"`). So an agent restarting
    /// loses nothing the queue can hold.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// The `db.system` tag of query spans (`postgresql`, `sqlite`, `mysql`): sqlx's query
    /// events do not say which database they ran on.
    #[must_use]
    pub fn db_system(mut self, system: impl Into<String>) -> Self {
        self.db_system = Some(system.into());
        self
    }

    /// The longest normalised statement used as a query span's resource, in bytes (default
    /// 5,000, the agent's limit).
    #[must_use]
    pub fn max_statement_len(mut self, max: usize) -> Self {
        self.max_statement_len = max;
        self
    }

    /// Checks the settings and starts the sender thread.
    ///
    /// # Errors
    ///
    /// A bad agent host or port, a zero interval, capacity, cap or timeout, a duration over
    /// 1 hour, a maximum backoff below the initial one, or a thread that cannot be started.
    pub fn build(self) -> Result<DatadogTraceLayer, Error> {
        let host = agent_host(&self.agent_host)?;
        if self.agent_port == 0 {
            return Err(Error::InvalidAgentPort);
        }
        let positive = |ok: bool, setting: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(Error::InvalidSetting {
                    setting,
                    expected: "expected a value greater than zero",
                })
            }
        };
        positive(!self.flush_interval.is_zero(), "flush_interval")?;
        positive(self.queue_capacity > 0, "queue_capacity")?;
        positive(self.max_trace_spans > 0, "max_trace_spans")?;
        positive(!self.connect_timeout.is_zero(), "connect_timeout")?;
        positive(!self.request_timeout.is_zero(), "request_timeout")?;
        positive(!self.retry.initial_backoff.is_zero(), "retry_backoff")?;
        positive(self.max_statement_len > 0, "max_statement_len")?;
        for (duration, setting) in [
            (self.flush_interval, "flush_interval"),
            (self.connect_timeout, "connect_timeout"),
            (self.request_timeout, "request_timeout"),
            (self.retry.max_backoff, "retry_backoff"),
        ] {
            if duration > MAX_DURATION {
                return Err(Error::InvalidSetting {
                    setting,
                    expected: "expected a duration of at most 1 hour",
                });
            }
        }
        if self.retry.max_backoff < self.retry.initial_backoff {
            return Err(Error::InvalidSetting {
                setting: "retry_backoff",
                expected: "the maximum backoff must not be below the initial one",
            });
        }
        // From now on the HTTP layer reads callers' trace headers and records response statuses
        // on its request spans.
        vigil_core::trace::register_tracer();
        let clock = Arc::new(Clock::new());
        let config = SenderConfig {
            url: format!("http://{host}:{}/v0.4/traces", self.agent_port),
            flush_interval: self.flush_interval,
            queue_capacity: self.queue_capacity,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            retry: self.retry,
            clock: clock.clone(),
            info: ServiceInfo {
                service: self.resource.service,
                env: self.resource.environment,
                version: self.resource.version,
                pid: self.resource.pid,
                db_system: self.db_system,
                max_statement_len: self.max_statement_len,
            },
        };
        let sender = TraceSender::spawn(config).map_err(Error::Spawn)?;
        Ok(DatadogTraceLayer::from_parts(sender, self.max_trace_spans, clock))
    }
}

/// The host as it goes into the URL: a host name or IPv4 address as given, an IPv6 address
/// in brackets.
fn agent_host(host: &str) -> Result<String, Error> {
    let bad = || Error::InvalidAgentHost { host: host.to_owned() };
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(v6) = bare.parse::<Ipv6Addr>() {
        return Ok(format!("[{v6}]"));
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63 && !label.starts_with('-') && !label.ends_with('-'))
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid { Ok(host.to_owned()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_hosts() {
        assert_eq!(agent_host("localhost").unwrap(), "localhost");
        assert_eq!(agent_host("127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(
            agent_host("dd-agent.monitoring.svc").unwrap(),
            "dd-agent.monitoring.svc"
        );
        assert_eq!(agent_host("::1").unwrap(), "[::1]");
        assert_eq!(agent_host("[::1]").unwrap(), "[::1]");
        for bad in ["", "a b", "http://x", "x/y", "-x", "a..b", "host:8126", "é"] {
            assert!(
                matches!(agent_host(bad), Err(Error::InvalidAgentHost { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_settings_with_a_clear_message() {
        let b = || DatadogTraceLayerBuilder::new(Resource::new("s", "e"));
        assert_eq!(
            b().agent("", 1).build().unwrap_err().to_string(),
            r#"Datadog agent host "": expected a host name or an IP address"#
        );
        assert!(matches!(b().agent("x", 0).build(), Err(Error::InvalidAgentPort)));
        let err = b().queue_capacity(0).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "trace setting queue_capacity: expected a value greater than zero"
        );
        assert!(
            b().retry_backoff(Duration::from_secs(2), Duration::from_secs(1))
                .build()
                .is_err()
        );
        assert!(b().flush_interval(Duration::ZERO).build().is_err());
    }

    #[test]
    fn durations_that_would_overflow_an_instant_are_refused() {
        // `Instant::now() + d` (and `backoff * 2`) panic for these on the sender thread, which
        // would then drop every trace.
        let b = || DatadogTraceLayerBuilder::new(Resource::new("s", "e"));
        assert_eq!(
            b().flush_interval(Duration::MAX).build().unwrap_err().to_string(),
            "trace setting flush_interval: expected a duration of at most 1 hour"
        );
        let setting = |r: Result<DatadogTraceLayer, Error>| match r {
            Err(Error::InvalidSetting { setting, .. }) => setting,
            other => panic!("{other:?}"),
        };
        assert_eq!(setting(b().connect_timeout(Duration::MAX).build()), "connect_timeout");
        assert_eq!(setting(b().request_timeout(Duration::MAX).build()), "request_timeout");
        assert_eq!(
            setting(b().retry_backoff(Duration::from_secs(1), Duration::MAX).build()),
            "retry_backoff"
        );
        let layer = b()
            .flush_interval(Duration::from_hours(1))
            .retry_backoff(Duration::from_secs(1), Duration::from_hours(1))
            .build()
            .unwrap();
        layer.sender().shutdown(std::time::Instant::now());
    }
}
