//! `vigil::init`, the builder behind it, and the guard that flushes on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use metrics::Recorder;
use metrics_util::layers::FanoutBuilder;
use tracing_subscriber::prelude::*;
use vigil_core::config::{LoggerBackendKind, MetricsBackendKind};
use vigil_core::{BackendRecorder, Config, LogBackend, LogLayer, MetricsBackend};

use crate::{Error, facade_logger};

/// How long dropping the [`Guard`] waits for backends to flush.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the configuration (defaults, `vigil.toml` or `VIGIL_CONFIG`, environment) and
/// installs everything it names: the log backends behind one `tracing` subscriber, the
/// metrics backends behind the global `metrics` recorder, and their servers. With the `vm`
/// feature it also starts the VM sampler (unless `VM_METRICS=false`), which reads the Tokio
/// runtime `init` is called in, if any.
///
/// Keep the returned [`Guard`] alive for the life of the program; dropping it, or calling
/// [`Guard::shutdown`], flushes every backend.
///
/// ```no_run
/// let _vigil = match vigil::init() {
///     Ok(guard) => guard,
///     Err(error) => {
///         eprintln!("error: {error}");
///         std::process::exit(2);
///     }
/// };
/// vigil::Logger::info("started", vigil::fields!(version = "1.0.0"));
/// ```
///
/// # Errors
///
/// A bad configuration value, a taken port, a backend compiled out, or a `tracing`
/// subscriber or `metrics` recorder installed before.
pub fn init() -> Result<Guard, Error> {
    Vigil::builder().install()
}

/// Entry point for configuring Vigil in code.
#[derive(Debug, Clone, Copy)]
pub struct Vigil;

impl Vigil {
    /// A builder that loads the configuration from the environment and file unless
    /// [`VigilBuilder::config`] is given.
    pub fn builder() -> VigilBuilder {
        VigilBuilder::default()
    }
}

/// Configures what [`VigilBuilder::install`] installs: the configuration, plus custom
/// backends added in code.
///
/// ```no_run
/// use vigil::{MemoryLogBackend, MemoryMetricsBackend, Vigil};
///
/// let guard = Vigil::builder()
///     .log_backend(MemoryLogBackend::new())
///     .metrics_backend(MemoryMetricsBackend::new())
///     .install()
///     .expect("vigil");
/// ```
#[derive(Default)]
pub struct VigilBuilder {
    config: Option<Config>,
    log_backends: Vec<Arc<dyn LogBackend>>,
    recorders: Vec<Box<dyn Recorder + Send + Sync>>,
}

impl std::fmt::Debug for VigilBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VigilBuilder")
            .field("config", &self.config)
            .field("log_backends", &self.log_backends.len())
            .field("recorders", &self.recorders.len())
            .finish()
    }
}

impl VigilBuilder {
    /// Uses `config` instead of loading it.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Adds a custom log backend, beside the configured ones.
    #[must_use]
    pub fn log_backend(mut self, backend: impl LogBackend) -> Self {
        self.log_backends.push(Arc::new(backend));
        self
    }

    /// Adds a shared custom log backend.
    #[must_use]
    pub fn log_backend_arc(mut self, backend: Arc<dyn LogBackend>) -> Self {
        self.log_backends.push(backend);
        self
    }

    /// Adds a custom metrics backend (the seed's `Metrics` behaviour), beside the configured
    /// ones.
    #[must_use]
    pub fn metrics_backend(mut self, backend: impl MetricsBackend) -> Self {
        self.recorders.push(Box::new(BackendRecorder::new(backend)));
        self
    }

    /// Adds any `metrics` recorder, beside the configured ones.
    #[must_use]
    pub fn recorder(mut self, recorder: impl Recorder + Send + Sync + 'static) -> Self {
        self.recorders.push(Box::new(recorder));
        self
    }

    /// Installs everything. See [`init`].
    ///
    /// # Errors
    ///
    /// As [`init`].
    pub fn install(self) -> Result<Guard, Error> {
        let config = match self.config {
            Some(c) => c,
            None => Config::load()?,
        };
        let resource = config.resource();
        let mut guard = Guard {
            config: Arc::new(Config::default()),
            log_backends: Vec::new(),
            metrics_server: None,
            vm_sampler: None,
            datadog_logs: None,
            traces: None,
            dogstatsd: None,
            done: false,
        };

        // Logs.
        let mut log_backends: Vec<Arc<dyn LogBackend>> = Vec::new();
        for kind in &config.logger_backends {
            match kind {
                LoggerBackendKind::Console => log_backends.push(console_backend(&config)?),
                LoggerBackendKind::Datadog => {
                    let (backend, handle) = datadog_logs(&config)?;
                    log_backends.push(backend);
                    guard.datadog_logs = handle;
                }
            }
        }
        log_backends.extend(self.log_backends);

        // Metrics.
        let mut recorders = self.recorders;
        for kind in &config.metrics_backends {
            match kind {
                MetricsBackendKind::Prometheus => {
                    let (recorder, server) = prometheus_backend(&config)?;
                    recorders.push(recorder);
                    guard.metrics_server = server;
                }
                MetricsBackendKind::Dogstatsd => {
                    let (recorder, handle) = dogstatsd_backend(&config)?;
                    recorders.push(recorder);
                    guard.dogstatsd = handle;
                }
            }
        }

        let (trace_layer, traces) = trace_layer(&config, &resource)?;
        guard.traces = traces;
        let mut layer = LogLayer::new(resource);
        for b in &log_backends {
            layer = layer.with_backend(b.clone());
        }
        let level = config.log.level;
        // One global filter: callsites it rejects are disabled for the whole subscriber, which
        // is cheaper per span and event than per-layer filters. Beside the log level it lets
        // sqlx's DEBUG query and acquire events through for the database layer and the tracer
        // (which turns each query into a span); the log layer drops what is below its level.
        let log_filter = level.to_filter();
        let extra_targets = extra_debug_targets(&config);
        let global = tracing_subscriber::filter::filter_fn(move |m| {
            // The DogStatsD exporter logs an error per failed payload while the agent is down;
            // those failures are counted (`datadog.dogstatsd.client.packets_dropped`) instead.
            if m.target().starts_with("metrics_exporter_dogstatsd") {
                return false;
            }
            log_filter >= *m.level()
                || extra_targets
                    .as_ref()
                    .is_some_and(|t| t.would_enable(m.target(), m.level()))
        })
        .with_max_level_hint(log_filter.max(tracing_core::LevelFilter::DEBUG));
        let subscriber = tracing_subscriber::registry()
            .with(global)
            .with(trace_layer)
            .with(layer.with_min_level(level))
            .with(query_layer(&config));
        tracing::subscriber::set_global_default(subscriber).map_err(|_| Error::SubscriberAlreadySet)?;
        // Records of the `log` crate join the same pipeline; another logger may own it already.
        let _ = tracing_log::LogTracer::builder()
            .with_max_level(log_level_filter(level))
            .init();

        let recorder: Box<dyn Recorder + Sync> = match recorders.len() {
            1 => recorders.pop().unwrap_or_else(|| unreachable!("one recorder")),
            _ => Box::new(
                recorders
                    .into_iter()
                    .fold(FanoutBuilder::default(), FanoutBuilder::add_recorder)
                    .build(),
            ),
        };
        metrics::set_global_recorder(recorder).map_err(|_| Error::RecorderAlreadySet)?;
        vigil_core::handles::remember_global_recorder();
        vigil_core::catalogue::describe_all();
        guard.vm_sampler = vm_sampler(&config)?;

        facade_logger::remember_backends(log_backends.clone());
        guard.log_backends = log_backends;
        guard.config = Arc::new(config);
        Ok(guard)
    }
}

fn log_level_filter(level: vigil_core::Level) -> tracing_log::log::LevelFilter {
    use tracing_log::log::LevelFilter;
    match level {
        vigil_core::Level::Trace => LevelFilter::Trace,
        vigil_core::Level::Debug => LevelFilter::Debug,
        vigil_core::Level::Info => LevelFilter::Info,
        vigil_core::Level::Warning => LevelFilter::Warn,
        vigil_core::Level::Error => LevelFilter::Error,
    }
}

#[cfg(feature = "console")]
fn console_backend(config: &Config) -> Result<Arc<dyn LogBackend>, Error> {
    Ok(Arc::new(
        vigil_log_console::ConsoleBackend::builder()
            .config(&config.log)
            .build()?,
    ))
}

#[cfg(not(feature = "console"))]
fn console_backend(_config: &Config) -> Result<Arc<dyn LogBackend>, Error> {
    Err(Error::FeatureDisabled {
        backend: "console logger",
        feature: "console",
    })
}

#[cfg(feature = "prometheus")]
type MetricsServer = vigil_metrics_prometheus::MetricsServer;
#[cfg(not(feature = "prometheus"))]
type MetricsServer = std::convert::Infallible;

#[cfg(feature = "prometheus")]
fn prometheus_backend(config: &Config) -> Result<(Box<dyn Recorder + Send + Sync>, Option<MetricsServer>), Error> {
    let p = &config.prometheus;
    let backend = vigil_metrics_prometheus::PrometheusBackend::builder()
        .global_label("service", &config.service)
        .global_label("environment", &config.environment)
        .max_series_per_metric(p.max_series_per_metric.0)
        .build()?;
    let dashboard = if p.dashboard {
        vigil_metrics_prometheus::DashboardOptions::default()
    } else {
        vigil_metrics_prometheus::DashboardOptions::disabled()
    };
    let mut auth = vigil_metrics_prometheus::MetricsAuth::none();
    if let Some(token) = &p.auth_token {
        auth = auth.bearer(token.expose());
    }
    if let (Some(user), Some(password)) = (&p.basic_auth_user, &p.basic_auth_password) {
        auth = auth.basic(user, password.expose());
    }
    let options = vigil_metrics_prometheus::ServerOptions::from(dashboard).auth(auth);
    let server = vigil_metrics_prometheus::MetricsServer::start_with(backend.clone(), &p.host, p.port.0, options)?;
    Ok((Box::new(backend), Some(server)))
}

#[cfg(not(feature = "prometheus"))]
fn prometheus_backend(_config: &Config) -> Result<(Box<dyn Recorder + Send + Sync>, Option<MetricsServer>), Error> {
    Err(Error::FeatureDisabled {
        backend: "prometheus metrics",
        feature: "prometheus",
    })
}

/// Targets whose DEBUG events must pass the global filter even when the log level is higher:
/// sqlx's query events, for the database layer and for the tracer's query spans.
#[allow(clippy::unnecessary_wraps)] // `None` without the db and datadog features
fn extra_debug_targets(config: &Config) -> Option<tracing_subscriber::filter::Targets> {
    #[cfg(feature = "db")]
    {
        let _ = config;
        Some(vigil_db::SqlxQueryLayer::filter())
    }
    #[cfg(all(not(feature = "db"), feature = "datadog"))]
    {
        config
            .datadog
            .traces_enabled()
            .then(vigil_trace_datadog::DatadogTraceLayer::filter)
    }
    #[cfg(all(not(feature = "db"), not(feature = "datadog")))]
    {
        let _ = config;
        None
    }
}

#[cfg(feature = "db")]
type QueryLayer = vigil_db::SqlxQueryLayer;
#[cfg(not(feature = "db"))]
type QueryLayer = tracing_subscriber::layer::Identity;

/// The database query layer (sqlx query metrics and slow-query warnings).
#[cfg(feature = "db")]
fn query_layer(config: &Config) -> QueryLayer {
    // The setting is bounded (at most an hour), so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let slow = Duration::from_millis(config.db.slow_query_ms.0 as u64);
    vigil_db::SqlxQueryLayer::new().slow_threshold(slow)
}

#[cfg(not(feature = "db"))]
fn query_layer(_config: &Config) -> QueryLayer {
    tracing_subscriber::layer::Identity::new()
}

#[cfg(feature = "datadog")]
type DatadogLogs = Arc<vigil_log_datadog::DatadogLogBackend>;
#[cfg(not(feature = "datadog"))]
type DatadogLogs = std::convert::Infallible;

/// The Datadog logs backend: to `DATADOG_LOGS_URL`, else the intake of `DATADOG_SITE`.
#[cfg(feature = "datadog")]
fn datadog_logs(config: &Config) -> Result<(Arc<dyn LogBackend>, Option<DatadogLogs>), Error> {
    let dd = &config.datadog;
    let key = dd.api_key.clone().ok_or(vigil_core::ConfigError::Missing {
        var: "DATADOG_API_KEY",
        reason: "the Datadog logger backend is configured",
    })?;
    let backend = Arc::new(
        vigil_log_datadog::DatadogLogBackend::builder(key)
            .site(dd.site.clone())
            .url(dd.logs_intake_url())
            .tags(dd.tags.iter().map(|t| t.0.clone()))
            .build()?,
    );
    Ok((backend.clone(), Some(backend)))
}

#[cfg(not(feature = "datadog"))]
fn datadog_logs(_config: &Config) -> Result<(Arc<dyn LogBackend>, Option<DatadogLogs>), Error> {
    Err(Error::FeatureDisabled {
        backend: "datadog logger",
        feature: "datadog",
    })
}

#[cfg(feature = "datadog")]
type TraceLayer = Option<vigil_trace_datadog::DatadogTraceLayer>;
#[cfg(not(feature = "datadog"))]
type TraceLayer = tracing_subscriber::layer::Identity;
#[cfg(feature = "datadog")]
type TraceSender = vigil_trace_datadog::TraceSender;
#[cfg(not(feature = "datadog"))]
type TraceSender = std::convert::Infallible;

/// The Datadog APM layer, when `ENABLE_DATADOG` is on and `DD_TRACE_ENABLED` is not false.
#[cfg(feature = "datadog")]
fn trace_layer(config: &Config, resource: &vigil_core::Resource) -> Result<(TraceLayer, Option<TraceSender>), Error> {
    let dd = &config.datadog;
    if !dd.traces_enabled() {
        return Ok((None, None));
    }
    let layer = vigil_trace_datadog::DatadogTraceLayer::builder(resource.clone())
        .agent(dd.agent_host.clone(), dd.trace_agent_port.0)
        .build()?;
    let sender = layer.sender().clone();
    Ok((Some(layer), Some(sender)))
}

#[cfg(not(feature = "datadog"))]
#[allow(clippy::unnecessary_wraps)] // the same signature as with the feature
fn trace_layer(_config: &Config, _resource: &vigil_core::Resource) -> Result<(TraceLayer, Option<TraceSender>), Error> {
    Ok((tracing_subscriber::layer::Identity::new(), None))
}

#[cfg(feature = "dogstatsd")]
type Dogstatsd = vigil_metrics_dogstatsd::DogStatsdBackend;
#[cfg(not(feature = "dogstatsd"))]
type Dogstatsd = std::convert::Infallible;

/// The DogStatsD backend: to `DD_DOGSTATSD_URL` when set, else `DD_DOGSTATSD_SOCKET`, else UDP
/// to `DD_AGENT_HOST:DD_DOGSTATSD_PORT`, with service, env and version tags.
#[cfg(feature = "dogstatsd")]
fn dogstatsd_backend(config: &Config) -> Result<(Box<dyn Recorder + Send + Sync>, Option<Dogstatsd>), Error> {
    let dd = &config.datadog;
    let mut builder = vigil_metrics_dogstatsd::DogStatsdBackend::builder();
    builder = match (&dd.dogstatsd_url, &dd.dogstatsd_socket) {
        (Some(url), _) => builder.url(url.clone()),
        (None, Some(path)) => builder.unix_socket(path.clone()),
        (None, None) => builder.udp(dd.agent_host.clone(), dd.dogstatsd_port.0),
    };
    builder = builder
        .global_tag("service", &config.service)
        .global_tag("env", &config.environment);
    if !config.version.is_empty() {
        builder = builder.global_tag("version", &config.version);
    }
    let backend = builder.build()?;
    Ok((Box::new(backend.clone()), Some(backend)))
}

#[cfg(not(feature = "dogstatsd"))]
fn dogstatsd_backend(_config: &Config) -> Result<(Box<dyn Recorder + Send + Sync>, Option<Dogstatsd>), Error> {
    Err(Error::FeatureDisabled {
        backend: "dogstatsd metrics",
        feature: "dogstatsd",
    })
}

#[cfg(feature = "vm")]
type VmSampler = vigil_vm::VmSampler;
#[cfg(not(feature = "vm"))]
type VmSampler = std::convert::Infallible;

/// Starts the VM sampler when the configuration enables it; it publishes to the global
/// recorder, so call this after installing it.
#[cfg(feature = "vm")]
fn vm_sampler(config: &Config) -> Result<Option<VmSampler>, Error> {
    if !config.vm.enabled {
        return Ok(None);
    }
    Ok(Some(vigil_vm::VmSampler::start(&config.vm)?))
}

#[cfg(not(feature = "vm"))]
#[allow(clippy::unnecessary_wraps)] // the same signature as with the feature
fn vm_sampler(_config: &Config) -> Result<Option<VmSampler>, Error> {
    Ok(None)
}

/// Keeps Vigil running. Dropping it, or calling [`shutdown`](Self::shutdown), stops the VM
/// sampler, flushes every log backend and stops the metrics endpoint.
#[must_use = "dropping the guard shuts Vigil down"]
pub struct Guard {
    config: Arc<Config>,
    log_backends: Vec<Arc<dyn LogBackend>>,
    metrics_server: Option<MetricsServer>,
    vm_sampler: Option<VmSampler>,
    datadog_logs: Option<DatadogLogs>,
    traces: Option<TraceSender>,
    dogstatsd: Option<Dogstatsd>,
    done: bool,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("log_backends", &self.log_backends.len())
            .field("metrics_addr", &self.metrics_addr())
            .field("vm_sampler", &self.vm_sampler.is_some())
            .field("datadog_logs", &self.datadog_logs.is_some())
            .field("traces", &self.traces.is_some())
            .field("dogstatsd", &self.dogstatsd.is_some())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// The configuration Vigil was installed with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The HTTP telemetry layer, configured (access log) from this installation's
    /// configuration. Add it outermost to the router or service stack.
    ///
    /// ```no_run
    /// let guard = vigil::init().expect("vigil");
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/health", axum::routing::get(|| async { "ok" }))
    ///     .layer(guard.http_layer());
    /// ```
    #[cfg(feature = "http")]
    pub fn http_layer(&self) -> vigil_http::HttpMetricsLayer {
        vigil_http::HttpMetricsLayer::new().access_log(self.config.http.access_log)
    }

    /// The address the Prometheus endpoint listens on, when it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        #[cfg(feature = "prometheus")]
        {
            self.metrics_server.as_ref().map(MetricsServer::local_addr)
        }
        #[cfg(not(feature = "prometheus"))]
        {
            None
        }
    }

    /// Stops the VM sampler; delivers queued APM traces, then every log backend's queued
    /// records, then DogStatsD's last aggregates, all within `timeout`; then stops the metrics
    /// endpoint. Returns `true` when everything was delivered in time.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> bool {
        if std::mem::replace(&mut self.done, true) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        // The sampler stops at once (it finishes a sample in progress, well under a millisecond).
        #[cfg(feature = "vm")]
        if let Some(sampler) = self.vm_sampler.take() {
            sampler.stop();
        }
        let backends = self.log_backends.clone();
        let datadog_logs = self.datadog_logs.take();
        let traces = self.traces.take();
        let dogstatsd = self.dogstatsd.take();
        let (tx, rx) = mpsc::channel();
        // Flush on a helper thread so a stuck destination cannot hold shutdown past `timeout`.
        let flushed = std::thread::Builder::new()
            .name("vigil-shutdown".to_owned())
            .spawn(move || {
                // Traces first: what their sender logs while stopping still reaches the logs.
                let traces = stop_traces(traces.as_ref(), deadline);
                let datadog = stop_datadog_logs(datadog_logs.as_ref(), deadline);
                for b in &backends {
                    b.flush();
                }
                let dogstatsd = flush_dogstatsd(dogstatsd.as_ref(), deadline);
                let _ = tx.send(traces && datadog && dogstatsd);
            })
            .is_ok_and(|_| rx.recv_timeout(timeout).unwrap_or(false));
        #[cfg(feature = "prometheus")]
        if let Some(server) = self.metrics_server.take() {
            server.shutdown();
        }
        flushed
    }
}

/// Delivers queued traces until `deadline` and stops the trace sender.
#[cfg(feature = "datadog")]
fn stop_traces(traces: Option<&TraceSender>, deadline: Instant) -> bool {
    traces.is_none_or(|t| t.shutdown(deadline))
}

#[cfg(not(feature = "datadog"))]
fn stop_traces(_traces: Option<&TraceSender>, _deadline: Instant) -> bool {
    true
}

/// Delivers queued Datadog logs until `deadline` and stops their sender.
#[cfg(feature = "datadog")]
fn stop_datadog_logs(logs: Option<&DatadogLogs>, deadline: Instant) -> bool {
    logs.is_none_or(|l| l.shutdown(deadline))
}

#[cfg(not(feature = "datadog"))]
fn stop_datadog_logs(_logs: Option<&DatadogLogs>, _deadline: Instant) -> bool {
    true
}

/// Waits, until `deadline` at most, for DogStatsD's last aggregates to be sent.
#[cfg(feature = "dogstatsd")]
fn flush_dogstatsd(backend: Option<&Dogstatsd>, deadline: Instant) -> bool {
    backend.is_none_or(|b| {
        b.flush(deadline.saturating_duration_since(Instant::now())) != vigil_metrics_dogstatsd::FlushOutcome::TimedOut
    })
}

#[cfg(not(feature = "dogstatsd"))]
fn flush_dogstatsd(_backend: Option<&Dogstatsd>, _deadline: Instant) -> bool {
    true
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shutdown_inner(DEFAULT_SHUTDOWN_TIMEOUT);
    }
}
