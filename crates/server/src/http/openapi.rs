//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types.
//! It is the contract schemathesis holds the server to (`.ci/schemathesis.sh`): every
//! constraint the server enforces is stated on the wire types, and every status an
//! operation can answer is listed — an operation's own in its `#[utoipa::path]`, the ones
//! every operation of a kind shares (401 without a key, 400/413/415/422 for a body, …)
//! added here by [`CommonResponses`], so that a new route cannot forget them.

use axum::Json;
use serde_json::json;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

use super::{accounts, admin, export, feeds, items, model, quality, webhooks, work, workload};

#[derive(OpenApi)]
#[openapi(
    info(title = "Flywheel", description = "Human-in-the-loop decisions: a policy routes each prediction to auto or to human review; human judgments flow back as labels. Every error is `{\"error\": {\"code\", \"message\", \"field\"?}}`. No string of a request — a value or an object key, at any depth of a payload — may hold a NUL character (U+0000): 422 naming the field. A whole number written with a fraction (`218.0`) is read as that whole number."),
    paths(
        admin::healthz, admin::create_project, admin::get_project, admin::put_policy, admin::policy_versions,
        admin::policy_diff, admin::rollback_policy, admin::create_reviewer, admin::create_key,
        items::submit, items::search, items::detail, items::override_item, export::export, export::import, work::claim, work::heartbeat, work::review, work::amend,
        feeds::labels, feeds::project_events, feeds::all_events, feeds::stats, feeds::queues, workload::workload,
        quality::add_gold, quality::reviewers, quality::release, quality::agreement,
        model::get, model::train, model::retrain, model::predict, model::backtest, model::monitors,
        accounts::me, accounts::projects, accounts::accounts, accounts::update_reviewer, accounts::add_key,
        accounts::hold, accounts::keys, accounts::revoke, accounts::check_policy,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete, webhooks::rotate,
        webhooks::replay, webhooks::deliveries,
    ),
    modifiers(&Bearer, &OperationIds, &CommonResponses, &Links)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API key"))
                    .build(),
            ),
        );
    }
}

/// The operations of a path item, with their methods.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
}

/// Every operation's id is its method and path (`get_projects_project_model`): unique,
/// where the handlers' names are not (`model::get`, `webhooks::get`), and stable, so the
/// links below can name their targets.
struct OperationIds;

fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split('/')
        .filter(|w| !w.is_empty() && *w != "v1")
        .map(|w| w.trim_start_matches('{').trim_end_matches('}'))
        .collect();
    format!("{method}_{}", words.join("_")).replace(['-', '.'], "_")
}

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                op.operation_id = Some(operation_id(method, path));
            }
        }
    }
}

/// Whether an operation never answers 403: a read that any key may make once it sees the
/// project (or that needs no project) — `AnyKey`, `Member` or `Public` in the role matrix
/// (`http::access::MATRIX`). Every other operation with a key does — a role that may not
/// call it, or a browser session's unsafe request without its CSRF token.
fn never_forbidden(method: &str, path: &str) -> bool {
    use super::access::{Access, access};
    method == "get"
        && matches!(
            access(method, path),
            Some(Access::AnyKey | Access::Member | Access::Public)
        )
}
/// The statuses every operation of a kind answers, added where the operation does not
/// describe them itself:
/// - with a key (`security`): 401 (no key, or an unknown or revoked one), 403 (see
///   [`never_forbidden`]), 429 `rate_limited` with `Retry-After`;
/// - with path or query parameters: 400 (a parameter that does not parse: a number
///   expected, bytes that are not UTF-8) and 422 (a NUL in a parameter); with a path
///   parameter also 404 (nothing by that name, or nothing the caller may see);
/// - with a JSON body: 400 `malformed_json`, 413 (the body, or one item, too large), 415
///   (not `application/json`), 422 (a field that does not fit, named in `field`);
/// - every write: 503 `storage_full` with `Retry-After`.
struct CommonResponses;

fn error_response(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut r = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if retry_after {
        r = r.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(utoipa::openapi::schema::Object::with_type(Type::Integer)))
                .description(Some("seconds to wait before trying again"))
                .build(),
        );
    }
    RefOr::T(r.build())
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params
                    .iter()
                    .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path)));
                let in_query = params
                    .iter()
                    .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query)));
                let body = op.request_body.is_some();
                let mut common: Vec<(&str, &str, bool)> = Vec::new();
                if secured {
                    common.push((
                        "401",
                        "`unauthorized`: no `Authorization: Bearer <key>`, or an unknown or revoked key",
                        false,
                    ));
                    if !never_forbidden(method, path) {
                        common.push((
                            "403",
                            "`forbidden`: the caller's role may not do this (or a browser session's unsafe request without its CSRF token)",
                            false,
                        ));
                    }
                }
                if secured {
                    common.push((
                        "429",
                        "`rate_limited`: this key has made more requests than its role's rate limit allows (`app::ratelimit`)",
                        true,
                    ));
                }
                if in_path {
                    common.push((
                        "404",
                        "`not_found`: no such resource, or not one the caller may see",
                        false,
                    ));
                }
                if body {
                    common.push(("400", "`malformed_json`: the body is not JSON", false));
                    common.push((
                        "413",
                        "`payload_too_large`: the body (or one item of it) is too large",
                        false,
                    ));
                    common.push((
                        "415",
                        "`unsupported_media_type`: send the body as application/json",
                        false,
                    ));
                }
                if in_path || in_query {
                    common.push((
                        "400",
                        "`bad_request`: a parameter that does not parse (`field` names it)",
                        false,
                    ));
                }
                if body || in_path || in_query {
                    common.push(("422", "`invalid`: a value that does not fit (`field` names it)", false));
                }
                if method != "get" {
                    common.push((
                        "503",
                        "`storage_full`: the database's disk is full; nothing was written",
                        true,
                    ));
                }
                for (status, description, retry_after) in common {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description, retry_after));
                }
            }
        }
    }
}

/// OpenAPI links from the answers that create a resource to the operations that read or
/// act on it, so stateful tests (schemathesis) follow them into the deep routes along the
/// product's flows: a project to its model, items, stats, gold, webhooks, …; submitted
/// items to an item's detail, the export and a reviewer granted the project; a new
/// reviewer (with the key it was given) to a claim; a claimed task to its answer, its
/// answer-and-next, its heartbeat, its item's detail and an override; an answer to its
/// amendment and to the next task it leased; a reviewer's key to its revocation and the
/// reviewer's deactivation; a hold to its release; a new webhook to its operations.
struct Links;

/// A link: the operation answering, its status, the operation linked to, that
/// operation's parameters as runtime expressions (path parameters by name, others
/// qualified: `header.Authorization`), and the request body it sends, if any: as it is
/// (`x-schemathesis: merge_body = false`; an answer holds exactly one of `label`,
/// `labels`, `escalate` or `skip`, so a generated member beside the link's would only
/// earn a 422), or merged into a generated one (a reviewer's unique name).
struct Link {
    from: &'static str,
    status: &'static str,
    to: String,
    name: String,
    params: Vec<(&'static str, serde_json::Value)>,
    body: Option<serde_json::Value>,
    merge: bool,
}

fn link(from: &'static str, status: &'static str, to: &str, params: &[(&'static str, &str)]) -> Link {
    Link {
        from,
        status,
        to: to.to_string(),
        name: to.to_string(),
        params: params.iter().map(|(n, e)| (*n, json!(e))).collect(),
        body: None,
        merge: false,
    }
}

impl Link {
    /// A second link between the same two operations needs its own name.
    fn named(mut self, name: &str) -> Link {
        self.name = name.to_string();
        self
    }

    fn body(mut self, body: serde_json::Value) -> Link {
        self.body = Some(body);
        self
    }

    fn fields(mut self, fields: serde_json::Value) -> Link {
        self.body = Some(fields);
        self.merge = true;
        self
    }
}

/// The links along the flows a project's work takes (see [`Links`]).
fn flow_links() -> Vec<Link> {
    let same_project = ("project", "$request.path.project");
    // An answer to a claimed task (`$response.body` a `ClaimOut`, or a `ReviewOut`'s `next`
    // with `at = "/next"`): its lease, the task's first label, and an idempotency key
    // made from the lease so that each lease is answered once.
    let answer = |at: &str| {
        json!({
            "lease_id": format!("$response.body#{at}/lease_id"),
            "review_id": format!("st-{{$response.body#{at}/lease_id}}"),
            "label": format!("$response.body#{at}/labels/0"),
        })
    };
    let mut answer_and_next = answer("");
    answer_and_next["next"] = json!({ "project": "$request.path.project" });
    vec![
        // Items: their detail, the export, and a reviewer granted their project.
        link(
            "post_projects_project_items",
            "200",
            "get_projects_project_items_external_id",
            &[same_project, ("external_id", "$response.body#/decisions/0/external_id")],
        ),
        link(
            "post_projects_project_items",
            "200",
            "get_projects_project_export",
            &[same_project],
        ),
        link("post_projects_project_items", "200", "post_reviewers", &[])
            .fields(json!({ "tiers": [1], "projects": ["$request.path.project"] })),
        // A reviewer: changed, given a key, put on hold, and claiming with the key they got.
        link(
            "post_reviewers",
            "201",
            "patch_reviewers_name",
            &[("name", "$response.body#/name")],
        ),
        link(
            "post_reviewers",
            "201",
            "post_reviewers_name_keys",
            &[("name", "$response.body#/name")],
        ),
        link(
            "post_reviewers",
            "201",
            "post_projects_project_reviewers_name_hold",
            &[
                ("project", "$response.body#/projects/0"),
                ("name", "$response.body#/name"),
            ],
        )
        .body(json!({ "reason": "a hold to release" })),
        link(
            "post_reviewers",
            "201",
            "post_projects_project_claim",
            &[
                ("project", "$response.body#/projects/0"),
                ("header.Authorization", "Bearer {$response.body#/api_key}"),
            ],
        ),
        // A claimed task: answered, answered with the next one leased, kept alive; its
        // item read and overridden by the admin.
        link(
            "post_projects_project_claim",
            "200",
            "post_tasks_task_id_reviews",
            &[("task_id", "$response.body#/task_id")],
        )
        .body(answer("")),
        link(
            "post_projects_project_claim",
            "200",
            "post_tasks_task_id_reviews",
            &[("task_id", "$response.body#/task_id")],
        )
        .named("answer_and_next")
        .body(answer_and_next),
        link(
            "post_projects_project_claim",
            "200",
            "post_tasks_task_id_heartbeat",
            &[("task_id", "$response.body#/task_id")],
        )
        .body(json!({ "lease_id": "$response.body#/lease_id" })),
        link(
            "post_projects_project_claim",
            "200",
            "get_projects_project_items_external_id",
            &[same_project, ("external_id", "$response.body#/item/external_id")],
        ),
        link(
            "post_projects_project_claim",
            "200",
            "post_projects_project_items_external_id_override",
            &[same_project, ("external_id", "$response.body#/item/external_id")],
        )
        .body(json!({ "action": "resolve", "label": "$response.body#/labels/0", "reason": "decided by the admin" })),
        // An answer: amended (to the label it has: `unchanged`), and the task it leased next.
        link(
            "post_tasks_task_id_reviews",
            "200",
            "post_reviews_review_id_amend",
            &[("review_id", "$response.body#/review_id")],
        )
        .body(json!({ "amend_id": "st-{$response.body#/review_id}", "label": "$request.body#/label" })),
        link(
            "post_tasks_task_id_reviews",
            "200",
            "post_tasks_task_id_reviews",
            &[("task_id", "$response.body#/next/task_id")],
        )
        .named("next")
        .body(answer("/next")),
        // A reviewer's key: revoked; the reviewer deactivated.
        link(
            "post_keys",
            "201",
            "post_keys_hash_revoke",
            &[("hash", "$response.body#/hash")],
        ),
        link(
            "post_reviewers_name_keys",
            "201",
            "post_keys_hash_revoke",
            &[("hash", "$response.body#/hash")],
        ),
        link(
            "post_reviewers_name_keys",
            "201",
            "patch_reviewers_name",
            &[("name", "$request.path.name")],
        )
        .named("deactivate")
        .body(json!({ "active": false })),
        // Gold added: the project's reviewers and a release; a hold released.
        link(
            "post_projects_project_gold",
            "200",
            "get_projects_project_reviewers",
            &[same_project],
        ),
        link(
            "get_projects_project_reviewers",
            "200",
            "post_projects_project_reviewers_name_release",
            &[same_project, ("name", "$response.body#/reviewers/0/name")],
        ),
        link(
            "post_projects_project_reviewers_name_hold",
            "204",
            "post_projects_project_reviewers_name_release",
            &[same_project, ("name", "$request.path.name")],
        ),
    ]
}

/// The links from a project (`$response.body#{at}` a `ProjectCreated`, or the first
/// `ProjectSummary` of a list with `at = "/0"`) to every operation on one project, some
/// with the body that makes them succeed: gold labelled with the project's first label,
/// a webhook to a local address (`.ci/schemathesis.sh` allows private ones).
fn project_links(from: &'static str, status: &'static str, at: &str, per_project: &[String]) -> Vec<Link> {
    let project = format!("$response.body#{at}/name");
    per_project
        .iter()
        .map(|to| {
            let l = Link {
                from,
                status,
                to: to.clone(),
                name: to.clone(),
                params: vec![("project", json!(project))],
                body: None,
                merge: false,
            };
            match to.as_str() {
                "post_projects_project_gold" => l.body(json!({ "items": [{
                    "external_id": "st-gold-1",
                    "payload": { "text": "a known answer" },
                    "label": format!("$response.body#{at}/labels/0"),
                }]})),
                "post_projects_project_webhooks" => {
                    l.body(json!({ "url": "http://127.0.0.1:9/flywheel", "events": ["*"] }))
                }
                _ => l,
            }
        })
        .collect()
}

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // Every operation on one project (its only path parameter): from a new project,
        // and from the list of projects.
        let per_project: Vec<String> = openapi
            .paths
            .paths
            .iter()
            .filter(|(path, _)| path.matches('{').count() == 1 && path.starts_with("/v1/projects/{project}"))
            .flat_map(|(path, item)| {
                [
                    item.get.is_some().then_some("get"),
                    item.put.is_some().then_some("put"),
                    item.post.is_some().then_some("post"),
                    item.delete.is_some().then_some("delete"),
                    item.patch.is_some().then_some("patch"),
                ]
                .into_iter()
                .flatten()
                .map(|method| operation_id(method, path))
            })
            .collect();
        let mut links = project_links("post_projects", "201", "", &per_project);
        links.extend(project_links("get_projects", "200", "/0", &per_project));
        links.extend(flow_links());
        let webhook = [("project", "$request.path.project"), ("id", "$response.body#/id")];
        for to in [
            "get_projects_project_webhooks_id",
            "patch_projects_project_webhooks_id",
            "post_projects_project_webhooks_id_rotate",
            "get_projects_project_webhooks_id_deliveries",
            "delete_projects_project_webhooks_id",
        ] {
            links.push(link("post_projects_project_webhooks", "201", to, &webhook));
        }
        links.push(
            link(
                "post_projects_project_webhooks",
                "201",
                "post_projects_project_webhooks_id_replay",
                &webhook,
            )
            .body(json!({ "from_seq": 1 })),
        );
        for l in links {
            let Some(op) = openapi
                .paths
                .paths
                .values_mut()
                .flat_map(operations)
                .map(|(_, op)| op)
                .find(|op| op.operation_id.as_deref() == Some(l.from))
            else {
                continue;
            };
            if let Some(RefOr::T(resp)) = op.responses.responses.get_mut(l.status) {
                let mut builder = l
                    .params
                    .into_iter()
                    .fold(LinkBuilder::new().operation_id(l.to), |b, (name, value)| {
                        b.parameter(name, value)
                    });
                let replaces_body = l.body.is_some() && !l.merge;
                if let Some(body) = l.body {
                    builder = builder.request_body(Some(body));
                }
                if replaces_body {
                    builder = builder.extensions(Some(
                        ExtensionsBuilder::new()
                            .add("x-schemathesis", json!({ "merge_body": false }))
                            .build(),
                    ));
                }
                resp.links.insert(l.name, RefOr::T(builder.build()));
            }
        }
    }
}

/// Characters no name or label may hold: controls (C0, DEL, C1) and the invisible ones of
/// the Basic Multilingual Plane that `flywheel_core::name` refuses.
const NOT_SHOWN: &str = r"\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb";

/// What `str::trim` takes off both ends (Unicode `White_Space`), spelt out: a pattern's
/// `\s` differs from it between regex engines (U+0085, U+FEFF).
const TRIMMED: &str = r"\t\n\x0b\x0c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Constraints the server enforces, stated on the schemas of the document: `(schema,
/// JSON pointer within it, members to add)`. They sit here rather than in `#[schema(…)]`
/// attributes because most are on array items or need a pattern built from
/// [`NOT_SHOWN`]; a target that no longer exists fails `every_constraint_has_its_target`.
fn schema_constraints() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    let queue = "^[a-z0-9_-]{1,64}$";
    let label = format!("^[^\\s{NOT_SHOWN}]([^{NOT_SHOWN}]{{0,62}}[^\\s{NOT_SHOWN}])?$");
    // Not only spaces and dots: one character that is neither.
    let other = format!("{NOT_SHOWN}/\\\\?#%");
    let reviewer = format!("^[^{other}]*[^{other}\\s.][^{other}]*$");
    // A key's name is trimmed first (blank is no name), then holds up to 64 characters,
    // none a control or invisible one (`app::accounts::key_name`): a `maxLength` would
    // count what trimming takes off.
    let key_name = json!({"pattern": format!("^[{TRIMMED}]*[^{NOT_SHOWN}]{{0,64}}[{TRIMMED}]*$")});
    let tiers = json!({"minItems": 1});
    let tier = json!({"minimum": 1, "maximum": flywheel_core::policy::MAX_TIER});
    let batch = json!({"minItems": 1, "maxItems": super::MAX_BATCH});
    let external_id = json!({"minLength": 1, "maxLength": 256});
    vec![
        ("CreateProject", "/properties/name", json!({"pattern": queue})),
        (
            "CreateProject",
            "/properties/labels",
            json!({"minItems": 2, "maxItems": 100, "uniqueItems": true}),
        ),
        (
            "CreateProject",
            "/properties/labels/items",
            json!({"minLength": 1, "maxLength": 64, "pattern": label}),
        ),
        (
            "CreateProject",
            "/properties/policy",
            json!({"example": {"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q"}]}}),
        ),
        (
            "CreateReviewer",
            "/properties/name",
            json!({"minLength": 1, "maxLength": 64, "pattern": reviewer}),
        ),
        ("CreateReviewer", "/properties/tiers", tiers.clone()),
        ("CreateReviewer", "/properties/tiers/items", tier.clone()),
        (
            "CreateReviewer",
            "/properties/password",
            json!({"minLength": 8, "maxLength": 256}),
        ),
        ("UpdateReviewer", "/properties/tiers", tiers),
        ("UpdateReviewer", "/properties/tiers/items", tier),
        (
            "UpdateReviewer",
            "/properties/password",
            json!({"pattern": "^(|[\\s\\S]{8,256})$"}),
        ),
        ("CreateKey", "/properties/scope", json!({"enum": ["service"]})),
        ("CreateKey", "/properties/name", key_name.clone()),
        ("AddKeyIn", "/properties/name", key_name),
        ("CreateKey", "/properties/projects", json!({"minItems": 1})),
        ("SubmitItems", "/properties/items", batch.clone()),
        ("ItemIn", "/properties/external_id", external_id.clone()),
        ("AddGold", "/properties/items", batch.clone()),
        ("GoldIn", "/properties/external_id", external_id.clone()),
        ("GoldIn", "/properties/labels", json!({"uniqueItems": true})),
        ("PredictIn", "/properties/items", batch.clone()),
        (
            "HoldIn",
            "/properties/reason",
            json!({"minLength": 1, "maxLength": 500}),
        ),
        ("ReplayIn", "/properties/from_seq", json!({"minimum": 1})),
        (
            "ClaimIn",
            "/properties/wait_ms",
            json!({"maximum": crate::app::work::MAX_WAIT_MS}),
        ),
    ]
}

/// Constraints on query parameters: `(method, path, parameter, members for its schema)`.
fn param_constraints() -> Vec<(&'static str, &'static str, &'static str, serde_json::Value)> {
    let after = json!({"minimum": 0});
    let limit = json!({"minimum": 1});
    let mut out = Vec::new();
    for path in [
        "/v1/events",
        "/v1/projects/{project}/events",
        "/v1/projects/{project}/labels",
    ] {
        out.push(("get", path, "after", after.clone()));
        out.push(("get", path, "limit", limit.clone()));
    }
    out.push(("get", "/v1/projects/{project}/webhooks/{id}/deliveries", "limit", limit));
    out.push((
        "get",
        "/v1/projects/{project}/export",
        "format",
        json!({"enum": ["jsonl", "csv", "label-studio"]}),
    ));
    out.push((
        "post",
        "/v1/projects/{project}/import",
        "format",
        json!({"enum": ["label-studio", "jsonl"]}),
    ));
    out.push((
        "post",
        "/v1/projects/{project}/import",
        "as",
        json!({"enum": ["history", "gold"]}),
    ));
    out
}

/// Adds `members` to the object at `at`; false when there is none.
fn merge(at: Option<&mut serde_json::Value>, members: &serde_json::Value) -> bool {
    match (at.and_then(serde_json::Value::as_object_mut), members.as_object()) {
        (Some(target), Some(members)) => {
            for (k, v) in members {
                target.insert(k.clone(), v.clone());
            }
            true
        }
        _ => false,
    }
}

/// The document as served, with the constraints of [`schema_constraints`] and
/// [`param_constraints`]; and the constraints that found no target.
fn document_and_misses() -> (serde_json::Value, Vec<String>) {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    let mut misses = Vec::new();
    for (schema, at, members) in schema_constraints() {
        let target = doc.pointer_mut(&format!("/components/schemas/{schema}{at}"));
        if !merge(target, &members) {
            misses.push(format!("{schema}{at}"));
        }
    }
    for (method, path, name, members) in param_constraints() {
        let target = doc["paths"][path][method]["parameters"]
            .as_array_mut()
            .and_then(|ps| ps.iter_mut().find(|p| p["name"] == name))
            .and_then(|p| p.get_mut("schema"));
        if !merge(target, &members) {
            misses.push(format!("{method} {path} {name}"));
        }
    }
    // A body whose members are all optional may be left out: the server reads an empty
    // body as `{}`.
    let schemas = doc["components"]["schemas"].clone();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            let Some(body) = op.get_mut("requestBody") else {
                continue;
            };
            let schema = &body["content"]["application/json"]["schema"];
            let resolved = match schema["$ref"].as_str() {
                Some(r) => &schemas[r.rsplit('/').next().unwrap_or_default()],
                None => schema,
            };
            let all_optional = resolved["type"] == "object"
                && resolved.get("properties").is_some()
                && resolved["required"].as_array().is_none_or(Vec::is_empty);
            if all_optional {
                body["required"] = json!(false);
            }
        }
    }
    (doc, misses)
}

/// The OpenAPI document, built once.
pub fn document() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| document_and_misses().0)
}

pub async fn serve() -> Json<&'static serde_json::Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constraint_has_its_target() {
        assert_eq!(document_and_misses().1, Vec::<String>::new());
    }

    /// Each link leaves a documented answer for an operation of the document, and fills
    /// exactly that operation's path parameters; each operation id is unique.
    #[test]
    fn the_links_name_operations_and_their_path_parameters() {
        let doc = document();
        let mut ops = std::collections::HashMap::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(ops.insert(id.clone(), op.clone()).is_none(), "operation id {id} twice");
            }
        }
        let mut links = 0;
        for op in ops.values() {
            for resp in op["responses"].as_object().unwrap().values() {
                for link in resp["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    links += 1;
                    let target = &ops[link["operationId"].as_str().unwrap()];
                    let mut wanted: Vec<&str> = target["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect();
                    // Path parameters by name; others (a reviewer's key) qualified.
                    let mut given: Vec<&str> = link["parameters"]
                        .as_object()
                        .into_iter()
                        .flat_map(|ps| ps.keys())
                        .map(String::as_str)
                        .filter(|name| !name.contains('.'))
                        .collect();
                    wanted.sort_unstable();
                    given.sort_unstable();
                    assert_eq!(wanted, given, "{link}");
                }
            }
        }
        assert!(
            links >= 18,
            "{links} links: a link whose source operation is gone is dropped"
        );
    }
}
