//! The seed's logging and metrics calls, with console logs and `/metrics` on port 9568.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! curl -s localhost:9568/metrics
//! LOG_FORMAT=json cargo run -p examples --example quickstart
//! ```
//!
//! Runs until Ctrl-C (or for `QUICKSTART_SECONDS` seconds when set), then flushes and exits.

use std::time::{Duration, Instant};

use vigil::{Logger, Metrics, fields};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let guard = examples::init_or_exit();
    let limit = std::env::var("QUICKSTART_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs);

    if let Some(addr) = guard.metrics_addr() {
        Logger::info(
            "Serving Prometheus metrics",
            fields!(url = format!("http://{addr}/metrics").as_str()),
        );
    }

    // The seed's examples.
    let user_id = 42;
    Logger::info("User logged in", fields!(user_id = user_id));
    Logger::error(
        "Failed to process payment",
        fields!(error = "card declined", user_id = user_id),
    );
    Metrics::increment("comments.created", 1, &[("region", "us-east")]);
    Metrics::gauge("users.online", 1.0, &[("region", "us-east")]);
    Metrics::histogram("request.duration", 42.0, &[("route", "/api/comments")]);

    // A little simulated traffic, once a second, until Ctrl-C.
    let work = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut online = 1.0;
        for n in 0_u64.. {
            tick.tick().await;
            let started = Instant::now();
            let span = tracing::info_span!("request", request_id = format!("req-{n}").as_str());
            let _entered = span.enter();
            online = f64::from(u8::try_from(n % 10).unwrap_or(0)) + 1.0;
            Metrics::gauge("users.online", online, &[("region", "us-east")]);
            Metrics::increment("comments.created", 1, &[("region", "us-east")]);
            Logger::info(
                "Comment created",
                fields!(user_id = user_id, comment_id = n, video_id = "v-1"),
            );
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            Metrics::histogram("request.duration", elapsed_ms, &[("route", "/api/comments")]);
        }
        online
    };
    tokio::select! {
        () = examples::shutdown_signal(limit) => {}
        _ = work => {}
    }

    Logger::info("Shutting down", fields!());
    guard.shutdown(Duration::from_secs(5));
    Ok(())
}
