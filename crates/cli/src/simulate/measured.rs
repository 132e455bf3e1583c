//! `simulate policy --project P --server URL`: a project's items and its reviewers'
//! measured figures, through the public API only — `GET /v1/projects/P` (labels, policy)
//! and `GET …/export?format=jsonl` (each item with its prediction, decision, resolution
//! and answers).
//!
//! Per tier: the mean time per answer (claim to answer, the export's `time_ms`) and the
//! share of answers equal to the item's final label (a stand-in for accuracy that leans
//! high, since those answers helped decide that label). An answer's tier is read from the
//! project's current policy: a review task's is its rule's tier (rule `default`: 1), an
//! audit's the audit tier, an adjudication's one above the task it settles. Items decided
//! under an older policy version whose rules differ are counted under today's tiers.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use flywheel_core::policy::{Action, MAX_TIER, PolicySpec};
use serde::Serialize;
use serde_json::Value;

/// What the server gave.
pub struct Fetched {
    pub labels: Vec<String>,
    pub policy: Value,
    /// The export's rows (JSON lines, parsed).
    pub rows: Vec<Value>,
}

/// One tier's measured figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measured {
    pub answers: u64,
    pub handle_seconds: Option<f64>,
    /// Answers on resolved items.
    pub resolved_answers: u64,
    /// Share of those equal to the final label.
    pub accuracy: Option<f64>,
}

async fn get(client: &reqwest::Client, url: reqwest::Url, key: &str) -> anyhow::Result<String> {
    let resp = client
        .get(url.clone())
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("{url}: the answer broke off"))?;
    if !status.is_success() {
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        bail!("{url}: the server refused ({status}): {detail}");
    }
    Ok(text)
}

/// Reads the project and its export.
pub fn fetch(server: &str, key: &str, project: &str, since: Option<&str>) -> anyhow::Result<Fetched> {
    let base = format!("{}/v1/projects/{project}", server.trim_end_matches('/'));
    let project_url = reqwest::Url::parse(&base).with_context(|| format!("--server {server} is not a URL"))?;
    let mut export_url = reqwest::Url::parse(&format!("{base}/export"))?;
    export_url.query_pairs_mut().append_pair("format", "jsonl");
    if let Some(s) = since {
        export_url.query_pairs_mut().append_pair("since", s);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let client = reqwest::Client::new();
        let p: Value =
            serde_json::from_str(&get(&client, project_url, key).await?).context("the project's answer is not JSON")?;
        let labels = serde_json::from_value(p["labels"].clone()).context("the project's labels")?;
        let text = get(&client, export_url, key).await?;
        let rows = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("export line {}", i + 1)))
            .collect::<anyhow::Result<Vec<Value>>>()?;
        Ok(Fetched {
            labels,
            policy: p["policy"].clone(),
            rows,
        })
    })
}

/// Per tier, the time per answer and agreement with the final label of the export's
/// answers (tiers read from the project's policy, see the module).
pub fn per_tier(f: &Fetched) -> BTreeMap<u8, Measured> {
    let Ok(spec) = serde_json::from_value::<PolicySpec>(f.policy.clone()) else {
        return BTreeMap::new();
    };
    let rule_tier: HashMap<&str, u8> = spec
        .rules
        .iter()
        .filter(|r| r.action == Action::Review)
        .map(|r| (r.name.as_str(), r.tier.unwrap_or(1)))
        .collect();
    let audit_tier = spec.audit.as_ref().map_or(1, |a| a.tier);
    let learning = spec.active_learning.as_ref().map(|a| (a.queue.as_str(), a.tier));
    // Sums: answers, milliseconds, resolved answers, agreeing answers.
    let mut sums: BTreeMap<u8, (u64, f64, u64, u64)> = BTreeMap::new();
    for row in &f.rows {
        let d = &row["decision"];
        let base = match d["action"].as_str() {
            Some("review") => {
                let (rule, queue) = (d["rule"].as_str().unwrap_or_default(), d["queue"].as_str());
                match (rule_tier.get(rule), learning) {
                    (Some(t), _) => *t,
                    // Active learning keeps the auto rule's name and sends to its queue.
                    (None, Some((q, t))) if Some(q) == queue => t,
                    (None, _) => 1,
                }
            }
            Some("auto") => audit_tier,
            _ => continue,
        };
        let resolved = row["resolution"]["label"].as_str();
        let Some(reviews) = row["reviews"].as_array() else {
            continue;
        };
        for r in reviews {
            if r["answer"].as_str() != Some("label") {
                continue;
            }
            let tier = match r["stage"].as_str() {
                Some("adjudicate") => base.saturating_add(1).min(MAX_TIER),
                Some("review") | Some("audit") => base,
                _ => continue,
            };
            let s = sums.entry(tier).or_default();
            s.0 += 1;
            s.1 += r["time_ms"].as_f64().unwrap_or(0.0);
            if let Some(label) = resolved {
                s.2 += 1;
                if r["label"].as_str() == Some(label) {
                    s.3 += 1;
                }
            }
        }
    }
    sums.into_iter()
        .map(|(t, (n, ms, resolved, agree))| {
            (
                t,
                Measured {
                    answers: n,
                    handle_seconds: (n > 0).then(|| ms / n as f64 / 1000.0),
                    resolved_answers: resolved,
                    accuracy: (resolved > 0).then(|| agree as f64 / resolved as f64),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn review(stage: &str, label: &str, ms: i64) -> Value {
        json!({"reviewer": "r", "stage": stage, "answer": "label", "label": label, "time_ms": ms})
    }

    #[test]
    fn answers_are_counted_at_their_tier() {
        let f = Fetched {
            labels: vec!["a".into(), "b".into()],
            policy: json!({"rules": [
                {"name": "hard", "when": "true", "action": "review", "queue": "experts", "tier": 2, "overlap": 2},
                {"name": "sure", "when": "true", "action": "auto"}],
                "audit": {"queue": "audit", "tier": 3},
                "active_learning": {"strategy": "random", "budget_per_1000": 10, "queue": "learn", "tier": 4}}),
            rows: vec![
                // Two tier-2 answers that split, adjudicated at tier 3 to "a".
                json!({"decision": {"action": "review", "rule": "hard", "queue": "experts"},
                       "resolution": {"label": "a"},
                       "reviews": [review("review", "a", 2000), review("review", "b", 4000), review("adjudicate", "a", 9000)]}),
                // An audit at tier 3, and a skip that is not an answer.
                json!({"decision": {"action": "auto", "rule": "sure", "audit": true},
                       "resolution": {"label": "b"},
                       "reviews": [review("audit", "a", 1000),
                                   {"reviewer": "r", "stage": "audit", "answer": "skip", "label": null, "time_ms": 50}]}),
                // The default queue (tier 1), not resolved yet.
                json!({"decision": {"action": "review", "rule": "default", "queue": "default"}, "resolution": null,
                       "reviews": [review("review", "b", 3000)]}),
                // Active learning keeps the auto rule's name and goes to its queue.
                json!({"decision": {"action": "review", "rule": "sure", "queue": "learn"}, "resolution": {"label": "a"},
                       "reviews": [review("review", "a", 5000)]}),
            ],
        };
        let m = per_tier(&f);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(
            (m[&1].answers, m[&1].handle_seconds, m[&1].accuracy),
            (1, Some(3.0), None)
        );
        assert_eq!(
            (m[&2].answers, m[&2].handle_seconds, m[&2].accuracy),
            (2, Some(3.0), Some(0.5))
        );
        // The adjudication (right) and the audit (wrong: the item resolved "b").
        assert_eq!(
            (m[&3].answers, m[&3].handle_seconds, m[&3].accuracy),
            (2, Some(5.0), Some(0.5))
        );
        assert_eq!((m[&4].answers, m[&4].accuracy), (1, Some(1.0)));
    }
}
