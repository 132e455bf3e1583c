//! What a use case can fail with, in domain terms. `crate::error` maps it to a status and
//! a JSON body, once; nothing here knows HTTP.

use flywheel_core::ValidationError;
use flywheel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Something named does not exist (a project, an item, a reviewer, a model).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Input that does not fit, naming the field at fault.
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken invariant (a stored policy that no longer compiles, a task that
    /// panicked): nothing the caller can fix.
    #[error("{0}")]
    Internal(String),
    /// The reviewer must rest before claiming again (a fatigue break, pacing's session
    /// cap): retry after `retry_after_s` seconds.
    #[error("{message}")]
    BreakDue { retry_after_s: u64, message: String },
    /// `source`, reported against the request field `field` (a "next" project that is
    /// not granted is `next.project`'s fault).
    #[error("{field}: {source}")]
    At { field: &'static str, source: Box<AppError> },
    /// A row of an imported file that does not fit: its line (from 1) and the field at
    /// fault (already named `line N: …`).
    #[error("{}: {}", .error.field, .error.message)]
    Row { line: usize, error: ValidationError },
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid(ValidationError::new(field, message))
    }

    /// The same error, blamed on request field `field`.
    pub fn at(self, field: &'static str) -> Self {
        AppError::At {
            field,
            source: Box::new(self),
        }
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::Invalid(e)
    }
}

/// Checks a free-text field: no NUL character (PostgreSQL cannot store one) and `min` to
/// `max` characters.
pub fn text_field(field: &str, value: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    if value.contains('\0') {
        return Err(ValidationError::new(field, format!("{field} contains a NUL character")));
    }
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ValidationError::new(
            field,
            format!("{field} has {min} to {max} characters, got {n}"),
        ));
    }
    Ok(())
}

/// Where the first NUL character in `v` is — in a string value or an object key — as a
/// field path (`items[3].payload.text`, `""` for the root), or `None` when there is none.
/// PostgreSQL cannot store a NUL in text or JSON, so every backend refuses one alike.
pub fn nul_at(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().enumerate().any(|(i, v)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(v, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(o) => o.iter().any(|(k, v)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.replace('\0', "\\u0000"));
                let found = k.contains('\0') || walk(v, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(v, &mut path).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::nul_at;
    use serde_json::json;

    #[test]
    fn nul_is_found_where_it_is() {
        assert_eq!(nul_at(&json!({"a": [1, "x"], "b": {"c": "ok"}})), None);
        assert_eq!(
            nul_at(&json!({"items": [{"payload": {}}, {"payload": {"text": "a\0b"}}]})).as_deref(),
            Some("items[1].payload.text")
        );
        assert_eq!(
            nul_at(&json!({"rules": [{"k\0": 1}]})).as_deref(),
            Some("rules[0].k\\u0000")
        );
        assert_eq!(nul_at(&json!("\0")).as_deref(), Some(""));
    }
}
