//! A value whose `Debug` logs while an ERROR event is recorded must not deadlock the layer.
//!
//! This file holds a single test because it installs the *global* subscriber: nested events
//! (logged from inside a subscriber callback) are dispatched only through the global default
//! (a scoped default drops them), which is what an application runs with.

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing_subscriber::prelude::*;
use vigil_core::{LogLayer, MemoryLogBackend, Resource};
use vigil_trace_datadog::DatadogTraceLayer;

/// A value that logs while it is formatted, as a lazily loaded or instrumented value may.
struct Chatty;

impl fmt::Debug for Chatty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        tracing::info!("formatting a chatty value");
        f.write_str("chatty")
    }
}

#[test]
fn an_error_event_whose_value_logs_while_recorded_does_not_deadlock() {
    let tracer = DatadogTraceLayer::builder(Resource::new("api", "test"))
        .agent("127.0.0.1", 9)
        .max_retries(0)
        .build()
        .unwrap();
    let logs = Arc::new(MemoryLogBackend::new());
    // The log layer reads the extensions of every span in scope on every event.
    let log_layer = LogLayer::new(Resource::new("api", "test")).with_backend(logs.clone());
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(tracer.clone()).with(log_layer))
        .unwrap();

    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let span = tracing::info_span!("work");
        let _entered = span.enter();
        tracing::error!(error = ?Chatty, "the work failed");
        done_tx.send(()).unwrap();
    });
    // A generous watchdog: a deadlock never ends, the event takes microseconds.
    assert!(
        done.recv_timeout(Duration::from_secs(30)).is_ok(),
        "recording the ERROR event deadlocked"
    );
    let messages: Vec<String> = logs.records().into_iter().map(|r| r.message).collect();
    assert!(messages.iter().any(|m| m == "the work failed"), "{messages:?}");
    assert!(
        messages.iter().any(|m| m == "formatting a chatty value"),
        "{messages:?}"
    );
    tracer.shutdown(Instant::now());
}
