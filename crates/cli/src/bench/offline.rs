//! The scenarios without a server, timed on one core: a Dawid–Skene fit (`ds-fit`) and
//! the built-in model (`model`).

use std::time::Instant;

use anyhow::bail;
use flywheel_sim::Rng;
use serde_json::json;

/// Times one Dawid–Skene fit over `answers` synthetic answers (five per task) from
/// `workers` reviewers of accuracy 0.55–0.95, with `labels` labels.
pub(super) fn ds_fit(answers: usize, workers: usize, labels: usize, json: bool) -> anyhow::Result<()> {
    use flywheel_core::aggregate::{DsInit, Stopping, dawid_skene};
    use flywheel_core::crowd::CrowdData;
    if workers < 5 || labels < 2 || answers < 5 {
        bail!("ds-fit needs at least 5 workers, 2 labels and 5 answers");
    }
    let mut rng = Rng::new(7);
    let accuracy: Vec<f64> = (0..workers).map(|_| 0.55 + 0.4 * rng.unit()).collect();
    let names: Vec<String> = (0..workers).map(|w| format!("w{w}")).collect();
    let label_names: Vec<String> = (0..labels).map(|l| l.to_string()).collect();
    let tasks = answers / 5;
    let task_names: Vec<String> = (0..tasks).map(|t| format!("t{t}")).collect();
    let mut rows = Vec::with_capacity(tasks * 5);
    for task in &task_names {
        let truth = rng.below(labels);
        let mut seen = [usize::MAX; 5];
        for slot in 0..5 {
            let mut w = rng.below(workers);
            while seen.contains(&w) {
                w = rng.below(workers);
            }
            seen[slot] = w;
            let l = if rng.unit() < accuracy[w] {
                truth
            } else {
                (truth + 1 + rng.below(labels - 1)) % labels
            };
            rows.push((names[w].as_str(), task.as_str(), label_names[l].as_str()));
        }
    }
    let t0 = Instant::now();
    let data = CrowdData::from_answers(rows.iter().copied()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let build_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let fit = dawid_skene(&data, DsInit::MajorityVote, Stopping::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let fit_s = t1.elapsed().as_secs_f64();
    let report = json!({"scenario": "ds-fit", "answers": data.n_answers(), "tasks": data.n_tasks(), "workers": data.n_workers(),
        "labels": data.n_labels(), "rounds": fit.rounds, "fit_s": fit_s, "per_round_ms": fit_s * 1000.0 / fit.rounds.max(1) as f64,
        "build_index_s": build_s, "log_likelihood": fit.log_likelihood});
    if json {
        println!("{report}");
    } else {
        println!(
            "Dawid–Skene over {} answers, {} workers, {} labels: {} rounds in {:.3} s ({:.1} ms a round); indexing the answers took {:.3} s",
            data.n_answers(),
            data.n_workers(),
            data.n_labels(),
            fit.rounds,
            fit_s,
            fit_s * 1000.0 / fit.rounds.max(1) as f64,
            build_s
        );
    }
    Ok(())
}

/// Times the built-in model on one core: scoring (features from the JSON payload, then
/// the logistic regression) and learning (one AdaGrad step per labelled example).
pub(super) fn model(items: usize, json: bool) -> anyhow::Result<()> {
    use flywheel_core::learn::{Featurizer, OnlineModel};
    if items < 100 {
        bail!("model needs at least 100 items");
    }
    // Short texts like SMS: 5 to 30 words from a 5,000-word vocabulary, a tenth of them
    // "spam" with words of their own.
    let mut rng = Rng::new(11);
    let word = |rng: &mut Rng, spam: bool| {
        let w = rng.below(5000);
        if spam && rng.unit() < 0.3 {
            format!("offer{}", w % 200)
        } else {
            format!("w{w}")
        }
    };
    let texts: Vec<(serde_json::Value, usize)> = (0..items)
        .map(|_| {
            let spam = rng.unit() < 0.1;
            let n = 5 + rng.below(26);
            let text: Vec<String> = (0..n).map(|_| word(&mut rng, spam)).collect();
            (json!({"text": text.join(" ")}), usize::from(spam))
        })
        .collect();
    let attributes = json!({});
    let featurizer = Featurizer::new(18);
    let mut m = OnlineModel::new(vec!["ham".into(), "spam".into()], 18);
    for (payload, y) in texts.iter().take(items / 10) {
        m.update(&featurizer.features(payload, &attributes), *y);
    }
    let t0 = Instant::now();
    let mut spam = 0usize;
    for (payload, _) in &texts {
        let p = m.predict(&featurizer.features(payload, &attributes));
        spam += usize::from(p[1] > p[0]);
    }
    let score_s = t0.elapsed().as_secs_f64();
    let features: Vec<Vec<(u32, f32)>> = texts.iter().map(|(p, _)| featurizer.features(p, &attributes)).collect();
    let t1 = Instant::now();
    for (f, (_, y)) in features.iter().zip(&texts) {
        m.update(f, *y);
    }
    let update_s = t1.elapsed().as_secs_f64();
    let mean_features = features.iter().map(Vec::len).sum::<usize>() as f64 / items as f64;
    let report = json!({"scenario": "model", "texts": items, "mean_features": mean_features,
        "score_per_s": items as f64 / score_s, "score_us": score_s * 1e6 / items as f64,
        "update_us": update_s * 1e6 / items as f64, "predicted_spam": spam});
    if json {
        println!("{report}");
    } else {
        println!(
            "built-in model, one core: {:.0} texts/s scored ({:.2} µs each, features from JSON included; {:.0} features a text), an update {:.2} µs",
            items as f64 / score_s,
            score_s * 1e6 / items as f64,
            mean_features,
            update_s * 1e6 / items as f64
        );
    }
    Ok(())
}
