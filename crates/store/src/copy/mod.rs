//! `flywheel copy`: a SQLite database into an empty PostgreSQL one, verified table by
//! table before anything is committed.
//!
//! [`TABLES`] is the one list of what is copied, in dependency order (a row's foreign keys
//! point at rows of tables above it). A table's columns are read from both schemas and
//! matched by name, so a table whose columns need no conversion is one line; how a value
//! is written and checksummed follows the PostgreSQL column's type (`jsonb`, `boolean`,
//! `bytea`, integers, text). The SQLite side is read through one read-only connection in
//! one read transaction: the copy is a snapshot of the source as of its first read, even
//! while a server keeps writing to it.
//!
//! The target is migrated by the ordinary migrator, locked, and refused unless every table
//! is empty. Rows go in with `COPY … FROM STDIN` in chunks of [`CHUNK`] bytes through a
//! bounded channel, so memory stays flat whatever the size of the database. The identity
//! sequences are moved past the copied ids, then every table is read back, counted and
//! checksummed the same way as its source ([`canon`]); only if every table matches is the
//! one transaction committed. A failed or mismatched copy leaves the target as it was.

mod canon;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;

use futures_util::TryStreamExt;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, Row, SqlSafeStr};

pub use canon::canonical_json;
use canon::{ColumnType, write_field};

/// One table of the copy. Build with [`Table::plain`] and adjust with the `const` methods.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// The primary key, the order both sides are read in for the checksum.
    key: &'static [&'static str],
    /// PostgreSQL's `id` column (feed rows' identity) is filled from this SQLite column.
    pg_id_from: Option<&'static str>,
    /// `item.decided` events on SQLite leave their decision in the item: put it back.
    decided_events: bool,
    /// Not copied, and why (a table only the SQLite backend keeps).
    sqlite_only: Option<&'static str>,
}

impl Table {
    pub const fn plain(name: &'static str, key: &'static [&'static str]) -> Self {
        Self {
            name,
            key,
            pg_id_from: None,
            decided_events: false,
            sqlite_only: None,
        }
    }

    const fn pg_id_from(mut self, column: &'static str) -> Self {
        self.pg_id_from = Some(column);
        self
    }

    const fn with_item_decisions(mut self) -> Self {
        self.decided_events = true;
        self
    }

    const fn sqlite_only(name: &'static str, why: &'static str) -> Self {
        let mut t = Self::plain(name, &[]);
        t.sqlite_only = Some(why);
        t
    }

    /// Whether this table is written to PostgreSQL.
    pub fn copied(&self) -> bool {
        self.sqlite_only.is_none()
    }
}

/// Every table of the SQLite schema, in dependency order. A test fails when the schema
/// has a table this list does not name.
pub const TABLES: &[Table] = &[
    Table::plain("projects", &["id"]),
    Table::plain("policies", &["project_id", "version"]),
    Table::plain("reviewers", &["id"]),
    Table::plain("reviewer_projects", &["reviewer_id", "project_id"]),
    Table::plain("api_keys", &["hash"]),
    Table::plain("web_sessions", &["hash"]),
    Table::plain("items", &["id"]),
    Table::plain("tasks", &["id"]),
    Table::plain("leases", &["id"]),
    Table::plain("item_reviewers", &["item_id", "reviewer_id"]),
    Table::plain("reviews", &["id"]),
    Table::plain("amendments", &["id"]),
    // Feed positions keep their values; PostgreSQL's row ids take the same numbers.
    Table::plain("labels", &["cursor"]).pg_id_from("cursor"),
    Table::plain("events", &["seq"]).pg_id_from("seq").with_item_decisions(),
    Table::plain("reviewer_quality", &["project_id", "reviewer_id"]),
    Table::plain("reviewer_fatigue", &["project_id", "reviewer_id"]),
    Table::plain("model_snapshots", &["project_id", "version"]),
    Table::plain("webhooks", &["id"]),
    Table::plain("webhook_deliveries", &["id"]),
    Table::sqlite_only(
        "reviewer_days",
        "answers per reviewer and day: PostgreSQL counts them from reviews",
    ),
    Table::sqlite_only(
        "stat_counts",
        "/stats counters: PostgreSQL's triggers count the copied rows as they arrive",
    ),
];

/// Tables only the PostgreSQL schema has, filled there by triggers as the copied rows
/// arrive (so a target holding them is not refused), and why.
pub const POSTGRES_ONLY: &[(&str, &str)] = &[(
    "stat_deltas",
    "/stats counters: the triggers of migration 0009 count the copied items, tasks and events",
)];

/// Bytes of COPY data per message from the reader to the writer.
const CHUNK: usize = 256 * 1024;

/// Messages the reader's channel holds at most: memory is bounded by `CHUNK` times this.
const IN_FLIGHT: usize = 4;

/// What the copy is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Copying `table`, which has `rows` rows.
    Copying { table: &'a str, rows: u64 },
    /// `n` more rows of the current table were sent.
    Copied(u64),
    /// Reading `table` back (`rows` rows) to check it.
    Verifying { table: &'a str, rows: u64 },
    /// `n` more rows of the current table were checked.
    Verified(u64),
}

/// One table's figures on both sides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCopy {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// SHA-256 over the canonical rendering of every row, in key order.
    pub source_checksum: String,
    pub target_checksum: String,
}

impl TableCopy {
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_checksum == self.target_checksum
    }
}

/// A table of the source that is not copied, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub table: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    pub tables: Vec<TableCopy>,
    pub skipped: Vec<Skipped>,
}

impl CopyReport {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.target_rows).sum()
    }

    pub fn verified(&self) -> bool {
        self.tables.iter().all(TableCopy::matches)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The operator named something that cannot be a source or a target.
    #[error("{0}")]
    Usage(String),
    /// Tables of the target hold rows; nothing was written.
    #[error(
        "the target is not empty: {} {} rows; flywheel copy writes only into an empty database, and wrote nothing",
        .0.join(", "),
        if .0.len() == 1 { "has" } else { "have" }
    )]
    NotEmpty(Vec<String>),
    /// Read back, the target differs from the source; it was rolled back.
    #[error("the copy does not match its source in {}; it was rolled back and nothing was written", mismatched(.0))]
    Mismatch(CopyReport),
    /// The two schemas do not fit the table list.
    #[error("{0}")]
    Schema(String),
    #[error("source database: {0}")]
    Source(String),
    #[error("target database: {0}")]
    Target(String),
}

fn mismatched(r: &CopyReport) -> String {
    r.tables
        .iter()
        .filter(|t| !t.matches())
        .map(|t| t.table.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<rusqlite::Error> for CopyError {
    fn from(e: rusqlite::Error) -> Self {
        CopyError::Source(e.to_string())
    }
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Target(e.to_string())
    }
}

/// A column as both sides see it: its PostgreSQL name and type, and the SQLite expression
/// that gives its value.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    ty: ColumnType,
    source: String,
}

/// How one table is copied: its columns in one order for both sides.
#[derive(Debug, Clone)]
struct Plan {
    table: Table,
    columns: Vec<Column>,
    /// Identity columns whose sequences must pass the copied maximum.
    serials: Vec<String>,
}

impl Plan {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn source_select(&self) -> String {
        let mut cols: Vec<String> = self.columns.iter().map(|c| c.source.clone()).collect();
        let mut from = format!("{} AS t", quote(self.table.name));
        if self.table.decided_events {
            cols.push("i.decision".into());
            from.push_str(&format!(
                " LEFT JOIN items AS i ON i.id = t.item_id AND t.kind = '{}'",
                flywheel_core::Event::ITEM_DECIDED
            ));
        }
        let order: Vec<String> = self.table.key.iter().map(|k| format!("t.{}", quote(k))).collect();
        format!("SELECT {} FROM {from} ORDER BY {}", cols.join(", "), order.join(", "))
    }

    fn target_select(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{}::text", quote(&c.name)))
            .collect();
        let order: Vec<String> = self
            .table
            .key
            .iter()
            .map(|k| {
                // Text keys in byte order, as SQLite's BINARY collation sorts them.
                let text = self.columns.iter().any(|c| c.name == *k && c.ty == ColumnType::Text);
                // Qualified: a bare name would sort by the `::text` output column.
                if text {
                    format!("t.{} COLLATE \"C\"", quote(k))
                } else {
                    format!("t.{}", quote(k))
                }
            })
            .collect();
        format!(
            "SELECT {} FROM {} AS t ORDER BY {}",
            cols.join(", "),
            quote(self.table.name),
            order.join(", ")
        )
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Copies the SQLite database `from` (`sqlite://PATH`) into the empty PostgreSQL database
/// `to` (`postgres://…`; its `search_path` option picks a schema), verifies it, and commits
/// only if every table matches. `progress` hears what is being done.
pub async fn copy(from: &str, to: &str, progress: &(dyn Fn(Progress<'_>) + Sync)) -> Result<CopyReport, CopyError> {
    let path = sqlite_path(from)?;
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(CopyError::Usage(format!(
            "the target must be a postgres:// URL, not '{}'",
            to.split('@').next_back().unwrap_or(to)
        )));
    }
    let opts = PgConnectOptions::from_str(to).map_err(|e| CopyError::Usage(format!("bad PostgreSQL URL: {e}")))?;

    let (source, source_columns) = tokio::task::spawn_blocking(move || open_source(&path))
        .await
        .map_err(|e| CopyError::Source(format!("the reader failed: {e}")))??;

    // The ordinary migrator brings the target's schema up to date (under its advisory lock).
    drop(
        crate::postgres::PgStore::connect(to, None)
            .await
            .map_err(|e| CopyError::Target(e.to_string()))?,
    );
    let mut conn = PgConnection::connect_with(&opts).await?;
    let mut tx = conn.begin().await?;
    let plans = plan(&mut tx, &source_columns).await?;
    let names: Vec<String> = plans.iter().map(|p| quote(p.table.name)).collect();
    // No one else writes while we check and fill; readers may still read.
    sqlx::query(AssertSqlSafe(format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "))).into_sql_str())
        .execute(&mut *tx)
        .await?;
    let mut full = vec![];
    for p in &plans {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quote(p.table.name));
        let any: bool = sqlx::query_scalar(AssertSqlSafe(sql).into_sql_str())
            .fetch_one(&mut *tx)
            .await?;
        if any {
            full.push(p.table.name.to_string());
        }
    }
    if !full.is_empty() {
        tx.rollback().await?;
        return Err(CopyError::NotEmpty(full));
    }

    let sources = send_rows(&mut tx, source, &plans, progress).await?;
    let mut tables = vec![];
    for (p, (rows, checksum)) in plans.iter().zip(sources) {
        progress(Progress::Verifying {
            table: p.table.name,
            rows,
        });
        let (target_rows, target_checksum) = target_checksum(&mut tx, p, progress).await?;
        tables.push(TableCopy {
            table: p.table.name.to_string(),
            source_rows: rows,
            target_rows,
            source_checksum: checksum,
            target_checksum,
        });
    }
    let report = CopyReport {
        tables,
        skipped: TABLES
            .iter()
            .filter_map(|t| {
                t.sqlite_only.map(|why| Skipped {
                    table: t.name.into(),
                    reason: why.into(),
                })
            })
            .collect(),
    };
    if !report.verified() {
        tx.rollback().await?;
        return Err(CopyError::Mismatch(report));
    }
    // Last, because setval is not undone by a rollback: new rows get ids past the copied ones.
    for p in &plans {
        for col in &p.serials {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), (SELECT coalesce(max({c}), 0) + 1 FROM {t}), false)",
                c = quote(col),
                t = quote(p.table.name)
            );
            sqlx::query(AssertSqlSafe(sql).into_sql_str())
                .bind(p.table.name)
                .bind(col)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(report)
}

fn sqlite_path(url: &str) -> Result<PathBuf, CopyError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| CopyError::Usage(format!("the source must be a sqlite:// URL, not '{url}'")))?;
    if path.is_empty() {
        return Err(CopyError::Usage("the source URL names no file".into()));
    }
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(CopyError::Usage(format!("no SQLite database at {}", path.display())));
    }
    Ok(path)
}

/// Opens the source read-only and reads its tables' columns. Refuses a source whose
/// schema is not this version's, or that has a table [`TABLES`] does not name.
fn open_source(path: &std::path::Path) -> Result<(Connection, BTreeMap<String, Vec<String>>), CopyError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA mmap_size = 0;")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != crate::sqlite::SCHEMA_VERSION as i64 {
        return Err(CopyError::Schema(format!(
            "the source's schema is version {version}, this flywheel's is {}: open it once with `flywheel serve` of this version first",
            crate::sqlite::SCHEMA_VERSION
        )));
    }
    let columns = sqlite_columns(&conn)?;
    let unknown: Vec<&str> = columns
        .keys()
        .filter(|t| !TABLES.iter().any(|k| k.name == t.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(CopyError::Schema(format!(
            "the source has tables this flywheel does not know how to copy: {}",
            unknown.join(", ")
        )));
    }
    Ok((conn, columns))
}

/// Every table of a SQLite database with its columns in order.
pub(crate) fn sqlite_columns(conn: &Connection) -> Result<BTreeMap<String, Vec<String>>, CopyError> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = BTreeMap::new();
    for t in tables {
        let cols: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info({}) ORDER BY cid",
                sql_string(&t)
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        out.insert(t, cols);
    }
    Ok(out)
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Matches each copied table's columns on both sides by name and reads their PostgreSQL
/// types.
async fn plan(c: &mut PgConnection, source: &BTreeMap<String, Vec<String>>) -> Result<Vec<Plan>, CopyError> {
    let target: BTreeSet<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .collect();
    let unknown: Vec<&str> = target
        .iter()
        .filter(|t| !TABLES.iter().any(|k| k.copied() && k.name == t.as_str()))
        .filter(|t| !POSTGRES_ONLY.iter().any(|(name, _)| name == t))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(CopyError::Schema(format!(
            "the target has tables this flywheel does not know how to fill: {}",
            unknown.join(", ")
        )));
    }
    let mut plans = vec![];
    for table in TABLES.iter().filter(|t| t.copied()) {
        let source_cols = source
            .get(table.name)
            .ok_or_else(|| CopyError::Schema(format!("the source has no table {}", table.name)))?;
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, column_default::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table.name)
        .fetch_all(&mut *c)
        .await?;
        if rows.is_empty() {
            return Err(CopyError::Schema(format!("the target has no table {}", table.name)));
        }
        let mut columns = vec![];
        for name in source_cols {
            let Some((_, ty, _)) = rows.iter().find(|(n, _, _)| n == name) else {
                return Err(CopyError::Schema(format!(
                    "column {}.{name} is in the source but not in the target",
                    table.name
                )));
            };
            columns.push(Column {
                name: name.clone(),
                ty: ColumnType::of(ty, table.name, name)?,
                source: format!("t.{}", quote(name)),
            });
        }
        for (name, ty, _) in &rows {
            if source_cols.contains(name) {
                continue;
            }
            match table.pg_id_from {
                Some(from) if name == "id" => columns.push(Column {
                    name: name.clone(),
                    ty: ColumnType::of(ty, table.name, name)?,
                    source: format!("t.{}", quote(from)),
                }),
                _ => {
                    return Err(CopyError::Schema(format!(
                        "column {}.{name} is in the target but not in the source",
                        table.name
                    )));
                }
            }
        }
        let serials = rows
            .iter()
            .filter(|(_, _, default)| default.as_deref().is_some_and(|d| d.starts_with("nextval(")))
            .map(|(n, _, _)| n.clone())
            .collect();
        plans.push(Plan {
            table: *table,
            columns,
            serials,
        });
    }
    Ok(plans)
}

enum Msg {
    Begin { rows: u64 },
    Data(Vec<u8>, u64),
    End { rows: u64, checksum: String },
}

/// Streams every planned table from the source into the target with `COPY`. Returns each
/// table's row count and checksum as read from the source.
async fn send_rows(
    tx: &mut PgConnection,
    source: Connection,
    plans: &[Plan],
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Vec<(u64, String)>, CopyError> {
    let (sender, mut rx) = tokio::sync::mpsc::channel::<Msg>(IN_FLIGHT);
    let reader_plans = plans.to_vec();
    let reader = tokio::task::spawn_blocking(move || read_source(&source, &reader_plans, &sender));
    let written: Result<Vec<(u64, String)>, CopyError> = async {
        let mut out = vec![];
        for p in plans {
            let Some(Msg::Begin { rows }) = rx.recv().await else {
                return Ok(out); // the reader stopped: its error says why
            };
            progress(Progress::Copying {
                table: p.table.name,
                rows,
            });
            let stmt = format!("COPY {} ({}) FROM STDIN", quote(p.table.name), p.column_list());
            let mut copy = tx.copy_in_raw(&stmt).await?;
            loop {
                match rx.recv().await {
                    Some(Msg::Data(bytes, n)) => {
                        copy.send(bytes).await?;
                        progress(Progress::Copied(n));
                    }
                    Some(Msg::End { rows, checksum }) => {
                        copy.finish().await?;
                        out.push((rows, checksum));
                        break;
                    }
                    Some(Msg::Begin { .. }) | None => {
                        copy.abort("the source could not be read").await?;
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
    .await;
    drop(rx); // a reader still sending stops
    let read = reader
        .await
        .map_err(|e| CopyError::Source(format!("the reader failed: {e}")))?;
    let written = written?;
    read?;
    if written.len() != plans.len() {
        return Err(CopyError::Source("the reader stopped early".into()));
    }
    Ok(written)
}

/// The reader: one read transaction over every table (a snapshot), each row rendered into
/// COPY's text format and into the checksum.
fn read_source(c: &Connection, plans: &[Plan], tx: &tokio::sync::mpsc::Sender<Msg>) -> Result<(), CopyError> {
    c.execute_batch("BEGIN")?;
    let result = (|| {
        for p in plans {
            let rows: i64 = c.query_row(&format!("SELECT count(*) FROM {}", quote(p.table.name)), [], |r| {
                r.get(0)
            })?;
            if tx.blocking_send(Msg::Begin { rows: rows as u64 }).is_err() {
                return Ok(());
            }
            let data_col = p
                .table
                .decided_events
                .then(|| p.columns.iter().position(|c| c.name == "data"))
                .flatten();
            let mut stmt = c.prepare(&p.source_select())?;
            let mut rows = stmt.query([])?;
            let (mut buf, mut pending, mut total) = (Vec::with_capacity(CHUNK + 8192), 0u64, 0u64);
            let mut hash = Sha256::new();
            while let Some(r) = rows.next()? {
                for (i, col) in p.columns.iter().enumerate() {
                    if i > 0 {
                        buf.push(b'\t');
                    }
                    let mut value = source_value(r.get_ref(i)?, col.ty, p.table.name, &col.name)?;
                    if Some(i) == data_col
                        && let (Some(data), ValueRef::Text(decision)) = (&value, r.get_ref(p.columns.len())?)
                    {
                        value = Some(Cow::Owned(with_decision(data, decision)?));
                    }
                    write_field(&mut buf, &mut hash, col.ty, value.as_deref())
                        .map_err(|e| CopyError::Source(format!("{}.{}: {e}", p.table.name, col.name)))?;
                }
                buf.push(b'\n');
                pending += 1;
                total += 1;
                if buf.len() >= CHUNK {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 8192));
                    if tx.blocking_send(Msg::Data(full, pending)).is_err() {
                        return Ok(());
                    }
                    pending = 0;
                }
            }
            if !buf.is_empty() && tx.blocking_send(Msg::Data(buf, pending)).is_err() {
                return Ok(());
            }
            let checksum = hex::encode(hash.finalize());
            if tx.blocking_send(Msg::End { rows: total, checksum }).is_err() {
                return Ok(());
            }
        }
        Ok(())
    })();
    let _ = c.execute_batch("COMMIT");
    result
}

/// A SQLite value as the text PostgreSQL reads for a column of type `ty` (`None`: NULL).
fn source_value<'a>(
    v: ValueRef<'a>,
    ty: ColumnType,
    table: &str,
    column: &str,
) -> Result<Option<Cow<'a, str>>, CopyError> {
    let bad = |what: &str| CopyError::Source(format!("{table}.{column} holds {what}, which its target column cannot"));
    Ok(Some(match (v, ty) {
        (ValueRef::Null, _) => return Ok(None),
        (ValueRef::Integer(0), ColumnType::Bool) => Cow::Borrowed("false"),
        (ValueRef::Integer(1), ColumnType::Bool) => Cow::Borrowed("true"),
        (ValueRef::Integer(i), ColumnType::Bool) => return Err(bad(&format!("the integer {i}"))),
        (ValueRef::Integer(i), _) => Cow::Owned(i.to_string()),
        (ValueRef::Real(f), _) => Cow::Owned(format!("{f:?}")),
        (ValueRef::Text(t), _) => Cow::Borrowed(std::str::from_utf8(t).map_err(|_| bad("text that is not UTF-8"))?),
        (ValueRef::Blob(b), ColumnType::Bytea) => Cow::Owned(format!("\\x{}", hex::encode(b))),
        (ValueRef::Blob(_), _) => return Err(bad("a BLOB")),
    }))
}

/// An `item.decided` event's data with its item's decision put back, as the SQLite
/// backend does when it reads the event (events written before the decision was left out
/// keep their own).
fn with_decision(data: &str, decision: &[u8]) -> Result<String, CopyError> {
    let bad = |e: serde_json::Error| CopyError::Source(format!("an item.decided event: {e}"));
    let mut v: serde_json::Value = serde_json::from_str(data).map_err(bad)?;
    if let serde_json::Value::Object(fields) = &mut v
        && !fields.contains_key("decision")
    {
        fields.insert("decision".into(), serde_json::from_slice(decision).map_err(bad)?);
    }
    serde_json::to_string(&v).map_err(bad)
}

/// Reads a copied table back in key order: its row count and checksum.
async fn target_checksum(
    c: &mut PgConnection,
    p: &Plan,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<(u64, String), CopyError> {
    let sql = p.target_select();
    let mut rows = sqlx::query(AssertSqlSafe(sql).into_sql_str()).fetch(&mut *c);
    let mut hash = Sha256::new();
    let (mut n, mut pending) = (0u64, 0u64);
    let mut scratch = Vec::new();
    while let Some(row) = rows.try_next().await? {
        for (i, col) in p.columns.iter().enumerate() {
            let v: Option<String> = row.try_get(i)?;
            scratch.clear();
            write_field(&mut scratch, &mut hash, col.ty, v.as_deref())
                .map_err(|e| CopyError::Target(format!("{}.{}: {e}", p.table.name, col.name)))?;
        }
        n += 1;
        pending += 1;
        if pending == 4096 {
            progress(Progress::Verified(pending));
            pending = 0;
        }
    }
    progress(Progress::Verified(pending));
    Ok((n, hex::encode(hash.finalize())))
}

#[cfg(test)]
mod tests;
