//! `flywheel bench export`: a project of `--items` items (pre-filled in batches of 1,000),
//! then one streamed `GET …/export` per format, timed from the request to the last byte,
//! with the rows counted as they arrive. Against its own server it also samples the
//! server's resident memory every 20 ms during each export: an export streams page by
//! page, so the peak should not grow with the project.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use flywheel_sim::Client as Api;
use serde::Serialize;

use super::{BenchArgs, bench_project, prefill};

#[derive(Serialize)]
struct FormatRun {
    rows: u64,
    bytes: u64,
    seconds: f64,
    rows_per_s: f64,
    mb_per_s: f64,
    /// The server's largest resident set seen while this export ran (own server only).
    server_rss_peak_mb: Option<f64>,
}

#[derive(Serialize)]
struct ExportReport {
    scenario: &'static str,
    items: usize,
    /// Rows per second of the JSON lines export (the headline figure).
    throughput_per_s: f64,
    errors: u64,
    formats: BTreeMap<&'static str, FormatRun>,
    /// The server's resident set after the pre-fill, before any export.
    server_rss_before_mb: Option<f64>,
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub(super) async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let (own, nodes, admin) = super::target(args)?;
    let api = Api::with_http(reqwest::Client::builder().build()?, nodes, admin);
    let project = format!("bench-export-{}", std::process::id());
    let svc = bench_project(&api, &project).await?;
    prefill(&api, &svc, &project, args.items).await?;
    let items = args.items.div_ceil(1000) * 1000;
    let pid = own.as_ref().map(|s| s.child.id());
    let server_rss_before_mb = pid.and_then(rss_mb);

    let mut formats = BTreeMap::new();
    let mut errors = 0;
    for format in ["jsonl", "csv", "label-studio"] {
        // Peak RSS in KiB-free f64 bits, sampled until the export ends.
        let peak = Arc::new(AtomicU64::new(0f64.to_bits()));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = pid.map(|pid| {
            let (peak, done) = (peak.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    if let Some(mb) = rss_mb(pid)
                        && mb > f64::from_bits(peak.load(Ordering::Relaxed))
                    {
                        peak.store(mb.to_bits(), Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        });
        let url = format!("{}/v1/projects/{project}/export?format={format}", api.node(0));
        let started = Instant::now();
        let mut resp = api.http.get(&url).bearer_auth(&svc).send().await?;
        if !resp.status().is_success() {
            bail!(
                "export {format}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let (mut bytes, mut newlines) = (0u64, 0u64);
        while let Some(chunk) = resp.chunk().await? {
            bytes += chunk.len() as u64;
            newlines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let seconds = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        if let Some(s) = sampler {
            s.await?;
        }
        // The bench's payloads hold no newline: JSON lines end each row with one, CSV
        // adds its header line, Label Studio's array its opening and closing lines.
        let rows = match format {
            "jsonl" => newlines,
            "csv" => newlines.saturating_sub(1),
            _ => newlines.saturating_sub(2),
        };
        if rows != items as u64 {
            errors += 1;
        }
        formats.insert(
            format,
            FormatRun {
                rows,
                bytes,
                seconds,
                rows_per_s: rows as f64 / seconds,
                mb_per_s: bytes as f64 / 1e6 / seconds,
                server_rss_peak_mb: pid.map(|_| f64::from_bits(peak.load(Ordering::Relaxed))),
            },
        );
    }
    let report = ExportReport {
        scenario: "export",
        items,
        throughput_per_s: formats["jsonl"].rows_per_s,
        errors,
        formats,
        server_rss_before_mb,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("export of {items} items (rows/s, MB/s, seconds, server RSS peak MB):");
        for (f, r) in &report.formats {
            println!(
                "  {f:<13} {:>10.0} {:>8.1} {:>8.2} {:>8}",
                r.rows_per_s,
                r.mb_per_s,
                r.seconds,
                r.server_rss_peak_mb.map_or("-".into(), |m| format!("{m:.1}"))
            );
        }
        if let Some(b) = report.server_rss_before_mb {
            println!("server RSS before the exports: {b:.1} MB");
        }
    }
    if errors > 0 {
        bail!("{errors} exports returned the wrong number of rows");
    }
    Ok(())
}
