//! A project's label schema: the names a reviewer may answer and a model may score.

use crate::ValidationError;

/// One label name: 1 to 64 characters, no control characters, no surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > 64 {
            return Err("a label has 1 to 64 characters".into());
        }
        if s.trim() != s || s.chars().any(char::is_control) {
            return Err("a label has no surrounding spaces or control characters".into());
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The labels of a project, in the order the admin gave them (that order is the order of
/// the reviewer's buttons and keys). At least two, at most 100, no duplicates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct LabelSet(Vec<Label>);

impl LabelSet {
    pub fn parse(names: &[String]) -> Result<Self, ValidationError> {
        if names.len() < 2 || names.len() > 100 {
            return Err(ValidationError::new("labels", "a project has 2 to 100 labels"));
        }
        let mut out = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            let l = Label::parse(n).map_err(|m| ValidationError::new(format!("labels[{i}]"), m))?;
            if out.contains(&l) {
                return Err(ValidationError::new(
                    format!("labels[{i}]"),
                    format!("label '{n}' is listed twice"),
                ));
            }
            out.push(l);
        }
        Ok(Self(out))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|l| l.as_str() == name)
    }

    pub fn get(&self, name: &str) -> Option<&Label> {
        self.0.iter().find(|l| l.as_str() == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|l| l.0.clone()).collect()
    }

    /// Checks a reviewer's or an admin's answer against the schema.
    pub fn answer(&self, field: &str, name: &str) -> Result<Label, ValidationError> {
        self.get(name).cloned().ok_or_else(|| {
            ValidationError::new(
                field,
                format!(
                    "'{name}' is not a label of this project (labels: {})",
                    self.names().join(", ")
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> Result<LabelSet, ValidationError> {
        LabelSet::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn label_sets_are_checked() {
        assert!(set(&["ham", "spam"]).is_ok());
        assert_eq!(set(&["ham"]).unwrap_err().field, "labels");
        assert_eq!(set(&["ham", "ham"]).unwrap_err().field, "labels[1]");
        assert_eq!(set(&["ham", " spam"]).unwrap_err().field, "labels[1]");
        assert_eq!(set(&["", "spam"]).unwrap_err().field, "labels[0]");
    }

    #[test]
    fn answers_must_be_labels() {
        let s = set(&["ham", "spam"]).unwrap();
        assert_eq!(s.answer("label", "spam").unwrap().as_str(), "spam");
        let e = s.answer("label", "eggs").unwrap_err();
        assert_eq!(e.field, "label");
        assert!(e.message.contains("ham, spam"));
    }
}
