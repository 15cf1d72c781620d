//! `vigil::init` end to end: the facade and the `tracing`/`metrics` macros reach the same
//! backends, configured once. Each test process installs Vigil once (nextest runs every test
//! in its own process; `cargo test` shares one installation between them).

#![allow(clippy::float_cmp)]

mod common;

use std::sync::{Arc, OnceLock};

use vigil::config::{Config, MetricsBackendKind, Port};
use vigil::{Level, Logger, MemoryLogBackend, MemoryMetricsBackend, Metrics, OwnedValue, Vigil, fields};

struct Installed {
    logs: Arc<MemoryLogBackend>,
    metrics: Arc<MemoryMetricsBackend>,
    guard: vigil::Guard,
}

fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let mut config = Config::load_with(|var| match var {
            "VIGIL_SERVICE" => Some("init-test".to_owned()),
            "VIGIL_ENV" => Some("ci".to_owned()),
            "LOG_LEVEL" => Some("info".to_owned()),
            _ => None,
        })
        .unwrap();
        config.logger_backends.clear();
        config.metrics_backends = vec![MetricsBackendKind::Prometheus];
        "127.0.0.1".clone_into(&mut config.prometheus.host);
        config.prometheus.port = Port(0);
        let logs = Arc::new(MemoryLogBackend::new());
        let metrics = Arc::new(MemoryMetricsBackend::new());
        let guard = Vigil::builder()
            .config(config)
            .log_backend_arc(logs.clone())
            .metrics_backend(metrics.clone())
            .install()
            .expect("install");
        Installed { logs, metrics, guard }
    })
}

fn records_with(message: &str) -> Vec<vigil::CapturedRecord> {
    installed()
        .logs
        .records()
        .into_iter()
        .filter(|r| r.message == message)
        .collect()
}

#[test]
fn facade_logs_carry_fields_span_fields_and_resource() {
    installed();
    let span = tracing::info_span!("request", request_id = "req-7");
    span.in_scope(|| Logger::info("User logged in", fields!(user_id = 42, "video.id" = "v-1")));
    let records = records_with("User logged in");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.level, Level::Info);
    assert_eq!(r.service, "init-test");
    assert_eq!(r.field("user_id"), Some(&OwnedValue::I64(42)));
    assert_eq!(r.field("video.id"), Some(&OwnedValue::Str("v-1".into())));
    assert_eq!(r.field("request_id"), Some(&OwnedValue::Str("req-7".into())));
}

#[test]
fn the_level_filter_applies_to_facade_tracing_and_log_records() {
    installed();
    Logger::debug("facade debug is filtered", fields!());
    tracing::debug!("tracing debug is filtered");
    log::debug!("log debug is filtered");
    Logger::warning("facade warning passes", fields!());
    log::warn!(target: "some_library", "log warning passes");
    assert!(records_with("facade debug is filtered").is_empty());
    assert!(records_with("tracing debug is filtered").is_empty());
    assert!(records_with("log debug is filtered").is_empty());
    assert_eq!(records_with("facade warning passes")[0].level, Level::Warning);
    let from_log = &records_with("log warning passes")[0];
    assert_eq!(from_log.target, "some_library");
}

#[test]
fn facade_and_macros_reach_every_metrics_backend() {
    let i = installed();
    for _ in 0..3 {
        Metrics::increment("facade.logins", 1, &[("region", "eu"), ("tier", "gold")]);
    }
    Metrics::gauge("facade.online", 7.5, &[("region", "eu")]);
    Metrics::histogram("facade.latency", 12.0, &[("route", "/a")]);
    Metrics::histogram("facade.latency", f64::NAN, &[("route", "/a")]);
    metrics::counter!("macro.signups", "region" => "eu").increment(2);

    assert_eq!(
        i.metrics
            .counter("facade.logins", &[("region", "eu"), ("tier", "gold")]),
        Some(3)
    );
    assert_eq!(i.metrics.gauge_value("facade.online", &[("region", "eu")]), Some(7.5));
    assert_eq!(
        i.metrics.histogram_values("facade.latency", &[("route", "/a")]),
        vec![12.0]
    );
    assert_eq!(i.metrics.counter("macro.signups", &[("region", "eu")]), Some(2));
    // The catalogue was described to every backend.
    assert!(i.metrics.description("http.request.duration").is_some());

    let (status, body) = common::get(i.guard.metrics_addr().unwrap(), "/metrics");
    assert_eq!(status, 200);
    let series = r#"facade_logins_total{service="init-test",environment="ci",region="eu",tier="gold"}"#;
    assert_eq!(common::sample(&body, series), Some(3.0), "{body}");
    assert_eq!(common::sample(&body, "macro_signups_total{"), Some(2.0), "{body}");
    assert_eq!(common::sample(&body, "facade_online{"), Some(7.5), "{body}");
    assert_eq!(common::sample(&body, "facade_latency_count{"), Some(1.0), "{body}");
}

#[test]
fn cached_facade_handles_count_exactly_across_threads() {
    let i = installed();
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                let tag = if t % 2 == 0 { "even" } else { "odd" };
                for _ in 0..5_000 {
                    Metrics::increment("threads.updates", 1, &[("parity", tag)]);
                }
            });
        }
    });
    assert_eq!(
        i.metrics.counter("threads.updates", &[("parity", "even")]),
        Some(10_000)
    );
    assert_eq!(i.metrics.counter("threads.updates", &[("parity", "odd")]), Some(10_000));
    let (_, body) = common::get(i.guard.metrics_addr().unwrap(), "/metrics");
    let even = common::sample(
        &body,
        r#"threads_updates_total{service="init-test",environment="ci",parity="even"}"#,
    );
    assert_eq!(even, Some(10_000.0), "{body}");
}

#[test]
fn many_distinct_tag_values_stay_correct_past_the_thread_cache_size() {
    let i = installed();
    for round in 0..2 {
        for n in 0..5_000 {
            Metrics::increment("churn.counter", 1, &[("n", &n.to_string())]);
        }
        assert_eq!(i.metrics.counter("churn.counter", &[("n", "4999")]), Some(round + 1));
        assert_eq!(i.metrics.counter("churn.counter", &[("n", "0")]), Some(round + 1));
    }
}

#[test]
fn logger_flush_reaches_the_backends_and_a_second_init_is_refused() {
    let i = installed();
    let before = i.logs.flushes();
    Logger::flush();
    assert!(i.logs.flushes() > before);
    let err = Vigil::builder().config(Config::default()).install().unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, vigil::Error::SubscriberAlreadySet | vigil::Error::Prometheus(_)),
        "{message}"
    );
}
