//! The comments store: SQLite through sqlx.

use serde::Serialize;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// A video that comments belong to.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Video {
    pub id: i64,
    pub title: String,
}

/// A comment on a video.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Comment {
    pub id: i64,
    pub video_id: i64,
    pub user_id: i64,
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Opens (creating if needed) the database at `url`: `sqlite::memory:` or a file path.
pub async fn open(url: &str) -> anyhow::Result<SqlitePool> {
    let pool = if url == "sqlite::memory:" {
        // An in-memory database belongs to one connection: the pool keeps exactly that one.
        SqlitePoolOptions::new()
            .acquire_time_level(log::LevelFilter::Debug)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(quiet(SqliteConnectOptions::new().in_memory(true)))
            .await?
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?
    };
    migrate(&pool).await?;
    Ok(pool)
}

/// sqlx logs slow statements itself at WARN with their literals; Vigil's query layer logs
/// them normalised instead (`DB_SLOW_QUERY_MS`), so sqlx's own copy goes to DEBUG.
fn quiet(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options.log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1))
}

async fn migrate(pool: &SqlitePool) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS videos (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS comments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            video_id INTEGER NOT NULL REFERENCES videos(id),
            user_id INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS comments_by_video ON comments(video_id, id)")
        .execute(pool)
        .await?;
    for (id, title) in [
        (1, "Welcome to Vigil"),
        (2, "Realtime servers in Rust"),
        (3, "Observability 101"),
    ] {
        sqlx::query("INSERT OR IGNORE INTO videos (id, title) VALUES (?, ?)")
            .bind(id)
            .bind(title)
            .execute(pool)
            .await?;
    }
    Ok(())
}

pub async fn videos(pool: &SqlitePool) -> sqlx::Result<Vec<Video>> {
    sqlx::query_as("SELECT id, title FROM videos ORDER BY id")
        .fetch_all(pool)
        .await
}

pub async fn video_exists(pool: &SqlitePool, video_id: i64) -> sqlx::Result<bool> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM videos WHERE id = ?")
        .bind(video_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

pub async fn comments(pool: &SqlitePool, video_id: i64, limit: i64) -> sqlx::Result<Vec<Comment>> {
    sqlx::query_as(
        "SELECT id, video_id, user_id, body, created_at FROM comments WHERE video_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(video_id)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map(|mut rows| {
        rows.reverse();
        rows
    })
}

pub async fn insert_comment(pool: &SqlitePool, video_id: i64, user_id: i64, body: &str) -> sqlx::Result<Comment> {
    let created_at = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    sqlx::query_as(
        "INSERT INTO comments (video_id, user_id, body, created_at) VALUES (?, ?, ?, ?)
         RETURNING id, video_id, user_id, body, created_at",
    )
    .bind(video_id)
    .bind(user_id)
    .bind(body)
    .bind(created_at)
    .fetch_one(pool)
    .await
}

/// Counts to `rows` with a recursive CTE: deliberately slow (its cost grows with `rows`), for
/// `/debug/slow_query/{rows}`.
pub async fn slow_count(pool: &SqlitePool, rows: i64) -> sqlx::Result<i64> {
    let (count,): (i64,) = sqlx::query_as(
        "WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < ?) \
         SELECT count(*) FROM counter",
    )
    .bind(rows)
    .fetch_one(pool)
    .await?;
    Ok(count)
}
