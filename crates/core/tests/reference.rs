//! The statistics against reference values computed by Python libraries (scikit-learn,
//! statsmodels, krippendorff, crowd-kit): `shared/data/reference_values.json`, described in
//! `shared/data/README.md`.
//!
//! The synthetic cases (hand-checkable agreement inputs and the 5 × 8 toy crowd) are
//! copied under `tests/fixtures/synthetic/` and always run. The real datasets (Snow et al.
//! 2008 RTE, and the evaluation sets under `eval/`) are read from the shared data
//! directory — `FLYWHEEL_DATA_DIR`, else `<workspace>/../shared/data` — and are skipped,
//! with a message, when it is absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flywheel_core::aggregate::{self, DsFit, DsInit, Stopping, Vote};
use flywheel_core::agreement::{self, CountTable};
use flywheel_core::crowd::{self, CrowdData, Gold};
use flywheel_core::quality::{self, WorkerScore};
use serde_json::Value;

/// Exact statistics (κ, α, accuracies); Dawid–Skene posteriors and parameters (the README
/// asks ~1e-9 since crowd-kit floors posteriors at 1e-10; this implementation is within ~1e-14).
const EXACT: f64 = 1e-9;
const POSTERIOR: f64 = 1e-9;

fn shared_data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("FLYWHEEL_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    dir.join("reference_values.json").is_file().then_some(dir)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/synthetic")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn u(v: &Value) -> usize {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")) as usize
}

/// A label or id as text: JSON numbers and strings alike.
fn name(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

#[track_caller]
fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: {actual} vs reference {expected} (|Δ| = {:e})",
        (actual - expected).abs()
    );
}

#[track_caller]
fn assert_opt(actual: Option<f64>, expected: &Value, tol: f64, what: &str) {
    match (actual, expected.as_f64()) {
        (Some(a), Some(e)) => assert_close(a, e, tol, what),
        (None, None) => {}
        (a, _) => panic!("{what}: {a:?} vs reference {expected}"),
    }
}

fn labelled<'a>(data: &'a CrowdData, labels: &'a [u32]) -> impl Iterator<Item = (&'a str, &'a str)> {
    data.tasks()
        .iter()
        .zip(labels)
        .map(|(t, &l)| (t.as_str(), data.labels()[l as usize].as_str()))
}

#[track_caller]
fn assert_labels(data: &CrowdData, labels: &[u32], expected: &Value, what: &str) {
    let expected = expected.as_object().unwrap();
    assert_eq!(expected.len(), data.n_tasks(), "{what}: number of tasks");
    let wrong: Vec<_> = labelled(data, labels)
        .filter(|(t, l)| name(&expected[*t]) != *l)
        .map(|(t, l)| format!("{t}: {l} vs {}", expected[t]))
        .collect();
    assert!(wrong.is_empty(), "{what}: {} labels differ: {wrong:?}", wrong.len());
}

#[track_caller]
fn assert_ties(data: &CrowdData, vote: &Vote, expected: &Value, score_key: &str, what: &str) {
    // The reference lists ties in its own task order; match them by task.
    let expected: BTreeMap<String, &Value> = expected
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (name(&e["task"]), e))
        .collect();
    assert_eq!(vote.ties.len(), expected.len(), "{what}: number of ties");
    for tie in &vote.ties {
        let task = &data.tasks()[tie.task as usize];
        let e = expected
            .get(task)
            .unwrap_or_else(|| panic!("{what}: {task} is not tied in the reference"));
        let labels: Vec<String> = tie.labels.iter().map(|&l| data.labels()[l as usize].clone()).collect();
        let want: Vec<String> = e["tied_labels"].as_array().unwrap().iter().map(name).collect();
        assert_eq!(labels, want, "{what}: tied labels of {task}");
        assert_close(tie.score, f(&e[score_key]), EXACT, what);
    }
}

#[track_caller]
fn assert_scores(data: &CrowdData, scores: &[WorkerScore], expected: &Value, what: &str) {
    let expected = expected.as_object().unwrap();
    assert_eq!(expected.len(), data.n_workers(), "{what}");
    for (w, s) in data.workers().iter().zip(scores) {
        let e = &expected[w];
        assert_eq!((s.n, s.correct), (u(&e["n"]), u(&e["correct"])), "{what}: {w}");
        assert_close(s.accuracy().unwrap(), f(&e["accuracy"]), EXACT, what);
    }
}

#[track_caller]
fn assert_per_worker(data: &CrowdData, values: impl Fn(usize) -> f64, expected: &Value, tol: f64, what: &str) {
    let expected = expected.as_object().unwrap();
    assert_eq!(expected.len(), data.n_workers(), "{what}");
    for (i, w) in data.workers().iter().enumerate() {
        assert_close(values(i), f(&expected[w]), tol, &format!("{what} of {w}"));
    }
}

fn accuracy(gold: &Gold, labels: &[u32]) -> f64 {
    gold.accuracy(labels).unwrap()
}

/// One `dawid_skene*` section: the fit's every reported figure.
fn check_dawid_skene(data: &CrowdData, gold: &Gold, fit: &DsFit, e: &Value, what: &str) {
    assert_eq!(fit.rounds, u(&e["n_em_rounds"]), "{what}: rounds");
    assert_eq!(fit.stopped_early, e["stopped_early"].as_bool().unwrap(), "{what}");
    assert_labels(data, &fit.labels, &e["labels"], what);
    let mut worst: f64 = 0.0;
    for (t, task) in data.tasks().iter().enumerate() {
        for (l, label) in data.labels().iter().enumerate() {
            let expected = f(&e["posteriors"][task][label]);
            let d = (fit.posterior(t)[l] - expected).abs();
            assert!(
                d <= POSTERIOR,
                "{what}: posterior of {task}/{label}: {} vs {expected}",
                fit.posterior(t)[l]
            );
            worst = worst.max(d);
        }
    }
    eprintln!("{what}: largest posterior |Δ| = {worst:e}");
    for (l, label) in data.labels().iter().enumerate() {
        assert_close(
            fit.params.priors[l],
            f(&e["priors"][label]),
            POSTERIOR,
            &format!("{what}: prior {label}"),
        );
    }
    for (w, worker) in data.workers().iter().enumerate() {
        let confusion = fit.params.confusion(w);
        for (truth, tl) in data.labels().iter().enumerate() {
            for (obs, ol) in data.labels().iter().enumerate() {
                let expected = f(&e["worker_confusion_true_to_observed"][worker][tl][ol]);
                assert_close(
                    confusion[truth][obs],
                    expected,
                    POSTERIOR,
                    &format!("{what}: e_{worker}[{ol}|{tl}]"),
                );
            }
        }
    }
    assert_per_worker(
        data,
        |w| fit.params.accuracy_prior_weighted(w),
        &e["worker_accuracy_prior_weighted"],
        POSTERIOR,
        &format!("{what}: worker_accuracy_prior_weighted"),
    );
    assert_per_worker(
        data,
        |w| fit.params.accuracy_balanced(w),
        &e["worker_accuracy_balanced"],
        POSTERIOR,
        &format!("{what}: worker_accuracy_balanced"),
    );
    let ll = f(&e["observed_data_log_likelihood"]);
    assert_close(
        fit.log_likelihood,
        ll,
        1e-9 * ll.abs().max(1.0),
        &format!("{what}: log-likelihood"),
    );
    for (i, loss) in e["crowdkit_loss_first3"].as_array().unwrap().iter().enumerate() {
        assert_close(
            fit.loss_history[i],
            f(loss),
            EXACT,
            &format!("{what}: loss of round {}", i + 1),
        );
    }
    assert_close(
        *fit.loss_history.last().unwrap(),
        f(&e["crowdkit_loss_last"]),
        EXACT,
        &format!("{what}: last loss"),
    );
    assert_eq!(e["tasks_with_posterior_0.5"].as_array().unwrap().len(), 0);
    assert_close(accuracy(gold, &fit.labels), f(&e["accuracy_vs_gold"]), EXACT, what);
}

/// Every figure of one crowd section (`synthetic.toy_crowd`, `snow2008_rte`).
fn check_crowd_section(data: &CrowdData, gold: &Gold, e: &Value) {
    let set = e["dataset"].as_str().unwrap();
    let what = |s: &str| format!("{set} {s}");

    // stats
    let stats = &e["stats"];
    assert_eq!(data.n_answers(), u(&stats["n_answers"]));
    assert_eq!(data.n_tasks(), u(&stats["n_tasks"]));
    assert_eq!(data.n_workers(), u(&stats["n_workers"]));
    let labels: Vec<String> = stats["labels"].as_array().unwrap().iter().map(name).collect();
    assert_eq!(data.labels(), labels, "labels in label order");
    for (l, n) in data.labels().iter().zip(data.label_counts()) {
        assert_eq!(n, u(&stats["answer_label_counts"][l]), "{set}: answers with label {l}");
    }
    let mut histogram: BTreeMap<String, usize> = BTreeMap::new();
    for t in 0..data.n_tasks() {
        *histogram.entry(data.task_len(t).to_string()).or_default() += 1;
    }
    for (m, n) in &histogram {
        assert_eq!(
            *n,
            u(&stats["answers_per_task_histogram"][m]),
            "{set}: tasks with {m} answers"
        );
    }
    assert_eq!(gold.n_known(), u(&stats["n_gold_tasks"]));

    // majority vote
    let mv = aggregate::majority_vote(data);
    let e_mv = &e["majority_vote"];
    assert_labels(data, &mv.labels, &e_mv["labels"], &what("majority vote"));
    assert_eq!(mv.ties.len(), u(&e_mv["n_ties"]));
    assert_ties(data, &mv, &e_mv["ties"], "votes", &what("majority vote"));
    assert_close(
        accuracy(gold, &mv.labels),
        f(&e_mv["accuracy_vs_gold"]),
        EXACT,
        &what("MV accuracy"),
    );
    let (c, n) = gold.hits_where(&mv.labels, |t| !mv.is_tied(t));
    assert_close(
        c as f64 / n as f64,
        f(&e_mv["accuracy_vs_gold_untied_tasks_only"]),
        EXACT,
        &what("MV accuracy on untied tasks"),
    );
    assert_scores(
        data,
        &quality::score_workers(data, &Gold::from_labels(&mv.labels)),
        &e["worker_vs_majority_vote"],
        &what("worker_vs_majority_vote"),
    );

    // Dawid–Skene, crowd-kit's stopping rule and exactly 100 rounds
    let ds = aggregate::dawid_skene(data, DsInit::MajorityVote, Stopping::default()).unwrap();
    check_dawid_skene(data, gold, &ds, &e["dawid_skene"], &what("dawid_skene"));
    let ds100 = aggregate::dawid_skene(data, DsInit::MajorityVote, Stopping::Rounds(100)).unwrap();
    let e100 = &e["dawid_skene_100_rounds"];
    check_dawid_skene(data, gold, &ds100, e100, &what("dawid_skene_100_rounds"));
    let differing = ds.labels.iter().zip(&ds100.labels).filter(|(a, b)| a != b).count();
    assert_eq!(differing, u(&e100["n_labels_differing_from_crowdkit_default"]));

    // Wawa
    let wawa = aggregate::wawa(data);
    let e_wawa = &e["wawa"];
    assert_per_worker(
        data,
        |w| wawa.weights[w],
        &e_wawa["worker_weight"],
        EXACT,
        &what("wawa weight"),
    );
    assert_labels(data, &wawa.vote.labels, &e_wawa["labels"], &what("wawa"));
    assert_eq!(wawa.vote.ties.len(), u(&e_wawa["n_ties"]));
    assert_ties(data, &wawa.vote, &e_wawa["ties"], "score", &what("wawa"));
    assert_close(
        accuracy(gold, &wawa.vote.labels),
        f(&e_wawa["accuracy_vs_gold"]),
        EXACT,
        &what("wawa accuracy"),
    );

    // Reviewer accuracy on gold, and the vote weighted by it
    let on_gold = quality::score_workers(data, gold);
    assert_scores(data, &on_gold, &e["worker_vs_gold"], &what("worker_vs_gold"));
    let weights: Vec<f64> = on_gold.iter().map(|s| s.accuracy().unwrap()).collect();
    let weighted = aggregate::weighted_vote(data, &weights).unwrap();
    let e_w = &e["gold_accuracy_weighted_vote"];
    assert_labels(
        data,
        &weighted.labels,
        &e_w["labels"],
        &what("gold-accuracy weighted vote"),
    );
    assert_eq!(weighted.ties.len(), u(&e_w["n_ties"]));
    assert_ties(
        data,
        &weighted,
        &e_w["ties"],
        "score",
        &what("gold-accuracy weighted vote"),
    );
    assert_close(
        accuracy(gold, &weighted.labels),
        f(&e_w["accuracy_vs_gold"]),
        EXACT,
        &what("weighted accuracy"),
    );

    // Fleiss and Randolph on the tasks with the modal number of answers
    let modal = agreement::modal_count_table(data).unwrap();
    let e_f = &e["fleiss"];
    assert_eq!(modal.table.raters() as usize, u(&e_f["raters_per_task_used"]));
    assert_eq!(modal.tasks.len(), u(&e_f["n_tasks_used"]));
    assert_eq!(modal.n_dropped, u(&e_f["n_tasks_dropped"]));
    let categories: Vec<String> = modal
        .categories
        .iter()
        .map(|&l| data.labels()[l as usize].clone())
        .collect();
    let want: Vec<String> = e_f["categories"].as_array().unwrap().iter().map(name).collect();
    assert_eq!(categories, want);
    assert_opt(
        agreement::fleiss_kappa(&modal.table),
        &e_f["fleiss_kappa"],
        EXACT,
        &what("Fleiss"),
    );
    assert_opt(
        agreement::randolph_kappa(&modal.table),
        &e_f["randolph_kappa"],
        EXACT,
        &what("Randolph"),
    );

    // Krippendorff over all workers × all tasks
    let e_k = &e["krippendorff"];
    let pairable = (0..data.n_tasks()).filter(|&t| data.task_len(t) >= 2).count();
    assert_eq!(pairable, u(&e_k["n_pairable_tasks"]));
    assert_opt(
        agreement::krippendorff_alpha_crowd(data),
        &e_k["alpha"],
        EXACT,
        &what("Krippendorff"),
    );

    // The most-overlapping worker pairs
    let expected = e["cohen_kappa_top_overlap_pairs"].as_array().unwrap();
    let pairs = agreement::top_overlap_pairs(data, expected.len());
    assert_eq!(pairs.len(), expected.len());
    let k = data.n_labels();
    for (p, e) in pairs.iter().zip(expected) {
        let (a, b) = (
            &data.workers()[p.worker_a as usize],
            &data.workers()[p.worker_b as usize],
        );
        assert_eq!(
            (a.as_str(), b.as_str()),
            (e["worker_a"].as_str().unwrap(), e["worker_b"].as_str().unwrap())
        );
        assert_eq!(p.shared_tasks, u(&e["n_shared_tasks"]));
        let cohen = p.cohen.unwrap();
        assert_close(
            cohen.observed_agreement,
            f(&e["raw_agreement"]),
            EXACT,
            &what("pair raw agreement"),
        );
        assert_opt(cohen.kappa, &e["cohen_kappa"], EXACT, &what(&format!("Cohen {a}–{b}")));
        for (key, n) in e["pair_counts_a|b"].as_object().unwrap() {
            let (la, lb) = key.split_once('|').unwrap();
            let (la, lb) = (
                data.label_index(la).unwrap() as usize,
                data.label_index(lb).unwrap() as usize,
            );
            assert_eq!(p.counts[la * k + lb], u(n) as u64, "{set}: {a}|{b} counts {key}");
        }
    }
}

fn load(labels: &Path, gold: Option<&Path>) -> (CrowdData, Gold) {
    let data = crowd::parse_answers(&read(labels)).unwrap_or_else(|e| panic!("{}: {e}", labels.display()));
    let gold = match gold {
        Some(g) => {
            let text = read(g);
            let rows = crowd::parse_gold(&text).unwrap_or_else(|e| panic!("{}: {e}", g.display()));
            data.gold(rows)
        }
        None => data.gold([]),
    };
    (data, gold)
}

#[test]
fn synthetic_agreement_cases() {
    let cases = json(&fixtures().join("agreement_cases.json"));
    let reference = &json(&fixtures().join("reference_values.synthetic.json"))["synthetic"];

    for case in cases["cohen"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let e = &reference["cohen"][id];
        let pairs = case["rater_a"]
            .as_array()
            .unwrap()
            .iter()
            .map(name)
            .zip(case["rater_b"].as_array().unwrap().iter().map(name));
        let k = agreement::cohen_kappa(pairs).unwrap();
        assert_opt(k.kappa, &e["cohen_kappa"], EXACT, id);
        assert_close(k.observed_agreement, f(&e["hand_observed_agreement"]), EXACT, id);
        assert_close(k.expected_agreement, f(&e["hand_expected_agreement"]), EXACT, id);
    }
    assert_eq!(
        reference["cohen"].as_object().unwrap().len(),
        cases["cohen"].as_array().unwrap().len()
    );

    for case in cases["fleiss"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let e = &reference["fleiss"][id];
        let table = if let Some(table) = case.get("table") {
            let rows: Vec<Vec<u64>> = table
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect())
                .collect();
            CountTable::new(&rows).unwrap()
        } else {
            let ratings: Vec<Vec<i64>> = case["ratings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().iter().map(|c| c.as_i64().unwrap()).collect())
                .collect();
            let (table, categories) = CountTable::from_ratings(&ratings).unwrap();
            let want: Vec<i64> = e["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_i64().unwrap())
                .collect();
            assert_eq!(categories, want, "{id}");
            table
        };
        let expected_table = e["count_table"].as_array().unwrap();
        assert_eq!(table.n_subjects(), expected_table.len(), "{id}");
        for (s, row) in expected_table.iter().enumerate() {
            let row: Vec<u64> = row.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
            assert_eq!(table.row(s), row, "{id}: row {s}");
        }
        assert_opt(agreement::fleiss_kappa(&table), &e["fleiss_kappa"], EXACT, id);
        assert_opt(agreement::randolph_kappa(&table), &e["randolph_kappa"], EXACT, id);
    }

    for case in cases["krippendorff"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let data: Vec<Vec<Option<i64>>> = case["reliability_data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(Value::as_i64).collect())
            .collect();
        assert_opt(
            agreement::krippendorff_alpha_nominal(&data),
            &reference["krippendorff"][id]["alpha"],
            EXACT,
            id,
        );
    }
}

#[test]
fn toy_crowd() {
    let dir = fixtures();
    let (data, gold) = load(&dir.join("toy_crowd.labels.tsv"), Some(&dir.join("toy_crowd.gold.tsv")));
    let reference = json(&dir.join("reference_values.synthetic.json"));
    check_crowd_section(&data, &gold, &reference["synthetic"]["toy_crowd"]);
}

#[test]
fn the_synthetic_fixtures_are_the_shared_ones() {
    let Some(shared) = shared_data_dir() else {
        eprintln!("skipped: the_synthetic_fixtures_are_the_shared_ones needs the shared data");
        return;
    };
    for file in ["agreement_cases.json", "toy_crowd.labels.tsv", "toy_crowd.gold.tsv"] {
        assert_eq!(
            read(&fixtures().join(file)),
            read(&shared.join("synthetic").join(file)),
            "tests/fixtures/synthetic/{file} differs from the shared copy"
        );
    }
    let copy = json(&fixtures().join("reference_values.synthetic.json"));
    let original = json(&shared.join("reference_values.json"));
    assert_eq!(
        copy["synthetic"], original["synthetic"],
        "reference values were regenerated: recopy them"
    );
    assert_eq!(copy["library_versions"], original["library_versions"]);
}

#[test]
fn snow2008_rte() {
    let Some(dir) = shared_data_dir() else {
        eprintln!("skipped: snow2008_rte needs the shared data (FLYWHEEL_DATA_DIR)");
        return;
    };
    let (data, gold) = load(
        &dir.join("crowd/snow2008_rte.labels.tsv"),
        Some(&dir.join("crowd/snow2008_rte.gold.tsv")),
    );
    let reference = json(&dir.join("reference_values.json"));
    check_crowd_section(&data, &gold, &reference["snow2008_rte"]);
}

/// Datasets the implementation was not developed against: everything runs, and every
/// figure is in range and sensible.
#[test]
fn evaluation_sets_hold_up() {
    let Some(dir) = shared_data_dir() else {
        eprintln!("skipped: evaluation_sets_hold_up needs the shared data (FLYWHEEL_DATA_DIR)");
        return;
    };
    let sets = [
        ("eval/crowd/snow2008_temp", true),
        ("eval/crowd/welinder_bluebirds", true),
        ("eval/crowd/zhou_dog", true),
        ("eval/toxicity/hs_brexit", false),
        ("eval/toxicity/md_agreement", false),
    ];
    for (set, has_gold) in sets {
        let labels = dir.join(format!("{set}.labels.tsv"));
        let gold_path = dir.join(format!("{set}.gold.tsv"));
        assert_eq!(gold_path.is_file(), has_gold, "{set}");
        let (data, gold) = load(&labels, has_gold.then_some(gold_path.as_path()));
        let in_unit = |x: f64| (0.0..=1.0).contains(&x);
        let kappa_like = |x: Option<f64>, what: &str| {
            let x = x.unwrap_or_else(|| panic!("{set}: {what} undefined"));
            assert!(x.is_finite() && (-1.0..=1.0).contains(&x), "{set}: {what} = {x}");
            x
        };

        let modal = agreement::modal_count_table(&data).unwrap();
        let fleiss = kappa_like(agreement::fleiss_kappa(&modal.table), "Fleiss");
        let randolph = kappa_like(agreement::randolph_kappa(&modal.table), "Randolph");
        let alpha = kappa_like(agreement::krippendorff_alpha_crowd(&data), "Krippendorff");
        let pairs = agreement::top_overlap_pairs(&data, 10);
        assert!(!pairs.is_empty(), "{set}");
        for w in pairs.windows(2) {
            assert!(w[0].shared_tasks >= w[1].shared_tasks, "{set}: pairs by overlap");
        }
        for p in &pairs {
            assert!(data.workers()[p.worker_a as usize] < data.workers()[p.worker_b as usize]);
            let c = p.cohen.unwrap();
            assert!(in_unit(c.observed_agreement) && in_unit(c.expected_agreement), "{set}");
            assert_eq!(p.counts.iter().sum::<u64>() as usize, p.shared_tasks);
            if let Some(k) = c.kappa {
                assert!((-1.0..=1.0).contains(&k), "{set}: pair κ {k}");
            }
        }

        let mv = aggregate::majority_vote(&data);
        let wawa = aggregate::wawa(&data);
        assert!(wawa.weights.iter().all(|&w| in_unit(w)), "{set}");
        let ds = aggregate::dawid_skene(&data, DsInit::MajorityVote, Stopping::default()).unwrap();
        let ds100 = aggregate::dawid_skene(&data, DsInit::MajorityVote, Stopping::Rounds(100)).unwrap();
        for fit in [&ds, &ds100] {
            assert!(fit.rounds >= 1 && fit.rounds <= 100, "{set}");
            assert!(fit.log_likelihood.is_finite() && fit.log_likelihood < 0.0, "{set}");
            assert!(
                (fit.params.priors.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{set}: priors"
            );
            for t in 0..data.n_tasks() {
                let post = fit.posterior(t);
                assert!(post.iter().all(|&p| p.is_finite() && in_unit(p)), "{set}: {post:?}");
                assert!((post.iter().sum::<f64>() - 1.0).abs() < 1e-8, "{set}: {post:?}");
            }
            for w in 0..data.n_workers() {
                for row in fit.params.confusion(w) {
                    assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{set}: confusion {row:?}");
                }
                assert!(in_unit(fit.params.accuracy_prior_weighted(w)), "{set}");
                assert!(in_unit(fit.params.accuracy_balanced(w)), "{set}");
            }
        }
        // More EM rounds never lower the observed-data likelihood.
        assert!(
            ds100.log_likelihood >= ds.log_likelihood - 1e-6 * ds.log_likelihood.abs(),
            "{set}: {} after 100 rounds < {} after {}",
            ds100.log_likelihood,
            ds.log_likelihood,
            ds.rounds
        );
        // The methods mostly agree with one another.
        let agree = |a: &[u32], b: &[u32]| a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
        let ds_vs_mv = agree(&ds.labels, &mv.labels);
        assert!(ds_vs_mv > 0.75, "{set}: Dawid–Skene agrees with MV on {ds_vs_mv}");
        assert!(agree(&wawa.vote.labels, &mv.labels) > 0.9, "{set}");

        let mut line = format!(
            "{set}: {} answers, {} tasks, {} workers; Fleiss {fleiss:.4} (on {} tasks × {}), Randolph {randolph:.4}, α {alpha:.4}; DS {} rounds, agrees with MV on {ds_vs_mv:.4}",
            data.n_answers(),
            data.n_tasks(),
            data.n_workers(),
            modal.tasks.len(),
            modal.table.raters(),
            ds.rounds
        );
        if has_gold {
            assert_eq!(gold.unmatched_tasks, 0, "{set}");
            let on_gold = quality::score_workers(&data, &gold);
            let weights: Vec<f64> = on_gold
                .iter()
                .zip(&wawa.weights)
                .map(|(s, &fallback)| s.accuracy().unwrap_or(fallback))
                .collect();
            let weighted = aggregate::weighted_vote(&data, &weights).unwrap();
            let accuracies = [
                ("MV", accuracy(&gold, &mv.labels)),
                ("Wawa", accuracy(&gold, &wawa.vote.labels)),
                ("gold-weighted", accuracy(&gold, &weighted.labels)),
                ("DS", accuracy(&gold, &ds.labels)),
                ("DS-100", accuracy(&gold, &ds100.labels)),
            ];
            for (method, acc) in accuracies {
                assert!(acc > 0.5, "{set}: {method} accuracy {acc}");
                line += &format!("; {method} {acc:.4}");
            }
            let (c, n) = gold.hits(&ds.labels);
            let interval = quality::wilson95(c as u64, n as u64).unwrap();
            assert!(interval.lower <= accuracy(&gold, &ds.labels) && accuracy(&gold, &ds.labels) <= interval.upper);
        }
        eprintln!("{line}");
    }
}
