//! The moderation demo's people: the simulated staff (L1 reviewers, L2 adjudicators,
//! experts), how each answers a task, and how they work the queues through the API.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::data::Tweet;
use super::{CARELESS, CATEGORIES, CLARITY, ESCALATE, EXPERT_ACCURACY, L2_ACCURACY, LABELS};
use crate::Error;
use crate::client::Client;
use crate::clock::Clock;
use crate::rng::Rng;

/// Who a simulated reviewer is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Tier 1: draws from the votes, leaning toward a label by a factor (1: none);
    /// `careless` of the answers are a coin toss.
    L1 { lean: (usize, f64), careless: f64 },
    /// Tier 2: adjudications.
    L2,
    /// Tier 3: novel content.
    Expert,
}

pub(super) struct Person {
    name: String,
    key: String,
    role: Role,
    held: bool,
}

/// The staff: six L1 reviewers (one careless), two L2 adjudicators, two experts.
pub(super) async fn staff(client: &Client, project: &str) -> Result<Vec<Person>, Error> {
    let l1 = [
        ((0, 1.0), 0.0),
        ((0, 1.4), 0.0),
        ((1, 1.3), 0.0),
        ((2, 1.3), 0.0),
        ((0, 0.7), 0.0),
        ((1, 1.0), CARELESS),
    ];
    let mut people = Vec::new();
    for (i, (lean, careless)) in l1.into_iter().enumerate() {
        let name = format!("{project}-l1-{i}");
        let key = client.reviewer(&name, &[1], &[project]).await?;
        people.push(Person {
            name,
            key,
            role: Role::L1 { lean, careless },
            held: false,
        });
    }
    for (tier, role, n) in [(2u8, Role::L2, 2), (3, Role::Expert, 2)] {
        for i in 0..n {
            let name = format!("{project}-{}-{i}", if tier == 2 { "l2" } else { "expert" });
            let key = client.reviewer(&name, &[tier], &[project]).await?;
            people.push(Person {
                name,
                key,
                role,
                held: false,
            });
        }
    }
    Ok(people)
}

/// The vote shares of a tweet, in [`LABELS`] order, with the clarification applied when
/// `clarified`: of the votes for the wrong one of hate and offensive, [`CLARITY`] move to
/// the right one.
fn shares(t: &Tweet, clarified: bool) -> [f64; 3] {
    let total: u32 = t.votes.values().sum();
    let mut s = LABELS.map(|l| f64::from(*t.votes.get(l).unwrap_or(&0)) / f64::from(total.max(1)));
    if clarified {
        let (right, wrong) = match t.label.as_str() {
            "hate" => (0, 1),
            "offensive" => (1, 0),
            _ => return s,
        };
        let moved = s[wrong] * CLARITY;
        s[wrong] -= moved;
        s[right] += moved;
    }
    s
}

/// A label drawn from `weights` (not all zero).
fn draw(weights: &[f64; 3], rng: &mut Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.unit() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// What a person does with a task.
#[derive(Debug, Clone, PartialEq)]
enum Act {
    Label {
        label: usize,
        category: Option<&'static str>,
    },
    Escalate,
}

/// An L1 answer: maybe an escalation (torn between hate and offensive, on a regular
/// review), else a draw from the biased shares, or a coin toss.
fn l1_answer(t: &Tweet, lean: (usize, f64), careless: f64, may_escalate: bool, clarified: bool, rng: &mut Rng) -> Act {
    let s = shares(t, clarified);
    let torn = if s[0] + s[1] > 0.0 {
        2.0 * s[0].min(s[1]) / (s[0] + s[1])
    } else {
        0.0
    };
    if may_escalate && rng.chance(ESCALATE * torn) {
        return Act::Escalate;
    }
    if rng.chance(careless) {
        return Act::Label {
            label: rng.below(LABELS.len()),
            category: None,
        };
    }
    let mut w = s;
    w[lean.0] *= lean.1;
    Act::Label {
        label: draw(&w, rng),
        category: None,
    }
}

/// The label index of `t`'s dataset label.
fn truth(t: &Tweet) -> usize {
    LABELS.iter().position(|l| *l == t.label).unwrap_or(0)
}

/// A label right with `accuracy`, else drawn from the raw shares (the plausible mistakes).
fn careful(t: &Tweet, accuracy: f64, rng: &mut Rng) -> usize {
    if rng.chance(accuracy) {
        truth(t)
    } else {
        draw(&shares(t, false), rng)
    }
}

/// The boundary an adjudication settles, from the labels its task's earlier answers gave
/// (an escalation counts as torn between hate and offensive).
fn category(task: &Value) -> &'static str {
    let mut seen = [false; 3];
    for a in task["context"]["answers"].as_array().into_iter().flatten() {
        match a["answer"].as_str() {
            Some("escalate") => {
                seen[0] = true;
                seen[1] = true;
            }
            _ => {
                if let Some(i) = LABELS.iter().position(|l| a["label"] == *l) {
                    seen[i] = true;
                }
            }
        }
    }
    match seen {
        [true, true, false] => CATEGORIES[0],
        [false, true, true] => CATEGORIES[1],
        [true, false, true] => CATEGORIES[2],
        _ => CATEGORIES[3],
    }
}

/// Simulated time a task takes a person: L1 10–20 s, L2 30–90 s, experts 60 s, each
/// longer the fewer of the votes went to the tweet's label.
fn took_ms(role: Role, t: &Tweet) -> i64 {
    let s = shares(t, false);
    let hard = 1.0 - s.iter().copied().fold(0.0, f64::max);
    let (base, extra) = match role {
        Role::L1 { .. } => (10_000.0, 15_000.0),
        Role::L2 => (30_000.0, 90_000.0),
        Role::Expert => (60_000.0, 30_000.0),
    };
    (base + extra * hard).round() as i64
}

/// What the run counts per stream position of the tweet a task is about.
#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    /// L1 labels given on the tweet's regular (`l1`) review task.
    pub(super) l1_labels: Vec<usize>,
    pub(super) l1_escalations: u32,
    pub(super) l2_answers: u32,
}

/// The reviewers work the queues until nothing is left: in rounds, each in turn claims
/// one task and answers it, the clock moving by the time it took. Held reviewers drop
/// out. Returns the answers given.
#[allow(clippy::too_many_arguments)]
pub(super) async fn work(
    client: &Client,
    clock: &dyn Clock,
    people: &mut [Person],
    tweets: &[Tweet],
    index: &HashMap<String, usize>,
    counts: &mut HashMap<usize, Counts>,
    clarified: bool,
    rng: &mut Rng,
) -> Result<u64, Error> {
    let mut answers = 0;
    loop {
        let mut any = false;
        for p in people.iter_mut().filter(|p| !p.held) {
            let path = format!("/v1/projects/{}/claim", project_of(&p.name));
            let task = match client.call(Method::POST, &path, &p.key, Some(&json!({}))).await? {
                (204, _) => continue,
                (200, task) => task,
                (_, body) if body["error"]["code"] == "reviewer_held" => {
                    p.held = true;
                    continue;
                }
                (status, body) => return Err(Error::Status { path, status, body }),
            };
            any = true;
            let id = task["item"]["external_id"].as_str().unwrap_or_default();
            let i = *index
                .get(id)
                .ok_or_else(|| Error::Unexpected(format!("a task about an unknown item '{id}'")))?;
            let t = &tweets[i];
            let gold = id.starts_with("gold-");
            let regular = task["stage"] == "review" && task["queue"] == "l1" && !gold;
            let act = match p.role {
                Role::L1 { lean, careless } => l1_answer(t, lean, careless, regular, clarified, rng),
                // A gold copy of an adjudication settles no boundary of its own.
                Role::L2 => Act::Label {
                    label: careful(t, L2_ACCURACY, rng),
                    category: (!gold).then(|| category(&task)),
                },
                Role::Expert => Act::Label {
                    label: careful(t, EXPERT_ACCURACY, rng),
                    category: None,
                },
            };
            clock.advance_ms(took_ms(p.role, t));
            let mut body = json!({
                "lease_id": task["lease_id"],
                "review_id": format!("{}-{}", task["task_id"], task["lease_id"]),
            });
            match &act {
                Act::Label { label, category } => {
                    body["label"] = json!(LABELS[*label]);
                    if let Some(c) = category {
                        body["failure_category"] = json!(c);
                    }
                }
                Act::Escalate => body["escalate"] = json!({"reason": "hate or offensive? the guideline does not say"}),
            }
            let path = format!("/v1/tasks/{}/reviews", task["task_id"]);
            match client.call(Method::POST, &path, &p.key, Some(&body)).await? {
                (200, _) => {}
                // The answer that placed a hold is stored; a lease cancelled meanwhile is not.
                (_, body) if body["error"]["code"] == "lease_lost" => continue,
                (status, body) => return Err(Error::Status { path, status, body }),
            }
            answers += 1;
            if !gold {
                let c = counts.entry(i).or_default();
                match (&act, p.role) {
                    (Act::Label { label, .. }, Role::L1 { .. }) if regular => c.l1_labels.push(*label),
                    (Act::Escalate, _) => c.l1_escalations += 1,
                    (_, Role::L2) => c.l2_answers += 1,
                    _ => {}
                }
            }
        }
        if !any {
            return Ok(answers);
        }
    }
}

/// The project a staff member's name starts with (`{project}-l1-0`).
fn project_of(name: &str) -> &str {
    name.rsplitn(3, '-').nth(2).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::super::data::tweet;
    use super::*;

    #[test]
    fn clarification_moves_the_hate_offensive_confusion() {
        let t = tweet("a", "x", "offensive", [2, 4, 0]);
        let before = shares(&t, false);
        let after = shares(&t, true);
        assert!((before[0] - 1.0 / 3.0).abs() < 1e-12);
        assert!((after[0] - 1.0 / 6.0).abs() < 1e-12 && (after[1] - 5.0 / 6.0).abs() < 1e-12);
        let n = tweet("b", "x", "neither", [1, 1, 4]);
        assert_eq!(shares(&n, true), shares(&n, false), "only hate and offensive move");
    }

    #[test]
    fn adjudications_are_tagged_by_the_boundary() {
        let task = |a: Value| json!({"context": {"answers": a}});
        assert_eq!(
            category(&task(
                json!([{"answer": "label", "label": "hate"}, {"answer": "label", "label": "offensive"}])
            )),
            "hate_vs_offensive"
        );
        assert_eq!(
            category(&task(
                json!([{"answer": "escalate"}, {"answer": "label", "label": "offensive"}])
            )),
            "hate_vs_offensive"
        );
        assert_eq!(
            category(&task(
                json!([{"answer": "label", "label": "neither"}, {"answer": "label", "label": "offensive"}])
            )),
            "offensive_vs_neither"
        );
        assert_eq!(category(&json!({})), "other");
    }

    #[test]
    fn project_names_come_back_from_staff_names() {
        assert_eq!(project_of("moderation-1-l1-3"), "moderation-1");
        assert_eq!(project_of("moderation-12-expert-0"), "moderation-12");
    }
}
