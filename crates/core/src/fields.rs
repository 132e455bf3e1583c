//! Answer fields: typed values a reviewer gives beside the label (a severity, an action, a
//! note), declared per project as `answer_fields`.
//!
//! Three pure steps: [`FieldSchema::parse`] checks what an admin declares (errors name
//! `answer_fields[1].values`), [`FieldSchema::check`] turns what a reviewer sends into
//! [`Fields`] or refuses it naming `fields.severity`, and [`FieldSchema::resolve`] gives
//! the item's fields from the answers that resolved it (majority for enums — a tie goes to
//! the value listed first —, median for numbers, majority for bools — a tie is `false` —,
//! the last answer's for text, which on an adjudication is the adjudicator's). Nothing
//! here knows where answers are stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{LabelSet, ValidationError};

/// Most fields a project declares.
pub const MAX_FIELDS: usize = 20;
/// Most values an enum field lists.
pub const MAX_ENUM_VALUES: usize = 50;
/// The longest text field a project may allow, and the default `max_length`.
pub const MAX_TEXT: usize = 10_000;
pub const DEFAULT_TEXT: usize = 2_000;

/// What a field holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FieldKind {
    /// One of `values` (at least one, each a label-like name).
    Enum {
        values: Vec<String>,
    },
    /// A finite number within `[min, max]` (each bound optional).
    Number {
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    Bool,
    /// Text of at most `max_length` characters.
    Text {
        max_length: usize,
    },
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: FieldKind,
    pub required: bool,
    /// With `required`: required only when the answer's label is one of these (empty:
    /// always required).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub when_labels: Vec<String>,
}

/// A project's answer fields, in the order the admin gave them (the workbench's order).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct FieldSchema(Vec<FieldSpec>);

/// One checked value. Enum values are text (one of the field's `values`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// An answer's (or an item's resolved) fields by name.
pub type Fields = BTreeMap<String, FieldValue>;

/// No fields: what an answer without any carries.
pub static NO_FIELDS: Fields = Fields::new();

impl FieldSchema {
    /// Checks a declared schema (the JSON array of `answer_fields`; `null` is none) against
    /// the project's labels. Errors name `answer_fields[i].key`.
    pub fn parse(v: &Value, labels: &LabelSet) -> Result<Self, ValidationError> {
        let items = match v {
            Value::Null => return Ok(Self::default()),
            Value::Array(a) => a,
            _ => return Err(ValidationError::new("answer_fields", "a list of field declarations")),
        };
        if items.len() > MAX_FIELDS {
            return Err(ValidationError::new(
                "answer_fields",
                format!("a project has at most {MAX_FIELDS} answer fields"),
            ));
        }
        let mut out: Vec<FieldSpec> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let spec = parse_spec(item, labels).map_err(|e| e.within(&format!("answer_fields[{i}]")))?;
            if out.iter().any(|f| f.name == spec.name) {
                return Err(ValidationError::new(
                    format!("answer_fields[{i}].name"),
                    format!("field '{}' is declared twice", spec.name),
                ));
            }
            out.push(spec);
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldSpec> {
        self.0.iter()
    }

    pub fn get(&self, name: &str) -> Option<&FieldSpec> {
        self.0.iter().find(|f| f.name == name)
    }

    /// The schema as stored and shown (what `parse` reads back).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Array(Vec::new()))
    }

    /// Checks an answer's `fields` (a JSON object; `None` when none were sent) given the
    /// answer's labels. `null` values count as absent. Errors name `fields.<name>`.
    pub fn check(&self, fields: Option<&Value>, labels: &[&str]) -> Result<Fields, ValidationError> {
        let given = match fields {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(ValidationError::new("fields", "an object of field values by name")),
        };
        let mut out = Fields::new();
        for (name, value) in given.into_iter().flatten() {
            let at = format!("fields.{name}");
            let Some(spec) = self.get(name) else {
                let names: Vec<&str> = self.0.iter().map(|f| f.name.as_str()).collect();
                return Err(ValidationError::new(
                    at,
                    if names.is_empty() {
                        "this project has no answer fields".to_string()
                    } else {
                        format!("not a field of this project (fields: {})", names.join(", "))
                    },
                ));
            };
            if value.is_null() {
                continue;
            }
            out.insert(
                name.clone(),
                check_value(spec, value).map_err(|m| ValidationError::new(at, m))?,
            );
        }
        for spec in &self.0 {
            let required = spec.required
                && (spec.when_labels.is_empty() || labels.iter().any(|l| spec.when_labels.iter().any(|w| w == l)));
            if required && !out.contains_key(&spec.name) {
                let message = if spec.when_labels.is_empty() {
                    "this field is required".to_string()
                } else {
                    format!(
                        "this field is required when the label is one of: {}",
                        spec.when_labels.join(", ")
                    )
                };
                return Err(ValidationError::new(format!("fields.{}", spec.name), message));
            }
        }
        Ok(out)
    }

    /// The fields of an item resolved by `answers` (the resolving task's label answers, in
    /// the order given): per declared field, over the answers that hold it, the majority
    /// of an enum (a tie goes to the value listed first), the median of a number (the mean
    /// of the middle two for an even count), the majority of a bool (a tie is `false`),
    /// the last text. A field no answer holds is absent.
    pub fn resolve(&self, answers: &[&Fields]) -> Fields {
        let mut out = Fields::new();
        for spec in &self.0 {
            let given: Vec<&FieldValue> = answers.iter().filter_map(|a| a.get(&spec.name)).collect();
            if given.is_empty() {
                continue;
            }
            let value = match &spec.kind {
                FieldKind::Enum { values } => {
                    let count = |v: &str| {
                        given
                            .iter()
                            .filter(|g| matches!(g, FieldValue::Text(t) if t == v))
                            .count()
                    };
                    // max_by_key keeps the last of equals: walk the list backwards so a
                    // tie goes to the value listed first.
                    values
                        .iter()
                        .rev()
                        .max_by_key(|v| count(v))
                        .map(|v| FieldValue::Text(v.clone()))
                }
                FieldKind::Number { .. } => {
                    let mut xs: Vec<f64> = given
                        .iter()
                        .filter_map(|g| match g {
                            FieldValue::Number(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    xs.sort_by(f64::total_cmp);
                    let n = xs.len();
                    (n > 0).then(|| {
                        FieldValue::Number(if n % 2 == 1 {
                            xs[n / 2]
                        } else {
                            (xs[n / 2 - 1] + xs[n / 2]) / 2.0
                        })
                    })
                }
                FieldKind::Bool => {
                    let yes = given.iter().filter(|g| matches!(g, FieldValue::Bool(true))).count();
                    let no = given.iter().filter(|g| matches!(g, FieldValue::Bool(false))).count();
                    Some(FieldValue::Bool(yes > no))
                }
                FieldKind::Text { .. } => given.last().map(|g| (*g).clone()),
            };
            if let Some(v) = value {
                out.insert(spec.name.clone(), v);
            }
        }
        out
    }
}

fn check_value(spec: &FieldSpec, v: &Value) -> Result<FieldValue, String> {
    match (&spec.kind, v) {
        (FieldKind::Enum { values }, Value::String(s)) => {
            if values.iter().any(|x| x == s) {
                Ok(FieldValue::Text(s.clone()))
            } else {
                Err(format!("'{s}' is not one of: {}", values.join(", ")))
            }
        }
        (FieldKind::Number { min, max }, Value::Number(n)) => {
            let x = n.as_f64().filter(|x| x.is_finite()).ok_or("a finite number")?;
            if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
                return Err(format!(
                    "{x} is outside [{}, {}]",
                    min.map_or("-inf".into(), |m| m.to_string()),
                    max.map_or("inf".into(), |m| m.to_string())
                ));
            }
            Ok(FieldValue::Number(x))
        }
        (FieldKind::Bool, Value::Bool(b)) => Ok(FieldValue::Bool(*b)),
        (FieldKind::Text { max_length }, Value::String(s)) => {
            let n = s.chars().count();
            if n > *max_length {
                return Err(format!("{n} characters; at most {max_length}"));
            }
            Ok(FieldValue::Text(s.clone()))
        }
        (kind, _) => Err(format!(
            "expected {}",
            match kind {
                FieldKind::Enum { .. } => "a string (one of the field's values)",
                FieldKind::Number { .. } => "a number",
                FieldKind::Bool => "true or false",
                FieldKind::Text { .. } => "a string",
            }
        )),
    }
}

/// A field's name: 1 to 64 of `A-Z a-z 0-9 _ -` (it appears in error paths and keys).
fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("a field name has 1 to 64 of A-Z, a-z, 0-9, _ and -".into())
    }
}

fn parse_spec(v: &Value, labels: &LabelSet) -> Result<FieldSpec, ValidationError> {
    let Value::Object(m) = v else {
        return Err(ValidationError::new("", "a field declaration is an object"));
    };
    let str_of = |key: &str| -> Result<Option<&str>, ValidationError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ValidationError::new(key, "a string")),
        }
    };
    let num_of = |key: &str| -> Result<Option<f64>, ValidationError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64().filter(|x| x.is_finite())),
            Some(_) => Err(ValidationError::new(key, "a number")),
        }
    };
    let name = parse_name(str_of("name")?.ok_or_else(|| ValidationError::new("name", "a field has a name"))?)
        .map_err(|e| ValidationError::new("name", e))?;
    let ty = str_of("type")?.ok_or_else(|| ValidationError::new("type", "enum, number, bool or text"))?;
    let allowed: &[&str] = match ty {
        "enum" => &["values"],
        "number" => &["min", "max"],
        "text" => &["max_length"],
        "bool" => &[],
        _ => {
            return Err(ValidationError::new(
                "type",
                format!("'{ty}' is not a field type (enum, number, bool, text)"),
            ));
        }
    };
    for key in m.keys() {
        let common = ["name", "type", "required", "when_labels"].contains(&key.as_str());
        if !common && !allowed.contains(&key.as_str()) {
            return Err(ValidationError::new(key.as_str(), format!("not a key of a {ty} field")));
        }
    }
    let kind = match ty {
        "enum" => {
            let Some(Value::Array(vs)) = m.get("values") else {
                return Err(ValidationError::new("values", "an enum field lists its values"));
            };
            if vs.is_empty() || vs.len() > MAX_ENUM_VALUES {
                return Err(ValidationError::new(
                    "values",
                    format!("an enum field has 1 to {MAX_ENUM_VALUES} values"),
                ));
            }
            let mut values: Vec<String> = Vec::with_capacity(vs.len());
            for (j, x) in vs.iter().enumerate() {
                let at = format!("values[{j}]");
                let s = x
                    .as_str()
                    .ok_or_else(|| ValidationError::new(at.as_str(), "a string"))?;
                let l = crate::Label::parse(s)
                    .map_err(|e| ValidationError::new(at.as_str(), e.replace("label", "value")))?;
                if values.iter().any(|v| v == l.as_str()) {
                    return Err(ValidationError::new(at, format!("'{s}' is listed twice")));
                }
                values.push(l.as_str().to_string());
            }
            FieldKind::Enum { values }
        }
        "number" => {
            let (min, max) = (num_of("min")?, num_of("max")?);
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(ValidationError::new("max", "max is below min"));
            }
            FieldKind::Number { min, max }
        }
        "text" => {
            let max_length = match m.get("max_length") {
                None | Some(Value::Null) => DEFAULT_TEXT,
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=MAX_TEXT as u64).contains(n))
                    .ok_or_else(|| ValidationError::new("max_length", format!("a whole number from 1 to {MAX_TEXT}")))?
                    as usize,
            };
            FieldKind::Text { max_length }
        }
        _ => FieldKind::Bool,
    };
    let required = match m.get("required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ValidationError::new("required", "true or false")),
    };
    let when_labels = match m.get("when_labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ls)) => {
            if !required {
                return Err(ValidationError::new(
                    "when_labels",
                    "when_labels says when a required field is required: set required too",
                ));
            }
            if ls.is_empty() {
                return Err(ValidationError::new("when_labels", "at least one label"));
            }
            let mut out = Vec::with_capacity(ls.len());
            for (j, l) in ls.iter().enumerate() {
                let at = format!("when_labels[{j}]");
                let s = l
                    .as_str()
                    .ok_or_else(|| ValidationError::new(at.as_str(), "a string"))?;
                out.push(labels.answer(&at, s)?.as_str().to_string());
            }
            out
        }
        Some(_) => return Err(ValidationError::new("when_labels", "a list of the project's labels")),
    };
    Ok(FieldSpec {
        name,
        kind,
        required,
        when_labels,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels() -> LabelSet {
        LabelSet::parse(&["ok".into(), "hate".into(), "spam".into()]).unwrap()
    }

    fn schema() -> FieldSchema {
        FieldSchema::parse(
            &json!([
                {"name": "severity", "type": "enum", "values": ["low", "medium", "high"], "required": true,
                 "when_labels": ["hate", "spam"]},
                {"name": "score", "type": "number", "min": 0, "max": 10},
                {"name": "urgent", "type": "bool"},
                {"name": "note", "type": "text", "max_length": 5}
            ]),
            &labels(),
        )
        .unwrap()
    }

    fn err(v: Value) -> String {
        FieldSchema::parse(&v, &labels()).unwrap_err().field
    }

    #[test]
    fn declarations_are_checked_naming_the_key() {
        assert!(FieldSchema::parse(&Value::Null, &labels()).unwrap().is_empty());
        assert_eq!(err(json!({})), "answer_fields");
        assert_eq!(err(json!([{"type": "bool"}])), "answer_fields[0].name");
        assert_eq!(err(json!([{"name": "a b", "type": "bool"}])), "answer_fields[0].name");
        assert_eq!(err(json!([{"name": "a", "type": "date"}])), "answer_fields[0].type");
        assert_eq!(
            err(json!([{"name": "a", "type": "bool"}, {"name": "s", "type": "enum", "values": []}])),
            "answer_fields[1].values"
        );
        assert_eq!(
            err(json!([{"name": "s", "type": "enum", "values": ["x", "x"]}])),
            "answer_fields[0].values[1]"
        );
        assert_eq!(
            err(json!([{"name": "n", "type": "number", "min": 3, "max": 1}])),
            "answer_fields[0].max"
        );
        assert_eq!(
            err(json!([{"name": "n", "type": "number", "values": ["a"]}])),
            "answer_fields[0].values"
        );
        assert_eq!(
            err(json!([{"name": "t", "type": "text", "max_length": 0}])),
            "answer_fields[0].max_length"
        );
        assert_eq!(
            err(json!([{"name": "s", "type": "bool", "required": true, "when_labels": ["eggs"]}])),
            "answer_fields[0].when_labels[0]"
        );
        assert_eq!(
            err(json!([{"name": "s", "type": "bool", "when_labels": ["hate"]}])),
            "answer_fields[0].when_labels"
        );
        assert_eq!(
            err(json!([{"name": "a", "type": "bool"}, {"name": "a", "type": "text"}])),
            "answer_fields[1].name"
        );
        // What is stored reads back as the same schema.
        let s = schema();
        assert_eq!(FieldSchema::parse(&s.to_json(), &labels()).unwrap(), s);
    }

    #[test]
    fn answers_are_checked_naming_the_field() {
        let s = schema();
        let check = |v: Value, label: &str| s.check(Some(&v), &[label]);
        let ok = check(
            json!({"severity": "high", "score": 2.5, "urgent": true, "note": "hi"}),
            "hate",
        )
        .unwrap();
        assert_eq!(ok["severity"], FieldValue::Text("high".into()));
        assert_eq!(ok["score"], FieldValue::Number(2.5));
        // Not required for this label; null is absent.
        assert!(check(json!({"note": null}), "ok").unwrap().is_empty());
        assert!(s.check(None, &["ok"]).unwrap().is_empty());
        let field = |v: Value, label: &str| check(v, label).unwrap_err().field;
        assert_eq!(
            field(json!({"colour": "red", "severity": "low"}), "hate"),
            "fields.colour"
        );
        assert_eq!(field(json!({"severity": 3}), "hate"), "fields.severity");
        assert_eq!(field(json!({"severity": "extreme"}), "hate"), "fields.severity");
        assert_eq!(field(json!({"score": 11}), "ok"), "fields.score");
        assert_eq!(field(json!({"score": "1"}), "ok"), "fields.score");
        assert_eq!(field(json!({"urgent": 1}), "ok"), "fields.urgent");
        assert_eq!(field(json!({"note": "toolong"}), "ok"), "fields.note");
        assert_eq!(field(json!({}), "spam"), "fields.severity");
        assert_eq!(s.check(Some(&json!([1])), &["ok"]).unwrap_err().field, "fields");
        assert_eq!(
            FieldSchema::default()
                .check(Some(&json!({"a": 1})), &["ok"])
                .unwrap_err()
                .field,
            "fields.a"
        );
    }

    #[test]
    fn resolution_is_majority_median_and_last_text() {
        let s = schema();
        let f = |v: Value| s.check(Some(&v), &["ok"]).unwrap();
        let a = f(json!({"severity": "high", "score": 1, "urgent": true, "note": "a"}));
        let b = f(json!({"severity": "low", "score": 9, "urgent": false, "note": "b"}));
        let c = f(json!({"severity": "low", "score": 4, "urgent": true}));
        let r = s.resolve(&[&a, &b, &c]);
        assert_eq!(r["severity"], FieldValue::Text("low".into()));
        assert_eq!(r["score"], FieldValue::Number(4.0));
        assert_eq!(r["urgent"], FieldValue::Bool(true));
        assert_eq!(r["note"], FieldValue::Text("b".into()));
        // Ties: the value listed first ("low" before "high"), the mean of the middle two,
        // false.
        let r = s.resolve(&[&a, &b]);
        assert_eq!(r["severity"], FieldValue::Text("low".into()));
        assert_eq!(r["score"], FieldValue::Number(5.0));
        assert_eq!(r["urgent"], FieldValue::Bool(false));
        let d = f(json!({"severity": "medium"}));
        assert_eq!(s.resolve(&[&a, &d])["severity"], FieldValue::Text("medium".into()));
        // One answer (an adjudicator's) is its own resolution; nothing held, nothing out.
        assert_eq!(s.resolve(&[&a]), a);
        assert!(s.resolve(&[]).is_empty());
    }
}
