//! The generic query API for any driver: [`QueryTimer`] and [`instrument`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use vigil_core::catalogue::{DATABASE_QUERY_COUNT, DATABASE_QUERY_DURATION};
use vigil_core::handles::{self, Update};

use crate::sql::{Classified, Operation, Source, UNKNOWN_SOURCE, classify};

/// Records one query: `database.query.count` and `database.query.duration` (ms), tagged
/// `source` and `operation`, with one handle lookup.
pub(crate) fn record_query(source: &str, operation: Operation, elapsed: Duration, extra: Option<Update<'_>>) {
    let tags = [("source", source), ("operation", operation.as_str())];
    let count = Update::Increment(DATABASE_QUERY_COUNT.name, 1);
    let duration = Update::Histogram(DATABASE_QUERY_DURATION.name, elapsed.as_secs_f64() * 1000.0);
    match extra {
        None => handles::apply(&tags, &[count, duration]),
        Some(extra) => handles::apply(&tags, &[count, duration, extra]),
    }
}

/// Times one query of any driver and records it when dropped or [finished](Self::finish):
/// `database.query.count` and `database.query.duration` (ms), tagged `source` and
/// `operation`.
///
/// The source must be a bounded table name (1-64 characters of `[A-Za-z0-9_]`, lower-cased
/// for the label); anything else is recorded as `unknown`.
///
/// ```
/// use vigil_db::{Operation, QueryTimer};
///
/// fn load_user(id: u64) -> Option<String> {
///     let _timer = QueryTimer::start("users", Operation::Select);
///     // ... run the query with your driver; the timer records when it goes out of scope.
///     Some(format!("user {id}"))
/// }
/// # load_user(1);
///
/// // Or classify the SQL you are about to run:
/// let timer = QueryTimer::for_sql("UPDATE users SET name = $1 WHERE id = $2");
/// // ... run it ...
/// let took = timer.finish();
/// # let _ = took;
/// ```
#[derive(Debug)]
#[must_use = "the timer records when dropped; dropping it at once records a zero-length query"]
pub struct QueryTimer {
    source: Option<Source>,
    operation: Operation,
    start: Instant,
    armed: bool,
}

impl QueryTimer {
    /// Starts timing a query on `source` (a table name) of kind `operation`.
    pub fn start(source: &str, operation: Operation) -> Self {
        Self::from_classified(Classified {
            operation,
            source: Source::new(source),
        })
    }

    /// Starts timing `sql`, labelled by [`classify`].
    pub fn for_sql(sql: &str) -> Self {
        Self::from_classified(classify(sql))
    }

    /// Starts timing a query with labels already classified.
    pub fn from_classified(classified: Classified) -> Self {
        QueryTimer {
            source: classified.source,
            operation: classified.operation,
            start: Instant::now(),
            armed: true,
        }
    }

    /// The time since the timer started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records the query now and returns its duration.
    pub fn finish(mut self) -> Duration {
        self.record()
    }

    /// Drops the timer without recording anything.
    pub fn discard(mut self) {
        self.armed = false;
    }

    fn record(&mut self) -> Duration {
        let elapsed = self.start.elapsed();
        if std::mem::replace(&mut self.armed, false) {
            let source = self.source.as_ref().map_or(UNKNOWN_SOURCE, Source::as_str);
            record_query(source, self.operation, elapsed, None);
        }
        elapsed
    }
}

impl Drop for QueryTimer {
    fn drop(&mut self) {
        self.record();
    }
}

pin_project_lite::pin_project! {
    /// The future [`instrument`] returns: the query's future, timed.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F> {
        #[pin]
        inner: F,
        classified: Classified,
        timer: Option<QueryTimer>,
        done: bool,
    }
}

/// Wraps the future of one query of any driver so that it is recorded when it completes:
/// `database.query.count` and `database.query.duration` (ms), tagged `source` and
/// `operation`. Timing starts at the first poll. A query cancelled part-way (the future
/// dropped after its first poll and before completing) is recorded too, with the time until
/// it was dropped; a future never polled records nothing.
///
/// ```
/// use vigil_db::{Operation, instrument};
///
/// async fn delete_comment(id: i64) -> Result<u64, std::io::Error> {
///     instrument("comments", Operation::Delete, async move {
///         // ... your driver's call ...
///         Ok(1)
///     })
///     .await
/// }
/// ```
pub fn instrument<F: Future>(source: &str, operation: Operation, fut: F) -> Instrumented<F> {
    instrument_classified(
        Classified {
            operation,
            source: Source::new(source),
        },
        fut,
    )
}

/// [`instrument`] with labels from [`classify`]: `instrument_sql(sql, driver.query(sql))`.
pub fn instrument_sql<F: Future>(sql: &str, fut: F) -> Instrumented<F> {
    instrument_classified(classify(sql), fut)
}

fn instrument_classified<F: Future>(classified: Classified, fut: F) -> Instrumented<F> {
    Instrumented {
        inner: fut,
        classified,
        timer: None,
        done: false,
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !*this.done && this.timer.is_none() {
            *this.timer = Some(QueryTimer::from_classified(*this.classified));
        }
        let out = this.inner.poll(cx);
        if out.is_ready() {
            *this.done = true;
            if let Some(timer) = this.timer.take() {
                timer.finish();
            }
        }
        out
    }
}
