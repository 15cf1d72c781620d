//! Database telemetry for a driver other than sqlx: rusqlite (synchronous), with Vigil's
//! generic API — a `QueryTimer` per statement and a `PoolObserver` for a hand-made pool.
//!
//! ```text
//! cargo run -p examples --example db_generic
//! ```
//!
//! It prints the Prometheus text it produced: `database_query_total{source, operation}`,
//! `database_query_duration_seconds`, the pool gauges and the acquire times.

use std::sync::Mutex;
use std::time::Duration;

use vigil::config::{Config, MetricsBackendKind, Port};
use vigil::db::{PoolObserver, PoolState, QueryTimer};

/// Runs `sql` with `params` on `conn`, timed: the SQL names the source and the operation
/// (literals and parameters are never recorded).
fn execute(conn: &rusqlite::Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    let timer = QueryTimer::for_sql(sql);
    let result = conn.execute(sql, params);
    timer.finish();
    result
}

/// A one-connection "pool": what a driver without a pool of its own might have.
struct TinyPool {
    conn: Mutex<rusqlite::Connection>,
    observer: PoolObserver,
}

impl TinyPool {
    fn with<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> T) -> T {
        let attempt = self.observer.acquire_started();
        let conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        attempt.acquired();
        self.observer.record_state(PoolState {
            size: 1,
            idle: 0,
            max: 1,
        });
        let out = f(&conn);
        self.observer.record_state(PoolState {
            size: 1,
            idle: 1,
            max: 1,
        });
        out
    }
}

fn main() -> anyhow::Result<()> {
    // Prometheus only, on a free loopback port; no console lines for this demo.
    let mut config = Config::load()?;
    config.logger_backends.clear();
    config.metrics_backends = vec![MetricsBackendKind::Prometheus];
    "127.0.0.1".clone_into(&mut config.prometheus.host);
    config.prometheus.port = Port(0);
    let guard = vigil::Vigil::builder().config(config).install()?;

    let pool = TinyPool {
        conn: Mutex::new(rusqlite::Connection::open_in_memory()?),
        observer: PoolObserver::new("rusqlite"),
    };
    pool.with(|c| {
        execute(
            c,
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, video_id INTEGER, body TEXT)",
            [],
        )
    })?;
    for body in ["First!", "Nice video", "Thanks"] {
        pool.with(|c| execute(c, "INSERT INTO comments (video_id, body) VALUES (?1, ?2)", (1, body)))?;
    }
    pool.with(|c| execute(c, "UPDATE comments SET body = ?1 WHERE id = ?2", ("edited", 1)))?;
    let count: i64 = pool.with(|c| {
        let timer = QueryTimer::for_sql("SELECT count(*) FROM comments WHERE video_id = ?1");
        let n = c.query_row("SELECT count(*) FROM comments WHERE video_id = ?1", [1], |row| {
            row.get(0)
        });
        timer.finish();
        n
    })?;
    println!("{count} comments\n");

    let addr = guard.metrics_addr().expect("prometheus runs");
    let body = scrape(addr)?;
    for line in body
        .lines()
        .filter(|l| l.starts_with("database_") && !l.contains("_bucket"))
    {
        println!("{line}");
    }
    guard.shutdown(Duration::from_secs(1));
    Ok(())
}

/// `GET /metrics` with std only.
fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}
