//! Where reviewer time goes: a window's answers read from the store and summed up by
//! `flywheel_core::workload` (every figure and finding is computed there). Reads only; the
//! caller checks who may read.

use flywheel_core::ValidationError;
use flywheel_core::workload::{self, Report};

use super::export::parse_time;
use super::{AppError, AppState, ProjectRuntime};

/// The window when none is given: the last day.
pub const DEFAULT_WINDOW_MS: i64 = 86_400_000;
/// The longest window: every answer in it is read, so its cost follows the answers.
pub const MAX_WINDOW_MS: i64 = 31 * 86_400_000;

/// A window `[since, until)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: i64,
    pub until: i64,
}

impl Window {
    /// `since` and `until` as a request gives them (RFC 3339 or epoch ms, each optional):
    /// `until` defaults to `now`, `since` to a day before `until`. `since` must come before
    /// `until`, at most 31 days before.
    pub fn parse(now: i64, since: Option<&str>, until: Option<&str>) -> Result<Window, ValidationError> {
        let until = until.map(|v| parse_time("until", v)).transpose()?.unwrap_or(now);
        let since = since
            .map(|v| parse_time("since", v))
            .transpose()?
            .unwrap_or(until.saturating_sub(DEFAULT_WINDOW_MS));
        if since >= until {
            return Err(ValidationError::new("since", "since must be before until"));
        }
        if until - since > MAX_WINDOW_MS {
            return Err(ValidationError::new(
                "since",
                "the window is at most 31 days (since to until)",
            ));
        }
        Ok(Window { since, until })
    }
}

/// Project `p`'s workload over `w`.
#[tracing::instrument(level = "debug", skip(s, p), fields(project = %p.name))]
pub async fn workload(s: &AppState, p: &ProjectRuntime, w: Window) -> Result<Report, AppError> {
    let answers = s.store.workload_answers(p.id, w.since, w.until).await?;
    Ok(workload::report(&answers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_default_to_the_last_day_and_are_checked() {
        let now = 100 * DEFAULT_WINDOW_MS;
        assert_eq!(
            Window::parse(now, None, None).unwrap(),
            Window {
                since: now - DEFAULT_WINDOW_MS,
                until: now
            }
        );
        let w = Window::parse(now, Some("2026-01-01T00:00:00Z"), Some("1767229200000")).unwrap();
        assert_eq!((w.since, w.until), (1_767_225_600_000, 1_767_229_200_000));
        let recent = (now - 1000).to_string();
        assert_eq!(Window::parse(now, Some(&recent), None).unwrap().since, now - 1000);
        assert_eq!(Window::parse(now, Some("yesterday"), None).unwrap_err().field, "since");
        assert_eq!(Window::parse(now, None, Some("soon")).unwrap_err().field, "until");
        assert_eq!(Window::parse(now, Some("5"), Some("5")).unwrap_err().field, "since");
        assert_eq!(Window::parse(now, Some("0"), None).unwrap_err().field, "since");
    }
}
