//! The browser console, served by the same binary: the reviewer workbench and the
//! operations dashboard. Pages are rendered on the server with askama (which escapes
//! every value); a little JavaScript of our own (`static/`) drives the work loop and the
//! admin forms through the JSON API, with the session cookie and its CSRF token.
//!
//! Sessions: `/login` takes a reviewer's name and password, or any admin or reviewer key,
//! and sets `fw_session` (HttpOnly, SameSite=Strict, Secure behind HTTPS). The cookie's
//! SHA-256 is stored; the CSRF token is derived from the cookie (see `auth::csrf_token`).
//! Every page is sent with a Content-Security-Policy that allows only our own scripts and
//! styles, and images only from the project's allowed origins.
//!
//! Must not: call the JSON API's handlers. Pages get their data from `app`, the same use
//! cases the API calls, so a page shows what the API says.

pub mod chart;
mod events;
mod guidelines;
mod item;
mod pages;
mod workload;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use flywheel_store::Principal;
use serde::Deserialize;

use crate::app::accounts::{self, SignIn};
use crate::app::{AppError, AppState};
use crate::auth::{self, SESSION_COOKIE, csrf_token, generate_key, hash_key, same_token};
use crate::error::ApiError;

/// How long a browser session lasts.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;
const LOGIN_COOKIE: &str = "fw_login";

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/ui", get(pages::home))
        .route("/ui/work/{project}", get(pages::workbench_any))
        .route("/ui/work/{project}/{queue}", get(pages::workbench))
        .route("/ui/projects/{project}", get(pages::dashboard))
        .route("/ui/projects/{project}/items", get(item::search))
        .route("/ui/projects/{project}/items/{external_id}", get(item::item))
        .route("/ui/projects/{project}/policy", get(pages::policy))
        .route("/ui/projects/{project}/webhooks", get(pages::webhooks))
        .route("/ui/reviewers", get(pages::reviewers))
        .route("/ui/keys", get(pages::keys))
        .route("/ui/static/{file}", get(asset))
        // A console address that names no page gets the console's error page, not JSON.
        .route(
            "/ui/{*rest}",
            get(|| async { UiError(ApiError::not_found("no such page")) }),
        )
}

/// The signed-in user of a page request; without a live session, a redirect to `/login`.
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

impl Session {
    pub fn caller(&self) -> auth::Caller {
        auth::Caller(self.principal.clone())
    }

    pub fn nav(&self) -> Nav {
        let (who, admin) = match &self.principal {
            Principal::Admin => ("admin".to_string(), true),
            Principal::Service { .. } => ("service".to_string(), false),
            Principal::Reviewer(r) => (r.name.clone(), false),
        };
        Nav {
            who,
            admin,
            csrf: self.csrf.clone(),
        }
    }
}

/// What every page's header shows.
pub struct Nav {
    pub who: String,
    pub admin: bool,
    pub csrf: String,
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let token = auth::cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        match state.session(&hash_key(&token)).await {
            Ok(Some(principal)) => Ok(Session {
                principal,
                csrf: csrf_token(&token),
            }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(UiError::from(e).into_response()),
        }
    }
}

/// A failed page: the error page with the API error's status and message.
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<AppError> for UiError {
    fn from(e: AppError) -> Self {
        UiError(e.into())
    }
}

impl From<flywheel_store::StoreError> for UiError {
    fn from(e: flywheel_store::StoreError) -> Self {
        UiError(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if self.0.status.is_server_error() {
            tracing::error!(code = %self.0.code, message = %self.0.message, "page failed");
        }
        let body = ErrorPage {
            status: self.0.status.as_u16(),
            message: self.0.message,
        };
        let mut r = html(&body, &[]);
        *r.status_mut() = self.0.status;
        r
    }
}

/// A rendered page with the console's security headers; `img_origins` are the origins
/// images may come from besides our own.
pub fn html(t: &impl Template, img_origins: &[String]) -> Response {
    let body = match t.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "a template failed to render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response();
        }
    };
    let mut img = String::from("'self'");
    for o in img_origins {
        img.push(' ');
        img.push_str(o);
    }
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {img}; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut r = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::REFERRER_POLICY, "no-referrer".to_string()),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// Whether the request came over HTTPS (directly or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Adds a `Set-Cookie` to `r`: HttpOnly, SameSite=Strict, Secure over HTTPS.
fn set_cookie(r: &mut Response, headers: &HeaderMap, name: &str, value: &str, max_age_s: i64, path: &str) {
    let mut c = cookie::Cookie::build((name.to_string(), value.to_string()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path(path.to_string())
        .max_age(cookie::time::Duration::seconds(max_age_s));
    if over_tls(headers) {
        c = c.secure(true);
    }
    if let Ok(v) = HeaderValue::from_str(&c.build().to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
    name: String,
}

/// The sign-in form. A random token in a cookie and in the form guards the sign-in itself
/// against cross-site posts (login CSRF).
async fn login_page(headers: HeaderMap) -> Response {
    login_form(&headers, None, String::new(), StatusCode::OK)
}

fn login_form(headers: &HeaderMap, error: Option<String>, name: String, status: StatusCode) -> Response {
    let nonce = generate_key();
    let page = LoginPage {
        csrf: nonce.clone(),
        error,
        name,
    };
    let mut r = html(&page, &[]);
    *r.status_mut() = status;
    set_cookie(&mut r, headers, LOGIN_COOKIE, &nonce, 3600, "/login");
    r
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    key: String,
}

/// The client's address: the first entry of the trusted proxy's header when one is
/// configured (`AppState::client_ip_header`), else the socket's peer.
fn client_ip(s: &AppState, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> Option<std::net::IpAddr> {
    match &s.client_ip_header {
        Some(h) => headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok()),
        None => peer.map(|p| p.ip()),
    }
}

async fn login(
    State(s): State<Arc<AppState>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    // A client that posts something other than the form gets the API's JSON error.
    let axum::Form(form) = match form {
        Ok(f) => f,
        Err(e) => {
            let code = if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                "unsupported_media_type"
            } else {
                "bad_request"
            };
            let msg = format!(
                "send the sign-in form as application/x-www-form-urlencoded: {}",
                e.body_text()
            );
            return Ok(ApiError::new(e.status(), code, msg).into_response());
        }
    };
    let ip = client_ip(&s, &headers, peer.map(|p| p.0.0));
    let expected = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_token(&form.csrf, &expected) {
        return Err(UiError(
            ApiError::forbidden("the sign-in form is missing its CSRF token; reload the page").with_code("csrf"),
        ));
    }
    let refused = |msg: &str| {
        Ok(login_form(
            &headers,
            Some(msg.to_string()),
            form.name.clone(),
            StatusCode::UNAUTHORIZED,
        ))
    };
    let owner = match accounts::sign_in(&s, &form.name, &form.password, &form.key, ip).await? {
        SignIn::Owner(owner) => owner,
        SignIn::Refused(msg) => return refused(msg),
        SignIn::Blocked { retry_after_s } => {
            let mut r = login_form(
                &headers,
                Some(format!(
                    "too many sign-ins for this name or from this address lately; try again in {retry_after_s} s"
                )),
                form.name.trim().to_string(),
                StatusCode::TOO_MANY_REQUESTS,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            return Ok(r);
        }
    };
    let token = accounts::open_session(&s, owner, SESSION_MS).await?;
    let mut r = Redirect::to("/ui").into_response();
    set_cookie(&mut r, &headers, SESSION_COOKIE, &token, SESSION_MS / 1000, "/");
    set_cookie(&mut r, &headers, LOGIN_COOKIE, "", 0, "/login");
    Ok(r)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, UiError> {
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        if !same_token(&form.csrf, &csrf_token(&token)) {
            return Err(UiError(
                ApiError::forbidden("missing or wrong CSRF token").with_code("csrf"),
            ));
        }
        accounts::sign_out(&s, &token).await?;
    }
    let mut r = Redirect::to("/login").into_response();
    set_cookie(&mut r, &headers, SESSION_COOKIE, "", 0, "/");
    Ok(r)
}

/// Our own scripts and stylesheet, compiled into the binary.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "flywheel.css" => (include_str!("../../static/flywheel.css"), "text/css; charset=utf-8"),
        "workbench.js" => (
            include_str!("../../static/workbench.js"),
            "text/javascript; charset=utf-8",
        ),
        "console.js" => (
            include_str!("../../static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return UiError(ApiError::not_found("no such file")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
