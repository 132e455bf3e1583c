//! `flywheel agreement` and `flywheel aggregate`: the offline quality statistics on crowd
//! answer files (`worker<TAB>task<TAB>label`, see `flywheel_core::crowd`; with
//! `agreement --sets` the label is a `|`-separated set, see `flywheel_core::multi_agreement`). This module reads
//! the files, calls the pure core and prints one JSON document on stdout; bad input is a
//! message on stderr and a non-zero exit (from `main`).
//!
//! Labels and ids are printed as the strings they are in the files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use flywheel_core::aggregate::{self, DsInit, Stopping, Vote};
use flywheel_core::agreement;
use flywheel_core::crowd::{self, CrowdData, Gold};
use flywheel_core::multi_agreement::{self, SetDistance};
use flywheel_core::quality::{self, Interval};
use serde_json::{Map, Value, json};

#[derive(clap::Args, Debug)]
pub struct AgreementArgs {
    /// Crowd answers: a TSV file with the header `worker<TAB>task<TAB>label`.
    file: PathBuf,
    /// How many worker pairs (those sharing the most tasks) get a pairwise Cohen's κ.
    #[arg(long, default_value_t = 10, conflicts_with = "sets")]
    pairs: usize,
    /// Multi-label answers: the label column holds a `|`-separated set of labels (empty
    /// for none of these). Prints each label's κ and α on its yes/no and α over the sets.
    #[arg(long)]
    sets: bool,
    /// With `--sets`: the set distance of the overall α.
    #[arg(long, value_enum, default_value_t = Distance::Masi, requires = "sets")]
    distance: Distance,
}

/// `--distance`: how far apart two label sets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distance {
    /// MASI (Passonneau 2006): Jaccard weighted down unless one set contains the other.
    Masi,
    /// 1 − |A∩B| / |A∪B|.
    Jaccard,
}

impl From<Distance> for SetDistance {
    fn from(d: Distance) -> Self {
        match d {
            Distance::Masi => SetDistance::Masi,
            Distance::Jaccard => SetDistance::Jaccard,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// The label with the most answers (a tie goes to the smallest label).
    Majority,
    /// Votes weighted per worker: by gold accuracy with `--gold`, else by agreement with
    /// the majority (Wawa).
    Weighted,
    /// Dawid–Skene EM with a confusion matrix per worker (as crowd-kit's `DawidSkene`).
    #[value(name = "dawid_skene", alias = "dawid-skene")]
    DawidSkene,
}

#[derive(clap::Args, Debug)]
pub struct AggregateArgs {
    /// Crowd answers: a TSV file with the header `worker<TAB>task<TAB>label`.
    file: PathBuf,
    /// How to aggregate.
    #[arg(long, value_enum)]
    method: Method,
    /// Gold labels: a TSV file with the header `task<TAB>label`. Adds accuracy against it
    /// and each worker's gold accuracy; `weighted` then weights workers by it.
    #[arg(long, value_name = "GOLD")]
    gold: Option<PathBuf>,
    /// Dawid–Skene: run exactly N EM rounds. Without it, crowd-kit's rule: stop when the
    /// loss rises by less than 1e-5, after at most 100 rounds.
    #[arg(long, value_name = "N")]
    iterations: Option<usize>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_answers(path: &Path) -> anyhow::Result<CrowdData> {
    let text = read(path)?;
    crowd::parse_answers(&text).with_context(|| path.display().to_string())
}

fn load_gold(path: &Path, data: &CrowdData) -> anyhow::Result<Gold> {
    let text = read(path)?;
    let rows = crowd::parse_gold(&text).with_context(|| path.display().to_string())?;
    let gold = data.gold(rows);
    if gold.n_known() == 0 {
        bail!("{}: no gold task is among the answered tasks", path.display());
    }
    Ok(gold)
}

/// Prints `value` as pretty JSON; a closed pipe (`| head`) is not an error.
fn print(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn sizes(data: &CrowdData) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("answers".into(), json!(data.n_answers()));
    out.insert("tasks".into(), json!(data.n_tasks()));
    out.insert("workers".into(), json!(data.n_workers()));
    out
}

fn interval(i: Option<Interval>) -> Value {
    i.map_or(Value::Null, |i| json!([i.lower, i.upper]))
}

/// `flywheel agreement FILE` (`--sets`: multi-label answers).
pub fn agreement(args: AgreementArgs) -> anyhow::Result<()> {
    if args.sets {
        let text = read(&args.file)?;
        let rows = crowd::parse_set_answers(&text).with_context(|| args.file.display().to_string())?;
        // No label list: the labels are reported in string order.
        let report = multi_agreement::report(
            &[],
            rows.iter().map(|r| (r.worker, r.task, r.labels.as_slice())),
            args.distance.into(),
        )
        .with_context(|| args.file.display().to_string())?;
        return print(&serde_json::to_value(report)?);
    }
    let data = load_answers(&args.file)?;
    print(&serde_json::to_value(agreement::report(&data, args.pairs))?)
}

fn task_labels(data: &CrowdData, labels: &[u32]) -> Value {
    let map: Map<String, Value> = data
        .tasks()
        .iter()
        .zip(labels)
        .map(|(t, &l)| (t.clone(), json!(data.labels()[l as usize])))
        .collect();
    Value::Object(map)
}

fn per_worker(data: &CrowdData, value: impl Fn(usize) -> Value) -> Value {
    Value::Object(
        data.workers()
            .iter()
            .enumerate()
            .map(|(w, name)| (name.clone(), value(w)))
            .collect(),
    )
}

fn ties(data: &CrowdData, vote: &Vote) -> Value {
    vote.ties
        .iter()
        .map(|t| {
            json!({
                "task": data.tasks()[t.task as usize],
                "labels": t.labels.iter().map(|&l| &data.labels()[l as usize]).collect::<Vec<_>>(),
                "score": t.score,
            })
        })
        .collect()
}

/// `flywheel aggregate FILE --method …`.
pub fn aggregate(args: AggregateArgs) -> anyhow::Result<()> {
    if args.iterations.is_some() && args.method != Method::DawidSkene {
        bail!("--iterations applies to --method dawid_skene only");
    }
    let data = load_answers(&args.file)?;
    let gold = args.gold.as_deref().map(|g| load_gold(g, &data)).transpose()?;
    let mut out = sizes(&data);
    // "labels" is the answer: one label per task.
    out.insert("label_values".into(), json!(data.labels()));
    let labels = match args.method {
        Method::Majority => {
            out.insert("method".into(), json!("majority"));
            let vote = aggregate::majority_vote(&data);
            out.insert("ties".into(), ties(&data, &vote));
            vote.labels
        }
        Method::Weighted => {
            out.insert("method".into(), json!("weighted"));
            // Wawa's weights (agreement with the majority vote); with gold, a worker's
            // gold accuracy replaces them wherever the worker answered a gold task.
            let wawa = aggregate::wawa(&data);
            let on_gold = gold.as_ref().map(|g| quality::score_workers(&data, g));
            let weights: Vec<f64> = match &on_gold {
                Some(scores) => scores
                    .iter()
                    .zip(&wawa.weights)
                    .map(|(s, &w)| s.accuracy().unwrap_or(w))
                    .collect(),
                None => wawa.weights.clone(),
            };
            let source = |w: usize| match &on_gold {
                Some(s) if s[w].n > 0 => "gold_accuracy",
                _ => "agreement_with_majority",
            };
            out.insert("worker_weight".into(), per_worker(&data, |w| json!(weights[w])));
            out.insert("worker_weight_source".into(), per_worker(&data, |w| json!(source(w))));
            let vote = aggregate::weighted_vote(&data, &weights)?;
            out.insert("ties".into(), ties(&data, &vote));
            vote.labels
        }
        Method::DawidSkene => {
            out.insert("method".into(), json!("dawid_skene"));
            let stopping = args.iterations.map_or_else(Stopping::default, Stopping::Rounds);
            let fit = aggregate::dawid_skene(&data, DsInit::MajorityVote, stopping)?;
            let posteriors: Map<String, Value> = data
                .tasks()
                .iter()
                .enumerate()
                .map(|(t, name)| {
                    let row: Map<String, Value> = data
                        .labels()
                        .iter()
                        .zip(fit.posterior(t))
                        .map(|(l, p)| (l.clone(), json!(p)))
                        .collect();
                    (name.clone(), Value::Object(row))
                })
                .collect();
            out.insert("posteriors".into(), Value::Object(posteriors));
            let priors: Map<String, Value> = data
                .labels()
                .iter()
                .zip(&fit.params.priors)
                .map(|(l, p)| (l.clone(), json!(p)))
                .collect();
            out.insert("priors".into(), Value::Object(priors));
            out.insert(
                "worker_accuracy".into(),
                per_worker(&data, |w| json!(fit.params.accuracy_prior_weighted(w))),
            );
            out.insert(
                "worker_accuracy_balanced".into(),
                per_worker(&data, |w| json!(fit.params.accuracy_balanced(w))),
            );
            out.insert("rounds".into(), json!(fit.rounds));
            out.insert("stopped_early".into(), json!(fit.stopped_early));
            out.insert("log_likelihood".into(), json!(fit.log_likelihood));
            fit.labels
        }
    };
    out.insert("labels".into(), task_labels(&data, &labels));
    if let Some(gold) = &gold {
        let (correct, n) = gold.hits(&labels);
        out.insert("accuracy_vs_gold".into(), json!(correct as f64 / n as f64));
        out.insert(
            "gold".into(),
            json!({
                "tasks": n,
                "correct": correct,
                "wilson_95": interval(quality::wilson95(correct as u64, n as u64)),
                "unmatched_tasks": gold.unmatched_tasks,
            }),
        );
        let scores = quality::score_workers(&data, gold);
        out.insert(
            "worker_gold_accuracy".into(),
            per_worker(&data, |w| {
                let s = scores[w];
                json!({"n": s.n, "correct": s.correct, "accuracy": s.accuracy(), "wilson_95": interval(s.wilson95())})
            }),
        );
    }
    print(&Value::Object(out))
}
