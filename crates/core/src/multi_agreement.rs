//! Agreement on multi-label answers, where a reviewer's answer to an item is a set of
//! labels (possibly empty: "none of these").
//!
//! Two views, as issue #17 asks:
//!
//! - **per label**: each label made a yes/no question (did the reviewer include it?), and
//!   Fleiss' κ and Krippendorff's α (nominal) of those answers, computed by the
//!   single-label functions of [`crate::agreement`];
//! - **overall**: Krippendorff's α over the sets themselves with a set distance, MASI
//!   (Passonneau 2006) or Jaccard, computed from the coincidences of the distinct sets
//!   (missing answers allowed, units with one answer ignored). On complete data it equals
//!   NLTK's `AnnotationTask(distance=masi_distance).alpha()`; with singleton sets both
//!   distances are the nominal one, so it equals [`crate::agreement::krippendorff_alpha_nominal`].
//!
//! The distances follow NLTK's `nltk/metrics/distance.py` (3.10): Jaccard is
//! `1 − |A∩B| / |A∪B|`; MASI is `1 − (|A∩B| / |A∪B|) · m` with Passonneau's monotonicity
//! weight `m` = 1 when the sets are equal, 2/3 when one is a subset of the other, 1/3 when
//! they overlap otherwise, 0 when they are disjoint (older NLTK releases rounded these to
//! 0.67 and 0.33). Two empty sets are equal, at distance 0 (NLTK divides by zero there).

use std::collections::BTreeMap;

use crate::agreement::{LabelAgreement, fleiss_kappa, krippendorff_alpha_crowd, modal_count_table};
use crate::crowd::{CrowdData, CrowdDataError};

/// How far apart two label sets are, in [0, 1] (0 only for equal sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetDistance {
    /// Measuring Agreement on Set-valued Items (Passonneau 2006): Jaccard weighted down
    /// unless one set contains the other. The default.
    #[default]
    Masi,
    Jaccard,
}

impl SetDistance {
    /// The name used in reports: `masi` or `jaccard`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Masi => "masi",
            Self::Jaccard => "jaccard",
        }
    }

    /// The distance between two sets given as sorted, duplicate-free slices.
    pub fn between<T: Ord>(self, a: &[T], b: &[T]) -> f64 {
        let (inter, union) = overlap(a, b);
        if union == 0 {
            return 0.0;
        }
        let jaccard = inter as f64 / union as f64;
        let m = match self {
            Self::Jaccard => 1.0,
            Self::Masi if a.len() == b.len() && inter == a.len() => 1.0,
            Self::Masi if inter == a.len().min(b.len()) => 2.0 / 3.0,
            Self::Masi if inter > 0 => 1.0 / 3.0,
            Self::Masi => 0.0,
        };
        1.0 - jaccard * m
    }
}

impl std::str::FromStr for SetDistance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "masi" => Ok(Self::Masi),
            "jaccard" => Ok(Self::Jaccard),
            _ => Err(format!("the set distance is masi or jaccard, got {s:?}")),
        }
    }
}

/// |A∩B| and |A∪B| of two sorted, duplicate-free slices.
fn overlap<T: Ord>(a: &[T], b: &[T]) -> (usize, usize) {
    let (mut i, mut j, mut inter) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    (inter, a.len() + b.len() - inter)
}

/// Krippendorff's α with `distance` over units of set values: `units[u]` holds the sets
/// the reviewers gave unit `u` (each sorted and duplicate-free). Units with fewer than two
/// values are not pairable and are ignored. `None` when undefined: fewer than two pairable
/// values, or one and the same set throughout.
///
/// α = 1 − (n − 1) · Σ_u Σ_{c,k} n_uc n_uk δ(c,k) / (m_u − 1) ÷ Σ_{c,k} n_c n_k δ(c,k),
/// over the distinct sets c, k; n_uc is how often unit u got set c, m_u its values, n_c
/// and n the totals over pairable units.
pub fn krippendorff_alpha_sets<T: Ord + Clone>(units: &[Vec<Vec<T>>], distance: SetDistance) -> Option<f64> {
    let mut values: BTreeMap<&[T], usize> = BTreeMap::new();
    for unit in units.iter().filter(|u| u.len() >= 2) {
        for v in unit {
            let next = values.len();
            values.entry(v.as_slice()).or_insert(next);
        }
    }
    let sets: Vec<&[T]> = {
        let mut s = vec![&[][..]; values.len()];
        for (&v, &i) in &values {
            s[i] = v;
        }
        s
    };
    let coded: Vec<Vec<usize>> = units
        .iter()
        .map(|u| {
            u.iter()
                .map(|v| values.get(v.as_slice()).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    alpha_of_coded(&sets, coded.iter().map(Vec::as_slice), distance)
}

/// α over units whose values are indices into `sets` (see [`krippendorff_alpha_sets`]).
fn alpha_of_coded<'a, T: Ord>(
    sets: &[&[T]],
    units: impl IntoIterator<Item = &'a [usize]>,
    distance: SetDistance,
) -> Option<f64> {
    let k = sets.len();
    let delta: Vec<f64> = (0..k * k).map(|i| distance.between(sets[i / k], sets[i % k])).collect();
    let mut totals = vec![0u64; k];
    let mut counts = vec![0u64; k];
    let mut observed = 0.0;
    for unit in units {
        let m = unit.len() as u64;
        if m < 2 {
            continue;
        }
        counts.fill(0);
        for &v in unit {
            counts[v] += 1;
        }
        let mut within = 0.0;
        for c in 0..k {
            for d in 0..k {
                within += (counts[c] * counts[d]) as f64 * delta[c * k + d];
            }
        }
        observed += within / (m - 1) as f64;
        for (t, c) in totals.iter_mut().zip(&counts) {
            *t += c;
        }
    }
    let n: u64 = totals.iter().sum();
    if n < 2 || totals.iter().filter(|&&t| t > 0).count() < 2 {
        return None;
    }
    let mut expected = 0.0;
    for c in 0..k {
        for d in 0..k {
            expected += (totals[c] * totals[d]) as f64 * delta[c * k + d];
        }
    }
    Some(1.0 - (n - 1) as f64 * observed / expected)
}

/// Every agreement figure of a multi-label project: what `GET /v1/projects/{project}/agreement`
/// answers for `label_mode: "multi"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MultiAgreementReport {
    /// Always `multi`: tells this report from the single-label one.
    pub label_mode: &'static str,
    pub answers: usize,
    pub tasks: usize,
    pub workers: usize,
    /// The labels, in the project's order (then any other label answered, sorted).
    pub labels: Vec<String>,
    /// The set distance of `krippendorff_alpha`: `masi` or `jaccard`.
    pub distance: &'static str,
    /// Krippendorff's α over the answered sets with `distance`, missing answers allowed.
    pub krippendorff_alpha: Option<f64>,
    /// Per label, Fleiss' κ (over the items with the most common number of answers) and
    /// Krippendorff's α (nominal) of that label's yes/no.
    pub per_label: BTreeMap<String, LabelAgreement>,
}

/// The agreement report of multi-label answers `(reviewer, item, labels)`, the labels
/// reported in the order of `labels` (labels answered but not in it follow, sorted). An
/// answer's repeated labels count once. Errors when there are no answers or a reviewer
/// answered an item twice.
pub fn report<'a, S: AsRef<str> + 'a>(
    labels: &[String],
    answers: impl IntoIterator<Item = (&'a str, &'a str, &'a [S])>,
    distance: SetDistance,
) -> Result<MultiAgreementReport, CrowdDataError> {
    let mut names: Vec<String> = labels.to_vec();
    let mut coded: Vec<(&str, &str, Vec<u32>)> = Vec::new();
    let mut extra: Vec<String> = Vec::new();
    for (w, t, set) in answers {
        let mut v = Vec::with_capacity(set.len());
        for l in set {
            let l = l.as_ref();
            let i = match names.iter().position(|n| n == l) {
                Some(i) => i,
                None => {
                    names.push(l.to_string());
                    extra.push(l.to_string());
                    names.len() - 1
                }
            };
            v.push(i as u32);
        }
        coded.push((w, t, v));
    }
    // Extra labels go after the project's, sorted: renumber them.
    if !extra.is_empty() {
        let base = labels.len();
        let mut sorted = extra.clone();
        sorted.sort();
        let rank: Vec<u32> = extra
            .iter()
            .map(|e| (base + sorted.binary_search(e).expect("an extra label")) as u32)
            .collect();
        for (_, _, v) in &mut coded {
            for i in v.iter_mut() {
                if *i as usize >= base {
                    *i = rank[*i as usize - base];
                }
            }
        }
        names.truncate(base);
        names.extend(sorted);
    }
    for (_, _, v) in &mut coded {
        v.sort_unstable();
        v.dedup();
    }
    // Each distinct set as a key, so CrowdData checks, interns and groups the answers.
    let keys: Vec<String> = coded.iter().map(|(_, _, v)| set_key(v)).collect();
    let data = CrowdData::from_answers(coded.iter().zip(&keys).map(|((w, t, _), k)| (*w, *t, k.as_str())))?;
    let sets: Vec<Vec<u32>> = data.labels().iter().map(|k| parse_key(k)).collect();
    let set_refs: Vec<&[u32]> = sets.iter().map(Vec::as_slice).collect();
    let answer_sets: Vec<usize> = data.answer_labels().iter().map(|&l| l as usize).collect();
    let krippendorff_alpha = alpha_of_coded(
        &set_refs,
        (0..data.n_tasks()).map(|t| &answer_sets[data.task_range(t)]),
        distance,
    );
    let tasks = data.answer_tasks();
    let mut per_label = BTreeMap::new();
    for (j, name) in names.iter().enumerate() {
        let yes_no = (0..data.n_answers()).map(|a| {
            let hit = sets[answer_sets[a]].binary_search(&(j as u32)).is_ok();
            (
                data.workers()[data.answer_workers()[a] as usize].as_str(),
                data.tasks()[tasks[a] as usize].as_str(),
                if hit { "1" } else { "0" },
            )
        });
        let binary = CrowdData::from_answers(yes_no).expect("the same answers, without repeats");
        let modal = modal_count_table(&binary);
        per_label.insert(
            name.clone(),
            LabelAgreement {
                fleiss_kappa: modal.as_ref().and_then(|m| fleiss_kappa(&m.table)),
                krippendorff_alpha: krippendorff_alpha_crowd(&binary),
            },
        );
    }
    Ok(MultiAgreementReport {
        label_mode: "multi",
        answers: data.n_answers(),
        tasks: data.n_tasks(),
        workers: data.n_workers(),
        labels: names,
        distance: distance.name(),
        krippendorff_alpha,
        per_label,
    })
}

/// A label set (sorted indices) as a string: `"#"` then the indices joined by commas.
fn set_key(v: &[u32]) -> String {
    let mut s = String::from("#");
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s
}

fn parse_key(k: &str) -> Vec<u32> {
    k[1..]
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().expect("a key made by set_key"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::krippendorff_alpha_nominal;
    use crate::agreement::tests::reliability;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn distances_match_nltk() {
        let m = SetDistance::Masi;
        let j = SetDistance::Jaccard;
        // NLTK 3.10's docstring: masi_distance({1, 2}, {1, 2, 3, 4}) = 0.6666666666666667
        // (a subset: m = 2/3, 1 − 2/4 · 2/3).
        assert!(close(m.between(&[1, 2], &[1, 2, 3, 4]), 2.0 / 3.0));
        // {a,b} vs {a}: 1 − ½·⅔ = ⅔; overlapping {a,b} vs {b,c}: 1 − ⅓·⅓ = 8/9 (NLTK
        // 3.10 gives 0.8888888888888888).
        assert!(close(m.between(&["a", "b"], &["a"]), 2.0 / 3.0));
        assert!(close(m.between(&["a", "b"], &["b", "c"]), 8.0 / 9.0));
        assert_eq!(m.between(&["a"], &["b"]), 1.0);
        assert_eq!(m.between(&["a", "b"], &["a", "b"]), 0.0);
        // The empty set against a non-empty one is disjoint; two empty sets are equal.
        assert_eq!(m.between::<u8>(&[], &[1]), 1.0);
        assert_eq!(m.between::<u8>(&[], &[]), 0.0);
        // Jaccard: 1 − |∩|/|∪|.
        assert!(close(j.between(&[1, 2], &[1, 2, 3, 4]), 0.5));
        assert!(close(j.between(&["a", "b"], &["b", "c"]), 1.0 - 1.0 / 3.0));
        assert_eq!(j.between::<u8>(&[], &[]), 0.0);
        assert_eq!("masi".parse(), Ok(SetDistance::Masi));
        assert_eq!("jaccard".parse::<SetDistance>().map(SetDistance::name), Ok("jaccard"));
        assert!("cosine".parse::<SetDistance>().is_err());
    }

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Two reviewers, three items, labels a and b:
    ///
    /// ```text
    ///        w1      w2
    /// t1   {a,b}    {a}
    /// t2   {b}      {b}
    /// t3   {}       {a}
    /// ```
    ///
    /// Overall α, MASI. Values: {a,b} ×1, {a} ×2, {b} ×2, {} ×1; n = 6.
    /// δ({a,b},{a}) = δ({a,b},{b}) = 1 − ½·⅔ = ⅔; every other pair of distinct sets here
    /// is disjoint, δ = 1.
    /// Observed: t1 gives 2·⅔/(2−1) = 4/3, t2 0, t3 2·1/(2−1) = 2 → 10/3.
    /// Expected: 2·(1·2·⅔ + 1·2·⅔ + 1·1·1 + 2·2·1 + 2·1·1 + 2·1·1) = 2·35/3 = 70/3.
    /// α = 1 − 5·(10/3)/(70/3) = 2/7 ≈ 0.285714 — what NLTK 3.10's
    /// `AnnotationTask(data, distance=masi_distance).alpha()` gives on these answers
    /// (0.2857142857142858, its distance given 0 for two empty sets).
    /// Jaccard: δ({a,b},{a}) = ½: observed 1 + 2 = 3, expected 2·11 = 22, α = 1 − 15/22 = 7/22
    /// (NLTK: 0.3181818181818181).
    ///
    /// Per label a (yes/no): t1 (1,1), t2 (0,0), t3 (0,1). Nominal α: n_0 = n_1 = 3,
    /// observed 2 (t3), α = 1 − 5·2/(36 − 18) = 4/9. Fleiss: P_i = 1, 1, 0 → P̄ = ⅔, P_e = ½,
    /// κ = (⅔ − ½)/½ = ⅓. Label b: t1 (1,0), t2 (1,1), t3 (0,0) — the same figures.
    fn hand_case() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
        vec![
            ("w1", "t1", vec!["b", "a"]),
            ("w2", "t1", vec!["a"]),
            ("w1", "t2", vec!["b"]),
            ("w2", "t2", vec!["b", "b"]),
            ("w1", "t3", vec![]),
            ("w2", "t3", vec!["a"]),
        ]
    }

    fn run(distance: SetDistance) -> MultiAgreementReport {
        let answers = hand_case();
        report(
            &labels(&["a", "b"]),
            answers.iter().map(|(w, t, l)| (*w, *t, l.as_slice())),
            distance,
        )
        .unwrap()
    }

    #[test]
    fn hand_checked_report() {
        let r = run(SetDistance::Masi);
        assert_eq!((r.answers, r.tasks, r.workers), (6, 3, 2));
        assert_eq!(r.labels, ["a", "b"]);
        assert_eq!((r.label_mode, r.distance), ("multi", "masi"));
        assert!(
            close(r.krippendorff_alpha.unwrap(), 2.0 / 7.0),
            "{:?}",
            r.krippendorff_alpha
        );
        for l in ["a", "b"] {
            let x = &r.per_label[l];
            assert!(close(x.krippendorff_alpha.unwrap(), 4.0 / 9.0), "{l}: {x:?}");
            assert!(close(x.fleiss_kappa.unwrap(), 1.0 / 3.0), "{l}: {x:?}");
        }
        let r = run(SetDistance::Jaccard);
        assert_eq!(r.distance, "jaccard");
        assert!(close(r.krippendorff_alpha.unwrap(), 7.0 / 22.0));
        // The same through the unit-level function.
        let units = vec![
            vec![vec!["a", "b"], vec!["a"]],
            vec![vec!["b"], vec!["b"]],
            vec![vec![], vec!["a"]],
            vec![vec!["a"]],
        ];
        assert!(close(
            krippendorff_alpha_sets(&units, SetDistance::Jaccard).unwrap(),
            7.0 / 22.0
        ));
    }

    #[test]
    fn labels_outside_the_list_and_undefined_cases() {
        // A label no one answered: all "no", α and κ undefined. An unknown label follows.
        let answers = [
            ("w1", "t1", vec!["z", "a"]),
            ("w2", "t1", vec!["a", "z"]),
            ("w1", "t2", vec!["a"]),
            ("w2", "t2", vec!["a"]),
        ];
        let r = report(
            &labels(&["a", "b"]),
            answers.iter().map(|(w, t, l)| (*w, *t, l.as_slice())),
            SetDistance::Masi,
        )
        .unwrap();
        assert_eq!(r.labels, ["a", "b", "z"]);
        assert_eq!(
            r.per_label["b"],
            LabelAgreement {
                fleiss_kappa: None,
                krippendorff_alpha: None
            }
        );
        // Perfect agreement on two different sets: α = 1; label a always yes: undefined.
        assert_eq!(r.krippendorff_alpha, Some(1.0));
        assert_eq!(r.per_label["a"].krippendorff_alpha, None);
        assert_eq!(r.per_label["z"].krippendorff_alpha, Some(1.0));
        // One set throughout, or nothing pairable: undefined.
        assert_eq!(
            krippendorff_alpha_sets(&[vec![vec![1], vec![1]]], SetDistance::Masi),
            None
        );
        assert_eq!(
            krippendorff_alpha_sets(&[vec![vec![1]], vec![vec![2]]], SetDistance::Masi),
            None
        );
        assert_eq!(krippendorff_alpha_sets::<u8>(&[], SetDistance::Masi), None);
        // No answers, a repeated answer: errors.
        let none: [(&str, &str, &[&str]); 0] = [];
        assert!(matches!(
            report(&labels(&["a"]), none, SetDistance::Masi),
            Err(CrowdDataError::Empty)
        ));
        let twice: [(&str, &str, &[&str]); 2] = [("w", "t", &["a"]), ("w", "t", &[])];
        assert!(matches!(
            report(&labels(&["a"]), twice, SetDistance::Masi),
            Err(CrowdDataError::DuplicateAnswer { .. })
        ));
    }

    proptest! {
        /// With one label per answer both distances are the nominal one.
        #[test]
        fn singleton_sets_give_nominal_alpha(data in reliability()) {
            let n_units = data.iter().map(Vec::len).max().unwrap_or(0);
            let units: Vec<Vec<Vec<u8>>> = (0..n_units)
                .map(|u| data.iter().filter_map(|row| row[u].map(|v| vec![v])).collect())
                .collect();
            let nominal = krippendorff_alpha_nominal(&data);
            for d in [SetDistance::Masi, SetDistance::Jaccard] {
                let a = krippendorff_alpha_sets(&units, d);
                prop_assert!(match (a, nominal) {
                    (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                    (a, b) => a == b,
                }, "{:?} vs {:?}", a, nominal);
            }
        }

        #[test]
        fn distances_are_symmetric_bounded_and_zero_only_on_equal_sets(
            a in proptest::collection::btree_set(0u8..6, 0..5),
            b in proptest::collection::btree_set(0u8..6, 0..5),
        ) {
            let (a, b): (Vec<u8>, Vec<u8>) = (a.into_iter().collect(), b.into_iter().collect());
            for d in [SetDistance::Masi, SetDistance::Jaccard] {
                let x = d.between(&a, &b);
                prop_assert_eq!(x, d.between(&b, &a));
                prop_assert!((0.0..=1.0).contains(&x));
                prop_assert_eq!(x == 0.0, a == b);
            }
            prop_assert!(SetDistance::Masi.between(&a, &b) >= SetDistance::Jaccard.between(&a, &b));
        }
    }
}
