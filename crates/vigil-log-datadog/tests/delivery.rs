//! Delivery to an intake that enforces Datadog's documented protocol: the entry format,
//! batching limits, retries, splitting, refusals, timeouts, truncation and shutdown.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Intake, Reply, builder, captured, log_seq, reports_for, resource, sequence_numbers, within};
use serde_json::Value;
use tracing_subscriber::prelude::*;
use vigil_core::trace::TraceIds;
use vigil_core::{Field, Level, LogBackend, LogLayer, Record, Secret};
use vigil_log_datadog::{DatadogLogBackend, DropReason, MAX_ENTRY_BYTES};

fn log_n(backend: &DatadogLogBackend, n: u64) {
    let resource = resource();
    for seq in 0..n {
        log_seq(backend, &resource, seq, "hello");
    }
}

fn millis(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[test]
fn records_from_the_tracing_pipeline_carry_the_datadog_attributes() {
    let intake = Intake::start();
    let datadog = Arc::new(
        builder(&intake)
            .tags(["team:core"])
            .source("checkout-svc")
            .build()
            .unwrap(),
    );
    let resource = resource();
    let hostname = resource.hostname.clone();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(resource).with_backend(datadog.clone()));
    let before = millis(SystemTime::now());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", request_id = "r-1");
        let _entered = span.enter();
        tracing::warn!(
            user_id = 42u64,
            status = "shadowed",
            ratio = 0.25,
            "quota \"almost\" used\nsecond line\u{2028}\u{1b}[31m é"
        );
        tracing::error!("boom");
        tracing::debug!("details");
        tracing::trace!("more details");
        tracing::info!("plain");
    });
    assert!(datadog.flush_until(within(20)));
    let after = millis(SystemTime::now());

    let entries = intake.entries();
    assert_eq!(entries.len(), 5, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["message"], "quota \"almost\" used\nsecond line\u{2028}\u{1b}[31m é");
    assert_eq!(e["status"], "warning");
    assert_eq!(e["service"], "checkout");
    assert_eq!(e["hostname"], hostname.as_str());
    assert_eq!(e["ddsource"], "checkout-svc");
    assert_eq!(e["ddtags"], "env:test,version:1.2.3,team:core");
    assert_eq!(e["logger.name"], module_path!());
    let ts = e["timestamp"].as_u64().unwrap();
    assert!(ts >= before && ts <= after, "{before} <= {ts} <= {after}");
    assert_eq!(e["user_id"], 42);
    assert_eq!(e["ratio"], 0.25);
    assert_eq!(e["fields.status"], "shadowed", "a field cannot overwrite status");
    assert_eq!(e["request_id"], "r-1", "span fields are attributes");
    assert!(e.get("dd.trace_id").is_none());
    let statuses: Vec<&str> = entries.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["warning", "error", "debug", "debug", "info"]);
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    assert_eq!(datadog.stats().delivered(), 5);
}

#[test]
fn trace_ids_are_sent_for_log_trace_correlation() {
    let intake = Intake::start();
    let datadog = builder(&intake).build().unwrap();
    let resource = resource();
    let ids = TraceIds {
        trace_id: (0xabcd_u128 << 64) | 0x1234_5678_9abc_def0,
        span_id: 0xfedc_ba98_7654_3210,
    };
    let fields = [Field::new("seq", 1u64)];
    datadog.log(&Record {
        timestamp: SystemTime::now(),
        level: Level::Info,
        target: "tests::trace",
        message: "correlated",
        fields: &fields,
        spans: &[],
        trace: Some(ids),
        resource: &resource,
    });
    log_seq(&datadog, &resource, 2, "not correlated");
    assert!(datadog.flush_until(within(20)));
    let entries = intake.entries();
    assert_eq!(entries[0]["dd.trace_id"], 0x1234_5678_9abc_def0_u64.to_string());
    assert_eq!(entries[0]["dd.span_id"], 0xfedc_ba98_7654_3210_u64.to_string());
    assert!(entries[1].get("dd.trace_id").is_none() && entries[1].get("dd.span_id").is_none());
}

#[test]
fn throttling_and_server_errors_are_retried_honouring_retry_after() {
    let intake = Intake::start();
    intake.script([
        Reply::RetryAfter(429, 1),
        Reply::Status(500),
        Reply::Status(503),
        Reply::Status(408),
        Reply::Status(502),
    ]);
    let datadog = builder(&intake).build().unwrap();
    log_n(&datadog, 20);
    assert!(datadog.flush_until(within(30)));
    assert_eq!(sequence_numbers(&intake.entries()), (0..20).collect::<Vec<_>>());
    let requests = intake.requests();
    let statuses: Vec<_> = requests.iter().map(|r| r.status.unwrap()).collect();
    assert_eq!(statuses, [429, 500, 503, 408, 502, 202]);
    assert!(
        requests[1].at - requests[0].at >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured: {:?}",
        requests[1].at - requests[0].at
    );
    let stats = datadog.stats();
    assert_eq!((stats.retries(), stats.requests(), stats.delivered()), (5, 6, 20));
    assert_eq!(stats.dropped_total(), 0);
    assert!(intake.violations().is_empty());
}

#[test]
fn too_large_batches_are_split_until_accepted() {
    let intake = Intake::start();
    intake.respond_with(|entries| Reply::Status(if entries.len() > 100 { 413 } else { 202 }));
    let datadog = builder(&intake).build().unwrap();
    log_n(&datadog, 1000);
    assert!(datadog.flush_until(within(30)));
    assert_eq!(sequence_numbers(&intake.entries()), (0..1000).collect::<Vec<_>>());
    // With one batch of 1000: 2 x 500, 4 x 250, 8 x 125, 16 x 62 or 63: 15 splits.
    let requests = intake.requests();
    let refused = requests.iter().filter(|r| r.status == Some(413)).count() as u64;
    assert!(requests.iter().all(|r| (r.status == Some(413)) == (r.entries > 100)));
    let stats = datadog.stats();
    assert!(refused >= 15);
    assert_eq!(
        (stats.splits(), stats.requests(), stats.dropped_total()),
        (refused, requests.len() as u64, 0)
    );
    assert!(intake.violations().is_empty());
}

#[test]
fn a_single_entry_still_too_large_is_dropped_and_counted() {
    captured();
    let intake = Intake::start();
    let poison = |e: &Value| e["message"] == "poison";
    intake.respond_with(move |entries| Reply::Status(if entries.iter().any(poison) { 413 } else { 202 }));
    let datadog = builder(&intake).build().unwrap();
    let resource = resource();
    for seq in 0..9 {
        log_seq(&datadog, &resource, seq, if seq == 4 { "poison" } else { "fine" });
    }
    assert!(datadog.flush_until(within(30)));
    assert_eq!(sequence_numbers(&intake.entries()), [0, 1, 2, 3, 5, 6, 7, 8]);
    assert_eq!(datadog.stats().dropped(DropReason::Rejected), 1);
    assert_eq!(datadog.stats().delivered(), 8);
    let reports = reports_for(&intake.url());
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].message.contains("413"), "{}", reports[0].message);
}

#[test]
fn a_bad_request_drops_the_batch_and_is_reported_once() {
    captured();
    let intake = Intake::start();
    intake.script([Reply::Status(400), Reply::Status(400)]);
    let datadog = builder(&intake).build().unwrap();
    let resource = resource();
    log_n(&datadog, 5);
    assert!(datadog.flush_until(within(20)));
    for seq in 5..8 {
        log_seq(&datadog, &resource, seq, "again");
    }
    assert!(datadog.flush_until(within(20)));
    assert_eq!(datadog.stats().dropped(DropReason::Rejected), 8);
    for seq in 8..10 {
        log_seq(&datadog, &resource, seq, "accepted");
    }
    assert!(datadog.flush_until(within(20)));
    assert_eq!(sequence_numbers(&intake.entries()), [8, 9]);
    let stats = datadog.stats();
    assert_eq!(stats.received(), stats.delivered() + stats.dropped_total());
    assert_eq!(stats.retries(), 0, "400 is not retried");
    let reports = reports_for(&intake.url());
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].level, Level::Warning);
    assert!(reports[0].message.contains("HTTP 400"), "{}", reports[0].message);
}

#[test]
fn a_refused_api_key_is_reported_once_as_a_configuration_error() {
    captured();
    let intake = Intake::start();
    let wrong_key = "wrong0key0000000000000000000000f";
    let datadog = DatadogLogBackend::builder(Secret::new(wrong_key))
        .url(intake.url())
        .flush_interval(Duration::from_hours(1))
        .build()
        .unwrap();
    log_n(&datadog, 3);
    assert!(datadog.flush_until(within(20)));
    log_n(&datadog, 3);
    assert!(datadog.flush_until(within(20)));
    assert_eq!(datadog.stats().dropped(DropReason::Unauthorized), 6);
    assert_eq!(intake.entry_count(), 0);
    assert!(intake.requests().iter().all(|r| r.status == Some(403)));
    let reports = reports_for(&intake.url());
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report.level, Level::Error);
    assert!(report.message.contains("DATADOG_API_KEY"), "{}", report.message);
    assert!(report.message.contains("403"), "{}", report.message);
    let text = format!("{report:?}");
    assert!(!text.contains(wrong_key) && !text.contains(common::API_KEY), "{text}");

    // 401 (no key accepted at all) is the same configuration error.
    let intake = Intake::start();
    intake.script([Reply::Status(401)]);
    let datadog = builder(&intake).build().unwrap();
    log_n(&datadog, 2);
    assert!(datadog.flush_until(within(20)));
    assert_eq!(datadog.stats().dropped(DropReason::Unauthorized), 2);
}

#[test]
fn a_hanging_intake_is_retried_after_the_request_timeout() {
    let intake = Intake::start();
    intake.script([Reply::Hang]);
    let datadog = builder(&intake)
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    log_n(&datadog, 50);
    assert!(datadog.flush_until(within(30)));
    assert_eq!(sequence_numbers(&intake.entries()), (0..50).collect::<Vec<_>>());
    let requests = intake.requests();
    assert_eq!(requests[0].status, None, "the first request hung");
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(300));
    assert!(requests[1..].iter().all(|r| r.status == Some(202)));
    assert_eq!(datadog.stats().retries(), 1);
}

#[test]
fn an_oversized_message_is_truncated_and_marked() {
    let intake = Intake::start();
    let datadog = builder(&intake).build().unwrap();
    let resource = resource();
    // 1.5 MB of two-byte characters with escapes sprinkled in.
    let message: String = "ü\"\n".repeat(375_000);
    assert_eq!(message.len(), 1_500_000);
    log_seq(&datadog, &resource, 0, &message);
    log_seq(&datadog, &resource, 1, "small");
    assert!(datadog.flush_until(within(30)));
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    let entries = intake.entries();
    assert_eq!(entries.len(), 2);
    let big = &entries[0];
    assert_eq!(big["vigil.truncated"], true);
    assert!(big["vigil.original_size"].as_u64().unwrap() > 1_500_000);
    let sent = big["message"].as_str().unwrap();
    assert!(message.starts_with(sent), "cut on a character boundary");
    assert!(sent.len() > 600_000, "most of the room is used: {}", sent.len());
    assert!(serde_json::to_vec(big).unwrap().len() <= MAX_ENTRY_BYTES);
    assert_eq!(big["seq"], 0, "the fields survive");
    assert!(entries[1].get("vigil.truncated").is_none());
    assert_eq!(datadog.stats().truncated(), 1);
}

#[test]
fn many_small_logs_go_out_in_requests_of_at_most_1000() {
    let intake = Intake::start();
    let datadog = builder(&intake).build().unwrap();
    log_n(&datadog, 2500);
    assert!(datadog.flush_until(within(30)));
    assert_eq!(sequence_numbers(&intake.entries()), (0..2500).collect::<Vec<_>>());
    let requests = intake.requests();
    assert!(requests.len() >= 3, "{}", requests.len());
    assert!(requests.iter().all(|r| r.entries <= 1000));
    assert!(intake.violations().is_empty());
}

#[test]
fn large_logs_go_out_in_requests_of_at_most_5_mb() {
    let intake = Intake::start();
    let datadog = builder(&intake).build().unwrap();
    let resource = resource();
    let message = "x".repeat(900_000);
    for seq in 0..12 {
        log_seq(&datadog, &resource, seq, &message);
    }
    assert!(datadog.flush_until(within(30)));
    assert_eq!(sequence_numbers(&intake.entries()), (0..12).collect::<Vec<_>>());
    let requests = intake.requests();
    assert!(requests.len() >= 3, "{}", requests.len());
    assert!(requests.iter().all(|r| r.uncompressed <= 5_000_000));
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    assert_eq!(datadog.stats().truncated(), 0);
}

#[test]
fn the_interval_flush_sends_without_an_explicit_flush() {
    let intake = Intake::start();
    let datadog = builder(&intake)
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    log_n(&datadog, 3);
    assert!(intake.wait_for_entries(3, Duration::from_secs(20)));
    drop(datadog);
}

#[test]
fn a_full_batch_of_entries_is_sent_at_once_without_waiting_for_the_interval() {
    let intake = Intake::start();
    let datadog = builder(&intake)
        .flush_interval(Duration::from_hours(1))
        .build()
        .unwrap();
    // 1000 entries fill a request: the sender wakes up for them, with no flush and no interval.
    log_n(&datadog, 1000);
    assert!(intake.wait_for_entries(1000, Duration::from_secs(20)));
    assert_eq!(sequence_numbers(&intake.entries()), (0..1000).collect::<Vec<_>>());
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
}

#[test]
fn a_full_batch_of_bytes_is_sent_at_once_without_waiting_for_the_interval() {
    let intake = Intake::start();
    let datadog = builder(&intake)
        .flush_interval(Duration::from_hours(1))
        .build()
        .unwrap();
    // Six entries of 900 kB are over the 5 MB of one request: the sender wakes up for them.
    let resource = resource();
    let message = "x".repeat(900_000);
    for seq in 0..6 {
        log_seq(&datadog, &resource, seq, &message);
    }
    assert!(intake.wait_for_entries(6, Duration::from_secs(20)));
    assert_eq!(sequence_numbers(&intake.entries()), (0..6).collect::<Vec<_>>());
    assert!(intake.requests().iter().all(|r| r.uncompressed <= 5_000_000));
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
}

#[test]
fn shutdown_delivers_everything_queued() {
    let intake = Intake::start();
    let datadog = builder(&intake).build().unwrap();
    // Below the wake-up threshold (1000 entries), so all of them are still queued.
    log_n(&datadog, 900);
    assert_eq!(intake.entry_count(), 0, "the interval flush is far away");
    let started = Instant::now();
    assert!(datadog.shutdown(within(30)));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(sequence_numbers(&intake.entries()), (0..900).collect::<Vec<_>>());
    let resource = resource();
    log_seq(&datadog, &resource, 900, "too late");
    assert_eq!(datadog.stats().dropped(DropReason::Shutdown), 1);
    assert!(
        datadog.shutdown(within(1)),
        "a second shutdown reports the first one's result"
    );
    assert!(datadog.flush_until(within(1)), "nothing left to flush");
}

#[test]
fn shutdown_gives_up_at_its_deadline_and_counts_what_it_dropped() {
    let mut intake = Intake::start();
    intake.go_down();
    let datadog = builder(&intake).build().unwrap();
    log_n(&datadog, 10);
    assert!(!datadog.shutdown(Instant::now() + Duration::from_millis(500)));
    let stats = datadog.stats();
    assert_eq!(stats.dropped(DropReason::Shutdown), 10);
    assert_eq!(stats.received(), stats.delivered() + stats.dropped_total());
}

#[test]
fn a_flush_waiting_while_shutdown_gives_up_neither_deadlocks_nor_blocks_it() {
    let intake = Intake::start();
    intake.script([Reply::Hang]);
    let datadog = Arc::new(
        builder(&intake)
            .request_timeout(Duration::from_mins(1))
            .build()
            .unwrap(),
    );
    log_n(&datadog, 1);
    // The sender takes the entry and hangs in its request, so later flush markers stay queued.
    assert!(!datadog.flush_until(Instant::now() + Duration::from_millis(1)));
    assert!(intake.wait_for_requests(1, Duration::from_secs(30)));
    let (flush_result_tx, flush_result) = std::sync::mpsc::channel();
    let flusher = datadog.clone();
    std::thread::spawn(move || flush_result_tx.send(flusher.flush_until(within(60))));
    // Let the flush queue its marker and wait for it (it looks at the sender every 50 ms).
    std::thread::sleep(Duration::from_millis(200));
    // The shutdown gives up on the stuck sender and discards the queue, flush marker included.
    let (shutdown_result_tx, shutdown_result) = std::sync::mpsc::channel();
    let closer = datadog.clone();
    std::thread::spawn(move || shutdown_result_tx.send(closer.shutdown(Instant::now() + Duration::from_millis(500))));
    // Generous watchdogs: a deadlock never ends, a working shutdown takes about 0.7 s.
    let outcome = shutdown_result.recv_timeout(Duration::from_secs(30));
    assert_eq!(outcome, Ok(false), "the shutdown deadlocked with the waiting flush");
    assert!(
        flush_result.recv_timeout(Duration::from_secs(30)).is_ok(),
        "the flush never returned"
    );
    let stats = datadog.stats();
    assert_eq!(stats.received(), 1);
}

#[test]
fn plain_entries_stay_small_and_valid() {
    let intake = Intake::start();
    let datadog = builder(&intake).build().unwrap();
    let resource = resource();
    let mut out = Vec::new();
    let fields = [Field::new("seq", 1u64)];
    let record = Record {
        timestamp: SystemTime::now(),
        level: Level::Info,
        target: "t",
        message: "m",
        fields: &fields,
        spans: &[],
        trace: None,
        resource: &resource,
    };
    assert!(!datadog.format_record(&record, &mut out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["seq"], 1);
}
