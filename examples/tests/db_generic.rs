//! The `db_generic` example (rusqlite with the generic timer and pool observer) reports exact
//! query counts and pool gauges.

mod common;

#[test]
fn rusqlite_queries_are_counted_through_the_generic_api() {
    let out = std::process::Command::new(common::example("db_generic"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = |prefix: &str, labels: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains(labels))
            .and_then(|l| l.rsplit(' ').next())
            .map_or_else(|| panic!("no {prefix} {labels} in\n{stdout}"), str::to_owned)
    };
    assert!(stdout.starts_with("3 comments"), "{stdout}");
    let q = |op: &str| {
        value(
            "database_query_total{",
            &format!("source=\"comments\",operation=\"{op}\""),
        )
    };
    assert_eq!(q("insert"), "3");
    assert_eq!(q("create"), "1");
    assert_eq!(q("update"), "1");
    assert_eq!(q("select"), "1");
    assert_eq!(value("database_pool_max{", "pool=\"rusqlite\""), "1");
    assert_eq!(value("database_pool_in_use{", "pool=\"rusqlite\""), "0");
    assert_eq!(
        value("database_pool_acquire_duration_seconds_count{", "pool=\"rusqlite\""),
        "6"
    );
}
