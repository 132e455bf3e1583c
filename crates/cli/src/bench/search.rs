//! `flywheel bench search`: the item search (`GET …/items?q=…`) at its worst. A project of
//! `--items` items (pre-filled in batches of 1,000, each open for review), then, for
//! `--duration` seconds each, `--concurrency` clients repeating one search:
//!
//! - `miss`: text no item holds, the first page — every item below the cursor is read
//!   until the page is full or the search's bound is reached;
//! - `miss_all`: the same search followed page by page (`next_cursor`) to its end: the
//!   whole project read, one sample per walk;
//! - `label`: a resolved label no item has (no text condition), the first page;
//! - `hit`: text every item holds (the first page fills at once), for contrast.
//!
//! The bench starts its own server on `--database` (a fresh SQLite file, or a fresh
//! schema of a PostgreSQL database) unless `--server` names one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use flywheel_sim::Client as Api;
use serde::Serialize;
use serde_json::Value;

use super::{BenchArgs, Database, OpStats, OwnServer, Recorder, bench_project, prefill, stats};

/// Each search: its name, its query, whether `next_cursor` is followed to the end.
const SEARCHES: [(&str, &str, bool); 4] = [
    ("miss", "q=no-such-text", false),
    ("miss_all", "q=no-such-text", true),
    ("label", "label=spam", false),
    ("hit", "q=message", false),
];

#[derive(Serialize)]
struct SearchReport {
    scenario: &'static str,
    database: &'static str,
    items: usize,
    concurrency: usize,
    /// Requests a second of `miss` (the headline: the worst first page).
    throughput_per_s: f64,
    errors: u64,
    operations: BTreeMap<&'static str, OpStats>,
    /// Pages a `miss_all` walk took.
    miss_all_pages: u64,
    /// The started server's CPU per search, by thread (µs), on SQLite only: on PostgreSQL
    /// the search runs in PostgreSQL's processes, and the server's idle blocking threads
    /// exit between the readings.
    server_cpu_us_per_op: BTreeMap<&'static str, BTreeMap<String, f64>>,
}

pub(super) async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.duration <= 0.0 {
        bail!("--concurrency and --duration must be positive");
    }
    let db = match args.server.is_empty() {
        true => Some(Database::fresh(&args.database, "search").await?),
        false => None,
    };
    let result = searches(args, db.as_ref()).await;
    if let Some(db) = &db {
        db.drop_schema().await;
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "item search over {} items ({}), {} connections:",
            report.items, report.database, report.concurrency
        );
        println!(
            "{:<10} {:>10} {:>10} {:>9} {:>9} {:>7}",
            "search", "count", "per second", "p50 ms", "p99 ms", "errors"
        );
        for (name, o) in &report.operations {
            println!(
                "{name:<10} {:>10} {:>10.1} {:>9.2} {:>9.2} {:>7}",
                o.count, o.throughput_per_s, o.p50_ms, o.p99_ms, o.errors
            );
        }
        println!("a miss_all walk took {} pages", report.miss_all_pages);
    }
    if report.errors > 0 {
        bail!("{} searches failed", report.errors);
    }
    Ok(())
}

async fn searches(args: &BenchArgs, db: Option<&Database>) -> anyhow::Result<SearchReport> {
    const OWN_KEY: &str = "bench-admin-key-0123456789abcdef";
    let own = db.map(|db| OwnServer::on(&db.url, OWN_KEY)).transpose()?;
    let cpu_of = own.as_ref().filter(|_| db.is_some_and(|d| d.pg.is_none()));
    let (nodes, admin) = match &own {
        Some(own) => (vec![own.url.clone()], OWN_KEY.to_string()),
        None => {
            let (_, nodes, admin) = super::target(args)?;
            (nodes, admin)
        }
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency + 8)
        .build()?;
    let api = Api::with_http(http, nodes, admin);
    let project = format!("bench-search-{}", std::process::id());
    let svc = bench_project(&api, &project).await?;
    prefill(&api, &svc, &project, args.items).await?;

    let mut operations = BTreeMap::new();
    let mut server_cpu_us_per_op = BTreeMap::new();
    let mut miss_all_pages = 0;
    for (name, query, follow) in SEARCHES {
        let cpu_before = cpu_of.map(OwnServer::cpu_by_thread).unwrap_or_default();
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(args.duration);
        let mut handles = vec![];
        for w in 0..args.concurrency {
            let url = format!("{}/v1/projects/{project}/items?{query}", api.node(w));
            let (api, svc) = (api.clone(), svc.clone());
            handles.push(tokio::spawn(async move {
                let mut rec = Recorder::default();
                let mut pages = 0;
                while Instant::now() < until {
                    let t = Instant::now();
                    match walk(&api, &url, &svc, follow).await {
                        Some(n) => {
                            pages = n;
                            rec.ok(name, t, 1);
                        }
                        None => rec.err(name),
                    }
                }
                (rec, pages)
            }));
        }
        let mut all = Recorder::default();
        for h in handles {
            let (rec, pages) = h.await?;
            all.merge(rec);
            miss_all_pages = if follow { pages } else { miss_all_pages };
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu_after = cpu_of.map(OwnServer::cpu_by_thread).unwrap_or_default();
        let mut samples = all.0.remove(name).unwrap_or_default();
        let op = stats(&mut samples, secs);
        if op.count > 0 && !cpu_after.is_empty() {
            let per_op = cpu_after
                .iter()
                .map(|(k, after)| {
                    (
                        k.clone(),
                        (after - cpu_before.get(k).unwrap_or(&0.0)) * 1e6 / op.count as f64,
                    )
                })
                .collect();
            server_cpu_us_per_op.insert(name, per_op);
        }
        operations.insert(name, op);
    }
    drop(own);
    Ok(SearchReport {
        scenario: "search",
        database: match db {
            Some(Database { pg: Some(_), .. }) => "postgres",
            Some(_) => "sqlite",
            None => "server",
        },
        items: args.items.div_ceil(1000) * 1000,
        concurrency: args.concurrency,
        throughput_per_s: operations["miss"].throughput_per_s,
        errors: operations.values().map(|o| o.errors).sum(),
        operations,
        miss_all_pages,
        server_cpu_us_per_op,
    })
}

/// One search: the first page, or with `follow` every page to the end; how many pages,
/// `None` on a failed request.
async fn walk(api: &Api, url: &str, key: &str, follow: bool) -> Option<u64> {
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let page_url = match cursor {
            Some(c) => format!("{url}&cursor={c}"),
            None => url.to_string(),
        };
        let r = api.http.get(&page_url).bearer_auth(key).send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        let page: Value = r.json().await.ok()?;
        pages += 1;
        cursor = page["next_cursor"].as_i64();
        if !follow || cursor.is_none() {
            return Some(pages);
        }
    }
}
