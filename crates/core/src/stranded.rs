//! Stranded work: open tasks of a tier no active reviewer of the project holds (an
//! escalation to tier 3 in a project whose reviewers hold tiers 1 and 2). Nobody can claim
//! them, so they wait until an admin grants the tier, overrides the item, or their SLA
//! acts. The rule is here; the server reads the open tasks per queue and tier and the
//! tiers the project's active reviewers hold (not deactivated, not held) and shows what
//! this returns.

use serde::Serialize;

/// Open tasks of one queue and tier, as the store counts them.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenWork {
    pub queue: String,
    pub tier: u8,
    pub open: i64,
    /// Age of the oldest of them.
    pub oldest_age_ms: i64,
}

/// A queue and tier whose open tasks no active reviewer can claim.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stranded {
    pub queue: String,
    pub tier: u8,
    pub open: i64,
    pub oldest_age_ms: i64,
}

impl Stranded {
    /// What the console says about it.
    pub fn sentence(&self) -> String {
        format!(
            "no active reviewer holds tier {}: {} open task{} in '{}' cannot be claimed",
            self.tier,
            self.open,
            if self.open == 1 { "" } else { "s" },
            self.queue
        )
    }
}

/// The queues and tiers of `open` with open tasks whose tier is not in `held_tiers` (the
/// tiers the project's active reviewers hold), by queue then tier.
pub fn stranded(open: impl IntoIterator<Item = OpenWork>, held_tiers: &[u8]) -> Vec<Stranded> {
    let mut out: Vec<Stranded> = open
        .into_iter()
        .filter(|w| w.open > 0 && !held_tiers.contains(&w.tier))
        .map(|w| Stranded {
            queue: w.queue,
            tier: w.tier,
            open: w.open,
            oldest_age_ms: w.oldest_age_ms,
        })
        .collect();
    out.sort_by(|a, b| (&a.queue, a.tier).cmp(&(&b.queue, b.tier)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(queue: &str, tier: u8, open: i64, age: i64) -> OpenWork {
        OpenWork {
            queue: queue.into(),
            tier,
            open,
            oldest_age_ms: age,
        }
    }

    /// The tiers held, and the (queue, tier) stranded under them.
    type Case<'a> = (&'a [u8], &'a [(&'a str, u8)]);

    #[test]
    fn a_tier_nobody_holds_is_stranded_and_held_tiers_are_not() {
        let cases: &[Case] = &[
            // (tiers held, stranded (queue, tier) expected)
            (&[1, 2], &[("hate", 3)]),
            (&[1, 2, 3], &[]),
            (&[3], &[("default", 1), ("hate", 1), ("hate", 2)]),
            (&[], &[("default", 1), ("hate", 1), ("hate", 2), ("hate", 3)]),
        ];
        for (held, want) in cases {
            let open = vec![
                work("hate", 3, 1, 5_000),
                work("hate", 1, 4, 9_000),
                work("default", 1, 2, 1_000),
                work("hate", 2, 1, 100),
                work("empty", 4, 0, 0),
            ];
            let got: Vec<(String, u8)> = stranded(open, held).into_iter().map(|s| (s.queue, s.tier)).collect();
            let want: Vec<(String, u8)> = want.iter().map(|(q, t)| (q.to_string(), *t)).collect();
            assert_eq!(got, want, "held {held:?}");
        }
    }

    #[test]
    fn it_keeps_the_count_and_age_and_says_which_tier() {
        let s = stranded(vec![work("hate", 3, 2, 7_000)], &[1, 2]);
        assert_eq!(
            s,
            vec![Stranded {
                queue: "hate".into(),
                tier: 3,
                open: 2,
                oldest_age_ms: 7_000
            }]
        );
        assert_eq!(
            s[0].sentence(),
            "no active reviewer holds tier 3: 2 open tasks in 'hate' cannot be claimed"
        );
    }
}
