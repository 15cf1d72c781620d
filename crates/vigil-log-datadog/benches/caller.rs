//! The caller's cost of one `tracing::info!` event with three fields through `LogLayer`:
//!
//! - `console_json`: the console backend alone, JSON to a sink (the baseline);
//! - `console_json_and_datadog_down`: the same plus the Datadog backend while its intake is
//!   down (the URL points at a closed local port), so its queue is full and every record is
//!   dropped and counted;
//! - `datadog_down`: the Datadog backend alone, intake down;
//! - `datadog_format`: what the Datadog backend does when its queue has room: format the
//!   entry (into a reused buffer here, as its recycled buffers do);
//! - `layer_only_noop_backend`: the layer's own cost (building the record), for reference.
//!
//! Run with `cargo bench -p vigil-log-datadog --bench caller`.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::prelude::*;
use vigil_core::{LogBackend, LogLayer, Record, Resource, Secret};
use vigil_log_console::{ConsoleBackend, Format};
use vigil_log_datadog::DatadogLogBackend;

fn event() {
    tracing::info!(
        user_id = black_box(42u64),
        comment_id = black_box(7u64),
        video_id = black_box("v-123"),
        "Comment created"
    );
}

/// A URL on a local port nobody listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/api/v2/logs")
}

fn console() -> Arc<ConsoleBackend> {
    Arc::new(
        ConsoleBackend::builder()
            .format(Format::Json)
            .queue_capacity(1 << 16)
            .writer(std::io::sink())
            .build()
            .unwrap(),
    )
}

fn datadog_down() -> Arc<DatadogLogBackend> {
    Arc::new(
        DatadogLogBackend::builder(Secret::new("0123456789abcdef0123456789abcdef"))
            .url(closed_port_url())
            .flush_timeout(Duration::from_millis(10))
            .build()
            .unwrap(),
    )
}

/// Formats every record with the Datadog backend's formatter into one reused buffer.
struct FormatOnly {
    datadog: Arc<DatadogLogBackend>,
    buffer: Mutex<Vec<u8>>,
}

impl LogBackend for FormatOnly {
    fn log(&self, record: &Record<'_>) {
        let mut buffer = self.buffer.lock().unwrap();
        buffer.clear();
        self.datadog.format_record(record, &mut buffer);
        black_box(&*buffer);
    }
    fn flush(&self) {}
}

fn run(c: &mut Criterion, name: &str, backends: Vec<Arc<dyn LogBackend>>) {
    let mut layer = LogLayer::new(Resource::new("bench", "bench"));
    for backend in backends {
        layer = layer.with_backend(backend);
    }
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        c.benchmark_group("datadog_caller_log_event")
            .bench_function(name, |b| b.iter(event));
    });
}

fn bench(c: &mut Criterion) {
    let console_only = console();
    run(c, "console_json", vec![console_only.clone()]);
    console_only.flush();

    let (console_both, datadog) = (console(), datadog_down());
    run(
        c,
        "console_json_and_datadog_down",
        vec![console_both.clone(), datadog.clone()],
    );
    console_both.flush();
    let stats = datadog.stats();
    eprintln!(
        "console_json_and_datadog_down: datadog received {}, queued {}, dropped {} (queue full), retries {}",
        stats.received(),
        stats.accepted(),
        stats.dropped_total(),
        stats.retries()
    );
    datadog.shutdown(Instant::now() + Duration::from_millis(10));

    let datadog = datadog_down();
    run(c, "datadog_down", vec![datadog.clone()]);
    datadog.shutdown(Instant::now() + Duration::from_millis(10));

    let format = Arc::new(FormatOnly {
        datadog: datadog_down(),
        buffer: Mutex::new(Vec::with_capacity(1024)),
    });
    run(c, "datadog_format", vec![format]);

    // The layer's own cost (building the record), for reference.
    run(c, "layer_only_noop_backend", vec![Arc::new(vigil_core::NoopLogBackend)]);
}

criterion_group!(benches, bench);
criterion_main!(benches);
