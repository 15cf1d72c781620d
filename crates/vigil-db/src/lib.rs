//! Database telemetry for Vigil: query metrics with no per-query code for sqlx users, pool
//! metrics, slow-query warnings, and a small API for every other driver.
//!
//! Every query records `database.query.count` and `database.query.duration` (ms), tagged
//! `source` (the main table, `unknown` when it cannot be told) and `operation` (`select`,
//! `insert`, `update`, `delete`, `upsert`, `begin`, `commit`, ..., `other`, `unknown`). The
//! labels come from [`classify`], a tokenizer-based SQL classifier that never guesses and
//! never panics; slow queries are logged with [`normalize`]d text (literals replaced by `?`).
//!
//! - **sqlx** (feature `sqlx`, on by default): add [`SqlxQueryLayer`] to the `tracing`
//!   subscriber; it reads the event sqlx emits for every query. [`PoolMetrics`] samples an
//!   `sqlx::Pool` into gauges; [`PoolObserver::acquire`] times explicit acquires and
//!   [`PoolObserver::observe_error`] counts acquire timeouts. See [`SqlxQueryLayer`] for what
//!   you must switch on (a per-layer filter; sqlx's statement logging left on).
//! - **Any other driver**: [`QueryTimer`] (a guard recording on drop), [`instrument`] (a
//!   future wrapper), and [`PoolObserver`] for pool gauges, acquire times and timeouts.
//!
//! # With sqlx
//!
//! ```
//! # #[cfg(feature = "sqlx")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
//! use tracing_subscriber::prelude::*;
//! use vigil_db::{PoolMetrics, SqlxQueryLayer};
//!
//! // The layer needs sqlx's DEBUG events: give it its own per-layer filter, and the other
//! // layers theirs (no global level filter).
//! tracing_subscriber::registry().with(SqlxQueryLayer::new().filtered()).init();
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let pool = SqlitePoolOptions::new()
//!         .max_connections(1)
//!         .connect_with(SqliteConnectOptions::new().in_memory(true))
//!         .await?;
//!     PoolMetrics::new(&pool, "main").sample();
//!     sqlx::query("CREATE TABLE videos (id INTEGER PRIMARY KEY, title TEXT NOT NULL)")
//!         .execute(&pool)
//!         .await?; // database.query.count{source="videos", operation="create"} += 1
//!     sqlx::query("INSERT INTO videos (title) VALUES (?)").bind("Intro").execute(&pool).await?;
//!     Ok::<_, sqlx::Error>(())
//! })?;
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlx"))]
//! # fn main() {}
//! ```
//!
//! # With any other driver
//!
//! ```
//! use vigil_db::{Operation, PoolObserver, QueryTimer, instrument};
//!
//! # async fn demo() -> Result<(), std::io::Error> {
//! // A guard: records when dropped.
//! {
//!     let _timer = QueryTimer::start("videos", Operation::Select);
//!     // ... run the query ...
//! }
//! // A future wrapper: records when the query completes, or is cancelled.
//! let rows: Vec<u64> = instrument("comments", Operation::Select, async { Ok::<_, std::io::Error>(vec![]) }).await?;
//!
//! // Pool metrics.
//! let pool = PoolObserver::new("main");
//! let attempt = pool.acquire_started();
//! // ... wait for a connection ...
//! attempt.acquired();
//! # let _ = rows; Ok(()) }
//! ```

pub mod catalogue;
mod error;
mod pool;
mod sql;
#[cfg(feature = "sqlx")]
mod sqlx_layer;
#[cfg(feature = "sqlx")]
mod sqlx_pool;
mod timer;

pub use error::Error;
pub use pool::{AcquireAttempt, PoolObserver, PoolState};
pub use sql::{
    Classified, DEFAULT_STATEMENT_LEN, MAX_SOURCE_LEN, Operation, Source, UNKNOWN_SOURCE, classify, normalize,
};
#[cfg(feature = "sqlx")]
pub use sqlx_layer::{
    DEFAULT_SLOW_THRESHOLD, SLOW_QUERY_TARGET, SQLX_ACQUIRE_TARGET, SQLX_QUERY_TARGET, SqlxQueryLayer,
};
#[cfg(feature = "sqlx")]
pub use sqlx_pool::{DEFAULT_SAMPLE_INTERVAL, PoolMetrics, PoolMetricsTask};
pub use timer::{Instrumented, QueryTimer, instrument, instrument_sql};
