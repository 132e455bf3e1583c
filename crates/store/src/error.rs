//! The store's errors, in domain terms. The server maps each to one HTTP status.

use flywheel_core::ValidationError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The thing named does not exist (`what` says which).
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request clashes with the stored state: a name taken, a lease lost.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The caller may not do this now (a reviewer held for low gold accuracy).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The input does not fit what is stored (a label the project does not have).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The database failed. Nothing of the failed operation was written.
    #[error("database error: {0}")]
    Backend(String),
    /// The disk (or the database's quota) is full: nothing was written, and the same
    /// request may succeed once space is freed (SQLite `SQLITE_FULL`, PostgreSQL SQLSTATE
    /// 53100 `disk_full`).
    #[error("storage full: {0}")]
    StorageFull(String),
}

impl StoreError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn held(reviewer: &str, reason: Option<&str>) -> Self {
        Self::Forbidden {
            code: "reviewer_held",
            message: format!(
                "reviewer '{reviewer}' is held in this project{}; an admin can release them",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
        }
    }

    pub fn lease_lost() -> Self {
        Self::conflict(
            "lease_lost",
            "this lease is no longer held: it expired, was answered, the task was closed, or the reviewer's grant was withdrawn or held",
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            // The writer's other jobs in this group commit are refused as full too.
            STORAGE_FULL.with(|f| f.set(true));
            StoreError::StorageFull(e.to_string())
        } else {
            StoreError::Backend(e.to_string())
        }
    }
}

thread_local! {
    /// Set on the thread that saw `SQLITE_FULL` (the SQLite writer's), read and cleared by
    /// the writer when a group commit fails, so that every job in it hears the cause.
    static STORAGE_FULL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread saw `SQLITE_FULL` since the last call (and clears it).
pub(crate) fn take_storage_full() -> bool {
    STORAGE_FULL.with(|f| f.replace(false))
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("stored JSON: {e}"))
    }
}
