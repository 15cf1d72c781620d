//! The backend as the global recorder, as the umbrella installs it: the exporter's telemetry
//! reaches it, so send failures are counted and `flush` waits for real delivery.
//!
//! One test in its own binary: the global recorder is process-wide.

mod common;

use std::time::{Duration, Instant};

use common::{PATIENCE, TempSocketPath, UnixAgent, named, parse_line};
use vigil_metrics_dogstatsd::{DogStatsdBackend, FlushOutcome};

#[test]
fn telemetry_counts_send_failures_and_flush_waits_for_delivery() {
    // The Agent's socket does not exist yet: every send fails.
    let path = TempSocketPath::new();
    let backend = DogStatsdBackend::builder()
        .unix_socket(&path.0)
        .global_tag("service", "api")
        .prefix("app")
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    metrics::set_global_recorder(backend.clone()).expect("no global recorder yet");

    let deadline = Instant::now() + PATIENCE;
    // A cycle's counts are all in once `flush_cycles` counts it (it moves last).
    while backend.stats().packets_send_failed == 0 || backend.stats().flush_cycles == 0 {
        assert!(Instant::now() < deadline, "no send failure counted: {backend:?}");
        metrics::counter!("while.down").increment(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let down = backend.stats();
    assert_eq!(down.packets_sent, 0, "{down:?}");
    assert!(down.bytes_send_failed > 0, "{down:?}");
    assert!(down.flush_cycles > 0, "{down:?}");

    // The Agent comes up. Whatever is recorded before `flush` returns `Delivered` is already in
    // the socket's queue when it returns: no waiting on the socket here.
    let agent = UnixAgent::bind(&path.0);
    metrics::counter!("after.up", "k" => "v").increment(7);
    metrics::histogram!("after.up.duration").record(12.5);
    assert_eq!(backend.flush(PATIENCE), FlushOutcome::Delivered);
    let lines = agent.lines_queued();
    assert!(
        lines.iter().any(|l| l == "app.after.up:7|c|#k:v,service:api"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "app.after.up.duration:12.5|d|#service:api"),
        "{lines:#?}"
    );
    // The exporter's own telemetry goes to the Agent too, unprefixed, with the global tags.
    let dropped = named(&lines, "datadog.dogstatsd.client.packets_dropped_writer");
    assert!(!dropped.is_empty(), "{lines:#?}");
    for tag in ["client:rust", "client_transport:uds", "service:api"] {
        assert!(dropped[0].tags.iter().any(|t| t == tag), "{tag} missing in {dropped:?}");
    }
    for line in &lines {
        parse_line(line);
    }

    let up = backend.stats();
    assert!(up.packets_sent > 0, "{up:?}");
    assert!(up.bytes_sent > 0, "{up:?}");
    assert!(up.flush_cycles >= down.flush_cycles + 2, "{up:?}");

    // A flush with nothing new recorded still ends: it marks the next cycles itself.
    assert_eq!(backend.flush(PATIENCE), FlushOutcome::Delivered);
    assert_eq!(backend.flush(Duration::ZERO), FlushOutcome::TimedOut);
}
