//! Cached metric updates by name and tags: what `vigil::Metrics` and the collectors (HTTP,
//! WebSocket, database) use on their hot paths.
//!
//! With the recorder Vigil installed globally, handles are cached at two levels:
//! - per thread, for the last [`THREAD_CACHE_CAPACITY`] sets of metrics and tags the thread
//!   updated: a repeated update hashes the name and tags, finds the handles and updates
//!   them, with no lock and no allocation;
//! - shared by all threads, for up to [`SHARED_CACHE_CAPACITY`] sets: a thread that misses
//!   its own cache finds the handles there under one of 64 shard read locks (never a global
//!   lock), with no allocation, and keeps them in its own cache.
//!
//! Only a set seen for the first time goes to the recorder (which allocates its key), and,
//! once the shared cache is full, each update of a set that is not in it. Under any other
//! recorder (a local recorder in tests, or a global one installed without Vigil) every update
//! registers through the recorder, uncached.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use hashbrown::HashTable;
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};

/// The address of the recorder Vigil installed globally (0 before `init`).
static GLOBAL_RECORDER: AtomicUsize = AtomicUsize::new(0);

/// Sets of metrics and tags a thread's own cache holds before it starts over. It holds
/// pointers to the shared entries (about 10 bytes a set), so it stays under about 200 KiB per
/// thread.
pub const THREAD_CACHE_CAPACITY: usize = 16_384;
/// Sets of metrics and tags the shared cache holds; past it, new sets are not cached there.
/// Each costs about 200 bytes with two tags, so the shared cache stays under about 13 MiB
/// whatever tag values arrive.
pub const SHARED_CACHE_CAPACITY: usize = 65_536;
/// Shards of the shared cache: updates of different sets on different threads rarely meet
/// on one lock.
const SHARDS: usize = 64;

static METADATA: Metadata<'static> = Metadata::new("vigil::metrics", metrics::Level::INFO, None);

fn recorder_addr(recorder: &dyn Recorder) -> usize {
    std::ptr::from_ref(recorder).cast::<()>() as usize
}

/// Remembers the recorder just installed globally, so its handles may be cached. Call it
/// right after `metrics::set_global_recorder`, on a thread without a local recorder.
pub fn remember_global_recorder() {
    metrics::with_recorder(|r| GLOBAL_RECORDER.store(recorder_addr(r), Ordering::Release));
}

/// One metric update of [`apply`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update<'a> {
    /// Add to a counter.
    Increment(&'a str, u64),
    /// Set a gauge.
    GaugeSet(&'a str, f64),
    /// Add to a gauge (negative to subtract).
    GaugeAdd(&'a str, f64),
    /// Record in a histogram (non-finite values are skipped).
    Histogram(&'a str, f64),
}

impl Update<'_> {
    fn kind(&self) -> Kind {
        match self {
            Update::Increment(..) => Kind::Counter,
            Update::GaugeSet(..) | Update::GaugeAdd(..) => Kind::Gauge,
            Update::Histogram(..) => Kind::Histogram,
        }
    }

    fn name(&self) -> &str {
        match self {
            Update::Increment(n, _) | Update::GaugeSet(n, _) | Update::GaugeAdd(n, _) | Update::Histogram(n, _) => n,
        }
    }

    fn apply_to(&self, handle: &Handle) {
        match (self, handle) {
            (Update::Increment(_, v), Handle::Counter(c)) => c.increment(*v),
            (Update::GaugeSet(_, v), Handle::Gauge(g)) => g.set(*v),
            (Update::GaugeAdd(_, v), Handle::Gauge(g)) if *v >= 0.0 => g.increment(*v),
            (Update::GaugeAdd(_, v), Handle::Gauge(g)) => g.decrement(-*v),
            (Update::Histogram(_, v), Handle::Histogram(h)) if v.is_finite() => h.record(*v),
            _ => {}
        }
    }
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

/// The handles of one set of metrics sharing one set of tags.
struct Entry {
    hash: u64,
    metrics: Box<[(Kind, Box<str>)]>,
    tags: Box<[(Box<str>, Box<str>)]>,
    handles: Box<[Handle]>,
}

impl Entry {
    fn apply(&self, updates: &[Update<'_>]) {
        for (u, h) in updates.iter().zip(&self.handles) {
            u.apply_to(h);
        }
    }

    fn matches(&self, updates: &[Update<'_>], tags: &[(&str, &str)]) -> bool {
        self.metrics.len() == updates.len()
            && self.tags.len() == tags.len()
            && self
                .metrics
                .iter()
                .zip(updates)
                .all(|((k, n), u)| *k == u.kind() && **n == *u.name())
            && self
                .tags
                .iter()
                .zip(tags)
                .all(|((k, v), (k2, v2))| **k == **k2 && **v == **v2)
    }
}

/// The lookup hash of a set: the first metric's name, the number of metrics and tags, and the
/// tag values. The kinds, the other names and the tag keys are left out: a caller's sets rarely
/// differ only there, and [`Entry::matches`] compares everything, so leaving them out costs at
/// worst a comparison, while hashing them cost half of a cached update.
fn hash(updates: &[Update<'_>], tags: &[(&str, &str)]) -> u64 {
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    h.write_usize((updates.len() << 8) | tags.len());
    if let Some(first) = updates.first() {
        h.write(first.name().as_bytes());
    }
    for (_, v) in tags {
        v.hash(&mut h);
    }
    h.finish()
}

fn find<'a>(
    table: &'a HashTable<Arc<Entry>>,
    hash: u64,
    updates: &[Update<'_>],
    tags: &[(&str, &str)],
) -> Option<&'a Arc<Entry>> {
    table.find(hash, |e| e.hash == hash && e.matches(updates, tags))
}

/// A thread's own cache.
#[derive(Default)]
struct ThreadCache {
    table: HashTable<Arc<Entry>>,
}

impl ThreadCache {
    fn insert(&mut self, entry: Arc<Entry>) {
        if self.table.len() >= THREAD_CACHE_CAPACITY {
            self.table.clear();
        }
        let hash = entry.hash;
        self.table.insert_unique(hash, entry, |e| e.hash);
    }
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = RefCell::new(ThreadCache::default());
}

/// One shard of the shared cache, on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<HashTable<Arc<Entry>>>);

/// The cache shared by all threads, for the global recorder's handles.
struct SharedCache {
    shards: [Shard; SHARDS],
    len: AtomicUsize,
}

static SHARED: std::sync::LazyLock<SharedCache> = std::sync::LazyLock::new(|| SharedCache {
    shards: std::array::from_fn(|_| Shard::default()),
    len: AtomicUsize::new(0),
});

impl SharedCache {
    fn shard(&self, hash: u64) -> &RwLock<HashTable<Arc<Entry>>> {
        // The high bits: the tables use the low ones.
        #[allow(clippy::cast_possible_truncation)]
        let i = (hash >> 58) as usize % SHARDS;
        &self.shards[i].0
    }

    fn get(&self, hash: u64, updates: &[Update<'_>], tags: &[(&str, &str)]) -> Option<Arc<Entry>> {
        let table = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        find(&table, hash, updates, tags).cloned()
    }

    /// Keeps `entry` unless the cache is full; returns the entry to use (another thread's, when
    /// it registered the same set first).
    fn insert(&self, entry: Arc<Entry>, updates: &[Update<'_>], tags: &[(&str, &str)]) -> Arc<Entry> {
        if self.len.load(Ordering::Relaxed) >= SHARED_CACHE_CAPACITY {
            return entry;
        }
        let mut table = self.shard(entry.hash).write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = find(&table, entry.hash, updates, tags) {
            return Arc::clone(existing);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        let hash = entry.hash;
        table.insert_unique(hash, Arc::clone(&entry), |e| e.hash);
        entry
    }
}

/// Sets of metrics and tags in the shared cache (at most [`SHARED_CACHE_CAPACITY`]).
pub fn shared_cache_len() -> usize {
    SHARED.len.load(Ordering::Relaxed)
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

/// Applies several updates that share `tags` — for example a request's counter and its
/// duration and size histograms — with one cache lookup.
///
/// With Vigil's global recorder, handles are cached (see the [module docs](self)): a repeated
/// set of updates hashes its first name and tag values once, finds the handles and updates them, with no
/// allocation, and with no lock when the thread has seen the set recently. Under any other
/// recorder (a local recorder in tests) nothing is cached and each update registers through
/// the recorder.
///
/// ```
/// use vigil_core::handles::{Update, apply};
///
/// let tags = [("route", "/api/comments"), ("method", "POST"), ("status", "201")];
/// apply(&tags, &[Update::Increment("http.request.count", 1), Update::Histogram("http.request.duration", 12.5)]);
/// ```
pub fn apply(tags: &[(&str, &str)], updates: &[Update<'_>]) {
    metrics::with_recorder(|recorder| {
        let global = GLOBAL_RECORDER.load(Ordering::Acquire);
        let uncached = |recorder: &dyn Recorder| {
            for u in updates {
                u.apply_to(&register(recorder, u.kind(), &key(u.name(), tags)));
            }
        };
        if global == 0 || recorder_addr(recorder) != global {
            uncached(recorder);
            return;
        }
        CACHE.with(|cell| {
            let Ok(mut cache) = cell.try_borrow_mut() else {
                // Re-entered from inside a recorder: do not cache.
                uncached(recorder);
                return;
            };
            let hash = hash(updates, tags);
            if let Some(entry) = find(&cache.table, hash, updates, tags) {
                entry.apply(updates);
                return;
            }
            let entry = SHARED.get(hash, updates, tags).unwrap_or_else(|| {
                // First seen: registered without any cache lock held (a recorder may log, and
                // a log may update a metric).
                let handles: Box<[Handle]> = updates
                    .iter()
                    .map(|u| register(recorder, u.kind(), &key(u.name(), tags)))
                    .collect();
                let entry = Arc::new(Entry {
                    hash,
                    metrics: updates.iter().map(|u| (u.kind(), u.name().into())).collect(),
                    tags: tags.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
                    handles,
                });
                SHARED.insert(entry, updates, tags)
            });
            entry.apply(updates);
            cache.insert(entry);
        });
    });
}

/// Adds `value` to the counter `name` with `tags`.
pub fn increment(name: &str, value: u64, tags: &[(&str, &str)]) {
    apply(tags, &[Update::Increment(name, value)]);
}

/// Sets the gauge `name` with `tags` to `value`.
pub fn gauge_set(name: &str, value: f64, tags: &[(&str, &str)]) {
    apply(tags, &[Update::GaugeSet(name, value)]);
}

/// Adds `delta` (which may be negative) to the gauge `name` with `tags`.
pub fn gauge_add(name: &str, delta: f64, tags: &[(&str, &str)]) {
    apply(tags, &[Update::GaugeAdd(name, delta)]);
}

/// Records `value` in the histogram `name` with `tags`. Non-finite values are ignored.
pub fn histogram(name: &str, value: f64, tags: &[(&str, &str)]) {
    apply(tags, &[Update::Histogram(name, value)]);
}

/// A gauge without labels whose handle is registered once, for the hottest paths (such as
/// the HTTP layer's in-flight gauge, moved twice per request): an update is one atomic
/// operation on the handle, with no hashing or lookup.
///
/// The handle is taken from the recorder Vigil installed globally; under any other recorder
/// (a local one in tests) updates go through the uncached path, so they are never lost.
///
/// ```
/// use vigil_core::handles::UnlabeledGauge;
///
/// static IN_FLIGHT: UnlabeledGauge = UnlabeledGauge::new("jobs.in_flight");
/// IN_FLIGHT.add(1.0);
/// IN_FLIGHT.add(-1.0);
/// ```
#[derive(Debug)]
pub struct UnlabeledGauge {
    name: &'static str,
    cell: std::sync::OnceLock<(usize, Gauge)>,
}

impl UnlabeledGauge {
    /// A gauge named `name`, registered on first use.
    pub const fn new(name: &'static str) -> Self {
        UnlabeledGauge {
            name,
            cell: std::sync::OnceLock::new(),
        }
    }

    /// Adds `delta` (negative to subtract). NaN and infinities are ignored.
    pub fn add(&self, delta: f64) {
        if !delta.is_finite() {
            return;
        }
        let apply = |gauge: &Gauge| {
            if delta >= 0.0 {
                gauge.increment(delta);
            } else {
                gauge.decrement(-delta);
            }
        };
        metrics::with_recorder(|recorder| {
            let addr = recorder_addr(recorder);
            if let Some((cached, gauge)) = self.cell.get()
                && *cached == addr
            {
                apply(gauge);
            } else if addr == GLOBAL_RECORDER.load(Ordering::Acquire) {
                let (cached, gauge) = self.cell.get_or_init(|| {
                    let key = Key::from_static_name(self.name);
                    (addr, recorder.register_gauge(&key, &METADATA))
                });
                if *cached == addr {
                    apply(gauge);
                } else {
                    apply(&recorder.register_gauge(&key(self.name, &[]), &METADATA));
                }
            } else {
                apply(&recorder.register_gauge(&key(self.name, &[]), &METADATA));
            }
        });
    }
}
