//! Faults at the socket level between the trace sender and Datadog's real test agent
//! (`ddapm-test-agent`), through a proxy that misbehaves on command: the agent dying
//! mid-batch, resetting connections, hanging past the request timeout, answering error bursts,
//! failing past the retry limit, and a shutdown while the queue is full with the agent down.
//! Each case asserts the exact counts: sent (each trace once at the agent), send errors and
//! dropped.

mod common;
#[path = "../../vigil-log-datadog/tests/common/faults.rs"]
mod faults;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{TestAgent, deadline, tracer, with_dispatch};
use faults::{Fault, FaultProxy};
use serde_json::Value;
use tracing_subscriber::prelude::*;
use vigil_trace_datadog::{DatadogTraceLayer, DatadogTraceLayerBuilder};

fn dispatch(layer: &DatadogTraceLayer) -> tracing::Dispatch {
    tracing::Dispatch::new(tracing_subscriber::registry().with(layer.clone()))
}

/// A tracer sending to the agent through `proxy`.
fn via(proxy: &FaultProxy) -> DatadogTraceLayerBuilder {
    tracer(proxy.addr().port()).flush_interval(Duration::from_hours(1))
}

/// `n` traces of one root span each, named `name-<i>`.
fn trace_n(layer: &DatadogTraceLayer, name: &str, n: usize) {
    let dispatch = dispatch(layer);
    with_dispatch(&dispatch, || {
        for i in 0..n {
            tracing::info_span!("root", otel.name = format!("{name}-{i}").as_str()).in_scope(|| {});
        }
    });
}

/// The distinct trace ids the agent received, checking none arrived twice.
fn received_once(agent: &TestAgent, spans: usize) -> BTreeSet<u64> {
    let traces = agent.wait_for_spans(spans);
    let ids: Vec<u64> = traces
        .iter()
        .flatten()
        .map(|s: &Value| s["trace_id"].as_u64().unwrap())
        .collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a trace arrived twice: {traces:#?}");
    unique
}

fn agent_and_proxy(test: &str) -> Option<(TestAgent, FaultProxy)> {
    let agent = TestAgent::start(test)?;
    let proxy = FaultProxy::start(agent.addr());
    Some((agent, proxy))
}

#[test]
fn an_agent_dying_mid_batch_gets_each_trace_once() {
    let Some((agent, proxy)) = agent_and_proxy("an_agent_dying_mid_batch_gets_each_trace_once") else {
        return;
    };
    proxy.script([Fault::DieMidRequest, Fault::DieMidRequest]);
    let layer = via(&proxy).build().unwrap();
    trace_n(&layer, "mid-batch", 5);
    assert!(layer.flush_until(deadline()), "{:?}", layer.stats());
    assert_eq!(received_once(&agent, 5).len(), 5);
    let stats = layer.stats();
    assert_eq!(
        (stats.sent_traces, stats.send_errors, stats.dropped_traces),
        (5, 2, 0),
        "{stats:?}"
    );
    assert_eq!(
        &proxy.applied()[..3],
        [Fault::DieMidRequest, Fault::DieMidRequest, Fault::Pass]
    );
    agent.assert_checks_pass();
}

#[test]
fn reset_connections_are_retried() {
    let Some((agent, proxy)) = agent_and_proxy("trace reset_connections_are_retried") else {
        return;
    };
    proxy.script([Fault::Reset, Fault::Reset, Fault::Reset]);
    let layer = via(&proxy).build().unwrap();
    trace_n(&layer, "reset", 4);
    assert!(layer.flush_until(deadline()), "{:?}", layer.stats());
    assert_eq!(received_once(&agent, 4).len(), 4);
    let stats = layer.stats();
    assert_eq!(
        (stats.sent_traces, stats.send_errors, stats.dropped_traces),
        (4, 3, 0),
        "{stats:?}"
    );
    agent.assert_checks_pass();
}

#[test]
fn an_agent_hanging_past_the_request_timeout_is_retried() {
    let Some((agent, proxy)) = agent_and_proxy("an_agent_hanging_past_the_request_timeout_is_retried") else {
        return;
    };
    proxy.script([Fault::Hang]);
    let layer = via(&proxy).request_timeout(Duration::from_millis(400)).build().unwrap();
    trace_n(&layer, "hang", 3);
    let started = Instant::now();
    assert!(layer.flush_until(deadline()), "{:?}", layer.stats());
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(received_once(&agent, 3).len(), 3);
    let stats = layer.stats();
    assert_eq!(
        (stats.sent_traces, stats.send_errors, stats.dropped_traces),
        (3, 1, 0),
        "{stats:?}"
    );
    agent.assert_checks_pass();
}

#[test]
fn an_error_burst_is_retried_until_the_agent_accepts() {
    let Some((agent, proxy)) = agent_and_proxy("an_error_burst_is_retried_until_the_agent_accepts") else {
        return;
    };
    proxy.script([
        Fault::Respond(503),
        Fault::Respond(429),
        Fault::Respond(500),
        Fault::Respond(408),
    ]);
    let layer = via(&proxy).build().unwrap();
    trace_n(&layer, "burst", 6);
    assert!(layer.flush_until(deadline()), "{:?}", layer.stats());
    assert_eq!(received_once(&agent, 6).len(), 6);
    let stats = layer.stats();
    assert_eq!(
        (stats.sent_traces, stats.send_errors, stats.dropped_traces),
        (6, 4, 0),
        "{stats:?}"
    );
    agent.assert_checks_pass();
}

#[test]
fn failures_past_the_retry_limit_drop_the_payload_and_count_it() {
    let Some((agent, proxy)) = agent_and_proxy("failures_past_the_retry_limit_drop_the_payload_and_count_it") else {
        return;
    };
    // The first attempt and two retries fail: the payload is given up.
    proxy.script([Fault::Respond(503), Fault::Reset, Fault::DieMidRequest]);
    let layer = via(&proxy).max_retries(2).build().unwrap();
    trace_n(&layer, "given-up", 3);
    assert!(
        !layer.flush_until(deadline()),
        "the flush says some were dropped: {:?}",
        layer.stats()
    );
    let stats = layer.stats();
    assert_eq!(
        (
            stats.sent_traces,
            stats.send_errors,
            stats.dropped_traces,
            stats.dropped_spans
        ),
        (0, 3, 3, 3),
        "{stats:?}"
    );
    // The next traces go through.
    trace_n(&layer, "after", 2);
    assert!(layer.flush_until(deadline()));
    assert_eq!(received_once(&agent, 2).len(), 2);
    assert_eq!(layer.stats().sent_traces, 2);
}

#[test]
fn shutdown_with_a_full_queue_and_the_agent_down_counts_every_trace() {
    let Some((_agent, proxy)) = agent_and_proxy("shutdown_with_a_full_queue_and_the_agent_down_counts_every_trace")
    else {
        return;
    };
    proxy.down();
    let layer = via(&proxy).queue_capacity(8).max_retries(u32::MAX).build().unwrap();
    trace_n(&layer, "queued", 30);
    let started = Instant::now();
    assert!(
        !layer.shutdown(Instant::now() + Duration::from_millis(800)),
        "the agent never came back"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by the deadline");
    // The shutdown never waits past its deadline: a payload the sender was retrying at that
    // moment is counted as dropped as the thread ends, a moment later.
    let counted = Instant::now() + Duration::from_secs(10);
    while layer.stats().dropped_traces < 30 && Instant::now() < counted {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = layer.stats();
    assert_eq!(stats.sent_traces, 0);
    assert_eq!(
        stats.dropped_traces, 30,
        "the queue's overflow and what it held at the deadline: {stats:?}"
    );
    assert_eq!(stats.queued, 0);
}
