//! Trace propagation through the layer: an incoming `traceparent` or Datadog context reaches
//! the tracer when the request span is created, and the response status is recorded on it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use vigil_core::trace::{RemoteParent, TraceIds};
use vigil_http::HttpMetricsLayer;

/// What the stand-in tracer saw of one request span.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    parent: Option<RemoteParent>,
    status: Option<u64>,
    error: Option<String>,
}

/// A stand-in tracer: takes the remote parent like a real one, gives spans ids, and keeps the
/// fields recorded later.
#[derive(Clone, Default)]
struct StandInTracer(Arc<Mutex<Vec<Seen>>>);

struct Index(usize);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for StandInTracer {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let parent = vigil_core::trace::take_remote_parent();
        span.extensions_mut().insert(TraceIds {
            trace_id: parent.map_or(1, |p| p.trace_id),
            span_id: id.into_u64(),
        });
        if attrs.metadata().name() == "request" {
            let mut seen = self.0.lock().unwrap();
            seen.push(Seen {
                parent,
                ..Seen::default()
            });
            span.extensions_mut().insert(Index(seen.len() - 1));
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        struct Visitor<'a>(&'a mut Seen);
        impl tracing::field::Visit for Visitor<'_> {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "status" {
                    self.0.status = Some(value);
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "error" {
                    self.0.error = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let span = ctx.span(id).unwrap();
        if let Some(Index(i)) = span.extensions().get::<Index>() {
            values.record(&mut Visitor(&mut self.0.lock().unwrap()[*i]));
        }
    }
}

fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/fail",
            get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/outgoing",
            get(|| async {
                // A handler calling another service passes the trace on.
                let mut headers = http::HeaderMap::new();
                assert!(vigil_http::propagation::inject(&mut headers));
                headers["traceparent"].to_str().unwrap().to_owned()
            }),
        )
        .layer(HttpMetricsLayer::new())
}

async fn get_with(app: &Router, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = http::Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[test]
fn incoming_context_continues_the_callers_trace_and_status_is_recorded() {
    vigil_core::trace::register_tracer();
    let tracer = StandInTracer::default();
    let subscriber = tracing_subscriber::registry().with(tracer.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let outgoing = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let app = app();
            get_with(
                &app,
                "/ok",
                &[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
            )
            .await;
            get_with(
                &app,
                "/fail",
                &[("x-datadog-trace-id", "123"), ("x-datadog-parent-id", "456")],
            )
            .await;
            get_with(&app, "/ok", &[("traceparent", "garbage")]).await;
            get_with(
                &app,
                "/outgoing",
                &[("x-datadog-trace-id", "77"), ("x-datadog-parent-id", "88")],
            )
            .await
        })
    });
    let seen = tracer.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen[0],
        Seen {
            parent: Some(RemoteParent {
                trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                span_id: 0x00f0_67aa_0ba9_02b7,
                sampling_priority: Some(1),
            }),
            status: Some(200),
            error: None,
        }
    );
    assert_eq!(
        seen[1],
        Seen {
            parent: Some(RemoteParent {
                trace_id: 123,
                span_id: 456,
                sampling_priority: None,
            }),
            status: Some(503),
            error: Some("Service Unavailable".to_owned()),
        }
    );
    assert_eq!(seen[2].parent, None, "a malformed traceparent starts a new trace");
    assert_eq!(seen[2].status, Some(200));
    // The outgoing headers carry the caller's trace id (77) and this request span's id.
    assert_eq!(outgoing.0, 200);
    let parts: Vec<&str> = outgoing.1.split('-').collect();
    assert_eq!(parts[1], format!("{:032x}", 77));
    assert_ne!(
        parts[2],
        format!("{:016x}", 88),
        "the parent is our span, not the caller's"
    );
}
