//! Properties of the SQL classifier and normaliser on any input, for
//! `tests/classify_props.rs` and the fuzz target `fuzz/fuzz_targets/sql_classifier.rs` (which
//! includes this file by path).

#![allow(dead_code)]

use vigil_db::{Classified, Operation, classify, normalize};

/// The `operation` label values.
const OPERATIONS: &[&str] = &[
    "select",
    "insert",
    "update",
    "delete",
    "upsert",
    "merge",
    "begin",
    "commit",
    "rollback",
    "savepoint",
    "release",
    "create",
    "alter",
    "drop",
    "truncate",
    "pragma",
    "set",
    "show",
    "explain",
    "call",
    "other",
    "unknown",
];

/// Checks `classify` and `normalize` on `sql`: bounded labels; the same classification
/// behind a leading comment or whitespace; a normalisation of at most `max_len` bytes that is
/// the full one, or a prefix of it ending in `…` when cut. Returns the first problem.
pub fn check_sql(sql: &str, max_len: usize) -> Result<(), String> {
    let c = classify(sql);
    if !OPERATIONS.contains(&c.operation.as_str()) {
        return Err(format!("operation {:?} for {sql:?}", c.operation));
    }
    let label = c.source_label();
    if label.is_empty()
        || label.len() > 64
        || !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("source label {label:?} for {sql:?}"));
    }
    for prefixed in [
        format!("/* lead */ {sql}"),
        format!("-- lead\n{sql}"),
        format!(" \n\t{sql}"),
        format!("/* /* nested */ */{sql}"),
    ] {
        let again = classify(&prefixed);
        if again != c {
            return Err(format!("{again:?} for {prefixed:?}, but {c:?} for {sql:?}"));
        }
    }
    let full = normalize(sql, usize::MAX);
    let cut = normalize(sql, max_len);
    if cut.len() > max_len {
        return Err(format!("normalize({sql:?}, {max_len}) is {} bytes: {cut:?}", cut.len()));
    }
    if full.len() <= max_len {
        if cut != full {
            return Err(format!(
                "normalize({sql:?}, {max_len}) is {cut:?}, not the whole {full:?}"
            ));
        }
    } else {
        let kept = cut.strip_suffix('…').unwrap_or(&cut);
        if !full.starts_with(kept) || (max_len >= '…'.len_utf8() && !cut.ends_with('…')) {
            return Err(format!(
                "normalize({sql:?}, {max_len}) is {cut:?}, not a cut of {full:?}"
            ));
        }
    }
    Ok(())
}

/// How a literal is written.
#[derive(Clone, Copy, Debug)]
pub enum LiteralStyle {
    /// `'...'`, a quote doubled.
    Quoted,
    /// `E'...'`, with backslash escapes.
    Escaped,
    /// `$q$...$q$`.
    Dollar,
}

/// `content` as a literal in `style`, or `None` when the style cannot hold it (a dollar
/// quote that contains its own tag).
pub fn literal(content: &str, style: LiteralStyle) -> Option<String> {
    match style {
        LiteralStyle::Quoted => Some(format!("'{}'", content.replace('\'', "''"))),
        LiteralStyle::Escaped => Some(format!("E'{}'", content.replace('\\', "\\\\").replace('\'', "\\'"))),
        LiteralStyle::Dollar => format!("{content}$q$")
            .find("$q$")
            .is_some_and(|i| i == content.len())
            .then(|| format!("$q${content}$q$")),
    }
}

/// Statements around one literal, with what they classify as.
const STATEMENTS: &[(&str, Operation)] = &[
    ("SELECT id FROM t WHERE a = {} ORDER BY id", Operation::Select),
    ("INSERT INTO t (a, b) VALUES ({}, 2)", Operation::Insert),
    ("UPDATE t SET a = {} WHERE id = 1", Operation::Update),
    ("DELETE FROM t WHERE a IN ({}, 'x')", Operation::Delete),
    (
        "INSERT INTO t (a) VALUES ({}) ON CONFLICT (a) DO UPDATE SET n = n + 1",
        Operation::Upsert,
    ),
];

/// Checks that a literal's text never matters: in every statement, `literal` (any SQL
/// literal) classifies as the statement does with `0` in its place, and normalises to the
/// same text. Returns the first problem.
pub fn check_literal(literal: &str) -> Result<(), String> {
    for (template, operation) in STATEMENTS {
        let sql = template.replace("{}", literal);
        let plain = template.replace("{}", "0");
        let c = classify(&sql);
        let want = Classified {
            operation: *operation,
            ..classify(&plain)
        };
        if c != want || c.source_label() != "t" {
            return Err(format!("{c:?} for {sql:?}, expected {operation:?} on t"));
        }
        let (got, want) = (normalize(&sql, usize::MAX), normalize(&plain, usize::MAX));
        if got != want {
            return Err(format!("normalize({sql:?}) is {got:?}, expected {want:?}"));
        }
        if let Some(c) = check_sql(&sql, 40).err() {
            return Err(c);
        }
    }
    Ok(())
}
