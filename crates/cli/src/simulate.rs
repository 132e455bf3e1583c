//! `flywheel simulate`: the capacity planner.
//!
//! - `simulate erlang`: Erlang C staffing for one queue (`flywheel_sim::erlang`).
//! - `simulate policy`: a policy run on a score distribution by sim's discrete-event
//!   simulation (`flywheel_sim::capacity`). sim does not link core, so the policy is
//!   compiled and each distinct item of the distribution decided here, with core's
//!   `Policy::decide`, and sim gets the routes. The distribution is a file of predictions
//!   (`--scores`) or a project's items read through the export stream (`--project`,
//!   `--server`), which also gives each tier's measured time per answer and agreement with
//!   the final label (see `measured`).
//!
//! Flag mistakes (a bad number, a missing figure, a policy that does not compile) are
//! usage errors: a message and exit code 2. A server that cannot be reached is exit 1.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use flywheel_core::policy::PolicySpec;
use flywheel_core::prediction::RawPrediction;
use flywheel_core::{ItemView, LabelSet, Outcome, Policy, Prediction, Route};
use flywheel_sim::capacity::{self, Consensus, Decided, Plan, RouteSpec, TierStaff};
use flywheel_sim::erlang;
use serde_json::{Value, json};

mod measured;

#[derive(clap::Subcommand, Debug)]
pub enum SimulateCommand {
    /// Erlang C: the reviewers one queue needs to answer a share of its tasks in time.
    Erlang(ErlangArgs),
    /// A discrete-event simulation of a policy on a score distribution: automation,
    /// tasks per tier and queue, occupancy, backlog by hour, SLA breaches; with
    /// --target-sla the smallest staffing per tier that meets it.
    Policy(Box<PolicyArgs>),
}

#[derive(clap::Args, Debug)]
pub struct ErlangArgs {
    /// Tasks arriving per hour.
    #[arg(long)]
    arrivals_per_hour: f64,
    /// Mean handling time of a task, in seconds.
    #[arg(long)]
    handle_seconds: f64,
    /// The wait the service level counts within, in seconds.
    #[arg(long)]
    answer_within_seconds: f64,
    /// The share of tasks to take within that wait, in (0, 1).
    #[arg(long)]
    service_level: f64,
    /// The share of paid time not spent reviewing (breaks, meetings, absence), in [0, 1):
    /// adds scheduled_reviewers = ceil(reviewers / (1 − shrinkage)).
    #[arg(long)]
    shrinkage: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    /// The policy (JSON, as `PUT …/policy` takes it). With --project, default: the
    /// project's current policy.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Predictions to draw items from: JSON lines, each `{"scores": {label: p, …}}` or an
    /// item as the API takes it (`prediction`, `payload`, `attributes`).
    #[arg(long, conflicts_with = "project")]
    scores: Option<PathBuf>,
    /// Draw items from this project's items (its export), with --server and --key.
    #[arg(long, requires = "server")]
    project: Option<String>,
    /// The server's base URL, e.g. http://127.0.0.1:7700.
    #[arg(long, env = "FLYWHEEL_SERVER")]
    server: Option<String>,
    /// An API key granted the project (the admin key reads everything).
    #[arg(long, env = "FLYWHEEL_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// With --project: only items created at or after this time (RFC 3339 or epoch ms).
    #[arg(long, requires = "project")]
    since: Option<String>,
    /// Items arriving per hour (a Poisson stream).
    #[arg(long)]
    arrivals_per_hour: f64,
    /// Reviewers per tier, e.g. "1:12,2:3".
    #[arg(long)]
    reviewers: String,
    /// Mean seconds per answer (exponential), per tier ("1:30,2:90") or one for all
    /// ("30"). Default with --project: each tier's measured mean.
    #[arg(long)]
    handle_seconds: Option<String>,
    /// The chance an answer is right, per tier ("1:0.9,2:0.97") or one for all. Default:
    /// with --project each tier's measured agreement with the final label, else 0.9.
    #[arg(long)]
    accuracy: Option<String>,
    /// Simulated hours of arrivals.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Find the smallest staffing per tier at which every queue with an SLA answers this
    /// share of its tasks within it, e.g. 0.9.
    #[arg(long)]
    target_sla: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Why a command failed: the operator's input (exit 2) or something else (exit 1).
enum Failure {
    Usage(String),
    Other(anyhow::Error),
}

impl From<&str> for Failure {
    fn from(m: &str) -> Self {
        Failure::Usage(m.to_string())
    }
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Usage(m)
    }
}

pub fn run(cmd: SimulateCommand) -> ExitCode {
    let result = match cmd {
        SimulateCommand::Erlang(a) => erlang_cmd(&a),
        SimulateCommand::Policy(a) => policy_cmd(*a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("flywheel simulate: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("flywheel simulate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text`; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<(), Failure> {
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Other(e.into())),
        _ => Ok(()),
    }
}

fn pretty(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(v).map_err(|e| Failure::Other(e.into()))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn erlang_cmd(a: &ErlangArgs) -> Result<(), Failure> {
    let q = erlang::Queue {
        arrivals_per_hour: a.arrivals_per_hour,
        handle_seconds: a.handle_seconds,
        answer_within_seconds: a.answer_within_seconds,
        service_level: a.service_level,
    };
    let s = erlang::staff(&q, a.shrinkage)?;
    if a.json {
        return emit(&pretty(&s)?);
    }
    let mut out = vec![format!("reviewers            {}", s.reviewers)];
    if let (Some(n), Some(z)) = (s.scheduled_reviewers, a.shrinkage) {
        out.push(format!("scheduled reviewers  {n} (shrinkage {})", pct(z)));
    }
    out.push(format!("offered load         {:.3} erlangs", s.offered_load));
    out.push(format!(
        "service level        {} taken within {} s (target {})",
        pct(s.service_level),
        a.answer_within_seconds,
        pct(a.service_level)
    ));
    out.push(format!("waiting probability  {}", pct(s.waiting_probability)));
    out.push(format!("occupancy            {}", pct(s.occupancy)));
    out.push(format!("average wait         {:.1} s", s.average_wait_seconds));
    emit(&out.join("\n"))
}

/// `"1:12,2:3"` → {1: 12, 2: 3}; `"30"` → that value for every tier in `tiers`.
fn per_tier<T: std::str::FromStr + Copy>(flag: &str, text: &str, tiers: &[u8]) -> Result<BTreeMap<u8, T>, String> {
    let bad = || {
        format!(
            "{flag} is TIER:VALUE,… (e.g. \"1:30,2:90\"){}, got '{text}'",
            if tiers.is_empty() {
                ""
            } else {
                " or one value for every tier"
            }
        )
    };
    if !text.contains(':') && !tiers.is_empty() {
        let v: T = text.trim().parse().map_err(|_| bad())?;
        return Ok(tiers.iter().map(|t| (*t, v)).collect());
    }
    let mut out = BTreeMap::new();
    for part in text.split(',') {
        let (t, v) = part.split_once(':').ok_or_else(bad)?;
        let t: u8 = t.trim().parse().map_err(|_| bad())?;
        if !(1..=capacity::MAX_TIER).contains(&t) {
            return Err(format!("{flag}: a tier is 1 to {}, got {t}", capacity::MAX_TIER));
        }
        let v: T = v.trim().parse().map_err(|_| bad())?;
        if out.insert(t, v).is_some() {
            return Err(format!("{flag}: tier {t} is given twice"));
        }
    }
    Ok(out)
}

/// One item of the distribution, as the rules see it.
struct Row {
    payload: Value,
    attributes: Value,
    scores: Option<BTreeMap<String, f64>>,
    model: String,
}

/// An item line: `{"scores": …}` or `{"prediction": {"scores": …}, "payload", "attributes"}`
/// (other fields, such as an export row's, are ignored).
fn row(v: &Value) -> Result<Row, String> {
    let obj = v.as_object().ok_or("a line is a JSON object")?;
    if !obj.contains_key("scores") && !obj.contains_key("prediction") {
        return Err(
            "no scores: a line is {\"scores\": {label: p, …}} or an item with \"prediction\" (null for none)".into(),
        );
    }
    let pred = obj.get("prediction").filter(|p| !p.is_null());
    let scores = match (obj.get("scores"), pred.and_then(|p| p.get("scores"))) {
        (Some(s), _) | (None, Some(s)) => Some(
            serde_json::from_value::<BTreeMap<String, f64>>(s.clone())
                .map_err(|e| format!("scores: an object of label → probability: {e}"))?,
        ),
        (None, None) => None,
    };
    let model = pred
        .and_then(|p| p.get("model"))
        .and_then(Value::as_str)
        .unwrap_or("simulated")
        .to_string();
    let object = |name: &str| match obj.get(name) {
        None | Some(Value::Null) => Ok(json!({})),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(format!("{name} is a JSON object")),
    };
    Ok(Row {
        payload: object("payload")?,
        attributes: object("attributes")?,
        scores,
        model,
    })
}

fn read_rows(path: &std::path::Path) -> Result<Vec<Row>, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--scores {name}: cannot read: {e}"))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("--scores {name} line {}: {e}", i + 1))?;
        rows.push(row(&v).map_err(|e| format!("--scores {name} line {}: {e}", i + 1))?);
    }
    if rows.is_empty() {
        return Err(format!("--scores {name}: no items"));
    }
    Ok(rows)
}

/// The labels a scores file implies: every label any line scores, in name order.
fn labels_of(rows: &[Row]) -> Result<LabelSet, String> {
    let mut names: Vec<String> = rows
        .iter()
        .flat_map(|r| r.scores.iter().flat_map(|s| s.keys().cloned()))
        .collect();
    names.sort();
    names.dedup();
    LabelSet::parse(&names).map_err(|e| format!("--scores: the labels scored: {}: {}", e.field, e.message))
}

fn read_policy(path: &std::path::Path) -> Result<Value, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--policy {name}: cannot read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("--policy {name}: not JSON: {e}"))
}

/// The policy's decision for every row, as routes sim can run.
fn decide(policy: &Policy, labels: &LabelSet, rows: &[Row]) -> Result<(Vec<RouteSpec>, Vec<Decided>), String> {
    let mut routes: Vec<RouteSpec> = Vec::new();
    let mut index: HashMap<(String, u8, i32, u8), usize> = HashMap::new();
    let mut route_of = |r: Route| {
        *index
            .entry((r.queue.clone(), r.tier, r.priority, r.overlap))
            .or_insert_with(|| {
                routes.push(RouteSpec {
                    queue: r.queue,
                    tier: r.tier,
                    priority: r.priority,
                    overlap: r.overlap,
                });
                routes.len() - 1
            })
    };
    let mut decided = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let prediction = match &r.scores {
            Some(s) => Some(
                Prediction::parse(
                    RawPrediction {
                        model: r.model.clone(),
                        version: None,
                        scores: s.clone(),
                        novelty: None,
                    },
                    labels,
                )
                .map_err(|e| format!("item {}: {}: {}", i + 1, e.field, e.message))?,
            ),
            None => None,
        };
        let view = ItemView {
            payload: &r.payload,
            attributes: &r.attributes,
            prediction: prediction.as_ref(),
            thresholds: None,
        };
        // A draw of 0 samples every auto decision for audit when the rate is positive;
        // sim draws whether it is at the policy's rate.
        let d = policy.decide(&view, 1, 0.0);
        decided.push(match d.outcome {
            Outcome::Auto { .. } => Decided::Auto {
                audit: d.audit.map(&mut route_of),
            },
            Outcome::Review { route } => Decided::Review { route: route_of(route) },
        });
    }
    Ok((routes, decided))
}

fn policy_cmd(a: PolicyArgs) -> Result<(), Failure> {
    let (rows, labels, policy_json, measured) = match (&a.scores, &a.project) {
        (Some(path), None) => {
            let rows = read_rows(path)?;
            let labels = labels_of(&rows)?;
            let policy = read_policy(a.policy.as_ref().ok_or("--policy FILE is needed with --scores")?)?;
            (rows, labels, policy, None)
        }
        (None, Some(project)) => {
            let server = a.server.as_deref().ok_or("--server URL is needed with --project")?;
            let key = a
                .key
                .as_deref()
                .ok_or("--key (or FLYWHEEL_API_KEY) is needed with --project")?;
            let fetched = measured::fetch(server, key, project, a.since.as_deref()).map_err(Failure::Other)?;
            let policy = match &a.policy {
                Some(p) => read_policy(p)?,
                None => fetched.policy.clone(),
            };
            let rows = fetched
                .rows
                .iter()
                .map(row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::Other(anyhow::anyhow!("the export: {e}")))?;
            if rows.is_empty() {
                return Err(format!("project {project} has no items to draw from").into());
            }
            let labels = LabelSet::parse(&fetched.labels)
                .map_err(|e| Failure::Other(anyhow::anyhow!("the project's labels: {}", e.message)))?;
            let m = measured::per_tier(&fetched);
            (rows, labels, policy, Some(m))
        }
        _ => {
            return Err("give --scores FILE, or --project P with --server URL"
                .to_string()
                .into());
        }
    };
    let policy = Policy::from_json(&policy_json, &labels).map_err(|e| {
        let at = if e.field.is_empty() {
            String::new()
        } else {
            format!("{}: ", e.field)
        };
        format!("--policy: {at}{}", e.message)
    })?;
    let (routes, items) = decide(&policy, &labels, &rows)?;
    let staffing: BTreeMap<u8, u32> = per_tier("--reviewers", &a.reviewers, &[])?;
    let tiers: Vec<u8> = staffing.keys().copied().collect();
    let handle: BTreeMap<u8, f64> = match &a.handle_seconds {
        Some(t) => per_tier("--handle-seconds", t, &tiers)?,
        None => BTreeMap::new(),
    };
    let accuracy: BTreeMap<u8, f64> = match &a.accuracy {
        Some(t) => per_tier("--accuracy", t, &tiers)?,
        None => BTreeMap::new(),
    };
    let mut staff = BTreeMap::new();
    for (&t, &n) in &staffing {
        let m = measured.as_ref().and_then(|m| m.get(&t));
        let handle_seconds = handle
            .get(&t)
            .copied()
            .or(m.and_then(|m| m.handle_seconds))
            .ok_or_else(|| {
                format!(
                    "--handle-seconds: tier {t} has no mean time per answer{}",
                    if measured.is_some() {
                        " (the project has no answers at that tier)"
                    } else {
                        ""
                    }
                )
            })?;
        let accuracy = accuracy.get(&t).copied().or(m.and_then(|m| m.accuracy)).unwrap_or(0.9);
        staff.insert(
            t,
            TierStaff {
                reviewers: n,
                handle_seconds,
                accuracy,
            },
        );
    }
    let spec: &PolicySpec = policy.spec();
    let c = policy.consensus();
    let plan = Plan {
        routes,
        items,
        audit_rate: spec.audit_rate,
        consensus: Consensus {
            min_confidence: c.min_confidence,
            max_overlap: c.max_overlap,
        },
        sla_seconds: spec
            .sla_seconds
            .iter()
            .map(|(q, s)| (q.clone(), f64::from(*s)))
            .collect(),
        labels: labels.len(),
        arrivals_per_hour: a.arrivals_per_hour,
        hours: a.hours,
        tiers: staff,
        seed: a.seed,
    };
    let report = capacity::run(&plan)?;
    let search = a.target_sla.map(|t| capacity::search(&plan, t)).transpose()?;
    if a.json {
        let mut out = serde_json::Map::new();
        out.insert("distinct_items".into(), json!(rows.len()));
        if let Some(m) = &measured {
            out.insert(
                "measured".into(),
                json!(m.iter().map(|(t, m)| (t.to_string(), m)).collect::<BTreeMap<_, _>>()),
            );
        }
        out.insert(
            "simulation".into(),
            serde_json::to_value(&report).map_err(|e| Failure::Other(e.into()))?,
        );
        if let Some(s) = &search {
            out.insert(
                "search".into(),
                serde_json::to_value(s).map_err(|e| Failure::Other(e.into()))?,
            );
        }
        return emit(&pretty(&Value::Object(out))?);
    }
    let mut text = summary(&report);
    if let Some(s) = &search {
        text.push_str(&format!(
            "\ntarget {} within SLA: {} ({} reviewers, {} runs)\n",
            pct(s.target_sla),
            staffing_text(&s.staffing),
            s.total_reviewers,
            s.steps.len()
        ));
        text.push_str(&format!("search: {}\nat that staffing:\n", s.method));
        text.push_str(&summary(&s.report));
    }
    emit(text.trim_end())
}

fn staffing_text(s: &BTreeMap<String, u32>) -> String {
    s.iter()
        .map(|(t, n)| format!("tier {t}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report as lines a person reads.
fn summary(r: &capacity::Report) -> String {
    let mut out = format!(
        "{} h at {} items/h, seed {}: {} items, {} auto, {} audits\n",
        r.hours,
        r.arrivals_per_hour,
        r.seed,
        r.items,
        pct(r.automation_rate),
        r.audits
    );
    for (t, s) in &r.tiers {
        out.push_str(&format!(
            "tier {t}: {} reviewers ({} s, accuracy {}): {} answers, occupancy {}, waited {}, average wait {:.1} s\n",
            s.reviewers,
            s.handle_seconds,
            s.accuracy,
            s.answers,
            pct(s.occupancy),
            pct(s.waiting_probability),
            s.average_wait_seconds
        ));
    }
    for t in &r.tasks {
        out.push_str(&format!(
            "tasks {} tier {} {}: {} ({} answers)\n",
            t.queue, t.tier, t.stage, t.tasks, t.answers
        ));
    }
    for (q, s) in &r.queues {
        let sla = match (s.sla_seconds, s.sla_breach_share) {
            (Some(secs), Some(share)) => format!(", SLA {secs} s: {} breached ({})", s.sla_breaches, pct(share)),
            (Some(secs), None) => format!(", SLA {secs} s"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "queue {q}: {} tasks, average answer {:.1} s{sla}\n",
            s.tasks, s.average_answer_seconds
        ));
    }
    out.push_str(&format!(
        "overlap answers {}, extra reviewers {}, adjudications {}, human accuracy {}\n",
        r.overlap_answers,
        r.extra_reviewers,
        r.adjudications,
        r.human_accuracy.map_or("-".into(), pct)
    ));
    let backlog: Vec<String> = r.backlog.iter().map(|b| format!("{}h:{}", b.hour, b.open)).collect();
    out.push_str(&format!(
        "backlog by hour: {}\nlast answer at {:.2} h\n",
        backlog.join(" "),
        r.drained_at_hours
    ));
    out
}
