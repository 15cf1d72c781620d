//! Connection-pool metrics for any driver: [`PoolObserver`].

use std::time::{Duration, Instant};

use vigil_core::handles::{self, Update};

use crate::catalogue::{
    DATABASE_POOL_ACQUIRE_DURATION, DATABASE_POOL_ACQUIRE_TIMEOUTS, DATABASE_POOL_IDLE, DATABASE_POOL_IN_USE,
    DATABASE_POOL_MAX, DATABASE_POOL_SIZE,
};
use crate::sql::{Source, UNKNOWN_SOURCE};

/// The state of a connection pool at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open, idle or in use.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

impl PoolState {
    /// Connections in use: `size - idle`.
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// Records the metrics of one connection pool, tagged `pool` with a name you give, for any
/// driver:
///
/// - [`record_state`](Self::record_state): gauges `database.pool.size`, `.idle`, `.in_use`,
///   `.max`;
/// - [`acquire_started`](Self::acquire_started) then [`AcquireAttempt::acquired`] or
///   [`AcquireAttempt::timed_out`]: the histogram `database.pool.acquire.duration` (ms) and
///   the counter `database.pool.acquire.timeouts`.
///
/// Together these are what a "connection pool saturation" alert needs: `in_use / max` near 1,
/// acquire times growing, timeouts above zero.
///
/// ```
/// use vigil_db::{PoolObserver, PoolState};
///
/// let pool = PoolObserver::new("main");
/// pool.record_state(PoolState { size: 8, idle: 3, max: 10 });
///
/// let attempt = pool.acquire_started();
/// // ... wait for your driver's pool to hand out a connection ...
/// let waited = attempt.acquired(); // or attempt.timed_out() when the wait gave up
/// # let _ = waited;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolObserver {
    name: Option<Source>,
}

impl PoolObserver {
    /// An observer for the pool called `name` (1-64 characters of `[A-Za-z0-9_]`, lower-cased;
    /// anything else is recorded as `unknown`).
    pub fn new(name: &str) -> Self {
        PoolObserver {
            name: Source::new(name),
        }
    }

    /// The `pool` label value.
    pub fn name(&self) -> &str {
        self.name.as_ref().map_or(UNKNOWN_SOURCE, Source::as_str)
    }

    /// Sets the gauges `database.pool.size`, `database.pool.idle`, `database.pool.in_use` and
    /// `database.pool.max`.
    pub fn record_state(&self, state: PoolState) {
        handles::apply(
            &[("pool", self.name())],
            &[
                Update::GaugeSet(DATABASE_POOL_SIZE.name, f64::from(state.size)),
                Update::GaugeSet(DATABASE_POOL_IDLE.name, f64::from(state.idle)),
                Update::GaugeSet(DATABASE_POOL_IN_USE.name, f64::from(state.in_use())),
                Update::GaugeSet(DATABASE_POOL_MAX.name, f64::from(state.max)),
            ],
        );
    }

    /// Starts timing one wait for a connection. Finish it with [`AcquireAttempt::acquired`] or
    /// [`AcquireAttempt::timed_out`]; dropping it records nothing (the wait was abandoned).
    pub fn acquire_started(&self) -> AcquireAttempt {
        AcquireAttempt {
            pool: *self,
            start: Instant::now(),
        }
    }

    /// Records one wait for a connection that took `waited`, measured by the caller.
    pub fn record_acquire(&self, waited: Duration) {
        handles::histogram(
            DATABASE_POOL_ACQUIRE_DURATION.name,
            waited.as_secs_f64() * 1000.0,
            &[("pool", self.name())],
        );
    }

    /// Records one wait for a connection that timed out.
    pub fn record_timeout(&self) {
        handles::increment(DATABASE_POOL_ACQUIRE_TIMEOUTS.name, 1, &[("pool", self.name())]);
    }
}

/// One wait for a connection, from [`PoolObserver::acquire_started`].
#[derive(Debug)]
#[must_use = "call acquired() or timed_out() when the wait ends"]
pub struct AcquireAttempt {
    pool: PoolObserver,
    start: Instant,
}

impl AcquireAttempt {
    /// The wait succeeded: records its duration in `database.pool.acquire.duration` and
    /// returns it.
    pub fn acquired(self) -> Duration {
        let waited = self.start.elapsed();
        self.pool.record_acquire(waited);
        waited
    }

    /// The wait timed out: counts it in `database.pool.acquire.timeouts` (its duration is not
    /// recorded in the histogram, which holds successful waits only) and returns it.
    pub fn timed_out(self) -> Duration {
        self.pool.record_timeout();
        self.start.elapsed()
    }
}
