//! Properties of the classifier and the normaliser: total on any input, literals never
//! survive normalisation, and classification ignores comments and whitespace.

#[path = "common/sql_check.rs"]
mod sql_check;

use proptest::prelude::*;
use sql_check::{LiteralStyle, check_literal, check_sql};
use vigil_db::{Operation, classify, normalize};

/// Fragments that stress the tokenizer: quotes, comment markers, dollar tags, brackets.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("'".to_owned()),
        Just("''".to_owned()),
        Just("\"".to_owned()),
        Just("`".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("$$".to_owned()),
        Just("$a$".to_owned()),
        Just("$1".to_owned()),
        Just("$".to_owned()),
        Just("E'".to_owned()),
        Just("U&'".to_owned()),
        Just("U&\"".to_owned()),
        Just("\\".to_owned()),
        Just("--".to_owned()),
        Just("/*".to_owned()),
        Just("*/".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(";".to_owned()),
        Just(",".to_owned()),
        Just(".".to_owned()),
        Just("::".to_owned()),
        Just(":n".to_owned()),
        Just("?".to_owned()),
        Just("0x".to_owned()),
        Just("1e".to_owned()),
        Just("é".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        prop::sample::select(vec![
            "SELECT",
            "FROM",
            "WITH",
            "RECURSIVE",
            "AS",
            "INSERT",
            "INTO",
            "UPDATE",
            "DELETE",
            "ON",
            "CONFLICT",
            "DO",
            "DUPLICATE",
            "CREATE",
            "INDEX",
            "TABLE",
            "IF",
            "NOT",
            "EXISTS",
            "IN",
            "OR",
            "REPLACE",
            "MATERIALIZED",
        ])
        .prop_map(str::to_owned),
        "[a-z_][a-z0-9_]{0,8}",
        "[0-9]{1,4}",
        "\\PC{0,3}",
    ]
}

fn sqlish() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

/// A literal with a marker that cannot appear in the rest of a generated statement.
#[derive(Clone, Debug)]
enum Literal {
    Int(u32),
    Decimal(u32, u32),
    Str(String),
    DollarStr(String),
    EscapeStr(String),
    Hex(u32),
}

impl Literal {
    fn sql(&self) -> String {
        match self {
            Literal::Int(n) => format!("{}", 700_000 + n),
            Literal::Decimal(a, b) => format!("{}.{}", 800_000 + a, 900_000 + b),
            Literal::Str(s) => format!("'zqx{}'", s.replace('\'', "''")),
            Literal::DollarStr(s) => format!("$body$zqx{s}$body$"),
            Literal::EscapeStr(s) => format!("E'zqx{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            Literal::Hex(n) => format!("X'{:08X}'", 0xA000_0000 | n),
        }
    }

    /// Text that must not survive normalisation.
    fn markers(&self) -> Vec<String> {
        match self {
            Literal::Int(n) => vec![format!("{}", 700_000 + n)],
            Literal::Decimal(a, b) => vec![format!("{}", 800_000 + a), format!("{}", 900_000 + b)],
            Literal::Str(_) | Literal::DollarStr(_) | Literal::EscapeStr(_) => vec!["zqx".to_owned(), "'".to_owned()],
            Literal::Hex(n) => vec![format!("{:08X}", 0xA000_0000 | n)],
        }
    }
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        (0u32..99_999).prop_map(Literal::Int),
        (0u32..99_999, 0u32..99_999).prop_map(|(a, b)| Literal::Decimal(a, b)),
        "[a-z' ;$\\\\-]{0,12}".prop_map(Literal::Str),
        "[a-z' ;\\\\-]{0,12}".prop_map(Literal::DollarStr),
        "[a-z' ;\\\\-]{0,12}".prop_map(Literal::EscapeStr),
        (0u32..0x0FFF_FFFF).prop_map(Literal::Hex),
    ]
}

const TABLES: &[&str] = &["videos", "comments", "app.users", "\"Orders\"", "`events`"];

/// Generated statements as token lists (joined by separators later), with the expected
/// operation and source.
fn statement() -> impl Strategy<Value = (Vec<String>, Vec<Literal>, Operation, &'static str)> {
    let table = prop::sample::select(TABLES);
    (table, prop::collection::vec(literal(), 1..4), 0usize..6).prop_map(|(table, lits, kind)| build(table, lits, kind))
}

/// Tokens from a space-separated template, `{}` standing for the next value.
fn tokens(template: &str, table: &str, values: &mut impl Iterator<Item = String>) -> Vec<String> {
    template
        .split_whitespace()
        .map(|w| match w {
            "{}" => values.next().unwrap_or_else(|| "0".to_owned()),
            "{t}" => table.to_owned(),
            w => w.to_owned(),
        })
        .collect()
}

fn build(table: &'static str, lits: Vec<Literal>, kind: usize) -> (Vec<String>, Vec<Literal>, Operation, &'static str) {
    let source = match table {
        "app.users" => "users",
        "\"Orders\"" => "orders",
        "`events`" => "events",
        t => t,
    };
    let values: Vec<String> = lits.iter().map(Literal::sql).collect();
    let list = vec!["{}"; values.len()].join(" , ");
    let mut v = values.iter().cloned();
    let (template, operation) = match kind {
        0 => (
            format!("SELECT a , b FROM {{t}} WHERE a IN ( {list} )"),
            Operation::Select,
        ),
        1 => (
            format!("INSERT INTO {{t}} VALUES ( {list} ) RETURNING id"),
            Operation::Insert,
        ),
        2 => (
            format!("UPDATE {{t}} SET c = ( {list} ) WHERE d = 1"),
            Operation::Update,
        ),
        3 => (
            format!("DELETE FROM {{t}} WHERE x NOT IN ( {list} )"),
            Operation::Delete,
        ),
        4 => (
            format!("WITH recent AS ( SELECT * FROM {{t}} WHERE y IN ( {list} ) ) SELECT * FROM recent"),
            Operation::Select,
        ),
        _ => (
            format!("INSERT INTO {{t}} ( id ) VALUES ( {list} ) ON CONFLICT ( id ) DO UPDATE SET n = n + 1"),
            Operation::Upsert,
        ),
    };
    (tokens(&template, table, &mut v), lits, operation, source)
}

/// What may separate two tokens: whitespace and comments, which may hold anything but the
/// end of the comment.
fn separator() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ".to_owned()),
        Just("\n\t ".to_owned()),
        "[a-z 0-9'\"`;$()]{0,10}".prop_map(|c| format!(" /* {c} */ ")),
        "[a-z 0-9'\"`;$()]{0,10}".prop_map(|c| format!(" -- {c}\n")),
        Just("/**/".to_owned()),
        Just(" /* /* nested */ */ ".to_owned()),
    ]
}

fn join(tokens: &[String], separators: &[String]) -> String {
    let mut sql = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            sql.push_str(separators.get(i % separators.len().max(1)).map_or(" ", String::as_str));
        }
        sql.push_str(token);
    }
    sql
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn total_on_any_string(s in "\\PC*", max in 0usize..300) {
        let c = classify(&s);
        prop_assert!(c.source_label().len() <= 64);
        let n = normalize(&s, max);
        prop_assert!(n.len() <= max);
    }

    #[test]
    fn total_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = classify(&s);
        let _ = normalize(&s, 100);
    }

    #[test]
    fn total_on_sql_like_strings(s in sqlish(), max in 0usize..400) {
        let c = classify(&s);
        let label = c.source_label();
        prop_assert!(label.len() <= 64 && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        let n = normalize(&s, max);
        prop_assert!(n.len() <= max);
    }

    #[test]
    fn generated_statements_classify_and_lose_their_literals(
        (tokens, lits, operation, source) in statement(),
        separators in prop::collection::vec(separator(), 1..6),
    ) {
        let plain = tokens.join(" ");
        let c = classify(&plain);
        prop_assert_eq!((c.operation, c.source_label()), (operation, source), "{}", plain);

        // Stable under added comments and whitespace.
        let decorated = format!("  /* lead */ {}  -- trailing\n", join(&tokens, &separators));
        prop_assert_eq!(classify(&decorated), c, "{}", decorated);

        for sql in [&plain, &decorated] {
            let n = normalize(sql, 10_000);
            for lit in &lits {
                for marker in lit.markers() {
                    prop_assert!(!n.contains(&marker), "{:?} survived in {:?} (from {:?})", marker, n, sql);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// What `common/sql_check.rs` checks (and the fuzz target `sql_classifier` too): bounded
    /// labels, the same classification behind a leading comment, and a clean cut.
    #[test]
    fn leading_comments_change_nothing_and_normalize_cuts_cleanly(
        sql in prop_oneof![any::<String>(), sqlish()],
        max in 0usize..120,
    ) {
        if let Err(problem) = check_sql(&sql, max) {
            prop_assert!(false, "{}", problem);
        }
    }

    /// Any text in any string literal style changes neither the classification nor the
    /// normalised statement.
    #[test]
    fn no_literal_content_changes_the_classification_or_survives_normalisation(
        content in prop_oneof![any::<String>(), sqlish()],
        style in prop::sample::select(&[LiteralStyle::Quoted, LiteralStyle::Escaped, LiteralStyle::Dollar][..]),
    ) {
        if let Some(lit) = sql_check::literal(&content, style)
            && let Err(problem) = check_literal(&lit)
        {
            prop_assert!(false, "{}", problem);
        }
    }
}
