//! The server a load runs against: a `flywheel serve` child on a fresh SQLite database
//! (its memory and per-thread CPU read from `/proc`), or the `--server` nodes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

use super::BenchArgs;

/// The server a load runs against: its own child on a fresh SQLite database (with the
/// admin key it was given), or the `--server` nodes with `--admin-key`.
pub(super) fn target(args: &BenchArgs) -> anyhow::Result<(Option<OwnServer>, Vec<String>, String)> {
    const OWN_KEY: &str = "bench-admin-key-0123456789abcdef";
    if args.server.is_empty() {
        let own = OwnServer::start(OWN_KEY)?;
        let nodes = vec![own.url.clone()];
        return Ok((Some(own), nodes, OWN_KEY.to_string()));
    }
    let nodes = args
        .server
        .iter()
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    let admin = args
        .admin_key
        .clone()
        .context("--server needs the admin key (--admin-key or FLYWHEEL_ADMIN_KEY)")?;
    Ok((None, nodes, admin))
}

/// Starts `flywheel serve` on `db` on a free loopback port and waits until it listens;
/// the child and its base URL. Its stdout is drained on a thread of its own.
pub(super) fn serve_child(db: &str, admin_key: &str) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .env("FLYWHEEL_ADMIN_KEY", admin_key)
        .env("FLYWHEEL_LOG", "warn")
        // The webhooks scenario's receiver is on loopback.
        .env("FLYWHEEL_WEBHOOKS_ALLOW_PRIVATE", "true")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start a server to bench")?;
    let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
    loop {
        let mut line = String::new();
        if out.read_line(&mut line)? == 0 {
            let _ = child.wait();
            bail!("the benchmark server exited before listening");
        }
        if let Some(rest) = line.trim().strip_prefix("flywheel listening on ") {
            let url = rest.split_whitespace().next().unwrap_or_default().to_string();
            std::thread::spawn(move || for _ in out.lines() {});
            return Ok((child, url));
        }
    }
}

/// A `flywheel serve` child on a fresh SQLite database; stopped (SIGTERM, by PID) on drop.
pub(super) struct OwnServer {
    pub(super) child: Child,
    pub(super) url: String,
    _dir: Option<tempfile::TempDir>,
}

impl OwnServer {
    pub(super) fn start(admin_key: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = format!("sqlite://{}", dir.path().join("bench.db").display());
        let (child, url) = serve_child(&db, admin_key)?;
        Ok(Self {
            child,
            url,
            _dir: Some(dir),
        })
    }

    /// A server on the database at `db` (which the caller keeps).
    pub(super) fn on(db: &str, admin_key: &str) -> anyhow::Result<Self> {
        let (child, url) = serve_child(db, admin_key)?;
        Ok(Self { child, url, _dir: None })
    }

    /// Resident memory of the server process, MB (Linux).
    /// On-CPU time of each of the server's threads so far, in seconds, summed by kind.
    pub(super) fn cpu_by_thread(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return out;
        };
        for t in tasks.flatten() {
            let path = t.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            // schedstat: nanoseconds on the CPU, then waiting, then timeslices.
            let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            else {
                continue;
            };
            let kind = match comm.trim() {
                "fw-sql-writer" => "writer",
                "fw-sql-sync" => "syncer",
                "fw-sql-ckpt" => "checkpointer",
                c if c.starts_with("tokio") => "workers",
                _ => "other",
            };
            *out.entry(kind.to_string()).or_insert(0.0) += ns / 1e9;
            *out.entry("total".to_string()).or_insert(0.0) += ns / 1e9;
        }
        out
    }

    pub(super) fn rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Stops a server child the way an operator would (SIGTERM, by its PID) and reaps it.
pub(super) fn stop_child(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// A fresh database for a scenario that needs its own: a SQLite file, or a fresh schema
/// (named after `purpose` and this process) of the PostgreSQL database the URL names,
/// dropped afterwards with [`Database::drop_schema`].
pub(super) struct Database {
    pub(super) url: String,
    _dir: Option<tempfile::TempDir>,
    pub(super) pg: Option<(String, String)>,
}

impl Database {
    pub(super) async fn fresh(spec: &str, purpose: &str) -> anyhow::Result<Self> {
        if spec == "sqlite" {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join(format!("{purpose}.db")).display());
            return Ok(Self {
                url,
                _dir: Some(dir),
                pg: None,
            });
        }
        if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
            bail!("--database is sqlite or a postgres:// URL, not '{spec}'");
        }
        let schema = format!("fw_{purpose}_{}", std::process::id());
        flywheel_store::postgres::PgStore::drop_schema(spec, &schema).await?;
        // Creates the schema and runs the migrations, once, before any server starts.
        drop(flywheel_store::postgres::PgStore::connect(spec, Some(&schema)).await?);
        let sep = if spec.contains('?') { '&' } else { '?' };
        Ok(Self {
            url: format!("{spec}{sep}options=-c%20search_path%3D{schema}"),
            _dir: None,
            pg: Some((spec.to_string(), schema)),
        })
    }

    pub(super) async fn drop_schema(&self) {
        if let Some((url, schema)) = &self.pg
            && let Err(e) = flywheel_store::postgres::PgStore::drop_schema(url, schema).await
        {
            eprintln!("could not drop schema {schema}: {e}");
        }
    }
}
