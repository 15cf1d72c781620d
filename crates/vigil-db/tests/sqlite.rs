//! sqlx against real SQLite: query metrics from sqlx's events, slow-query warnings, pool
//! gauges, acquire times and timeouts.

#![cfg(feature = "sqlx")]

mod common;

use std::time::Duration;

use common::{EVENT_POOL, Observed, eventually, run};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Row as _};
use vigil_core::OwnedValue;
use vigil_db::{PoolMetrics, PoolObserver, PoolState};

/// Connection options as the layer's docs recommend: sqlx's slow-statement warning (which
/// carries the raw SQL) logged at DEBUG, so only this layer sees it.
fn connect_options() -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .in_memory(true)
        .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
}

/// An in-memory database: one connection, kept for the pool's life.
async fn memory_pool() -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(connect_options())
        .await
        .unwrap()
}

async fn schema(pool: &SqlitePool) {
    sqlx::query("CREATE TABLE videos (id INTEGER PRIMARY KEY, title TEXT NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE main.comments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            video_id INTEGER NOT NULL REFERENCES videos(id),
            body TEXT NOT NULL
        )",
    )
    .execute(pool)
    .await
    .unwrap();
}

fn field<'a>(r: &'a vigil_core::CapturedRecord, name: &str) -> &'a OwnedValue {
    r.field(name).unwrap_or_else(|| panic!("no field {name} in {r:?}"))
}

/// Runs 15 statements of every kind (see the expectations below).
async fn run_one_of_each(pool: &SqlitePool) {
    schema(pool).await;
    for title in ["Intro", "Rust", "SQL"] {
        sqlx::query("INSERT INTO videos (title) VALUES (?)")
            .bind(title)
            .execute(pool)
            .await
            .unwrap();
    }
    let id: i64 = sqlx::query_scalar("INSERT INTO comments (video_id, body) VALUES (?, ?) RETURNING id")
        .bind(1)
        .bind("first!")
        .fetch_one(pool)
        .await
        .unwrap();
    let rows =
        sqlx::query("SELECT c.body, v.title FROM \"comments\" c JOIN videos v ON v.id = c.video_id WHERE v.id = ?")
            .bind(1)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    sqlx::query("UPDATE comments SET body = ? WHERE id = ?")
        .bind("edited")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar(
        "/* recent */ WITH recent AS (SELECT * FROM comments ORDER BY id DESC LIMIT 10) SELECT count(*) FROM recent",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
    sqlx::query("INSERT INTO videos (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = excluded.title")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM comments WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    // Explicit transaction statements are queries like any other...
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("UPDATE videos SET title = upper(title)")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    // ...but sqlx-sqlite runs `Transaction` begin/commit without a query event.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT id FROM videos").fetch_all(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    drop(conn);
}

#[test]
fn every_query_is_counted_by_source_and_operation() {
    let seen = run(|o: Observed| async move {
        let pool = memory_pool().await;
        let before = o.total_queries(); // connecting runs sqlx-sqlite's PRAGMA statements
        run_one_of_each(&pool).await;
        let expected_total = before + 15;
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            eventually("every query event", || o.total_queries() >= expected_total),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            o.total_queries(),
            expected_total,
            "before={before} {:?}",
            o.query_counts()
        );
        pool.close().await;
    });

    let expect = |source: &str, operation: &str, n: u64| {
        assert_eq!(
            seen.queries(source, operation),
            n,
            "{source}/{operation}: {:#?}",
            seen.query_counts()
        );
        let durations = seen.metrics.histogram_values(
            "database.query.duration",
            &[("source", source), ("operation", operation)],
        );
        assert_eq!(durations.len(), usize::try_from(n).unwrap(), "one duration per query");
        assert!(durations.iter().all(|d| d.is_finite() && *d >= 0.0));
    };
    expect("videos", "create", 1);
    expect("comments", "create", 1);
    expect("videos", "insert", 3);
    expect("comments", "insert", 1);
    expect("comments", "select", 2);
    expect("comments", "update", 1);
    expect("videos", "upsert", 1);
    expect("comments", "delete", 1);
    expect("unknown", "begin", 1);
    expect("videos", "update", 1);
    expect("unknown", "commit", 1);
    expect("videos", "select", 1);
    expect("unknown", "pragma", 1); // sqlx-sqlite's connection set-up
    // The console pipeline (at INFO) saw none of sqlx's DEBUG query events.
    assert!(seen.logs_of("sqlx::query").is_empty());
    assert_eq!(
        seen.metrics.counter(
            "database.query.slow",
            &[("source", "comments"), ("operation", "select")]
        ),
        None
    );
}

#[test]
fn a_slow_query_logs_one_normalised_warning_without_values() {
    let seen = run(|o: Observed| async move {
        o.layer.set_slow_threshold(Duration::from_millis(40));
        let pool = memory_pool().await;
        schema(&pool).await;
        sqlx::query("INSERT INTO videos (id, title) VALUES (1, 'public')")
            .execute(&pool)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let row = sqlx::query(
            "WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < 3000000)
             SELECT count(*) AS n FROM videos JOIN cnt ON cnt.x <> videos.id
             WHERE videos.title <> 'secret-literal' AND videos.id <> ?",
        )
        .bind(987_654_321_i64)
        .fetch_one(&pool)
        .await
        .unwrap();
        let took = started.elapsed();
        assert_eq!(row.get::<i64, _>("n"), 2_999_999);
        assert!(took >= Duration::from_millis(40), "the slow query took only {took:?}");
        eventually("the slow-query warning", || !o.logs_of("vigil::db").is_empty()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.close().await;
    });

    let warnings = seen.logs_of("vigil::db");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w.level, vigil_core::Level::Warning);
    assert_eq!(w.message, "slow query");
    assert_eq!(field(w, "source"), &OwnedValue::Str("videos".into()));
    assert_eq!(field(w, "operation"), &OwnedValue::Str("select".into()));
    let OwnedValue::F64(ms) = field(w, "duration_ms") else {
        panic!("duration_ms: {w:?}")
    };
    assert!(*ms >= 40.0);
    let OwnedValue::Str(statement) = field(w, "statement") else {
        panic!("statement: {w:?}")
    };
    assert_eq!(
        &**statement,
        "WITH RECURSIVE cnt(x) AS (SELECT ? UNION ALL SELECT x + ? FROM cnt WHERE x < ?) \
         SELECT count(*) AS n FROM videos JOIN cnt ON cnt.x <> videos.id \
         WHERE videos.title <> ? AND videos.id <> ?"
    );
    for secret in ["3000000", "secret-literal", "987654321", "public"] {
        assert!(!statement.contains(secret), "{secret} leaked: {statement}");
    }
    let tags = [("source", "videos"), ("operation", "select")];
    assert_eq!(seen.metrics.counter("database.query.slow", &tags), Some(1));
    assert_eq!(seen.metrics.counter("database.query.count", &tags), Some(1));
    // No other query was slow, and sqlx's own raw-SQL warning stayed at DEBUG.
    assert_eq!(
        seen.metrics
            .counters()
            .iter()
            .filter(|((n, _), _)| n == "database.query.slow")
            .count(),
        1
    );
    assert!(seen.logs_of("sqlx::query").is_empty());
}

#[test]
fn pool_gauges_follow_connections() {
    let seen = run(|o: Observed| async move {
        let pool = SqlitePoolOptions::new()
            .max_connections(3)
            .min_connections(0)
            .connect_with(connect_options())
            .await
            .unwrap();
        let metrics = PoolMetrics::new(&pool, "Main");
        let gauges = |o: &Observed| {
            let g = |name: &str| o.metrics.gauge_value(name, &[("pool", "main")]);
            (
                g("database.pool.size"),
                g("database.pool.idle"),
                g("database.pool.in_use"),
                g("database.pool.max"),
            )
        };

        let a = pool.acquire().await.unwrap();
        let b = pool.acquire().await.unwrap();
        metrics.sample();
        assert_eq!(
            metrics.state(),
            PoolState {
                size: 2,
                idle: 0,
                max: 3
            }
        );
        assert_eq!(gauges(&o), (Some(2.0), Some(0.0), Some(2.0), Some(3.0)));

        drop(a);
        eventually("the connection back in the pool", || pool.num_idle() == 1).await;
        let task = metrics.clone().spawn(Duration::from_millis(10)).unwrap();
        eventually("the sampler", || gauges(&o).1 == Some(1.0)).await;
        assert_eq!(gauges(&o), (Some(2.0), Some(1.0), Some(1.0), Some(3.0)));

        // Dropping the task stops the sampling.
        drop(task);
        drop(b);
        eventually("both connections idle", || pool.num_idle() == 2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gauges(&o).1, Some(1.0), "sampled after the task was dropped");

        // A sampler stops by itself when the pool closes, leaving zeros.
        let task = metrics.spawn(Duration::from_millis(10)).unwrap();
        pool.close().await;
        eventually("the sampler to end", || task.is_finished()).await;
        assert_eq!(gauges(&o), (Some(0.0), Some(0.0), Some(0.0), Some(0.0)));
    });
    assert!(
        seen.metrics
            .gauge_value("database.pool.max", &[("pool", "main")])
            .is_some()
    );
}

#[test]
fn spawn_needs_a_runtime_and_an_interval() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = rt.block_on(memory_pool());
    let metrics = PoolMetrics::new(&pool, "main");
    assert_eq!(
        metrics.clone().spawn(Duration::from_secs(1)).unwrap_err(),
        vigil_db::Error::NoRuntime
    );
    let _enter = rt.enter();
    assert_eq!(
        metrics.spawn(Duration::ZERO).unwrap_err(),
        vigil_db::Error::ZeroInterval
    );
}

#[test]
fn acquire_times_come_from_sqlx_acquire_events() {
    let seen = run(|o: Observed| async move {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_time_level(log::LevelFilter::Debug)
            .connect_with(connect_options())
            .await
            .unwrap();
        let waits = || {
            o.metrics
                .histogram_values("database.pool.acquire.duration", &[("pool", EVENT_POOL)])
                .len()
        };
        let before = waits(); // connecting acquires once, to check the connection
        for _ in 0..3 {
            sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        }
        assert_eq!(waits(), before + 3, "one per query's acquire");
        pool.close().await;
    });
    let waits = seen
        .metrics
        .histogram_values("database.pool.acquire.duration", &[("pool", EVENT_POOL)]);
    assert!(waits.iter().all(|w| w.is_finite() && *w >= 0.0));
}

#[test]
fn acquire_timeouts_are_counted() {
    let seen = run(|_o: Observed| async move {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(30))
            .connect_with(connect_options())
            .await
            .unwrap();
        let observer = PoolObserver::new("explicit");
        let held = observer.acquire(&pool).await.unwrap();
        // An explicit acquire while the only connection is out times out...
        assert!(matches!(observer.acquire(&pool).await, Err(sqlx::Error::PoolTimedOut)));
        // ...and so does a query's own acquire, seen through its error.
        let error = sqlx::query("SELECT 1").execute(&pool).await.unwrap_err();
        assert!(observer.observe_error(&error));
        assert!(!observer.observe_error(&sqlx::Error::RowNotFound));
        drop(held);
        let again = observer.acquire(&pool).await.unwrap();
        drop(again);
        pool.close().await;
    });
    let tags = [("pool", "explicit")];
    assert_eq!(seen.metrics.counter("database.pool.acquire.timeouts", &tags), Some(2));
    assert_eq!(
        seen.metrics
            .histogram_values("database.pool.acquire.duration", &tags)
            .len(),
        2
    );
    // sqlx's default acquire_time_level is off: no acquire events without it.
    assert!(
        seen.metrics
            .histogram_values("database.pool.acquire.duration", &[("pool", EVENT_POOL)])
            .is_empty()
    );
}

#[test]
fn a_plain_connection_is_measured_too() {
    let seen = run(|o: Observed| async move {
        let mut conn = connect_options().connect().await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1), (2)")
            .execute(&mut conn)
            .await
            .unwrap();
        eventually("two queries", || o.total_queries() >= 2).await;
        conn.close().await.unwrap();
    });
    assert_eq!(seen.queries("t", "create"), 1);
    assert_eq!(seen.queries("t", "insert"), 1);
}
