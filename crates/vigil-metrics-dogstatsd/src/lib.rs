//! Vigil's DogStatsD metrics backend: Datadog's metrics path through the Datadog Agent.
//!
//! [`DogStatsdBackend`] is a [`metrics::Recorder`] built on metrics-exporter-dogstatsd. It
//! aggregates on the client (counters summed, gauges last value, histogram values batched) and
//! a background thread sends DogStatsD lines to the Agent every flush interval, over UDP
//! (default `localhost:8125`) or the Agent's Unix socket. The umbrella crate `vigil` installs it
//! next to the Prometheus backend when `metrics_backends` contains `dogstatsd`.
//!
//! ```
//! use std::net::UdpSocket;
//! use std::time::Duration;
//! use vigil_metrics_dogstatsd::DogStatsdBackend;
//!
//! // Stands in for the Datadog Agent's DogStatsD port.
//! let agent = UdpSocket::bind("127.0.0.1:0")?;
//! agent.set_read_timeout(Some(Duration::from_secs(30)))?;
//!
//! let backend = DogStatsdBackend::builder()
//!     .udp("127.0.0.1", agent.local_addr()?.port())
//!     .global_tag("service", "api")
//!     .flush_interval(Duration::from_millis(50))
//!     .build()?;
//! metrics::with_local_recorder(&backend, || {
//!     metrics::counter!("comments.created", "region" => "eu").increment(1);
//! });
//!
//! let mut datagram = [0; 1500];
//! let n = agent.recv(&mut datagram)?;
//! assert_eq!(&datagram[..n], b"comments.created:1|c|#region:eu,service:api\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is sent
//!
//! One line per metric and tag set per flush: `name:value|type|#tag:value,...`, tags of the
//! metric first, then the global tags. Counters are `|c` (the increments since the last flush;
//! a counter that stopped changing is sent once more as `0` and then no longer), gauges `|g`
//! (the last value, sent on every flush), histograms `|d` (a Datadog distribution, the
//! default) or `|h`, with every value recorded since the last flush in one or more
//! multi-value lines (`name:12.0:480.0|d`). No timestamps are sent, so several instances may
//! share one Agent.
//!
//! Names are the catalogue's dotted names (`http.request.duration`), as DogStatsD wants them;
//! nothing is renamed. Descriptions are ignored: DogStatsD has no help text.
//!
//! # Units
//!
//! DogStatsD carries no unit: values are sent as recorded. The catalogue's durations are
//! milliseconds (`http.request.duration` 12.5 means 12.5 ms) and its sizes are bytes, so set
//! the unit in Datadog's metric metadata (millisecond, byte) for dashboards to show it. Unlike
//! the Prometheus backend, nothing is converted to seconds.
//!
//! # Sanitisation
//!
//! DogStatsD reserves `:` and `|` (field separators), `,` and `#` (tag list) and `\n` (line
//! separator), and the exporter writes names and tags as given. So before a key reaches it:
//! - metric names keep ASCII letters, digits, `_` and `.`; anything else becomes `_` (what
//!   Datadog does to them anyway);
//! - tag keys lose `|`, `,`, `#`, `:` and control characters to `_`;
//! - tag values lose `|`, `,`, `#` and control characters to `_`; a `:` stays, since Datadog
//!   splits a tag at its first colon (`url:http://a:80` is the tag `url`).
//!
//! No metric name or tag can therefore end its line or add one. A key that is already clean
//! costs a scan and no allocation. Replacements are counted
//! ([`DogStatsdStats::sanitized_keys`]) and logged once. Global tags and the prefix are
//! configuration: a reserved character there is a [`DogStatsdError`] from `build`.
//!
//! NaN and infinite gauge and histogram values are dropped and counted
//! ([`DogStatsdStats::non_finite_dropped`]).
//!
//! # Delivery, errors and shutdown
//!
//! Recording never does I/O: the caller updates atomics in the exporter's storage and the
//! forwarder thread sends. Send errors (Agent down, ICMP port unreachable, socket missing,
//! write timeout) never reach the caller: the payload is dropped, not retried, the exporter
//! logs `Failed to send payload.` at ERROR (target `metrics_exporter_dogstatsd`, once per
//! payload) and counts it in its telemetry. The forwarder reconnects on the next send.
//!
//! The exporter's telemetry is a set of counters, `datadog.dogstatsd.client.*` (`metrics`,
//! `metrics_by_type`, `packets_sent`, `packets_dropped`, `packets_dropped_writer` — send
//! failures —, `packets_dropped_serializer` — lines longer than `max_payload_len` —,
//! `bytes_sent`, `bytes_dropped`, `bytes_dropped_writer`, `aggregated_context`,
//! `aggregated_context_by_type`), tagged `client:rust`, `client_version`, `client_transport`
//! (`udp`, `uds`, `uds-stream`), and sent to the Agent like any metric. The exporter registers
//! them with the *global* recorder, so they reach every backend installed there (Prometheus
//! shows them as `datadog_dogstatsd_client_*_total`), and this backend observes them for
//! [`DogStatsdBackend::stats`] and [`DogStatsdBackend::flush`] when it is the global recorder or
//! part of it.
//!
//! The exporter has no way to flush now or to stop its thread (it runs until the process
//! exits; build one backend per process). [`DogStatsdBackend::flush`] waits for the periodic
//! flushes instead: call it on shutdown, or up to one flush interval of data is lost (see its
//! docs for the bound).
//!
//! # Memory and cardinality
//!
//! The exporter keeps every metric and tag set it has seen until the process exits (gauges are
//! re-sent on every flush), so tag values must be bounded, as everywhere in Vigil: a route
//! template, never a raw path. As a safety net, as in the Prometheus backend, new tag sets past
//! [`DogStatsdBackendBuilder::max_series_per_metric`] (default 1000) fold into one series whose
//! tag values are `__overflow__`, and new metric names past
//! [`DogStatsdBackendBuilder::max_metric_names`] (default 10000) are not sent; both are counted
//! by `vigil.metrics.overflow` (tag `metric`) and logged once. Histogram values are buffered
//! until the next flush (8 bytes each) unless a reservoir is set with
//! [`DogStatsdBackendBuilder::histogram_reservoir`].

mod backend;
mod limit;
mod sanitize;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use backend::{
    DEFAULT_FLUSH_INTERVAL, DEFAULT_HOST, DEFAULT_MAX_PAYLOAD_LEN_UDP, DEFAULT_MAX_PAYLOAD_LEN_UNIX, DEFAULT_PORT,
    DEFAULT_WRITE_TIMEOUT, DogStatsdBackend, DogStatsdBackendBuilder, DogStatsdStats, FLUSH_SLACK, FlushOutcome,
    MAX_FLUSH_INTERVAL, MAX_MAX_PAYLOAD_LEN_UDP, MAX_MAX_PAYLOAD_LEN_UNIX, MIN_FLUSH_INTERVAL, MIN_HISTOGRAM_RESERVOIR,
    MIN_MAX_PAYLOAD_LEN,
};
pub use limit::{DEFAULT_MAX_METRIC_NAMES, DEFAULT_MAX_SERIES_PER_METRIC, OVERFLOW_TAG_VALUE, TOO_MANY_METRICS};

/// Errors of the DogStatsD backend, all raised by [`DogStatsdBackendBuilder::build`].
#[derive(Debug, thiserror::Error)]
pub enum DogStatsdError {
    /// The Agent's host name does not resolve.
    #[error("cannot resolve the DogStatsD agent address {addr}: {source}")]
    Resolve {
        /// The address as given, `host:port`.
        addr: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The Agent's host resolves only to IPv6 addresses; the exporter sends from an IPv4 socket.
    #[error(
        "the DogStatsD agent address {addr} has no IPv4 address (found {found:?}); the exporter sends over IPv4 only"
    )]
    NoIpv4Address {
        /// The address as given, `host:port`.
        addr: String,
        /// The addresses it resolved to.
        found: Vec<SocketAddr>,
    },
    /// Port 0 cannot be sent to.
    #[error("invalid DogStatsD agent address {addr}: expected a port number 1-65535")]
    InvalidPort {
        /// The address as given, `host:port`.
        addr: String,
    },
    /// A DogStatsD URL (as in `DD_DOGSTATSD_URL`) that cannot be parsed.
    #[error("invalid DogStatsD URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Unix socket path that cannot be used.
    #[error("invalid DogStatsD socket path {path:?}: {reason}")]
    InvalidSocketPath {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A global tag whose key is empty or has `|`, `,`, `#`, `:` or a control character, or
    /// whose value has `|`, `,`, `#` or a control character.
    #[error(
        "invalid DogStatsD global tag {key:?}={value:?}: keys must be non-empty without | , # : or control characters, values without | , # or control characters"
    )]
    InvalidGlobalTag {
        /// The tag key.
        key: String,
        /// The tag value.
        value: String,
    },
    /// A prefix with characters other than ASCII letters, digits, `_` and `.`.
    #[error("invalid DogStatsD metric prefix {0:?}: expected ASCII letters, digits, _ and .")]
    InvalidPrefix(String),
    /// A maximum payload length out of range for the transport.
    #[error("invalid DogStatsD max payload length {len}: expected {min}-{max} bytes for this transport")]
    InvalidMaxPayloadLen {
        /// The length given.
        len: usize,
        /// The smallest accepted.
        min: usize,
        /// The largest accepted for the transport.
        max: usize,
    },
    /// A flush interval shorter than [`MIN_FLUSH_INTERVAL`] or longer than
    /// [`MAX_FLUSH_INTERVAL`].
    #[error("invalid DogStatsD flush interval {0:?}: expected 10ms to 1h")]
    InvalidFlushInterval(Duration),
    /// A write timeout of zero.
    #[error("invalid DogStatsD write timeout: expected more than zero")]
    InvalidWriteTimeout,
    /// A histogram reservoir smaller than [`MIN_HISTOGRAM_RESERVOIR`].
    #[error("invalid DogStatsD histogram reservoir size {0}: expected at least 16")]
    InvalidHistogramReservoir(usize),
    /// The exporter rejected its configuration or could not start its forwarder thread.
    #[error("metrics-exporter-dogstatsd: {0}")]
    Exporter(String),
}
