//! The driver-independent API: `QueryTimer`, `instrument`, `PoolObserver`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use vigil_core::{BackendRecorder, MemoryMetricsBackend};
use vigil_db::{Operation, PoolObserver, PoolState, QueryTimer, instrument, instrument_sql};

fn recorded(f: impl FnOnce()) -> Arc<MemoryMetricsBackend> {
    let metrics = Arc::new(MemoryMetricsBackend::new());
    let recorder = BackendRecorder::from_arc(metrics.clone());
    metrics::with_local_recorder(&recorder, f);
    metrics
}

fn count(m: &MemoryMetricsBackend, source: &str, operation: &str) -> Option<u64> {
    m.counter("database.query.count", &[("source", source), ("operation", operation)])
}

fn durations(m: &MemoryMetricsBackend, source: &str, operation: &str) -> Vec<f64> {
    m.histogram_values(
        "database.query.duration",
        &[("source", source), ("operation", operation)],
    )
}

fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn timer_records_on_drop_and_on_finish_once() {
    let m = recorded(|| {
        {
            let _t = QueryTimer::start("videos", Operation::Select);
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = QueryTimer::start("Videos", Operation::Select);
        let took = t.finish();
        assert!(took < Duration::from_secs(5));
        QueryTimer::start("videos", Operation::Delete).discard();
        let _ = QueryTimer::for_sql("UPDATE public.comments SET body = $1 WHERE id = $2");
        let _ = QueryTimer::start("not a table!", Operation::Other);
    });
    assert_eq!(count(&m, "videos", "select"), Some(2));
    let d = durations(&m, "videos", "select");
    assert_eq!(d.len(), 2);
    assert!(d[0] >= 5.0, "{d:?}");
    assert_eq!(count(&m, "videos", "delete"), None);
    assert_eq!(count(&m, "comments", "update"), Some(1));
    assert_eq!(count(&m, "unknown", "other"), Some(1));
}

#[test]
fn instrument_records_on_completion() {
    let m = recorded(|| {
        let mut fut = pin!(instrument("comments", Operation::Insert, async { 7 }));
        assert_eq!(poll_once(fut.as_mut()), Poll::Ready(7));
        let mut fut = pin!(instrument_sql(
            "INSERT INTO comments (a) VALUES (?) RETURNING id",
            async { 8 }
        ));
        assert_eq!(poll_once(fut.as_mut()), Poll::Ready(8));
    });
    assert_eq!(count(&m, "comments", "insert"), Some(2));
    assert_eq!(durations(&m, "comments", "insert").len(), 2);
}

#[test]
fn instrument_records_a_cancelled_query_but_not_an_unpolled_one() {
    let m = recorded(|| {
        // Polled once, then dropped while pending: recorded, as a cancelled query.
        {
            let mut fut = pin!(instrument("comments", Operation::Select, std::future::pending::<()>()));
            assert!(poll_once(fut.as_mut()).is_pending());
        }
        // Never polled: nothing ran, nothing is recorded.
        drop(instrument("videos", Operation::Select, std::future::pending::<()>()));
        // Polled several times before completing: recorded once.
        let mut ready_after = 3;
        let mut fut = pin!(instrument(
            "videos",
            Operation::Update,
            std::future::poll_fn(move |_| {
                ready_after -= 1;
                if ready_after == 0 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        ));
        while poll_once(fut.as_mut()).is_pending() {}
    });
    assert_eq!(count(&m, "comments", "select"), Some(1));
    assert_eq!(count(&m, "videos", "select"), None);
    assert_eq!(count(&m, "videos", "update"), Some(1));
    assert_eq!(durations(&m, "videos", "update").len(), 1);
}

#[test]
fn pool_observer_records_state_acquires_and_timeouts() {
    let m = recorded(|| {
        let pool = PoolObserver::new("Replica");
        assert_eq!(pool.name(), "replica");
        pool.record_state(PoolState {
            size: 8,
            idle: 3,
            max: 10,
        });
        let attempt = pool.acquire_started();
        std::thread::sleep(Duration::from_millis(2));
        assert!(attempt.acquired() >= Duration::from_millis(2));
        pool.acquire_started().timed_out();
        drop(pool.acquire_started()); // abandoned: nothing recorded
        pool.record_acquire(Duration::from_millis(12));
        pool.record_timeout();
        assert_eq!(PoolObserver::new("bad name").name(), "unknown");
    });
    let tags = [("pool", "replica")];
    assert_eq!(m.gauge_value("database.pool.size", &tags), Some(8.0));
    assert_eq!(m.gauge_value("database.pool.idle", &tags), Some(3.0));
    assert_eq!(m.gauge_value("database.pool.in_use", &tags), Some(5.0));
    assert_eq!(m.gauge_value("database.pool.max", &tags), Some(10.0));
    let waits = m.histogram_values("database.pool.acquire.duration", &tags);
    assert_eq!(waits.len(), 2);
    assert!(waits[0] >= 2.0 && (waits[1] - 12.0).abs() < 1e-9, "{waits:?}");
    assert_eq!(m.counter("database.pool.acquire.timeouts", &tags), Some(2));
}

#[test]
fn catalogue_entries_are_described() {
    let m = recorded(vigil_db::catalogue::describe);
    for def in vigil_db::catalogue::all() {
        assert!(m.description(def.name).is_some(), "{}", def.name);
        // Every database metric is in the core catalogue, which dashboards and alerts use.
        assert_eq!(vigil_core::catalogue::find(def.name), Some(def), "{}", def.name);
    }
}
