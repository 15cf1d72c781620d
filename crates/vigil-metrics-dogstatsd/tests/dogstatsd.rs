//! The DogStatsD backend end to end, through the `metrics` macros with the backend as a local
//! recorder: exact lines over UDP and Unix sockets, aggregation, sanitisation, bad values,
//! unreachable agents, and configuration errors.

#![allow(clippy::float_cmp, clippy::cast_precision_loss)]

mod common;

use std::time::Duration;

use common::{TempSocketPath, UdpAgent, UnixAgent, UnixStreamAgent, named, parse_line, sum};
use metrics::with_local_recorder;
use vigil_metrics_dogstatsd::{DogStatsdBackend, DogStatsdError, FlushOutcome};

const FAST: Duration = Duration::from_millis(20);

fn udp_backend(agent: &UdpAgent) -> DogStatsdBackend {
    DogStatsdBackend::builder()
        .udp("127.0.0.1", agent.port())
        .global_tag("service", "api")
        .global_tag("env", "test")
        .flush_interval(FAST)
        .build()
        .unwrap()
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

#[test]
fn counter_gauge_and_distribution_lines_are_exact_and_carry_the_global_tags() {
    let agent = UdpAgent::bind();
    let backend = udp_backend(&agent);
    with_local_recorder(&backend, || {
        metrics::counter!("http.request.count", "route" => "/api/videos/{id}", "method" => "GET", "status" => "200")
            .increment(1);
        metrics::gauge!("websocket.connections", "channel" => "comments").set(5.0);
        metrics::histogram!("http.request.duration", "route" => "/api/videos/{id}").record(12.5);
        metrics::gauge!("users.online").set(3.0);
    });
    let expected = [
        "http.request.count:1|c|#route:/api/videos/{id},method:GET,status:200,service:api,env:test",
        "websocket.connections:5.0|g|#channel:comments,service:api,env:test",
        "http.request.duration:12.5|d|#route:/api/videos/{id},service:api,env:test",
        "users.online:3.0|g|#service:api,env:test",
    ];
    let lines = agent.lines_until(|lines| expected.iter().all(|e| has(lines, e)));
    for line in &lines {
        let parsed = parse_line(line);
        assert!(
            parsed
                .tags
                .ends_with(&["service:api".to_owned(), "env:test".to_owned()]),
            "global tags missing in {line:?}"
        );
    }
}

#[test]
fn histograms_can_be_sent_as_agent_side_histograms() {
    let agent = UdpAgent::bind();
    let backend = DogStatsdBackend::builder()
        .udp("127.0.0.1", agent.port())
        .histograms_as_distributions(false)
        .flush_interval(FAST)
        .build()
        .unwrap();
    with_local_recorder(&backend, || metrics::histogram!("queue.wait").record(7.0));
    agent.lines_until(|lines| has(lines, "queue.wait:7.0|h"));
}

#[test]
fn aggregation_sums_counters_keeps_the_last_gauge_and_batches_histogram_values() {
    let agent = UdpAgent::bind();
    let backend = DogStatsdBackend::builder()
        .udp("127.0.0.1", agent.port())
        .flush_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    with_local_recorder(&backend, || {
        let counter = metrics::counter!("jobs.done", "queue" => "mail");
        for _ in 0..1000 {
            counter.increment(1);
        }
        for i in 1..=100 {
            metrics::gauge!("queue.depth").set(f64::from(i));
        }
        for v in [1.0, 2.0, 3.0] {
            metrics::histogram!("job.duration").record(v);
        }
    });
    let lines = agent.lines_until(|lines| {
        sum(lines, "jobs.done") == 1000.0
            && has(lines, "queue.depth:100.0|g")
            && named(lines, "job.duration")
                .iter()
                .map(|l| l.values.len())
                .sum::<usize>()
                == 3
    });
    // 1000 increments arrive as a few summed lines, not one line each.
    let counter_lines = named(&lines, "jobs.done");
    assert!(counter_lines.len() < 1000, "{counter_lines:?}");
    assert!(counter_lines.iter().all(|l| l.kind == "c" && l.tags == ["queue:mail"]));
    // A gauge sends its value, never a sum of the values set.
    assert!(
        named(&lines, "queue.depth")
            .iter()
            .all(|l| l.values.len() == 1 && l.values[0] <= 100.0)
    );
    // Histogram values travel together in multi-value lines, each value once.
    let mut values: Vec<f64> = named(&lines, "job.duration")
        .iter()
        .flat_map(|l| l.values.clone())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [1.0, 2.0, 3.0]);
    if named(&lines, "job.duration").len() == 1 {
        assert!(has(&lines, "job.duration:1.0:2.0:3.0|d"), "{lines:#?}");
    }
}

#[test]
fn reserved_characters_in_names_and_tags_cannot_forge_a_line() {
    let agent = UdpAgent::bind();
    let backend = udp_backend(&agent);
    let evil_value = "x\nforged.metric:999|c|#a,b";
    with_local_recorder(&backend, || {
        metrics::counter!("evil|name:1|c\nforged.name", "k:e|y#" => evil_value).increment(1);
        metrics::gauge!("ok.gauge", "route" => "/a,b#c\r\nforged.gauge:1|g").set(1.0);
        metrics::histogram!("ok.hist", "" => "\u{0}").record(2.0);
        metrics::counter!("after.evil").increment(1);
    });
    let expected = [
        "evil_name_1_c_forged.name:1|c|#k_e_y_:x_forged.metric:999_c__a_b,service:api,env:test",
        "ok.gauge:1.0|g|#route:/a_b_c__forged.gauge:1_g,service:api,env:test",
        "ok.hist:2.0|d|#_:_,service:api,env:test",
        "after.evil:1|c|#service:api,env:test",
    ];
    let lines = agent.lines_until(|lines| expected.iter().all(|e| has(lines, e)));
    for line in &lines {
        let parsed = parse_line(line);
        assert!(!parsed.name.starts_with("forged"), "forged line {line:?}");
        assert_eq!(parsed.tags.last().map(String::as_str), Some("env:test"), "{line:?}");
    }
    assert_eq!(backend.stats().sanitized_keys, 3);
}

#[test]
fn nan_and_infinite_values_are_dropped_and_counted() {
    let agent = UdpAgent::bind();
    let backend = udp_backend(&agent);
    with_local_recorder(&backend, || {
        let gauge = metrics::gauge!("temperature");
        gauge.set(f64::NAN);
        gauge.increment(f64::INFINITY);
        gauge.decrement(f64::NEG_INFINITY);
        gauge.set(3.0);
        gauge.increment(1.0);
        let histogram = metrics::histogram!("latency");
        histogram.record(f64::NAN);
        histogram.record(4.0);
    });
    let lines = agent.lines_until(|lines| {
        has(lines, "temperature:4.0|g|#service:api,env:test") && has(lines, "latency:4.0|d|#service:api,env:test")
    });
    assert_eq!(named(&lines, "latency").len(), 1);
    assert_eq!(backend.stats().non_finite_dropped, 4);
}

#[test]
fn the_prefix_applies_to_every_metric_name() {
    let agent = UdpAgent::bind();
    let backend = DogStatsdBackend::builder()
        .udp("127.0.0.1", agent.port())
        .prefix("myapp.")
        .flush_interval(FAST)
        .build()
        .unwrap();
    with_local_recorder(&backend, || metrics::counter!("logins").increment(2));
    agent.lines_until(|lines| has(lines, "myapp.logins:2|c"));
}

#[test]
fn a_unix_datagram_socket_receives_the_same_lines() {
    let path = TempSocketPath::new();
    let agent = UnixAgent::bind(&path.0);
    let backend = DogStatsdBackend::builder()
        .unix_socket(&path.0)
        .global_tag("service", "api")
        .flush_interval(FAST)
        .build()
        .unwrap();
    with_local_recorder(&backend, || {
        metrics::counter!("uds.count", "a" => "b").increment(3);
        metrics::histogram!("uds.hist").record(1.5);
    });
    agent
        .lines_until(|lines| has(lines, "uds.count:3|c|#a:b,service:api") && has(lines, "uds.hist:1.5|d|#service:api"));
}

#[test]
fn a_unix_datagram_url_as_in_dd_dogstatsd_url_is_a_datagram_socket() {
    let path = TempSocketPath::new();
    let agent = UnixAgent::bind(&path.0);
    let backend = DogStatsdBackend::builder()
        .url(format!("unix://{}", path.0.display()))
        .flush_interval(FAST)
        .build()
        .unwrap();
    with_local_recorder(&backend, || metrics::counter!("url.count").increment(1));
    agent.lines_until(|lines| has(lines, "url.count:1|c"));
}

#[test]
fn a_unix_stream_socket_receives_length_prefixed_frames() {
    let path = TempSocketPath::new();
    let agent = UnixStreamAgent::bind(&path.0);
    let backend = DogStatsdBackend::builder()
        .unix_stream_socket(&path.0)
        .flush_interval(FAST)
        .build()
        .unwrap();
    with_local_recorder(&backend, || metrics::gauge!("stream.gauge").set(9.0));
    let mut stream = agent.accept();
    UnixStreamAgent::lines_until(&mut stream, |lines| has(lines, "stream.gauge:9.0|g"));
}

#[test]
fn an_unreachable_agent_neither_panics_nor_blocks_the_caller_and_sending_resumes() {
    // UDP to a closed port: sends fail with ECONNREFUSED (ICMP port unreachable).
    let closed_port = UdpAgent::bind().port();
    let udp = DogStatsdBackend::builder()
        .udp("127.0.0.1", closed_port)
        .flush_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    // A Unix socket that does not exist yet: every send fails until it does.
    let path = TempSocketPath::new();
    let uds = DogStatsdBackend::builder()
        .unix_socket(&path.0)
        .flush_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    for round in 0..3 {
        for backend in [&udp, &uds] {
            with_local_recorder(backend, || {
                for i in 0..1000 {
                    metrics::counter!("down.count", "round" => round.to_string()).increment(1);
                    metrics::histogram!("down.hist").record(f64::from(i));
                    metrics::gauge!("down.gauge").set(f64::from(i));
                }
            });
        }
        // Let the forwarders try (and fail) to send what was recorded.
        assert_eq!(udp.flush(Duration::from_mins(1)), FlushOutcome::Waited);
    }
    // The Agent comes up: the forwarder connects and sends; the histogram values recorded
    // while it was down were dropped (not retried), the gauge keeps its last value.
    let agent = UnixAgent::bind(&path.0);
    with_local_recorder(&uds, || metrics::counter!("up.count").increment(1));
    agent.lines_until(|lines| has(lines, "up.count:1|c") && has(lines, "down.gauge:999.0|g"));
}

#[test]
fn a_stalled_unix_stream_agent_does_not_block_the_caller() {
    let path = TempSocketPath::new();
    let agent = UnixStreamAgent::bind(&path.0);
    let backend = DogStatsdBackend::builder()
        .unix_stream_socket(&path.0)
        .flush_interval(Duration::from_millis(10))
        .write_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    // The agent accepts and never reads: the forwarder's writes fill the socket buffer and then
    // time out, while the caller keeps recording.
    with_local_recorder(&backend, || metrics::counter!("stall.first").increment(1));
    let _stream = agent.accept();
    with_local_recorder(&backend, || {
        for i in 0..20_000 {
            metrics::counter!("stall.count", "i" => (i % 500).to_string()).increment(1);
            metrics::histogram!("stall.hist").record(1.0);
        }
    });
    assert_eq!(backend.flush(Duration::ZERO), FlushOutcome::TimedOut);
}

#[test]
fn flush_without_telemetry_waits_two_intervals() {
    let agent = UdpAgent::bind();
    let backend = udp_backend(&agent);
    with_local_recorder(&backend, || metrics::counter!("before.flush").increment(1));
    assert_eq!(backend.flush(Duration::from_mins(1)), FlushOutcome::Waited);
    agent.lines_until(|lines| has(lines, "before.flush:1|c|#service:api,env:test"));
    assert_eq!(backend.flush(Duration::from_millis(1)), FlushOutcome::TimedOut);
}

#[test]
fn bad_configuration_is_an_error_naming_the_value() {
    let err = |b: vigil_metrics_dogstatsd::DogStatsdBackendBuilder| b.build().unwrap_err();
    let b = DogStatsdBackend::builder;

    let e = err(b().udp("nonexistent.invalid", 8125));
    assert!(matches!(e, DogStatsdError::Resolve { .. }), "{e:?}");
    assert!(e.to_string().contains("nonexistent.invalid:8125"), "{e}");

    let e = err(b().udp("127.0.0.1", 0));
    assert_eq!(
        e.to_string(),
        "invalid DogStatsD agent address 127.0.0.1:0: expected a port number 1-65535"
    );

    let e = err(b().udp("::1", 8125));
    assert!(matches!(e, DogStatsdError::NoIpv4Address { .. }), "{e:?}");
    assert!(e.to_string().contains("[::1]:8125"), "{e}");

    let e = err(b().url("tcp://agent:8125"));
    assert!(e.to_string().contains("\"tcp://agent:8125\""), "{e}");
    let e = err(b().url("udp://agent:abc"));
    assert!(e.to_string().contains("expected a port number 1-65535"), "{e}");

    let long = format!("/tmp/{}", "s".repeat(120));
    let e = err(b().unix_socket(&long));
    assert!(matches!(e, DogStatsdError::InvalidSocketPath { .. }), "{e:?}");
    assert!(e.to_string().contains(&long), "{e}");

    let e = err(b().global_tag("service", "a|b"));
    assert!(e.to_string().contains(r#""service"="a|b""#), "{e}");
    let e = err(b().global_tag("env:x", "prod"));
    assert!(matches!(e, DogStatsdError::InvalidGlobalTag { .. }), "{e:?}");

    let e = err(b().prefix("my app"));
    assert_eq!(
        e.to_string(),
        r#"invalid DogStatsD metric prefix "my app": expected ASCII letters, digits, _ and ."#
    );

    let e = err(b().udp("127.0.0.1", 9).max_payload_len(70_000));
    assert_eq!(
        e.to_string(),
        "invalid DogStatsD max payload length 70000: expected 64-65507 bytes for this transport"
    );
    assert!(matches!(
        err(b().udp("127.0.0.1", 9).max_payload_len(10)),
        DogStatsdError::InvalidMaxPayloadLen { len: 10, .. }
    ));

    assert!(matches!(
        err(b().udp("127.0.0.1", 9).flush_interval(Duration::ZERO)),
        DogStatsdError::InvalidFlushInterval(_)
    ));
    assert!(matches!(
        err(b().udp("127.0.0.1", 9).write_timeout(Duration::ZERO)),
        DogStatsdError::InvalidWriteTimeout
    ));
    assert!(matches!(
        err(b().udp("127.0.0.1", 9).histogram_reservoir(1)),
        DogStatsdError::InvalidHistogramReservoir(1)
    ));
}

#[test]
fn a_histogram_reservoir_keeps_values_with_a_sample_rate() {
    let agent = UdpAgent::bind();
    let backend = DogStatsdBackend::builder()
        .udp("127.0.0.1", agent.port())
        .histogram_reservoir(16)
        .flush_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    with_local_recorder(&backend, || {
        for _ in 0..1000 {
            metrics::histogram!("sampled").record(1.0);
        }
    });
    // Each line carries its sample rate; values / rate estimate the 1000 recorded.
    let lines = agent.lines_until(|lines| {
        let estimate: f64 = lines
            .iter()
            .filter(|l| l.starts_with("sampled:"))
            .map(|l| {
                let rate: f64 = l
                    .split("|@")
                    .nth(1)
                    .unwrap()
                    .split('|')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                parse_line(l).values.len() as f64 / rate
            })
            .sum();
        (estimate - 1000.0).abs() < 1.0
    });
    assert!(named(&lines, "sampled").iter().all(|l| l.values.len() <= 16));
}

#[test]
fn debug_shows_the_configuration_and_counts() {
    let backend = DogStatsdBackend::builder()
        .udp("localhost", 8125)
        .global_tag("service", "api")
        .prefix("app")
        .build()
        .unwrap();
    let debug = format!("{backend:?}");
    for part in [
        "DogStatsdBackend",
        "target: udp://127.0.0.1:8125 (localhost:8125)",
        "prefix: Some(\"app\")",
        "(\"service\", \"api\")",
        "max_payload_len: 1432",
        "flush_interval: 2s",
        "histograms_as: \"distribution\"",
        "non_finite_dropped: 0",
    ] {
        assert!(debug.contains(part), "{part:?} missing in {debug}");
    }
}

#[test]
fn tag_sets_past_the_limit_fold_into_an_overflow_series_and_are_counted() {
    let agent = UdpAgent::bind();
    let backend = DogStatsdBackend::builder()
        .udp("127.0.0.1", agent.port())
        .max_series_per_metric(2)
        .max_metric_names(3)
        .flush_interval(FAST)
        .build()
        .unwrap();
    with_local_recorder(&backend, || {
        for id in ["1", "2", "3", "4"] {
            metrics::counter!("users.seen", "id" => id).increment(1);
        }
        metrics::gauge!("a").set(1.0);
        metrics::gauge!("b").set(1.0);
        metrics::gauge!("c").set(1.0);
    });
    let lines = agent.lines_until(|lines| {
        has(lines, "users.seen:1|c|#id:1")
            && has(lines, "users.seen:1|c|#id:2")
            && sum_tagged(lines, "users.seen", "id:__overflow__") == 2.0
            && sum_tagged(lines, "vigil.metrics.overflow", "metric:users.seen") == 2.0
            && sum_tagged(lines, "vigil.metrics.overflow", "metric:__too_many_metrics__") == 1.0
            && has(lines, "b:1.0|g")
    });
    assert!(named(&lines, "c").is_empty(), "{lines:#?}");
    assert_eq!(backend.series_count("users.seen"), 2);
    let stats = backend.stats();
    assert_eq!((stats.series_overflowed, stats.metric_names_dropped), (2, 1));
}

fn sum_tagged(lines: &[String], name: &str, tag: &str) -> f64 {
    named(lines, name)
        .iter()
        .filter(|l| l.tags.iter().any(|t| t == tag))
        .flat_map(|l| l.values.iter())
        .sum()
}
