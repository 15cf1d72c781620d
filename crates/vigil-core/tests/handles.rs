//! The handle caches under the global recorder: every set of metrics and tags is registered
//! once, however many threads update it and however many sets there are past one thread's
//! cache, values stay exact, and the shared cache stops at its capacity.
//!
//! One test: it installs the process's global recorder.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use vigil_core::handles::{self, SHARED_CACHE_CAPACITY, THREAD_CACHE_CAPACITY};

/// Counters kept by key, and how many registrations the recorder saw.
#[derive(Default)]
struct CountingRecorder {
    counters: Mutex<HashMap<Key, Arc<AtomicU64>>>,
    registrations: AtomicUsize,
}

struct Cell(Arc<AtomicU64>);

impl metrics::CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl CountingRecorder {
    fn value(&self, name: &str, route: &str) -> u64 {
        self.value_with(name, &[("route", route)])
    }

    fn value_with(&self, name: &str, tags: &[(&str, &str)]) -> u64 {
        let labels: Vec<metrics::Label> = tags
            .iter()
            .map(|(k, v)| metrics::Label::new((*k).to_owned(), (*v).to_owned()))
            .collect();
        let key = Key::from_parts(name.to_owned(), labels);
        self.counters
            .lock()
            .unwrap()
            .get(&key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Recorder for CountingRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        let cell = Arc::clone(self.counters.lock().unwrap().entry(key.clone()).or_default());
        Counter::from_arc(Arc::new(Cell(cell)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn route(i: usize) -> String {
    format!("/r/{i}")
}

#[test]
fn sets_are_registered_once_and_values_stay_exact_past_every_cache() {
    let recorder: &'static CountingRecorder = Box::leak(Box::default());
    metrics::set_global_recorder(recorder).unwrap();
    handles::remember_global_recorder();

    // More sets than one thread's cache holds, updated three times over, round-robin.
    let sets = THREAD_CACHE_CAPACITY * 2 + 1000;
    let routes: Vec<String> = (0..sets).map(route).collect();
    for _ in 0..3 {
        for r in &routes {
            handles::increment("requests", 1, &[("route", r)]);
        }
    }
    assert_eq!(
        recorder.registrations.load(Ordering::Relaxed),
        sets,
        "each set registered once"
    );
    assert_eq!(handles::shared_cache_len(), sets);

    // Another thread finds every set in the shared cache: no new registration.
    let shared = Arc::new(routes);
    let other = Arc::clone(&shared);
    std::thread::spawn(move || {
        for r in other.iter() {
            handles::increment("requests", 2, &[("route", r)]);
        }
    })
    .join()
    .unwrap();
    assert_eq!(recorder.registrations.load(Ordering::Relaxed), sets);
    for i in [0, 1, THREAD_CACHE_CAPACITY, sets - 1] {
        assert_eq!(recorder.value("requests", &route(i)), 5, "{i}");
    }

    // Past the shared cache's capacity new sets are not kept there, and are still counted.
    let more = SHARED_CACHE_CAPACITY + 500 - sets;
    for i in sets..sets + more {
        handles::increment("requests", 1, &[("route", &route(i))]);
    }
    assert_eq!(handles::shared_cache_len(), SHARED_CACHE_CAPACITY);
    for i in sets..sets + more {
        handles::increment("requests", 1, &[("route", &route(i))]);
    }
    for i in [sets, SHARED_CACHE_CAPACITY - 1, SHARED_CACHE_CAPACITY, sets + more - 1] {
        assert_eq!(recorder.value("requests", &route(i)), 2, "{i}");
    }
    // Several metrics with the same tags are one set, distinct from each metric alone.
    handles::apply(
        &[("route", "/both")],
        &[handles::Update::Increment("a", 1), handles::Update::Increment("b", 10)],
    );
    handles::increment("a", 1, &[("route", "/both")]);
    assert_eq!(recorder.value("a", "/both"), 2);
    assert_eq!(recorder.value("b", "/both"), 10);

    // The lookup hash leaves out tag keys, later names and kinds: sets that differ only there
    // share a hash and must still stay apart, in the thread's cache as in the shared one.
    for _ in 0..2 {
        handles::increment("c", 1, &[("route", "/x")]);
        handles::increment("c", 100, &[("path", "/x")]);
        handles::apply(
            &[("route", "/x")],
            &[
                handles::Update::Increment("c", 1000),
                handles::Update::Increment("d", 1),
            ],
        );
        handles::apply(
            &[("route", "/x")],
            &[
                handles::Update::Increment("c", 10_000),
                handles::Update::Increment("e", 1),
            ],
        );
        handles::apply(
            &[("route", "/x")],
            &[
                handles::Update::Increment("c", 100_000),
                handles::Update::Histogram("d", 1.0),
            ],
        );
    }
    assert_eq!(recorder.value("c", "/x"), 2 * 111_001);
    assert_eq!(recorder.value_with("c", &[("path", "/x")]), 200);
    assert_eq!(recorder.value("d", "/x"), 2);
    assert_eq!(recorder.value("e", "/x"), 2);
}
