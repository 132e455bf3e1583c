//! Where reviewer time goes: the answers of a window grouped by failure category, final
//! label, queue, tier and reviewer — time on task summed, its share, median and 90th
//! percentile, how often those answers sat on tasks whose answers disagreed or escalated —
//! and the findings that stand out, in words ("tier 2: 71% of time on `sarcasm` …").
//! Pure: the store reads one [`Answer`] per answer in the window; the server and the CLI
//! only format what [`report`] returns, so every figure is computed here, once.

use std::collections::BTreeMap;

use serde::Serialize;

/// One answer in the window, as the store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reviewer: String,
    pub queue: String,
    pub tier: u8,
    /// The failure category the reviewer picked, if any.
    pub failure_category: Option<String>,
    /// The item's final label (its resolution's), if it is resolved.
    pub label: Option<String>,
    /// The answer escalated its task.
    pub escalated: bool,
    /// The answer's task had label answers that did not all agree.
    pub disagreed: bool,
    /// Time on task: answered at minus claimed at, in milliseconds.
    pub ms: i64,
}

/// What answers are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    FailureCategory,
    Label,
    Queue,
    Tier,
    Reviewer,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::FailureCategory,
        Dimension::Label,
        Dimension::Queue,
        Dimension::Tier,
        Dimension::Reviewer,
    ];

    /// The name on the wire (`failure_category`, `label`, …).
    pub fn name(self) -> &'static str {
        match self {
            Dimension::FailureCategory => "failure_category",
            Dimension::Label => "label",
            Dimension::Queue => "queue",
            Dimension::Tier => "tier",
            Dimension::Reviewer => "reviewer",
        }
    }

    /// The name in a sentence.
    fn words(self) -> &'static str {
        match self {
            Dimension::FailureCategory => "failure category",
            Dimension::Label => "label",
            Dimension::Queue => "queue",
            Dimension::Tier => "tier",
            Dimension::Reviewer => "reviewer",
        }
    }

    /// An answer's key in this dimension (`None`: no failure category, or no final label).
    pub fn key(self, a: &Answer) -> Option<String> {
        match self {
            Dimension::FailureCategory => a.failure_category.clone(),
            Dimension::Label => a.label.clone(),
            Dimension::Queue => Some(a.queue.clone()),
            Dimension::Tier => Some(a.tier.to_string()),
            Dimension::Reviewer => Some(a.reviewer.clone()),
        }
    }
}

/// One key of a dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `None` for answers without one (no failure category; item not resolved).
    pub key: Option<String>,
    pub answers: u64,
    /// Time on task, summed.
    pub seconds: f64,
    /// `seconds` over the window's total (0 when no time was spent).
    pub time_share: f64,
    pub median_seconds: f64,
    pub p90_seconds: f64,
    /// Share of these answers whose task's label answers disagreed.
    pub disagreement_rate: f64,
    /// Share of these answers that escalated.
    pub escalation_rate: f64,
}

/// Something that stands out within a tier: a failure category or label taking a share of
/// the tier's time far above its share of the tier's answers, or a median far above the
/// rest's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub tier: u8,
    pub dimension: Dimension,
    pub key: String,
    /// Share of the tier's time on task.
    pub time_share: f64,
    /// Share of the tier's answers.
    pub answer_share: f64,
    pub median_seconds: f64,
    /// The median of the tier's other answers.
    pub rest_median_seconds: f64,
    /// The finding in words.
    pub text: String,
}

/// Everything the workload endpoint answers, figures included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub answers: u64,
    pub seconds: f64,
    /// In [`Dimension::ALL`]'s order; each dimension's rows by time share, highest first.
    pub dimensions: Vec<(Dimension, Vec<Row>)>,
    /// The strongest first, at most [`MAX_FINDINGS`].
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn rows(&self, d: Dimension) -> &[Row] {
        self.dimensions
            .iter()
            .find(|(x, _)| *x == d)
            .map_or(&[], |(_, rows)| rows.as_slice())
    }
}

/// A tier is looked into when it has at least this many answers ...
pub const MIN_TIER_ANSWERS: usize = 4;
/// ... a key when it has at least this many, and so do the tier's other answers.
pub const MIN_KEY_ANSWERS: usize = 2;
/// A key stands out when its share of the tier's time is at least this ...
pub const TIME_SHARE_AT_LEAST: f64 = 0.25;
/// ... and this many times its share of the tier's answers,
pub const OVER_ANSWER_SHARE: f64 = 1.5;
/// or when its median is at least this many times the median of the tier's other answers.
pub const OVER_REST_MEDIAN: f64 = 2.0;
pub const MAX_FINDINGS: usize = 5;

/// The `q` quantile (0 ≤ q ≤ 1) of sorted values, interpolated linearly between the two
/// nearest ranks (numpy's default, "type 7"): the median of an even count is the mean of
/// the middle two. 0 for no values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => {
            let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
            let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

fn seconds(a: &Answer) -> f64 {
    a.ms.max(0) as f64 / 1000.0
}

/// Time on task summed in whole milliseconds, then in seconds: exact, whatever the order
/// (a float sum would carry rounding noise into the figures, and start at −0.0).
fn total_seconds<'a>(answers: impl Iterator<Item = &'a Answer>) -> f64 {
    answers.map(|a| a.ms.max(0)).sum::<i64>() as f64 / 1000.0
}

fn sorted_seconds<'a>(answers: impl Iterator<Item = &'a Answer>) -> Vec<f64> {
    let mut v: Vec<f64> = answers.map(seconds).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// The rows of one dimension: by time share, highest first, then by answers, then by key
/// (no key last).
pub fn rows(answers: &[Answer], d: Dimension) -> Vec<Row> {
    let total = total_seconds(answers.iter());
    let mut groups: BTreeMap<Option<String>, Vec<&Answer>> = BTreeMap::new();
    for a in answers {
        groups.entry(d.key(a)).or_default().push(a);
    }
    let mut out: Vec<Row> = groups
        .into_iter()
        .map(|(key, group)| {
            let times = sorted_seconds(group.iter().copied());
            let n = group.len();
            let sum = total_seconds(group.iter().copied());
            Row {
                key,
                answers: n as u64,
                seconds: sum,
                time_share: share(sum, total),
                median_seconds: quantile(&times, 0.5),
                p90_seconds: quantile(&times, 0.9),
                disagreement_rate: group.iter().filter(|a| a.disagreed).count() as f64 / n as f64,
                escalation_rate: group.iter().filter(|a| a.escalated).count() as f64 / n as f64,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.time_share
            .total_cmp(&a.time_share)
            .then(b.answers.cmp(&a.answers))
            .then_with(|| match (&a.key, &b.key) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
    });
    out
}

/// Seconds as a sentence shows them: whole seconds from 10 s, one decimal below.
fn secs(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0} s")
    } else {
        format!("{v:.1} s")
    }
}

/// What stands out within each tier, by failure category and by final label: a key with
/// at least [`MIN_KEY_ANSWERS`] answers (and as many others in the tier) whose share of
/// the tier's time is at least [`TIME_SHARE_AT_LEAST`] and [`OVER_ANSWER_SHARE`] times its
/// share of the tier's answers, or whose median is at least [`OVER_REST_MEDIAN`] times
/// the other answers'. The strongest first: by how far the time share exceeds the answer
/// share, then by the ratio of medians.
pub fn findings(answers: &[Answer]) -> Vec<Finding> {
    let mut tiers: BTreeMap<u8, Vec<&Answer>> = BTreeMap::new();
    for a in answers {
        tiers.entry(a.tier).or_default().push(a);
    }
    let mut out: Vec<(f64, f64, Finding)> = Vec::new();
    for (tier, group) in tiers {
        if group.len() < MIN_TIER_ANSWERS {
            continue;
        }
        let total = total_seconds(group.iter().copied());
        if total <= 0.0 {
            continue;
        }
        for d in [Dimension::FailureCategory, Dimension::Label] {
            let mut keys: BTreeMap<String, ()> = BTreeMap::new();
            for a in &group {
                if let Some(k) = d.key(a) {
                    keys.insert(k, ());
                }
            }
            for key in keys.into_keys() {
                let (mine, rest): (Vec<&Answer>, Vec<&Answer>) =
                    group.iter().partition(|a| d.key(a).as_deref() == Some(key.as_str()));
                if mine.len() < MIN_KEY_ANSWERS || rest.len() < MIN_KEY_ANSWERS {
                    continue;
                }
                let times = sorted_seconds(mine.iter().copied());
                let others = sorted_seconds(rest.iter().copied());
                let time_share = total_seconds(mine.iter().copied()) / total;
                let answer_share = mine.len() as f64 / group.len() as f64;
                let (median, rest_median) = (quantile(&times, 0.5), quantile(&others, 0.5));
                let heavy = time_share >= TIME_SHARE_AT_LEAST && time_share >= OVER_ANSWER_SHARE * answer_share;
                let slow = median > rest_median && median >= OVER_REST_MEDIAN * rest_median;
                if !(heavy || slow) {
                    continue;
                }
                let text = format!(
                    "tier {tier}: {:.0}% of time on `{key}` ({}) for {:.0}% of answers, median {} against {} for the rest",
                    time_share * 100.0,
                    d.words(),
                    answer_share * 100.0,
                    secs(median),
                    secs(rest_median),
                );
                let ratio = if rest_median > 0.0 {
                    median / rest_median
                } else {
                    f64::INFINITY
                };
                out.push((
                    time_share - answer_share,
                    ratio,
                    Finding {
                        tier,
                        dimension: d,
                        key,
                        time_share,
                        answer_share,
                        median_seconds: median,
                        rest_median_seconds: rest_median,
                        text,
                    },
                ));
            }
        }
    }
    out.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.total_cmp(&a.1))
            .then(a.2.tier.cmp(&b.2.tier))
            .then(a.2.dimension.cmp(&b.2.dimension))
            .then(a.2.key.cmp(&b.2.key))
    });
    out.into_iter().take(MAX_FINDINGS).map(|(_, _, f)| f).collect()
}

/// The whole report over a window's answers.
pub fn report(answers: &[Answer]) -> Report {
    Report {
        answers: answers.len() as u64,
        seconds: total_seconds(answers.iter()),
        dimensions: Dimension::ALL.iter().map(|&d| (d, rows(answers, d))).collect(),
        findings: findings(answers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(reviewer: &str, tier: u8, category: Option<&str>, label: Option<&str>, secs: i64) -> Answer {
        Answer {
            reviewer: reviewer.into(),
            queue: format!("q{tier}"),
            tier,
            failure_category: category.map(Into::into),
            label: label.map(Into::into),
            escalated: false,
            disagreed: false,
            ms: secs * 1000,
        }
    }

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 10.0], 0.5), 2.5);
        // h = 0.9 × 3 = 2.7: 3 + 0.7 × (10 − 3).
        assert!((quantile(&[1.0, 2.0, 3.0, 10.0], 0.9) - 7.9).abs() < 1e-12);
        // 1..=10: h = 8.1 → 9.1.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((quantile(&v, 0.9) - 9.1).abs() < 1e-12);
        assert_eq!(quantile(&v, 0.5), 5.5);
    }

    #[test]
    fn rows_sum_times_and_rates_sorted_by_share() {
        let mut xs = vec![
            answer("ann", 1, Some("sarcasm"), Some("spam"), 30),
            answer("ann", 1, Some("sarcasm"), Some("ham"), 10),
            answer("bob", 1, None, Some("spam"), 20),
            answer("bob", 1, None, None, 40),
        ];
        xs[0].disagreed = true;
        xs[1].disagreed = true;
        xs[1].escalated = true;
        let r = rows(&xs, Dimension::Reviewer);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].key.as_deref(), Some("bob"));
        assert_eq!(r[0].seconds, 60.0);
        assert_eq!(r[0].time_share, 0.6);
        assert_eq!(r[0].median_seconds, 30.0);
        assert!((r[0].p90_seconds - 38.0).abs() < 1e-12);
        assert_eq!(r[0].disagreement_rate, 0.0);
        assert_eq!(r[1].key.as_deref(), Some("ann"));
        assert_eq!(r[1].time_share, 0.4);
        assert_eq!(r[1].disagreement_rate, 1.0);
        assert_eq!(r[1].escalation_rate, 0.5);

        // No key sorts after a key with the same share and answers.
        let c = rows(&xs, Dimension::FailureCategory);
        assert_eq!(c[0].key, None);
        assert_eq!(c[0].answers, 2);
        assert_eq!(c[1].key.as_deref(), Some("sarcasm"));
        let l = rows(&xs, Dimension::Label);
        assert_eq!(
            l.iter().map(|r| (r.key.as_deref(), r.seconds)).collect::<Vec<_>>(),
            vec![(Some("spam"), 50.0), (None, 40.0), (Some("ham"), 10.0)]
        );
        let t = rows(&xs, Dimension::Tier);
        assert_eq!(t[0].key.as_deref(), Some("1"));
        assert_eq!(t[0].time_share, 1.0);
    }

    #[test]
    fn an_empty_window_has_no_rows_and_no_findings() {
        let r = report(&[]);
        assert_eq!(r.answers, 0);
        assert!(r.seconds.is_sign_positive(), "0, not -0");
        assert!(r.dimensions.iter().all(|(_, rows)| rows.is_empty()));
        assert!(r.findings.is_empty());
        // Zero time: shares are 0, not NaN.
        let z = rows(&[answer("a", 1, None, None, 0)], Dimension::Queue);
        assert_eq!(z[0].time_share, 0.0);
        // Sums are exact: three answers of 100 ms are 0.3 s, not 0.30000000000000004.
        let tenths: Vec<Answer> = (0..3)
            .map(|_| Answer {
                ms: 100,
                ..answer("a", 1, None, None, 0)
            })
            .collect();
        assert_eq!(report(&tenths).seconds, 0.3);
    }

    #[test]
    fn a_category_eating_a_tiers_time_is_found_and_said() {
        // Tier 2: 3 `sarcasm` answers of 48 s, 5 others of 12 s. Sarcasm: 144 of 204 s
        // (71%) for 3 of 8 answers (38%), median 48 s against 12 s.
        let mut xs: Vec<Answer> = (0..3)
            .map(|_| answer("ann", 2, Some("sarcasm"), Some("spam"), 48))
            .collect();
        xs.extend((0..5).map(|_| answer("bob", 2, None, Some("spam"), 12)));
        // Tier 1 is even: nothing stands out there.
        xs.extend((0..4).map(|_| answer("cy", 1, Some("typo"), Some("ham"), 5)));
        xs.extend((0..4).map(|_| answer("cy", 1, None, Some("spam"), 5)));
        let f = findings(&xs);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].tier, 2);
        assert_eq!(f[0].dimension, Dimension::FailureCategory);
        assert_eq!(f[0].key, "sarcasm");
        assert!((f[0].time_share - 144.0 / 204.0).abs() < 1e-12);
        assert_eq!(f[0].answer_share, 3.0 / 8.0);
        assert_eq!((f[0].median_seconds, f[0].rest_median_seconds), (48.0, 12.0));
        assert_eq!(
            f[0].text,
            "tier 2: 71% of time on `sarcasm` (failure category) for 38% of answers, median 48 s against 12 s for the rest"
        );
        // Every tier-2 answer has the label `spam`: a key with no rest to compare is not a
        // finding, and the report carries the same findings.
        assert_eq!(report(&xs).findings, f);
    }

    #[test]
    fn a_slow_label_is_found_by_its_median_and_small_groups_are_not() {
        // Tier 1: `ham` answers take 30 s, `spam` 10 s, equal counts: the time share (75%)
        // is 1.5 × the answer share (50%) and the median 3 ×.
        let mut xs: Vec<Answer> = (0..3).map(|_| answer("a", 1, None, Some("ham"), 30)).collect();
        xs.extend((0..3).map(|_| answer("a", 1, None, Some("spam"), 10)));
        let f = findings(&xs);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].dimension, f[0].key.as_str()), (Dimension::Label, "ham"));
        assert_eq!(f[0].time_share, 0.75);
        assert!(f[0].text.contains("median 30 s against 10 s"), "{}", f[0].text);

        // One slow answer is no pattern; a tier of three answers is not looked into.
        let mut one: Vec<Answer> = vec![answer("a", 1, Some("odd"), None, 100)];
        one.extend((0..5).map(|_| answer("a", 1, None, None, 10)));
        assert!(findings(&one).is_empty());
        let small: Vec<Answer> = vec![
            answer("a", 1, Some("odd"), None, 100),
            answer("a", 1, Some("odd"), None, 100),
            answer("a", 1, None, None, 1),
        ];
        assert!(findings(&small).is_empty());
    }

    #[test]
    fn findings_are_capped_and_strongest_first() {
        // Six tiers, each with one heavy category; the heavier the tier's category, the
        // earlier its finding.
        let mut xs = Vec::new();
        for tier in 1..=6u8 {
            let slow = 10 + i64::from(tier) * 10;
            xs.extend((0..2).map(|_| answer("a", tier, Some("hard"), None, slow)));
            xs.extend((0..4).map(|_| answer("a", tier, None, None, 5)));
        }
        let f = findings(&xs);
        assert_eq!(f.len(), MAX_FINDINGS);
        assert_eq!(f.iter().map(|f| f.tier).collect::<Vec<_>>(), vec![6, 5, 4, 3, 2]);
    }
}
