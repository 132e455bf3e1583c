//! A project's label schema: the names a reviewer may answer and a model may score, and
//! whether an answer is one of them (`single`) or a set of them (`multi`).
//!
//! A multi-label answer is stored where a single label is (the `label` TEXT columns of
//! reviews, the label feed, item resolutions and gold), as its canonical encoding: the JSON
//! array of its labels in the project's order (`["hate","violence"]`, `[]` for "none of
//! these"). Two answers name the same set exactly when their encodings are equal, so
//! equality-based code (audits, gold scoring, amend) needs no special case; the API decodes
//! it ([`decode_set`]) back into `labels: [..]`.

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

/// Whether an answer is one label or a set of labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelMode {
    /// One label per answer; scores are a distribution over the labels.
    #[default]
    Single,
    /// A set of labels per answer (possibly empty); scores are independent per label.
    Multi,
}

impl LabelMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelMode::Single => "single",
            LabelMode::Multi => "multi",
        }
    }

    /// Parses `single` or `multi`; an error names `label_mode`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "single" => Ok(LabelMode::Single),
            "multi" => Ok(LabelMode::Multi),
            _ => Err(ValidationError::new(
                "label_mode",
                format!("label_mode is 'single' or 'multi', got '{s}'"),
            )),
        }
    }
}

/// The labels of a project, in the order the admin gave them (that order is the order of
/// the reviewer's buttons and keys). At least two, at most 100, no duplicates. Serialises
/// as the list of names; the mode travels with it ([`LabelSet::with_mode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet(Vec<Label>, LabelMode);

impl serde::Serialize for LabelSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Decodes a stored multi-label answer (see the module's doc); `None` when `s` is not a
/// JSON array of strings.
pub fn decode_set(s: &str) -> Option<Vec<String>> {
    serde_json::from_str(s).ok()
}

/// The labels a stored (checked) label answer names: its set in a multi-label project,
/// else the label itself — what answer fields' `when_labels` are read against.
pub fn named(stored: &str, multi: bool) -> Vec<String> {
    if multi {
        decode_set(stored).unwrap_or_default()
    } else {
        vec![stored.to_string()]
    }
}

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
        Ok(Self(out, LabelMode::Single))
    }

    /// This label set in `mode`.
    pub fn with_mode(mut self, mode: LabelMode) -> Self {
        self.1 = mode;
        self
    }

    pub fn mode(&self) -> LabelMode {
        self.1
    }

    pub fn is_multi(&self) -> bool {
        self.1 == LabelMode::Multi
    }

    /// Checks a multi-label answer (`field` is `labels`) and returns its canonical
    /// encoding: every name a label of the project (an error names `labels[i]`), none
    /// twice; the empty set is "none of these".
    pub fn answer_set(&self, field: &str, names: &[String]) -> Result<String, ValidationError> {
        for (i, n) in names.iter().enumerate() {
            self.answer(&format!("{field}[{i}]"), n)?;
            if names[..i].contains(n) {
                return Err(ValidationError::new(
                    format!("{field}[{i}]"),
                    format!("label '{n}' is listed twice"),
                ));
            }
        }
        Ok(self.encode_set(|l| names.iter().any(|n| n == l)))
    }

    /// A known answer given as `label` (a single-label project) or `labels` (a multi-label
    /// one), checked and in its stored form (a set's canonical encoding). Fields are named
    /// after `at` (`items[3].` names `items[3].labels[1]`): an unknown or repeated label,
    /// the member the project's mode does not take, or neither given.
    pub fn known_answer(
        &self,
        at: &str,
        label: Option<&str>,
        labels: Option<&[String]>,
    ) -> Result<String, ValidationError> {
        match (label, labels, self.is_multi()) {
            (Some(l), None, false) => self.answer(&format!("{at}label"), l).map(|l| l.0),
            (None, Some(set), true) => self.answer_set(&format!("{at}labels"), set),
            (Some(_), _, true) => Err(ValidationError::new(
                format!("{at}label"),
                "this project is multi-label: give labels: [..] (an empty list is none of these)",
            )),
            (_, Some(_), false) => Err(ValidationError::new(
                format!("{at}labels"),
                "this project is single-label: give label",
            )),
            (None, None, multi) => {
                let field = if multi { "labels" } else { "label" };
                Err(ValidationError::new(
                    format!("{at}{field}"),
                    format!("{field} is required"),
                ))
            }
        }
    }

    /// Checks an answer as it is stored — a label, or in a multi-label project a set's
    /// canonical encoding — before a store writes it (gold, imported labels): an error
    /// names `field`.
    pub fn check_stored(&self, field: &str, stored: &str) -> Result<(), ValidationError> {
        if !self.is_multi() {
            return self.answer(field, stored).map(|_| ());
        }
        let canonical = decode_set(stored).and_then(|set| self.answer_set(field, &set).ok());
        if canonical.as_deref() != Some(stored) {
            return Err(ValidationError::new(
                field,
                format!("'{stored}' is not a set of this project's labels in its canonical encoding"),
            ));
        }
        Ok(())
    }

    /// The canonical encoding of the labels for which `present` holds, in project order.
    pub fn encode_set(&self, present: impl Fn(&str) -> bool) -> String {
        let set: Vec<&str> = self.0.iter().map(Label::as_str).filter(|l| present(l)).collect();
        serde_json::to_string(&set).expect("a list of strings serialises")
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

    #[test]
    fn answer_sets_are_checked_and_encoded_in_project_order() {
        let s = set(&["hate", "spam", "violence"]).unwrap().with_mode(LabelMode::Multi);
        let names = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let enc = s.answer_set("labels", &names(&["violence", "hate"])).unwrap();
        assert_eq!(enc, r#"["hate","violence"]"#);
        assert_eq!(decode_set(&enc).unwrap(), names(&["hate", "violence"]));
        assert_eq!(s.answer_set("labels", &[]).unwrap(), "[]");
        assert_eq!(
            s.answer_set("labels", &names(&["hate", "eggs"])).unwrap_err().field,
            "labels[1]"
        );
        assert_eq!(
            s.answer_set("labels", &names(&["spam", "spam"])).unwrap_err().field,
            "labels[1]"
        );
        assert_eq!(decode_set("spam"), None);
        let known = |s: &LabelSet, label: Option<&str>, labels: Option<&[&str]>| {
            let labels = labels.map(names);
            s.known_answer("items[2].", label, labels.as_deref())
        };
        assert_eq!(known(&s, None, Some(&["spam", "hate"])).unwrap(), r#"["hate","spam"]"#);
        assert_eq!(known(&s, None, Some(&["hat"])).unwrap_err().field, "items[2].labels[0]");
        assert_eq!(known(&s, Some("hate"), None).unwrap_err().field, "items[2].label");
        assert_eq!(known(&s, None, None).unwrap_err().field, "items[2].labels");
        assert!(s.check_stored("label", r#"["hate","spam"]"#).is_ok());
        for bad in [r#"["spam","hate"]"#, r#"["eggs"]"#, "hate", r#"["hate","hate"]"#] {
            assert_eq!(s.check_stored("label", bad).unwrap_err().field, "label", "{bad}");
        }
        let single = set(&["hate", "spam"]).unwrap();
        assert!(single.check_stored("label", "spam").is_ok());
        assert!(single.check_stored("label", r#"["spam"]"#).is_err());
        assert_eq!(known(&single, Some("spam"), None).unwrap(), "spam");
        assert_eq!(known(&single, Some("eggs"), None).unwrap_err().field, "items[2].label");
        assert_eq!(
            known(&single, None, Some(&["spam"])).unwrap_err().field,
            "items[2].labels"
        );
        assert_eq!(known(&single, None, None).unwrap_err().field, "items[2].label");
        assert_eq!(LabelMode::parse("multi").unwrap(), LabelMode::Multi);
        assert_eq!(LabelMode::parse("many").unwrap_err().field, "label_mode");
    }
}
