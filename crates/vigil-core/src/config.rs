//! The typed configuration and its layered loader.
//!
//! Layers, later ones winning: built-in defaults, then a TOML file (`vigil.toml` in the
//! working directory if present, or the file named by `VIGIL_CONFIG`, which must exist), then
//! environment variables (see [`ENV_VARS`]). Every bad value stops start-up with an error that
//! names the variable or key, the value and what is accepted. An empty environment variable
//! counts as unset.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::Level;

/// The default Prometheus port, as in the seed.
pub const DEFAULT_PROMETHEUS_PORT: u16 = 9568;

/// A value that can be set from an environment variable or a config file.
trait Setting: Sized {
    /// What is accepted, for error messages.
    const EXPECTED: &'static str;
    /// Parses the text form.
    fn parse_setting(s: &str) -> Option<Self>;
    /// The text form as an error message may show it (secrets inside it redacted).
    fn shown(s: &str) -> String {
        s.to_owned()
    }
}

macro_rules! deserialize_via_setting {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = RawScalar::deserialize(d)?;
                let text = raw.to_string();
                <$t as Setting>::parse_setting(&text).ok_or_else(|| {
                    let shown = <$t as Setting>::shown(&text);
                    serde::de::Error::custom(format!("{shown:?}: expected {}", <$t as Setting>::EXPECTED))
                })
            }
        }
    )*};
}

/// A scalar read from a file: a string, an integer, a float or a bool.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for RawScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawScalar::Str(s) => f.write_str(s),
            RawScalar::Int(i) => write!(f, "{i}"),
            RawScalar::Float(x) => write!(f, "{x}"),
            RawScalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Setting for Level {
    const EXPECTED: &'static str = "one of trace, debug, info, warning (or warn), error";
    fn parse_setting(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// A TCP port, 1-65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub u16);

impl Setting for Port {
    const EXPECTED: &'static str = "a port number 1-65535";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim().parse::<u16>() {
            Ok(0) | Err(_) => None,
            Ok(p) => Some(Port(p)),
        }
    }
}

/// How console lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Setting for LogFormat {
    const EXPECTED: &'static str = "text or json";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Whether text lines are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorMode {
    /// Colour when the output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl Setting for ColorMode {
    const EXPECTED: &'static str = "auto, always or never";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(ColorMode::Auto),
            "always" => Some(ColorMode::Always),
            "never" => Some(ColorMode::Never),
            _ => None,
        }
    }
}

/// The protocol of the metrics endpoint. Only plain HTTP is served; put TLS in front.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Plain HTTP.
    #[default]
    Http,
}

impl Setting for Protocol {
    const EXPECTED: &'static str = "http";
    fn parse_setting(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches(':');
        s.eq_ignore_ascii_case("http").then_some(Protocol::Http)
    }
}

/// A logger backend named in `logger_backends`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoggerBackendKind {
    /// The console backend (`vigil-log-console`).
    Console,
    /// The Datadog logs backend (`vigil-log-datadog`).
    Datadog,
}

impl Setting for LoggerBackendKind {
    const EXPECTED: &'static str = "console or datadog";
    fn parse_setting(s: &str) -> Option<Self> {
        match backend_word(s).as_str() {
            "console" => Some(LoggerBackendKind::Console),
            "datadog" => Some(LoggerBackendKind::Datadog),
            _ => None,
        }
    }
}

/// A metrics backend named in `metrics_backends`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricsBackendKind {
    /// The Prometheus backend (`vigil-metrics-prometheus`).
    Prometheus,
    /// The DogStatsD backend (`vigil-metrics-dogstatsd`).
    Dogstatsd,
}

impl Setting for MetricsBackendKind {
    const EXPECTED: &'static str = "prometheus or dogstatsd";
    fn parse_setting(s: &str) -> Option<Self> {
        match backend_word(s).as_str() {
            "prometheus" => Some(MetricsBackendKind::Prometheus),
            "dogstatsd" => Some(MetricsBackendKind::Dogstatsd),
            _ => None,
        }
    }
}

/// `Console`, `console` and the seed's `RealtimeServer.Observability.Loggers.Console` all name
/// the console backend: the last path segment, lower-cased.
fn backend_word(s: &str) -> String {
    s.trim().rsplit(['.', ':']).next().unwrap_or("").to_ascii_lowercase()
}

impl Setting for bool {
    const EXPECTED: &'static str = "true or false (also 1/0, yes/no, on/off)";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        }
    }
}

/// A positive count (queue sizes, limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub usize);

impl Setting for Count {
    const EXPECTED: &'static str = "a whole number from 1 to 100000000";
    fn parse_setting(s: &str) -> Option<Self> {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100_000_000).contains(n))
            .map(Count)
    }
}

/// A sampling interval in whole seconds, 1 to 3600.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalSeconds(pub u64);

impl IntervalSeconds {
    /// The interval as a [`Duration`](std::time::Duration).
    pub const fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

impl Setting for IntervalSeconds {
    const EXPECTED: &'static str = "a whole number of seconds from 1 to 3600";
    fn parse_setting(s: &str) -> Option<Self> {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .map(IntervalSeconds)
    }
}

/// An `http://` or `https://` URL with a host and no `user:password@` part (the Datadog logs
/// endpoint override; the API key travels in a header, never in the URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(pub String);

/// `url` with any `user:password@` part of its authority replaced by `<redacted>@`.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>{}", &rest[at..]),
        None => url.to_owned(),
    }
}

impl Setting for HttpUrl {
    const EXPECTED: &'static str = "an http:// or https:// URL with a host and no user:password@ part, \
                                    such as https://proxy.internal:8443/api/v2/logs";
    fn parse_setting(s: &str) -> Option<Self> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        let scheme_len = if lower.starts_with("https://") {
            8
        } else if lower.starts_with("http://") {
            7
        } else {
            return None;
        };
        let rest = &s[scheme_len..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let ok = !authority.is_empty()
            && !authority.starts_with(':')
            && !authority.contains('@')
            && !s.chars().any(|c| c.is_control() || c.is_whitespace());
        ok.then(|| HttpUrl(s.to_owned()))
    }
    fn shown(s: &str) -> String {
        redact_userinfo(s)
    }
}

/// A Datadog tag, `key:value` or `key` (from `DD_TAGS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag(pub String);

impl Setting for Tag {
    const EXPECTED: &'static str = "tags like team:core or key:value, separated by commas or spaces";
    fn parse_setting(s: &str) -> Option<Self> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.len() <= 200
            && !s.starts_with(':')
            && !s
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == ',' || c == '|' || c == '#');
        ok.then(|| Tag(s.to_owned()))
    }
}

/// A non-empty name (service, environment, site, host).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Name(String);

impl Setting for Name {
    const EXPECTED: &'static str = "a non-empty name without control characters";
    fn parse_setting(s: &str) -> Option<Self> {
        let s = s.trim();
        (!s.is_empty() && !s.chars().any(char::is_control)).then(|| Name(s.to_owned()))
    }
}

deserialize_via_setting!(
    HttpUrl,
    Tag,
    Level,
    Port,
    LogFormat,
    ColorMode,
    Protocol,
    LoggerBackendKind,
    MetricsBackendKind,
    Count,
    IntervalSeconds
);

/// A secret such as an API key: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Logging settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// The minimum level written (`LOG_LEVEL`), default `info`.
    pub level: Level,
    /// Console line format (`LOG_FORMAT`), default `text`.
    pub format: LogFormat,
    /// Colour for text lines (`LOG_COLOR`), default `auto`.
    pub color: ColorMode,
    /// Lines the console backend queues before it drops (`LOG_QUEUE_CAPACITY`), default 8192.
    pub queue_capacity: Count,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: Level::Info,
            format: LogFormat::Text,
            color: ColorMode::Auto,
            queue_capacity: Count(8192),
        }
    }
}

/// The Prometheus endpoint: the seed's `reporter_options` (host, port, protocol).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Address to bind (`PROMETHEUS_HOST`), default `localhost`; `0.0.0.0` for all interfaces.
    pub host: String,
    /// Port (`PROMETHEUS_PORT`), default 9568.
    pub port: Port,
    /// Protocol; only `http`.
    pub protocol: Protocol,
    /// Label sets kept per metric before new ones fold into one overflow series
    /// (`PROMETHEUS_MAX_SERIES_PER_METRIC`), default 1000.
    pub max_series_per_metric: Count,
    /// Serves the live dashboard at `/dashboard` on the same port (`PROMETHEUS_DASHBOARD`),
    /// default true.
    pub dashboard: bool,
    /// A bearer token every request to the metrics port must carry
    /// (`Authorization: Bearer <token>`; `PROMETHEUS_AUTH_TOKEN`). Secret.
    pub auth_token: Option<Secret>,
    /// The user name of HTTP basic auth on the metrics port (`PROMETHEUS_BASIC_AUTH_USER`),
    /// with [`basic_auth_password`](Self::basic_auth_password).
    pub basic_auth_user: Option<String>,
    /// The password of HTTP basic auth on the metrics port
    /// (`PROMETHEUS_BASIC_AUTH_PASSWORD`). Secret.
    pub basic_auth_password: Option<Secret>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            host: "localhost".to_owned(),
            port: Port(DEFAULT_PROMETHEUS_PORT),
            protocol: Protocol::Http,
            max_series_per_metric: Count(1000),
            dashboard: true,
            auth_token: None,
            basic_auth_user: None,
            basic_auth_password: None,
        }
    }
}

/// HTTP telemetry settings (`vigil-http`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Write one access-log record per request (`HTTP_ACCESS_LOG`), default false.
    pub access_log: bool,
}

/// Database telemetry settings (`vigil-db`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbConfig {
    /// Queries slower than this many milliseconds log a warning (`DB_SLOW_QUERY_MS`), default 100.
    pub slow_query_ms: Count,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            slow_query_ms: Count(100),
        }
    }
}

/// VM telemetry settings (`vigil-vm`): process, system and Tokio runtime metrics.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VmConfig {
    /// Sample VM metrics when the `vm` feature is on (`VM_METRICS`), default true.
    pub enabled: bool,
    /// Seconds between samples (`VM_SAMPLE_INTERVAL`), 1-3600, default 10.
    pub interval: IntervalSeconds,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            enabled: true,
            interval: IntervalSeconds(10),
        }
    }
}

/// Datadog settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatadogConfig {
    /// Turns the Datadog integration on (`ENABLE_DATADOG`), default false: logs to the Datadog
    /// logs intake and, unless `DD_TRACE_ENABLED=false`, APM traces to the agent.
    pub enabled: bool,
    /// The API key (`DATADOG_API_KEY`); required when enabled.
    pub api_key: Option<Secret>,
    /// The application key (`DATADOG_APP_KEY`), used to publish dashboards and monitors.
    pub app_key: Option<Secret>,
    /// The Datadog site (`DATADOG_SITE`), default `datadoghq.com`.
    pub site: String,
    /// The full logs intake URL (`DATADOG_LOGS_URL`), for proxies and tests; default
    /// `https://http-intake.logs.<site>/api/v2/logs`.
    pub logs_url: Option<HttpUrl>,
    /// Extra tags on every log (`DD_TAGS`), beside `env` and `version`.
    pub tags: Vec<Tag>,
    /// Sends APM traces when the integration is on (`DD_TRACE_ENABLED`), default true.
    pub traces: bool,
    /// The Datadog agent's host (`DD_AGENT_HOST`), default `localhost`: traces and DogStatsD.
    pub agent_host: String,
    /// The agent's trace port (`DD_TRACE_AGENT_PORT`), default 8126.
    pub trace_agent_port: Port,
    /// The agent's DogStatsD UDP port (`DD_DOGSTATSD_PORT`), default 8125.
    pub dogstatsd_port: Port,
    /// The agent's DogStatsD Unix socket (`DD_DOGSTATSD_SOCKET`); when set, used instead of UDP.
    pub dogstatsd_socket: Option<PathBuf>,
    /// Where DogStatsD lines go, in Datadog's URL form (`DD_DOGSTATSD_URL`: `udp://host:port`,
    /// `unix:///path` or `unixgram:///path`, `unixstream:///path`); wins over the socket and
    /// host/port settings.
    pub dogstatsd_url: Option<String>,
}

impl Default for DatadogConfig {
    fn default() -> Self {
        DatadogConfig {
            enabled: false,
            api_key: None,
            app_key: None,
            site: "datadoghq.com".to_owned(),
            logs_url: None,
            tags: Vec::new(),
            traces: true,
            agent_host: "localhost".to_owned(),
            trace_agent_port: Port(8126),
            dogstatsd_port: Port(8125),
            dogstatsd_socket: None,
            dogstatsd_url: None,
        }
    }
}

impl DatadogConfig {
    /// The logs intake URL: `logs_url`, else `https://http-intake.logs.<site>/api/v2/logs`.
    pub fn logs_intake_url(&self) -> String {
        match &self.logs_url {
            Some(url) => url.0.clone(),
            None => format!("https://http-intake.logs.{}/api/v2/logs", self.site),
        }
    }

    /// Whether APM traces are sent: the integration is on and `DD_TRACE_ENABLED` is not false.
    pub fn traces_enabled(&self) -> bool {
        self.enabled && self.traces
    }
}

/// Vigil's whole configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The service name (`VIGIL_SERVICE`, else `DD_SERVICE`), default the executable's name.
    pub service: String,
    /// The environment (`VIGIL_ENV`, else `DD_ENV`), default `development`.
    pub environment: String,
    /// The version (`VIGIL_VERSION`, else `DD_VERSION`), default empty.
    pub version: String,
    /// Logger backends in use (`LOGGER_BACKENDS`, comma-separated), default `["console"]`.
    pub logger_backends: Vec<LoggerBackendKind>,
    /// Metrics backends in use (`METRICS_BACKENDS`, comma-separated), default `["prometheus"]`.
    pub metrics_backends: Vec<MetricsBackendKind>,
    /// Logging.
    pub log: LogConfig,
    /// The Prometheus endpoint (also accepted under the seed's name, `reporter_options`).
    #[serde(alias = "reporter_options")]
    pub prometheus: PrometheusConfig,
    /// HTTP telemetry.
    pub http: HttpConfig,
    /// Database telemetry.
    pub db: DbConfig,
    /// VM telemetry.
    pub vm: VmConfig,
    /// Datadog.
    pub datadog: DatadogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            service: crate::resource::default_service_name(),
            environment: "development".to_owned(),
            version: String::new(),
            logger_backends: vec![LoggerBackendKind::Console],
            metrics_backends: vec![MetricsBackendKind::Prometheus],
            log: LogConfig::default(),
            prometheus: PrometheusConfig::default(),
            http: HttpConfig::default(),
            db: DbConfig::default(),
            vm: VmConfig::default(),
            datadog: DatadogConfig::default(),
        }
    }
}

/// A configuration error. Its message names the variable or key, the value and what is
/// accepted; secret values are never shown.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable has a value that is not accepted.
    #[error("{var}={value:?}: expected {expected}")]
    Env {
        /// The variable.
        var: &'static str,
        /// The value (redacted for secrets).
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The configuration file could not be read or holds a bad value.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key.
        message: String,
    },
    /// A required setting is missing.
    #[error("{var} is required: {reason}")]
    Missing {
        /// The variable to set.
        var: &'static str,
        /// Why it is required.
        reason: &'static str,
    },
}

/// One environment variable Vigil reads.
#[derive(Clone, Copy)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// The config file key it overrides.
    pub key: &'static str,
    /// The default, as text.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// Parses `value` and sets it on the configuration.
    pub apply: fn(&mut Config, &'static str, &str) -> Result<(), ConfigError>,
}

/// Every environment variable Vigil reads, in the order they are applied.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "VIGIL_CONFIG",
        key: "-",
        default: "vigil.toml (if present)",
        doc: "Path of the TOML config file; must exist when set.",
        apply: |_, _, _| Ok(()),
    },
    EnvVar {
        name: "DD_SERVICE",
        key: "service",
        default: "executable name",
        doc: "Service name (Datadog unified tagging).",
        apply: |c, n, v| {
            c.service = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "VIGIL_SERVICE",
        key: "service",
        default: "executable name",
        doc: "Service name; wins over DD_SERVICE.",
        apply: |c, n, v| {
            c.service = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "DD_ENV",
        key: "environment",
        default: "development",
        doc: "Environment (Datadog unified tagging).",
        apply: |c, n, v| {
            c.environment = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "VIGIL_ENV",
        key: "environment",
        default: "development",
        doc: "Environment; wins over DD_ENV.",
        apply: |c, n, v| {
            c.environment = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "DD_VERSION",
        key: "version",
        default: "(empty)",
        doc: "Service version (Datadog unified tagging).",
        apply: |c, n, v| {
            c.version = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "VIGIL_VERSION",
        key: "version",
        default: "(empty)",
        doc: "Service version; wins over DD_VERSION.",
        apply: |c, n, v| {
            c.version = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "LOGGER_BACKENDS",
        key: "logger_backends",
        default: "console",
        doc: "Comma-separated logger backends: console, datadog.",
        apply: |c, n, v| {
            c.logger_backends = parse_list(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "METRICS_BACKENDS",
        key: "metrics_backends",
        default: "prometheus",
        doc: "Comma-separated metrics backends: prometheus, dogstatsd.",
        apply: |c, n, v| {
            c.metrics_backends = parse_list(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "LOG_LEVEL",
        key: "log.level",
        default: "info",
        doc: "Minimum level: trace, debug, info, warning (or warn), error.",
        apply: |c, n, v| {
            c.log.level = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "LOG_FORMAT",
        key: "log.format",
        default: "text",
        doc: "Console format: text or json.",
        apply: |c, n, v| {
            c.log.format = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "LOG_COLOR",
        key: "log.color",
        default: "auto",
        doc: "Colour text lines: auto (a terminal without NO_COLOR), always, never.",
        apply: |c, n, v| {
            c.log.color = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "LOG_QUEUE_CAPACITY",
        key: "log.queue_capacity",
        default: "8192",
        doc: "Console lines queued before new ones are dropped and counted.",
        apply: |c, n, v| {
            c.log.queue_capacity = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "PROMETHEUS_HOST",
        key: "prometheus.host",
        default: "localhost",
        doc: "Address the /metrics endpoint binds (0.0.0.0 for all interfaces).",
        apply: |c, n, v| {
            c.prometheus.host = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "PROMETHEUS_PORT",
        key: "prometheus.port",
        default: "9568",
        doc: "Port of the /metrics endpoint, 1-65535.",
        apply: |c, n, v| {
            c.prometheus.port = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "PROMETHEUS_MAX_SERIES_PER_METRIC",
        key: "prometheus.max_series_per_metric",
        default: "1000",
        doc: "Label sets per metric before new ones fold into an overflow series.",
        apply: |c, n, v| {
            c.prometheus.max_series_per_metric = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "PROMETHEUS_DASHBOARD",
        key: "prometheus.dashboard",
        default: "true",
        doc: "Serve the live dashboard at /dashboard on the metrics port.",
        apply: |c, n, v| {
            c.prometheus.dashboard = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "PROMETHEUS_AUTH_TOKEN",
        key: "prometheus.auth_token",
        default: "",
        doc: "A bearer token required on every request to the metrics port (/metrics, /dashboard); a request without it gets 401. Secret.",
        apply: |c, _, v| {
            c.prometheus.auth_token = Some(Secret(v.trim().to_owned()));
            Ok(())
        },
    },
    EnvVar {
        name: "PROMETHEUS_BASIC_AUTH_USER",
        key: "prometheus.basic_auth_user",
        default: "",
        doc: "User name of HTTP basic auth on the metrics port, with PROMETHEUS_BASIC_AUTH_PASSWORD (a browser asks for it on /dashboard).",
        apply: |c, n, v| {
            let user = parse::<Name>(n, v)?.0;
            if let Some((name, _)) = user.split_once(':') {
                // What follows the ':' may well be the password pasted along: not shown.
                return Err(ConfigError::Env {
                    var: n,
                    value: format!("{name}:<redacted>"),
                    expected: "a user name without ':' (basic auth separates user and password with it)",
                });
            }
            c.prometheus.basic_auth_user = Some(user);
            Ok(())
        },
    },
    EnvVar {
        name: "PROMETHEUS_BASIC_AUTH_PASSWORD",
        key: "prometheus.basic_auth_password",
        default: "",
        doc: "Password of HTTP basic auth on the metrics port, with PROMETHEUS_BASIC_AUTH_USER. Secret.",
        apply: |c, _, v| {
            c.prometheus.basic_auth_password = Some(Secret(v.to_owned()));
            Ok(())
        },
    },
    EnvVar {
        name: "DB_SLOW_QUERY_MS",
        key: "db.slow_query_ms",
        default: "100",
        doc: "Database queries slower than this many milliseconds log a warning with the normalised statement.",
        apply: |c, n, v| {
            c.db.slow_query_ms = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "HTTP_ACCESS_LOG",
        key: "http.access_log",
        default: "false",
        doc: "Write one access-log record per HTTP request.",
        apply: |c, n, v| {
            c.http.access_log = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "VM_METRICS",
        key: "vm.enabled",
        default: "true",
        doc: "Sample process, system and Tokio runtime metrics (with the vm feature).",
        apply: |c, n, v| {
            c.vm.enabled = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "VM_SAMPLE_INTERVAL",
        key: "vm.interval",
        default: "10",
        doc: "Seconds between VM metric samples, 1-3600.",
        apply: |c, n, v| {
            c.vm.interval = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "ENABLE_DATADOG",
        key: "datadog.enabled",
        default: "false",
        doc: "Turn on the Datadog integration (needs DATADOG_API_KEY).",
        apply: |c, n, v| {
            c.datadog.enabled = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "DATADOG_API_KEY",
        key: "datadog.api_key",
        default: "(none)",
        doc: "Datadog API key. Secret: never logged or shown.",
        apply: |c, _, v| {
            c.datadog.api_key = Some(Secret(v.trim().to_owned()));
            Ok(())
        },
    },
    EnvVar {
        name: "DATADOG_APP_KEY",
        key: "datadog.app_key",
        default: "(none)",
        doc: "Datadog application key, for publishing dashboards and monitors. Secret.",
        apply: |c, _, v| {
            c.datadog.app_key = Some(Secret(v.trim().to_owned()));
            Ok(())
        },
    },
    EnvVar {
        name: "DATADOG_SITE",
        key: "datadog.site",
        default: "datadoghq.com",
        doc: "Datadog site, such as datadoghq.eu.",
        apply: |c, n, v| {
            c.datadog.site = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "DATADOG_LOGS_URL",
        key: "datadog.logs_url",
        default: "https://http-intake.logs.<site>/api/v2/logs",
        doc: "Full URL of the Datadog logs intake, for a proxy or a test intake.",
        apply: |c, n, v| {
            c.datadog.logs_url = Some(parse(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DD_TAGS",
        key: "datadog.tags",
        default: "(none)",
        doc: "Extra tags on every Datadog log, key:value, separated by commas or spaces.",
        apply: |c, n, v| {
            c.datadog.tags = v
                .split([',', ' '])
                .filter(|t| !t.trim().is_empty())
                .map(|t| {
                    Tag::parse_setting(t).ok_or_else(|| ConfigError::Env {
                        var: n,
                        value: v.to_owned(),
                        expected: Tag::EXPECTED,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(())
        },
    },
    EnvVar {
        name: "DD_TRACE_ENABLED",
        key: "datadog.traces",
        default: "true",
        doc: "Send APM traces to the Datadog agent when ENABLE_DATADOG is on.",
        apply: |c, n, v| {
            c.datadog.traces = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "DD_AGENT_HOST",
        key: "datadog.agent_host",
        default: "localhost",
        doc: "Host of the Datadog agent (traces and DogStatsD).",
        apply: |c, n, v| {
            c.datadog.agent_host = parse::<Name>(n, v)?.0;
            Ok(())
        },
    },
    EnvVar {
        name: "DD_TRACE_AGENT_PORT",
        key: "datadog.trace_agent_port",
        default: "8126",
        doc: "The Datadog agent's trace port, 1-65535.",
        apply: |c, n, v| {
            c.datadog.trace_agent_port = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "DD_DOGSTATSD_PORT",
        key: "datadog.dogstatsd_port",
        default: "8125",
        doc: "The Datadog agent's DogStatsD UDP port, 1-65535 (metrics_backends = dogstatsd).",
        apply: |c, n, v| {
            c.datadog.dogstatsd_port = parse(n, v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "DD_DOGSTATSD_URL",
        key: "datadog.dogstatsd_url",
        default: "(none)",
        doc: "DogStatsD destination as a URL (udp://host:port, unix:///path, unixstream:///path); wins over the others.",
        apply: |c, n, v| {
            c.datadog.dogstatsd_url = Some(parse::<Name>(n, v)?.0);
            Ok(())
        },
    },
    EnvVar {
        name: "DD_DOGSTATSD_SOCKET",
        key: "datadog.dogstatsd_socket",
        default: "(none)",
        doc: "Path of the agent's DogStatsD Unix socket; used instead of UDP when set.",
        apply: |c, n, v| {
            c.datadog.dogstatsd_socket = Some(PathBuf::from(parse::<Name>(n, v)?.0));
            Ok(())
        },
    },
];

fn parse<T: Setting>(var: &'static str, value: &str) -> Result<T, ConfigError> {
    T::parse_setting(value).ok_or_else(|| ConfigError::Env {
        var,
        value: T::shown(value),
        expected: T::EXPECTED,
    })
}

fn parse_list<T: Setting>(var: &'static str, value: &str) -> Result<Vec<T>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = T::parse_setting(item).ok_or_else(|| ConfigError::Env {
            var,
            value: value.to_owned(),
            expected: T::EXPECTED,
        })?;
        if !out
            .iter()
            .any(|x: &T| std::mem::discriminant(x) == std::mem::discriminant(&parsed))
        {
            out.push(parsed);
        }
    }
    Ok(out)
}

impl std::fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVar")
            .field("name", &self.name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Loads the configuration from the process environment and the config file.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad value.
    pub fn load() -> Result<Config, ConfigError> {
        Self::load_with(|name| std::env::var(name).ok())
    }

    /// Loads the configuration with `env` standing in for the process environment.
    ///
    /// ```
    /// use vigil_core::Config;
    ///
    /// let err = Config::load_with(|var| (var == "PROMETHEUS_PORT").then(|| "abc".to_owned())).unwrap_err();
    /// assert_eq!(err.to_string(), r#"PROMETHEUS_PORT="abc": expected a port number 1-65535"#);
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad value.
    pub fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut config = match env("VIGIL_CONFIG") {
            Some(path) => Self::from_file(Path::new(&path), true)?,
            None => Self::from_file(Path::new("vigil.toml"), false)?,
        };
        config.apply_env(&env)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML config file over the defaults. A missing optional file gives the defaults.
    ///
    /// # Errors
    ///
    /// [`ConfigError::File`] when a required file is missing, or the file does not parse or
    /// holds a bad value.
    pub fn from_file(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let file_error = |message: String| ConfigError::File {
            path: path.to_owned(),
            message,
        };
        if required && !path.is_file() {
            return Err(file_error("no such file (named by VIGIL_CONFIG)".to_owned()));
        }
        let built = config::Config::builder()
            .add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(required),
            )
            .build()
            .map_err(|e| file_error(e.to_string()))?;
        built.try_deserialize::<Config>().map_err(|e| file_error(e.to_string()))
    }

    /// Parses TOML text over the defaults (for tests and embedded configs).
    ///
    /// # Errors
    ///
    /// [`ConfigError::File`] naming `<inline>`.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize::<Config>);
        built.map_err(|e| ConfigError::File {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for var in ENV_VARS {
            let Some(value) = env(var.name) else { continue };
            (var.apply)(self, var.name, &value)?;
        }
        if self.datadog.enabled && !self.logger_backends.contains(&LoggerBackendKind::Datadog) {
            self.logger_backends.push(LoggerBackendKind::Datadog);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let wants_datadog = self.datadog.enabled || self.logger_backends.contains(&LoggerBackendKind::Datadog);
        if wants_datadog
            && self
                .datadog
                .api_key
                .as_ref()
                .is_none_or(|k| k.expose().trim().is_empty())
        {
            return Err(ConfigError::Missing {
                var: "DATADOG_API_KEY",
                reason: "the Datadog integration is enabled (ENABLE_DATADOG or logger_backends)",
            });
        }
        let p = &self.prometheus;
        if p.auth_token.as_ref().is_some_and(|t| t.expose().is_empty()) {
            return Err(ConfigError::Missing {
                var: "PROMETHEUS_AUTH_TOKEN",
                reason: "an empty token would let every request in; unset it, or set a token",
            });
        }
        match (&p.basic_auth_user, &p.basic_auth_password) {
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: "PROMETHEUS_BASIC_AUTH_PASSWORD",
                    reason: "PROMETHEUS_BASIC_AUTH_USER is set",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    var: "PROMETHEUS_BASIC_AUTH_USER",
                    reason: "PROMETHEUS_BASIC_AUTH_PASSWORD is set",
                });
            }
            (Some(_), Some(password)) if password.expose().is_empty() => {
                return Err(ConfigError::Missing {
                    var: "PROMETHEUS_BASIC_AUTH_PASSWORD",
                    reason: "an empty password would let anyone with the user name in",
                });
            }
            _ => {}
        }
        for (key, value) in [("service", &self.service), ("environment", &self.environment)] {
            if Name::parse_setting(value).is_none() {
                return Err(ConfigError::File {
                    path: PathBuf::from("<config>"),
                    message: format!("{key} = {value:?}: expected {}", Name::EXPECTED),
                });
            }
        }
        Ok(())
    }

    /// The [`crate::Resource`] this configuration describes (host name and pid detected).
    pub fn resource(&self) -> crate::Resource {
        crate::Resource::new(&self.service, &self.environment).with_version(&self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Config::load_with(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_follow_the_seed() {
        let c = load(&[]).unwrap();
        assert_eq!(c.log.level, Level::Info);
        assert_eq!(c.prometheus.port, Port(9568));
        assert_eq!(c.logger_backends, [LoggerBackendKind::Console]);
        assert_eq!(c.metrics_backends, [MetricsBackendKind::Prometheus]);
        assert!(!c.datadog.enabled);
    }

    #[test]
    fn bad_env_values_name_the_variable_value_and_accepted_values() {
        let cases = [
            (
                "LOG_LEVEL",
                "loud",
                r#"LOG_LEVEL="loud": expected one of trace, debug, info, warning (or warn), error"#,
            ),
            (
                "PROMETHEUS_PORT",
                "abc",
                r#"PROMETHEUS_PORT="abc": expected a port number 1-65535"#,
            ),
            (
                "PROMETHEUS_PORT",
                "70000",
                r#"PROMETHEUS_PORT="70000": expected a port number 1-65535"#,
            ),
            (
                "PROMETHEUS_PORT",
                "0",
                r#"PROMETHEUS_PORT="0": expected a port number 1-65535"#,
            ),
            (
                "ENABLE_DATADOG",
                "maybe",
                r#"ENABLE_DATADOG="maybe": expected true or false (also 1/0, yes/no, on/off)"#,
            ),
            ("LOG_FORMAT", "xml", r#"LOG_FORMAT="xml": expected text or json"#),
            (
                "VM_SAMPLE_INTERVAL",
                "0",
                r#"VM_SAMPLE_INTERVAL="0": expected a whole number of seconds from 1 to 3600"#,
            ),
            (
                "VM_SAMPLE_INTERVAL",
                "1.5",
                r#"VM_SAMPLE_INTERVAL="1.5": expected a whole number of seconds from 1 to 3600"#,
            ),
            (
                "LOGGER_BACKENDS",
                "console,syslog",
                r#"LOGGER_BACKENDS="console,syslog": expected console or datadog"#,
            ),
        ];
        for (var, value, message) in cases {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn env_values_apply() {
        let c = load(&[
            ("LOG_LEVEL", "warn"),
            ("PROMETHEUS_PORT", "9100"),
            ("LOG_FORMAT", "JSON"),
            ("DD_SERVICE", "dd-name"),
            ("VIGIL_SERVICE", "api"),
            ("VIGIL_ENV", "production"),
            ("METRICS_BACKENDS", "prometheus, prometheus"),
            ("LOGGER_BACKENDS", "RealtimeServer.Observability.Loggers.Console"),
        ])
        .unwrap();
        assert_eq!(c.log.level, Level::Warning);
        assert_eq!(c.prometheus.port, Port(9100));
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.service, "api");
        assert_eq!(c.environment, "production");
        assert_eq!(c.metrics_backends, [MetricsBackendKind::Prometheus]);
        assert_eq!(c.logger_backends, [LoggerBackendKind::Console]);
    }

    #[test]
    fn every_variable_in_the_table_changes_the_configuration() {
        let samples = [
            ("DD_SERVICE", "svc-a"),
            ("VIGIL_SERVICE", "svc-b"),
            ("DD_ENV", "env-a"),
            ("VIGIL_ENV", "env-b"),
            ("DD_VERSION", "1.0"),
            ("VIGIL_VERSION", "2.0"),
            ("LOGGER_BACKENDS", "console,datadog"),
            ("METRICS_BACKENDS", "dogstatsd"),
            ("LOG_LEVEL", "error"),
            ("LOG_FORMAT", "json"),
            ("LOG_COLOR", "never"),
            ("LOG_QUEUE_CAPACITY", "17"),
            ("PROMETHEUS_HOST", "0.0.0.0"),
            ("PROMETHEUS_PORT", "9100"),
            ("PROMETHEUS_MAX_SERIES_PER_METRIC", "5"),
            ("PROMETHEUS_DASHBOARD", "false"),
            ("HTTP_ACCESS_LOG", "true"),
            ("DB_SLOW_QUERY_MS", "250"),
            ("VM_METRICS", "false"),
            ("VM_SAMPLE_INTERVAL", "30"),
            ("ENABLE_DATADOG", "true"),
            ("DATADOG_API_KEY", "k"),
            ("DATADOG_APP_KEY", "a"),
            ("DATADOG_SITE", "datadoghq.eu"),
            ("DATADOG_LOGS_URL", "http://127.0.0.1:9/v2/logs"),
            ("DD_TAGS", "team:core,tier:1"),
            ("DD_TRACE_ENABLED", "false"),
            ("DD_AGENT_HOST", "agent.internal"),
            ("DD_TRACE_AGENT_PORT", "9126"),
            ("DD_DOGSTATSD_PORT", "9125"),
            ("DD_DOGSTATSD_SOCKET", "/var/run/datadog/dsd.socket"),
            ("DD_DOGSTATSD_URL", "udp://127.0.0.1:8125"),
            ("PROMETHEUS_AUTH_TOKEN", "t0ken"),
            ("PROMETHEUS_BASIC_AUTH_USER", "prometheus"),
            ("PROMETHEUS_BASIC_AUTH_PASSWORD", "pw"),
        ];
        for var in ENV_VARS.iter().filter(|v| v.name != "VIGIL_CONFIG") {
            let (_, value) = samples
                .iter()
                .find(|(n, _)| *n == var.name)
                .unwrap_or_else(|| panic!("no sample for {}", var.name));
            let mut config = Config::default();
            (var.apply)(&mut config, var.name, value).unwrap();
            assert_ne!(config, Config::default(), "{} changed nothing", var.name);
        }
        let c = load(&[("HTTP_ACCESS_LOG", "yes")]).unwrap();
        assert!(c.http.access_log);
    }

    #[test]
    fn metrics_port_credentials() {
        let c = load(&[
            ("PROMETHEUS_AUTH_TOKEN", " tok-123 "),
            ("PROMETHEUS_BASIC_AUTH_USER", "prom"),
            ("PROMETHEUS_BASIC_AUTH_PASSWORD", "p w"),
        ])
        .unwrap();
        assert_eq!(c.prometheus.auth_token.as_ref().map(Secret::expose), Some("tok-123"));
        assert_eq!(c.prometheus.basic_auth_user.as_deref(), Some("prom"));
        assert_eq!(
            c.prometheus.basic_auth_password.as_ref().map(Secret::expose),
            Some("p w")
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("tok-123") && !debug.contains("p w"), "{debug}");
        // Half a basic-auth pair is an error naming the missing half.
        let err = load(&[("PROMETHEUS_BASIC_AUTH_USER", "prom")]).unwrap_err().to_string();
        assert!(err.starts_with("PROMETHEUS_BASIC_AUTH_PASSWORD is required"), "{err}");
        let err = load(&[("PROMETHEUS_BASIC_AUTH_PASSWORD", "secret-pw")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("PROMETHEUS_BASIC_AUTH_USER is required") && !err.contains("secret-pw"),
            "{err}"
        );
        let err = load(&[
            ("PROMETHEUS_BASIC_AUTH_USER", "a:pasted-pw"),
            ("PROMETHEUS_BASIC_AUTH_PASSWORD", "x"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("PROMETHEUS_BASIC_AUTH_USER=\"a:<redacted>\"") && err.contains("without ':'"),
            "{err}"
        );
        assert!(!err.contains("pasted-pw"), "{err}");
        // From a file, an empty token is refused rather than letting everyone in.
        let err = Config::from_toml_str("[prometheus]\nauth_token = \"\"\n")
            .and_then(|c| c.validate().map(|()| c))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PROMETHEUS_AUTH_TOKEN is required"), "{err}");
    }

    #[test]
    fn datadog_endpoints_and_tags() {
        let c = Config::default();
        assert_eq!(
            c.datadog.logs_intake_url(),
            "https://http-intake.logs.datadoghq.com/api/v2/logs"
        );
        assert!(!c.datadog.traces_enabled());
        let c = load(&[
            ("ENABLE_DATADOG", "true"),
            ("DATADOG_API_KEY", "k"),
            ("DATADOG_SITE", "datadoghq.eu"),
            ("DD_TAGS", "team:core  tier:1,canary"),
        ])
        .unwrap();
        assert_eq!(
            c.datadog.logs_intake_url(),
            "https://http-intake.logs.datadoghq.eu/api/v2/logs"
        );
        assert!(c.datadog.traces_enabled());
        let tags: Vec<&str> = c.datadog.tags.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(tags, ["team:core", "tier:1", "canary"]);
        let c = load(&[
            ("ENABLE_DATADOG", "true"),
            ("DATADOG_API_KEY", "k"),
            ("DD_TRACE_ENABLED", "false"),
            ("DATADOG_LOGS_URL", "HTTP://127.0.0.1:8080/logs"),
        ])
        .unwrap();
        assert!(!c.datadog.traces_enabled());
        assert_eq!(c.datadog.logs_intake_url(), "HTTP://127.0.0.1:8080/logs");
        // Credentials in the URL are refused at start-up, and the error does not show them.
        for url in [
            "http://user:pw@127.0.0.1:8080/logs",
            "https://pw@intake.example/v2/logs",
        ] {
            let err = load(&[("DATADOG_LOGS_URL", url)]).unwrap_err().to_string();
            assert!(err.contains("no user:password@ part"), "{err}");
            assert!(err.contains("<redacted>@") && !err.contains("pw"), "{err}");
        }
        for (var, bad, expected) in [
            ("DATADOG_LOGS_URL", "ftp://x", "an http:// or https:// URL"),
            ("DATADOG_LOGS_URL", "https://", "an http:// or https:// URL"),
            ("DATADOG_LOGS_URL", "https://a b", "an http:// or https:// URL"),
            ("DD_TAGS", "ok:1,bad|tag", "tags like"),
            ("DD_TRACE_AGENT_PORT", "0", "a port number"),
            ("DD_DOGSTATSD_PORT", "x", "a port number"),
        ] {
            let err = load(&[(var, bad)]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{var}=")) && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn datadog_needs_a_key_and_keys_are_redacted() {
        let err = load(&[("ENABLE_DATADOG", "true")]).unwrap_err();
        assert!(err.to_string().starts_with("DATADOG_API_KEY is required"), "{err}");
        let c = load(&[
            ("ENABLE_DATADOG", "true"),
            ("DATADOG_API_KEY", "sekrit-123"),
            ("DATADOG_APP_KEY", "app-456"),
        ])
        .unwrap();
        assert_eq!(c.datadog.api_key.as_ref().unwrap().expose(), "sekrit-123");
        let shown = format!("{c:?}");
        assert!(!shown.contains("sekrit-123") && !shown.contains("app-456"), "{shown}");
        assert!(c.logger_backends.contains(&LoggerBackendKind::Datadog));
    }

    #[test]
    fn toml_file_uses_the_seed_keys() {
        let c = Config::from_toml_str(
            r#"
            service = "realtime_server"
            logger_backends = ["RealtimeServer.Observability.Loggers.Console"]
            metrics_backends = ["prometheus"]
            [log]
            level = "debug"
            format = "json"
            [reporter_options]
            host = "0.0.0.0"
            port = 9100
            protocol = "http"
            "#,
        )
        .unwrap();
        assert_eq!(c.prometheus.port, Port(9100));
        assert_eq!(c.prometheus.host, "0.0.0.0");
        assert_eq!(c.log.level, Level::Debug);
        assert_eq!(c.service, "realtime_server");
    }

    #[test]
    fn vm_settings_default_and_load_from_file_and_env() {
        let c = load(&[]).unwrap();
        assert!(c.vm.enabled);
        assert_eq!(c.vm.interval.as_duration(), std::time::Duration::from_secs(10));
        let c = Config::from_toml_str("[vm]\nenabled = false\ninterval = 60\n").unwrap();
        assert!(!c.vm.enabled);
        assert_eq!(c.vm.interval, IntervalSeconds(60));
        let err = Config::from_toml_str("[vm]\ninterval = 7200\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("vm.interval") && err.contains("1 to 3600"), "{err}");
        let c = load(&[("VM_METRICS", "off"), ("VM_SAMPLE_INTERVAL", "3600")]).unwrap();
        assert!(!c.vm.enabled);
        assert_eq!(c.vm.interval, IntervalSeconds(3600));
    }

    #[test]
    fn bad_file_values_name_the_key() {
        let err = Config::from_toml_str("[prometheus]\nport = 70000\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("prometheus.port") && err.contains("expected a port number 1-65535"),
            "{err}"
        );
        let err = Config::from_toml_str("[log]\nlevel = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.level") && err.contains("loud"), "{err}");
        let err = Config::from_toml_str("[prometheus]\nprot = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn missing_required_file_is_an_error() {
        let err = load(&[("VIGIL_CONFIG", "/nonexistent/vigil.toml")]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/vigil.toml"), "{err}");
    }
}
