//! `metrics_backends = ["dogstatsd"]` through `vigil::init`'s builder: the facade's and the
//! macros' metrics reach a real UDP socket as DogStatsD lines with the unified service tags,
//! histograms as distributions, and the guard's shutdown waits for the last aggregates.
//!
//! One test in its own binary: it installs the global recorder.

#![cfg(feature = "dogstatsd")]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use vigil::config::Config;
use vigil::{Metrics, Vigil};

#[test]
fn metrics_reach_the_agent_as_dogstatsd_lines_with_service_tags() {
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    agent.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let url = format!("udp://{}", agent.local_addr().unwrap());
    let mut config = Config::load_with(|var| match var {
        "VIGIL_SERVICE" => Some("dd-test".to_owned()),
        "VIGIL_ENV" => Some("ci".to_owned()),
        "VIGIL_VERSION" => Some("9.9.0".to_owned()),
        "METRICS_BACKENDS" => Some("dogstatsd".to_owned()),
        "DD_DOGSTATSD_URL" => Some(url.clone()),
        "VM_METRICS" => Some("false".to_owned()),
        _ => None,
    })
    .unwrap();
    config.logger_backends.clear();
    let guard = Vigil::builder().config(config).install().expect("install");

    Metrics::increment("comments.created", 2, &[("region", "eu")]);
    metrics::histogram!("http.request.duration", "route" => "/x").record(12.5);
    assert!(
        guard.shutdown(Duration::from_secs(20)),
        "the last aggregates were sent in time"
    );

    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < deadline {
        if let Ok(n) = agent.recv(&mut buf) {
            lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned));
        }
        let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        if has("comments.created:") && has("http.request.duration:") {
            break;
        }
    }
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {lines:#?}"))
            .clone()
    };
    let tags = |l: &str| -> Vec<String> {
        let (_, tags) = l.split_once("|#").unwrap_or_else(|| panic!("no tags in {l}"));
        let mut t: Vec<String> = tags.split(',').map(str::to_owned).collect();
        t.sort();
        t
    };
    let counter = line("comments.created:");
    assert!(counter.starts_with("comments.created:2|c|"), "{counter}");
    assert_eq!(
        tags(&counter),
        ["env:ci", "region:eu", "service:dd-test", "version:9.9.0"]
    );
    let histogram = line("http.request.duration:");
    assert!(histogram.starts_with("http.request.duration:12.5|d|"), "{histogram}");
    assert_eq!(
        tags(&histogram),
        ["env:ci", "route:/x", "service:dd-test", "version:9.9.0"]
    );
}
