//! Transactions and their errors: how a PostgreSQL error becomes a [`StoreError`] (by its
//! SQLSTATE, [`classify`]) or a lost race worth retrying ([`TxError::Retry`]), and the
//! `transaction!` and `autocommit!` macros that run an operation and retry it up to
//! [`MAX_ATTEMPTS`] times. It owns no operation of its own.

use crate::StoreError;

/// Runs `$body` (which uses `$c: &mut PgConnection`) outside a transaction — for an
/// operation that is one statement, atomic on its own — retrying lost races, on `$conn`
/// (an `Option<PoolConnection>`: taken from `$pool` when `None`, dropped after an error so
/// a broken connection is not reused). A macro, not a function taking an async closure:
/// the futures of such closures cannot yet be shown to be `Send`.
macro_rules! autocommit {
    ($pool:expr, $conn:expr, |$c:ident| $body:expr) => {{
        let conn: &mut Option<sqlx::pool::PoolConnection<sqlx::Postgres>> = $conn;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let $c: &mut sqlx::PgConnection = match conn {
                Some(c) => c,
                None => conn.insert($pool.acquire().await?),
            };
            let outcome: TxResult<_> = $body;
            if outcome.is_err() {
                *conn = None;
            }
            match outcome {
                Ok(v) => break Ok(v),
                Err(TxError::Retry(e)) if attempt >= MAX_ATTEMPTS => break Err(StoreError::from(e)),
                Err(TxError::Retry(_)) => continue,
                Err(TxError::Store(e)) => break Err(e),
            }
        }
    }};
}

/// Retries of a transaction that lost a race (deadlock, serialization failure, a unique
/// key taken by a concurrent insert): each retry re-reads the state.
pub(super) const MAX_ATTEMPTS: usize = 5;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) => classify(d.code().as_deref(), d.message()),
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

/// A PostgreSQL error by its SQLSTATE: a full disk (53100) is `StorageFull`; text the
/// database cannot hold (a NUL in text 22021, `\u0000` in jsonb 22P05 — the edge refuses
/// these first, any that gets past it is still the caller's input) is `Invalid`; the rest
/// `Backend`.
pub(crate) fn classify(code: Option<&str>, message: &str) -> StoreError {
    match code {
        Some("53100") => StoreError::StorageFull(message.to_string()),
        Some("22021" | "22P05") => StoreError::Invalid(flywheel_core::ValidationError::new(
            "",
            format!("a text value cannot be stored: {message}"),
        )),
        Some(code) => StoreError::Backend(format!("error returned from database: {message} ({code})")),
        None => StoreError::Backend(format!("error returned from database: {message}")),
    }
}

pub(super) fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40001" | "40P01" | "23505")),
        _ => false,
    }
}

/// A store error, or a lost race worth retrying.
pub(crate) enum TxError {
    Store(StoreError),
    Retry(sqlx::Error),
}

impl From<sqlx::Error> for TxError {
    fn from(e: sqlx::Error) -> Self {
        if retryable(&e) {
            TxError::Retry(e)
        } else {
            TxError::Store(e.into())
        }
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl From<serde_json::Error> for TxError {
    fn from(e: serde_json::Error) -> Self {
        TxError::Store(e.into())
    }
}

impl From<flywheel_core::ValidationError> for TxError {
    fn from(e: flywheel_core::ValidationError) -> Self {
        TxError::Store(e.into())
    }
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(s) => s,
            TxError::Retry(e) => e.into(),
        }
    }
}

pub(crate) type TxResult<T> = std::result::Result<T, TxError>;

/// Runs `$body` (which uses `$tx`) in a transaction, retrying lost races.
macro_rules! transaction {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut $tx = $self.pool.begin().await?;
            let result: TxResult<_> = async { $body }.await;
            match result {
                Ok(v) => match $tx.commit().await {
                    Ok(()) => break Ok(v),
                    Err(e) if retryable(&e) && attempt < MAX_ATTEMPTS => continue,
                    Err(e) => break Err(StoreError::from(e)),
                },
                // Roll back now: a dropped transaction only queues its rollback, and the
                // row locks it holds would make SKIP LOCKED claims pass over those rows.
                Err(TxError::Retry(e)) => {
                    let _ = $tx.rollback().await;
                    if attempt >= MAX_ATTEMPTS {
                        break Err(StoreError::from(e));
                    }
                }
                Err(TxError::Store(e)) => {
                    let _ = $tx.rollback().await;
                    break Err(e);
                }
            }
        }
    }};
}

impl TxError {
    pub(super) fn into_store(self) -> StoreError {
        match self {
            TxError::Store(e) => e,
            TxError::Retry(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_what_the_caller_can_do() {
        assert!(matches!(
            classify(Some("53100"), "could not extend file: No space left on device"),
            StoreError::StorageFull(_)
        ));
        assert!(matches!(
            classify(Some("22021"), "invalid byte sequence for encoding \"UTF8\": 0x00"),
            StoreError::Invalid(_)
        ));
        assert!(matches!(
            classify(Some("22P05"), "unsupported Unicode escape sequence"),
            StoreError::Invalid(_)
        ));
        assert!(matches!(
            classify(Some("42P01"), "no such table"),
            StoreError::Backend(_)
        ));
        assert!(matches!(classify(None, "?"), StoreError::Backend(_)));
    }
}
