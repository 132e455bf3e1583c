//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, admin, export, feeds, items, model, quality, webhooks, work, workload};

#[derive(OpenApi)]
#[openapi(
    info(title = "Flywheel", description = "Human-in-the-loop decisions: a policy routes each prediction to auto or to human review; human judgments flow back as labels."),
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
    modifiers(&Bearer, &RateLimited)
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

/// Every operation that takes a key may answer 429 `rate_limited` (`app::ratelimit`): the
/// response is added to each here, once, rather than to each handler's annotation.
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, HeaderBuilder, Ref, ResponseBuilder, Type};
        let response = ResponseBuilder::new()
            .description("`rate_limited`: this key has made more requests than its role's rate limit allows")
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    ))
                    .description(Some("seconds to wait"))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    op.responses
                        .responses
                        .entry("429".into())
                        .or_insert_with(|| response.clone().into());
                }
            }
        }
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
