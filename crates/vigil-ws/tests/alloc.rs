//! The hot path allocates nothing: classifying a Phoenix-style message, and counting a
//! message of a known event under Vigil's global recorder (cached handles).

#![allow(unsafe_code)] // a counting global allocator, for this test binary only

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use vigil_core::{BackendRecorder, NoopMetricsBackend, handles};
use vigil_ws::{ClassifyOptions, Direction, EventLabel, FrameKind, WsMetrics, classify_text};

struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the thread-local counter
// is const-initialised, so touching it never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_message_path_does_not_allocate() {
    metrics::set_global_recorder(BackendRecorder::new(NoopMetricsBackend)).unwrap();
    handles::remember_global_recorder();

    let options = ClassifyOptions::default();
    let phoenix =
        r#"{"topic":"video:42","event":"comment_created","payload":{"body":"hi","tags":["a","b"],"n":1.5},"ref":null}"#;
    // Nested payloads are skipped without allocating (a string with escapes would be decoded
    // into serde_json's scratch buffer: one allocation per message, documented).
    let nested = r#"{"event":"comment_created","payload":{"user":{"id":1,"roles":[["a"],{"b":[]}]}}}"#;
    let n = allocations_in(|| {
        for _ in 0..100 {
            assert_eq!(classify_text(phoenix, &options), EventLabel::Event("comment_created"));
            assert_eq!(classify_text(nested, &options), EventLabel::Event("comment_created"));
            assert_eq!(
                classify_text("plain text", &options),
                EventLabel::Frame(FrameKind::Text)
            );
        }
    });
    assert_eq!(n, 0, "classify_text allocated");

    let metrics = WsMetrics::new("comments").unwrap();
    let warm_up = || {
        metrics.record_text(Direction::In, phoenix);
        metrics.record_text(Direction::Out, r#"{"event":"ping"}"#);
        metrics.record_frame(Direction::In, FrameKind::Binary);
    };
    warm_up(); // learns the names and caches the handles
    let n = allocations_in(|| {
        for _ in 0..1000 {
            warm_up();
        }
    });
    assert_eq!(n, 0, "recording a known event allocated");

    // A full table of learned names: unknown names are `other`, without a lock or allocation.
    let full = WsMetrics::builder("full").max_learned_events(1).build().unwrap();
    full.record_text(Direction::In, r#"{"event":"first"}"#);
    full.record_text(Direction::In, r#"{"event":"second"}"#);
    let n = allocations_in(|| {
        for i in 0..100 {
            let text = if i % 2 == 0 {
                r#"{"event":"third"}"#
            } else {
                r#"{"event":"first"}"#
            };
            full.record_text(Direction::In, text);
        }
    });
    assert_eq!(n, 0, "an unknown event on a full channel allocated");
}
