//! The layer, the service, its response future and the metered response body.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Buf;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;
use vigil_core::catalogue::{HTTP_REQUEST_COUNT, HTTP_REQUEST_DURATION, HTTP_REQUESTS_IN_FLIGHT, HTTP_RESPONSE_SIZE};
use vigil_core::handles::{self, UnlabeledGauge, Update};

use crate::labels::{Route, RouteFn, RouteInput, STATUS_CANCELLED, STATUS_ERROR, STATUS_PANIC, method_label, route_of};
use crate::request_id::{REQUEST_ID_HEADER, RequestId};

/// `http.request.in_flight`, registered once.
static IN_FLIGHT: UnlabeledGauge = UnlabeledGauge::new(HTTP_REQUESTS_IN_FLIGHT.name);

/// What every request of a layer shares.
#[derive(Clone)]
struct Shared {
    route_fn: Option<Arc<RouteFn>>,
    access_log: bool,
    span: bool,
}

/// A tower [`Layer`] that records HTTP request telemetry for every request through it.
///
/// For each request it:
/// - records `http.request.count` and `http.request.duration` (ms), tagged `route`, `method`,
///   `status`, the response body size `http.response.size` (bytes, same tags), and the
///   `http.request.in_flight` gauge;
/// - takes the request id from `x-request-id` when well-formed, or generates one, puts it in
///   the request's extensions ([`RequestId`]) and echoes it in the response;
/// - runs the inner service inside a `tracing` span `request` with `request_id`, `method`
///   and `route`, so every log line written while handling the request carries them (a
///   streaming body that logs while it is being sent should keep `tracing::Span::current()`
///   from the handler and enter it);
/// - optionally writes one access-log record per request (target `vigil::access`).
///
/// **What the duration measures**: from the moment the layer's service is called until the
/// last byte of the response body was handed to the server (the body's end), or until the
/// response head for responses without a body (`HEAD`, `1xx`, `204`, `304`, empty bodies,
/// WebSocket upgrades). Time spent in layers outside this one is not included, so add it
/// outermost (with axum: `Router::layer`, the last call).
///
/// **Labels stay bounded**: `route` is the route template — axum's `MatchedPath`, or your
/// [`route_fn`](Self::route_fn) — never the raw path; every request that matched no route
/// shares `route="unmatched"`; methods outside the standard nine are `OTHER`.
///
/// **Failed requests still count**, with a status that says so: `error` when the inner service
/// returns an error, `cancelled` when the client disconnects (or the serving task is
/// cancelled) before the response is complete, `panic` when a handler panics through this
/// layer. A catch-panic layer inside this one turns panics into `500` responses, counted as
/// such.
///
/// ```
/// use axum::{Router, routing::get};
/// use vigil_http::HttpMetricsLayer;
///
/// let app: Router = Router::new()
///     .route("/api/videos/{id}/comments", get(|| async { "[]" }))
///     .layer(HttpMetricsLayer::new());
/// ```
#[derive(Clone)]
pub struct HttpMetricsLayer {
    shared: Arc<Shared>,
}

impl Default for HttpMetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HttpMetricsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetricsLayer")
            .field("route_fn", &self.shared.route_fn.is_some())
            .field("access_log", &self.shared.access_log)
            .finish()
    }
}

impl HttpMetricsLayer {
    /// A layer with axum's `MatchedPath` as the route and no access log.
    pub fn new() -> Self {
        HttpMetricsLayer {
            shared: Arc::new(Shared {
                route_fn: None,
                access_log: false,
                span: true,
            }),
        }
    }

    /// Supplies the route template for stacks without axum's `MatchedPath` (plain hyper, other
    /// routers). Returning `None` falls back to `MatchedPath`, then to `unmatched`.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use vigil_http::HttpMetricsLayer;
    ///
    /// let layer = HttpMetricsLayer::new().route_fn(|req| match req.uri.path() {
    ///     "/health" => Some(Cow::Borrowed("/health")),
    ///     p if p.starts_with("/api/videos/") => Some(Cow::Borrowed("/api/videos/{id}")),
    ///     _ => None,
    /// });
    /// ```
    #[must_use]
    pub fn route_fn(self, f: impl Fn(&RouteInput<'_>) -> Option<Cow<'static, str>> + Send + Sync + 'static) -> Self {
        self.with(|s| s.route_fn = Some(Arc::new(f)))
    }

    /// Writes one record per request (`method`, `route`, `status`, `duration_ms`, `bytes`, in
    /// the request's span) at info level, target `vigil::access`. Off by default.
    #[must_use]
    pub fn access_log(self, on: bool) -> Self {
        self.with(|s| s.access_log = on)
    }

    /// Opens the per-request `tracing` span (`request_id`, `method`, `route`). On by default;
    /// turning it off saves its cost (about a third of the layer's) when no log line or trace
    /// needs the request's context. The request id is still taken, generated and echoed.
    #[must_use]
    pub fn trace_span(self, on: bool) -> Self {
        self.with(|s| s.span = on)
    }

    fn with(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        f(&mut shared);
        HttpMetricsLayer {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`HttpMetricsLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for HttpMetrics<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let method = method_label(req.method());
        let route = route_of(
            &RouteInput {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
                extensions: req.extensions(),
            },
            self.shared.route_fn.as_deref(),
        );
        let request_id = if let Some(id) = req.headers().get(REQUEST_ID_HEADER).and_then(RequestId::from_header) {
            id
        } else {
            // Generated (or the client's was malformed): handlers see the id we use.
            let id = RequestId::generate();
            req.headers_mut().insert(REQUEST_ID_HEADER, id.header_value().clone());
            id
        };
        req.extensions_mut().insert(request_id.clone());
        let traced = self.shared.span && vigil_core::trace::tracer_registered();
        let span = if self.shared.span {
            let make = || {
                tracing::info_span!(
                    target: "vigil::http",
                    "request",
                    request_id = request_id.as_str(),
                    method,
                    route = route.as_str(),
                    status = tracing::field::Empty,
                    error = tracing::field::Empty,
                )
            };
            match traced.then(|| crate::propagation::extract(req.headers())).flatten() {
                Some(parent) => vigil_core::trace::with_remote_parent(parent, make),
                None => make(),
            }
        } else {
            tracing::Span::none()
        };
        let head_only = req.method() == http::Method::HEAD;
        IN_FLIGHT.add(1.0);
        // Boxed: the response future and body stay small, so moving them is cheap.
        let completion = Box::new(Completion {
            start,
            method,
            route,
            request_id,
            span,
            traced,
            shared: self.shared.clone(),
            status: None,
            bytes: 0,
            head_only,
            done: false,
        });
        let inner = {
            let _entered = completion.span.enter();
            self.inner.call(req)
        };
        ResponseFuture {
            inner,
            completion: Some(completion),
        }
    }
}

/// A request being measured. Recorded exactly once: by [`Completion::finish`], or when dropped
/// unfinished (`cancelled`, or `panic` while unwinding).
struct Completion {
    start: Instant,
    method: &'static str,
    route: Route,
    request_id: RequestId,
    span: tracing::Span,
    /// A tracer is installed: the span gets the response status (and error) recorded.
    traced: bool,
    shared: Arc<Shared>,
    status: Option<StatusCode>,
    bytes: u64,
    head_only: bool,
    done: bool,
}

impl Completion {
    fn finish(mut self, status: &str) {
        self.record(status);
    }

    fn record(&mut self, status: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let duration_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let tags = [
            ("route", self.route.as_str()),
            ("method", self.method),
            ("status", status),
        ];
        #[allow(clippy::cast_precision_loss)]
        let bytes = self.bytes as f64;
        // One cache lookup for the three series of this route, method and status.
        handles::apply(
            &tags,
            &[
                Update::Increment(HTTP_REQUEST_COUNT.name, 1),
                Update::Histogram(HTTP_REQUEST_DURATION.name, duration_ms),
                Update::Histogram(HTTP_RESPONSE_SIZE.name, bytes),
            ],
        );
        IN_FLIGHT.add(-1.0);
        if self.traced {
            if let Some(code) = self.status {
                self.span.record("status", code.as_u16());
            }
            match self.status {
                // Answered: a server error is an error; anything else is not.
                Some(code) if status == code.as_str() => {
                    if code.is_server_error() {
                        self.span.record("error", code.canonical_reason().unwrap_or(status));
                    }
                }
                // `error`, `cancelled` or `panic`.
                _ => {
                    self.span.record("error", status);
                }
            }
        }
        if self.shared.access_log {
            let _entered = self.span.enter();
            tracing::info!(
                target: "vigil::access",
                method = self.method,
                route = self.route.as_str(),
                status,
                duration_ms,
                bytes = self.bytes,
                "request completed"
            );
        }
    }

    fn finish_with_status(self) {
        let status = self.status.unwrap_or(StatusCode::OK);
        self.finish(status.as_str());
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.done {
            self.record(if std::thread::panicking() {
                STATUS_PANIC
            } else {
                STATUS_CANCELLED
            });
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpMetrics`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        completion: Option<Box<Completion>>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<MeteredBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.completion.as_ref().map(|c| c.span.enter());
            ready!(this.inner.poll(cx))
        };
        let Some(mut completion) = this.completion.take() else {
            // Polled after completion: pass the result through unmeasured.
            return Poll::Ready(result.map(|r| {
                r.map(|body| MeteredBody {
                    inner: body,
                    completion: None,
                })
            }));
        };
        match result {
            Ok(mut response) => {
                response
                    .headers_mut()
                    .insert(REQUEST_ID_HEADER, completion.request_id.header_value().clone());
                let status = response.status();
                completion.status = Some(status);
                let (parts, body) = response.into_parts();
                let bodyless = completion.head_only
                    || status.is_informational()
                    || status == StatusCode::NO_CONTENT
                    || status == StatusCode::NOT_MODIFIED
                    || body.is_end_stream();
                let completion = if bodyless {
                    completion.finish_with_status();
                    None
                } else {
                    Some(completion)
                };
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    MeteredBody {
                        inner: body,
                        completion,
                    },
                )))
            }
            Err(error) => {
                completion.finish(STATUS_ERROR);
                Poll::Ready(Err(error))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that finishes the request's measurement when its last byte is sent.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        completion: Option<Box<Completion>>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(c)) = (f.data_ref(), this.completion.as_mut()) {
                    c.bytes += data.remaining() as u64;
                }
                if this.inner.is_end_stream()
                    && let Some(c) = this.completion.take()
                {
                    c.finish_with_status();
                }
            }
            Some(Err(_)) => {
                if let Some(c) = this.completion.take() {
                    c.finish(STATUS_ERROR);
                }
            }
            None => {
                if let Some(c) = this.completion.take() {
                    c.finish_with_status();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
