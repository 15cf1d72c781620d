//! Cached metric updates by name and tags: what `vigil::Metrics` and the collectors (HTTP,
//! WebSocket, database) use on their hot paths.
//!
//! With the recorder Vigil installed globally, handles are cached per thread: a repeated
//! update hashes the name and tags, finds the handle and updates it, with no lock and no
//! allocation. Under any other recorder (a local recorder in tests, or a global one installed
//! without Vigil) every update registers through the recorder, uncached.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};

/// The address of the recorder Vigil installed globally (0 before `init`).
static GLOBAL_RECORDER: AtomicUsize = AtomicUsize::new(0);

/// Entries a thread's handle cache holds before it starts over.
const CACHE_CAPACITY: usize = 4096;

static METADATA: Metadata<'static> = Metadata::new("vigil::metrics", metrics::Level::INFO, None);

fn recorder_addr(recorder: &dyn Recorder) -> usize {
    std::ptr::from_ref(recorder).cast::<()>() as usize
}

/// Remembers the recorder just installed globally, so its handles may be cached. Call it
/// right after `metrics::set_global_recorder`, on a thread without a local recorder.
pub fn remember_global_recorder() {
    metrics::with_recorder(|r| GLOBAL_RECORDER.store(recorder_addr(r), Ordering::Release));
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

enum Handle {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

struct Entry {
    hash: u64,
    kind: Kind,
    name: Box<str>,
    tags: Box<[(Box<str>, Box<str>)]>,
    handle: Handle,
}

impl Entry {
    fn matches(&self, kind: Kind, name: &str, tags: &[(&str, &str)]) -> bool {
        self.kind == kind
            && *self.name == *name
            && self.tags.len() == tags.len()
            && self
                .tags
                .iter()
                .zip(tags)
                .all(|((k, v), (k2, v2))| **k == **k2 && **v == **v2)
    }
}

#[derive(Default)]
struct HandleCache {
    table: HashTable<Entry>,
    hasher: foldhash::fast::FixedState,
}

impl HandleCache {
    fn hash(&self, kind: Kind, name: &str, tags: &[(&str, &str)]) -> u64 {
        let mut h = self.hasher.build_hasher();
        kind.hash(&mut h);
        name.hash(&mut h);
        for (k, v) in tags {
            k.hash(&mut h);
            v.hash(&mut h);
        }
        h.finish()
    }
}

thread_local! {
    static CACHE: RefCell<HandleCache> = RefCell::new(HandleCache::default());
}

fn key(name: &str, tags: &[(&str, &str)]) -> Key {
    let labels: Vec<Label> = tags
        .iter()
        .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
        .collect();
    Key::from_parts(name.to_owned(), labels)
}

fn register(recorder: &dyn Recorder, kind: Kind, key: &Key) -> Handle {
    match kind {
        Kind::Counter => Handle::Counter(recorder.register_counter(key, &METADATA)),
        Kind::Gauge => Handle::Gauge(recorder.register_gauge(key, &METADATA)),
        Kind::Histogram => Handle::Histogram(recorder.register_histogram(key, &METADATA)),
    }
}

/// Finds (or registers) the handle for `name` + `tags` and applies `op` to it.
///
/// With Vigil's global recorder, handles are cached per thread: a repeated update hashes
/// the name and tags, finds the handle and updates it, with no lock and no allocation.
/// Under a local recorder (`metrics::with_local_recorder`, in tests) nothing is cached.
fn with_handle(kind: Kind, name: &str, tags: &[(&str, &str)], op: impl FnOnce(&Handle)) {
    metrics::with_recorder(|recorder| {
        let global = GLOBAL_RECORDER.load(Ordering::Acquire);
        if global == 0 || recorder_addr(recorder) != global {
            op(&register(recorder, kind, &key(name, tags)));
            return;
        }
        CACHE.with(|cell| {
            let Ok(mut cache) = cell.try_borrow_mut() else {
                // Re-entered from inside a recorder: do not cache.
                op(&register(recorder, kind, &key(name, tags)));
                return;
            };
            let hash = cache.hash(kind, name, tags);
            if let Some(entry) = cache
                .table
                .find(hash, |e| e.hash == hash && e.matches(kind, name, tags))
            {
                op(&entry.handle);
                return;
            }
            if cache.table.len() >= CACHE_CAPACITY {
                cache.table.clear();
            }
            let handle = register(recorder, kind, &key(name, tags));
            op(&handle);
            let entry = Entry {
                hash,
                kind,
                name: name.into(),
                tags: tags.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
                handle,
            };
            cache.table.insert_unique(hash, entry, |e| e.hash);
        });
    });
}

/// Adds `value` to the counter `name` with `tags`.
pub fn increment(name: &str, value: u64, tags: &[(&str, &str)]) {
    with_handle(Kind::Counter, name, tags, |h| {
        if let Handle::Counter(c) = h {
            c.increment(value);
        }
    });
}

/// Sets the gauge `name` with `tags` to `value`.
pub fn gauge_set(name: &str, value: f64, tags: &[(&str, &str)]) {
    with_handle(Kind::Gauge, name, tags, |h| {
        if let Handle::Gauge(g) = h {
            g.set(value);
        }
    });
}

/// Adds `delta` (which may be negative) to the gauge `name` with `tags`.
pub fn gauge_add(name: &str, delta: f64, tags: &[(&str, &str)]) {
    with_handle(Kind::Gauge, name, tags, |h| {
        if let Handle::Gauge(g) = h {
            if delta >= 0.0 {
                g.increment(delta);
            } else {
                g.decrement(-delta);
            }
        }
    });
}

/// Records `value` in the histogram `name` with `tags`. Non-finite values are ignored.
pub fn histogram(name: &str, value: f64, tags: &[(&str, &str)]) {
    if !value.is_finite() {
        return;
    }
    with_handle(Kind::Histogram, name, tags, |h| {
        if let Handle::Histogram(hist) = h {
            hist.record(value);
        }
    });
}
