//! Scenarios: a stream of items run through a Flywheel server, with simulated reviewers
//! working the queues, on simulated time.
//!
//! What makes a run reproducible — the same figures from the same seed on any machine, at
//! any load — is that nothing in it depends on wall-clock time: items arrive and reviews
//! take fixed simulated times ([`Clock`]); every draw comes from the seeded [`Rng`]; one
//! request is in flight at a time; and the model trains at fixed points of the stream
//! ([`Client::train`]), on a server whose background learner is off. A server that runs
//! its own learner (`--server`) still works, but then which model decides an item
//! depends on timing.
//!
//! The pieces every scenario shares live here: the staff, the work loop, and the
//! measures. Each scenario (`spam`, `moderation`, `fraud`, `triage`) is a module that
//! returns its summary as JSON; the binary writes it and draws its report.

pub mod fraud;
pub mod moderation;
pub mod spam;
pub mod triage;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::Error;
use crate::client::Client;
use crate::clock::Clock;
use crate::reviewer::{Profile, Reviewer};
use crate::rng::Rng;

/// What a scenario tells its caller as it goes, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Tick<'a> {
    /// The run will take this many steps in all.
    Total(u64),
    /// One step (a message) done.
    Step,
    /// A status line: the latest figures, or the phase.
    Note(&'a str),
}

/// Where a scenario reports progress.
pub type Progress<'a> = &'a mut dyn FnMut(Tick<'_>);

/// A project's staff: tier-1 reviewers of the given profiles, then two tier-2
/// adjudicators with the first profile.
pub async fn staff(client: &Client, project: &str, profiles: &[Profile]) -> Result<Vec<Reviewer>, Error> {
    let mut reviewers = Vec::with_capacity(profiles.len() + 2);
    for (i, profile) in profiles.iter().enumerate() {
        let name = format!("{project}-r{i}");
        let key = client.reviewer(&name, &[1], &[project]).await?;
        reviewers.push(Reviewer::new(name, key, *profile));
    }
    let lead = profiles
        .first()
        .copied()
        .ok_or_else(|| Error::Input("a scenario needs at least one reviewer".into()))?;
    for i in 0..2 {
        let name = format!("{project}-lead{i}");
        let key = client.reviewer(&name, &[2], &[project]).await?;
        reviewers.push(Reviewer::new(name, key, lead));
    }
    Ok(reviewers)
}

/// The reviewers work the project's queues until nothing is left: in rounds, each in
/// turn claims one task and answers it (the truth by `truth[external_id]`, or a mistake),
/// the clock moving by the review's time. Returns the answers given.
pub async fn work_queue(
    client: &Client,
    clock: &dyn Clock,
    project: &str,
    reviewers: &mut [Reviewer],
    labels: &[String],
    truth: &HashMap<String, String>,
    rng: &mut Rng,
) -> Result<u64, Error> {
    let mut answers = 0;
    loop {
        let mut any = false;
        for r in reviewers.iter_mut() {
            let Some(task) = client.claim(project, &r.key).await? else {
                continue;
            };
            any = true;
            let right = truth
                .get(task["item"]["external_id"].as_str().unwrap_or_default())
                .map_or("", String::as_str);
            let answer = r.answer(right, labels, rng);
            clock.advance_ms(answer.took_ms);
            client.answer(&r.key, &task, &answer.label).await?;
            answers += 1;
        }
        if !any {
            return Ok(answers);
        }
    }
}

/// A JSON-lines data file, read and checked: blank lines skipped, each record parsed as `T`
/// (an error names `path:line` and the `record` expected) and passed to `check` (its
/// refusal named at the same place), only the first `limit` kept, and a file with none of
/// them (`plural`) refused.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    limit: Option<usize>,
    record: &str,
    plural: &str,
    mut check: impl FnMut(&T) -> Result<(), String>,
) -> Result<Vec<T>, Error> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| Error::Input(format!("cannot open {}: {e}", path.display())))?;
    let mut rows = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = || format!("{}:{}", path.display(), n + 1);
        let line = line.map_err(|e| Error::Input(format!("{}: {e}", at())))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: T = serde_json::from_str(&line).map_err(|e| Error::Input(format!("{}: not {record}: {e}", at())))?;
        check(&row).map_err(|e| Error::Input(format!("{}: {e}", at())))?;
        rows.push(row);
    }
    if let Some(l) = limit {
        rows.truncate(l);
    }
    if rows.is_empty() {
        return Err(Error::Input(format!("{} has no {plural}", path.display())));
    }
    Ok(rows)
}

/// F1 of the positive class from (truth, predicted) flags; `None` with no positives at all.
pub fn f1(truth: impl Iterator<Item = bool>, predicted: impl Iterator<Item = bool>) -> Option<f64> {
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for (t, p) in truth.zip(predicted) {
        match (t, p) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    (tp + fp + fn_ > 0).then(|| f64::from(2 * tp) / f64::from(2 * tp + fp + fn_))
}

/// For each F1 target, the human labels used when `key` (once at least `min_messages`
/// have streamed) first reached it, or null.
pub fn labels_to_reach(series: &[Value], key: &str, min_messages: u64, targets: &[f64]) -> Value {
    let mut out = serde_json::Map::new();
    for t in targets {
        let hit = series
            .iter()
            .filter(|p| p["messages"].as_u64().unwrap_or(0) >= min_messages)
            .find(|p| p[key].as_f64().is_some_and(|f| f >= *t));
        out.insert(format!("{t}"), hit.map_or(Value::Null, |p| p["human_labels"].clone()));
    }
    Value::Object(out)
}

/// `json!` of an optional ratio.
fn ratio(num: u64, den: u64) -> Value {
    if den > 0 {
        json!(num as f64 / den as f64)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_counts_the_positive_class() {
        let t = [true, true, false, false, true];
        let p = [true, false, true, false, true];
        // tp 2, fp 1, fn 1: 4 / 6.
        let got = f1(t.into_iter(), p.into_iter()).unwrap();
        assert!((got - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(f1([false].into_iter(), [false].into_iter()), None);
    }

    #[test]
    fn labels_to_reach_takes_the_first_point_past_the_warm_up() {
        let series = vec![
            json!({"messages": 50, "human_labels": 100, "f": 0.95}),
            json!({"messages": 100, "human_labels": 180, "f": 0.86}),
            json!({"messages": 150, "human_labels": 250, "f": 0.91}),
        ];
        let got = labels_to_reach(&series, "f", 100, &[0.85, 0.9, 0.99]);
        assert_eq!(got, json!({"0.85": 180, "0.9": 250, "0.99": null}));
    }
}
