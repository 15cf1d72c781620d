//! What the console benches log, and the subscribers they log through: Vigil's console backend
//! behind Vigil's log layer, and tracing-subscriber's fmt layer, each writing to a sink.

use std::hint::black_box;
use std::sync::Arc;

use tracing::{Dispatch, Span};
use tracing_subscriber::prelude::*;
use vigil_core::{LogLayer, Resource};
use vigil_log_console::{ConsoleBackend, Format};

/// One event with three fields, as an application logs it.
pub fn event() {
    tracing::info!(
        user_id = black_box(42u64),
        comment_id = black_box(7u64),
        video_id = black_box("v-123"),
        "Comment created"
    );
}

/// The span a request handler runs in: its fields are the enrichment every event inside gets.
pub fn request_span() -> Span {
    tracing::info_span!(
        "request",
        request_id = "01JD3N5Q8Z4X7C2V9B6M1K0H8G",
        method = "POST",
        route = "/api/comments"
    )
}

/// Vigil's console backend in `format` behind Vigil's log layer (which adds the resource:
/// service, environment, version, pid), writing to a sink off the caller's thread.
pub fn vigil(format: Format) -> (Dispatch, Arc<ConsoleBackend>) {
    let console = Arc::new(
        ConsoleBackend::builder()
            .format(format)
            .queue_capacity(1 << 16)
            .writer(std::io::sink())
            .build()
            .expect("console backend"),
    );
    let layer = LogLayer::new(Resource::new("bench", "production").with_version("1.4.2")).with_backend(console.clone());
    (Dispatch::new(tracing_subscriber::registry().with(layer)), console)
}

/// tracing-subscriber's JSON formatter (current span and span list on, its defaults), to a sink.
pub fn tracing_json() -> Dispatch {
    Dispatch::new(tracing_subscriber::fmt().json().with_writer(std::io::sink).finish())
}

/// tracing-subscriber's text formatter without colours, to a sink.
pub fn tracing_text() -> Dispatch {
    Dispatch::new(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(std::io::sink)
            .finish(),
    )
}

/// The scenarios: events outside any span, and inside the request span.
pub const SCENARIOS: [(&str, bool); 2] = [("no_span", false), ("in_span", true)];

/// Runs `f` with `dispatch` as the default subscriber, inside the request span when `in_span`.
pub fn with_scenario<R>(dispatch: &Dispatch, in_span: bool, f: impl FnOnce() -> R) -> R {
    tracing::dispatcher::with_default(dispatch, || {
        let span = in_span.then(request_span);
        let _entered = span.as_ref().map(Span::enter);
        f()
    })
}
