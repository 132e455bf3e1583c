//! The console over HTTP (no browser): accounts, sign-in, sessions and the CSRF token.
//! `browser.rs` drives the same console in headless Chromium.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The login form's cookie and CSRF token (the pair stays valid for many posts).
pub(crate) async fn login_token(app: &TestApp) -> (String, String) {
    let page = app.http.get(format!("{}/login", app.base)).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("fw_login="))
        .unwrap();
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

/// Signs in through the login form and returns the session cookie and its CSRF token.
pub(crate) async fn sign_in(app: &TestApp, form: &[(&str, &str)]) -> Result<(String, String), StatusCode> {
    let (login_cookie, csrf) = login_token(app).await;
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let no_redirect = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirect
        .post(format!("{}/login", app.base))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            fields
                .iter()
                .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace(' ', "+").replace('&', "%26")))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::SEE_OTHER {
        return Err(resp.status());
    }
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("fw_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let cookie = session.split(';').next().unwrap().to_string();
    // The CSRF token every page carries.
    let home = app
        .http
        .get(format!("{}/ui", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = home
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    Ok((cookie, token))
}

async fn console_accounts_sessions_and_csrf(db: Db) {
    let app = spawn_app(&db).await;
    let mut policy = example_policy();
    policy["workbench"] = json!({"failure_categories": ["sarcasm"]});
    policy["sla_seconds"] = json!({"standard": 60});
    let svc = app.project("spam", policy).await;
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "short"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password"))
    );
    let (s, v) = app
        .post(
            "/v1/reviewers",
            ADMIN,
            json!({"name": "ana", "tiers": [1], "projects": ["spam"], "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ana_key = v["api_key"].as_str().unwrap().to_string();

    // Password sign-in; wrong passwords and service keys are refused.
    assert_eq!(
        sign_in(&app, &[("name", "ana"), ("password", "wrong horse")])
            .await
            .unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&app, &[("key", &svc)]).await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    // Five free failures per name (the clock stands still, so the sixth must wait 1 s).
    for _ in 0..5 {
        assert_eq!(
            sign_in(&app, &[("name", "mallory"), ("password", "guess")])
                .await
                .unwrap_err(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in(&app, &[("name", "mallory"), ("password", "guess")])
            .await
            .unwrap_err(),
        StatusCode::TOO_MANY_REQUESTS,
        "repeated failures for one name are braked"
    );
    let (cookie, csrf) = sign_in(&app, &[("name", "ana"), ("password", "correct horse")])
        .await
        .unwrap();
    let me = app
        .http
        .get(format!("{}/v1/me", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        (me["name"].as_str(), me["answers_today"].as_i64()),
        (Some("ana"), Some(0))
    );

    // A state-changing call from the session needs the CSRF token.
    app.submit(
        "spam",
        &svc,
        json!([item("a", "hello", Some(0.5)), item("b", "hi", Some(0.5))]),
    )
    .await;
    let claim = |token: Option<String>| {
        let mut req = app
            .http
            .post(format!("{}/v1/projects/spam/claim", app.base))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body("{}");
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let r = claim(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "csrf");
    let r = claim(Some("0".repeat(32))).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a wrong token is refused too");
    let r = claim(Some(csrf.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let task: Value = r.json().await.unwrap();
    let (s, v) = app
        .answer(
            &ana_key,
            &task,
            "w1",
            json!({"label": "spam", "failure_category": "typo"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("failure_category"))
    );
    let (s, _) = app
        .answer(
            &ana_key,
            &task,
            "w1",
            json!({"label": "spam", "failure_category": "sarcasm"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Tier 1 cannot open a tier-2 queue's workbench; the pages need a session.
    let page = |path: &str, cookie: Option<&str>| {
        let mut req = client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}{path}", app.base));
        if let Some(c) = cookie {
            req = req.header("cookie", c.to_string());
        }
        req.send()
    };
    assert_eq!(
        page("/ui/work/spam/urgent", Some(&cookie)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let ok = page("/ui/work/spam/standard", Some(&cookie)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let csp = ok.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(
        page("/ui/work/spam", None).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        page("/ui/projects/spam", Some(&cookie)).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "admin only"
    );

    // Admin: grants, holds, keys, policy checks.
    let (s, v) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/reviewers/ana",
            ADMIN,
            Some(json!({"tiers": [1, 2]})),
        )
        .await;
    assert_eq!((s, v["tiers"].clone()), (StatusCode::OK, json!([1, 2])));
    assert_eq!(
        page("/ui/work/spam/urgent", Some(&cookie)).await.unwrap().status(),
        StatusCode::OK
    );
    let (s, v) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/reviewers/ana",
            ADMIN,
            Some(json!({"tiers": [0]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("tiers[0]"))
    );
    let (s, _) = app
        .post(
            "/v1/projects/spam/reviewers/ana/hold",
            ADMIN,
            json!({"reason": "checking"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.post("/v1/projects/spam/claim", &ana_key, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("reviewer_held"))
    );
    let (s, _) = app
        .post("/v1/projects/spam/reviewers/ana/release", ADMIN, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post(
            "/v1/projects/spam/policy/check",
            ADMIN,
            json!({"rules": [{"name": "x", "when": "confidence >", "action": "auto"}]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rules[0].when"))
    );
    let (s, v) = app
        .post("/v1/projects/spam/policy/check", ADMIN, example_policy())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["queues"]
            .as_array()
            .unwrap()
            .contains(&json!({"queue": "urgent", "tier": 2}))
    );
    let (_, keys) = app.get("/v1/keys", ADMIN).await;
    let ana_hash = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["reviewer"] == "ana")
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_hash = keys.as_array().unwrap().iter().find(|k| k["kind"] == "admin").unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = app
        .post(&format!("/v1/keys/{admin_hash}/revoke"), ADMIN, json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_admin_key"))
    );
    let (s, _) = app.post(&format!("/v1/keys/{ana_hash}/revoke"), ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get("/v1/me", &ana_key).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked key stops working at once");
    let (s, v) = app.post("/v1/reviewers/ana/keys", ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.get("/v1/me", v["api_key"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (_, accounts) = app.get("/v1/reviewers", ADMIN).await;
    assert_eq!(accounts[0]["has_password"], true);
    let (_, projects) = app.get("/v1/projects", ADMIN).await;
    assert_eq!(projects[0]["name"], "spam");

    // The admin signs in with the key; the dashboard renders; signing out ends the session.
    let (admin_cookie, admin_csrf) = sign_in(&app, &[("key", ADMIN)]).await.unwrap();
    let dash = page("/ui/projects/spam", Some(&admin_cookie)).await.unwrap();
    assert_eq!(dash.status(), StatusCode::OK);
    let html = dash.text().await.unwrap();
    assert!(html.contains("id=\"queues\"") && html.contains("<svg"), "{html}");
    for path in [
        "/ui",
        "/ui/reviewers",
        "/ui/keys",
        "/ui/projects/spam/policy",
        "/ui/projects/spam?fragment=live",
    ] {
        assert_eq!(
            page(path, Some(&admin_cookie)).await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // A console address that names no page gets the error page, not the API's JSON.
    let missing = page("/ui/projects/spam/nonsense", Some(&admin_cookie)).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let content_type = missing.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let logout = |token: &str| {
        client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/logout", app.base))
            .header("cookie", &admin_cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={token}"))
            .send()
    };
    assert_eq!(
        logout("nope").await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "a form without the token is refused"
    );
    assert_eq!(logout(&admin_csrf).await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page("/ui", Some(&admin_cookie)).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "the session ended"
    );
    app.stop().await;
}

on_both_backends!(console_accounts_sessions_and_csrf,);
