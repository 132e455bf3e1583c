//! Imports: a Label Studio export (a JSON array of tasks, or one task per line) or
//! Flywheel's own JSON lines become items of a project, through the same submission path
//! as `POST …/items` (policy, decisions, idempotency by external id); their human labels
//! become either gold items or the items' resolutions (human, method `imported`: the label
//! feed gets them, and the model trains on them).
//!
//! The whole file is checked before anything is written: a bad row refuses the import with
//! its line and the field at fault (`line 7: annotations[0].result[0].value.choices`).

use std::collections::BTreeMap;

use flywheel_core::ValidationError;
use flywheel_store::ImportedLabel;
use serde_json::Value;

use super::export::LS_FROM_NAME;
use super::items::{ItemIn, PredictionIn, item_parts};
use super::quality::GoldIn;
use super::{AppError, AppState, ProjectRuntime};

/// Rows written per store call.
const CHUNK: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    LabelStudio,
    Jsonl,
}

impl ImportFormat {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "label-studio" => Ok(ImportFormat::LabelStudio),
            "jsonl" => Ok(ImportFormat::Jsonl),
            _ => Err(ValidationError::new("format", "format is label-studio or jsonl")),
        }
    }
}

/// What human labels become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelsAs {
    /// The items' resolutions (human, method `imported`).
    History,
    /// Gold items, scored against reviewers' answers; rows without a label are items.
    Gold,
}

impl LabelsAs {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "history" => Ok(LabelsAs::History),
            "gold" => Ok(LabelsAs::Gold),
            _ => Err(ValidationError::new("as", "as is history or gold")),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Rows read.
    pub rows: usize,
    /// Items stored (decided by the policy).
    pub items: usize,
    /// Rows whose external id was already stored: left as they were.
    pub duplicates: usize,
    /// Items resolved with an imported label (`as=history`).
    pub labels: usize,
    /// Gold items added (`as=gold`).
    pub gold: usize,
}

/// One checked row.
struct Row {
    item: ItemIn,
    label: Option<ImportedLabel>,
}

/// Checks every row of `body`, then writes them in chunks.
#[tracing::instrument(level = "debug", skip_all, fields(project = %p.name, bytes = body.len()))]
pub async fn import(
    s: &AppState,
    p: &std::sync::Arc<ProjectRuntime>,
    actor: &str,
    format: ImportFormat,
    labels_as: LabelsAs,
    body: &[u8],
) -> Result<ImportReport, AppError> {
    let rows = parse(p, format, body)?;
    let mut report = ImportReport {
        rows: rows.len(),
        ..Default::default()
    };
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Row> = rows.by_ref().take(CHUNK).collect();
        let mut items = Vec::with_capacity(chunk.len());
        let mut labels = Vec::new();
        let mut gold = Vec::new();
        for r in chunk {
            match (labels_as, r.label) {
                (LabelsAs::Gold, Some(l)) => {
                    // The stored form back into the member the project's mode takes.
                    let (label, labels) = if p.labels.is_multi() {
                        (None, Some(flywheel_core::label::named(&l.label, true)))
                    } else {
                        (Some(l.label), None)
                    };
                    gold.push(GoldIn {
                        external_id: r.item.external_id,
                        payload: r.item.payload,
                        attributes: r.item.attributes,
                        label,
                        labels,
                        prediction: r.item.prediction,
                    })
                }
                (_, label) => {
                    labels.extend(label);
                    items.push(r.item);
                }
            }
        }
        if !items.is_empty() {
            let out = super::items::submit(s, p, actor, items).await?;
            let dup = out.iter().filter(|d| d.duplicate).count();
            report.duplicates += dup;
            report.items += out.len() - dup;
        }
        if !gold.is_empty() {
            let n = gold.len();
            let added = super::quality::add_gold(s, p, actor, gold).await?;
            report.gold += added;
            report.duplicates += n - added;
        }
        if !labels.is_empty() {
            report.labels += s.store.import_labels(p.id, labels, actor, s.now()).await?;
        }
    }
    Ok(report)
}

/// A row's error: `line N: field`.
fn at_line(line: usize, e: ValidationError) -> AppError {
    let field = if e.field.is_empty() {
        format!("line {line}")
    } else {
        format!("line {line}: {}", e.field)
    };
    AppError::Row {
        line,
        error: ValidationError::new(field, e.message),
    }
}

/// Every row of the file, checked, with its line.
fn parse(p: &ProjectRuntime, format: ImportFormat, body: &[u8]) -> Result<Vec<Row>, AppError> {
    let values = values(body)?;
    if values.is_empty() {
        return Err(AppError::invalid("body", "the file holds no rows"));
    }
    let mut rows = Vec::with_capacity(values.len());
    for (line, v) in values {
        if let Some(field) = super::nul_at(&v) {
            return Err(at_line(
                line,
                invalid(field, "a NUL character (\\u0000) cannot be stored; remove it"),
            ));
        }
        let row = match format {
            ImportFormat::LabelStudio => ls_row(p, v),
            ImportFormat::Jsonl => jsonl_row(p, v),
        }
        .map_err(|e| at_line(line, e))?;
        rows.push(row);
    }
    Ok(rows)
}

/// The JSON values of the file with the line each starts on: a JSON array's elements (a
/// Label Studio export) or one value per line.
fn values(body: &[u8]) -> Result<Vec<(usize, Value)>, AppError> {
    let line_of = |offset: usize| 1 + body[..offset].iter().filter(|b| **b == b'\n').count();
    let skip_ws = |mut i: usize| {
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let malformed = |offset: usize, e: &dyn std::fmt::Display| {
        let line = line_of(offset);
        AppError::Row {
            line,
            error: ValidationError::new(format!("line {line}"), format!("not valid JSON: {e}")),
        }
    };
    let mut out = Vec::new();
    let mut i = skip_ws(0);
    let array = body.get(i) == Some(&b'[');
    if array {
        i = skip_ws(i + 1);
        if body.get(i) == Some(&b']') {
            return Ok(out);
        }
    }
    // Lines are counted incrementally: one pass over the file, whatever its length.
    let (mut counted_to, mut line) = (0usize, 1usize);
    loop {
        i = skip_ws(i);
        if i >= body.len() {
            if array {
                return Err(malformed(i, &"the array is not closed with ]"));
            }
            return Ok(out);
        }
        line += body[counted_to..i].iter().filter(|b| **b == b'\n').count();
        counted_to = i;
        let mut stream = serde_json::Deserializer::from_slice(&body[i..]).into_iter::<Value>();
        let v = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(malformed(i, &e)),
            None => return Ok(out),
        };
        out.push((line, v));
        i = skip_ws(i + stream.byte_offset());
        if array {
            match body.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    let end = skip_ws(i + 1);
                    if end < body.len() {
                        return Err(malformed(end, &"text after the closing ]"));
                    }
                    return Ok(out);
                }
                _ => return Err(malformed(i, &"expected , or ] after a task")),
            }
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

/// Checks the item parts against the project (the errors named as in this row); `label`
/// was checked where it was read.
fn checked(
    p: &ProjectRuntime,
    item: ItemIn,
    names: [&str; 3],
    label: Option<ImportedLabel>,
) -> Result<Row, ValidationError> {
    let (attributes, _) = item_parts(
        0,
        &item.external_id,
        &item.payload,
        item.attributes.clone(),
        item.prediction.clone(),
        &p.labels,
    )
    .map_err(|e| {
        let rest = e.field.strip_prefix("items[0].").unwrap_or(&e.field);
        let (head, tail) = rest.split_once('.').unwrap_or((rest, ""));
        let head = match head {
            "external_id" => names[0],
            "payload" => names[1],
            "prediction" => names[2],
            other => other,
        };
        let field = if tail.is_empty() {
            head.to_string()
        } else {
            format!("{head}.{tail}")
        };
        invalid(field, e.message)
    })?;
    Ok(Row {
        item: ItemIn {
            attributes: Some(attributes),
            ..item
        },
        label,
    })
}

/// A row of Flywheel's JSON lines export: `external_id`, `payload`, `attributes`,
/// `prediction` (`model`, `version`, `scores` by label) and `resolution` (a `human` or
/// `adjudicated` one becomes the imported label, its `label`, or in a multi-label project
/// its `labels`; an `auto` one is decided afresh).
fn jsonl_row(p: &ProjectRuntime, v: Value) -> Result<Row, ValidationError> {
    let Value::Object(mut o) = v else {
        return Err(invalid("", "a row is a JSON object"));
    };
    let external_id = match o.remove("external_id") {
        Some(Value::String(s)) => s,
        None => return Err(invalid("external_id", "a row needs an external_id (a string)")),
        Some(other) => return Err(invalid("external_id", format!("external_id is a string, got {other}"))),
    };
    let payload = o.remove("payload").unwrap_or(Value::Null);
    let attributes = o.remove("attributes");
    let prediction = match o.remove("prediction") {
        None | Some(Value::Null) => None,
        Some(v) => Some(prediction_in(v).map_err(|m| invalid("prediction", m))?),
    };
    let label = match o.remove("resolution") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => {
            let source = r.get("source").and_then(Value::as_str).unwrap_or("");
            if source == "auto" {
                None
            } else {
                let label = match r.get("label") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(l)) => Some(l.as_str()),
                    Some(_) => return Err(invalid("resolution.label", "resolution.label is a string")),
                };
                let labels = match r.get("labels") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(a)) => Some(
                        a.iter()
                            .enumerate()
                            .map(|(j, l)| {
                                l.as_str()
                                    .map(str::to_string)
                                    .ok_or_else(|| invalid(format!("resolution.labels[{j}]"), "a label is a string"))
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                    Some(_) => {
                        return Err(invalid("resolution.labels", "resolution.labels is an array of labels"));
                    }
                };
                let label = p.labels.known_answer("resolution.", label, labels.as_deref())?;
                let reviewers = r
                    .get("reviewers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let confidence = r.get("confidence").and_then(Value::as_f64).unwrap_or(1.0);
                if !(0.0..=1.0).contains(&confidence) {
                    return Err(invalid("resolution.confidence", "confidence is in [0, 1]"));
                }
                Some(ImportedLabel {
                    external_id: external_id.clone(),
                    label,
                    reviewers,
                    confidence,
                })
            }
        }
        Some(_) => return Err(invalid("resolution", "resolution is an object")),
    };
    let item = ItemIn {
        external_id,
        payload,
        attributes,
        prediction,
    };
    checked(p, item, ["external_id", "payload", "prediction"], label)
}

fn prediction_in(v: Value) -> Result<PredictionIn, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// A Label Studio task: `data` (the payload), `id` or `meta.external_id` (the external
/// id), `meta.attributes`, `predictions[0]` (or `meta.prediction`, all the scores) and
/// `annotations` (choices; cancelled ones are skipped), whose majority label is the row's
/// label (in a multi-label project: the most given set).
fn ls_row(p: &ProjectRuntime, v: Value) -> Result<Row, ValidationError> {
    let Value::Object(mut task) = v else {
        return Err(invalid("", "a task is a JSON object"));
    };
    let mut meta = match task.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Default::default(),
    };
    let external_id = match (meta.remove("external_id"), task.get("id")) {
        (Some(Value::String(s)), _) => s,
        (_, Some(Value::Number(n))) => n.to_string(),
        (_, Some(Value::String(s))) => s.clone(),
        _ => return Err(invalid("id", "a task needs an id or meta.external_id")),
    };
    let payload = task.remove("data").unwrap_or(Value::Null);
    let attributes = meta.remove("attributes");
    let prediction = match meta.remove("prediction") {
        Some(v @ Value::Object(_)) => Some(prediction_in(v).map_err(|m| invalid("meta.prediction", m))?),
        _ => ls_prediction(p, task.get("predictions"))?,
    };
    let annotators: Vec<Option<String>> = match meta.get("annotators") {
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    let mut votes: Vec<(String, String)> = Vec::new();
    if let Some(anns) = task.get("annotations") {
        let anns = anns
            .as_array()
            .ok_or_else(|| invalid("annotations", "annotations is an array"))?;
        for (i, a) in anns.iter().enumerate() {
            if a.get("was_cancelled").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let label = choice(p, a.get("result"), &format!("annotations[{i}].result"))?;
            let who = annotators
                .get(i)
                .cloned()
                .flatten()
                .or_else(|| match a.get("completed_by") {
                    Some(Value::Number(n)) => Some(format!("label-studio:{n}")),
                    Some(Value::Object(u)) => u.get("email").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
                .unwrap_or_else(|| "label-studio".into());
            votes.push((label, who));
        }
    }
    let label = majority(&votes).map(|(label, confidence)| ImportedLabel {
        external_id: external_id.clone(),
        label,
        reviewers: votes.iter().map(|(_, w)| w.clone()).collect(),
        confidence,
    });
    let item = ItemIn {
        external_id,
        payload,
        attributes,
        prediction,
    };
    checked(p, item, ["id", "data", "predictions[0]"], label)
}

/// The answer of a `choices` result, as stored: in a single-label project `value.choices`
/// holds one of the project's labels; in a multi-label one (`<Choices
/// choice="multiple">`) it holds the set, whose canonical encoding is returned — and a
/// result with no choices (nothing ticked: Label Studio writes no region) is the empty
/// set.
fn choice(p: &ProjectRuntime, result: Option<&Value>, at: &str) -> Result<String, ValidationError> {
    let results = result
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(at, "result is an array"))?;
    let found = results
        .iter()
        .enumerate()
        .find(|(_, r)| r.get("type").and_then(Value::as_str) == Some("choices"));
    let multi = p.labels.is_multi();
    let Some((j, r)) = found else {
        if multi {
            return Ok(p.labels.encode_set(|_| false));
        }
        return Err(invalid(
            at,
            format!("no result of type choices (from_name {LS_FROM_NAME})"),
        ));
    };
    let field = format!("{at}[{j}].value.choices");
    let choices = r
        .get("value")
        .and_then(|v| v.get("choices"))
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(&field, "value.choices is an array of labels"))?;
    if multi {
        let mut set = Vec::with_capacity(choices.len());
        for (k, c) in choices.iter().enumerate() {
            let l = c
                .as_str()
                .ok_or_else(|| invalid(format!("{field}[{k}]"), "a choice is a label's name"))?;
            set.push(l.to_string());
        }
        return p.labels.answer_set(&field, &set);
    }
    let [Value::String(label)] = choices.as_slice() else {
        return Err(invalid(&field, "value.choices holds exactly one label"));
    };
    p.labels.answer(&field, label)?;
    Ok(label.clone())
}

/// `predictions[0]`: its `model_version` names the model, its `score` is the chosen
/// label's; the other labels share the rest equally (Label Studio keeps one score). In a
/// multi-label project each chosen label scores `score` and each other one `1 - score`
/// (scores are independent per label).
fn ls_prediction(p: &ProjectRuntime, predictions: Option<&Value>) -> Result<Option<PredictionIn>, ValidationError> {
    let Some(first) = predictions.and_then(Value::as_array).and_then(|a| a.first()) else {
        return Ok(None);
    };
    let label = choice(p, first.get("result"), "predictions[0].result")?;
    let score = match first.get("score") {
        None | Some(Value::Null) => 1.0,
        Some(s) => s
            .as_f64()
            .filter(|s| (0.0..=1.0).contains(s))
            .ok_or_else(|| invalid("predictions[0].score", "score is a number in [0, 1]"))?,
    };
    let model = first
        .get("model_version")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or("label-studio")
        .to_string();
    let others = (p.labels.len() - 1).max(1) as f64;
    let chosen = flywheel_core::label::named(&label, p.labels.is_multi());
    let scores: BTreeMap<String, f64> = p
        .labels
        .names()
        .into_iter()
        .map(|l| {
            let s = match (chosen.contains(&l), p.labels.is_multi()) {
                (true, _) => score,
                (false, true) => 1.0 - score,
                (false, false) => (1.0 - score) / others,
            };
            (l, s)
        })
        .collect();
    Ok(Some(PredictionIn {
        model,
        version: None,
        scores,
        novelty: None,
    }))
}

/// The most given label (a tie goes to the one given first) and its share.
fn majority(votes: &[(String, String)]) -> Option<(String, f64)> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (l, _) in votes {
        match counts.iter_mut().find(|(x, _)| x == l) {
            Some(c) => c.1 += 1,
            None => counts.push((l, 1)),
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for c in counts {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    best.map(|(l, n)| (l.to_string(), n as f64 / votes.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_an_array_and_of_lines_keep_their_lines() {
        let arr = b"[\n  {\"a\": 1},\n  {\"b\":\n 2}, {\"c\": 3}\n]\n";
        let got: Vec<usize> = values(arr).unwrap().into_iter().map(|(l, _)| l).collect();
        assert_eq!(got, [2, 3, 4]);
        let lines = b"{\"a\": 1}\n\n{\"b\": 2}\n";
        let got: Vec<usize> = values(lines).unwrap().into_iter().map(|(l, _)| l).collect();
        assert_eq!(got, [1, 3]);
        assert_eq!(values(b"[]").unwrap().len(), 0);
        for bad in [&b"[{\"a\": 1}"[..], b"[{\"a\": 1} {\"b\": 2}]", b"{\"a\":\n}", b"[1] x"] {
            assert!(
                matches!(values(bad), Err(AppError::Row { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        match values(b"{\"a\": 1}\n{\"b\": }\n") {
            Err(AppError::Row { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn majority_takes_the_most_given_label_and_the_first_on_a_tie() {
        let v = |xs: &[&str]| xs.iter().map(|l| (l.to_string(), "w".to_string())).collect::<Vec<_>>();
        assert_eq!(majority(&v(&["a", "b", "b"])), Some(("b".into(), 2.0 / 3.0)));
        assert_eq!(majority(&v(&["b", "a"])), Some(("b".into(), 0.5)));
        assert_eq!(majority(&[]), None);
    }
}
