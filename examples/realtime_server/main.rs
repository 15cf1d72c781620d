//! A small but real comments service, like the seed's domain: videos and comments over a
//! JSON HTTP API, a WebSocket channel per video broadcasting new comments, SQLite through sqlx,
//! and Vigil's telemetry on everything.
//!
//! ```text
//! cargo run -p examples --example realtime_server
//! curl -s localhost:4000/health
//! curl -s -XPOST localhost:4000/api/videos/1/comments -d '{"user_id": 1, "body": "First!"}'
//! curl -s localhost:4000/api/videos/1/comments
//! websocat ws://localhost:4000/ws/videos/1        # then post a comment: it arrives here
//! curl -s localhost:9568/metrics                   # Prometheus metrics
//! ```
//!
//! Environment: `PORT` (default 4000), `HOST` (default 127.0.0.1), `DATABASE_URL` (a SQLite
//! file path, or `sqlite::memory:`; default a file in the temp directory), `RUN_SECONDS` (stop
//! after that many seconds), `DEBUG_ROUTES` (`true` adds the two routes below), plus every Vigil
//! variable (`LOG_LEVEL`, `LOG_FORMAT`, `PROMETHEUS_PORT`, `DB_SLOW_QUERY_MS`, ...). Ctrl-C or
//! SIGTERM shuts down gracefully and flushes the logs.
//!
//! With `DEBUG_ROUTES=true` (off by default; `cargo xtask e2e` turns it on to give every
//! dashboard panel and alert rule data to show):
//! - `GET /debug/slow_query/{rows}` runs a deliberately slow query (a recursive CTE counting to
//!   `rows`, at most 50,000,000) and answers `{"rows": n, "elapsed_ms": ms}`;
//! - `GET /debug/fail` answers 500, the server error the error-rate alert watches for.
//!
//! Benchmark-only: `VIGIL_DISABLED=true` skips `vigil::init` and every Vigil layer and wrapper
//! (the HTTP layer, the WebSocket wrapper, the pool sampler), so the same API runs without any
//! telemetry: no `/metrics`, no logs. `cargo xtask soak` uses it for its "without Vigil"
//! latency baseline; never set it in production.

mod app;
mod db;
mod hub;

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use vigil::ws::WsMetrics;
use vigil::{Logger, fields};

fn env_or_exit<T: std::str::FromStr>(name: &str, default: T, expected: &str) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("error: {name}={v:?}: expected {expected}");
            std::process::exit(2)
        }),
        _ => default,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // VIGIL_DISABLED=true (benchmark-only, see the crate docs): no Vigil at all.
    let vigil_disabled = std::env::var("VIGIL_DISABLED").is_ok_and(|v| matches!(v.trim(), "1" | "true"));
    let guard = (!vigil_disabled).then(examples::init_or_exit);
    let port: u16 = env_or_exit("PORT", 4000, "a port number 1-65535");
    let host: String = env_or_exit("HOST", "127.0.0.1".to_owned(), "an address to bind");
    let limit = std::env::var("RUN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs);
    let database_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("vigil-realtime-server.db")
            .to_string_lossy()
            .into_owned()
    });

    let pool = db::open(&database_url).await?;
    // database.pool.{size,idle,in_use,max}{pool="main"}, sampled every 5 s until dropped.
    let _pool_metrics = match guard {
        Some(_) => Some(vigil::db::PoolMetrics::new(&pool, "main").spawn(Duration::from_secs(5))?),
        None => None,
    };
    let ws_metrics = match guard {
        Some(_) => Some(
            WsMetrics::builder("comments")
                .allow_events(["ping", "pong", "comment_created", "lagged"])
                .build()?,
        ),
        None => None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let state = app::AppState {
        pool: pool.clone(),
        hub: hub::Hub::default(),
        ws_metrics,
        shutdown: shutdown_rx,
        alive,
    };
    let debug_routes = std::env::var("DEBUG_ROUTES").is_ok_and(|v| matches!(v.trim(), "1" | "true"));
    let router = app::router(state, guard.as_ref().map(vigil::Guard::http_layer), debug_routes);

    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port} (HOST/PORT): {e}"))?;
    let addr = listener.local_addr()?;
    Logger::info(
        "Listening",
        fields!(
            url = format!("http://{addr}").as_str(),
            metrics = guard
                .as_ref()
                .and_then(vigil::Guard::metrics_addr)
                .map(|a| a.to_string())
                .unwrap_or_default()
                .as_str()
        ),
    );

    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            examples::shutdown_signal(limit).await;
            Logger::info("Shutting down", fields!());
            let _ = shutdown_tx.send(true);
        })
        .await?;
    // The router is gone; wait (bounded) for the WebSocket tasks to close their sockets.
    if tokio::time::timeout(Duration::from_secs(5), all_gone.recv())
        .await
        .is_err()
    {
        Logger::warning("WebSocket connections still open after 5 s; exiting anyway", fields!());
    }
    pool.close().await;
    Logger::info("Stopped", fields!());
    if let Some(guard) = guard {
        guard.shutdown(Duration::from_secs(5));
    }
    Ok(())
}
