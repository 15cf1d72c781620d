//! The tracer against Datadog's real test agent (`ddapm-test-agent`), with its trace checks
//! enabled: span trees across tokio tasks, remote parents, 128-bit ids, errors, the
//! trace-count header, retries, overflow accounting, shutdown and log correlation.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{TestAgent, by_resource, deadline, free_port, runtime_with, span, tracer, with_dispatch};
use serde_json::Value;
use tracing::Instrument as _;
use tracing_subscriber::prelude::*;
use vigil_core::trace::{RemoteParent, TraceIds};
use vigil_core::{BackendRecorder, LogLayer, MemoryLogBackend, MemoryMetricsBackend, Resource};
use vigil_trace_datadog::DatadogTraceLayer;

fn dispatch(layer: &DatadogTraceLayer) -> tracing::Dispatch {
    tracing::Dispatch::new(tracing_subscriber::registry().with(layer.clone().filtered()))
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

/// Every span of `trace` shares one trace id; returns it.
fn one_trace_id(trace: &[Value]) -> u64 {
    let id = u64_of(&trace[0]["trace_id"]);
    assert!(trace.iter().all(|s| u64_of(&s["trace_id"]) == id), "{trace:#?}");
    id
}

#[test]
fn parent_and_child_are_right_across_tokio_tasks_and_threads() {
    let Some(agent) = TestAgent::start("parent_and_child_are_right_across_tokio_tasks_and_threads") else {
        return;
    };
    let layer = tracer(agent.port).build().unwrap();
    let dispatch = dispatch(&layer);
    let runtime = runtime_with(&dispatch);
    with_dispatch(&dispatch, || {
        let root = tracing::info_span!("root");
        runtime.block_on(
            async {
                let mut tasks = Vec::new();
                for i in 0..4u32 {
                    // Created here, entered on whichever worker runs the task.
                    let child = tracing::info_span!("task", i);
                    tasks.push(tokio::spawn(
                        async move {
                            tokio::task::yield_now().await;
                            let grandchild = tracing::info_span!("step", i);
                            async {
                                tokio::task::yield_now().await;
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                            .instrument(grandchild)
                            .await;
                        }
                        .instrument(child),
                    ));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            }
            .instrument(root),
        );
    });
    assert!(layer.flush_until(deadline()));
    let traces = agent.wait_for_spans(9);
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let trace = &traces[0];
    assert_eq!(trace.len(), 9);
    one_trace_id(trace);
    let root = span(trace, "root");
    assert_eq!(u64_of(&root["parent_id"]), 0);
    for i in 0..4u32 {
        let task = trace
            .iter()
            .find(|s| s["name"] == "task" && s["metrics"]["i"] == f64::from(i))
            .unwrap();
        let step = trace
            .iter()
            .find(|s| s["name"] == "step" && s["metrics"]["i"] == f64::from(i))
            .unwrap();
        assert_eq!(task["parent_id"], root["span_id"], "task {i}");
        assert_eq!(step["parent_id"], task["span_id"], "step {i}");
    }
    let ids: std::collections::HashSet<u64> = trace.iter().map(|s| u64_of(&s["span_id"])).collect();
    assert_eq!(ids.len(), 9, "span ids are unique");
    agent.assert_checks_pass();
    drop(runtime);
}

#[test]
fn a_remote_parent_continues_the_callers_trace() {
    let Some(agent) = TestAgent::start("a_remote_parent_continues_the_callers_trace") else {
        return;
    };
    let layer = tracer(agent.port).build().unwrap();
    let dispatch = dispatch(&layer);
    // A caller that sent 128-bit ids (traceparent) and priority 2 (USER_KEEP).
    let caller = RemoteParent {
        trace_id: (0x6600_0000_0000_0000_u128 << 64) | 0x1234_5678_9abc_def0,
        span_id: 0x0bad_cafe,
        sampling_priority: Some(2),
    };
    // A caller with Datadog headers only: 64-bit trace id, no priority.
    let legacy = RemoteParent {
        trace_id: 777,
        span_id: 888,
        sampling_priority: None,
    };
    with_dispatch(&dispatch, || {
        for parent in [caller, legacy] {
            let request = vigil_core::trace::with_remote_parent(parent, || tracing::info_span!("incoming"));
            let ids = vigil_core::trace::of(&request).unwrap();
            assert_eq!(ids.trace_id, parent.trace_id);
            request.in_scope(|| {
                tracing::info_span!("inner").in_scope(|| {
                    // The caller's decision is what an outgoing request passes on.
                    assert_eq!(
                        vigil_core::trace::current_sampling_priority(),
                        Some(parent.sampling_priority.unwrap_or(1))
                    );
                });
            });
        }
        // Nothing is left for an unrelated span.
        tracing::info_span!("unrelated").in_scope(|| {});
    });
    assert!(layer.flush_until(deadline()));
    let traces = agent.wait_for_spans(5);
    assert_eq!(traces.len(), 3, "{traces:#?}");
    let find = |low: u64| traces.iter().find(|t| one_trace_id(t) == low).unwrap();

    let t = find(0x1234_5678_9abc_def0);
    let incoming = span(t, "incoming");
    assert_eq!(u64_of(&incoming["parent_id"]), 0x0bad_cafe);
    assert_eq!(incoming["meta"]["_dd.p.tid"], "6600000000000000");
    assert_eq!(incoming["metrics"]["_sampling_priority_v1"], 2.0);
    assert_eq!(span(t, "inner")["parent_id"], incoming["span_id"]);

    let t = find(777);
    let incoming = span(t, "incoming");
    assert_eq!(u64_of(&incoming["parent_id"]), 888);
    assert!(
        incoming["meta"].get("_dd.p.tid").is_none(),
        "a 64-bit trace id has no upper half"
    );
    assert_eq!(
        incoming["metrics"]["_sampling_priority_v1"], 1.0,
        "AUTO_KEEP by default"
    );

    let unrelated = span(
        traces.iter().find(|t| t[0]["name"] == "unrelated").unwrap(),
        "unrelated",
    );
    assert_eq!(u64_of(&unrelated["parent_id"]), 0);
    assert_ne!(u64_of(&unrelated["trace_id"]), 777);
    agent.assert_checks_pass();
}

#[test]
fn trace_ids_are_128_bit_with_the_upper_half_in_dd_p_tid() {
    let Some(agent) = TestAgent::start("trace_ids_are_128_bit_with_the_upper_half_in_dd_p_tid") else {
        return;
    };
    let layer = tracer(agent.port).build().unwrap();
    let dispatch = dispatch(&layer);
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (root_ids, child_ids) = with_dispatch(&dispatch, || {
        let root = tracing::info_span!("root").entered();
        let root_ids = vigil_core::trace::current().unwrap();
        let child_ids = tracing::info_span!("child").in_scope(|| vigil_core::trace::current().unwrap());
        drop(root);
        (root_ids, child_ids)
    });
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(root_ids.trace_id, child_ids.trace_id);
    let high = root_ids.trace_id_high();
    let secs = high >> 32;
    assert_eq!(high & 0xffff_ffff, 0, "the lower 32 bits of the upper half are zero");
    // Start times come from the monotonic clock mapped to the wall clock: allow a second.
    assert!(
        (before - 1..=after + 1).contains(&secs),
        "{secs} not in {before}..={after}"
    );
    assert_ne!(root_ids.trace_id_low(), 0);

    assert!(layer.flush_until(deadline()));
    let traces = agent.wait_for_spans(2);
    let trace = &traces[0];
    let root = span(trace, "root");
    let child = span(trace, "child");
    assert_eq!(u64_of(&root["trace_id"]), root_ids.trace_id_low());
    assert_eq!(u64_of(&root["span_id"]), root_ids.span_id);
    assert_eq!(u64_of(&child["span_id"]), child_ids.span_id);
    let tid = root["meta"]["_dd.p.tid"].as_str().unwrap();
    assert_eq!(tid, format!("{high:016x}"));
    assert!(tid.len() == 16 && tid.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(
        child["meta"].get("_dd.p.tid").is_none(),
        "only on the chunk's first span"
    );
    assert_eq!(root["metrics"]["_dd.top_level"], 1.0);
    assert!(child["metrics"].get("_dd.top_level").is_none());
    for s in trace {
        assert_eq!(s["service"], "vigil-test");
        assert_eq!(s["meta"]["env"], "test");
        assert_eq!(s["meta"]["version"], "0.0.1");
    }
    agent.assert_checks_pass();
}

#[test]
fn errors_set_the_flag_and_meta() {
    let Some(agent) = TestAgent::start("errors_set_the_flag_and_meta") else {
        return;
    };
    let layer = tracer(agent.port).build().unwrap();
    let dispatch = dispatch(&layer);
    with_dispatch(&dispatch, || {
        let _root = tracing::info_span!("checkout").entered();
        tracing::info_span!("charge").in_scope(|| {
            tracing::warn!("slow card network");
            tracing::error!(error.type = "Timeout", attempt = 3, "card network timed out");
            tracing::error!("a second error does not replace the first");
        });
        let field = tracing::info_span!("refund", error = tracing::field::Empty);
        field.record("error", "refund declined");
        drop(field);
        tracing::info_span!("fine").in_scope(|| tracing::warn!("only a warning"));
        let http = tracing::info_span!(target: "vigil::http", "request",
            request_id = "r-9", method = "POST", route = "/api/orders", status = tracing::field::Empty);
        http.record("status", 503u16);
        drop(http);
    });
    assert!(layer.flush_until(deadline()));
    let traces = agent.wait_for_spans(5);
    let trace = &traces[0];
    let charge = span(trace, "charge");
    assert_eq!(charge["error"], 1);
    assert_eq!(charge["meta"]["error.message"], "card network timed out");
    assert_eq!(charge["meta"]["error.type"], "Timeout");
    let refund = span(trace, "refund");
    assert_eq!(refund["error"], 1);
    assert_eq!(refund["meta"]["error.message"], "refund declined");
    assert_eq!(span(trace, "fine")["error"], 0);
    assert_eq!(
        span(trace, "checkout")["error"],
        0,
        "an error in a child is the child's"
    );
    let http = by_resource(trace, "POST /api/orders");
    assert_eq!(http["error"], 1, "status 503");
    assert_eq!(http["meta"]["http.status_code"], "503");
    agent.assert_checks_pass();
}

#[test]
fn the_trace_count_header_counts_traces_not_spans() {
    let Some(agent) = TestAgent::start("the_trace_count_header_counts_traces_not_spans") else {
        return;
    };
    // No timed flush during the test: the three traces go out in one payload on flush.
    let layer = tracer(agent.port)
        .flush_interval(Duration::from_hours(1))
        .build()
        .unwrap();
    let dispatch = dispatch(&layer);
    with_dispatch(&dispatch, || {
        tracing::info_span!("one").in_scope(|| {});
        tracing::info_span!("two").in_scope(|| {
            tracing::info_span!("two.a").in_scope(|| {});
            tracing::info_span!("two.b").in_scope(|| {});
        });
        tracing::info_span!("three").in_scope(|| {});
    });
    assert_eq!(layer.stats().queued, 3);
    assert!(layer.flush_until(deadline()));
    agent.wait_for_spans(5);
    let payloads = agent.payloads();
    assert_eq!(payloads.len(), 1, "{payloads:#?}");
    let p = &payloads[0];
    assert_eq!(p.method, "PUT");
    assert_eq!(p.header("X-Datadog-Trace-Count"), Some("3"));
    let mut sizes = p.trace_sizes();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 1, 3]);
    assert_eq!(p.header("Content-Type"), Some("application/msgpack"));
    assert_eq!(p.header("Content-Length"), Some(p.body.len().to_string().as_str()));
    assert_eq!(p.header("Datadog-Meta-Lang"), Some("rust"));
    assert_eq!(p.header("Datadog-Meta-Tracer-Version"), Some(env!("CARGO_PKG_VERSION")));
    let lang_version = p.header("Datadog-Meta-Lang-Version").unwrap();
    assert!(lang_version.starts_with("1."), "{lang_version}");
    let stats = layer.stats();
    assert_eq!((stats.sent_traces, stats.sent_spans, stats.payloads), (3, 5, 1));
    agent.assert_checks_pass();
}

#[test]
fn a_trace_sent_while_the_agent_is_down_is_retried_and_delivered() {
    let port = free_port();
    if !TestAgent::available("a_trace_sent_while_the_agent_is_down_is_retried_and_delivered") {
        return;
    }
    let layer = tracer(port)
        .flush_interval(Duration::from_millis(20))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .max_retries(u32::MAX)
        .build()
        .unwrap();
    let dispatch = dispatch(&layer);
    with_dispatch(&dispatch, || tracing::info_span!("while_down").in_scope(|| {}));
    let wait = Instant::now() + Duration::from_secs(30);
    while layer.stats().send_errors < 2 {
        assert!(Instant::now() < wait, "no attempt failed: {:?}", layer.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let agent = TestAgent::start_on("agent up", port).unwrap();
    assert!(layer.flush_until(deadline()), "{:?}", layer.stats());
    let traces = agent.wait_for_spans(1);
    assert_eq!(traces[0][0]["name"], "while_down");
    let stats = layer.stats();
    assert_eq!((stats.sent_traces, stats.dropped_traces), (1, 0), "{stats:?}");
    assert!(stats.send_errors >= 2);
    agent.assert_checks_pass();
}

#[test]
fn queue_overflow_is_counted_exactly() {
    const TRACES: u64 = 50;
    let port = free_port();
    if !TestAgent::available("queue_overflow_is_counted_exactly") {
        return;
    }
    let metrics = Arc::new(MemoryMetricsBackend::new());
    let recorder = BackendRecorder::from_arc(metrics.clone());
    let layer = tracer(port)
        .queue_capacity(4)
        .flush_interval(Duration::from_hours(1))
        .retry_backoff(Duration::from_secs(1), Duration::from_secs(1))
        .max_retries(u32::MAX)
        .build()
        .unwrap();
    let dispatch = dispatch(&layer);
    metrics::with_local_recorder(&recorder, || {
        with_dispatch(&dispatch, || {
            // The first trace keeps the sender busy retrying against the closed port: until
            // it is delivered, the sender takes nothing more off the queue.
            tracing::info_span!("first").in_scope(|| {});
            assert!(
                !layer.flush_until(Instant::now()),
                "asks for a flush, waits for nothing"
            );
            let wait = Instant::now() + Duration::from_secs(30);
            while layer.stats().send_errors == 0 {
                assert!(Instant::now() < wait, "no attempt failed: {:?}", layer.stats());
                std::thread::sleep(Duration::from_millis(5));
            }
            for i in 1..TRACES {
                tracing::info_span!("burst", i).in_scope(|| {});
            }
        });
    });
    let dropped = layer.stats().dropped_traces;
    assert_eq!(
        dropped,
        TRACES - 1 - 4,
        "one trace being retried, four queued, the rest dropped"
    );
    assert_eq!(
        metrics.counter("vigil.trace.dropped", &[("reason", "queue_full")]),
        Some(dropped),
        "the metric counts every drop"
    );
    assert_eq!(
        metrics.counter("vigil.trace.spans.dropped", &[("reason", "queue_full")]),
        Some(dropped)
    );
    let agent = TestAgent::start_on("agent up", port).unwrap();
    assert!(layer.shutdown(deadline()), "{:?}", layer.stats());
    let received: u64 = agent.traces().iter().map(|t| t.len() as u64).sum();
    let stats = layer.stats();
    assert_eq!(stats.sent_traces, received, "{stats:?}");
    assert_eq!(
        received + dropped,
        TRACES,
        "every trace delivered or counted: {stats:?}"
    );
    assert_eq!(stats.dropped_traces, dropped, "no drop besides the overflow");
    agent.assert_checks_pass();
}

#[test]
fn spans_over_the_per_trace_cap_are_dropped_and_counted() {
    let Some(agent) = TestAgent::start("spans_over_the_per_trace_cap_are_dropped_and_counted") else {
        return;
    };
    let layer = tracer(agent.port).max_trace_spans(3).build().unwrap();
    let dispatch = dispatch(&layer);
    with_dispatch(&dispatch, || {
        tracing::info_span!("big").in_scope(|| {
            for i in 0..5 {
                tracing::info_span!("part", i).in_scope(|| {});
            }
        });
    });
    assert!(layer.flush_until(deadline()));
    let traces = agent.wait_for_spans(3);
    let trace = &traces[0];
    assert_eq!(trace.len(), 3, "the root and the first two children: {trace:#?}");
    span(trace, "big");
    assert_eq!(layer.stats().dropped_spans, 3);
    agent.assert_checks_pass();
}

#[test]
fn a_long_trace_is_sent_in_partial_chunks() {
    let Some(agent) = TestAgent::start("a_long_trace_is_sent_in_partial_chunks") else {
        return;
    };
    let layer = tracer(agent.port)
        .flush_interval(Duration::from_hours(1))
        .build()
        .unwrap();
    let dispatch = dispatch(&layer);
    let children = vigil_trace_datadog::PARTIAL_FLUSH_SPANS + 1;
    with_dispatch(&dispatch, || {
        tracing::info_span!("long").in_scope(|| {
            for _ in 0..children {
                tracing::info_span!("part").in_scope(|| {});
            }
        });
    });
    assert!(layer.flush_until(deadline()));
    let traces = agent.wait_for_spans(children + 1);
    assert_eq!(traces.len(), 1, "one trace id");
    let trace = &traces[0];
    let root = span(trace, "long");
    assert!(
        trace
            .iter()
            .filter(|s| s["name"] == "part")
            .all(|s| s["parent_id"] == root["span_id"])
    );
    // Two chunks of one trace: the first thousand children while the root was open, then the
    // last child with the root.
    let payloads = agent.payloads();
    assert_eq!(payloads.len(), 1);
    let mut sizes = payloads[0].trace_sizes();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, vigil_trace_datadog::PARTIAL_FLUSH_SPANS]);
    assert_eq!(payloads[0].header("X-Datadog-Trace-Count"), Some("2"));
    let first_of_chunk = trace.iter().filter(|s| s["meta"].get("_dd.p.tid").is_some()).count();
    let with_priority = trace
        .iter()
        .filter(|s| s["metrics"].get("_sampling_priority_v1").is_some())
        .count();
    assert_eq!((first_of_chunk, with_priority), (2, 2), "each chunk's first span");
    agent.assert_checks_pass();
}

#[test]
fn shutdown_sends_what_is_queued_and_later_spans_are_counted() {
    let Some(agent) = TestAgent::start("shutdown_sends_what_is_queued_and_later_spans_are_counted") else {
        return;
    };
    let layer = tracer(agent.port)
        .flush_interval(Duration::from_hours(1))
        .build()
        .unwrap();
    let dispatch = dispatch(&layer);
    with_dispatch(&dispatch, || {
        tracing::info_span!("a").in_scope(|| {});
        tracing::info_span!("b").in_scope(|| {});
    });
    assert_eq!(layer.stats().queued, 2);
    assert!(layer.shutdown(deadline()));
    // Delivered before shutdown returned: no waiting here.
    let names: Vec<Value> = agent.traces().iter().flatten().map(|s| s["name"].clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    with_dispatch(&dispatch, || tracing::info_span!("too_late").in_scope(|| {}));
    let stats = layer.stats();
    assert_eq!((stats.sent_traces, stats.dropped_traces), (2, 1), "{stats:?}");
    assert!(!layer.shutdown(deadline()), "already shut down");
    agent.assert_checks_pass();
}

#[test]
fn log_records_carry_the_trace_ids_of_their_span() {
    let Some(agent) = TestAgent::start("log_records_carry_the_trace_ids_of_their_span") else {
        return;
    };
    let layer = tracer(agent.port).build().unwrap();
    let logs = Arc::new(MemoryLogBackend::new());
    let subscriber = tracing_subscriber::registry()
        .with(LogLayer::new(Resource::new("vigil-test", "test")).with_backend(logs.clone()))
        .with(layer.clone().filtered());
    let (outer, inner): (TraceIds, TraceIds) = tracing::subscriber::with_default(subscriber, || {
        let outer_span = tracing::info_span!("outer").entered();
        tracing::info!("in outer");
        let outer = vigil_core::trace::current().unwrap();
        let inner = tracing::info_span!("inner").in_scope(|| {
            tracing::info!(user_id = 7, "in inner");
            vigil_core::trace::current().unwrap()
        });
        drop(outer_span);
        tracing::info!("outside");
        (outer, inner)
    });
    let records = logs.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].trace, Some(outer));
    assert_eq!(records[1].trace, Some(inner));
    assert_eq!(records[2].trace, None);
    assert_eq!(outer.trace_id, inner.trace_id);

    assert!(layer.flush_until(deadline()));
    let traces = agent.wait_for_spans(2);
    let trace = &traces[0];
    assert_eq!(u64_of(&span(trace, "outer")["span_id"]), outer.span_id);
    assert_eq!(u64_of(&span(trace, "inner")["span_id"]), inner.span_id);
    assert_eq!(one_trace_id(trace), inner.trace_id_low());
    agent.assert_checks_pass();
}
