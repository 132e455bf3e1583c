//! `flywheel bench webhooks`: delivery throughput. The bench's own server (fresh SQLite,
//! private addresses allowed) gets `--items` decided items, then `--concurrency`
//! endpoints that all point at a receiver in this process, which answers 204 at once; a
//! replay from the first event makes each endpoint deliver the whole backlog, in order.
//! Reported: deliveries per second over all endpoints until every event has arrived at
//! every endpoint (or `--duration` is up), the server's CPU per delivery, and errors —
//! a `webhook-id` received twice, or a request without the Standard Webhooks headers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flywheel_sim::Client as Api;
use reqwest::Method;
use serde_json::json;

use super::{BenchArgs, OwnServer, bench_project, prefill};

#[derive(Default)]
struct Receiver {
    received: AtomicU64,
    errors: AtomicU64,
    ids: Mutex<HashSet<String>>,
}

async fn receiver() -> anyhow::Result<(String, Arc<Receiver>)> {
    let r = Arc::new(Receiver::default());
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook/{n}",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let r = state.clone();
            async move {
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok());
                let signed = headers
                    .get("webhook-signature")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|s| s.starts_with("v1,"));
                match id {
                    Some(id) if signed && headers.contains_key("webhook-timestamp") => {
                        if !r.ids.lock().expect("ids").insert(id.to_string()) {
                            r.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        r.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                r.received.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, r))
}

pub(super) async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !args.server.is_empty() {
        bail!("the webhooks bench runs its own server (its receiver is on this host's loopback)");
    }
    if args.concurrency == 0 || args.duration <= 0.0 || args.items == 0 {
        bail!("--concurrency, --duration and --items must be positive");
    }
    let key = "bench-admin-key-0123456789abcdef";
    let own = OwnServer::start(key)?;
    let api = Api::new(vec![own.url.clone()], key);
    let project = format!("bench-webhooks-{}", std::process::id());
    let svc = bench_project(&api, &project).await?;
    prefill(&api, &svc, &project, args.items).await?;
    let events = args.items.div_ceil(1000) * 1000;
    let (url, rx) = receiver().await?;
    let mut hooks = Vec::new();
    for n in 0..args.concurrency {
        let body = json!({"url": format!("{url}/{n}"), "events": ["item.decided"], "enabled": false});
        let (status, v) = api
            .call(
                Method::POST,
                &format!("/v1/projects/{project}/webhooks"),
                key,
                Some(&body),
            )
            .await?;
        if status != 201 {
            bail!("creating an endpoint: {status} {v}");
        }
        hooks.push(v["id"].as_i64().context("an endpoint without an id")?);
    }
    let cpu_before = own.cpu_by_thread();
    let started = Instant::now();
    for id in &hooks {
        let path = format!("/v1/projects/{project}/webhooks/{id}");
        api.call(
            Method::POST,
            &format!("{path}/replay"),
            key,
            Some(&json!({"from_seq": 1})),
        )
        .await?;
        api.call(Method::PATCH, &path, key, Some(&json!({"enabled": true})))
            .await?;
    }
    let expected = (events * hooks.len()) as u64;
    let until = started + Duration::from_secs_f64(args.duration);
    while rx.received.load(Ordering::Relaxed) < expected && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let delivered = rx.received.load(Ordering::Relaxed);
    let units = delivered.max(1) as f64;
    let cpu: std::collections::BTreeMap<String, f64> = own
        .cpu_by_thread()
        .iter()
        .map(|(k, after)| (k.clone(), (after - cpu_before.get(k).unwrap_or(&0.0)) * 1e6 / units))
        .collect();
    let report = json!({
        "scenario": "webhooks",
        "throughput_per_s": delivered as f64 / secs,
        "deliveries": delivered,
        "expected": expected,
        "complete": delivered >= expected,
        "endpoints": hooks.len(),
        "events_per_endpoint": events,
        "duration_s": secs,
        "errors": rx.errors.load(Ordering::Relaxed),
        "server_cpu_us_per_op": cpu,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "webhooks · {} endpoint(s) · {} of {} deliveries in {:.1} s: {:.0}/s, {} errors",
            hooks.len(),
            delivered,
            expected,
            secs,
            delivered as f64 / secs,
            report["errors"]
        );
        let parts: Vec<String> = cpu.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
        println!("server CPU µs per delivery: {}", parts.join(", "));
    }
    if delivered == 0 {
        bail!("no webhook was delivered");
    }
    Ok(())
}
