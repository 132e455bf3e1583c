//! Review work: claims, leases and answers — overlap, ties and adjudication, escalation and
//! skips, lease expiry and heartbeats, tiers, blind review, and "submit and next".

use flywheel_server::workers::LeaseReaper;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn overlap_two_agreement_tie_and_adjudication(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project(
            "spam",
            json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}]}),
        )
        .await;
    app.submit(
        "spam",
        &svc,
        json!([item("agree", "a", Some(0.5)), item("tie", "b", Some(0.5))]),
    )
    .await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let boss = app.reviewer("boss", &[2], &["spam"]).await;
    let a1 = app.claim("spam", &a, None).await.unwrap();
    let a2 = app.claim("spam", &a, None).await.unwrap();
    assert!(
        app.claim("spam", &a, None).await.is_none(),
        "one reviewer never takes two slots of one item"
    );
    let b1 = app.claim("spam", &b, None).await.unwrap();
    let b2 = app.claim("spam", &b, None).await.unwrap();
    assert_eq!(a1["item"]["external_id"], "agree");
    assert_eq!(
        app.answer(&a, &a1, "a1", json!({"label": "spam"})).await.1["outcome"],
        "waiting"
    );
    let (_, v) = app.answer(&b, &b1, "b1", json!({"label": "spam"})).await;
    assert_eq!(v["outcome"], "resolved");
    assert_eq!(v["resolution"]["reviewers"], json!(["a", "b"]));
    app.answer(&a, &a2, "a2", json!({"label": "spam"})).await;
    let (_, v) = app.answer(&b, &b2, "b2", json!({"label": "ham"})).await;
    assert_eq!(v["outcome"], "adjudicate");
    assert!(app.claim("spam", &a, None).await.is_none());
    let t = app.claim("spam", &boss, None).await.unwrap();
    assert_eq!(
        (
            t["stage"].as_str(),
            t["tier"].as_i64(),
            t["item"]["external_id"].as_str()
        ),
        (Some("adjudicate"), Some(2), Some("tie"))
    );
    // The adjudicator sees the earlier votes, with their reviewers; a first reviewer never
    // does (unanchored by others' answers).
    assert!(a1.get("context").is_none() && b2.get("context").is_none());
    let votes: Vec<_> = t["context"]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}:{}", a["reviewer"].as_str().unwrap(), a["label"].as_str().unwrap()))
        .collect();
    assert_eq!(votes, ["a:spam", "b:ham"]);
    let (_, v) = app.answer(&boss, &t, "boss1", json!({"label": "ham"})).await;
    assert_eq!(v["resolution"]["source"], "adjudicated");
    let (_, feed) = app.get("/v1/projects/spam/labels", &svc).await;
    let got: Vec<_> = feed["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["external_id"].as_str().unwrap().to_string(),
                l["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("agree".to_string(), "human".to_string()),
            ("tie".to_string(), "adjudicated".to_string())
        ]
    );
    let (_, detail) = app.get("/v1/projects/spam/items/tie", ADMIN).await;
    assert_eq!(detail["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(detail["reviews"].as_array().unwrap().len(), 3);
    assert_eq!(detail["resolution"]["label"], "ham");
}

async fn escalation_and_skip(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    app.submit(
        "spam",
        &svc,
        json!([item("x", "hmm", Some(0.5)), item("y", "hmm", Some(0.5))]),
    )
    .await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let l2 = app.reviewer("l2", &[2], &["spam"]).await;
    let t = app.claim("spam", &a, None).await.unwrap();
    let (s, v) = app
        .answer(&a, &t, "e", json!({"escalate": {"reason": "looks like fraud"}}))
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("adjudicate")));
    let (s, v) = app
        .answer(
            &a,
            &app.claim("spam", &a, None).await.unwrap(),
            "no-reason",
            json!({"escalate": {"reason": ""}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("escalate.reason"))
    );
    // That refused answer left the lease in place: the reviewer can still skip.
    let (_, detail) = app.get("/v1/projects/spam/items/y", ADMIN).await;
    assert_eq!(detail["reviews"].as_array().unwrap().len(), 0);
    let t = json!({"task_id": detail["tasks"][0]["task_id"], "lease_id": detail["events"].as_array().unwrap().iter().rev().find(|e| e["kind"] == "lease.granted").unwrap()["data"]["lease_id"]});
    let (_, v) = app
        .answer(&a, &t, "s", json!({"skip": {"reason": "need coffee"}}))
        .await;
    assert_eq!(v["outcome"], "requeued");
    assert!(
        app.claim("spam", &a, None).await.is_none(),
        "a skipped item does not return to the skipper"
    );
    assert_eq!(app.claim("spam", &b, None).await.unwrap()["item"]["external_id"], "y");
    let t = app.claim("spam", &l2, None).await.unwrap();
    assert_eq!(
        (t["item"]["external_id"].as_str(), t["stage"].as_str()),
        (Some("x"), Some("adjudicate"))
    );
    // The escalation's words reach the adjudicator, with the answer that escalated.
    let context = &t["context"];
    assert_eq!(
        (
            context["answers"][0]["reviewer"].as_str(),
            context["answers"][0]["answer"].as_str(),
            context["answers"][0]["reason"].as_str()
        ),
        (Some("a"), Some("escalate"), Some("looks like fraud"))
    );
    assert!(
        context["reason"].as_str().unwrap().contains("looks like fraud"),
        "{context}"
    );
    let kinds: Vec<_> = app
        .events("spam")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"task.escalated".to_string()));
}

async fn leases_expire_return_and_heartbeats_extend(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    app.submit("spam", &svc, json!([item("x", "hmm", Some(0.5))])).await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let t = app.claim("spam", &a, None).await.unwrap();
    assert!(app.claim("spam", &b, None).await.is_none());
    let reaper = LeaseReaper {
        state: app.state.clone(),
        batch: 10,
    };
    app.clock.advance_ms(200_000);
    let (s, v) = app
        .post(
            &format!("/v1/tasks/{}/heartbeat", t["task_id"]),
            &a,
            json!({"lease_id": t["lease_id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.clock.advance_ms(200_000);
    assert_eq!(
        reaper.try_run_once().await.unwrap(),
        0,
        "the heartbeat kept the lease alive"
    );
    let (s, _) = app
        .post(
            &format!("/v1/tasks/{}/heartbeat", t["task_id"]),
            &b,
            json!({"lease_id": t["lease_id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "another reviewer cannot heartbeat this lease");
    app.clock.advance_ms(200_000);
    assert_eq!(reaper.try_run_once().await.unwrap(), 1);
    let (s, v) = app.answer(&a, &t, "late", json!({"label": "spam"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("lease_lost"))
    );
    let t2 = app
        .claim("spam", &b, None)
        .await
        .expect("the expired task is back in its queue");
    assert_eq!(t2["task_id"], t["task_id"]);
    let (s, _) = app.answer(&b, &t2, "ok", json!({"label": "ham"})).await;
    assert_eq!(s, StatusCode::OK);
}

async fn tiers_and_projects_are_isolated(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    let other_svc = app.project("other", example_policy()).await;
    app.submit("spam", &svc, json!([item("urgent", "I hurt myself", Some(0.5))]))
        .await;
    let l1 = app.reviewer("l1", &[1], &["spam"]).await;
    let l2 = app.reviewer("l2", &[2], &["spam"]).await;
    assert!(
        app.claim("spam", &l1, None).await.is_none(),
        "tier 1 never gets tier 2 work"
    );
    // Asking for a queue only higher tiers work is refused, as the console refuses its page.
    let (s, v) = app
        .post("/v1/projects/spam/claim", &l1, json!({"queue": "urgent"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"), Some("queue")),
        "{v}"
    );
    assert!(app.claim("spam", &l2, Some("urgent")).await.is_some());
    // A project the caller may not see answers as one that does not exist.
    let (s, v) = app.post("/v1/projects/other/claim", &l1, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = app
        .post(
            "/v1/projects/spam/items",
            &other_svc,
            json!({"items": [item("z", "x", None)]}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a service key is for its own projects");
    let (s, _) = app.get("/v1/projects/spam/labels", &other_svc).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post("/v1/projects/spam/items", &l1, json!({"items": [item("z", "x", None)]}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "reviewers do not submit items");
    let (s, _) = app.post("/v1/projects/spam/claim", &svc, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "services do not claim");
    let (s, _) = app
        .post(
            "/v1/reviewers",
            &svc,
            json!({"name": "x", "tiers": [1], "projects": []}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the admin creates reviewers");
    let (s, _) = app.get("/v1/projects/spam/events", &svc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app.get("/v1/projects/spam", "").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = app.get("/v1/projects/spam", "fw_not_a_key").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn reviewers_never_see_each_others_answers(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app
        .project("spam", json!({"rules": [{"name": "all", "when": "true", "action": "review", "queue": "q", "overlap": 2}], "show_suggestion": false}))
        .await;
    app.submit("spam", &svc, json!([item("x", "secret-free text", Some(0.9))]))
        .await;
    let a = app.reviewer("a", &[1], &["spam"]).await;
    let b = app.reviewer("b", &[1], &["spam"]).await;
    let ta = app.claim("spam", &a, None).await.unwrap();
    assert!(
        ta.get("suggestion").is_none(),
        "show_suggestion false hides the model's label"
    );
    let (_, ra) = app
        .answer(&a, &ta, "a1", json!({"label": "spam", "note": "NOTE-FROM-A"}))
        .await;
    assert_eq!(ra["outcome"], "waiting");
    assert!(ra.get("resolution").is_none());
    let tb = app.claim("spam", &b, None).await.unwrap();
    let text = tb.to_string();
    assert!(!text.contains("NOTE-FROM-A"), "another reviewer's note leaked: {text}");
    let mut keys: Vec<_> = tb.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "item",
            "labels",
            "lease_expires_at",
            "lease_id",
            "queue",
            "stage",
            "task_id",
            "tier",
            "why"
        ],
        "nothing about other answers"
    );
    // Why the item is here is the policy's rule and reasons, never anyone's answer.
    assert_eq!(tb["why"], json!({"rule": "all", "reasons": ["rule 'all' matched"]}));
    let (s, _) = app.get("/v1/projects/spam/items/x", &b).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "reviewers cannot read an item's reviews");
    let (s, _) = app.get("/v1/projects/spam/reviewers", &b).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// "Submit and next": an answer with `next` leases the reviewer's next task in the same
/// commit; a bad `next` writes nothing, not even the answer.
async fn submit_and_next_leases_the_next_task_with_the_answer(db: Db) {
    let app = spawn_app(&db).await;
    let svc = app.project("spam", example_policy()).await;
    app.project("other", example_policy()).await;
    let items: Vec<Value> = (0..3)
        .map(|i| item(&format!("n{i}"), &format!("message {i}"), Some(0.5)))
        .collect();
    app.submit("spam", &svc, Value::Array(items)).await;
    let r1 = app.reviewer("r1", &[1], &["spam"]).await;
    let first = app.claim("spam", &r1, None).await.expect("a task");

    // A project the reviewer may not claim from, or none at all: refused before anything
    // is written — the lease still holds and the answer can be given again.
    for (next, status) in [
        (json!({"project": "other"}), StatusCode::NOT_FOUND),
        (json!({"project": "nope"}), StatusCode::NOT_FOUND),
        (
            json!({"project": "spam", "queue": "Bad Queue!"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // A queue only tier 2 works: never r1's.
        (json!({"project": "spam", "queue": "urgent"}), StatusCode::FORBIDDEN),
    ] {
        let (s, v) = app
            .answer(&r1, &first, "a1", json!({"label": "ham", "next": next}))
            .await;
        assert_eq!(s, status, "{v}");
        assert!(v["error"]["field"].as_str().unwrap().starts_with("next."), "{v}");
    }
    assert!(app.all_labels(ADMIN).await.is_empty());

    let mut seen = vec![first["item"]["external_id"].clone()];
    let (s, v) = app
        .answer(&r1, &first, "a1", json!({"label": "ham", "next": {"project": "spam"}}))
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    let mut task = v["next"].clone();
    assert!(task["lease_id"].is_i64(), "{v}");
    assert_eq!(task["labels"], json!(["ham", "spam"]));
    assert!(v.get("next_error").is_none(), "{v}");
    // A retry of the same answer is not stored twice.
    let (s, again) = app
        .answer(
            &r1,
            &first,
            "a1",
            json!({"label": "ham", "next": {"project": "spam", "queue": "default"}}),
        )
        .await;
    assert_eq!(
        (s, again["outcome"].as_str()),
        (StatusCode::OK, Some("resolved")),
        "{again}"
    );
    assert_eq!(again["next"], Value::Null, "nothing in default: {again}");
    assert!(!seen.contains(&task["item"]["external_id"]), "{task}");
    seen.push(task["item"]["external_id"].clone());
    let (s, v) = app
        .answer(&r1, &task, "a2", json!({"label": "spam", "next": {"project": "spam"}}))
        .await;
    assert_eq!((s, v["outcome"].as_str()), (StatusCode::OK, Some("resolved")), "{v}");
    task = v["next"].clone();
    assert!(!seen.contains(&task["item"]["external_id"]), "{task}");
    // A reviewer held meanwhile: the lease they hold ends with the hold, so the answer is
    // refused, and so is the next claim.
    let (s, _) = app
        .post(
            "/v1/projects/spam/reviewers/r1/hold",
            ADMIN,
            json!({"reason": "checking"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app
        .answer(&r1, &task, "a3", json!({"label": "spam", "next": {"project": "spam"}}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("lease_lost")),
        "{v}"
    );
    let (s, v) = app.post("/v1/projects/spam/claim", &r1, json!({})).await;
    assert_eq!(v["error"]["code"].as_str(), Some("reviewer_held"), "{s} {v}");
    let labels = app.all_labels(ADMIN).await;
    assert_eq!(labels.len(), 2, "{labels:?}");
    let granted = app
        .events("spam")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "lease.granted")
        .count();
    assert_eq!(granted, 3, "one claim and two leases granted with answers");
    app.stop().await;
}

on_both_backends!(
    overlap_two_agreement_tie_and_adjudication,
    escalation_and_skip,
    leases_expire_return_and_heartbeats_extend,
    tiers_and_projects_are_isolated,
    reviewers_never_see_each_others_answers,
    submit_and_next_leases_the_next_task_with_the_answer,
);
