//! Pool metrics for `sqlx::Pool`: [`PoolMetrics`] and [`PoolObserver::acquire`].

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};

use crate::Error;
use crate::pool::{PoolObserver, PoolState};

/// How often [`PoolMetrics::spawn`] samples by default: every 5 seconds.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Samples an `sqlx::Pool` (any database) into the gauges `database.pool.size`, `.idle`,
/// `.in_use` and `.max`, tagged `pool`: once with [`sample`](Self::sample), or every few
/// seconds from a tokio task with [`spawn`](Self::spawn).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use vigil_db::{DEFAULT_SAMPLE_INTERVAL, PoolMetrics};
///
/// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let sampler = PoolMetrics::new(&pool, "main").spawn(DEFAULT_SAMPLE_INTERVAL)?;
/// // ... the gauges are updated every 5 s until `sampler` is dropped or the pool is closed.
/// # drop(sampler);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PoolMetrics<DB: Database> {
    pool: Pool<DB>,
    observer: PoolObserver,
}

impl<DB: Database> Clone for PoolMetrics<DB> {
    fn clone(&self) -> Self {
        PoolMetrics {
            pool: self.pool.clone(),
            observer: self.observer,
        }
    }
}

impl<DB: Database> PoolMetrics<DB> {
    /// A sampler of `pool`, tagged `pool=name` (see [`PoolObserver::new`]).
    pub fn new(pool: &Pool<DB>, name: &str) -> Self {
        PoolMetrics {
            pool: pool.clone(),
            observer: PoolObserver::new(name),
        }
    }

    /// The observer recording this pool's metrics, for [`PoolObserver::acquire`].
    pub fn observer(&self) -> PoolObserver {
        self.observer
    }

    /// The pool's state now.
    pub fn state(&self) -> PoolState {
        PoolState {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Samples the pool once, setting the gauges.
    pub fn sample(&self) {
        self.observer.record_state(self.state());
    }

    /// Samples the pool now and then every `interval` from a task on the current tokio
    /// runtime, until the returned [`PoolMetricsTask`] is dropped or stopped, or the pool is
    /// closed.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] outside a tokio runtime, [`Error::ZeroInterval`] for a zero
    /// `interval`.
    pub fn spawn(self, interval: Duration) -> Result<PoolMetricsTask, Error>
    where
        DB: 'static,
    {
        if interval.is_zero() {
            return Err(Error::ZeroInterval);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let handle = runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if self.pool.is_closed() {
                    self.observer.record_state(PoolState::default());
                    return;
                }
                self.sample();
            }
        });
        Ok(PoolMetricsTask { handle })
    }
}

/// The task of [`PoolMetrics::spawn`]; dropping it stops the sampling.
#[derive(Debug)]
#[must_use = "dropping the task stops the sampling at once"]
pub struct PoolMetricsTask {
    handle: tokio::task::JoinHandle<()>,
}

impl PoolMetricsTask {
    /// Stops the sampling.
    pub fn stop(self) {}

    /// Whether the task ended (the pool was closed, or the runtime shut down).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl Drop for PoolMetricsTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl PoolObserver {
    /// `pool.acquire()`, timed: records `database.pool.acquire.duration` on success and counts
    /// `database.pool.acquire.timeouts` when sqlx gives up waiting (`Error::PoolTimedOut`).
    ///
    /// For code that acquires connections explicitly. Queries run on `&Pool` acquire inside
    /// sqlx, out of reach: their acquire times come from sqlx's own acquire events (see
    /// [`SqlxQueryLayer`](crate::SqlxQueryLayer)), and their timeouts from the errors they
    /// return (see [`observe_error`](Self::observe_error)). Use one source of acquire times
    /// per pool, not both, or explicit acquires are counted twice.
    ///
    /// # Errors
    ///
    /// The error of `pool.acquire()`.
    pub async fn acquire<DB: Database>(&self, pool: &Pool<DB>) -> Result<PoolConnection<DB>, sqlx::Error> {
        let attempt = self.acquire_started();
        let result = pool.acquire().await;
        match &result {
            Ok(_) => {
                attempt.acquired();
            }
            Err(sqlx::Error::PoolTimedOut) => {
                attempt.timed_out();
            }
            Err(_) => {}
        }
        result
    }

    /// Counts an acquire timeout if `error` is one (`sqlx::Error::PoolTimedOut`), and says
    /// whether it was. Call it where your code handles query errors (for example in
    /// `impl From<sqlx::Error> for ApiError`): sqlx reports a query's failed acquire only
    /// through the error it returns.
    pub fn observe_error(&self, error: &sqlx::Error) -> bool {
        let timed_out = matches!(error, sqlx::Error::PoolTimedOut);
        if timed_out {
            self.record_timeout();
        }
        timed_out
    }
}
