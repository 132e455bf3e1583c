//! `flywheel demo moderation` on a small synthetic set of tweets: two runs of one seed give
//! the same summary, with every field the issue fixes.

use super::*;

/// Tweets in the moderation data's format (`{id, text, label, votes}` per line): three
/// classes with vocabularies that overlap, three to five votes each that do not always
/// agree, and one tweet in fifteen from a family of words (`fagin…`, the demo's held-out
/// prefix) the stream keeps for its second half.
fn synthetic_tweets(path: &std::path::Path, n: usize) {
    let vocab: [&[&str]; 3] = [
        &[
            "vermin",
            "subhuman",
            "filth",
            "go",
            "back",
            "invaders",
            "disgusting",
            "people",
        ],
        &["damn", "idiot", "stupid", "crap", "shut", "up", "loser", "ugly"],
        &[
            "game", "coffee", "weekend", "music", "tonight", "friends", "great", "team",
        ],
    ];
    let labels = ["hate", "offensive", "neither"];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |k: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % k as u64) as usize
    };
    let mut lines = String::new();
    for i in 0..n {
        let class = match next(10) {
            0 => 0,
            1..=6 => 1,
            _ => 2,
        };
        let family = next(15) == 0;
        let mut words: Vec<String> = (0..4 + next(6))
            .map(|_| {
                let from = if next(6) == 0 { next(3) } else { class };
                vocab[from][next(vocab[from].len())].to_string()
            })
            .collect();
        if family {
            words.insert(next(words.len()), format!("fagin{}", ["", "s", "ish"][next(3)]));
        }
        let raters = 3 + next(3);
        let mut votes = [0u32; 3];
        for _ in 0..raters {
            // Most raters see the class; hate and offensive are confused more than either is with neither.
            let v = match (class, next(10)) {
                (_, 0..=6) => class,
                (0, _) => 1,
                (1, 7 | 8) => 0,
                (_, _) => next(3),
            };
            votes[v] += 1;
        }
        // The label is the votes' majority (the class on a tie), as in the real data.
        let top = *votes.iter().max().unwrap();
        let label = if votes[class] == top {
            class
        } else {
            votes.iter().position(|v| *v == top).unwrap()
        };
        let record = serde_json::json!({
            "id": format!("syn-{i:05}"),
            "text": words.join(" "),
            "label": labels[label],
            "votes": {"hate": votes[0], "offensive": votes[1], "neither": votes[2]},
        });
        lines.push_str(&format!("{record}\n"));
    }
    std::fs::write(path, lines).unwrap();
}

fn run(data: &std::path::Path, args: &[&str]) -> (serde_json::Value, String) {
    let out = tempfile::tempdir().unwrap();
    let run = flywheel()
        .args(["demo", "moderation"])
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary = serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    (
        summary,
        std::fs::read_to_string(out.path().join("report.html")).unwrap(),
    )
}

#[test]
fn seeded_moderation_runs_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tweets.jsonl");
    synthetic_tweets(&data, 900);
    let (first, report) = run(&data, &["--seed", "1"]);
    let (second, _) = run(&data, &["--seed", "1"]);
    assert_eq!(first, second, "the same seed, the same figures");
    for key in [
        "items",
        "automation_rate",
        "automation_rate_last_5000",
        "auto_precision_true",
        "clear_violations_auto_caught",
        "l2_time_share_by_category",
        "l2_load_change",
        "alpha_by_label",
        "novel_items_to_experts",
        "reviewers_held",
        "human_answers",
    ] {
        assert!(first.get(key).is_some(), "summary.json lacks {key}: {first}");
    }
    assert_eq!(first["items"], 900);
    for l in ["hate", "offensive", "neither", "overall"] {
        assert!(first["auto_precision_true"].get(l).is_some(), "{first}");
    }
    for when in ["before", "after"] {
        let shares = first["l2_time_share_by_category"][when].as_object().unwrap();
        let total: f64 = shares.values().filter_map(|v| v.as_f64()).sum();
        assert!(
            (total - 1.0).abs() < 1e-9,
            "L2 adjudicated {when} the clarification: {first}"
        );
    }
    assert!(
        first["human_answers"].as_u64().unwrap() >= 900,
        "cold start: the first tweets each had two answers"
    );
    let family = first["term_family"]["tweets"].as_u64().unwrap();
    assert!(family > 30, "{first}");
    let series = first["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "a point every 500 tweets and one at the end");
    // The family is kept out of the first half (450 tweets), then one in three.
    let (early, late) = (
        series[0]["family_tweets"].as_u64().unwrap(),
        series[1]["family_tweets"].as_u64().unwrap(),
    );
    assert_eq!(early + late, family);
    assert!(early <= 50 / 3 + 1 && late > early, "{first}");
    for chart in [
        "Automation",
        "Agreement per label",
        "L2 time share by category",
        "Novelty",
    ] {
        assert!(report.contains(chart), "the report lacks {chart}");
    }
    let bad = flywheel()
        .args(["demo", "moderation", "--novelty-threshold", "2"])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
