//! Inter-annotator agreement: how much reviewers agree beyond what chance would give.
//! Cohen's κ for two raters, Fleiss' κ and Randolph's free-marginal κ for a subject ×
//! category count table, Krippendorff's α (nominal) for any raters with missing answers,
//! and pairwise Cohen's κ between the workers of a [`CrowdData`] who share the most tasks.
//!
//! Each statistic is computed the way a well-known Python library computes it, so the
//! figures can be checked against it (`tests/reference.rs`): scikit-learn's
//! `cohen_kappa_score`, statsmodels' `fleiss_kappa` (methods `fleiss` and `randolph`), and
//! the `krippendorff` package's `alpha(level_of_measurement="nominal")`.
//!
//! A statistic that is undefined for its input (0/0, e.g. both raters always give the same
//! label) is `None`, never NaN. Counts are summed as integers, so "undefined" is decided
//! exactly.

use std::collections::{BTreeMap, HashMap};

use crate::crowd::{ByWorker, CrowdData};
use crate::error::ValidationError;

/// Cohen's κ and its parts for two raters over `n` shared items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CohenKappa {
    pub n: usize,
    /// p_o: the fraction of items both raters labelled alike.
    pub observed_agreement: f64,
    /// p_e: the agreement expected from each rater's label frequencies alone.
    pub expected_agreement: f64,
    /// (p_o − p_e) / (1 − p_e); `None` when p_e = 1 (both raters used one and the same label).
    pub kappa: Option<f64>,
}

/// Cohen's κ of two raters, one (label of rater a, label of rater b) pair per item, as
/// scikit-learn's `cohen_kappa_score` (unweighted). `None` when there are no items.
pub fn cohen_kappa<L: Ord>(pairs: impl IntoIterator<Item = (L, L)>) -> Option<CohenKappa> {
    let mut index: BTreeMap<L, usize> = BTreeMap::new();
    let mut coded = Vec::new();
    for (a, b) in pairs {
        let next = index.len();
        let ia = *index.entry(a).or_insert(next);
        let next = index.len();
        let ib = *index.entry(b).or_insert(next);
        coded.push((ia, ib));
    }
    let k = index.len();
    let mut counts = vec![0u64; k * k];
    for (a, b) in coded {
        counts[a * k + b] += 1;
    }
    cohen_from_counts(k, &counts)
}

/// Cohen's κ from a dense k × k contingency table (row: rater a's label, column: b's).
pub fn cohen_from_counts(k: usize, counts: &[u64]) -> Option<CohenKappa> {
    assert_eq!(counts.len(), k * k, "a k × k table");
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return None;
    }
    let diag: u64 = (0..k).map(|i| counts[i * k + i]).sum();
    // Σ_i rowsum_i · colsum_i, exactly.
    let chance: u128 = (0..k)
        .map(|i| {
            let row: u64 = counts[i * k..(i + 1) * k].iter().sum();
            let col: u64 = (0..k).map(|j| counts[j * k + i]).sum();
            u128::from(row) * u128::from(col)
        })
        .sum();
    let n2 = u128::from(n) * u128::from(n);
    // scikit-learn: κ = 1 − Σ_{i≠j} observed_ij / Σ_{i≠j} expected_ij.
    let kappa = (n2 != chance).then(|| 1.0 - ((n - diag) as f64 * n as f64) / (n2 - chance) as f64);
    Some(CohenKappa {
        n: n as usize,
        observed_agreement: diag as f64 / n as f64,
        expected_agreement: chance as f64 / n2 as f64,
        kappa,
    })
}

/// A subject × category table of rating counts in which every subject has the same number
/// (at least 2) of ratings — what Fleiss' κ is defined on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountTable {
    n_categories: usize,
    raters: u64,
    /// Row-major, `subjects × n_categories`.
    counts: Vec<u64>,
}

impl CountTable {
    /// Checks that the rows are non-empty, equally long, and each sums to the same number
    /// of raters (≥ 2).
    pub fn new(rows: &[Vec<u64>]) -> Result<Self, ValidationError> {
        let Some(first) = rows.first() else {
            return Err(ValidationError::new("table", "has no subjects"));
        };
        let n_categories = first.len();
        if n_categories == 0 {
            return Err(ValidationError::new("table[0]", "has no categories"));
        }
        let raters: u64 = first.iter().sum();
        if raters < 2 {
            return Err(ValidationError::new("table[0]", "needs at least 2 ratings"));
        }
        let mut counts = Vec::with_capacity(rows.len() * n_categories);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != n_categories {
                return Err(ValidationError::new(
                    format!("table[{i}]"),
                    format!("has {} categories, expected {n_categories}", row.len()),
                ));
            }
            let sum: u64 = row.iter().sum();
            if sum != raters {
                return Err(ValidationError::new(
                    format!("table[{i}]"),
                    format!("has {sum} ratings, expected {raters} like the first subject"),
                ));
            }
            counts.extend_from_slice(row);
        }
        Ok(Self {
            n_categories,
            raters,
            counts,
        })
    }

    /// The count table of a subject × rater matrix of labels, with its categories (the
    /// distinct labels, sorted), as statsmodels' `aggregate_raters`.
    pub fn from_ratings<L: Ord + Clone>(ratings: &[Vec<L>]) -> Result<(Self, Vec<L>), ValidationError> {
        let categories: Vec<L> = {
            let mut all: Vec<L> = ratings.iter().flatten().cloned().collect();
            all.sort();
            all.dedup();
            all
        };
        let rows: Vec<Vec<u64>> = ratings
            .iter()
            .map(|subject| {
                let mut row = vec![0u64; categories.len()];
                for l in subject {
                    row[categories.binary_search(l).expect("a category")] += 1;
                }
                row
            })
            .collect();
        Ok((Self::new(&rows)?, categories))
    }

    pub fn n_subjects(&self) -> usize {
        self.counts.len() / self.n_categories
    }
    pub fn n_categories(&self) -> usize {
        self.n_categories
    }
    /// Ratings per subject.
    pub fn raters(&self) -> u64 {
        self.raters
    }
    pub fn row(&self, subject: usize) -> &[u64] {
        &self.counts[subject * self.n_categories..(subject + 1) * self.n_categories]
    }

    /// (P̄, the mean pairwise agreement within subjects) as statsmodels computes it.
    fn mean_subject_agreement(&self) -> f64 {
        let n = self.raters as f64;
        let squares: u64 = self.counts.iter().map(|c| c * c).sum();
        let subjects = self.n_subjects() as f64;
        (squares as f64 - subjects * n) / (subjects * n * (n - 1.0))
    }
}

/// Fleiss' κ (statsmodels `fleiss_kappa(table, method="fleiss")`): chance agreement from
/// the pooled category frequencies. `None` when all ratings fall in one category.
pub fn fleiss_kappa(table: &CountTable) -> Option<f64> {
    let k = table.n_categories;
    let mut totals = vec![0u64; k];
    for s in 0..table.n_subjects() {
        for (t, c) in totals.iter_mut().zip(table.row(s)) {
            *t += c;
        }
    }
    let total: u128 = totals.iter().map(|&t| u128::from(t)).sum();
    let squares: u128 = totals.iter().map(|&t| u128::from(t) * u128::from(t)).sum();
    if squares == total * total {
        return None;
    }
    let p_e = squares as f64 / (total as f64 * total as f64);
    Some((table.mean_subject_agreement() - p_e) / (1.0 - p_e))
}

/// Randolph's free-marginal κ (statsmodels `fleiss_kappa(table, method="randolph")`):
/// chance agreement 1/k for k categories. `None` for a single category.
pub fn randolph_kappa(table: &CountTable) -> Option<f64> {
    let k = table.n_categories;
    (k > 1).then(|| {
        let p_e = 1.0 / k as f64;
        (table.mean_subject_agreement() - p_e) / (1.0 - p_e)
    })
}

/// A crowd dataset's count table for Fleiss' κ. Fleiss' κ needs the same number of
/// ratings per subject, so only the tasks with the modal number of answers are used (the
/// most common count among tasks with at least 2 answers; a tie goes to the larger count).
/// The columns are the labels that occur in those tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModalTable {
    pub table: CountTable,
    /// The tasks used, one per table row.
    pub tasks: Vec<u32>,
    /// The labels of the columns.
    pub categories: Vec<u32>,
    /// Tasks left out for having another number of answers.
    pub n_dropped: usize,
}

/// The modal-answer-count table of `data`; `None` when no task has 2 or more answers.
pub fn modal_count_table(data: &CrowdData) -> Option<ModalTable> {
    let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
    for t in 0..data.n_tasks() {
        let m = data.task_len(t);
        if m >= 2 {
            *histogram.entry(m).or_default() += 1;
        }
    }
    let (&raters, _) = histogram.iter().max_by_key(|&(m, n)| (*n, *m))?;
    let tasks: Vec<u32> = (0..data.n_tasks())
        .filter(|&t| data.task_len(t) == raters)
        .map(|t| t as u32)
        .collect();
    let labels = data.answer_labels();
    let mut present = vec![false; data.n_labels()];
    for &t in &tasks {
        for a in data.task_range(t as usize) {
            present[labels[a] as usize] = true;
        }
    }
    let categories: Vec<u32> = (0..data.n_labels() as u32).filter(|&l| present[l as usize]).collect();
    let mut column = vec![usize::MAX; data.n_labels()];
    for (i, &l) in categories.iter().enumerate() {
        column[l as usize] = i;
    }
    let rows: Vec<Vec<u64>> = tasks
        .iter()
        .map(|&t| {
            let mut row = vec![0u64; categories.len()];
            for a in data.task_range(t as usize) {
                row[column[labels[a] as usize]] += 1;
            }
            row
        })
        .collect();
    let table = CountTable::new(&rows).expect("equal rows of at least 2 ratings by construction");
    Some(ModalTable {
        n_dropped: data.n_tasks() - tasks.len(),
        table,
        tasks,
        categories,
    })
}

/// Krippendorff's α from per-unit value counts (`k` values, each unit a slice of `k`
/// counts). Units with fewer than 2 values are not pairable and are ignored.
fn alpha_from_units<'a>(k: usize, units: impl IntoIterator<Item = &'a [u64]>) -> Option<f64> {
    let mut totals = vec![0u64; k];
    let mut disagreement = 0.0;
    for unit in units {
        let m: u64 = unit.iter().sum();
        if m < 2 {
            continue;
        }
        let same: u64 = unit.iter().map(|c| c * c).sum();
        // Σ_{c≠k} of this unit's coincidences: (m² − Σ n_c²) / (m − 1).
        disagreement += (m * m - same) as f64 / (m - 1) as f64;
        for (t, c) in totals.iter_mut().zip(unit) {
            *t += c;
        }
    }
    let n: u128 = totals.iter().map(|&t| u128::from(t)).sum();
    let squares: u128 = totals.iter().map(|&t| u128::from(t) * u128::from(t)).sum();
    if n < 2 || squares == n * n {
        return None;
    }
    // α = 1 − D_o / D_e with D_e ∝ Σ_{c≠k} n_c n_k / (n − 1).
    Some(1.0 - (n - 1) as f64 * disagreement / (n * n - squares) as f64)
}

/// Krippendorff's α, nominal, of reliability data: one row per rater, one column per unit,
/// `None` where the rater gave no value (as the `krippendorff` package takes it). `None`
/// when undefined: fewer than 2 pairable values, or a single value throughout.
pub fn krippendorff_alpha_nominal<L: Ord>(reliability_data: &[Vec<Option<L>>]) -> Option<f64> {
    let mut values: BTreeMap<&L, usize> = BTreeMap::new();
    for v in reliability_data.iter().flatten().flatten() {
        let next = values.len();
        values.entry(v).or_insert(next);
    }
    let k = values.len();
    let n_units = reliability_data.iter().map(Vec::len).max().unwrap_or(0);
    let mut counts = vec![0u64; n_units * k];
    for row in reliability_data {
        for (u, v) in row.iter().enumerate() {
            if let Some(v) = v {
                counts[u * k + values[v]] += 1;
            }
        }
    }
    if k == 0 {
        return None;
    }
    alpha_from_units(k, counts.chunks(k))
}

/// Krippendorff's α, nominal, over all workers and tasks of `data` (a worker who did not
/// answer a task is missing data).
pub fn krippendorff_alpha_crowd(data: &CrowdData) -> Option<f64> {
    let k = data.n_labels();
    let labels = data.answer_labels();
    let mut unit = vec![0u64; k];
    let mut counts = Vec::with_capacity(data.n_tasks() * k);
    for t in 0..data.n_tasks() {
        unit.fill(0);
        for a in data.task_range(t) {
            unit[labels[a] as usize] += 1;
        }
        counts.extend_from_slice(&unit);
    }
    alpha_from_units(k, counts.chunks(k))
}

/// Two workers compared on the tasks both answered. `worker_a` comes before `worker_b` in
/// string order.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerPair {
    pub worker_a: u32,
    pub worker_b: u32,
    pub shared_tasks: usize,
    /// `None` when they share no task.
    pub cohen: Option<CohenKappa>,
    /// Dense `labels × labels` counts: `counts[la * labels + lb]` shared tasks where a said
    /// `la` and b said `lb`.
    pub counts: Vec<u64>,
}

/// Pairwise Cohen's κ for the `top` worker pairs that share the most tasks (ties in
/// (worker_a, worker_b) string order). Counting overlaps costs Σ over tasks of
/// answers², fine for crowd data with a handful of answers per task.
pub fn top_overlap_pairs(data: &CrowdData, top: usize) -> Vec<WorkerPair> {
    let workers = data.answer_workers();
    let mut overlap: HashMap<u64, u32> = HashMap::new();
    for t in 0..data.n_tasks() {
        // A task's answers are sorted by worker, and worker order is string order.
        let ws = &workers[data.task_range(t)];
        for (i, &a) in ws.iter().enumerate() {
            for &b in &ws[i + 1..] {
                *overlap.entry((u64::from(a) << 32) | u64::from(b)).or_default() += 1;
            }
        }
    }
    let mut pairs: Vec<(u32, u32, u32)> = overlap
        .into_iter()
        .map(|(key, n)| ((key >> 32) as u32, key as u32, n))
        .collect();
    pairs.sort_unstable_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    pairs.truncate(top);
    let index = data.by_worker();
    pairs
        .into_iter()
        .map(|(a, b, _)| worker_pair(data, &index, a, b))
        .collect()
}

/// Compares workers `a` and `b` on their shared tasks; `index` is [`CrowdData::by_worker`].
pub fn worker_pair(data: &CrowdData, index: &ByWorker, a: u32, b: u32) -> WorkerPair {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    let labels = data.answer_labels();
    let k = data.n_labels();
    let mut counts = vec![0u64; k * k];
    let (la, lb) = (index.answers(a), index.answers(b));
    let (ta, tb) = (index.tasks(a), index.tasks(b));
    let (mut i, mut j) = (0, 0);
    while i < la.len() && j < lb.len() {
        match ta[i].cmp(&tb[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                counts[labels[la[i] as usize] as usize * k + labels[lb[j] as usize] as usize] += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let cohen = cohen_from_counts(k, &counts);
    WorkerPair {
        worker_a: a,
        worker_b: b,
        shared_tasks: cohen.map_or(0, |c| c.n),
        cohen,
        counts,
    }
}

/// One worker pair's Cohen's κ on the tasks they share.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PairReport {
    pub worker_a: String,
    pub worker_b: String,
    pub shared_tasks: usize,
    pub kappa: Option<f64>,
    pub observed_agreement: Option<f64>,
}

/// Agreement on one label against all others (the answers made binary).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabelAgreement {
    pub fleiss_kappa: Option<f64>,
    pub krippendorff_alpha: Option<f64>,
}

/// Every agreement statistic of a crowd data set: what `flywheel agreement` prints and
/// `GET /v1/projects/{project}/agreement` answers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgreementReport {
    pub answers: usize,
    pub tasks: usize,
    pub workers: usize,
    pub labels: Vec<String>,
    /// Over the tasks with the most common number of answers (Fleiss needs equal counts).
    pub fleiss_kappa: Option<f64>,
    pub randolph_kappa: Option<f64>,
    pub fleiss_tasks_used: usize,
    pub fleiss_raters_per_task: Option<u64>,
    /// Nominal, all workers and tasks, missing answers allowed.
    pub krippendorff_alpha: Option<f64>,
    /// The pairs sharing the most tasks.
    pub cohen_kappa_pairs: Vec<PairReport>,
    pub per_label: BTreeMap<String, LabelAgreement>,
}

/// The agreement report for `data`, with Cohen's κ for the `pairs` most-overlapping pairs.
pub fn report(data: &CrowdData, pairs: usize) -> AgreementReport {
    let modal = modal_count_table(data);
    let cohen_kappa_pairs = top_overlap_pairs(data, pairs)
        .iter()
        .map(|p| PairReport {
            worker_a: data.workers()[p.worker_a as usize].clone(),
            worker_b: data.workers()[p.worker_b as usize].clone(),
            shared_tasks: p.shared_tasks,
            kappa: p.cohen.and_then(|c| c.kappa),
            observed_agreement: p.cohen.map(|c| c.observed_agreement),
        })
        .collect();
    let tasks = data.answer_tasks();
    let mut per_label = BTreeMap::new();
    if data.n_labels() > 2 {
        for (k, name) in data.labels().iter().enumerate() {
            let answers = (0..data.n_answers()).map(|a| {
                let hit = data.answer_labels()[a] as usize == k;
                (
                    data.workers()[data.answer_workers()[a] as usize].as_str(),
                    data.tasks()[tasks[a] as usize].as_str(),
                    if hit { "1" } else { "0" },
                )
            });
            if let Ok(binary) = CrowdData::from_answers(answers) {
                let m = modal_count_table(&binary);
                per_label.insert(
                    name.clone(),
                    LabelAgreement {
                        fleiss_kappa: m.as_ref().and_then(|m| fleiss_kappa(&m.table)),
                        krippendorff_alpha: krippendorff_alpha_crowd(&binary),
                    },
                );
            }
        }
    }
    AgreementReport {
        answers: data.n_answers(),
        tasks: data.n_tasks(),
        workers: data.n_workers(),
        labels: data.labels().to_vec(),
        fleiss_kappa: modal.as_ref().and_then(|m| fleiss_kappa(&m.table)),
        randolph_kappa: modal.as_ref().and_then(|m| randolph_kappa(&m.table)),
        fleiss_tasks_used: modal.as_ref().map_or(0, |m| m.tasks.len()),
        fleiss_raters_per_task: modal.as_ref().map(|m| m.table.raters()),
        krippendorff_alpha: krippendorff_alpha_crowd(data),
        cohen_kappa_pairs,
        per_label,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => close(a, b),
            (a, b) => a == b,
        }
    }

    #[test]
    fn cohen_hand_cases() {
        // a=4 (1,1), b=2 (1,0), c=1 (0,1), d=3 (0,0): p_o = 0.7, p_e = 0.5, κ = 0.4.
        let a = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
        let b = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0];
        let c = cohen_kappa(a.iter().zip(&b)).unwrap();
        assert_eq!(c.n, 10);
        assert!(close(c.observed_agreement, 0.7) && close(c.expected_agreement, 0.5));
        assert!(close(c.kappa.unwrap(), 0.4));
        // Always opposite: −1.
        let c = cohen_kappa([(0, 1), (1, 0), (0, 1), (1, 0)]).unwrap();
        assert_eq!(c.kappa, Some(-1.0));
        // One label throughout: 0/0.
        let c = cohen_kappa([("x", "x"), ("x", "x")]).unwrap();
        assert_eq!(c.kappa, None);
        assert_eq!(c.observed_agreement, 1.0);
        assert_eq!(cohen_kappa(Vec::<(u8, u8)>::new()), None);
        // Rater a always says "x", b varies: p_o = p_e = 0.5, κ = 0.
        let c = cohen_kappa([("x", "x"), ("x", "y")]).unwrap();
        assert_eq!(c.kappa, Some(0.0));
    }

    #[test]
    fn fleiss_hand_cases() {
        // Two subjects, 2 raters, perfect agreement on different categories: κ = 1.
        let t = CountTable::new(&[vec![2, 0], vec![0, 2]]).unwrap();
        assert_eq!(fleiss_kappa(&t), Some(1.0));
        assert_eq!(randolph_kappa(&t), Some(1.0));
        // 3 raters: [2,1],[1,2]: P_i = 1/3 each, P_e = 0.5 → κ = (1/3 − 1/2)/(1/2) = −1/3.
        let t = CountTable::new(&[vec![2, 1], vec![1, 2]]).unwrap();
        assert!(close(fleiss_kappa(&t).unwrap(), -1.0 / 3.0));
        // One category throughout: undefined for Fleiss, and for Randolph with k = 1.
        let t = CountTable::new(&[vec![3], vec![3]]).unwrap();
        assert_eq!(fleiss_kappa(&t), None);
        assert_eq!(randolph_kappa(&t), None);
        let t = CountTable::new(&[vec![3, 0], vec![3, 0]]).unwrap();
        assert_eq!(fleiss_kappa(&t), None);
        assert_eq!(randolph_kappa(&t), Some(1.0));
        let (t, cats) = CountTable::from_ratings(&[vec!["a", "b", "a"], vec!["b", "b", "b"]]).unwrap();
        assert_eq!(cats, ["a", "b"]);
        assert_eq!(t.row(0), [2, 1]);
        assert_eq!((t.n_subjects(), t.n_categories(), t.raters()), (2, 2, 3));
    }

    #[test]
    fn count_tables_are_checked() {
        assert_eq!(CountTable::new(&[]).unwrap_err().field, "table");
        assert_eq!(CountTable::new(&[vec![1, 0]]).unwrap_err().field, "table[0]");
        let e = CountTable::new(&[vec![1, 1], vec![2, 1]]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "table[1]: has 3 ratings, expected 2 like the first subject"
        );
        assert_eq!(CountTable::new(&[vec![1, 1], vec![2]]).unwrap_err().field, "table[1]");
    }

    #[test]
    fn krippendorff_hand_cases() {
        // Two raters agree on 2 of 3 binary units: values 0,0 | 1,1 | 0,1.
        // n = 6, n_0 = n_1 = 3, D_o ∝ 2/(2−1) = 2, D_e ∝ (36 − 18)/5 → α = 1 − 5·2/18.
        let data = vec![vec![Some(0), Some(1), Some(0)], vec![Some(0), Some(1), Some(1)]];
        assert!(close(krippendorff_alpha_nominal(&data).unwrap(), 1.0 - 10.0 / 18.0));
        // Missing values and a unit with a single value (ignored).
        let with_missing = vec![
            vec![Some(0), Some(1), Some(0), Some(1)],
            vec![Some(0), Some(1), Some(1), None],
        ];
        assert!(close(
            krippendorff_alpha_nominal(&with_missing).unwrap(),
            1.0 - 10.0 / 18.0
        ));
        assert_eq!(
            krippendorff_alpha_nominal(&[vec![Some(1), Some(1)], vec![Some(1), None]]),
            None
        );
        assert_eq!(krippendorff_alpha_nominal::<u8>(&[vec![None, None]]), None);
        assert_eq!(krippendorff_alpha_nominal::<u8>(&[]), None);
    }

    fn toy() -> CrowdData {
        CrowdData::from_answers([
            ("w1", "t1", "1"),
            ("w2", "t1", "1"),
            ("w3", "t1", "0"),
            ("w1", "t2", "0"),
            ("w2", "t2", "0"),
            ("w3", "t2", "0"),
            ("w1", "t3", "1"),
            ("w2", "t3", "0"),
            ("w1", "t4", "1"),
        ])
        .unwrap()
    }

    #[test]
    fn crowd_helpers() {
        let d = toy();
        let m = modal_count_table(&d).unwrap();
        assert_eq!(m.tasks, [0, 1]);
        assert_eq!(m.n_dropped, 2);
        assert_eq!(m.categories, [0, 1]);
        assert_eq!(m.table.row(0), [1, 2]);
        // α over all tasks equals α of the same data as a rater × unit matrix.
        let matrix = vec![
            vec![Some(1), Some(0), Some(1), Some(1)],
            vec![Some(1), Some(0), Some(0), None],
            vec![Some(0), Some(0), None, None],
        ];
        assert_eq!(krippendorff_alpha_crowd(&d), krippendorff_alpha_nominal(&matrix));
        let pairs = top_overlap_pairs(&d, 10);
        assert_eq!(
            pairs
                .iter()
                .map(|p| (p.worker_a, p.worker_b, p.shared_tasks))
                .collect::<Vec<_>>(),
            [(0, 1, 3), (0, 2, 2), (1, 2, 2)]
        );
        assert_eq!(pairs[0].counts, [1, 0, 1, 1]);
        assert!(close(pairs[0].cohen.unwrap().observed_agreement, 2.0 / 3.0));
        // The same pair asked the other way round.
        let index = d.by_worker();
        assert_eq!(worker_pair(&d, &index, 1, 0), pairs[0]);
        let none = CrowdData::from_answers([("a", "t", "1"), ("b", "u", "1")]).unwrap();
        assert_eq!(modal_count_table(&none), None);
        assert!(top_overlap_pairs(&none, 3).is_empty());
    }

    /// A deterministic shuffle from a seed.
    fn shuffle<T>(v: &mut [T], mut s: u64) {
        for i in (1..v.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v.swap(i, (s >> 33) as usize % (i + 1));
        }
    }

    fn relabel(perm_seed: u64, k: u8) -> Vec<u8> {
        let mut p: Vec<u8> = (0..k).collect();
        shuffle(&mut p, perm_seed);
        p
    }

    /// Rater × unit data, labels 0..4, about a third missing.
    pub(crate) fn reliability() -> impl Strategy<Value = Vec<Vec<Option<u8>>>> {
        (2usize..5, 1usize..12).prop_flat_map(|(raters, units)| {
            proptest::collection::vec(
                proptest::collection::vec(prop_oneof![1 => Just(None), 2 => (0u8..4).prop_map(Some)], units),
                raters,
            )
        })
    }

    proptest! {
        #[test]
        fn cohen_is_symmetric_and_ignores_label_names(
            pairs in proptest::collection::vec((0u8..4, 0u8..4), 1..40),
            seed in any::<u64>(),
        ) {
            let k = cohen_kappa(pairs.iter().copied()).unwrap();
            let swapped = cohen_kappa(pairs.iter().map(|&(a, b)| (b, a))).unwrap();
            prop_assert_eq!(k, swapped);
            let p = relabel(seed, 4);
            let renamed = cohen_kappa(pairs.iter().map(|&(a, b)| (format!("L{}", p[a as usize]), format!("L{}", p[b as usize])))).unwrap();
            prop_assert_eq!(k.kappa, renamed.kappa);
            if let Some(x) = k.kappa {
                prop_assert!((-1.0..=1.0 + 1e-12).contains(&x));
            }
        }

        #[test]
        fn krippendorff_ignores_rater_order_and_label_names(data in reliability(), seed in any::<u64>()) {
            let alpha = krippendorff_alpha_nominal(&data);
            let mut rows = data.clone();
            shuffle(&mut rows, seed);
            let p = relabel(seed.rotate_left(17), 4);
            let renamed: Vec<Vec<Option<u8>>> = rows.iter().map(|r| r.iter().map(|v| v.map(|v| p[v as usize])).collect()).collect();
            let other = krippendorff_alpha_nominal(&renamed);
            prop_assert!(same(alpha, other), "{:?} vs {:?}", alpha, other);
        }

        #[test]
        fn fleiss_ignores_rater_order_and_label_names(
            ratings in (2usize..6).prop_flat_map(|m| proptest::collection::vec(proptest::collection::vec(0u8..4, m), 1..10)),
            seed in any::<u64>(),
        ) {
            let (t, _) = CountTable::from_ratings(&ratings).unwrap();
            let p = relabel(seed, 4);
            let other: Vec<Vec<u8>> = ratings.iter().map(|r| {
                let mut r: Vec<u8> = r.iter().map(|&v| p[v as usize]).collect();
                shuffle(&mut r, seed ^ 0x9e37);
                r
            }).collect();
            let (u, _) = CountTable::from_ratings(&other).unwrap();
            for (a, b) in [(fleiss_kappa(&t), fleiss_kappa(&u)), (randolph_kappa(&t), randolph_kappa(&u))] {
                prop_assert!(same(a, b), "{:?} vs {:?}", a, b);
            }
        }

        #[test]
        fn crowd_agreement_ignores_answer_order_and_label_names(data in reliability(), seed in any::<u64>()) {
            let p = relabel(seed, 4);
            let mut rows = vec![];
            let mut renamed = vec![];
            for (w, row) in data.iter().enumerate() {
                for (t, v) in row.iter().enumerate() {
                    if let Some(v) = v {
                        rows.push((format!("w{w}"), format!("t{t}"), v.to_string()));
                        renamed.push((format!("w{w}"), format!("t{t}"), format!("x{}", p[*v as usize])));
                    }
                }
            }
            prop_assume!(!rows.is_empty());
            shuffle(&mut renamed, seed);
            let a = CrowdData::from_answers(rows.iter().map(|(w, t, l)| (w.as_str(), t.as_str(), l.as_str()))).unwrap();
            let b = CrowdData::from_answers(renamed.iter().map(|(w, t, l)| (w.as_str(), t.as_str(), l.as_str()))).unwrap();
            let (ka, kb) = (krippendorff_alpha_crowd(&a), krippendorff_alpha_crowd(&b));
            prop_assert!(same(ka, kb), "{:?} vs {:?}", ka, kb);
            prop_assert!(same(ka, krippendorff_alpha_nominal(&data)));
            let (ma, mb) = (modal_count_table(&a), modal_count_table(&b));
            prop_assert_eq!(ma.as_ref().map(|m| (&m.tasks, m.table.raters())), mb.as_ref().map(|m| (&m.tasks, m.table.raters())));
            if let (Some(ma), Some(mb)) = (ma, mb) {
                prop_assert!(same(fleiss_kappa(&ma.table), fleiss_kappa(&mb.table)));
            }
            let (pa, pb) = (top_overlap_pairs(&a, 5), top_overlap_pairs(&b, 5));
            prop_assert_eq!(pa.len(), pb.len());
            for (x, y) in pa.iter().zip(&pb) {
                prop_assert_eq!((x.worker_a, x.worker_b, x.shared_tasks), (y.worker_a, y.worker_b, y.shared_tasks));
                prop_assert!(same(x.cohen.unwrap().kappa, y.cohen.unwrap().kappa));
            }
        }
    }
}
