//! The dashboard's "where reviewer time goes" panel: the workload report (from
//! `app::workload`, the use case the JSON API calls) for a chosen window, as bars sorted by
//! time share, with core's findings in words. Bars are SVG rectangles (the CSP refuses
//! inline styles), their widths computed here; every text is escaped by askama.

use askama::Template;
use flywheel_core::workload::{Dimension, Report};

use crate::app::workload::{self, Window};
use crate::app::{AppError, AppState, ProjectRuntime};
use crate::http::ts;

/// The windows the panel offers: `?window=` value, link text, length.
pub const WINDOWS: [(&str, &str, i64); 3] = [
    ("1h", "1 h", 3_600_000),
    ("24h", "24 h", 86_400_000),
    ("7d", "7 d", 7 * 86_400_000),
];
/// Width of a bar at a time share of 1.
const BAR_WIDTH: f64 = 240.0;

pub struct BarRow {
    pub key: String,
    /// The bar's width in pixels.
    pub bar: String,
    pub share: String,
    pub answers: u64,
    pub time: String,
    pub median: String,
    pub p90: String,
    pub disagreement: String,
    pub escalation: String,
}

pub struct DimensionBars {
    /// The wire name (`failure_category`, …), used in element ids.
    pub name: &'static str,
    pub title: &'static str,
    pub rows: Vec<BarRow>,
}

pub struct WindowLink {
    pub value: &'static str,
    pub text: &'static str,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "workload.html")]
pub struct WorkloadPanel {
    pub project: String,
    pub windows: Vec<WindowLink>,
    pub since: String,
    pub until: String,
    pub answers: u64,
    pub time: String,
    pub findings: Vec<String>,
    pub dimensions: Vec<DimensionBars>,
}

fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.1} s"),
        s if s < 7200.0 => format!("{:.1} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The panel for window `chosen` (a `WINDOWS` value; anything else is the last 24 h),
/// ending at `now`.
pub async fn panel(s: &AppState, p: &ProjectRuntime, chosen: Option<&str>) -> Result<WorkloadPanel, AppError> {
    let (value, _, length) = WINDOWS
        .iter()
        .find(|(v, _, _)| Some(*v) == chosen)
        .copied()
        .unwrap_or(WINDOWS[1]);
    let now = s.now();
    let w = Window {
        since: now - length,
        until: now,
    };
    let report = workload::workload(s, p, w).await?;
    Ok(render(&p.name, value, w, &report))
}

fn render(project: &str, chosen: &str, w: Window, r: &Report) -> WorkloadPanel {
    let title = |d: Dimension| match d {
        Dimension::FailureCategory => "By failure category",
        Dimension::Label => "By final label",
        Dimension::Queue => "By queue",
        Dimension::Tier => "By tier",
        Dimension::Reviewer => "By reviewer",
    };
    let dimensions = r
        .dimensions
        .iter()
        .map(|(d, rows)| DimensionBars {
            name: d.name(),
            title: title(*d),
            rows: rows
                .iter()
                .map(|x| BarRow {
                    key: x.key.clone().unwrap_or_else(|| match d {
                        Dimension::FailureCategory => "(none)".into(),
                        _ => "(unresolved)".into(),
                    }),
                    bar: format!("{:.1}", (x.time_share * BAR_WIDTH).max(1.0)),
                    share: percent(x.time_share),
                    answers: x.answers,
                    time: duration(x.seconds),
                    median: duration(x.median_seconds),
                    p90: duration(x.p90_seconds),
                    disagreement: percent(x.disagreement_rate),
                    escalation: percent(x.escalation_rate),
                })
                .collect(),
        })
        .collect();
    WorkloadPanel {
        project: project.into(),
        windows: WINDOWS
            .iter()
            .map(|(value, text, _)| WindowLink {
                value,
                text,
                chosen: *value == chosen,
            })
            .collect(),
        since: ts(w.since),
        until: ts(w.until),
        answers: r.answers,
        time: duration(r.seconds),
        findings: r.findings.iter().map(|f| f.text.clone()).collect(),
        dimensions,
    }
}
