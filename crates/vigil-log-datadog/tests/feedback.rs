//! The backend inside the real pipeline, as `vigil::init` installs it: a global subscriber
//! whose `LogLayer` feeds the Datadog backend and a capturing backend, with the `log` bridge
//! on (so the HTTP and TLS libraries' own logs come through too).
//!
//! - The sender's reports come back into the pipeline on the sender thread; they reach the
//!   other backends but are not queued for Datadog again: no loop, no amplification.
//! - The API key appears in no record (reports, library debug logs), no `Debug` output, no
//!   error message.
//!
//! One test function: the global subscriber is per process.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Intake, Reply, sequence_numbers, within};
use tracing_subscriber::prelude::*;
use vigil_core::{LogLayer, MemoryLogBackend, Secret};
use vigil_log_datadog::{DatadogLogBackend, DropReason, REPORT_TARGET};

const KEY: &str = "feedface0123456789abcdef01234567";

#[test]
fn reports_do_not_loop_and_the_api_key_never_leaks() {
    let mut intake = Intake::start();
    intake.respond_with(|_| Reply::Status(400));
    let build = |key: &str| {
        Arc::new(
            DatadogLogBackend::builder(Secret::new(key))
                .url(intake.url())
                .flush_interval(Duration::from_millis(50))
                .backoff(Duration::from_millis(20), Duration::from_millis(100))
                .request_timeout(Duration::from_millis(500))
                .build()
                .unwrap(),
        )
    };
    // One backend with the key the intake expects, one with another key.
    let datadog = build(common::API_KEY);
    let refused = build(KEY);
    let memory = Arc::new(MemoryLogBackend::new());
    let layer = LogLayer::new(common::resource())
        .with_backend(memory.clone())
        .with_backend(datadog.clone())
        .with_backend(refused.clone());
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
    tracing_log::LogTracer::init().unwrap();

    // 400 for one, 403 for the other: each reported once, on its sender thread, where the
    // report re-enters the pipeline. Let many flush intervals pass: no report comes back as a
    // request.
    for seq in 0..3u64 {
        tracing::info!(seq, "refused");
    }
    assert!(datadog.flush_until(within(20)) && refused.flush_until(within(20)));
    assert_eq!(datadog.stats().dropped(DropReason::Rejected), 3);
    assert_eq!(refused.stats().dropped(DropReason::Unauthorized), 3);
    let requests = intake.requests().len();
    assert_eq!(requests, 2);
    std::thread::sleep(Duration::from_millis(500));
    assert!(datadog.flush_until(within(20)) && refused.flush_until(within(20)));
    assert_eq!(intake.requests().len(), requests, "the senders' own reports were sent");
    assert!(datadog.stats().own_records_skipped() + refused.stats().own_records_skipped() >= 2);
    assert_eq!(datadog.stats().received(), 3);

    // A hanging, then refusing, then working intake: delivered exactly once.
    intake.respond_with(|_| Reply::Status(202));
    intake.script([Reply::Hang, Reply::Hang, Reply::Hang]);
    for seq in 3..6u64 {
        tracing::info!(seq, "eventually delivered");
    }
    assert!(common::wait_until(Duration::from_secs(20), || datadog
        .stats()
        .retries()
        >= 1));
    intake.go_down();
    std::thread::sleep(Duration::from_millis(300));
    intake.come_back();
    assert!(datadog.flush_until(within(30)) && refused.flush_until(within(20)));
    assert_eq!(sequence_numbers(&intake.entries()), [3, 4, 5]);
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());

    let records = memory.records();
    let reports: Vec<_> = records.iter().filter(|r| r.target == REPORT_TARGET).collect();
    let count = |needle: &str| reports.iter().filter(|r| r.message.contains(needle)).count();
    assert_eq!(count("DATADOG_API_KEY"), 1, "{reports:#?}");
    assert_eq!(count("HTTP 400"), 1, "{reports:#?}");
    assert_eq!(count("unreachable"), 1, "{reports:#?}");
    assert!(
        records.iter().any(|r| r.target.starts_with("ureq")),
        "the HTTP client's own logs are captured too"
    );

    // Every key holder's output: records (reports and library logs), Debug, stats, errors.
    let mut texts: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
    for backend in [&datadog, &refused] {
        texts.push(format!("{backend:?}"));
        texts.push(format!("{:?}", backend.stats()));
    }
    texts.push(format!(
        "{:?}",
        DatadogLogBackend::builder(Secret::new(KEY)).tags(["a:b"])
    ));
    for bad in [
        DatadogLogBackend::builder(Secret::new(KEY)).url("ftp://x"),
        DatadogLogBackend::builder(Secret::new(KEY)).site("not a site"),
        DatadogLogBackend::builder(Secret::new(KEY)).tags(["a,b"]),
        DatadogLogBackend::builder(Secret::new(format!("{KEY} with a space"))),
    ] {
        let error = bad.build().unwrap_err();
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }
    for text in &texts {
        assert!(!text.contains(KEY), "the API key leaked: {text}");
        assert!(!text.contains(common::API_KEY), "the API key leaked: {text}");
    }
}
