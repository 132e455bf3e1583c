//! What the moderation demo reports: each tweet's fate, the true precision of the auto
//! decisions, the series' points, and L2's time by failure category from the server's
//! workload report.

use reqwest::Method;
use serde_json::{Value, json};

use super::data::Tweet;
use super::{CATEGORIES, LABELS};
use crate::Error;
use crate::client::Client;
use crate::scenario::ratio;

/// What happened to one tweet of the stream.
#[derive(Debug, Clone)]
pub(super) struct Fate {
    pub(super) tweet: usize,
    pub(super) auto: Option<String>,
    pub(super) expert: bool,
    pub(super) novelty: Option<f64>,
    pub(super) family: bool,
}

/// L2's time share by failure category over `[since, until)` (simulated epoch ms), from
/// the server's workload report, and L2's answers there.
pub(super) async fn l2_time(client: &Client, project: &str, since: i64, until: i64) -> Result<(Value, u64), Error> {
    let w = client
        .ok(
            Method::GET,
            &format!("/v1/projects/{project}/workload?since={since}&until={until}"),
            client.admin_key(),
            None,
        )
        .await?;
    let rows = w["failure_category"].as_array().cloned().unwrap_or_default();
    let tagged: Vec<&Value> = rows.iter().filter(|r| r["key"].is_string()).collect();
    let total: f64 = tagged.iter().filter_map(|r| r["seconds"].as_f64()).sum();
    let answers: u64 = tagged.iter().filter_map(|r| r["answers"].as_u64()).sum();
    let mut out = serde_json::Map::new();
    for c in CATEGORIES {
        let s = tagged
            .iter()
            .find(|r| r["key"] == c)
            .and_then(|r| r["seconds"].as_f64())
            .unwrap_or(0.0);
        out.insert(c.into(), if total > 0.0 { json!(s / total) } else { json!(0.0) });
    }
    Ok((Value::Object(out), answers))
}

/// The true precision of the auto decisions per label and overall (against the dataset's
/// labels); a label never automated is null.
pub(super) fn precision(fates: &[Fate], tweets: &[Tweet]) -> Value {
    let mut out = serde_json::Map::new();
    let (mut all, mut all_right) = (0u64, 0u64);
    for l in LABELS {
        let (mut n, mut right) = (0u64, 0u64);
        for f in fates.iter().filter(|f| f.auto.as_deref() == Some(l)) {
            n += 1;
            right += u64::from(tweets[f.tweet].label == l);
        }
        all += n;
        all_right += right;
        out.insert(l.into(), ratio(right, n));
    }
    out.insert("overall".into(), ratio(all_right, all));
    Value::Object(out)
}

/// A point of the series after `done` tweets: the last segment's automation, expert share
/// and mean novelty (all tweets, and the family's), cumulative true precision and human
/// answers, and the model's thresholds.
pub(super) fn point(
    done: usize,
    seg: &[Fate],
    all: &[Fate],
    tweets: &[Tweet],
    human_answers: u64,
    model: &Value,
) -> Value {
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let auto = seg.iter().filter(|f| f.auto.is_some()).count() as u64;
    json!({
        "tweets": done,
        "automation_rate": ratio(auto, seg.len() as u64),
        "auto_precision_true": precision(all, tweets)["overall"],
        "expert_share": ratio(seg.iter().filter(|f| f.expert).count() as u64, seg.len() as u64),
        "family_tweets": seg.iter().filter(|f| f.family).count(),
        "family_to_experts": seg.iter().filter(|f| f.family && f.expert).count(),
        "novelty_mean": mean(seg.iter().filter_map(|f| f.novelty).collect()),
        "novelty_mean_family": mean(seg.iter().filter(|f| f.family).filter_map(|f| f.novelty).collect()),
        "human_answers": human_answers,
        "thresholds": model["thresholds"],
    })
}
