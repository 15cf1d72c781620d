//! The classifier and the normaliser on a table of cases covering every construct they
//! handle.

use vigil_db::{Operation, classify, normalize};

use Operation::*;

#[track_caller]
fn check(sql: &str, operation: Operation, source: &str) {
    let c = classify(sql);
    assert_eq!(
        (c.operation, c.source_label()),
        (operation, source),
        "classify({sql:?})"
    );
}

#[test]
fn basic_statements() {
    let cases: &[(&str, Operation, &str)] = &[
        ("SELECT id, title FROM videos ORDER BY id", Select, "videos"),
        ("select * from Videos where id = ?", Select, "videos"),
        ("SELECT 1", Select, "unknown"),
        (
            "SELECT count(*) FROM comments c JOIN videos v ON v.id = c.video_id",
            Select,
            "comments",
        ),
        ("SELECT * FROM a, b WHERE a.id = b.id", Select, "a"),
        (
            "SELECT (SELECT max(id) FROM other) AS m, extract(year FROM ts) FROM events",
            Select,
            "events",
        ),
        ("SELECT * FROM (SELECT * FROM t) AS sub", Select, "unknown"),
        ("SELECT * FROM generate_series(1, 10)", Select, "unknown"),
        ("SELECT * FROM LATERAL f(x)", Select, "unknown"),
        (
            "INSERT INTO comments (video_id, body) VALUES (?, ?)",
            Insert,
            "comments",
        ),
        (
            "INSERT INTO comments(video_id) VALUES ($1) RETURNING id, created_at",
            Insert,
            "comments",
        ),
        ("INSERT INTO archive SELECT * FROM comments", Insert, "archive"),
        (
            "INSERT OR IGNORE INTO videos (id, title) VALUES (?, ?)",
            Insert,
            "videos",
        ),
        ("INSERT IGNORE INTO videos VALUES (1)", Insert, "videos"),
        ("INSERT videos VALUES (1)", Insert, "videos"),
        ("UPDATE comments SET body = ? WHERE id = ?", Update, "comments"),
        ("UPDATE ONLY comments SET body = ?", Update, "comments"),
        ("UPDATE OR REPLACE comments SET body = ?", Update, "comments"),
        ("DELETE FROM comments WHERE id = ?", Delete, "comments"),
        ("DELETE FROM ONLY comments", Delete, "comments"),
        ("DELETE comments FROM comments JOIN x", Delete, "unknown"),
        (
            "MERGE INTO stock USING deliveries d ON stock.item = d.item WHEN MATCHED THEN UPDATE SET n = n + d.n",
            Merge,
            "stock",
        ),
    ];
    for (sql, op, source) in cases {
        check(sql, *op, source);
    }
}

#[test]
fn upserts() {
    check(
        "INSERT INTO videos (id, title) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET title = excluded.title",
        Upsert,
        "videos",
    );
    check(
        "INSERT INTO videos (id) VALUES ($1) ON CONFLICT DO NOTHING",
        Insert,
        "videos",
    );
    check(
        "INSERT INTO videos (id) VALUES (?) ON CONFLICT (id) DO NOTHING RETURNING id",
        Insert,
        "videos",
    );
    check(
        "INSERT INTO videos (id, n) VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + 1",
        Upsert,
        "videos",
    );
    check("INSERT OR REPLACE INTO videos (id) VALUES (1)", Upsert, "videos");
    check("REPLACE INTO videos (id) VALUES (1)", Upsert, "videos");
    // `ON` inside the inserted SELECT is not an upsert clause.
    check("INSERT INTO a SELECT * FROM b JOIN c ON b.id = c.id", Insert, "a");
}

#[test]
fn transactions_and_other_statements() {
    let cases: &[(&str, Operation)] = &[
        ("BEGIN", Begin),
        ("BEGIN IMMEDIATE TRANSACTION", Begin),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", Begin),
        ("COMMIT", Commit),
        ("END", Commit),
        ("ROLLBACK", Rollback),
        ("ROLLBACK TO SAVEPOINT sp1", Rollback),
        ("SAVEPOINT sp1", Savepoint),
        ("RELEASE SAVEPOINT sp1", Release),
        ("PRAGMA foreign_keys = ON", Pragma),
        ("SET search_path TO app", Set),
        ("SHOW server_version", Show),
        ("EXPLAIN SELECT * FROM t", Explain),
        ("CALL refresh_stats()", Call),
        ("VACUUM", Other),
        ("ANALYZE comments", Other),
        ("GRANT SELECT ON t TO bob", Other),
        ("VALUES (1), (2)", Other),
        ("", Unknown),
        ("   ", Unknown),
        ("-- only a comment", Unknown),
        ("/* only a comment */", Unknown),
        ("hello world", Unknown),
        ("42", Unknown),
        ("'a string'", Unknown),
        ("START something", Unknown),
    ];
    for (sql, op) in cases {
        check(sql, *op, "unknown");
    }
}

#[test]
fn ddl() {
    check(
        "CREATE TABLE IF NOT EXISTS videos (id INTEGER PRIMARY KEY)",
        Create,
        "videos",
    );
    check("CREATE TEMP TABLE scratch AS SELECT 1", Create, "scratch");
    check(
        "CREATE OR REPLACE VIEW recent AS SELECT * FROM comments",
        Create,
        "recent",
    );
    check(
        "CREATE UNIQUE INDEX IF NOT EXISTS comments_by_video ON comments(video_id, id)",
        Create,
        "comments",
    );
    check(
        "CREATE INDEX CONCURRENTLY i ON ONLY app.comments (id)",
        Create,
        "comments",
    );
    check("CREATE VIRTUAL TABLE docs USING fts5(body)", Create, "docs");
    check(
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 FROM t $$ LANGUAGE sql",
        Create,
        "unknown",
    );
    check("ALTER TABLE comments ADD COLUMN edited INTEGER", Alter, "comments");
    check(
        "ALTER TABLE IF EXISTS ONLY app.comments RENAME TO notes",
        Alter,
        "comments",
    );
    check("DROP TABLE IF EXISTS videos", Drop, "videos");
    check("DROP INDEX comments_by_video", Drop, "unknown");
    check("TRUNCATE TABLE comments", Truncate, "comments");
    check("TRUNCATE comments RESTART IDENTITY", Truncate, "comments");
}

#[test]
fn schema_qualified_and_quoted_names() {
    check("SELECT * FROM public.users", Select, "users");
    check("SELECT * FROM db.app.users", Select, "users");
    check(r#"SELECT * FROM "app"."Users" u"#, Select, "users");
    check("SELECT * FROM `shop`.`orders`", Select, "orders");
    check("SELECT * FROM [dbo].[Orders]", Select, "orders");
    check(r#"INSERT INTO "Video Comments" (a) VALUES (1)"#, Insert, "unknown");
    check(r#"SELECT "from" FROM "select""#, Select, "select");
    check("UPDATE app . users SET a = 1", Update, "users");
    let long = "a".repeat(65);
    check(&format!("SELECT * FROM {long}"), Select, "unknown");
    check(&format!("SELECT * FROM {}", "b".repeat(64)), Select, &"b".repeat(64));
    check("SELECT * FROM café", Select, "unknown");
    check("SELECT * FROM users.", Select, "unknown");
}

#[test]
fn comments_and_literals_hide_keywords() {
    check("/* DELETE FROM x */ SELECT * FROM videos", Select, "videos");
    check("-- UPDATE x\nSELECT * FROM videos", Select, "videos");
    check("/* nested /* comment */ DELETE */ SELECT 1 FROM t", Select, "t");
    check("SELECT 'FROM fake' AS x FROM real_table", Select, "real_table");
    check("SELECT 'it''s FROM fake' FROM real_table", Select, "real_table");
    check(r"SELECT E'\' FROM fake' FROM real_table", Select, "real_table");
    check("SELECT $$ FROM fake $$ FROM real_table", Select, "real_table");
    check(
        "SELECT $body$ it's FROM fake $$ $body$ FROM real_table",
        Select,
        "real_table",
    );
    check(r#"SELECT "FROM" FROM real_table"#, Select, "real_table");
    check("SELECT a /* FROM fake */ FROM /* x */ real_table", Select, "real_table");
    check(
        "SELECT x::text FROM t WHERE y = :name AND z = @p AND w = ?1",
        Select,
        "t",
    );
}

#[test]
fn ctes_classify_the_main_statement() {
    check(
        "WITH recent AS (SELECT * FROM comments ORDER BY id DESC LIMIT 10) SELECT * FROM recent",
        Select,
        "comments",
    );
    check(
        "WITH r AS (SELECT 1) SELECT * FROM videos JOIN r ON true",
        Select,
        "videos",
    );
    check(
        "WITH a AS (SELECT * FROM app.t1), b (x) AS MATERIALIZED (SELECT x FROM a) SELECT * FROM b",
        Select,
        "t1",
    );
    check(
        "WITH moved AS (DELETE FROM inbox RETURNING *) INSERT INTO archive SELECT * FROM moved",
        Insert,
        "archive",
    );
    check(
        "WITH x AS (SELECT 1) UPDATE videos SET n = (SELECT * FROM x)",
        Update,
        "videos",
    );
    check(
        "WITH x AS (SELECT 1) DELETE FROM videos WHERE id IN (SELECT * FROM x)",
        Delete,
        "videos",
    );
    check(
        "WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < 100) SELECT count(*) FROM cnt",
        Select,
        "unknown",
    );
    check("WITH x AS (SELECT 1)", Unknown, "unknown");
    check("WITH AS (SELECT 1) SELECT 1", Unknown, "unknown");
    check("WITH x (SELECT 1) SELECT 1", Unknown, "unknown");
    check("WITH x AS (SELECT 1) WITH y AS (SELECT 2) SELECT 1", Unknown, "unknown");
}

#[test]
fn multi_statement_strings_are_decided_by_the_first() {
    check("CREATE TABLE a (x INT); CREATE TABLE b (y INT);", Create, "a");
    check(";; SELECT * FROM t; DELETE FROM u", Select, "t");
    check("BEGIN; UPDATE t SET a = 1; COMMIT;", Begin, "unknown");
    check("SELECT * FROM t WHERE a = ';DELETE FROM u'", Select, "t");
    check("(SELECT a FROM t) UNION (SELECT a FROM u)", Select, "unknown");
}

#[test]
fn normalize_strips_literals_and_collapses() {
    let cases: &[(&str, &str)] = &[
        (
            "SELECT * FROM t WHERE a = 'x' AND b = 42",
            "SELECT * FROM t WHERE a = ? AND b = ?",
        ),
        ("SELECT * FROM t WHERE a IN (1, 2, 3)", "SELECT * FROM t WHERE a IN (?)"),
        (
            "SELECT * FROM t WHERE a IN ('a','b') AND c in (-1, +2.5)",
            "SELECT * FROM t WHERE a IN (?) AND c in (?)",
        ),
        (
            "SELECT * FROM t WHERE a IN ($1, $2)",
            "SELECT * FROM t WHERE a IN ($1, $2)",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = 1)",
            "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = ?)",
        ),
        (
            "SELECT  *\n\tFROM t -- comment 'x'\n WHERE /* 5 */ a = $1",
            "SELECT * FROM t WHERE a = $1",
        ),
        (
            "SELECT x'ff', X'00', b'101', N'ab', E'a\\'b', U&'d', 0x1F, 1.5e-3, .5",
            "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?",
        ),
        ("SELECT $$secret$$, $t$ also 'secret' $t$", "SELECT ?, ?"),
        (
            "SELECT \"col 1\", `c2`, [c3] FROM t1",
            "SELECT \"col 1\", `c2`, [c3] FROM t1",
        ),
        (
            "SELECT TRUE, FALSE, NULL, a::int, arr[1] FROM t",
            "SELECT TRUE, FALSE, NULL, a::int, arr[?] FROM t",
        ),
        (
            "UPDATE t SET a = :value, b = @other, c = ?3",
            "UPDATE t SET a = :value, b = @other, c = ?3",
        ),
        ("SELECT 'unterminated secret", "SELECT ?"),
        (
            "INSERT INTO t VALUES (1,'a'),(2,'b')",
            "INSERT INTO t VALUES (?,?),(?,?)",
        ),
        ("", ""),
        ("/* nothing */", ""),
    ];
    for (sql, want) in cases {
        assert_eq!(normalize(sql, 1000), *want, "normalize({sql:?})");
    }
}

#[test]
fn normalize_truncates_at_a_char_boundary() {
    let sql = "SELECT * FROM t WHERE name = 'x' AND label = 'é' AND title = 'ééééé' AND ééé = 1";
    for max in 0..90 {
        let out = normalize(sql, max);
        assert!(out.len() <= max, "{max}: {out:?}");
        if max >= 3 && out.len() < normalize(sql, 1000).len() {
            assert!(out.ends_with('…'), "{max}: {out:?}");
        }
    }
    assert_eq!(normalize("SELECT ééé FROM t", 10), "SELECT …");
}
