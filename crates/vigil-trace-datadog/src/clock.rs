//! Wall-clock times from a single monotonic clock read.
//!
//! A span's start must be a unix time, its duration monotonic. Reading both clocks for every
//! span costs two system-clock reads; instead the layer reads only [`Instant`] and converts
//! it with an offset to the wall clock that the sender thread refreshes each time it wakes
//! (at least every flush interval), so a step of the system clock shows within about a
//! second.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Converts [`Instant`]s to nanoseconds since the unix epoch.
#[derive(Debug)]
pub(crate) struct Clock {
    base: Instant,
    /// Unix nanoseconds at `base`, as of the last [`resync`](Self::resync).
    offset: AtomicI64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let clock = Clock {
            base: Instant::now(),
            offset: AtomicI64::new(0),
        };
        clock.resync();
        clock
    }

    /// Re-reads the wall clock.
    pub(crate) fn resync(&self) {
        let now = Instant::now();
        let wall = unix_nanos(SystemTime::now());
        self.offset
            .store(wall.saturating_sub(self.since_base(now)), Ordering::Relaxed);
    }

    fn since_base(&self, t: Instant) -> i64 {
        i64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(i64::MAX)
    }

    /// `t` in nanoseconds since the unix epoch.
    pub(crate) fn unix_nanos(&self, t: Instant) -> i64 {
        self.offset.load(Ordering::Relaxed).saturating_add(self.since_base(t))
    }
}

/// `t` in nanoseconds since the unix epoch (0 before it, saturating far after it).
pub(crate) fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn converts_instants_to_unix_time() {
        let clock = Clock::new();
        let before = unix_nanos(SystemTime::now());
        let t = clock.unix_nanos(Instant::now());
        let after = unix_nanos(SystemTime::now());
        // The two clocks may disagree by the time between their reads, never by seconds.
        let slack: i64 = 50_000_000; // 50 ms
        assert!(t >= before - slack && t <= after + slack, "{before} <= {t} <= {after}");
        let later = clock.unix_nanos(Instant::now() + Duration::from_secs(2));
        assert!(later - t >= 2_000_000_000);
    }

    #[test]
    fn saturates() {
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
