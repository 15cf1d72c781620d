//! The cost of the HTTP layer per request, in process: an axum router answering "Hello,
//! World!", with and without `HttpMetricsLayer`, under Vigil's Prometheus recorder and log
//! layer (so handles are cached and the request span is recorded, as in production).

use std::hint::black_box;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracing_subscriber::prelude::*;
use vigil_core::{LogLayer, NoopLogBackend, Resource};
use vigil_http::HttpMetricsLayer;
use vigil_metrics_prometheus::PrometheusBackend;

fn install() {
    let backend = PrometheusBackend::builder()
        .global_label("service", "bench")
        .build()
        .unwrap();
    metrics::set_global_recorder(backend).unwrap();
    vigil_core::handles::remember_global_recorder();
    let layer = LogLayer::new(Resource::new("bench", "bench")).with_backend(Arc::new(NoopLogBackend));
    let subscriber = tracing_subscriber::registry()
        .with(tracing_core::LevelFilter::INFO)
        .with(layer);
    tracing::subscriber::set_global_default(subscriber).unwrap();
}

async fn hello() -> &'static str {
    "Hello, World!"
}

fn bench(c: &mut Criterion) {
    install();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let bare = Router::new().route("/", get(hello));
    let measured = Router::new().route("/", get(hello)).layer(HttpMetricsLayer::new());
    let no_span = Router::new()
        .route("/", get(hello))
        .layer(HttpMetricsLayer::new().trace_span(false));
    let mut group = c.benchmark_group("http_request");
    for (name, app) in [
        ("bare", bare),
        ("vigil_layer", measured),
        ("vigil_layer_no_span", no_span),
    ] {
        // As `axum::serve` does: without it, axum builds each handler's route (and applies
        // the layers) again on every request.
        let app = app.with_state(());
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let app = app.clone();
                async move {
                    let request = http::Request::get("/").body(Body::empty()).unwrap();
                    let response = app.oneshot(request).await.unwrap();
                    black_box(response.into_body().collect().await.unwrap());
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
