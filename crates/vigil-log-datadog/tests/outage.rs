//! A 30-second intake outage — first refusing connections, then answering 503 — while the
//! application keeps logging: once the intake is back, every log is delivered exactly once.

mod common;

use std::time::{Duration, Instant};

use common::{Intake, Reply, builder, log_seq, resource, sequence_numbers, within};
use vigil_core::LogBackend;

#[test]
fn every_log_survives_a_30_second_outage_exactly_once() {
    let mut intake = Intake::start();
    let datadog = builder(&intake)
        .flush_interval(Duration::from_millis(200))
        .backoff(Duration::from_millis(50), Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let resource = resource();
    let mut seq = 0;
    let mut log_for = |datadog: &dyn LogBackend, duration: Duration| {
        let end = Instant::now() + duration;
        while Instant::now() < end {
            for _ in 0..20 {
                log_seq(datadog, &resource, seq, "still logging");
                seq += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    log_for(&datadog, Duration::from_secs(1));
    assert!(
        intake.wait_for_entries(1, Duration::from_secs(20)),
        "delivery works before the outage"
    );

    // 15 s refusing connections.
    intake.go_down();
    log_for(&datadog, Duration::from_secs(15));
    // 15 s answering 503.
    intake.respond_with(|_| Reply::Status(503));
    intake.come_back();
    log_for(&datadog, Duration::from_secs(15));
    assert!(intake.requests().iter().any(|r| r.status == Some(503)));
    // Back.
    intake.respond_with(|_| Reply::Status(202));
    log_for(&datadog, Duration::from_secs(1));

    assert!(datadog.flush_until(within(60)));
    let total = datadog.stats().received();
    assert!(total > 3000, "{total}");
    assert_eq!(sequence_numbers(&intake.entries()), (0..total).collect::<Vec<_>>());
    let stats = datadog.stats();
    assert_eq!(stats.delivered(), total);
    assert_eq!(stats.dropped_total(), 0, "{stats:?}");
    assert!(stats.retries() > 10, "{stats:?}");
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
}
