//! The cost on the application's thread of one span with three fields (create, enter, exit,
//! close): with the Datadog layer (its sender pointed at a closed port, so nothing is
//! delivered and the agent costs nothing) and with a plain registry and no layer.
//!
//! `cargo bench -p vigil-trace-datadog --bench spans`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::prelude::*;
use vigil_core::Resource;
use vigil_trace_datadog::DatadogTraceLayer;

fn span_with_three_fields() {
    let span = tracing::info_span!(
        "load_video",
        video_id = black_box(42u64),
        user = black_box("u-123"),
        cached = black_box(true)
    );
    let entered = span.enter();
    black_box(&entered);
    drop(entered);
    drop(span);
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs `iters` spans in batches of 256, timing only the spans: between batches the sender
/// empties the queue (untimed), so the queue never overflows and what is measured is the
/// ordinary path, not the drop path of an overloaded tracer.
fn timed_batches(layer: &DatadogTraceLayer, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(256);
        let start = Instant::now();
        for _ in 0..n {
            span_with_three_fields();
        }
        timed += start.elapsed();
        done += n;
        layer.flush_until(Instant::now() + Duration::from_secs(5));
    }
    timed
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_3_fields");

    let plain = tracing_subscriber::registry();
    tracing::subscriber::with_default(plain, || {
        group.bench_function("registry_no_layer_root_span", |b| b.iter(span_with_three_fields));
        let root = tracing::info_span!("request").entered();
        group.bench_function("registry_no_layer_child_span", |b| b.iter(span_with_three_fields));
        drop(root);
    });

    let layer = DatadogTraceLayer::builder(Resource::new("bench", "bench"))
        .agent("127.0.0.1", closed_port())
        .max_retries(0)
        .connect_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer.clone().filtered());
    tracing::subscriber::with_default(subscriber, || {
        // Each span is a whole trace: its close hands a chunk to the queue.
        group.bench_function("datadog_layer_root_span", |b| {
            b.iter_custom(|iters| timed_batches(&layer, iters));
        });
        // Each span is a child inside an open request span: its close adds it to the trace's
        // buffer (sent as a partial chunk every 1000 spans).
        let root = tracing::info_span!("request").entered();
        group.bench_function("datadog_layer_child_span", |b| {
            b.iter_custom(|iters| timed_batches(&layer, iters));
        });
        drop(root);
    });
    group.finish();
    layer.shutdown(Instant::now() + Duration::from_secs(2));
    eprintln!("sender: {:?}", layer.stats());
}

criterion_group!(benches, bench);
criterion_main!(benches);
