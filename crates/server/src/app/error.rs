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
