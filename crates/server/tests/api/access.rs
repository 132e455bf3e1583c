//! The authorization matrix (issue #22): every route of the OpenAPI document, read from
//! `/v1/openapi.json` at test time, called as each kind of caller, must answer as the role
//! matrix in the code (`flywheel_server::http::access::MATRIX`) says. A route of the
//! document that the matrix does not list fails the test, so a new route must be given its
//! row.
//!
//! Path parameters name things that exist where visibility is at stake (project `pa`) and
//! things that do not elsewhere (reviewer `ghost`, webhook 999999, …), and bodies are `{}`,
//! so that an allowed call answers without changing what the next calls see. What is
//! checked is who gets through: an allowed caller gets neither 401, 403 nor the 404 of a
//! project it may not see (nor a 5xx); a refused one gets exactly the refusal.

use flywheel_server::http::access::{Access, access};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Anonymous,
    Admin,
    /// A service key of project `pa`.
    Service,
    /// A service key of project `pb` only.
    ServiceOther,
    /// A reviewer granted `pa`.
    Reviewer,
    /// A reviewer granted `pb` only.
    ReviewerOther,
    /// A reviewer granted `pa` and held in it.
    Held,
}

const ROLES: [Role; 7] = [
    Role::Anonymous,
    Role::Admin,
    Role::Service,
    Role::ServiceOther,
    Role::Reviewer,
    Role::ReviewerOther,
    Role::Held,
];

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Through the gate: whatever the route answers then, but none of the refusals below.
    Allowed,
    /// 401: no key.
    Unauthorized,
    /// 403: may see the project, may not do this.
    Forbidden,
    /// 404 as for a project that does not exist: may not see it.
    Hidden,
}

/// The matrix's row for `access`, per role.
fn expect(access: Access, role: Role) -> Expect {
    use Expect::*;
    use Role::*;
    match (access, role) {
        (Access::Public, _) => Allowed,
        (_, Anonymous) => Unauthorized,
        (Access::AnyKey, _) => Allowed,
        (Access::Admin, Admin) => Allowed,
        (Access::Admin, _) => Forbidden,
        (Access::Service, Admin | Service) => Allowed,
        (Access::Service, Reviewer | Held) => Forbidden,
        (Access::Service, ServiceOther | ReviewerOther) => Hidden,
        (Access::Member, Admin | Service | Reviewer | Held) => Allowed,
        (Access::Member, ServiceOther | ReviewerOther) => Hidden,
        (Access::Reviewer, Reviewer) => Allowed,
        (Access::Reviewer, Admin | Service | Held) => Forbidden,
        (Access::Reviewer, ServiceOther | ReviewerOther) => Hidden,
        (Access::OwnWork, Reviewer | ReviewerOther | Held) => Allowed,
        (Access::OwnWork, Admin | Service | ServiceOther) => Forbidden,
    }
}

/// The path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{project}", "pa")
        .replace("{name}", "ghost")
        .replace("{external_id}", "nothing-here")
        .replace(
            "{hash}",
            "0000000000000000000000000000000000000000000000000000000000000000",
        )
        .replace("{task_id}", "999999")
        .replace("{review_id}", "no-such-review")
        .replace("{id}", "999999")
}

async fn every_route_answers_each_caller_as_the_matrix_says(db: Db) {
    let app = spawn_app(&db).await;
    let service = app.project("pa", example_policy()).await;
    let service_other = app.project("pb", example_policy()).await;
    let reviewer = app.reviewer("r1", &[1, 2], &["pa"]).await;
    let reviewer_other = app.reviewer("r2", &[1, 2], &["pb"]).await;
    let held = app.reviewer("r3", &[1, 2], &["pa"]).await;
    let (s, v) = app
        .post(
            "/v1/projects/pa/reviewers/r3/hold",
            ADMIN,
            json!({"reason": "the matrix test"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let key = |role: Role| match role {
        Role::Anonymous => "",
        Role::Admin => ADMIN,
        Role::Service => service.as_str(),
        Role::ServiceOther => service_other.as_str(),
        Role::Reviewer => reviewer.as_str(),
        Role::ReviewerOther => reviewer_other.as_str(),
        Role::Held => held.as_str(),
    };

    let (s, doc) = app.get("/v1/openapi.json", "").await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("the document has paths");
    let hidden_words = "project 'pa' not found";
    let (mut calls, mut missing, mut wrong) = (0, vec![], vec![]);
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let Some(access) = access(method, path) else {
                missing.push(format!("{} {path}", method.to_uppercase()));
                continue;
            };
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
            for role in ROLES {
                let (status, v) = app.call(m.clone(), &concrete(path), key(role), body.clone()).await;
                calls += 1;
                let message = v["error"]["message"].as_str().unwrap_or("");
                let got = match status {
                    StatusCode::UNAUTHORIZED => Expect::Unauthorized,
                    StatusCode::FORBIDDEN => Expect::Forbidden,
                    StatusCode::NOT_FOUND if message == hidden_words => Expect::Hidden,
                    _ => Expect::Allowed,
                };
                let want = expect(access, role);
                if got != want || status.is_server_error() {
                    wrong.push(format!("{m} {path} as {role:?}: want {want:?}, got {status} {v}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes of the document missing from the matrix: {missing:?}"
    );
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls answered off the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(calls >= 7 * 40, "every route, every role: {calls} calls");
    // The refusals refused: nothing the calls sent changed the project.
    let (s, v): (StatusCode, Value) = app.get("/v1/projects/pa", ADMIN).await;
    assert_eq!((s, v["policy_version"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    app.stop().await;
}

on_both_backends!(every_route_answers_each_caller_as_the_matrix_says);
