//! The `/metrics` HTTP endpoint, on its own thread and runtime.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::{PrometheusBackend, PrometheusError};

/// The content type of the text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram buffers are drained when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The running `/metrics` endpoint. Stops when [`shutdown`](Self::shutdown) is called or it is
/// dropped.
///
/// It answers `GET /metrics` (and `HEAD`) with the exposition text, `405` for other methods
/// on `/metrics`, and `404` for every other path. It runs on a dedicated thread with a
/// single-threaded Tokio runtime, so scrapes never compete with the application's runtime,
/// and it drains histogram buffers every 5 seconds.
///
/// ```no_run
/// use vigil_metrics_prometheus::{MetricsServer, PrometheusBackend};
///
/// let backend = PrometheusBackend::builder().build().unwrap();
/// let server = MetricsServer::start(backend, "127.0.0.1", 9568).unwrap();
/// println!("scrape http://{}/metrics", server.local_addr());
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MetricsServer {
    /// Binds `host:port` now (so a taken port is an error at start-up) and serves `backend`.
    ///
    /// Port 0 picks a free port; [`local_addr`](Self::local_addr) tells which.
    ///
    /// # Errors
    ///
    /// [`PrometheusError::Resolve`] when `host` does not resolve, [`PrometheusError::Bind`]
    /// when no resolved address can be bound (the port is taken, or the address is not
    /// local), [`PrometheusError::Runtime`] when the server thread cannot start.
    pub fn start(backend: PrometheusBackend, host: &str, port: u16) -> Result<Self, PrometheusError> {
        let listener = bind(host, port)?;
        let local_addr = listener.local_addr().map_err(PrometheusError::Runtime)?;
        listener.set_nonblocking(true).map_err(PrometheusError::Runtime)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(PrometheusError::Runtime)?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("vigil-metrics-server".to_owned())
            .spawn(move || runtime.block_on(serve(listener, backend, stopped)))
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

async fn serve(listener: TcpListener, backend: PrometheusBackend, mut stopped: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, "the Prometheus endpoint could not start");
            return;
        }
    };
    let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = upkeep.tick() => backend.run_upkeep(),
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let backend = backend.clone();
                let mut stopped = stopped.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let backend = backend.clone();
                        async move { Ok::<_, Infallible>(respond(&backend, &req)) }
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

fn respond(backend: &PrometheusBackend, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found: Vigil serves /metrics\n");
    }
    match *req.method() {
        Method::GET | Method::HEAD => {
            backend.run_upkeep();
            let body = backend.render();
            let mut response = Response::new(Full::new(if req.method() == Method::HEAD {
                Bytes::new()
            } else {
                Bytes::from(body)
            }));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
            response
        }
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
