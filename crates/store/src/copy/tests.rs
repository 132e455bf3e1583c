use sha2::{Digest, Sha256};

use super::canon::{ColumnType, write_field};
use super::*;

/// Every table of a freshly migrated SQLite database is in `TABLES` (copied, or skipped
/// with a reason), so a migration that adds a table cannot leave it behind.
#[test]
fn the_table_list_covers_the_sqlite_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    drop(crate::sqlite::SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let columns = sqlite_columns(&conn).unwrap();
    assert!(columns.contains_key("events"), "{columns:?}");
    for table in columns.keys() {
        assert!(
            TABLES.iter().any(|t| t.name == table.as_str()),
            "table {table} is not in copy::TABLES: add it (one line) in dependency order"
        );
    }
    for t in TABLES {
        assert!(
            columns.contains_key(t.name),
            "copy::TABLES names {}, which SQLite has not",
            t.name
        );
        assert_eq!(
            t.copied(),
            !t.key.is_empty(),
            "{}: a copied table needs its key",
            t.name
        );
        for k in t.key {
            assert!(columns[t.name].iter().any(|c| c == k), "{}.{k} is not a column", t.name);
        }
    }
    // Also what `open_source` checks before a copy.
    let (_, seen) = open_source(&path).unwrap();
    assert_eq!(seen, columns);
}

#[test]
fn a_source_with_an_unknown_table_or_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    drop(crate::sqlite::SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE extra (id INTEGER PRIMARY KEY)")
        .unwrap();
    let err = open_source(&path).unwrap_err().to_string();
    assert!(err.contains("extra"), "{err}");
    conn.execute_batch("DROP TABLE extra; PRAGMA user_version = 2").unwrap();
    let err = open_source(&path).unwrap_err().to_string();
    assert!(err.contains("version 2"), "{err}");
}

#[test]
fn bad_urls_are_usage_errors() {
    assert!(matches!(sqlite_path("postgres://x"), Err(CopyError::Usage(_))));
    assert!(matches!(sqlite_path("sqlite://"), Err(CopyError::Usage(_))));
    assert!(matches!(
        sqlite_path("sqlite:///nonexistent/dir/f.db"),
        Err(CopyError::Usage(m)) if m.contains("no SQLite database")
    ));
}

#[test]
fn canonical_json_agrees_on_what_jsonb_changes() {
    let c = |s| canonical_json(s).unwrap();
    // jsonb's output of the same documents: keys by length then bytes, spaces after
    // separators, exponents written out.
    assert_eq!(
        c(r#"{"b":1,"aa":[1.0,2.5,"x"]}"#),
        c(r#"{"b": 1, "aa": [1.0, 2.5, "x"]}"#)
    );
    assert_eq!(c(r#"{"n":1e17}"#), c(r#"{"n": 100000000000000000}"#));
    assert_eq!(c(r#"{"n":1e-7}"#), c(r#"{"n": 0.0000001}"#));
    assert_eq!(c("1.2345678901234568e17"), c("123456789012345680"));
    assert_eq!(c("-3.0"), "-3");
    assert_eq!(c(r#""\u00e9\n""#), c("\"é\\n\""));
    assert_eq!(
        c(r#"{"z":null,"a":{"y":true,"x":false}}"#),
        r#"{"a":{"x":false,"y":true},"z":null}"#
    );
    // What differs still differs.
    assert_ne!(c(r#"{"a":1}"#), c(r#"{"a":2}"#));
    assert_ne!(c(r#"{"a":1}"#), c(r#"{"a":"1"}"#));
    assert_ne!(c("[1,2]"), c("[2,1]"));
}

fn field(ty: ColumnType, v: Option<&str>) -> (String, String) {
    let (mut buf, mut hash) = (vec![], Sha256::new());
    write_field(&mut buf, &mut hash, ty, v).unwrap();
    (String::from_utf8(buf).unwrap(), hex::encode(hash.finalize()))
}

#[test]
fn fields_are_escaped_for_copy_and_hashed_canonically() {
    assert_eq!(field(ColumnType::Text, Some("a\tb\nc\\d\re")).0, "a\\tb\\nc\\\\d\\re");
    assert_eq!(field(ColumnType::Text, None).0, "\\N");
    // NULL and the text "\N" are different values.
    assert_ne!(field(ColumnType::Text, None).1, field(ColumnType::Text, Some("\\N")).1);
    assert_ne!(field(ColumnType::Text, Some("")).1, field(ColumnType::Text, None).1);
    assert_eq!(field(ColumnType::Bytea, Some("\\x00ff")).0, "\\\\x00ff");
    assert_eq!(
        field(ColumnType::Json, Some(r#"{"b":1,"a":2}"#)).1,
        field(ColumnType::Json, Some(r#"{"a": 2, "b": 1}"#)).1
    );
    assert_ne!(
        field(ColumnType::Text, Some(r#"{"b":1,"a":2}"#)).1,
        field(ColumnType::Text, Some(r#"{"a": 2, "b": 1}"#)).1
    );
    assert_eq!(
        field(ColumnType::Float, Some("0.5")).1,
        field(ColumnType::Float, Some("5e-1")).1
    );
    let mut buf = vec![];
    assert!(write_field(&mut buf, &mut Sha256::new(), ColumnType::Json, Some("{")).is_err());
}

#[test]
fn sqlite_values_become_what_postgres_reads() {
    let v = |r, ty| source_value(r, ty, "t", "c").map(|o| o.map(|c| c.into_owned()));
    assert_eq!(
        v(ValueRef::Integer(1), ColumnType::Bool).unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        v(ValueRef::Integer(0), ColumnType::Bool).unwrap().as_deref(),
        Some("false")
    );
    assert!(v(ValueRef::Integer(2), ColumnType::Bool).is_err());
    assert_eq!(
        v(ValueRef::Integer(-7), ColumnType::Integer).unwrap().as_deref(),
        Some("-7")
    );
    assert_eq!(
        v(ValueRef::Blob(&[0, 15, 255]), ColumnType::Bytea).unwrap().as_deref(),
        Some("\\x000fff")
    );
    assert!(v(ValueRef::Blob(&[1]), ColumnType::Text).is_err());
    assert_eq!(v(ValueRef::Null, ColumnType::Json).unwrap(), None);
}

#[test]
fn decided_events_get_their_decision_back() {
    let data = with_decision(r#"{"tasks":[],"resolved":null}"#, br#"{"rule":"now"}"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["decision"]["rule"], "now");
    assert_eq!(v["tasks"], serde_json::json!([]));
    // An event that kept its decision keeps it.
    let data = with_decision(r#"{"decision":{"rule":"then"}}"#, br#"{"rule":"now"}"#).unwrap();
    assert!(data.contains("then") && !data.contains("now"), "{data}");
}
