//! Exports: a project's items, one row per item with its prediction, decision, resolution
//! and answers, as JSON lines, CSV or Label Studio's JSON tasks. The store yields pages by
//! a keyset cursor (the item id); [`stream`] turns each page into one chunk of bytes, so a
//! project of any size is written with one page in memory.
//!
//! The formats, column by column, are in the README ("Exports and imports"). In a
//! multi-label project ([`Shape::Multi`]) every answer is written as the set it stores
//! (see `flywheel_core::label`): `labels: [..]` in place of `label` in JSON lines, all the
//! set's choices in a Label Studio result, the canonical JSON array in CSV's label cells.

use std::collections::HashMap;
use std::sync::Arc;

use flywheel_core::task::Source;
use flywheel_core::{Prediction, ValidationError};
use flywheel_store::{ExportFilter, ExportReview, ExportRow, Resolution, SourceFilter, Store};
use futures_util::Stream;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::AppError;

/// Items per page read from the store (and per chunk written).
pub const PAGE: usize = 1000;

/// Label Studio's names for the control (`<Choices name="label">`) and the object it
/// labels (`<Text name="text" value="$text">`) in the result of every annotation and
/// prediction.
pub const LS_FROM_NAME: &str = "label";
pub const LS_TO_NAME: &str = "text";

/// How a project's answers are written.
#[derive(Debug, Clone)]
pub enum Shape {
    /// One label per answer.
    Single,
    /// A set of labels per answer; a prediction's set (Label Studio's `predictions[0]`) is
    /// the labels at or above these thresholds (each label's calibrated one, else 0.5), as
    /// the project's auto decision takes it now.
    Multi(Arc<HashMap<String, f64>>),
}

impl Shape {
    /// Project `p`'s shape, with its calibrated thresholds as they are now.
    pub fn of(s: &super::AppState, p: &super::ProjectRuntime) -> Self {
        if p.labels.is_multi() {
            Shape::Multi(s.learning.thresholds(p.id))
        } else {
            Shape::Single
        }
    }

    fn is_multi(&self) -> bool {
        matches!(self, Shape::Multi(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    LabelStudio,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "label-studio" => Ok(Format::LabelStudio),
            _ => Err(ValidationError::new("format", "format is jsonl, csv or label-studio")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::LabelStudio => "application/json",
        }
    }
}

/// A time parameter: RFC 3339 (`2026-01-31T00:00:00Z`) or epoch milliseconds.
pub fn parse_time(field: &str, s: &str) -> Result<i64, ValidationError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ValidationError::new(
                field,
                format!("{field} is an RFC 3339 time (2026-01-31T00:00:00Z) or epoch milliseconds"),
            )
        })
}

/// `source`: a resolution's source, or `none` for items not resolved yet.
pub fn parse_source(s: &str) -> Result<SourceFilter, ValidationError> {
    if s == "none" {
        return Ok(SourceFilter::Unresolved);
    }
    Source::parse(s)
        .map(SourceFilter::Resolved)
        .ok_or_else(|| ValidationError::new("source", "source is auto, human, adjudicated or none"))
}

/// RFC 3339 for epoch milliseconds.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The project's items that pass `filter`, written in `format` one page per chunk.
/// A failure after the first chunk ends the body early (the status line is gone by then).
///
/// The next page is read while this one is written: the store's read (a blocking thread
/// on SQLite) and the writing (this task) run side by side, with at most two pages held.
pub fn stream(
    store: Arc<dyn Store>,
    project_id: i64,
    format: Format,
    shape: Shape,
    filter: ExportFilter,
) -> impl Stream<Item = Result<Vec<u8>, AppError>> + Send + 'static {
    struct State {
        store: Arc<dyn Store>,
        filter: ExportFilter,
        /// The page being read, after the item id it starts from.
        next: Option<(i64, Prefetch)>,
        /// The size of the last chunk, so the next one is allocated once.
        last_len: usize,
    }
    let fetch = move |st: &State, after: i64| {
        let (store, filter) = (st.store.clone(), st.filter.clone());
        Prefetch(tokio::spawn(async move {
            store.export_items(project_id, filter, after, PAGE).await
        }))
    };
    let mut state = State {
        store,
        filter,
        next: None,
        last_len: 0,
    };
    state.next = Some((0, fetch(&state, 0)));
    futures_util::stream::unfold(state, move |mut st| {
        let shape = shape.clone();
        async move {
            let (after, mut page) = st.next.take()?;
            let rows = match (&mut page.0).await {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => return Some((Err(AppError::from(e)), st)),
                Err(e) => return Some((Err(AppError::Internal(format!("an export page read failed: {e}"))), st)),
            };
            let full = rows.len() == PAGE;
            if let Some(last) = rows.last().filter(|_| full) {
                st.next = Some((last.item_id, fetch(&st, last.item_id)));
            }
            let mut out = Vec::with_capacity(st.last_len + st.last_len / 8);
            if after == 0 {
                head(format, &mut out);
            }
            if let Err(e) = write_page(format, &shape, &rows, after == 0, &mut out) {
                st.next = None;
                return Some((Err(e), st));
            }
            if !full {
                tail(format, &mut out);
            }
            st.last_len = out.len();
            Some((Ok(out), st))
        }
    })
}

/// A page being read; dropping it (the client went away) stops the read where it can.
struct Prefetch(tokio::task::JoinHandle<flywheel_store::Result<Vec<ExportRow>>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 19] = [
    "external_id",
    "created_at",
    "payload",
    "attributes",
    "model",
    "model_version",
    "scores",
    "decision",
    "rule",
    "decision_label",
    "queue",
    "policy_version",
    "label",
    "source",
    "method",
    "confidence",
    "resolved_at",
    "resolution_reviewers",
    "reviews",
];

fn head(format: Format, out: &mut Vec<u8>) {
    match format {
        Format::Jsonl => {}
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_COLUMNS).expect("writing to memory");
            w.flush().expect("writing to memory");
        }
        Format::LabelStudio => out.extend_from_slice(b"["),
    }
}

fn tail(format: Format, out: &mut Vec<u8>) {
    if format == Format::LabelStudio {
        out.extend_from_slice(b"\n]\n");
    }
}

/// Writes one page of rows (`first_page`: the export's first, whose first Label Studio
/// task takes no comma).
fn write_page(
    format: Format,
    shape: &Shape,
    rows: &[ExportRow],
    first_page: bool,
    out: &mut Vec<u8>,
) -> Result<(), AppError> {
    let failed = |e: &dyn std::fmt::Display| AppError::Internal(format!("an export row did not serialise: {e}"));
    fn typed(r: &ExportRow) -> Result<Typed<'_>, AppError> {
        Typed::of(r).map_err(|e| AppError::Internal(format!("an export row did not serialise: {e}")))
    }
    let multi = shape.is_multi();
    match format {
        Format::Jsonl => {
            for r in rows {
                let t = typed(r)?;
                spliced(
                    out,
                    &r.external_id,
                    "payload",
                    &r.payload,
                    "attributes",
                    &r.attributes,
                    &JsonlRest::of(r, &t, multi),
                )
                .map_err(|e| failed(&e))?;
                out.push(b'\n');
            }
        }
        Format::Csv => {
            // One writer (and its buffer) per page, not per row.
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut *out);
            for r in rows {
                csv_row(r, &typed(r)?, multi, &mut w).map_err(|e| failed(&e))?;
            }
            w.flush().map_err(|e| failed(&e))?;
        }
        Format::LabelStudio => {
            for (i, r) in rows.iter().enumerate() {
                out.extend_from_slice(if first_page && i == 0 { b"\n" } else { b",\n" });
                out.extend_from_slice(b"{\"data\":");
                out.extend_from_slice(r.payload.as_bytes());
                out.push(b',');
                let t = typed(r)?;
                let at = out.len();
                serde_json::to_writer(&mut *out, &LsRest::of(r, &t, shape)).map_err(|e| failed(&e))?;
                out.remove(at); // the rest's own `{`
            }
        }
    }
    Ok(())
}

/// Writes `{"external_id": …, "<a>": <raw a>, "<b>": <raw b>, …rest}`: the stored JSON
/// text of payload and attributes is copied, not parsed and written again.
fn spliced(
    out: &mut Vec<u8>,
    external_id: &str,
    a: &str,
    raw_a: &str,
    b: &str,
    raw_b: &str,
    rest: &impl Serialize,
) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"external_id\":");
    serde_json::to_writer(&mut *out, external_id)?;
    for (name, raw) in [(a, raw_a), (b, raw_b)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(raw.as_bytes());
    }
    out.push(b',');
    let at = out.len();
    serde_json::to_writer(&mut *out, rest)?;
    out.remove(at);
    Ok(())
}

/// A row's prediction, decision and resolution, parsed from the stored JSON text here (on
/// the writer's side of the pipeline) rather than by the store.
struct Typed<'r> {
    prediction: Option<Prediction>,
    decision: DecisionView<'r>,
    resolution: Option<Resolution>,
}

impl<'r> Typed<'r> {
    fn of(r: &'r ExportRow) -> Result<Self, Box<dyn std::error::Error>> {
        let decision: DecisionView = serde_json::from_str(&r.decision_json)?;
        match (decision.outcome.as_ref(), &decision.label, &decision.route) {
            ("auto", Some(_), _) | ("review", _, Some(_)) => {}
            (outcome, ..) => {
                return Err(format!("a stored decision's outcome '{outcome}' lacks its label or route").into());
            }
        }
        Ok(Typed {
            prediction: r.prediction()?,
            decision,
            resolution: r.resolution()?,
        })
    }
}

/// What an export reads of a stored [`flywheel_core::Decision`] (the same JSON): its
/// reasons and route details are skipped, not built, and its strings borrowed where they
/// hold no escape. The decision is the costliest column to read in full.
#[derive(Deserialize)]
struct DecisionView<'a> {
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    label: Option<Cow<'a, str>>,
    #[serde(borrow)]
    route: Option<RouteView<'a>>,
    #[serde(borrow)]
    rule: Cow<'a, str>,
    policy_version: u32,
    audit: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RouteView<'a> {
    #[serde(borrow)]
    queue: Cow<'a, str>,
}

/// A prediction as exported (and imported): scores by label.
#[derive(Serialize)]
pub struct PredictionOut<'a> {
    pub model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    pub scores: Scores<'a>,
}

/// Scores as a JSON object by label, in the project's label order.
pub struct Scores<'a>(&'a [(String, f64)]);

impl Serialize for Scores<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(l, x)| (l, x)))
    }
}

impl<'a> PredictionOut<'a> {
    fn of(p: &'a Prediction) -> Self {
        PredictionOut {
            model: &p.model,
            version: p.version.as_deref(),
            scores: Scores(&p.scores),
        }
    }
}

/// A stored answer (`None`: no label) as JSON members: `label` (null when absent) in a
/// single-label project; in a multi-label one `labels`, the set it encodes (null when
/// absent). The member of the other mode is left out.
type AnswerMembers<'a> = (Option<Option<&'a str>>, Option<Option<Vec<String>>>);

fn answer_members(stored: Option<&str>, multi: bool) -> AnswerMembers<'_> {
    if multi {
        (None, Some(stored.map(|s| flywheel_core::label::named(s, true))))
    } else {
        (Some(stored), None)
    }
}

#[derive(Serialize)]
struct DecisionOut<'a> {
    /// `auto` or `review`.
    action: &'static str,
    rule: &'a str,
    /// The auto label.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<Option<&'a str>>,
    /// The auto set (a multi-label project).
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Option<Vec<String>>>,
    /// The review queue.
    queue: Option<&'a str>,
    policy_version: u32,
    /// An auto decision sampled for audit.
    audit: bool,
    /// The auto label as stored (CSV's `decision_label`).
    #[serde(skip)]
    stored: Option<&'a str>,
}

impl<'a> DecisionOut<'a> {
    fn of(d: &'a DecisionView, multi: bool) -> Self {
        let (action, stored, queue) = if d.outcome == "auto" {
            ("auto", d.label.as_deref(), None)
        } else {
            ("review", None, d.route.as_ref().map(|r| r.queue.as_ref()))
        };
        let (label, labels) = answer_members(stored, multi);
        DecisionOut {
            action,
            rule: &d.rule,
            label,
            labels,
            queue,
            policy_version: d.policy_version,
            audit: d.audit.is_some(),
            stored,
        }
    }
}

#[derive(Serialize)]
struct ResolutionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    /// A multi-label project's resolution: the set.
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<String>>,
    source: &'static str,
    method: &'a str,
    confidence: f64,
    reviewers: &'a [String],
    resolved_at: String,
}

impl<'a> ResolutionOut<'a> {
    fn of(r: &'a Resolution, multi: bool) -> Self {
        let (label, labels) = answer_members(Some(&r.label), multi);
        ResolutionOut {
            label: label.flatten(),
            labels: labels.flatten(),
            source: r.source.as_str(),
            method: &r.method,
            confidence: r.confidence,
            reviewers: &r.reviewers,
            resolved_at: rfc3339(r.resolved_at),
        }
    }
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    reviewer: &'a str,
    stage: &'static str,
    /// `label`, `escalate` or `skip`.
    answer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<Option<&'a str>>,
    /// A multi-label project's answer: the set.
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Option<Vec<String>>>,
    claimed_at: String,
    answered_at: String,
    /// Time from claim to answer.
    time_ms: i64,
}

impl<'a> ReviewOut<'a> {
    fn of(w: &'a ExportReview, multi: bool) -> Self {
        let (label, labels) = answer_members(w.label.as_deref(), multi);
        ReviewOut {
            reviewer: &w.reviewer,
            stage: w.stage.as_str(),
            answer: &w.answer,
            label,
            labels,
            claimed_at: rfc3339(w.claimed_at),
            answered_at: rfc3339(w.answered_at),
            time_ms: w.answered_at - w.claimed_at,
        }
    }
}

/// A JSON line after its external id, payload and attributes.
#[derive(Serialize)]
struct JsonlRest<'a> {
    created_at: String,
    prediction: Option<PredictionOut<'a>>,
    decision: DecisionOut<'a>,
    resolution: Option<ResolutionOut<'a>>,
    reviews: Vec<ReviewOut<'a>>,
}

impl<'a> JsonlRest<'a> {
    fn of(r: &'a ExportRow, t: &'a Typed<'a>, multi: bool) -> Self {
        JsonlRest {
            created_at: rfc3339(r.created_at),
            prediction: t.prediction.as_ref().map(PredictionOut::of),
            decision: DecisionOut::of(&t.decision, multi),
            resolution: t.resolution.as_ref().map(|x| ResolutionOut::of(x, multi)),
            reviews: r.reviews.iter().map(|w| ReviewOut::of(w, multi)).collect(),
        }
    }
}

/// A CSV row; in a multi-label project the label cells (`decision_label`, `label`) hold
/// the set as its canonical JSON array, and `reviews` their `labels`.
fn csv_row(
    r: &ExportRow,
    t: &Typed<'_>,
    multi: bool,
    w: &mut csv::Writer<&mut Vec<u8>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let d = DecisionOut::of(&t.decision, multi);
    let p = t.prediction.as_ref().map(PredictionOut::of);
    let res = t.resolution.as_ref();
    let reviews: Vec<ReviewOut> = r.reviews.iter().map(|x| ReviewOut::of(x, multi)).collect();
    let opt = |s: Option<&str>| Cow::Owned(s.unwrap_or("").to_string());
    let owned = Cow::<str>::Owned;
    let record: [Cow<str>; 19] = [
        Cow::Borrowed(&r.external_id),
        owned(rfc3339(r.created_at)),
        Cow::Borrowed(&r.payload),
        Cow::Borrowed(&r.attributes),
        opt(p.as_ref().map(|p| p.model)),
        opt(p.as_ref().and_then(|p| p.version)),
        owned(
            p.as_ref()
                .map(|p| serde_json::to_string(&p.scores))
                .transpose()?
                .unwrap_or_default(),
        ),
        Cow::Borrowed(d.action),
        Cow::Borrowed(d.rule),
        opt(d.stored),
        opt(d.queue),
        owned(d.policy_version.to_string()),
        opt(res.map(|r| r.label.as_str())),
        opt(res.map(|r| r.source.as_str())),
        opt(res.map(|r| r.method.as_str())),
        owned(res.map(|r| r.confidence.to_string()).unwrap_or_default()),
        owned(res.map(|r| rfc3339(r.resolved_at)).unwrap_or_default()),
        owned(
            res.map(|r| serde_json::to_string(&r.reviewers))
                .transpose()?
                .unwrap_or_default(),
        ),
        owned(serde_json::to_string(&reviews)?),
    ];
    w.write_record(record.iter().map(|c| c.as_bytes()))?;
    Ok(())
}

/// A Label Studio task after its `data` (the item's payload).
#[derive(Serialize)]
struct LsRest<'a> {
    annotations: Vec<LsAnnotation<'a>>,
    predictions: Vec<LsPrediction<'a>>,
    meta: LsMeta<'a>,
}

#[derive(Serialize)]
pub struct LsResult<'a> {
    pub id: String,
    pub from_name: &'static str,
    pub to_name: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: LsChoices<'a>,
}

/// The chosen labels: one in a single-label project, the set in a multi-label one
/// (Label Studio's `<Choices choice="multiple">`).
#[derive(Serialize)]
pub struct LsChoices<'a> {
    pub choices: Vec<Cow<'a, str>>,
}

impl<'a> LsResult<'a> {
    /// The result of an answer stored as `stored`: one choices result, or in a
    /// multi-label project one holding the set's labels — none for the empty set, as
    /// Label Studio writes an annotation with nothing ticked.
    fn answer(id: String, stored: Cow<'a, str>, multi: bool) -> Vec<Self> {
        let choices: Vec<Cow<'a, str>> = if multi {
            flywheel_core::label::named(&stored, true)
                .into_iter()
                .map(Cow::Owned)
                .collect()
        } else {
            vec![stored]
        };
        if choices.is_empty() {
            return Vec::new();
        }
        vec![LsResult {
            id,
            from_name: LS_FROM_NAME,
            to_name: LS_TO_NAME,
            kind: "choices",
            value: LsChoices { choices },
        }]
    }
}

#[derive(Serialize)]
struct LsAnnotation<'a> {
    result: Vec<LsResult<'a>>,
    was_cancelled: bool,
    ground_truth: bool,
    created_at: String,
    updated_at: String,
    /// Seconds spent (Label Studio's unit).
    lead_time: f64,
}

#[derive(Serialize)]
struct LsPrediction<'a> {
    model_version: String,
    score: f64,
    result: Vec<LsResult<'a>>,
}

/// What Label Studio has no field for; kept in the task's `meta` (which it stores and
/// exports again) so an import restores it.
#[derive(Serialize)]
struct LsMeta<'a> {
    external_id: &'a str,
    attributes: serde_json::Value,
    created_at: String,
    /// Who gave each annotation, in order (Label Studio's `completed_by` is one of its
    /// own user ids, so it is left out).
    annotators: Vec<String>,
    prediction: Option<PredictionOut<'a>>,
    decision: DecisionOut<'a>,
    resolution: Option<ResolutionOut<'a>>,
}

impl<'a> LsRest<'a> {
    fn of(r: &'a ExportRow, t: &'a Typed<'a>, shape: &Shape) -> Self {
        let multi = shape.is_multi();
        let mut annotations = Vec::new();
        let mut annotators = Vec::new();
        for (i, w) in r.reviews.iter().enumerate() {
            let Some(label) = w.label.as_deref() else { continue };
            annotations.push(LsAnnotation {
                result: LsResult::answer(format!("r{i}"), Cow::Borrowed(label), multi),
                was_cancelled: false,
                ground_truth: false,
                created_at: rfc3339(w.answered_at),
                updated_at: rfc3339(w.answered_at),
                lead_time: (w.answered_at - w.claimed_at) as f64 / 1000.0,
            });
            annotators.push(w.reviewer.clone());
        }
        // A human label with no answers here (imported from elsewhere) is one annotation.
        if let Some(res) = &t.resolution
            && annotations.is_empty()
            && res.source != Source::Auto
        {
            annotations.push(LsAnnotation {
                result: LsResult::answer("r0".into(), Cow::Borrowed(&res.label), multi),
                was_cancelled: false,
                ground_truth: false,
                created_at: rfc3339(res.resolved_at),
                updated_at: rfc3339(res.resolved_at),
                lead_time: 0.0,
            });
            annotators.push(res.reviewers.join(", "));
        }
        let predictions = t
            .prediction
            .as_ref()
            .and_then(|p| {
                let (choice, score) = ls_predicted(p, shape)?;
                Some(LsPrediction {
                    model_version: match &p.version {
                        Some(v) => format!("{}:{v}", p.model),
                        None => p.model.clone(),
                    },
                    score,
                    result: LsResult::answer("p0".into(), choice, multi),
                })
            })
            .into_iter()
            .collect();
        LsRest {
            annotations,
            predictions,
            meta: LsMeta {
                external_id: &r.external_id,
                attributes: serde_json::from_str(&r.attributes).unwrap_or_default(),
                created_at: rfc3339(r.created_at),
                annotators,
                prediction: t.prediction.as_ref().map(PredictionOut::of),
                decision: DecisionOut::of(&t.decision, multi),
                resolution: t.resolution.as_ref().map(|x| ResolutionOut::of(x, multi)),
            },
        }
    }
}

/// A prediction's choice, as stored, and its score (`None`: no scores). Single-label: the
/// top label (the first on a tie) and its score. Multi-label: the set of labels at or
/// above their thresholds, and the confidence of its least certain label (`s` for a label
/// in the set, `1 - s` for one left out).
fn ls_predicted<'p>(p: &'p Prediction, shape: &Shape) -> Option<(Cow<'p, str>, f64)> {
    match shape {
        Shape::Single => {
            let (label, score) = p.scores.iter().fold(None::<&(String, f64)>, |best, s| match best {
                Some(b) if b.1 >= s.1 => Some(b),
                _ => Some(s),
            })?;
            Some((Cow::Borrowed(label.as_str()), *score))
        }
        Shape::Multi(thresholds) => {
            if p.scores.is_empty() {
                return None;
            }
            let chosen = |l: &str, s: f64| s >= flywheel_core::prediction::label_threshold(Some(thresholds), l);
            let set: Vec<&str> = p
                .scores
                .iter()
                .filter(|(l, s)| chosen(l, *s))
                .map(|(l, _)| l.as_str())
                .collect();
            let score = p
                .scores
                .iter()
                .map(|(l, s)| if chosen(l, *s) { *s } else { 1.0 - s })
                .fold(f64::INFINITY, f64::min);
            Some((Cow::Owned(serde_json::to_string(&set).ok()?), score))
        }
    }
}

#[cfg(test)]
mod tests {
    use flywheel_core::{Decision, Outcome, Route};
    use serde_json::{Value, json};

    use super::*;

    fn row(decision: &Decision) -> ExportRow {
        ExportRow {
            item_id: 1,
            external_id: "x".into(),
            payload: "{}".into(),
            attributes: "{}".into(),
            prediction_json: None,
            decision_json: serde_json::to_string(decision).unwrap(),
            resolution_json: None,
            reviews: vec![],
            created_at: 0,
        }
    }

    fn decision_out(r: &ExportRow) -> Value {
        serde_json::to_value(DecisionOut::of(&Typed::of(r).unwrap().decision, false)).unwrap()
    }

    #[test]
    fn a_stored_decision_is_read_as_written() {
        let route = |queue: &str| Route {
            queue: queue.into(),
            ..Route::default_review()
        };
        let auto = Decision {
            outcome: Outcome::Auto { label: "sp\"am".into() },
            rule: "conf\\ident".into(),
            reasons: vec!["p = 0.99".into()],
            policy_version: 3,
            audit: Some(route("audit")),
        };
        assert_eq!(
            decision_out(&row(&auto)),
            json!({"action": "auto", "rule": "conf\\ident", "label": "sp\"am", "queue": null,
                "policy_version": 3, "audit": true})
        );
        let review = Decision {
            outcome: Outcome::Review {
                route: route("experts"),
            },
            rule: "default".into(),
            reasons: vec![],
            policy_version: 1,
            audit: None,
        };
        assert_eq!(
            decision_out(&row(&review)),
            json!({"action": "review", "rule": "default", "label": null, "queue": "experts",
                "policy_version": 1, "audit": false})
        );
        let mut bad = row(&review);
        bad.decision_json = r#"{"outcome":"auto","rule":"r","reasons":[],"policy_version":1}"#.into();
        assert!(
            Typed::of(&bad).is_err(),
            "an auto decision without its label is refused"
        );
    }
}
