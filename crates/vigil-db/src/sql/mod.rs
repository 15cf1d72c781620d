//! SQL classification (operation and main table, for metric labels) and normalisation (for
//! slow-query logs), on a hand-written tokenizer. Both are total: any input, however broken,
//! gives a result, and neither panics.

mod lexer;

use std::fmt;

use lexer::{Kind, Lexer, Token};

/// The `operation` label of a statement: what kind of statement it is.
///
/// Every value is a static string ([`Operation::as_str`]), so the label set is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `SELECT` (also a `WITH ... SELECT`).
    Select,
    /// `INSERT`, including `INSERT ... ON CONFLICT DO NOTHING` and `INSERT OR IGNORE`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// An insert that may update an existing row: `INSERT ... ON CONFLICT ... DO UPDATE`,
    /// `INSERT ... ON DUPLICATE KEY UPDATE`, `INSERT OR REPLACE`, `REPLACE INTO`.
    Upsert,
    /// `MERGE` (it may insert, update and delete).
    Merge,
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`.
    Commit,
    /// `ROLLBACK` (also `ROLLBACK TO SAVEPOINT`), `ABORT`.
    Rollback,
    /// `SAVEPOINT`.
    Savepoint,
    /// `RELEASE [SAVEPOINT]`.
    Release,
    /// `CREATE ...`.
    Create,
    /// `ALTER ...`.
    Alter,
    /// `DROP ...`.
    Drop,
    /// `TRUNCATE`.
    Truncate,
    /// `PRAGMA` (SQLite).
    Pragma,
    /// `SET`.
    Set,
    /// `SHOW`.
    Show,
    /// `EXPLAIN`.
    Explain,
    /// `CALL`, `EXEC`, `EXECUTE`.
    Call,
    /// A recognised SQL statement of another kind (`VACUUM`, `ANALYZE`, `GRANT`, `COPY`,
    /// `LOCK`, `VALUES`, ...).
    Other,
    /// Not recognisable as a statement: empty, a comment only, or not SQL.
    Unknown,
}

impl Operation {
    /// The label value: `select`, `insert`, ..., `other`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Select => "select",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Upsert => "upsert",
            Operation::Merge => "merge",
            Operation::Begin => "begin",
            Operation::Commit => "commit",
            Operation::Rollback => "rollback",
            Operation::Savepoint => "savepoint",
            Operation::Release => "release",
            Operation::Create => "create",
            Operation::Alter => "alter",
            Operation::Drop => "drop",
            Operation::Truncate => "truncate",
            Operation::Pragma => "pragma",
            Operation::Set => "set",
            Operation::Show => "show",
            Operation::Explain => "explain",
            Operation::Call => "call",
            Operation::Other => "other",
            Operation::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest source label, in bytes.
pub const MAX_SOURCE_LEN: usize = 64;

/// The label value used when the source is not known.
pub const UNKNOWN_SOURCE: &str = "unknown";

/// The `source` label of a statement: its main table, without schema or quotes, lower-cased;
/// at most [`MAX_SOURCE_LEN`] bytes of `[a-z0-9_]`. Stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    bytes: [u8; MAX_SOURCE_LEN],
    len: u8,
}

impl Source {
    /// A source label from a table name: lower-cased; `None` unless it is 1 to
    /// [`MAX_SOURCE_LEN`] bytes of ASCII letters, digits and `_`.
    ///
    /// ```
    /// use vigil_db::Source;
    ///
    /// assert_eq!(Source::new("Comments").unwrap().as_str(), "comments");
    /// assert!(Source::new("user list").is_none());
    /// ```
    pub fn new(name: &str) -> Option<Source> {
        if name.is_empty() || name.len() > MAX_SOURCE_LEN {
            return None;
        }
        let mut bytes = [0u8; MAX_SOURCE_LEN];
        for (slot, b) in bytes.iter_mut().zip(name.bytes()) {
            if !(b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            *slot = b.to_ascii_lowercase();
        }
        Some(Source {
            bytes,
            len: u8::try_from(name.len()).ok()?,
        })
    }

    /// The label value.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or(UNKNOWN_SOURCE)
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`classify`] found: the operation and, when it is certain, the main table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Classified {
    /// The kind of statement.
    pub operation: Operation,
    /// The main table, when the statement names one and it could be told for certain.
    pub source: Option<Source>,
}

impl Classified {
    /// The `source` label value: the table, or `"unknown"`.
    pub fn source_label(&self) -> &str {
        self.source.as_ref().map_or(UNKNOWN_SOURCE, Source::as_str)
    }

    const UNKNOWN: Classified = Classified {
        operation: Operation::Unknown,
        source: None,
    };
}

/// How many CTE levels and CTE-to-CTE references are followed before giving up.
const MAX_DEPTH: usize = 4;
/// How many CTEs of one `WITH` are remembered.
const MAX_CTES: usize = 8;

/// Classifies a SQL statement: its [`Operation`] and its main table ([`Source`]).
///
/// - Comments (`--`, nested `/* */`), string literals (`'..'` with `''`, `E'..'`, `X'..'`,
///   `$$..$$`, `$tag$..$tag$`) and quoted identifiers (`".."`, `` `..` ``, `[..]`) are
///   understood, so keywords inside them are never mistaken for the statement's own.
/// - The operation is the first keyword's; `WITH` CTEs are skipped and the main statement
///   decides. When the main statement reads from a CTE, the source is the table the CTE
///   reads from (followed through up to four CTEs), else unknown.
/// - The source is the table after `FROM` (`SELECT`, `DELETE`; with joins the first table),
///   `INTO` (`INSERT`, `REPLACE`, `MERGE`), `UPDATE`, or the object of `CREATE`/`ALTER`/`DROP`
///   `TABLE`/`VIEW`, `TRUNCATE`, and the table of `CREATE INDEX ... ON`. A schema-qualified
///   name keeps only the table (`public.users` → `users`); quotes are removed and the name is
///   lower-cased. A subquery, a table function (`FROM generate_series(..)`), or a name that
///   is not 1-64 characters of `[A-Za-z0-9_]` gives no source.
/// - Upserts are [`Operation::Upsert`]; an insert that ignores conflicts stays an insert.
/// - In a string of several statements, the first decides.
/// - Anything unclear gives [`Operation::Unknown`] and no source: it never guesses.
///
/// ```
/// use vigil_db::{Operation, classify};
///
/// let c = classify("/* list */ WITH recent AS (SELECT * FROM app.comments ORDER BY id DESC LIMIT 10)
///                   SELECT * FROM recent JOIN users ON users.id = recent.user_id");
/// assert_eq!((c.operation, c.source_label()), (Operation::Select, "comments"));
///
/// let c = classify(r#"INSERT INTO "Videos" (id, title) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET title = $2"#);
/// assert_eq!((c.operation, c.source_label()), (Operation::Upsert, "videos"));
///
/// assert_eq!(classify("not sql at all").operation, Operation::Unknown);
/// ```
pub fn classify(sql: &str) -> Classified {
    classify_depth(sql, 0)
}

fn classify_depth(sql: &str, depth: usize) -> Classified {
    let mut p = Parser::new(sql);
    // Empty statements (`;;`) are skipped; a leading `(` (a parenthesised query) gives the
    // operation but no source.
    let mut parenthesised = false;
    let first = loop {
        match p.next() {
            None => return Classified::UNKNOWN,
            Some(t) if t.is_punct(b';') => {}
            Some(t) if t.is_punct(b'(') => parenthesised = true,
            Some(t) => break t,
        }
    };
    let mut c = statement(&mut p, first, sql, depth);
    if parenthesised {
        c.source = None;
    }
    c
}

/// A token stream with the parenthesis depth relative to the statement's start.
struct Parser<'a> {
    lexer: Lexer<'a>,
    depth: usize,
    peeked: Peeked<'a>,
}

/// The lookahead of [`Parser`].
#[derive(Clone, Copy)]
enum Peeked<'a> {
    /// Nothing read ahead.
    Nothing,
    /// The next token.
    Token(Token<'a>),
    /// The end of the input.
    End,
}

impl<'a> Parser<'a> {
    fn new(sql: &'a str) -> Self {
        Parser {
            lexer: Lexer::new(sql),
            depth: 0,
            peeked: Peeked::Nothing,
        }
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let t = match std::mem::replace(&mut self.peeked, Peeked::Nothing) {
            Peeked::Token(t) => t,
            Peeked::End => return None,
            Peeked::Nothing => self.lexer.next()?,
        };
        match t.kind {
            Kind::Punct(b'(') => self.depth += 1,
            Kind::Punct(b')') => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Some(t)
    }

    fn peek(&mut self) -> Option<Token<'a>> {
        if let Peeked::Nothing = self.peeked {
            self.peeked = self.lexer.next().map_or(Peeked::End, Peeked::Token);
        }
        match self.peeked {
            Peeked::Token(t) => Some(t),
            Peeked::Nothing | Peeked::End => None,
        }
    }

    /// Consumes the next token if it is the keyword `kw`.
    fn eat(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.is(kw)) {
            self.next();
            true
        } else {
            false
        }
    }

    /// Consumes the next token if it is any of `kws`.
    fn eat_any(&mut self, kws: &[&str]) -> bool {
        let hit = self.peek().is_some_and(|t| kws.iter().any(|k| t.is(k)));
        if hit {
            self.next();
        }
        hit
    }

    /// Consumes tokens up to and including the `)` closing the `(` just consumed.
    fn skip_group(&mut self) {
        let target = self.depth.saturating_sub(1);
        while let Some(t) = self.next() {
            if t.is_punct(b')') && self.depth == target {
                return;
            }
        }
    }

    /// Consumes tokens of this statement until the keyword `kw` at depth 0; `false` at the end
    /// of the statement.
    fn find_top_level(&mut self, kw: &str) -> bool {
        while let Some(t) = self.next() {
            if self.depth == 0 {
                if t.is_punct(b';') {
                    return false;
                }
                if t.is(kw) {
                    return true;
                }
            }
        }
        false
    }
}

/// An object name: `name`, `schema.name`, `db.schema.name`, quoted or not. Returns the last
/// part (quotes removed), unless a `(` follows and `allow_paren` is false (a table function).
fn object_name<'a>(p: &mut Parser<'a>, allow_paren: bool) -> Option<&'a str> {
    let mut last = name_part(p.next()?)?;
    while p.peek().is_some_and(|t| t.is_punct(b'.')) {
        p.next();
        last = name_part(p.next()?)?;
    }
    if !allow_paren && p.peek().is_some_and(|t| t.is_punct(b'(')) {
        return None;
    }
    Some(last)
}

/// Keywords that cannot be a table name where one is expected.
const NOT_A_NAME: &[&str] = &[
    "select", "values", "lateral", "where", "set", "on", "using", "join", "default", "table", "from", "into",
];

fn name_part(t: Token<'_>) -> Option<&str> {
    match t.kind {
        Kind::Word if NOT_A_NAME.iter().any(|k| t.is(k)) => None,
        Kind::Word => Some(t.text),
        Kind::QuotedIdent => {
            let inner = t
                .text
                .strip_prefix("U&")
                .or_else(|| t.text.strip_prefix("u&"))
                .unwrap_or(t.text);
            let inner = inner
                .get(1..inner.len().saturating_sub(1))
                .filter(|_| inner.len() >= 2)?;
            Some(inner)
        }
        _ => None,
    }
}

fn source(name: Option<&str>) -> Option<Source> {
    name.and_then(Source::new)
}

/// Statement keywords outside the named operations: [`Operation::Other`].
const OTHER_STATEMENTS: &[&str] = &[
    "analyze",
    "analyse",
    "attach",
    "checkpoint",
    "close",
    "cluster",
    "comment",
    "copy",
    "deallocate",
    "declare",
    "describe",
    "desc",
    "detach",
    "discard",
    "do",
    "fetch",
    "grant",
    "handler",
    "import",
    "listen",
    "load",
    "lock",
    "move",
    "notify",
    "optimize",
    "prepare",
    "refresh",
    "reindex",
    "rename",
    "reset",
    "revoke",
    "security",
    "table",
    "unlisten",
    "use",
    "vacuum",
    "values",
];

fn statement<'a>(p: &mut Parser<'a>, first: Token<'a>, sql: &'a str, depth: usize) -> Classified {
    if first.kind != Kind::Word {
        return Classified::UNKNOWN;
    }
    let kw = first.text;
    let is = |k: &str| kw.eq_ignore_ascii_case(k);
    if is("with") {
        return with(p, sql, depth);
    }
    let (operation, name) = if is("select") {
        (
            Operation::Select,
            if p.find_top_level("from") {
                object_name(p, false)
            } else {
                None
            },
        )
    } else if is("insert") {
        insert(p)
    } else if is("replace") {
        p.eat("into");
        (Operation::Upsert, object_name(p, true))
    } else if is("update") {
        if p.eat("or") {
            p.next();
        }
        p.eat_any(&["low_priority", "ignore"]);
        p.eat("ignore");
        p.eat("only");
        (Operation::Update, object_name(p, false))
    } else if is("delete") {
        p.eat_any(&["low_priority", "quick", "ignore"]);
        p.eat_any(&["quick", "ignore"]);
        p.eat("ignore");
        let name = if p.eat("from") {
            p.eat("only");
            object_name(p, false)
        } else {
            None
        };
        (Operation::Delete, name)
    } else if is("merge") {
        p.eat("into");
        (Operation::Merge, object_name(p, false))
    } else if is("begin") || (is("start") && p.eat("transaction")) {
        (Operation::Begin, None)
    } else if is("commit") || is("end") {
        (Operation::Commit, None)
    } else if is("rollback") || is("abort") {
        (Operation::Rollback, None)
    } else if is("savepoint") {
        (Operation::Savepoint, None)
    } else if is("release") {
        (Operation::Release, None)
    } else if is("create") {
        (Operation::Create, create(p))
    } else if is("alter") || is("drop") {
        let op = if is("alter") { Operation::Alter } else { Operation::Drop };
        let name = if p.eat_any(&["table", "view"]) || (p.eat("materialized") && p.eat("view")) {
            if p.eat("if") {
                p.eat("not");
                p.eat("exists");
            }
            p.eat("only");
            object_name(p, false)
        } else {
            None
        };
        (op, name)
    } else if is("truncate") {
        p.eat("table");
        p.eat("only");
        (Operation::Truncate, object_name(p, false))
    } else if is("pragma") {
        (Operation::Pragma, None)
    } else if is("set") {
        (Operation::Set, None)
    } else if is("show") {
        (Operation::Show, None)
    } else if is("explain") {
        (Operation::Explain, None)
    } else if is("call") || is("exec") || is("execute") {
        (Operation::Call, None)
    } else if OTHER_STATEMENTS.iter().any(|k| is(k)) {
        (Operation::Other, None)
    } else {
        return Classified::UNKNOWN;
    };
    Classified {
        operation,
        source: source(name),
    }
}

fn insert<'a>(p: &mut Parser<'a>) -> (Operation, Option<&'a str>) {
    let mut operation = Operation::Insert;
    if p.eat("or") {
        if p.peek().is_some_and(|t| t.is("replace")) {
            operation = Operation::Upsert;
        }
        p.next();
    }
    // MySQL modifiers.
    while p.eat_any(&["low_priority", "delayed", "high_priority", "ignore"]) {}
    p.eat("into");
    let name = object_name(p, true);
    if operation == Operation::Insert && upsert_clause(p) {
        operation = Operation::Upsert;
    }
    (operation, name)
}

/// After an INSERT's table: whether an `ON CONFLICT ... DO UPDATE` or `ON DUPLICATE KEY
/// UPDATE` clause follows (at the top level).
fn upsert_clause(p: &mut Parser<'_>) -> bool {
    while p.find_top_level("on") {
        if p.eat("duplicate") {
            return true;
        }
        if p.eat("conflict") {
            if p.find_top_level("do") {
                return p.eat("update");
            }
            return false;
        }
    }
    false
}

fn create<'a>(p: &mut Parser<'a>) -> Option<&'a str> {
    if p.eat("or") {
        p.eat("replace");
    }
    while p.eat_any(&[
        "temp",
        "temporary",
        "global",
        "local",
        "unlogged",
        "unique",
        "virtual",
        "materialized",
        "recursive",
    ]) {}
    if p.eat_any(&["table", "view"]) {
        if p.eat("if") {
            p.eat("not");
            p.eat("exists");
        }
        object_name(p, true)
    } else if p.eat("index") {
        if p.find_top_level("on") {
            p.eat("only");
            object_name(p, true)
        } else {
            None
        }
    } else {
        None
    }
}

/// `WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (body) [, ...] main-statement`.
fn with<'a>(p: &mut Parser<'a>, sql: &'a str, depth: usize) -> Classified {
    if depth >= MAX_DEPTH {
        return Classified::UNKNOWN;
    }
    p.eat("recursive");
    let mut ctes: [(&str, &str); MAX_CTES] = [("", ""); MAX_CTES];
    let mut count = 0usize;
    let mut overflow = false;
    loop {
        let Some(name) = p.next().and_then(name_part) else {
            return Classified::UNKNOWN;
        };
        if p.peek().is_some_and(|t| t.is_punct(b'(')) {
            p.next();
            p.skip_group();
        }
        if !p.eat("as") {
            return Classified::UNKNOWN;
        }
        p.eat("not");
        p.eat("materialized");
        match p.next() {
            Some(t) if t.is_punct(b'(') => {}
            _ => return Classified::UNKNOWN,
        }
        let body_start = p.lexer.position();
        p.skip_group();
        let body_end = p.lexer.position().saturating_sub(1).max(body_start);
        let body = sql.get(body_start..body_end).unwrap_or("");
        if count < MAX_CTES {
            ctes[count] = (name, body);
            count += 1;
        } else {
            overflow = true;
        }
        if !p.peek().is_some_and(|t| t.is_punct(b',')) {
            break;
        }
        p.next();
    }
    let Some(first) = p.next() else {
        return Classified::UNKNOWN;
    };
    if first.is("with") {
        return Classified::UNKNOWN;
    }
    let mut c = statement(p, first, sql, depth + 1);
    // A main statement reading from a CTE: follow it to the table the CTE reads from.
    let ctes = &ctes[..count];
    let is_cte = |s: &Source| ctes.iter().any(|(n, _)| n.eq_ignore_ascii_case(s.as_str()));
    let mut hops = 0;
    while let Some(s) = c.source.filter(|s| is_cte(s)) {
        hops += 1;
        if hops > MAX_DEPTH {
            c.source = None;
            break;
        }
        let body = ctes
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(s.as_str()))
            .map_or("", |(_, b)| *b);
        c.source = classify_depth(body, depth + 1).source;
    }
    if overflow && c.source.is_some() {
        // A CTE we did not remember may have the same name.
        c.source = None;
    }
    c
}

/// The default length limit of [`normalize`] used for slow-query logs, in bytes.
pub const DEFAULT_STATEMENT_LEN: usize = 1024;

/// Normalises a statement for logs: literals (strings, numbers, hex and bit strings,
/// dollar-quoted strings) become `?`, an `IN` list of literals becomes `IN (?)`, comments are
/// removed, whitespace is collapsed to single spaces, and the result is cut to at most
/// `max_len` bytes (at a char boundary, ending in `…` when cut).
///
/// Bind parameters (`$1`, `?`, `:name`) are kept as written: their values are not in the SQL
/// text. Keywords, identifiers, `TRUE`, `FALSE` and `NULL` are kept.
///
/// ```
/// use vigil_db::normalize;
///
/// let sql = "SELECT * FROM users -- by mail\n WHERE email = 'ann@example.com' AND id IN (1, 2, 3) AND org = $1";
/// assert_eq!(normalize(sql, 200), "SELECT * FROM users WHERE email = ? AND id IN (?) AND org = $1");
/// assert_eq!(normalize(sql, 20), "SELECT * FROM use…");
/// ```
pub fn normalize(sql: &str, max_len: usize) -> String {
    let mut out = String::with_capacity(sql.len().min(max_len.saturating_add(4)));
    let mut lexer = Lexer::new(sql);
    while let Some(t) = lexer.next() {
        if out.len() > max_len {
            break;
        }
        if t.gap_before && !out.is_empty() {
            out.push(' ');
        }
        if t.is("in") {
            // `IN (lit, lit, ...)` → `IN (?)`.
            let mut ahead = lexer.clone();
            if let Some(open) = in_list_of_literals(&mut ahead) {
                out.push_str(t.text);
                if open.gap_before {
                    out.push(' ');
                }
                out.push_str("(?)");
                lexer = ahead;
                continue;
            }
        }
        if t.kind.is_literal() {
            out.push('?');
        } else {
            out.push_str(t.text);
        }
    }
    truncate(&mut out, max_len);
    out
}

/// After `IN`: consumes `( literal [, literal]* )` and returns the `(` token, or `None`.
fn in_list_of_literals<'a>(lexer: &mut Lexer<'a>) -> Option<Token<'a>> {
    let open = lexer.next().filter(|t| t.is_punct(b'('))?;
    loop {
        let value = lexer.next()?;
        let value = if value.is_punct(b'-') || value.is_punct(b'+') {
            lexer.next()?
        } else {
            value
        };
        if !value.kind.is_literal() {
            return None;
        }
        match lexer.next()? {
            t if t.is_punct(b',') => {}
            t if t.is_punct(b')') => return Some(open),
            _ => return None,
        }
    }
}

fn truncate(s: &mut String, max_len: usize) {
    const ELLIPSIS: &str = "…";
    if s.len() <= max_len {
        return;
    }
    let mut cut = max_len.saturating_sub(ELLIPSIS.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    if max_len >= ELLIPSIS.len() {
        s.push_str(ELLIPSIS);
    }
}
