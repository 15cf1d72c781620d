//! The bounded set of event names a channel reports.
//!
//! An open-addressing table of write-once slots: lookups are lock-free and allocation-free
//! (a hash, then usually one comparison); a name is only learned under a mutex, at most
//! `capacity` times in the channel's life. Slots are never removed, so a reader that sees an
//! empty slot where a name is being inserted merely takes the slow path and finds it there.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::classify::OTHER;

/// One slot of the table: the name's hash and the name, written once.
type Slot = OnceLock<(u64, Box<str>)>;

pub(crate) struct EventSet {
    /// Power-of-two sized, at least twice `capacity`, so a probe always meets an empty slot.
    slots: Box<[Slot]>,
    mask: usize,
    len: AtomicUsize,
    /// The most names the set holds.
    capacity: usize,
    /// Whether names not yet known are learned (until `capacity`), or are `other`.
    learning: bool,
    insert: Mutex<()>,
    hasher: foldhash::fast::RandomState,
}

impl EventSet {
    fn with_capacity(capacity: usize, learning: bool) -> Self {
        let size = capacity.saturating_mul(2).max(1).next_power_of_two();
        EventSet {
            slots: (0..size).map(|_| OnceLock::new()).collect(),
            mask: size - 1,
            len: AtomicUsize::new(0),
            capacity,
            learning,
            insert: Mutex::new(()),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// A set that learns up to `capacity` names at run time.
    pub(crate) fn learning(capacity: usize) -> Self {
        Self::with_capacity(capacity, true)
    }

    /// A fixed set of `names` (already validated); no other name is ever reported.
    pub(crate) fn allow_list<'n>(names: impl ExactSizeIterator<Item = &'n str>) -> Self {
        let set = Self::with_capacity(names.len(), true);
        for name in names {
            set.learn(name);
        }
        EventSet { learning: false, ..set }
    }

    #[allow(clippy::cast_possible_truncation)] // only the low bits index the table
    fn start(&self, hash: u64) -> usize {
        (hash as usize) & self.mask
    }

    fn find(&self, hash: u64, name: &str) -> Option<&str> {
        let mut i = self.start(hash);
        loop {
            match self.slots[i].get() {
                None => return None,
                Some((h, stored)) if *h == hash && **stored == *name => return Some(stored),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
    }

    /// The stored copy of `name`, learning it if there is room; `other` otherwise.
    pub(crate) fn resolve(&self, name: &str) -> &str {
        let hash = self.hasher.hash_one(name);
        if let Some(stored) = self.find(hash, name) {
            return stored;
        }
        if !self.learning || self.len.load(Ordering::Acquire) >= self.capacity {
            return OTHER;
        }
        self.learn(name).unwrap_or(OTHER)
    }

    fn learn(&self, name: &str) -> Option<&str> {
        let hash = self.hasher.hash_one(name);
        let _lock = self.insert.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stored) = self.find(hash, name) {
            return Some(stored);
        }
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            return None;
        }
        let mut i = self.start(hash);
        while self.slots[i].get().is_some() {
            i = (i + 1) & self.mask;
        }
        let slot = &self.slots[i];
        let _ = slot.set((hash, name.into()));
        self.len.fetch_add(1, Ordering::Release);
        slot.get().map(|(_, stored)| &**stored)
    }

    /// The names known so far, sorted.
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.slots.iter().filter_map(|s| s.get().map(|(_, n)| &**n)).collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn is_learning(&self) -> bool {
        self.learning
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_up_to_the_capacity_then_answers_other() {
        let set = EventSet::learning(3);
        assert_eq!(set.resolve("a"), "a");
        assert_eq!(set.resolve("b"), "b");
        assert_eq!(set.resolve("a"), "a");
        assert_eq!(set.resolve("c"), "c");
        assert_eq!(set.resolve("d"), OTHER);
        assert_eq!(set.resolve("c"), "c");
        assert_eq!(set.names(), ["a", "b", "c"]);
    }

    #[test]
    fn a_zero_capacity_learns_nothing() {
        let set = EventSet::learning(0);
        assert_eq!(set.resolve("a"), OTHER);
        assert!(set.names().is_empty());
    }

    #[test]
    fn an_allow_list_never_learns() {
        let set = EventSet::allow_list(["x", "y", "x"].into_iter());
        assert_eq!(set.resolve("x"), "x");
        assert_eq!(set.resolve("y"), "y");
        assert_eq!(set.resolve("z"), OTHER);
        assert_eq!(set.names(), ["x", "y"]);
        assert!(!set.is_learning());
    }

    #[test]
    fn many_names_and_threads() {
        let set = EventSet::learning(1024);
        std::thread::scope(|s| {
            for t in 0..4 {
                let set = &set;
                s.spawn(move || {
                    for i in 0..1500 {
                        let name = format!("e{}", (i * 7 + t) % 1500);
                        let got = set.resolve(&name);
                        assert!(got == name || got == OTHER);
                    }
                });
            }
        });
        let names = set.names();
        assert_eq!(names.len(), 1024);
        for name in names {
            assert_eq!(set.resolve(name), name);
        }
    }
}
