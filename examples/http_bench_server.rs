//! A hello-world axum app in three forms, for `cargo xtask bench`'s wrk run: `bare`, with
//! Vigil's HTTP layer (`vigil`), and with the axum-prometheus layer (`axum-prometheus`).
//!
//! ```text
//! PORT=4100 cargo run --release -p examples --example http_bench_server -- vigil
//! wrk -t1 -c16 -d10s http://127.0.0.1:4100/
//! ```
//!
//! The `vigil` form runs `vigil::init()` as an application would (console logs, Prometheus on
//! `PROMETHEUS_PORT`), so each request also gets its request id and tracing span.

use axum::Router;
use axum::routing::get;

async fn hello() -> &'static str {
    "Hello, World!"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let variant = std::env::args().nth(1).unwrap_or_else(|| "bare".to_owned());
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(4100);
    let app = Router::new().route("/", get(hello));
    let mut guard = None;
    let app = match variant.as_str() {
        "bare" => app,
        "vigil" => {
            let g = examples::init_or_exit();
            let app = app.layer(g.http_layer());
            guard = Some(g);
            app
        }
        "axum-prometheus" => {
            let (layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
            app.route("/metrics", get(move || async move { handle.render() }))
                .layer(layer)
        }
        other => anyhow::bail!("unknown variant {other:?}: expected bare, vigil or axum-prometheus"),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{variant} listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(examples::shutdown_signal(None))
        .await?;
    drop(guard);
    Ok(())
}
