//! Label aggregation: from several workers' answers to one label per task. Majority vote,
//! weighted vote (with given worker weights, or Wawa's weights from agreement with the
//! majority), and Dawid–Skene EM with per-worker confusion matrices.
//!
//! Dawid–Skene follows crowd-kit 1.4.2's `DawidSkene` step by step (see
//! `shared/data/README.md`), so its posteriors agree with crowd-kit's (to ~1e-14 on the
//! reference data) and its stopping rule stops after the same round. It is written for size: flat `Vec<f64>`
//! arrays indexed by (task, label) and (worker, observed label, true label), one pass over
//! the answers per E-step and per M-step, so a round costs O(answers × labels) plus
//! O(workers × labels²), with no maps in the loops.
//!
//! Ties: every method breaks a tie for the largest score toward the smallest label (label
//! order of [`CrowdData::labels`]) and reports the tied tasks. Weighted scores closer than
//! [`TIE_EPSILON`] tie.
//!
//! Nothing here depends on the order of the answers: [`CrowdData`] is canonical.

use crate::crowd::{CrowdData, Gold};
use crate::error::ValidationError;
use crate::quality::score_workers;

/// Weighted scores closer than this are a tie.
pub const TIE_EPSILON: f64 = 1e-9;

/// crowd-kit's floor for probabilities (`_EPS = 1e-10`): confusion entries before
/// normalising, priors inside the E-step, and the posteriors it reports.
pub const DS_EPS: f64 = 1e-10;

/// A task on which two or more labels share the best score.
#[derive(Debug, Clone, PartialEq)]
pub struct Tie {
    pub task: u32,
    /// The tied labels, smallest first; the first is the one chosen.
    pub labels: Vec<u32>,
    /// Their score: votes for the majority vote, summed weights for a weighted vote.
    pub score: f64,
}

/// One label per task (indexed like [`CrowdData::tasks`]) and the ties that were broken.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    pub labels: Vec<u32>,
    pub ties: Vec<Tie>,
}

impl Vote {
    pub fn is_tied(&self, task: usize) -> bool {
        self.ties.binary_search_by_key(&(task as u32), |t| t.task).is_ok()
    }
}

fn vote(data: &CrowdData, weight: impl Fn(u32) -> f64) -> Vote {
    let k = data.n_labels();
    let (workers, labels) = (data.answer_workers(), data.answer_labels());
    let mut score = vec![0.0; k];
    let mut answered = vec![false; k];
    let mut out = Vec::with_capacity(data.n_tasks());
    let mut ties = Vec::new();
    for t in 0..data.n_tasks() {
        score.fill(0.0);
        answered.fill(false);
        for a in data.task_range(t) {
            score[labels[a] as usize] += weight(workers[a]);
            answered[labels[a] as usize] = true;
        }
        // Only labels someone gave to this task compete.
        let best = (0..k)
            .filter(|&l| answered[l])
            .map(|l| score[l])
            .fold(f64::NEG_INFINITY, f64::max);
        let tied: Vec<u32> = (0..k as u32)
            .filter(|&l| answered[l as usize] && (best - score[l as usize]).abs() < TIE_EPSILON)
            .collect();
        out.push(tied[0]);
        if tied.len() > 1 {
            ties.push(Tie {
                task: t as u32,
                labels: tied,
                score: best,
            });
        }
    }
    Vote { labels: out, ties }
}

/// The label with the most answers; a tie goes to the smallest label.
pub fn majority_vote(data: &CrowdData) -> Vote {
    vote(data, |_| 1.0)
}

/// The label with the largest sum of its workers' weights (`weights` indexed like
/// [`CrowdData::workers`], finite and ≥ 0); scores within [`TIE_EPSILON`] of the best tie
/// and go to the smallest label.
pub fn weighted_vote(data: &CrowdData, weights: &[f64]) -> Result<Vote, ValidationError> {
    if weights.len() != data.n_workers() {
        return Err(ValidationError::new(
            "weights",
            format!(
                "expected one weight per worker ({}), got {}",
                data.n_workers(),
                weights.len()
            ),
        ));
    }
    if let Some(w) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(ValidationError::new(
            format!("weights[{w}]"),
            "must be a finite number ≥ 0",
        ));
    }
    Ok(vote(data, |w| weights[w as usize]))
}

/// Wawa ("worker agreement with aggregate"): each worker's weight is the fraction of their
/// answers that equal the majority-vote label, then a weighted vote.
#[derive(Debug, Clone, PartialEq)]
pub struct Wawa {
    pub weights: Vec<f64>,
    pub vote: Vote,
}

/// Wawa's weights (majority-vote ties to the smallest label) and its weighted vote.
pub fn wawa(data: &CrowdData) -> Wawa {
    let mv = majority_vote(data);
    let weights: Vec<f64> = score_workers(data, &Gold::from_labels(&mv.labels))
        .iter()
        .map(|s| s.accuracy().expect("every worker has an answer"))
        .collect();
    let vote = vote(data, |w| weights[w as usize]);
    Wawa { weights, vote }
}

/// Per task, the fraction of its answers that gave each label: a flat `tasks × labels`
/// array (no tie-break). Dawid–Skene's starting point.
pub fn vote_fractions(data: &CrowdData) -> Vec<f64> {
    let k = data.n_labels();
    let labels = data.answer_labels();
    let mut out = vec![0.0; data.n_tasks() * k];
    for t in 0..data.n_tasks() {
        let row = &mut out[t * k..(t + 1) * k];
        for a in data.task_range(t) {
            row[labels[a] as usize] += 1.0;
        }
        let n = data.task_len(t) as f64;
        row.iter_mut().for_each(|x| *x /= n);
    }
    out
}

/// Dawid–Skene's parameters: label priors and one confusion matrix per worker.
#[derive(Debug, Clone, PartialEq)]
pub struct DsParams {
    pub n_labels: usize,
    /// P(true label = k).
    pub priors: Vec<f64>,
    /// `errors[(w * n_labels + observed) * n_labels + truth]` = P(worker w answers
    /// `observed` | the true label is `truth`). For each (w, truth) the entries over the
    /// labels w used sum to 1; labels w never used are 0.
    pub errors: Vec<f64>,
}

impl DsParams {
    pub fn n_workers(&self) -> usize {
        self.errors.len() / (self.n_labels * self.n_labels).max(1)
    }

    /// P(worker `w` answers `observed` | true label `truth`).
    pub fn error(&self, w: usize, observed: usize, truth: usize) -> f64 {
        let k = self.n_labels;
        self.errors[(w * k + observed) * k + truth]
    }

    /// Worker `w`'s confusion matrix, rows the true label, columns the observed one.
    pub fn confusion(&self, w: usize) -> Vec<Vec<f64>> {
        let k = self.n_labels;
        (0..k)
            .map(|truth| (0..k).map(|obs| self.error(w, obs, truth)).collect())
            .collect()
    }

    /// Σ_k prior_k · P(w answers k | truth k): the expected accuracy on a random task.
    pub fn accuracy_prior_weighted(&self, w: usize) -> f64 {
        (0..self.n_labels).map(|k| self.priors[k] * self.error(w, k, k)).sum()
    }

    /// The mean of the confusion matrix's diagonal: accuracy with every label equally
    /// likely.
    pub fn accuracy_balanced(&self, w: usize) -> f64 {
        (0..self.n_labels).map(|k| self.error(w, k, k)).sum::<f64>() / self.n_labels as f64
    }
}

/// When Dawid–Skene stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopping {
    /// crowd-kit's rule: stop after the first round whose loss (an ELBO per answer) did
    /// not rise by at least `tol` since the round before — also when it fell — or after
    /// `max_rounds`.
    CrowdKit { tol: f64, max_rounds: usize },
    /// Exactly this many rounds.
    Rounds(usize),
}

impl Default for Stopping {
    /// crowd-kit's defaults: `tol = 1e-5`, `n_iter = 100`.
    fn default() -> Self {
        Stopping::CrowdKit {
            tol: 1e-5,
            max_rounds: 100,
        }
    }
}

/// Where Dawid–Skene starts.
#[derive(Debug, Clone, PartialEq)]
pub enum DsInit {
    /// crowd-kit's start: posteriors = [`vote_fractions`], then an M-step.
    MajorityVote,
    /// Given parameters (e.g. a previous fit's, for a refit after new answers): the first
    /// round's E-step uses them. Workers and labels are indexed like the data's.
    Params(DsParams),
}

/// The result of a Dawid–Skene fit.
#[derive(Debug, Clone, PartialEq)]
pub struct DsFit {
    /// Flat `tasks × labels`, from the last E-step, floored at [`DS_EPS`] as crowd-kit
    /// reports them (so a row may sum to 1 + (labels − 1)·1e-10).
    pub posteriors: Vec<f64>,
    /// Priors and confusion matrices from the last M-step.
    pub params: DsParams,
    /// The most probable label per task (ties to the smallest label).
    pub labels: Vec<u32>,
    /// E/M rounds run.
    pub rounds: usize,
    /// Whether the crowd-kit rule stopped the fit before `max_rounds`.
    pub stopped_early: bool,
    /// crowd-kit's loss after each round.
    pub loss_history: Vec<f64>,
    /// Σ_tasks ln Σ_k prior_k Π_(answers of the task) P(answer | k), with the final
    /// parameters.
    pub log_likelihood: f64,
}

impl DsFit {
    pub fn posterior(&self, task: usize) -> &[f64] {
        let k = self.params.n_labels;
        &self.posteriors[task * k..(task + 1) * k]
    }
}

/// `acc += table[row]` for each row in `rows`, rows of `acc.len()` entries. The common
/// label counts get fixed-size loops the compiler unrolls.
#[inline]
fn gather(acc: &mut [f64], table: &[f64], rows: &[u32]) {
    fn fixed<const K: usize>(acc: &mut [f64], table: &[f64], rows: &[u32]) {
        let acc: &mut [f64; K] = acc.try_into().expect("K entries");
        for &r in rows {
            let src: &[f64; K] = table[r as usize * K..(r as usize + 1) * K]
                .try_into()
                .expect("K entries");
            for (a, s) in acc.iter_mut().zip(src) {
                *a += s;
            }
        }
    }
    match acc.len() {
        2 => fixed::<2>(acc, table, rows),
        3 => fixed::<3>(acc, table, rows),
        4 => fixed::<4>(acc, table, rows),
        5 => fixed::<5>(acc, table, rows),
        6 => fixed::<6>(acc, table, rows),
        7 => fixed::<7>(acc, table, rows),
        8 => fixed::<8>(acc, table, rows),
        k => {
            for &r in rows {
                for (a, s) in acc.iter_mut().zip(&table[r as usize * k..(r as usize + 1) * k]) {
                    *a += s;
                }
            }
        }
    }
}

/// `table[row] += src` for each row in `rows`, rows of `src.len()` entries.
#[inline]
fn scatter(table: &mut [f64], rows: &[u32], src: &[f64]) {
    fn fixed<const K: usize>(table: &mut [f64], rows: &[u32], src: &[f64]) {
        let src: &[f64; K] = src.try_into().expect("K entries");
        for &r in rows {
            let dst: &mut [f64; K] = (&mut table[r as usize * K..(r as usize + 1) * K])
                .try_into()
                .expect("K entries");
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }
    match src.len() {
        2 => fixed::<2>(table, rows, src),
        3 => fixed::<3>(table, rows, src),
        4 => fixed::<4>(table, rows, src),
        5 => fixed::<5>(table, rows, src),
        6 => fixed::<6>(table, rows, src),
        7 => fixed::<7>(table, rows, src),
        8 => fixed::<8>(table, rows, src),
        k => {
            for &r in rows {
                for (d, s) in table[r as usize * k..(r as usize + 1) * k].iter_mut().zip(src) {
                    *d += s;
                }
            }
        }
    }
}

/// The dataset in the shape the EM loops want, with their scratch space.
struct Em<'a> {
    data: &'a CrowdData,
    k: usize,
    /// Per answer (in task order): `worker * k + label`, the row of `errors` it reads.
    row: Vec<u32>,
    /// `workers × labels`: whether the worker used the label.
    used: Vec<bool>,
    /// Scratch: log₂ of the errors (E-step), raw sums (M-step).
    scratch: Vec<f64>,
    sums: Vec<f64>,
}

impl<'a> Em<'a> {
    fn new(data: &'a CrowdData) -> Self {
        let k = data.n_labels();
        let row = data
            .answer_workers()
            .iter()
            .zip(data.answer_labels())
            .map(|(&w, &l)| w * k as u32 + l)
            .collect();
        let size = data.n_workers() * k * k;
        Self {
            data,
            k,
            row,
            used: data.labels_used(),
            scratch: vec![0.0; size],
            sums: vec![0.0; size],
        }
    }

    /// Posteriors from priors and errors, in log₂ with each row shifted by its max.
    /// Returns their entropy as crowd-kit's loss takes it — each posterior floored at
    /// [`DS_EPS`] — computed from the log-domain values (one `ln` per task, not per entry).
    fn e_step(&mut self, params: &DsParams, posteriors: &mut [f64]) -> f64 {
        let k = self.k;
        for (log, &e) in self.scratch.iter_mut().zip(&params.errors) {
            *log = e.log2();
        }
        let log_prior: Vec<f64> = params.priors.iter().map(|p| p.max(DS_EPS).log2()).collect();
        let floored = -DS_EPS * DS_EPS.ln();
        let mut entropy = 0.0;
        let mut shifted = vec![0.0; k];
        for t in 0..self.data.n_tasks() {
            let post = &mut posteriors[t * k..(t + 1) * k];
            post.fill(0.0);
            gather(post, &self.scratch, &self.row[self.data.task_range(t)]);
            for (p, lp) in post.iter_mut().zip(&log_prior) {
                *p += lp;
            }
            let max = post.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !max.is_finite() {
                // Every label impossible under the given parameters: know nothing.
                post.fill(1.0 / k as f64);
                entropy += (k as f64).ln();
                continue;
            }
            let mut total = 0.0;
            for (p, ln) in post.iter_mut().zip(shifted.iter_mut()) {
                *ln = (*p - max) * std::f64::consts::LN_2;
                *p = (*p - max).exp2();
                total += *p;
            }
            // ln T_k = (x_k − max)·ln 2 − ln Σ: no ln per entry.
            let log_total = total.ln();
            for (p, ln) in post.iter_mut().zip(&shifted) {
                *p /= total;
                entropy += if *p <= DS_EPS { floored } else { -*p * (ln - log_total) };
            }
        }
        entropy
    }

    /// Priors and errors from posteriors. Leaves the raw sums Σ posteriors per (worker,
    /// observed, truth) in `self.sums` for the loss.
    fn m_step(&mut self, posteriors: &[f64], params: &mut DsParams) {
        let k = self.k;
        let n_tasks = self.data.n_tasks();
        self.sums.fill(0.0);
        for t in 0..n_tasks {
            let post = &posteriors[t * k..(t + 1) * k];
            scatter(&mut self.sums, &self.row[self.data.task_range(t)], post);
        }
        params.priors.fill(0.0);
        for post in posteriors.chunks_exact(k) {
            for (prior, p) in params.priors.iter_mut().zip(post) {
                *prior += p;
            }
        }
        params.priors.iter_mut().for_each(|p| *p /= n_tasks as f64);
        let mut totals = vec![0.0; k];
        for w in 0..self.data.n_workers() {
            let block = w * k * k;
            totals.fill(0.0);
            for obs in 0..k {
                if self.used[w * k + obs] {
                    let sums = &self.sums[block + obs * k..block + (obs + 1) * k];
                    for (total, s) in totals.iter_mut().zip(sums) {
                        *total += s.max(DS_EPS);
                    }
                }
            }
            for obs in 0..k {
                let i = block + obs * k;
                if self.used[w * k + obs] {
                    let sums = &self.sums[i..i + k];
                    for ((e, s), total) in params.errors[i..i + k].iter_mut().zip(sums).zip(&totals) {
                        *e = s.max(DS_EPS) / total;
                    }
                } else {
                    params.errors[i..i + k].fill(0.0);
                }
            }
        }
    }

    /// crowd-kit's loss after an M-step: (E_T[ln p(answers, truth)] + H(T)) per answer,
    /// with the joint term summed per answer (so the prior counts once per answer), as
    /// crowd-kit does; `entropy` is what the E-step returned. The joint term comes from the
    /// M-step's sums: Σ_answers T_t,k ln e = Σ_(w,l,k) sums · ln e.
    fn loss(&self, params: &DsParams, entropy: f64) -> f64 {
        let k = self.k;
        let log_prior: Vec<f64> = params.priors.iter().map(|p| p.max(DS_EPS).ln()).collect();
        let mut joint = 0.0;
        for (i, (&s, &e)) in self.sums.iter().zip(&params.errors).enumerate() {
            if s != 0.0 {
                joint += s * (e.ln() + log_prior[i % k]);
            }
        }
        (joint + entropy) / self.data.n_answers() as f64
    }

    /// Σ_tasks ln Σ_k prior_k Π P(answer | k).
    fn log_likelihood(&mut self, params: &DsParams) -> f64 {
        let k = self.k;
        for (log, &e) in self.scratch.iter_mut().zip(&params.errors) {
            *log = e.ln();
        }
        let log_prior: Vec<f64> = params.priors.iter().map(|p| p.ln()).collect();
        let mut acc = vec![0.0; k];
        let mut total = 0.0;
        for t in 0..self.data.n_tasks() {
            acc.copy_from_slice(&log_prior);
            gather(&mut acc, &self.scratch, &self.row[self.data.task_range(t)]);
            let max = acc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            total += max + acc.iter().map(|a| (a - max).exp()).sum::<f64>().ln();
        }
        total
    }
}

fn check_params(data: &CrowdData, p: &DsParams) -> Result<(), ValidationError> {
    let k = data.n_labels();
    if p.n_labels != k {
        return Err(ValidationError::new(
            "init.n_labels",
            format!("the data has {k} labels, the parameters {}", p.n_labels),
        ));
    }
    if p.priors.len() != k {
        return Err(ValidationError::new("init.priors", format!("expected {k} priors")));
    }
    if p.errors.len() != data.n_workers() * k * k {
        return Err(ValidationError::new(
            "init.errors",
            format!(
                "expected workers × labels × labels = {} entries",
                data.n_workers() * k * k
            ),
        ));
    }
    if let Some(i) = p.priors.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
        return Err(ValidationError::new(
            format!("init.priors[{i}]"),
            "must be a probability",
        ));
    }
    if let Some(i) = p.errors.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
        return Err(ValidationError::new(
            format!("init.errors[{i}]"),
            "must be a probability",
        ));
    }
    Ok(())
}

/// Fits Dawid–Skene by EM. One round is an E-step then an M-step (crowd-kit's order);
/// the only error is parameters in `init` that do not fit the data.
pub fn dawid_skene(data: &CrowdData, init: DsInit, stopping: Stopping) -> Result<DsFit, ValidationError> {
    let k = data.n_labels();
    let mut em = Em::new(data);
    let mut posteriors = vec![0.0; data.n_tasks() * k];
    let mut params = DsParams {
        n_labels: k,
        priors: vec![0.0; k],
        errors: vec![0.0; data.n_workers() * k * k],
    };
    let from_params = matches!(init, DsInit::Params(_));
    match init {
        DsInit::MajorityVote => {
            posteriors = vote_fractions(data);
            em.m_step(&posteriors, &mut params);
        }
        DsInit::Params(p) => {
            check_params(data, &p)?;
            params = p;
        }
    }
    let (tol, max_rounds) = match stopping {
        Stopping::CrowdKit { tol, max_rounds } => (tol, max_rounds),
        Stopping::Rounds(n) => (f64::NEG_INFINITY, n),
    };
    let mut last = f64::NEG_INFINITY;
    let mut loss_history = Vec::new();
    let mut stopped_early = false;
    let mut rounds = 0;
    while rounds < max_rounds {
        let entropy = em.e_step(&params, &mut posteriors);
        em.m_step(&posteriors, &mut params);
        rounds += 1;
        let loss = em.loss(&params, entropy);
        loss_history.push(loss);
        if loss - last < tol {
            stopped_early = rounds < max_rounds;
            break;
        }
        last = loss;
    }
    if rounds == 0 && from_params {
        // No round ran: the posteriors the given parameters imply.
        em.e_step(&params, &mut posteriors);
    }
    if rounds > 0 || from_params {
        // crowd-kit floors the posteriors it reports (its loss does it in place).
        posteriors.iter_mut().for_each(|p| *p = p.max(DS_EPS));
    }
    let labels = posteriors
        .chunks_exact(k)
        .map(|post| {
            let mut best = 0;
            for (l, &p) in post.iter().enumerate() {
                if p > post[best] {
                    best = l;
                }
            }
            best as u32
        })
        .collect();
    let log_likelihood = em.log_likelihood(&params);
    Ok(DsFit {
        posteriors,
        params,
        labels,
        rounds,
        stopped_early,
        loss_history,
        log_likelihood,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(rows: &[(&str, &str, &str)]) -> CrowdData {
        CrowdData::from_answers(rows.iter().copied()).unwrap()
    }

    #[test]
    fn majority_vote_breaks_ties_toward_the_smallest_label() {
        let d = data(&[
            ("a", "t1", "2"),
            ("b", "t1", "10"),
            ("c", "t1", "10"),
            ("a", "t2", "10"),
            ("b", "t2", "2"),
        ]);
        let v = majority_vote(&d);
        // Labels in numeric order: "2" < "10".
        assert_eq!(d.labels(), ["2", "10"]);
        assert_eq!(v.labels, [1, 0]);
        assert_eq!(
            v.ties,
            [Tie {
                task: 1,
                labels: vec![0, 1],
                score: 1.0
            }]
        );
        assert!(v.is_tied(1) && !v.is_tied(0));
        assert_eq!(vote_fractions(&d), [1.0 / 3.0, 2.0 / 3.0, 0.5, 0.5]);
    }

    #[test]
    fn weighted_vote_uses_the_weights() {
        let d = data(&[("a", "t", "x"), ("b", "t", "y"), ("c", "t", "y")]);
        assert_eq!(weighted_vote(&d, &[0.9, 0.4, 0.4]).unwrap().labels, [0]);
        assert_eq!(weighted_vote(&d, &[0.5, 0.4, 0.1]).unwrap().ties.len(), 1);
        assert_eq!(weighted_vote(&d, &[0.0, 0.0, 0.0]).unwrap().labels, [0]);
        assert_eq!(weighted_vote(&d, &[1.0]).unwrap_err().field, "weights");
        assert_eq!(
            weighted_vote(&d, &[1.0, f64::NAN, 1.0]).unwrap_err().field,
            "weights[1]"
        );
        // Only labels given to the task compete, even at zero weight.
        let d = data(&[("a", "t", "y"), ("b", "u", "x")]);
        assert_eq!(weighted_vote(&d, &[0.0, 1.0]).unwrap().labels, [1, 0]);
    }

    #[test]
    fn wawa_weights_are_agreement_with_the_majority() {
        let d = data(&[
            ("a", "t1", "1"),
            ("b", "t1", "1"),
            ("c", "t1", "0"),
            ("a", "t2", "0"),
            ("b", "t2", "0"),
            ("c", "t2", "0"),
        ]);
        let w = wawa(&d);
        assert_eq!(w.weights, [1.0, 1.0, 0.5]);
        assert_eq!(w.vote.labels, [1, 0]);
    }

    /// Three reliable workers and one who always answers the opposite.
    fn adversary() -> CrowdData {
        let mut rows = vec![];
        let truth = ["0", "1", "1", "0", "1", "0", "0", "1"];
        let names: Vec<String> = (0..truth.len()).map(|t| format!("t{t}")).collect();
        for (t, g) in truth.iter().enumerate() {
            let flip = if *g == "0" { "1" } else { "0" };
            rows.push(("good1", names[t].as_str(), *g));
            rows.push(("good2", names[t].as_str(), *g));
            rows.push(("bad", names[t].as_str(), flip));
            // A noisy worker: right on even tasks only.
            rows.push(("noisy", names[t].as_str(), if t % 2 == 0 { *g } else { flip }));
        }
        let owned: Vec<(String, String, String)> = rows
            .iter()
            .map(|(w, t, l)| (w.to_string(), t.to_string(), l.to_string()))
            .collect();
        CrowdData::from_answers(owned.iter().map(|(w, t, l)| (w.as_str(), t.as_str(), l.as_str()))).unwrap()
    }

    #[test]
    fn dawid_skene_learns_who_to_trust() {
        let d = adversary();
        let fit = dawid_skene(&d, DsInit::MajorityVote, Stopping::Rounds(50)).unwrap();
        let truth: Vec<u32> = ["0", "1", "1", "0", "1", "0", "0", "1"]
            .iter()
            .map(|g| d.label_index(g).unwrap())
            .collect();
        // Tasks are in string order t0..t7, which here is also numeric order.
        assert_eq!(fit.labels, truth);
        let bad = d.worker_index("bad").unwrap() as usize;
        let good = d.worker_index("good1").unwrap() as usize;
        assert!(fit.params.accuracy_prior_weighted(bad) < 0.01);
        assert!(fit.params.accuracy_prior_weighted(good) > 0.99);
        assert!((fit.params.priors.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for w in 0..d.n_workers() {
            for row in fit.params.confusion(w) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{row:?}");
            }
        }
        for t in 0..d.n_tasks() {
            let s: f64 = fit.posterior(t).iter().sum();
            assert!((s - 1.0).abs() < 1e-9);
        }
        assert_eq!(fit.rounds, 50);
        assert!(!fit.stopped_early);
        assert_eq!(fit.loss_history.len(), 50);
        assert!(fit.log_likelihood.is_finite() && fit.log_likelihood < 0.0);
    }

    #[test]
    fn crowd_kit_stopping_and_warm_starts() {
        let d = adversary();
        let fit = dawid_skene(&d, DsInit::MajorityVote, Stopping::default()).unwrap();
        assert!(fit.stopped_early && fit.rounds < 100);
        let n = fit.loss_history.len();
        assert!(fit.loss_history[n - 1] - fit.loss_history[n - 2] < 1e-5);
        // Starting from a converged fit's parameters stays there.
        let again = dawid_skene(&d, DsInit::Params(fit.params.clone()), Stopping::Rounds(1)).unwrap();
        assert_eq!(again.labels, fit.labels);
        for (a, b) in again.posteriors.iter().zip(&fit.posteriors) {
            assert!((a - b).abs() < 1e-4);
        }
        // No rounds: the given parameters' posteriors.
        let zero = dawid_skene(&d, DsInit::Params(fit.params.clone()), Stopping::Rounds(0)).unwrap();
        assert_eq!(zero.labels, fit.labels);
        assert_eq!(zero.rounds, 0);
        // Parameters must fit the data.
        let mut wrong = fit.params.clone();
        wrong.errors.pop();
        assert_eq!(
            dawid_skene(&d, DsInit::Params(wrong), Stopping::default())
                .unwrap_err()
                .field,
            "init.errors"
        );
        let mut wrong = fit.params;
        wrong.priors[0] = f64::NAN;
        assert_eq!(
            dawid_skene(&d, DsInit::Params(wrong), Stopping::default())
                .unwrap_err()
                .field,
            "init.priors[0]"
        );
    }

    #[test]
    fn unused_labels_have_no_confusion_mass() {
        let d = data(&[("a", "t1", "1"), ("a", "t2", "1"), ("b", "t1", "0"), ("b", "t2", "1")]);
        let fit = dawid_skene(&d, DsInit::MajorityVote, Stopping::Rounds(5)).unwrap();
        let a = d.worker_index("a").unwrap() as usize;
        for truth in 0..2 {
            assert_eq!(fit.params.error(a, 0, truth), 0.0);
            assert!((fit.params.error(a, 1, truth) - 1.0).abs() < 1e-12);
        }
        assert_eq!(fit.params.accuracy_balanced(a), 0.5);
        assert_eq!(fit.params.n_workers(), 2);
    }

    #[test]
    fn kernels_agree_with_the_plain_loop_for_every_label_count() {
        for k in 1..=10 {
            let table: Vec<f64> = (0..4 * k).map(|i| i as f64 * 0.5).collect();
            let rows = [3u32, 0, 3, 1];
            let mut acc = vec![1.0; k];
            gather(&mut acc, &table, &rows);
            let want: Vec<f64> = (0..k)
                .map(|j| 1.0 + rows.iter().map(|&r| table[r as usize * k + j]).sum::<f64>())
                .collect();
            assert_eq!(acc, want, "gather, k = {k}");
            let mut t = table.clone();
            let src: Vec<f64> = (0..k).map(|j| j as f64).collect();
            scatter(&mut t, &rows, &src);
            for (i, (after, before)) in t.iter().zip(&table).enumerate() {
                let times = rows.iter().filter(|&&r| r as usize == i / k).count() as f64;
                assert_eq!(*after, before + times * src[i % k], "scatter, k = {k}");
            }
        }
        // A fit with more labels than the fixed kernels cover.
        let rows: Vec<(String, String, String)> = (0..40)
            .map(|i| (format!("w{}", i % 4), format!("t{}", i / 4), ((i / 4) % 10).to_string()))
            .collect();
        let d = CrowdData::from_answers(rows.iter().map(|(w, t, l)| (w.as_str(), t.as_str(), l.as_str()))).unwrap();
        assert_eq!(d.n_labels(), 10);
        let fit = dawid_skene(&d, DsInit::MajorityVote, Stopping::default()).unwrap();
        assert_eq!(fit.labels, (0..10).collect::<Vec<u32>>());
    }

    /// Answers of up to 6 workers on up to 8 tasks, labels 0..3.
    fn answers() -> impl Strategy<Value = Vec<(String, String, String)>> {
        proptest::collection::vec(proptest::option::of(0u8..3), 1..48).prop_map(|cells| {
            cells
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.map(|l| (format!("w{}", i % 6), format!("t{}", i / 6), l.to_string())))
                .collect()
        })
    }

    fn shuffle<T>(v: &mut [T], mut s: u64) {
        for i in (1..v.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v.swap(i, (s >> 33) as usize % (i + 1));
        }
    }

    proptest! {
        #[test]
        fn aggregation_ignores_the_order_of_answers(rows in answers(), seed in any::<u64>()) {
            prop_assume!(!rows.is_empty());
            let mut shuffled = rows.clone();
            shuffle(&mut shuffled, seed);
            let build = |r: &[(String, String, String)]| {
                CrowdData::from_answers(r.iter().map(|(w, t, l)| (w.as_str(), t.as_str(), l.as_str()))).unwrap()
            };
            let (a, b) = (build(&rows), build(&shuffled));
            prop_assert_eq!(majority_vote(&a), majority_vote(&b));
            prop_assert_eq!(wawa(&a), wawa(&b));
            let fa = dawid_skene(&a, DsInit::MajorityVote, Stopping::default()).unwrap();
            let fb = dawid_skene(&b, DsInit::MajorityVote, Stopping::default()).unwrap();
            prop_assert_eq!(&fa.labels, &fb.labels);
            prop_assert_eq!(fa.rounds, fb.rounds);
            for (x, y) in fa.posteriors.iter().zip(&fb.posteriors) {
                prop_assert!((x - y).abs() < 1e-12);
            }
            // Whatever the data, the fit is a distribution per task.
            for t in 0..a.n_tasks() {
                let s: f64 = fa.posterior(t).iter().sum();
                prop_assert!((s - 1.0).abs() < 1e-8, "{}", s);
            }
        }
    }
}
