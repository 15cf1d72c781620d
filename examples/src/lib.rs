//! Runnable examples of Vigil: `cargo run -p examples --example quickstart` and friends.
//!
//! This library holds what the examples share.

use std::time::Duration;

/// Waits for Ctrl-C (or SIGTERM on Unix), or until `limit` passes when given.
pub async fn shutdown_signal(limit: Option<Duration>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let deadline = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
        () = deadline => {}
    }
}

/// Starts Vigil from the environment, or prints the one-line error and exits with status 2.
pub fn init_or_exit() -> vigil::Guard {
    match vigil::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    }
}
