//! Cardinality limits: the exporter keeps every metric and tag set until the process exits (and
//! re-sends gauges on every flush), so new tag sets past a per-metric limit fold into one
//! overflow series, and new metric names past a global limit are not sent.
//!
//! A registration of a series already admitted (the common case) is one set lookup in one of 16
//! shards, under that shard's read lock: the key's precomputed hash, then a comparison of name
//! and tags (`Key::get_hash` alone is not an identity: in metrics 0.24.6, 200 keys `m{id=0..199}`
//! have 181 distinct hashes). Only a new series, or one past a limit, takes the per-name
//! bookkeeping (sharded by name) under a mutex.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use metrics::{Key, Label};

/// The value every tag of an overflow series carries.
pub const OVERFLOW_TAG_VALUE: &str = "__overflow__";
/// The `metric` tag of the overflow counter when the number of metric names hits its limit.
pub const TOO_MANY_METRICS: &str = "__too_many_metrics__";
/// Default tag sets per metric (as the Prometheus backend).
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 1000;
/// Default number of distinct metric names.
pub const DEFAULT_MAX_METRIC_NAMES: usize = 10_000;

const SHARDS: usize = 16;

/// What to do with a registration.
pub(crate) enum Admission {
    /// Register the key as it is.
    Admit,
    /// Past the metric's limit: register this overflow key instead. `first` is true the first
    /// time the metric overflowed.
    Overflow { key: Key, first: bool },
    /// Past the limit of metric names: do not register. `first` as above, for the limit.
    Drop { first: bool },
}

/// A hasher for [`Key`], whose `Hash` writes only its precomputed hash.
#[derive(Default)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Prehashed = BuildHasherDefault<PrehashedHasher>;
type FastState = foldhash::fast::FixedState;

struct NameSeries {
    series: usize,
    warned: bool,
}

pub(crate) struct SeriesLimit {
    max_series_per_metric: usize,
    max_metric_names: usize,
    names: AtomicUsize,
    names_warned: AtomicBool,
    /// Admitted series, sharded by [`Key::get_hash`]. (`Key`'s hash ignores its atomics, so it
    /// is a sound set element.)
    #[allow(clippy::mutable_key_type)]
    known: [RwLock<HashSet<Key, Prehashed>>; SHARDS],
    /// Series counts per metric name, sharded by name.
    per_name: [Mutex<HashMap<String, NameSeries, FastState>>; SHARDS],
    hasher: FastState,
}

/// The shard of a hash (the low bits; truncation is the point).
#[allow(clippy::cast_possible_truncation)]
fn shard(hash: u64) -> usize {
    hash as usize % SHARDS
}

impl SeriesLimit {
    pub(crate) fn new(max_series_per_metric: usize, max_metric_names: usize) -> Self {
        SeriesLimit {
            max_series_per_metric,
            max_metric_names,
            names: AtomicUsize::new(0),
            names_warned: AtomicBool::new(false),
            known: std::array::from_fn(|_| RwLock::new(HashSet::default())),
            per_name: std::array::from_fn(|_| Mutex::new(HashMap::default())),
            hasher: FastState::default(),
        }
    }

    pub(crate) fn max_series_per_metric(&self) -> usize {
        self.max_series_per_metric
    }

    pub(crate) fn max_metric_names(&self) -> usize {
        self.max_metric_names
    }

    fn is_known(&self, key: &Key) -> bool {
        self.known[shard(key.get_hash())]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }

    /// Decides whether `key` (already sanitised) may be registered.
    pub(crate) fn admit(&self, key: &Key) -> Admission {
        if self.is_known(key) {
            return Admission::Admit;
        }
        let name = key.name();
        let mut per_name = self.per_name[shard(self.hasher.hash_one(name))]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Another thread may have admitted it meanwhile (it held this name's lock).
        if self.is_known(key) {
            return Admission::Admit;
        }
        if !per_name.contains_key(name) {
            // Reserve a name slot; give it back when the limit is reached.
            if self.names.fetch_add(1, Ordering::Relaxed) >= self.max_metric_names {
                self.names.fetch_sub(1, Ordering::Relaxed);
                let first = !self.names_warned.swap(true, Ordering::Relaxed);
                return Admission::Drop { first };
            }
            per_name.insert(
                name.to_owned(),
                NameSeries {
                    series: 0,
                    warned: false,
                },
            );
        }
        let state = per_name.get_mut(name).unwrap_or_else(|| unreachable!("inserted above"));
        if state.series < self.max_series_per_metric {
            state.series += 1;
            self.known[shard(key.get_hash())]
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.clone());
            return Admission::Admit;
        }
        let first = !std::mem::replace(&mut state.warned, true);
        drop(per_name);
        let overflow: Vec<Label> = key
            .labels()
            .map(|l| Label::new(l.key().to_owned(), OVERFLOW_TAG_VALUE))
            .collect();
        Admission::Overflow {
            key: Key::from_parts(name.to_owned(), overflow),
            first,
        }
    }

    /// Tag sets admitted for `name` (at most the limit).
    pub(crate) fn series_count(&self, name: &str) -> usize {
        self.per_name[shard(self.hasher.hash_one(name))]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map_or(0, |s| s.series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, v: &str) -> Key {
        Key::from_parts(name.to_owned(), vec![Label::new("id", v.to_owned())])
    }

    #[test]
    fn series_past_the_limit_fold_into_one_overflow_series() {
        let limit = SeriesLimit::new(2, 10);
        assert!(matches!(limit.admit(&key("m", "a")), Admission::Admit));
        assert!(matches!(limit.admit(&key("m", "b")), Admission::Admit));
        assert!(matches!(limit.admit(&key("m", "a")), Admission::Admit));
        match limit.admit(&key("m", "c")) {
            Admission::Overflow { key, first } => {
                assert!(first);
                assert_eq!(key.name(), "m");
                assert_eq!(key.labels().next().unwrap().value(), OVERFLOW_TAG_VALUE);
            }
            _ => panic!("expected an overflow"),
        }
        assert!(matches!(
            limit.admit(&key("m", "d")),
            Admission::Overflow { first: false, .. }
        ));
        assert_eq!(limit.series_count("m"), 2);
        // Other metrics have their own limit.
        assert!(matches!(limit.admit(&key("n", "c")), Admission::Admit));
    }

    #[test]
    fn names_past_the_limit_are_dropped() {
        let limit = SeriesLimit::new(10, 2);
        assert!(matches!(limit.admit(&key("a", "1")), Admission::Admit));
        assert!(matches!(limit.admit(&key("b", "1")), Admission::Admit));
        assert!(matches!(limit.admit(&key("c", "1")), Admission::Drop { first: true }));
        assert!(matches!(limit.admit(&key("d", "1")), Admission::Drop { first: false }));
        // Known names keep working.
        assert!(matches!(limit.admit(&key("a", "2")), Admission::Admit));
        assert_eq!(limit.series_count("c"), 0);
    }

    #[test]
    fn series_whose_key_hashes_collide_are_still_told_apart() {
        let limit = SeriesLimit::new(1000, 10);
        let keys: Vec<Key> = (0..200).map(|i| key("m", &i.to_string())).collect();
        let mut hashes: Vec<u64> = keys.iter().map(Key::get_hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        for k in &keys {
            assert!(matches!(limit.admit(k), Admission::Admit));
        }
        assert_eq!(limit.series_count("m"), 200, "{} distinct key hashes", hashes.len());
    }

    #[test]
    fn concurrent_registrations_of_one_new_series_count_it_once() {
        let limit = SeriesLimit::new(1000, 10);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..200 {
                        assert!(matches!(limit.admit(&key("m", &i.to_string())), Admission::Admit));
                    }
                });
            }
        });
        assert_eq!(limit.series_count("m"), 200);
    }
}
