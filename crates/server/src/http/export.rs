//! Exports (a streamed body, one page of items per chunk) and imports (a file of rows,
//! checked whole before anything is written). `app::export` and `app::import` do the work.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use flywheel_store::ExportFilter;
use futures_util::TryStreamExt;

use super::dto::ErrorBody;
use crate::app::export::{self, Format};
use crate::app::import::{self, ImportFormat, ImportReport, LabelsAs};
use crate::app::{AppError, AppState};
use crate::auth::Caller;
use crate::error::ApiError;

/// Largest file an import takes (the whole file is checked before anything is written).
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

/// The project's items, one row per item (gold items left out) in the order they arrived:
/// its payload and attributes, prediction, decision, resolution (label, source, method,
/// confidence, reviewers) and every answer (reviewer, stage, label, times). Streamed: the
/// server holds one page of items at a time.
#[utoipa::path(get, path = "/v1/projects/{project}/export",
    params(("project" = String, Path),
        ("format" = String, Query, description = "jsonl, csv or label-studio"),
        ("since" = Option<String>, Query, description = "items created at or after this time (RFC 3339 or epoch ms)"),
        ("until" = Option<String>, Query, description = "items created before this time"),
        ("source" = Option<String>, Query, description = "items resolved by auto, human or adjudicated; none: not resolved yet")),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, description = "JSON lines, CSV with a header row, or a JSON array of Label Studio tasks", content((serde_json::Value = "application/x-ndjson"), (String = "text/csv"), (Vec<serde_json::Value> = "application/json"))),
        (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn export(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let bad = |e: flywheel_core::ValidationError| ApiError::bad_request(e.field, e.message);
    let format = Format::parse(params.get("format").map_or("", String::as_str)).map_err(bad)?;
    let time = |name: &str| {
        params
            .get(name)
            .map(|v| export::parse_time(name, v))
            .transpose()
            .map_err(bad)
    };
    let filter = ExportFilter {
        since: time("since")?,
        until: time("until")?,
        source: params
            .get("source")
            .map(|v| export::parse_source(v))
            .transpose()
            .map_err(bad)?,
    };
    let body = export::stream(s.store.clone(), p.id, format, export::Shape::of(&s, &p), filter)
        .map_ok(Bytes::from)
        .map_err(|e: AppError| {
            tracing::error!(error = %e, "an export stopped");
            e
        });
    let name = format!(
        "attachment; filename=\"{}.{}\"",
        p.name,
        match format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::LabelStudio => "json",
        }
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Imports a file: a Label Studio export (`format=label-studio`: its JSON array of tasks,
/// or one task per line) or Flywheel's JSON lines export (`format=jsonl`). Tasks become
/// items (decided by the policy; an external id already stored is left as it is);
/// annotations become the items' human labels (`as=history`, the default) or gold items
/// (`as=gold`). A bad row refuses the whole file with a 422 naming its line and field, and
/// nothing is written; so does a row over the per-item limits (a 413 past 1 MiB of JSON,
/// a 422 past 32 levels or 100,000 values: `line 7: payload`).
#[utoipa::path(post, path = "/v1/projects/{project}/import",
    params(("project" = String, Path),
        ("format" = String, Query, description = "label-studio or jsonl"),
        ("as" = Option<String>, Query, description = "history (default) or gold")),
    request_body(content = String, description = "the file", content_type = "application/json"),
    responses((status = 404, body = ErrorBody, description = "no such project, or not one the caller may see"), (status = 200, body = ImportReport), (status = 413, body = ErrorBody, description = "a row has more than 1 MiB of JSON (`field`: `line N: member`)"), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn import(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let p = s.project(&project).await?;
    caller.require_service(&p)?;
    let bad = |e: flywheel_core::ValidationError| ApiError::bad_request(e.field, e.message);
    let format = ImportFormat::parse(params.get("format").map_or("", String::as_str)).map_err(bad)?;
    let labels_as = LabelsAs::parse(params.get("as").map_or("history", String::as_str)).map_err(bad)?;
    // Each row is held to the per-item limits before any row is parsed.
    super::limits::check_rows(&body, super::limits::ITEM_LIMITS)?;
    let report = import::import(&s, &p, &caller.actor(), format, labels_as, &body).await?;
    Ok(Json(report))
}
