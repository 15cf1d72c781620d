//! The metrics port: `/metrics`, and the live dashboard on `/dashboard`, on its own thread and
//! runtime.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName,
    HeaderValue, REFERRER_POLICY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::dashboard::{DashboardHistory, DashboardOptions, page};
use crate::{MetricsAuth, PrometheusBackend, PrometheusError};

/// How the metrics port serves: the dashboard's options and who may read it.
///
/// ```
/// use vigil_metrics_prometheus::{DashboardOptions, MetricsAuth, ServerOptions};
///
/// let options = ServerOptions::from(DashboardOptions::default()).auth(MetricsAuth::none().bearer("t0ken"));
/// assert!(options.auth_required());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerOptions {
    dashboard: DashboardOptions,
    auth: MetricsAuth,
}

impl ServerOptions {
    /// The dashboard's options.
    #[must_use]
    pub fn dashboard(mut self, dashboard: DashboardOptions) -> Self {
        self.dashboard = dashboard;
        self
    }

    /// The credentials every request must carry (none by default).
    #[must_use]
    pub fn auth(mut self, auth: MetricsAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Whether requests need a credential.
    pub fn auth_required(&self) -> bool {
        self.auth.is_required()
    }
}

impl From<DashboardOptions> for ServerOptions {
    fn from(dashboard: DashboardOptions) -> Self {
        ServerOptions {
            dashboard,
            auth: MetricsAuth::none(),
        }
    }
}

/// The content type of the text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Security-Policy` of every dashboard response: nothing but the page's own inline
/// script and style sheet (allowed by their SHA-256 hashes, so no other inline code runs) and
/// requests to the metrics port itself; no framing, no forms, no other origin.
///
/// ```
/// let csp = vigil_metrics_prometheus::dashboard_csp();
/// assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"));
/// ```
pub fn dashboard_csp() -> &'static str {
    &page().csp
}

/// The running metrics port. Stops when [`shutdown`](Self::shutdown) is called or it is
/// dropped.
///
/// It answers `GET /metrics` (and `HEAD`) with the exposition text. Unless the dashboard is
/// disabled ([`DashboardOptions::disabled`]), it also serves a live dashboard for a developer
/// with no Grafana at hand, read-only:
///
/// | path | content |
/// |---|---|
/// | `/dashboard` | the page: one self-contained HTML document, its script and style inline (no external origin, no CDN) |
/// | `/dashboard/data` | the history as JSON ([`DashboardHistory::to_json`]), polled by the page |
///
/// With [`MetricsAuth`] credentials configured (see [`ServerOptions::auth`]), every request
/// without one of them gets `401 Unauthorized` with a `WWW-Authenticate` challenge, whatever
/// its path.
///
/// Dashboard responses carry `Cache-Control: no-store`, `X-Content-Type-Options: nosniff`,
/// `Referrer-Policy: no-referrer` and the strict [`dashboard_csp`]. Other methods on these
/// paths get `405` (with `Allow: GET, HEAD`), every other path `404`.
///
/// It runs on a dedicated thread with a single-threaded Tokio runtime, so scrapes never
/// compete with the application's runtime. With the dashboard, it samples the registry into a
/// bounded [`DashboardHistory`] every second (by default; each sample renders the registry
/// once, as a scrape does). The backend aggregates as values are recorded, so there is no
/// upkeep to run.
///
/// ```no_run
/// use vigil_metrics_prometheus::{MetricsServer, PrometheusBackend};
///
/// let backend = PrometheusBackend::builder().build().unwrap();
/// let server = MetricsServer::start(backend, "127.0.0.1", 9568).unwrap();
/// println!("scrape http://{0}/metrics, watch http://{0}/dashboard", server.local_addr());
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MetricsServer {
    /// Binds `host:port` now (so a taken port is an error at start-up) and serves `backend`,
    /// with the dashboard's default options.
    ///
    /// Port 0 picks a free port; [`local_addr`](Self::local_addr) tells which.
    ///
    /// # Errors
    ///
    /// [`PrometheusError::Resolve`] when `host` does not resolve, [`PrometheusError::Bind`]
    /// when no resolved address can be bound (the port is taken, or the address is not
    /// local), [`PrometheusError::Runtime`] when the server thread cannot start.
    pub fn start(backend: PrometheusBackend, host: &str, port: u16) -> Result<Self, PrometheusError> {
        Self::start_with(backend, host, port, DashboardOptions::default())
    }

    /// As [`start`](Self::start), with the dashboard configured (or disabled) and credentials
    /// required as `options` say ([`DashboardOptions`] converts into [`ServerOptions`]).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_with(
        backend: PrometheusBackend,
        host: &str,
        port: u16,
        options: impl Into<ServerOptions>,
    ) -> Result<Self, PrometheusError> {
        let ServerOptions { dashboard, auth } = options.into();
        let auth = Arc::new(auth);
        let listener = bind(host, port)?;
        let local_addr = listener.local_addr().map_err(PrometheusError::Runtime)?;
        listener.set_nonblocking(true).map_err(PrometheusError::Runtime)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(PrometheusError::Runtime)?;
        let (stop, stopped) = watch::channel(false);
        let dashboard = dashboard.enabled.then(|| Dashboard {
            history: Arc::new(DashboardHistory::new(backend.clone(), dashboard)),
            interval: dashboard.interval,
        });
        let thread = std::thread::Builder::new()
            .name("vigil-metrics-server".to_owned())
            .spawn(move || runtime.block_on(serve(listener, backend, dashboard, auth, stopped)))
            .map_err(PrometheusError::Runtime)?;
        Ok(MetricsServer {
            local_addr,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting scrapes and waits for the server thread to end.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn bind(host: &str, port: u16) -> Result<TcpListener, PrometheusError> {
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| PrometheusError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    // Prefer IPv4 for `localhost`, which most scrapers use.
    addrs.sort_by_key(SocketAddr::is_ipv6);
    let mut last = None;
    for addr in &addrs {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        Some((addr, source)) => Err(PrometheusError::Bind { addr: *addr, source }),
        None => Err(PrometheusError::Resolve {
            host: host.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        }),
    }
}

/// The dashboard's history and how often it is sampled.
struct Dashboard {
    history: Arc<DashboardHistory>,
    interval: Duration,
}

async fn serve(
    listener: TcpListener,
    backend: PrometheusBackend,
    dashboard: Option<Dashboard>,
    auth: Arc<MetricsAuth>,
    mut stopped: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, "the Prometheus endpoint could not start");
            return;
        }
    };
    // Without a dashboard the timer is never polled (`if history.is_some()`).
    let mut sample = tokio::time::interval(dashboard.as_ref().map_or(Duration::from_secs(1), |d| d.interval));
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let history = dashboard.map(|d| d.history);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = sample.tick(), if history.is_some() => {
                if let Some(history) = &history {
                    history.sample_now();
                }
            }
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let backend = backend.clone();
                let history = history.clone();
                let auth = Arc::clone(&auth);
                let mut stopped = stopped.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let backend = backend.clone();
                        let history = history.clone();
                        let auth = Arc::clone(&auth);
                        async move { Ok::<_, Infallible>(respond(&backend, history.as_deref(), &auth, &req)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .header_read_timeout(Duration::from_secs(10))
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service);
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopped.changed() => conn.as_mut().graceful_shutdown(),
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

/// What a path serves.
enum Route {
    Metrics,
    Page,
    Data,
}

fn respond(
    backend: &PrometheusBackend,
    history: Option<&DashboardHistory>,
    auth: &MetricsAuth,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    // Before anything else, so that an unauthenticated client learns nothing, not even which
    // paths exist.
    let authorization = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !auth.allows(authorization) {
        let mut response = plain(
            StatusCode::UNAUTHORIZED,
            "unauthorized: this metrics port needs a credential\n",
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(auth.challenge()));
        return response;
    }
    let route = match (req.uri().path(), history.is_some()) {
        ("/metrics", _) => Route::Metrics,
        ("/dashboard", true) => Route::Page,
        ("/dashboard/data", true) => Route::Data,
        (_, true) => {
            return plain(
                StatusCode::NOT_FOUND,
                "not found: Vigil serves /metrics and /dashboard\n",
            );
        }
        (_, false) => return plain(StatusCode::NOT_FOUND, "not found: Vigil serves /metrics\n"),
    };
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
    };
    match route {
        Route::Metrics => {
            let body = backend.render();
            let mut response = Response::new(Full::new(if head { Bytes::new() } else { Bytes::from(body) }));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
            response
        }
        Route::Page => dashboard_response(
            Bytes::from_static(page().html.as_bytes()),
            "text/html; charset=utf-8",
            head,
        ),
        Route::Data => {
            let json = history.map(DashboardHistory::to_json).unwrap_or_default();
            dashboard_response(Bytes::from(json), "application/json", head)
        }
    }
}

/// A dashboard response: `body` (only its length for `HEAD`) with the dashboard's headers.
fn dashboard_response(body: Bytes, content_type: &'static str, head: bool) -> Response<Full<Bytes>> {
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(Full::new(if head { Bytes::new() } else { body }));
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 5] = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, "no-store"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (CONTENT_SECURITY_POLICY, dashboard_csp()),
        (REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if head {
        headers.insert(CONTENT_LENGTH, length);
    }
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
