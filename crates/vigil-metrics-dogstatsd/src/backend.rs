//! The recorder: metrics-exporter-dogstatsd behind name/tag sanitisation, a finite-value guard,
//! validated configuration, and a flush barrier built on the exporter's own telemetry.

use std::borrow::Cow;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Label, Metadata, Recorder, SharedString,
    Unit,
};
use metrics_exporter_dogstatsd::{AggregationMode, DogStatsDBuilder, DogStatsDRecorder};

use crate::DogStatsdError;
use crate::limit::{Admission, DEFAULT_MAX_METRIC_NAMES, DEFAULT_MAX_SERIES_PER_METRIC, SeriesLimit, TOO_MANY_METRICS};
use crate::sanitize;

/// The Datadog Agent's DogStatsD host by default.
pub const DEFAULT_HOST: &str = "localhost";
/// The Datadog Agent's DogStatsD UDP port by default (`dogstatsd_port`, `DD_DOGSTATSD_PORT`).
pub const DEFAULT_PORT: u16 = 8125;
/// How often aggregated metrics are flushed by default: 2 s, as datadog-go's client-side
/// aggregation. The Agent itself aggregates into 10 s buckets.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// The shortest flush interval accepted (a shorter one would keep the forwarder thread busy).
pub const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// The longest flush interval accepted: the exporter's forwarder computes `Instant::now() +
/// interval` and its thread panics when that overflows, after which nothing is sent.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_hours(1);
/// How long one send may block the forwarder thread by default (Unix sockets; a UDP send does
/// not block).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default largest payload over UDP: fits a 1500-byte Ethernet MTU.
pub const DEFAULT_MAX_PAYLOAD_LEN_UDP: usize = 1432;
/// Default largest payload over a Unix socket: the Agent's default `dogstatsd_buffer_size`.
pub const DEFAULT_MAX_PAYLOAD_LEN_UNIX: usize = 8192;
/// The smallest payload length accepted.
pub const MIN_MAX_PAYLOAD_LEN: usize = 64;
/// The largest payload length accepted over UDP: the largest IPv4 UDP datagram.
pub const MAX_MAX_PAYLOAD_LEN_UDP: usize = 65_507;
/// The largest payload length accepted over a Unix socket (the exporter's bound).
pub const MAX_MAX_PAYLOAD_LEN_UNIX: usize = u32::MAX as usize;
/// The smallest histogram reservoir accepted.
pub const MIN_HISTOGRAM_RESERVOIR: usize = 16;
/// Extra time [`DogStatsdBackend::flush`] waits beyond two flush intervals when it has no
/// flush signal.
pub const FLUSH_SLACK: Duration = Duration::from_millis(100);

/// The longest Unix socket path (`sun_path` holds 108 bytes with the terminating NUL).
const MAX_UNIX_PATH_LEN: usize = 107;
/// The namespace of the exporter's own telemetry metrics.
const TELEMETRY_PREFIX: &str = "datadog.dogstatsd.client.";

/// Where the Agent is, as configured (resolved by [`DogStatsdBackendBuilder::build`]).
#[derive(Debug, Clone)]
enum Destination {
    Udp { host: String, port: u16 },
    UnixDatagram(PathBuf),
    UnixStream(PathBuf),
    Url(String),
}

/// Where the Agent is, resolved.
#[derive(Debug, Clone)]
enum Target {
    Udp { given: String, addr: SocketAddr },
    UnixDatagram(PathBuf),
    UnixStream(PathBuf),
}

impl Target {
    /// The address in the exporter's syntax (`unix://` is a stream socket there).
    fn exporter_address(&self) -> String {
        match self {
            Target::Udp { addr, .. } => addr.to_string(),
            Target::UnixDatagram(p) => format!("unixgram://{}", p.display()),
            Target::UnixStream(p) => format!("unix://{}", p.display()),
        }
    }

    fn is_udp(&self) -> bool {
        matches!(self, Target::Udp { .. })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Udp { given, addr } => write!(f, "udp://{addr} ({given})"),
            Target::UnixDatagram(p) => write!(f, "unixgram://{}", p.display()),
            Target::UnixStream(p) => write!(f, "unixstream://{}", p.display()),
        }
    }
}

/// Configures a [`DogStatsdBackend`]. Every setting is checked by [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct DogStatsdBackendBuilder {
    destination: Destination,
    global_tags: Vec<(String, String)>,
    prefix: Option<String>,
    max_payload_len: Option<usize>,
    flush_interval: Duration,
    write_timeout: Duration,
    histograms_as_distributions: bool,
    histogram_reservoir: Option<usize>,
    telemetry: bool,
    max_series_per_metric: usize,
    max_metric_names: usize,
}

impl Default for DogStatsdBackendBuilder {
    fn default() -> Self {
        DogStatsdBackendBuilder {
            destination: Destination::Udp {
                host: DEFAULT_HOST.to_owned(),
                port: DEFAULT_PORT,
            },
            global_tags: Vec::new(),
            prefix: None,
            max_payload_len: None,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            histograms_as_distributions: true,
            histogram_reservoir: None,
            telemetry: true,
            max_series_per_metric: DEFAULT_MAX_SERIES_PER_METRIC,
            max_metric_names: DEFAULT_MAX_METRIC_NAMES,
        }
    }
}

impl DogStatsdBackendBuilder {
    /// Sends over UDP to `host:port` (default `localhost:8125`, the Agent's default). The name
    /// is resolved once, by [`build`](Self::build), to an IPv4 address: the exporter sends from
    /// an IPv4 socket, so an IPv6-only agent cannot be reached.
    #[must_use]
    pub fn udp(mut self, host: impl Into<String>, port: u16) -> Self {
        self.destination = Destination::Udp {
            host: host.into(),
            port,
        };
        self
    }

    /// Sends to the Agent's Unix datagram socket (`dogstatsd_socket` in `datadog.yaml`,
    /// `DD_DOGSTATSD_SOCKET`; often `/var/run/datadog/dsd.socket`). The socket need not exist
    /// yet: the forwarder connects on each flush until it succeeds, and reconnects after the
    /// Agent restarts.
    #[must_use]
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.destination = Destination::UnixDatagram(path.into());
        self
    }

    /// Sends to a Unix stream socket (`SOCK_STREAM`; each payload is preceded by its length as
    /// a 4-byte little-endian integer), which the Agent serves when `dogstatsd_stream_socket`
    /// is set. Delivery is more reliable under load than with datagrams.
    #[must_use]
    pub fn unix_stream_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.destination = Destination::UnixStream(path.into());
        self
    }

    /// Sets the destination from a URL in the syntax of Datadog's `DD_DOGSTATSD_URL`:
    /// `udp://host:port` (or `host:port`; `[::1]:8125` for an IPv6 literal; the port defaults
    /// to 8125), `unix:///path` or `unixgram:///path` (a datagram socket, as in datadog-go and
    /// the tracers), or `unixstream:///path`. Checked by [`build`](Self::build).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.destination = Destination::Url(url.into());
        self
    }

    /// Adds a tag to every metric line (Vigil adds `service`, `env` and `version`). Tags are
    /// written after the metric's own tags; a metric tag with the same key does not replace it
    /// (DogStatsD tags are a list).
    #[must_use]
    pub fn global_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.global_tags.push((key.into(), value.into()));
        self
    }

    /// Prefixes every metric name with `prefix.` (leading and trailing dots are ignored; an
    /// empty prefix is none). The exporter's own `datadog.dogstatsd.client.*` telemetry is not
    /// prefixed.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The largest payload (datagram) sent, in bytes: several lines are packed into one payload
    /// up to this size; a single line longer than this is dropped and counted
    /// ([`DogStatsdStats::serialize_failed`]). Defaults: 1432 over UDP, 8192 over a Unix socket.
    /// Keep it at most the Agent's `dogstatsd_buffer_size` (8192 by default).
    #[must_use]
    pub fn max_payload_len(mut self, len: usize) -> Self {
        self.max_payload_len = Some(len);
        self
    }

    /// How often aggregated metrics are sent (default 2 s, 10 ms to 1 hour). Within an interval,
    /// counter increments are summed, a gauge keeps its last value, and histogram values are
    /// sent together in multi-value lines.
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// How long one send may block the forwarder thread before the payload is dropped and
    /// counted (default 1 s; must not be zero). Only Unix sockets block.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sends histograms as Datadog distributions (`|d`, the default: aggregated globally by
    /// Datadog, with true percentiles), or as Agent-side histograms (`|h`) when `false`.
    #[must_use]
    pub fn histograms_as_distributions(mut self, yes: bool) -> Self {
        self.histograms_as_distributions = yes;
        self
    }

    /// Keeps at most `size` values per histogram between flushes, by reservoir sampling (lines
    /// then carry a sample rate, `|@0.5`). Off by default: every value is kept until the next
    /// flush, which costs 8 bytes per recorded value and is exact; with a reservoir each
    /// histogram costs about `16 × size` bytes, however many values arrive.
    #[must_use]
    pub fn histogram_reservoir(mut self, size: usize) -> Self {
        self.histogram_reservoir = Some(size);
        self
    }

    /// Whether the exporter sends its own telemetry, `datadog.dogstatsd.client.*` counters
    /// (packets and bytes sent and dropped, points and contexts by type; default on). They go
    /// through the global recorder, so they also reach every other backend installed next to
    /// this one. When this backend is (part of) the global recorder they also feed
    /// [`DogStatsdBackend::stats`] and the flush barrier of [`DogStatsdBackend::flush`].
    #[must_use]
    pub fn telemetry(mut self, on: bool) -> Self {
        self.telemetry = on;
        self
    }

    /// Tag sets kept per metric (default 1000, at least 1); past it, new tag sets fold into
    /// one overflow series whose tag values are all `__overflow__`, counted by
    /// `vigil.metrics.overflow` (tag `metric`) and logged once per metric. The exporter never
    /// forgets a series, so this bounds its memory and the lines sent per flush.
    #[must_use]
    pub fn max_series_per_metric(mut self, n: usize) -> Self {
        self.max_series_per_metric = n.max(1);
        self
    }

    /// Distinct metric names kept (default 10000, at least 1); past it, new names are not sent,
    /// counted by `vigil.metrics.overflow{metric:__too_many_metrics__}` and logged once.
    #[must_use]
    pub fn max_metric_names(mut self, n: usize) -> Self {
        self.max_metric_names = n.max(1);
        self
    }

    /// Checks the configuration, resolves the destination and starts the exporter's forwarder
    /// thread.
    ///
    /// # Errors
    ///
    /// A [`DogStatsdError`] naming the setting and the value that was rejected.
    pub fn build(self) -> Result<DogStatsdBackend, DogStatsdError> {
        let target = resolve(self.destination)?;
        for (key, value) in &self.global_tags {
            if !sanitize::tag_key_is_clean(key) || !sanitize::tag_value_is_clean(value) {
                return Err(DogStatsdError::InvalidGlobalTag {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        let prefix = match self.prefix {
            None => None,
            Some(p) => {
                let trimmed = p.trim_matches('.');
                if trimmed.is_empty() {
                    None
                } else if sanitize::name_is_clean(trimmed) {
                    Some(trimmed.to_owned())
                } else {
                    return Err(DogStatsdError::InvalidPrefix(p));
                }
            }
        };
        let max_allowed = if target.is_udp() {
            MAX_MAX_PAYLOAD_LEN_UDP
        } else {
            MAX_MAX_PAYLOAD_LEN_UNIX
        };
        let max_payload_len = self.max_payload_len.unwrap_or(if target.is_udp() {
            DEFAULT_MAX_PAYLOAD_LEN_UDP
        } else {
            DEFAULT_MAX_PAYLOAD_LEN_UNIX
        });
        if !(MIN_MAX_PAYLOAD_LEN..=max_allowed).contains(&max_payload_len) {
            return Err(DogStatsdError::InvalidMaxPayloadLen {
                len: max_payload_len,
                min: MIN_MAX_PAYLOAD_LEN,
                max: max_allowed,
            });
        }
        if !(MIN_FLUSH_INTERVAL..=MAX_FLUSH_INTERVAL).contains(&self.flush_interval) {
            return Err(DogStatsdError::InvalidFlushInterval(self.flush_interval));
        }
        if self.write_timeout.is_zero() {
            return Err(DogStatsdError::InvalidWriteTimeout);
        }
        if let Some(size) = self.histogram_reservoir
            && size < MIN_HISTOGRAM_RESERVOIR
        {
            return Err(DogStatsdError::InvalidHistogramReservoir(size));
        }

        let labels: Vec<Label> = self
            .global_tags
            .iter()
            .map(|(k, v)| Label::new(k.clone(), v.clone()))
            .collect();
        let mut builder = DogStatsDBuilder::default()
            .with_remote_address(target.exporter_address())
            .map_err(|e| DogStatsdError::Exporter(e.to_string()))?
            .with_maximum_payload_length(max_payload_len)
            .map_err(|e| DogStatsdError::Exporter(e.to_string()))?
            .with_write_timeout(self.write_timeout)
            .with_flush_interval(self.flush_interval)
            // Without timestamps: several instances may share one Agent.
            .with_aggregation_mode(AggregationMode::Conservative)
            .with_global_labels(labels)
            .with_telemetry(self.telemetry)
            .send_histograms_as_distributions(self.histograms_as_distributions)
            .with_histogram_sampling(self.histogram_reservoir.is_some());
        if let Some(size) = self.histogram_reservoir {
            builder = builder.with_histogram_reservoir_size(size);
        }
        if let Some(p) = &prefix {
            builder = builder.set_global_prefix(p.clone());
        }
        let recorder = builder.build().map_err(|e| DogStatsdError::Exporter(e.to_string()))?;
        Ok(DogStatsdBackend {
            inner: Arc::new(Inner {
                recorder,
                config: Config {
                    target,
                    prefix,
                    global_tags: self.global_tags,
                    max_payload_len,
                    flush_interval: self.flush_interval,
                    write_timeout: self.write_timeout,
                    histograms_as_distributions: self.histograms_as_distributions,
                    histogram_reservoir: self.histogram_reservoir,
                    telemetry: self.telemetry,
                },
                shared: Arc::new(Shared::default()),
                limit: SeriesLimit::new(self.max_series_per_metric, self.max_metric_names),
            }),
        })
    }
}

fn resolve(destination: Destination) -> Result<Target, DogStatsdError> {
    match destination {
        Destination::Udp { host, port } => resolve_udp(&host, port),
        Destination::UnixDatagram(path) => check_unix_path(&path).map(|()| Target::UnixDatagram(path)),
        Destination::UnixStream(path) => check_unix_path(&path).map(|()| Target::UnixStream(path)),
        Destination::Url(url) => {
            let bad = |reason: &'static str| DogStatsdError::InvalidUrl {
                url: url.clone(),
                reason,
            };
            if let Some(rest) = url.strip_prefix("unix://").or_else(|| url.strip_prefix("unixgram://")) {
                resolve(Destination::UnixDatagram(PathBuf::from(rest)))
            } else if let Some(rest) = url.strip_prefix("unixstream://") {
                resolve(Destination::UnixStream(PathBuf::from(rest)))
            } else {
                let rest = url.strip_prefix("udp://").unwrap_or(&url);
                if rest.contains("://") {
                    return Err(bad("expected udp://, unix://, unixgram:// or unixstream://"));
                }
                let (host, port) = split_host_port(rest).map_err(bad)?;
                resolve_udp(host, port)
            }
        }
    }
}

/// `host:port`, `[v6]:port`, `host` or `[v6]`; the port defaults to 8125.
fn split_host_port(s: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 address is missing its closing ]")?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or("expected :port after ]")?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err("an IPv6 address must be written in brackets, [::1]:8125"),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty");
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().map_err(|_| "expected a port number 1-65535")?,
    };
    Ok((host, port))
}

fn resolve_udp(host: &str, port: u16) -> Result<Target, DogStatsdError> {
    let given = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    if port == 0 {
        return Err(DogStatsdError::InvalidPort { addr: given });
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| DogStatsdError::Resolve {
            addr: given.clone(),
            source,
        })?
        .collect();
    match addrs.iter().find(|a| a.is_ipv4()) {
        Some(addr) => Ok(Target::Udp { given, addr: *addr }),
        None => Err(DogStatsdError::NoIpv4Address {
            addr: given,
            found: addrs,
        }),
    }
}

fn check_unix_path(path: &Path) -> Result<(), DogStatsdError> {
    let bad = |reason: &'static str| {
        Err(DogStatsdError::InvalidSocketPath {
            path: path.to_owned(),
            reason,
        })
    };
    let Some(s) = path.to_str() else {
        return bad("the path is not valid UTF-8");
    };
    if s.is_empty() {
        return bad("the path is empty");
    }
    if s.contains('\0') {
        return bad("the path contains a NUL byte (abstract sockets are not supported)");
    }
    if s.len() > MAX_UNIX_PATH_LEN {
        return bad("the path is longer than the 107 bytes a Unix socket address holds");
    }
    Ok(())
}

/// The configuration a backend runs with (shown by its Debug output).
#[derive(Debug)]
struct Config {
    target: Target,
    prefix: Option<String>,
    global_tags: Vec<(String, String)>,
    max_payload_len: usize,
    flush_interval: Duration,
    write_timeout: Duration,
    histograms_as_distributions: bool,
    histogram_reservoir: Option<usize>,
    telemetry: bool,
}

/// Counters shared by the backend and the handles it hands out.
#[derive(Default)]
struct Shared {
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    packets_send_failed: AtomicU64,
    bytes_send_failed: AtomicU64,
    serialize_failed: AtomicU64,
    non_finite_dropped: AtomicU64,
    sanitized_keys: AtomicU64,
    series_overflowed: AtomicU64,
    metric_names_dropped: AtomicU64,
    non_finite_warned: AtomicBool,
    sanitized_warned: AtomicBool,
    /// Completed flush cycles (with updates) seen through the exporter's telemetry.
    ///
    /// The exporter's forwarder, once per flush interval: flushes the registry into payloads,
    /// sends them spread over the interval, and then, when the cycle had updates, increments its
    /// telemetry counters in a fixed order; the tap counts the last one.
    cycles: Mutex<u64>,
    cycle_done: Condvar,
    /// The exporter's handle of `datadog.dogstatsd.client.metrics`: incrementing it by zero
    /// marks the next flush cycle as having updates, so it reports (see `flush`).
    poke: OnceLock<Counter>,
}

impl Shared {
    fn cycles(&self) -> std::sync::MutexGuard<'_, u64> {
        self.cycles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dropped_non_finite(&self, metric: &'static str, value: f64) {
        self.non_finite_dropped.fetch_add(1, Ordering::Relaxed);
        if !self.non_finite_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                kind = metric,
                value,
                "DogStatsD: a NaN or infinite value was dropped (counted in stats().non_finite_dropped; logged once)"
            );
        }
    }
}

struct Inner {
    recorder: DogStatsDRecorder,
    config: Config,
    shared: Arc<Shared>,
    limit: SeriesLimit,
}

/// What [`DogStatsdBackend::stats`] reports.
///
/// The packet and byte counts come from the exporter's telemetry, which reaches this backend
/// only when it is (part of) the global recorder and telemetry is on; they stay zero otherwise.
/// With several DogStatsD backends in one process, the global one counts them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DogStatsdStats {
    /// Payloads (datagrams, or stream frames) handed to the socket.
    pub packets_sent: u64,
    /// Bytes handed to the socket.
    pub bytes_sent: u64,
    /// Payloads the socket refused (Agent down, ICMP port unreachable, socket missing, write
    /// timeout): dropped, not retried.
    pub packets_send_failed: u64,
    /// Bytes of those payloads.
    pub bytes_send_failed: u64,
    /// Metrics (or chunks of histogram values) that did not fit in `max_payload_len`: dropped.
    pub serialize_failed: u64,
    /// Flush cycles with updates that completed (all their payloads sent or dropped).
    pub flush_cycles: u64,
    /// Gauge and histogram values dropped because they were NaN or infinite.
    pub non_finite_dropped: u64,
    /// Registrations whose metric name or tags had characters replaced (see the crate docs).
    pub sanitized_keys: u64,
    /// Registrations of a new tag set past the metric's limit, folded into its overflow series.
    pub series_overflowed: u64,
    /// Registrations of a new metric name past the limit of names: not sent.
    pub metric_names_dropped: u64,
}

/// How [`DogStatsdBackend::flush`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Two flush cycles completed after the call, the second one started after it: everything
    /// recorded before the call was handed to the socket (or counted as a send failure).
    Delivered,
    /// There is no flush signal (telemetry is off, or this backend is not the global recorder
    /// or part of it, or nothing was recorded yet), so `flush` waited two flush intervals plus
    /// [`FLUSH_SLACK`], within which the exporter normally sends what was recorded before.
    Waited,
    /// The timeout passed first: what was recorded shortly before the call may not be sent yet.
    TimedOut,
}

/// Vigil's DogStatsD metrics backend: a [`metrics::Recorder`] built on
/// metrics-exporter-dogstatsd, which aggregates client-side and sends to the Datadog Agent from
/// a background thread.
///
/// On top of the exporter it:
/// - replaces the characters DogStatsD reserves in metric names and tags, so no name or label
///   value can forge another metric line (see the crate docs for the rules);
/// - drops NaN and infinite gauge and histogram values (a NaN would stick to a gauge for
///   good), counting them;
/// - limits tag sets per metric and metric names (see [`DogStatsdBackendBuilder::max_series_per_metric`]),
///   since the exporter never forgets a series;
/// - checks its configuration and resolves the Agent's address with errors that name the value;
/// - waits for delivery on [`flush`](Self::flush), and reports send failures in
///   [`stats`](Self::stats), using the exporter's telemetry.
///
/// Recording never does I/O and never blocks on the network: a counter update is three atomic
/// operations on the exporter's storage (a store and two adds); gauges and histograms add one
/// finiteness check.
/// Registering a metric (every `counter!`/`gauge!`/`histogram!` call) scans the name and tags for
/// reserved characters, looks the series up in the limit's sharded set and then in the
/// exporter's sharded registry (read locks, no global lock), and for gauges and histograms
/// allocates a small guard: cache handles where updates are hot.
///
/// Cloning is cheap and shares the exporter.
#[derive(Clone)]
pub struct DogStatsdBackend {
    inner: Arc<Inner>,
}

impl fmt::Debug for DogStatsdBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("DogStatsdBackend")
            .field("target", &format_args!("{}", c.target))
            .field("prefix", &c.prefix)
            .field("global_tags", &c.global_tags)
            .field("max_payload_len", &c.max_payload_len)
            .field("flush_interval", &c.flush_interval)
            .field("write_timeout", &c.write_timeout)
            .field(
                "histograms_as",
                &if c.histograms_as_distributions {
                    "distribution"
                } else {
                    "histogram"
                },
            )
            .field("histogram_reservoir", &c.histogram_reservoir)
            .field("telemetry", &c.telemetry)
            .field("max_series_per_metric", &self.inner.limit.max_series_per_metric())
            .field("max_metric_names", &self.inner.limit.max_metric_names())
            .field("stats", &self.stats())
            .finish()
    }
}

impl DogStatsdBackend {
    /// A builder with the defaults: UDP to `localhost:8125`, a 2 s flush interval, histograms
    /// as distributions.
    pub fn builder() -> DogStatsdBackendBuilder {
        DogStatsdBackendBuilder::default()
    }

    /// The configured flush interval.
    pub fn flush_interval(&self) -> Duration {
        self.inner.config.flush_interval
    }

    /// What was sent, dropped and sanitised so far.
    pub fn stats(&self) -> DogStatsdStats {
        let s = &self.inner.shared;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DogStatsdStats {
            packets_sent: load(&s.packets_sent),
            bytes_sent: load(&s.bytes_sent),
            packets_send_failed: load(&s.packets_send_failed),
            bytes_send_failed: load(&s.bytes_send_failed),
            serialize_failed: load(&s.serialize_failed),
            flush_cycles: *s.cycles(),
            non_finite_dropped: load(&s.non_finite_dropped),
            sanitized_keys: load(&s.sanitized_keys),
            series_overflowed: load(&s.series_overflowed),
            metric_names_dropped: load(&s.metric_names_dropped),
        }
    }

    /// Waits, at most `timeout`, until what was recorded before the call has been sent: call
    /// it on shutdown (the umbrella's guard does).
    ///
    /// The exporter cannot be told to flush now, nor stopped: its forwarder thread flushes
    /// every interval and lives until the process exits. So this waits for the flushes to
    /// happen. When the exporter's telemetry reaches this backend (it is the global recorder,
    /// or part of it, and telemetry is on), it waits until two flush cycles have completed —
    /// between one and three flush intervals — and returns [`FlushOutcome::Delivered`].
    /// Otherwise it sleeps two flush intervals plus [`FLUSH_SLACK`] (or `timeout`, if shorter).
    ///
    /// What is lost when the process exits without it: everything recorded since the last
    /// flush (counter increments, histogram values, gauge changes), up to one flush interval of
    /// data, plus the payloads of the last flush not sent yet (the exporter spreads a flush's
    /// payloads over the following interval).
    pub fn flush(&self, timeout: Duration) -> FlushOutcome {
        let start = Instant::now();
        let shared = &self.inner.shared;
        if let Some(poke) = shared.poke.get() {
            let mut seen = shared.cycles();
            for _ in 0..2 {
                let before = *seen;
                poke.increment(0);
                while *seen == before {
                    let Some(left) = timeout.checked_sub(start.elapsed()).filter(|d| !d.is_zero()) else {
                        return FlushOutcome::TimedOut;
                    };
                    seen = shared
                        .cycle_done
                        .wait_timeout(seen, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            return FlushOutcome::Delivered;
        }
        let bound = self
            .inner
            .config
            .flush_interval
            .saturating_mul(2)
            .saturating_add(FLUSH_SLACK);
        if timeout < bound {
            std::thread::sleep(timeout);
            FlushOutcome::TimedOut
        } else {
            std::thread::sleep(bound);
            FlushOutcome::Waited
        }
    }

    /// The tag sets tracked for `name` (at most the limit).
    pub fn series_count(&self, name: &str) -> usize {
        self.inner.limit.series_count(name)
    }

    /// The key to hand the exporter — the caller's, a sanitised copy, or the metric's overflow
    /// key — or `None` when the metric is not sent (too many metric names).
    fn admit<'k>(&self, key: &'k Key) -> Option<Cow<'k, Key>> {
        let shared = &self.inner.shared;
        let key = match sanitize::clean_key(key) {
            None => Cow::Borrowed(key),
            Some(clean) => {
                shared.sanitized_keys.fetch_add(1, Ordering::Relaxed);
                if !shared.sanitized_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        metric = ?key.name(),
                        sent_as = clean.name(),
                        "DogStatsD: a metric name or tag had reserved characters (| : , # or control characters); \
                         they were replaced by _ (counted in stats().sanitized_keys; logged once)"
                    );
                }
                Cow::Owned(clean)
            }
        };
        match self.inner.limit.admit(&key) {
            Admission::Admit => Some(key),
            Admission::Overflow { key: overflow, first } => {
                shared.series_overflowed.fetch_add(1, Ordering::Relaxed);
                if first {
                    tracing::warn!(
                        metric = overflow.name(),
                        limit = self.inner.limit.max_series_per_metric(),
                        "DogStatsD: metric reached its tag-set limit; new tag sets are folded into its __overflow__ series"
                    );
                }
                self.count_overflow(overflow.name().to_owned());
                Some(Cow::Owned(overflow))
            }
            Admission::Drop { first } => {
                shared.metric_names_dropped.fetch_add(1, Ordering::Relaxed);
                if first {
                    tracing::warn!(
                        metric = key.name(),
                        limit = self.inner.limit.max_metric_names(),
                        "DogStatsD: too many metric names; new metric names are not sent"
                    );
                }
                self.count_overflow(TOO_MANY_METRICS.to_owned());
                None
            }
        }
    }

    /// Counts one registration in `vigil.metrics.overflow{metric}` (not subject to the limits:
    /// its tag values are bounded by the number of metric names).
    fn count_overflow(&self, metric: String) {
        let key = Key::from_parts(
            vigil_core::catalogue::VIGIL_METRICS_OVERFLOW.name,
            vec![Label::new("metric", metric)],
        );
        self.inner.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Wraps the exporter's handle of one of its telemetry counters so that its increments also
    /// feed [`stats`](Self::stats) and the flush barrier.
    fn tap(&self, key: &Key, counter: Counter) -> Counter {
        let field = match key.name().strip_prefix(TELEMETRY_PREFIX) {
            Some("metrics") => {
                // Not observed: a handle to mark the next cycle as having updates.
                let _ = self.inner.shared.poke.set(counter.clone());
                return counter;
            }
            // The last of the counters the exporter increments once per completed cycle, so the
            // other counts of the cycle are in when a waiting `flush` wakes up.
            Some("aggregated_context_by_type")
                if key
                    .labels()
                    .any(|l| l.key() == "metrics_type" && l.value() == "histogram") =>
            {
                TapField::Cycle
            }
            Some("packets_sent") => TapField::PacketsSent,
            Some("bytes_sent") => TapField::BytesSent,
            Some("packets_dropped_writer") => TapField::PacketsSendFailed,
            Some("bytes_dropped_writer") => TapField::BytesSendFailed,
            Some("packets_dropped_serializer") => TapField::SerializeFailed,
            _ => return counter,
        };
        Counter::from_arc(Arc::new(Tap {
            inner: counter,
            shared: Arc::clone(&self.inner.shared),
            field,
        }))
    }
}

impl Recorder for DogStatsdBackend {
    // DogStatsD has no descriptions or units: values are sent as recorded (see the crate docs).
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.recorder.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.recorder.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.recorder.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let Some(key) = self.admit(key) else {
            return Counter::noop();
        };
        let counter = self.inner.recorder.register_counter(&key, metadata);
        if key.name().starts_with(TELEMETRY_PREFIX) {
            self.tap(&key, counter)
        } else {
            counter
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let Some(key) = self.admit(key) else {
            return Gauge::noop();
        };
        let gauge = self.inner.recorder.register_gauge(&key, metadata);
        Gauge::from_arc(Arc::new(Finite {
            inner: gauge,
            shared: Arc::clone(&self.inner.shared),
        }))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let Some(key) = self.admit(key) else {
            return Histogram::noop();
        };
        let histogram = self.inner.recorder.register_histogram(&key, metadata);
        Histogram::from_arc(Arc::new(Finite {
            inner: histogram,
            shared: Arc::clone(&self.inner.shared),
        }))
    }
}

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

/// A gauge or histogram that drops NaN and infinite values.
struct Finite<T> {
    inner: T,
    shared: Arc<Shared>,
}

impl GaugeFn for Finite<Gauge> {
    fn increment(&self, value: f64) {
        if value.is_finite() {
            self.inner.increment(value);
        } else {
            self.shared.dropped_non_finite("gauge", value);
        }
    }

    fn decrement(&self, value: f64) {
        if value.is_finite() {
            self.inner.decrement(value);
        } else {
            self.shared.dropped_non_finite("gauge", value);
        }
    }

    fn set(&self, value: f64) {
        if value.is_finite() {
            self.inner.set(value);
        } else {
            self.shared.dropped_non_finite("gauge", value);
        }
    }
}

impl HistogramFn for Finite<Histogram> {
    fn record(&self, value: f64) {
        if value.is_finite() {
            self.inner.record(value);
        } else {
            self.shared.dropped_non_finite("histogram", value);
        }
    }

    fn record_many(&self, value: f64, count: usize) {
        if value.is_finite() {
            self.inner.record_many(value, count);
        } else {
            self.shared.dropped_non_finite("histogram", value);
        }
    }
}

/// Which [`Shared`] counter a telemetry tap feeds.
#[derive(Clone, Copy)]
enum TapField {
    /// `datadog.dogstatsd.client.aggregated_context_by_type{metrics_type:histogram}`: the last
    /// counter the exporter increments at the end of each flush cycle with updates.
    Cycle,
    PacketsSent,
    BytesSent,
    PacketsSendFailed,
    BytesSendFailed,
    SerializeFailed,
}

/// One of the exporter's telemetry counters, observed.
struct Tap {
    inner: Counter,
    shared: Arc<Shared>,
    field: TapField,
}

impl CounterFn for Tap {
    fn increment(&self, value: u64) {
        self.inner.increment(value);
        let s = &self.shared;
        let target = match self.field {
            TapField::Cycle => {
                *s.cycles() += 1;
                s.cycle_done.notify_all();
                return;
            }
            TapField::PacketsSent => &s.packets_sent,
            TapField::BytesSent => &s.bytes_sent,
            TapField::PacketsSendFailed => &s.packets_send_failed,
            TapField::BytesSendFailed => &s.bytes_send_failed,
            TapField::SerializeFailed => &s.serialize_failed,
        };
        target.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.inner.absolute(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("agent:9125"), Ok(("agent", 9125)));
        assert_eq!(split_host_port("agent"), Ok(("agent", 8125)));
        assert_eq!(split_host_port("[::1]:9125"), Ok(("::1", 9125)));
        assert_eq!(split_host_port("[::1]"), Ok(("::1", 8125)));
        assert!(split_host_port("::1:8125").is_err());
        assert!(split_host_port("agent:abc").is_err());
        assert!(split_host_port("agent:70000").is_err());
        assert!(split_host_port(":8125").is_err());
        assert!(split_host_port("[::1").is_err());
        assert!(split_host_port("[::1]8125").is_err());
    }

    #[test]
    fn urls_map_to_transports() {
        let t = resolve(Destination::Url("unix:///var/run/datadog/dsd.socket".into())).unwrap();
        assert_eq!(t.to_string(), "unixgram:///var/run/datadog/dsd.socket");
        assert_eq!(t.exporter_address(), "unixgram:///var/run/datadog/dsd.socket");
        let t = resolve(Destination::Url("unixgram:///tmp/d.sock".into())).unwrap();
        assert_eq!(t.exporter_address(), "unixgram:///tmp/d.sock");
        // The exporter's `unix://` is a stream socket; Datadog's is a datagram socket.
        let t = resolve(Destination::Url("unixstream:///tmp/d.sock".into())).unwrap();
        assert_eq!(t.exporter_address(), "unix:///tmp/d.sock");
        let t = resolve(Destination::Url("udp://127.0.0.1:9125".into())).unwrap();
        assert_eq!(t.exporter_address(), "127.0.0.1:9125");
        let t = resolve(Destination::Url("127.0.0.1".into())).unwrap();
        assert_eq!(t.exporter_address(), "127.0.0.1:8125");
        assert!(matches!(
            resolve(Destination::Url("tcp://127.0.0.1:8125".into())),
            Err(DogStatsdError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn a_flush_interval_that_would_overflow_an_instant_is_refused() {
        // Accepted, it would panic the exporter's forwarder thread: nothing would be sent.
        let error = DogStatsdBackend::builder()
            .udp("127.0.0.1", 9)
            .flush_interval(Duration::MAX)
            .build()
            .unwrap_err();
        assert!(matches!(error, DogStatsdError::InvalidFlushInterval(d) if d == Duration::MAX));
        assert_eq!(
            error.to_string(),
            format!(
                "invalid DogStatsD flush interval {:?}: expected 10ms to 1h",
                Duration::MAX
            )
        );
    }

    #[test]
    fn unix_paths_are_checked() {
        assert!(check_unix_path(Path::new("/var/run/datadog/dsd.socket")).is_ok());
        assert!(check_unix_path(Path::new("")).is_err());
        assert!(check_unix_path(Path::new("/tmp/a\0b")).is_err());
        assert!(check_unix_path(&PathBuf::from(format!("/{}", "a".repeat(107)))).is_err());
        assert!(check_unix_path(&PathBuf::from(format!("/{}", "a".repeat(106)))).is_ok());
    }
}
