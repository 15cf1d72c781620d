//! A full queue: every record is accounted for exactly (delivered or dropped and counted, in
//! the stats and in `vigil.log.dropped`), and the queued bytes never exceed their bound.
//!
//! One test function, because it installs the process-wide metrics recorder and compares
//! totals with it.

mod common;

use std::time::Duration;

use common::{Intake, builder, log_seq, resource, sequence_numbers, within};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use vigil_core::catalogue::VIGIL_LOG_DROPPED;
use vigil_log_datadog::catalogue::{
    VIGIL_DATADOG_LOGS_REQUESTS, VIGIL_DATADOG_LOGS_SENT, VIGIL_DATADOG_LOGS_TRUNCATED,
};
use vigil_log_datadog::{DatadogLogBackend, DropReason, MAX_ENTRY_BYTES};

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// The value of a counter in `snapshot` (the debugging recorder resets counters when
/// snapshotted, so take one snapshot and read everything from it).
fn counter(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(v) => *v,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

fn log_from_threads(
    datadog: &DatadogLogBackend,
    threads: u64,
    per_thread: u64,
    first: u64,
    size: impl Fn(u64) -> usize + Sync,
) {
    let resource = resource();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (resource, size) = (&resource, &size);
            s.spawn(move || {
                for i in 0..per_thread {
                    let seq = first + t * per_thread + i;
                    log_seq(datadog, resource, seq, &"m".repeat(size(seq)));
                }
            });
        }
    });
}

#[test]
fn overflow_is_counted_exactly_and_memory_stays_bounded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();

    // Small entries, a queue bounded at 100 entries and 64 KiB, the intake down.
    let mut intake = Intake::start();
    intake.go_down();
    let max_bytes = 64 * 1024;
    let datadog = builder(&intake)
        .queue_capacity(100)
        .max_queue_bytes(max_bytes)
        .flush_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    let size = |seq| if seq % 7 == 0 { 3000 } else { 40 };
    log_from_threads(&datadog, 4, 500, 0, size);
    // Wait until the sender is stuck retrying its one batch, then log more.
    let stats = datadog.stats();
    assert!(common::wait_until(Duration::from_secs(20), || stats.retries() >= 2));
    log_from_threads(&datadog, 4, 500, 2000, size);
    assert_eq!(stats.received(), 4000);
    assert!(stats.dropped(DropReason::QueueFull) > 0, "the queue overflowed");
    assert!(stats.peak_queued_bytes() <= max_bytes, "{}", stats.peak_queued_bytes());
    assert!(stats.peak_queued_bytes() > max_bytes / 2, "the byte bound was reached");

    intake.come_back();
    assert!(datadog.flush_until(within(30)));
    let delivered = sequence_numbers(&intake.entries());
    assert_eq!(delivered.len() as u64, stats.delivered());
    assert_eq!(stats.delivered() + stats.dropped_total(), 4000, "{stats:?}");
    assert_eq!(stats.dropped_total(), stats.dropped(DropReason::QueueFull));
    assert!(stats.retries() > 0);
    assert!(intake.violations().is_empty());

    let snapshot: Snapshot = snapshotter.snapshot().into_vec();
    let dropped = counter(
        &snapshot,
        VIGIL_LOG_DROPPED.name,
        &[("backend", "datadog"), ("reason", "queue_full")],
    );
    assert_eq!(dropped, stats.dropped(DropReason::QueueFull));
    assert_eq!(counter(&snapshot, VIGIL_DATADOG_LOGS_SENT.name, &[]), stats.delivered());
    assert_eq!(
        counter(&snapshot, VIGIL_DATADOG_LOGS_REQUESTS.name, &[("outcome", "retried")]),
        stats.retries()
    );
    // Nothing was cut, and the counter that says so exists (at 0) for dashboards to read.
    assert_eq!(stats.truncated(), 0);
    assert!(
        snapshot
            .iter()
            .any(|(key, _, _, _)| key.key().name() == VIGIL_DATADOG_LOGS_TRUNCATED.name),
        "{} is registered before any entry is cut",
        VIGIL_DATADOG_LOGS_TRUNCATED.name
    );
    drop(datadog);

    // Megabyte logs against a 4 MiB bound: never more than 4 MiB queued, however many come.
    let mut intake = Intake::start();
    intake.go_down();
    let max_bytes = 4 * 1024 * 1024;
    let datadog = builder(&intake)
        .max_queue_bytes(max_bytes)
        .flush_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    log_from_threads(&datadog, 2, 10, 0, |_| 1_200_000);
    let stats = datadog.stats();
    assert!(common::wait_until(Duration::from_secs(20), || stats.retries() >= 2));
    log_from_threads(&datadog, 2, 10, 20, |_| 1_200_000);
    assert!(stats.peak_queued_bytes() <= max_bytes, "{}", stats.peak_queued_bytes());
    assert!(stats.dropped(DropReason::QueueFull) > 0);
    intake.come_back();
    assert!(datadog.flush_until(within(30)));
    assert_eq!(stats.delivered() + stats.dropped_total(), 40);
    assert!(
        stats.truncated() >= stats.accepted(),
        "every accepted one was cut to 1 MB"
    );
    let entries = intake.entries();
    assert_eq!(entries.len() as u64, stats.delivered());
    assert!(entries.iter().all(|e| e["vigil.truncated"] == true));
    assert!(
        entries
            .iter()
            .all(|e| serde_json::to_vec(e).unwrap().len() <= MAX_ENTRY_BYTES)
    );
    assert!(intake.violations().is_empty());
}
