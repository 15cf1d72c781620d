//! One log event with three fields: Vigil's console backend next to tracing-subscriber's fmt
//! layer, both writing to a sink. Run with `cargo xtask bench`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::prelude::*;
use vigil_core::{LogBackend, LogLayer, Resource};
use vigil_log_console::{ConsoleBackend, Format};

fn event() {
    tracing::info!(
        user_id = black_box(42u64),
        comment_id = black_box(7u64),
        video_id = black_box("v-123"),
        "Comment created"
    );
}

fn vigil(c: &mut Criterion, group: &str, format: Format, bench: &str) {
    let console = Arc::new(
        ConsoleBackend::builder()
            .format(format)
            .queue_capacity(1 << 16)
            .writer(std::io::sink())
            .build()
            .unwrap(),
    );
    let subscriber = tracing_subscriber::registry()
        .with(LogLayer::new(Resource::new("bench", "bench")).with_backend(console.clone()));
    tracing::subscriber::with_default(subscriber, || {
        c.benchmark_group(group).bench_function(bench, |b| b.iter(event));
    });
    console.flush();
    let stats = console.stats();
    eprintln!(
        "{group}/{bench}: {} lines written, {} dropped",
        stats.written(),
        stats.dropped()
    );
}

fn bench(c: &mut Criterion) {
    vigil(c, "log_event_3_fields", Format::Json, "vigil_console_json");
    let json = tracing_subscriber::fmt().json().with_writer(std::io::sink).finish();
    tracing::subscriber::with_default(json, || {
        c.benchmark_group("log_event_3_fields")
            .bench_function("tracing_subscriber_json", |b| b.iter(event));
    });

    vigil(c, "log_event_3_fields_text", Format::Text, "vigil_console_text");
    let text = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(text, || {
        c.benchmark_group("log_event_3_fields_text")
            .bench_function("tracing_subscriber_text", |b| b.iter(event));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
