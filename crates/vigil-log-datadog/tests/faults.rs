//! Faults at the socket level between the logs backend and the intake, through a proxy that
//! misbehaves on command: the intake down at start, dying mid-batch, resetting connections,
//! hanging past the request timeout, and a shutdown while the queue is full. Each case
//! asserts the exact counts: delivered (each entry exactly once), retried and dropped.

mod common;
#[path = "common/faults.rs"]
mod faults;

use std::time::{Duration, Instant};

use common::{Intake, builder, log_seq, resource, sequence_numbers, within};
use faults::{Fault, FaultProxy};
use vigil_log_datadog::{DatadogLogBackend, DatadogLogBuilder, DropReason};

/// The backend, sending to the intake through `proxy`.
fn via(proxy: &FaultProxy, intake: &Intake) -> DatadogLogBuilder {
    builder(intake).url(format!("http://{}/api/v2/logs", proxy.addr()))
}

fn log_n(backend: &DatadogLogBackend, n: u64) {
    let resource = resource();
    for seq in 0..n {
        log_seq(backend, &resource, seq, "hello");
    }
}

/// Every entry delivered exactly once, none dropped, and the books balance.
fn assert_all_delivered_once(intake: &Intake, datadog: &DatadogLogBackend, n: u64) {
    assert_eq!(sequence_numbers(&intake.entries()), (0..n).collect::<Vec<_>>());
    let stats = datadog.stats();
    assert_eq!(stats.delivered(), n);
    assert_eq!(stats.dropped_total(), 0);
    assert_eq!(stats.received(), stats.delivered() + stats.dropped_total());
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
}

#[test]
fn an_intake_down_at_start_gets_everything_once_it_is_up() {
    let intake = Intake::start();
    let proxy = FaultProxy::start_down(intake.addr());
    let datadog = via(&proxy, &intake).build().unwrap();
    log_n(&datadog, 300);
    // Nothing can be sent yet: the flush gives up at its deadline, and keeps the entries.
    assert!(!datadog.flush_until(Instant::now() + Duration::from_millis(700)));
    let retried_while_down = datadog.stats().retries();
    assert!(retried_while_down >= 1, "the sender kept trying");
    assert_eq!(intake.entry_count(), 0);
    proxy.up();
    assert!(datadog.flush_until(within(30)));
    assert_all_delivered_once(&intake, &datadog, 300);
    // Every request that failed was retried, and the first one through was accepted.
    let stats = datadog.stats();
    assert_eq!(
        stats.requests(),
        stats.retries() + 1,
        "one successful request of 300 entries"
    );
    assert_eq!(intake.requests().len(), 1);
}

#[test]
fn an_intake_dying_mid_batch_loses_nothing_and_duplicates_nothing() {
    let intake = Intake::start();
    let proxy = FaultProxy::start(intake.addr());
    proxy.script([Fault::DieMidRequest, Fault::DieMidRequest]);
    let datadog = via(&proxy, &intake).build().unwrap();
    log_n(&datadog, 500);
    assert!(datadog.flush_until(within(30)));
    assert_all_delivered_once(&intake, &datadog, 500);
    assert_eq!(datadog.stats().retries(), 2, "one retry per connection that died");
    assert_eq!(
        &proxy.applied()[..3],
        [Fault::DieMidRequest, Fault::DieMidRequest, Fault::Pass]
    );
    assert_eq!(
        intake.requests().len(),
        1,
        "the dead connections never reached the intake"
    );
}

#[test]
fn reset_connections_are_retried() {
    let intake = Intake::start();
    let proxy = FaultProxy::start(intake.addr());
    proxy.script([Fault::Reset, Fault::Reset, Fault::Reset]);
    let datadog = via(&proxy, &intake).build().unwrap();
    log_n(&datadog, 200);
    assert!(datadog.flush_until(within(30)));
    assert_all_delivered_once(&intake, &datadog, 200);
    assert_eq!(datadog.stats().retries(), 3);
    assert_eq!(
        &proxy.applied()[..4],
        [Fault::Reset, Fault::Reset, Fault::Reset, Fault::Pass]
    );
}

#[test]
fn a_connection_that_hangs_past_the_request_timeout_is_retried() {
    let intake = Intake::start();
    let proxy = FaultProxy::start(intake.addr());
    proxy.script([Fault::Hang]);
    let datadog = via(&proxy, &intake)
        .request_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    log_n(&datadog, 100);
    let started = Instant::now();
    assert!(datadog.flush_until(within(30)));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "waited for the timeout"
    );
    assert_all_delivered_once(&intake, &datadog, 100);
    assert_eq!(datadog.stats().retries(), 1);
}

#[test]
fn faults_of_every_kind_in_a_row_still_deliver_each_entry_once() {
    let intake = Intake::start();
    let proxy = FaultProxy::start(intake.addr());
    // One batch meets each fault in turn, on a fresh connection each time.
    proxy.script([Fault::DieMidRequest, Fault::Reset, Fault::Hang]);
    let datadog = via(&proxy, &intake)
        .request_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    log_n(&datadog, 450);
    assert!(datadog.flush_until(within(30)));
    assert_all_delivered_once(&intake, &datadog, 450);
    assert_eq!(datadog.stats().retries(), 3);
    assert_eq!(
        &proxy.applied()[..4],
        [Fault::DieMidRequest, Fault::Reset, Fault::Hang, Fault::Pass]
    );
}

#[test]
fn shutdown_with_a_full_queue_and_the_intake_down_drops_exactly_what_it_could_not_send() {
    let intake = Intake::start();
    let proxy = FaultProxy::start_down(intake.addr());
    let datadog = via(&proxy, &intake).queue_capacity(64).build().unwrap();
    log_n(&datadog, 200);
    // The queue holds 64; the sender may already hold a batch it is trying to send, so a few
    // more may have got in. Every other record was dropped on the caller's thread, counted.
    let stats = datadog.stats();
    let accepted = stats.accepted();
    assert!((64..200).contains(&accepted), "{accepted}");
    assert_eq!(stats.dropped(DropReason::QueueFull), 200 - accepted);
    // The intake never comes back: the shutdown gives up at its deadline and says so.
    let started = Instant::now();
    assert!(!datadog.shutdown(Instant::now() + Duration::from_millis(800)));
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by the deadline");
    let stats = datadog.stats();
    assert_eq!(stats.delivered(), 0);
    assert_eq!(
        stats.dropped(DropReason::Shutdown),
        accepted,
        "everything accepted, counted"
    );
    assert_eq!(stats.received(), 200);
    assert_eq!(stats.received(), stats.delivered() + stats.dropped_total());
    assert_eq!(intake.entry_count(), 0);
}

#[test]
fn shutdown_with_a_full_queue_delivers_it_when_the_intake_comes_back_in_time() {
    let intake = Intake::start();
    let proxy = FaultProxy::start_down(intake.addr());
    let datadog = via(&proxy, &intake).queue_capacity(64).build().unwrap();
    log_n(&datadog, 100);
    let accepted = datadog.stats().accepted();
    assert!(accepted >= 64, "{accepted}");
    assert_eq!(datadog.stats().dropped(DropReason::QueueFull), 100 - accepted);
    let comes_back = std::thread::spawn({
        let started = Instant::now();
        move || {
            std::thread::sleep(Duration::from_millis(500).saturating_sub(started.elapsed()));
            proxy.up();
            proxy
        }
    });
    assert!(
        datadog.shutdown(within(30)),
        "everything queued was sent before the deadline"
    );
    let _proxy = comes_back.join().unwrap();
    let stats = datadog.stats();
    assert_eq!(stats.delivered(), accepted, "everything accepted was delivered");
    assert_eq!(stats.dropped(DropReason::Shutdown), 0);
    assert_eq!(stats.received(), stats.delivered() + stats.dropped_total());
    // The first records got in; each arrived once.
    let accepted = usize::try_from(accepted).unwrap();
    assert_eq!(sequence_numbers(&intake.entries()).len(), accepted);
}
