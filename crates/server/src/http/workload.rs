//! `GET /v1/projects/{project}/workload`: where reviewer time goes. `app::workload` reads
//! the window's answers and core computes the figures; this maps them to the wire.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};

use super::dto::{ErrorBody, WorkloadOut};
use crate::app::AppState;
use crate::app::workload::{self, Window};
use crate::auth::Caller;
use crate::error::ApiError;

/// Where reviewer time went in a window: every answer on the project's tasks (gold left
/// out) answered in `[since, until)`, grouped by failure category, final label, queue,
/// tier and reviewer — answers, time on task (answered at − claimed at) summed, its share,
/// median and 90th percentile, the share of answers on tasks whose answers disagreed and
/// of answers that escalated — and what stands out within a tier, in words. The window
/// defaults to the last 24 hours and is at most 31 days. Admin or a service key granted
/// the project (or the console's admin session).
#[utoipa::path(get, path = "/v1/projects/{project}/workload",
    params(("project" = String, Path),
        ("since" = Option<String>, Query, description = "answers at or after this time (RFC 3339 or epoch ms); default: a day before until"),
        ("until" = Option<String>, Query, description = "answers before this time (RFC 3339 or epoch ms); default: now")),
    responses((status = 200, body = WorkloadOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn workload(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<WorkloadOut>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let w = Window::parse(
        s.now(),
        params.get("since").map(String::as_str),
        params.get("until").map(String::as_str),
    )
    .map_err(|e| ApiError::bad_request(e.field, e.message))?;
    let report = workload::workload(&s, &p, w).await?;
    Ok(Json(WorkloadOut::new(w, report)))
}
