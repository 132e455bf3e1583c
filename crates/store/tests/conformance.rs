//! The store conformance suite: every storage behaviour, written once against the `Store`
//! interface and run against each backend (SQLite always; PostgreSQL when
//! `FLYWHEEL_TEST_POSTGRES_URL` is set).

use std::sync::Arc;

use flywheel_core::{Answer, Decision, Outcome, Prediction, Route, Stage};
use flywheel_store::*;
use serde_json::json;

#[path = "conformance/exports.rs"]
mod exports;

const LEASE: i64 = 60_000;

struct Fixture {
    store: Arc<dyn Store>,
    project: Project,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(flywheel_store::sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    fixture(store, Some(dir)).await
}

/// A fresh schema of the test database per test, so tests run in parallel; `None` (and a
/// line saying the test was skipped) when `FLYWHEEL_TEST_POSTGRES_URL` is not set.
async fn postgres(case: &str) -> Option<(Fixture, String, String)> {
    let Ok(url) = std::env::var("FLYWHEEL_TEST_POSTGRES_URL") else {
        eprintln!("skipped: {case} on PostgreSQL needs FLYWHEEL_TEST_POSTGRES_URL");
        return None;
    };
    let schema = format!("fwt_s_{}", &case[..case.len().min(40)]);
    flywheel_store::postgres::PgStore::drop_schema(&url, &schema)
        .await
        .unwrap();
    let store = flywheel_store::postgres::PgStore::connect(&url, Some(&schema))
        .await
        .unwrap();
    Some((fixture(Arc::new(store), None).await, url, schema))
}

async fn fixture(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Fixture {
    let project = store
        .create_project(
            NewProject {
                name: "spam".into(),
                labels: vec!["ham".into(), "spam".into()],
                policy: json!({"rules": []}),
                answer_fields: json!([]),
                label_mode: Default::default(),
            },
            "admin",
            1,
        )
        .await
        .unwrap();
    Fixture {
        store,
        project,
        _dir: dir,
    }
}

fn review(external_id: &str, queue: &str, tier: u8, priority: i32, overlap: u8) -> NewItem {
    NewItem {
        external_id: external_id.into(),
        payload: json!({"text": format!("text of {external_id}")}),
        attributes: json!({}),
        prediction: None,
        decision: Decision {
            outcome: Outcome::Review {
                route: Route {
                    queue: queue.into(),
                    tier,
                    priority,
                    overlap,
                    ..Route::default_review()
                },
            },
            rule: "r".into(),
            reasons: vec!["rule 'r' matched".into()],
            policy_version: 1,
            audit: None,
        },
    }
}

/// `item` (a review) with a deadline of `seconds` on its route (warned a fifth before).
fn with_sla(mut item: NewItem, seconds: u32) -> NewItem {
    if let Outcome::Review { route } = &mut item.decision.outcome {
        route.sla_seconds = Some(seconds);
    }
    item
}

fn auto(external_id: &str, label: &str, audit: bool) -> NewItem {
    NewItem {
        external_id: external_id.into(),
        payload: json!({"text": "hello"}),
        attributes: json!({"country": "FR"}),
        prediction: Some(Prediction {
            model: "m".into(),
            version: Some("7".into()),
            scores: vec![("ham".into(), 0.01), ("spam".into(), 0.99)],
            novelty: None,
        }),
        decision: Decision {
            outcome: Outcome::Auto { label: label.into() },
            rule: "confident".into(),
            reasons: vec![],
            policy_version: 1,
            audit: audit.then(|| Route {
                queue: "audit".into(),
                tier: 1,
                priority: 0,
                overlap: 1,
                ..Route::default_review()
            }),
        },
    }
}

impl Fixture {
    async fn reviewer(&self, name: &str, tiers: &[u8]) -> Reviewer {
        self.store
            .create_reviewer(
                NewReviewer {
                    name: name.into(),
                    tiers: tiers.to_vec(),
                    projects: vec!["spam".into()],
                    key_hash: format!("hash-{name}"),
                    password_hash: None,
                },
                "admin",
                1,
            )
            .await
            .unwrap()
    }

    async fn submit(&self, items: Vec<NewItem>) -> Vec<Submitted> {
        self.store
            .submit_items(self.project.id, items, "service", 10)
            .await
            .unwrap()
    }

    async fn claim(&self, r: &Reviewer, queue: Option<&str>, now: i64) -> Option<ClaimedTask> {
        self.store
            .claim(
                ClaimRequest {
                    project_id: self.project.id,
                    reviewer_id: r.id,
                    reviewer_name: r.name.clone(),
                    tiers: r.tiers.clone(),
                    queue: queue.map(str::to_string),
                    lease_ms: LEASE,
                    gold: None,
                },
                now,
            )
            .await
            .unwrap()
    }

    async fn answer(
        &self,
        r: &Reviewer,
        t: &ClaimedTask,
        review_id: &str,
        answer: Answer,
        now: i64,
    ) -> Result<ReviewResult> {
        self.store
            .submit_review(
                NewReview {
                    task_id: t.task_id,
                    lease_id: t.lease_id,
                    reviewer_id: r.id,
                    reviewer_name: r.name.clone(),
                    review_id: review_id.into(),
                    answer,
                    failure_category: None,
                    note: None,
                    fields: None,
                    judging: Default::default(),
                },
                now,
            )
            .await
    }

    async fn all_events(&self) -> Vec<EventRecord> {
        self.store.events(Some(self.project.id), 0, 10_000).await.unwrap()
    }

    async fn all_labels(&self) -> Vec<LabelRecord> {
        self.store.labels(self.project.id, 0, 10_000).await.unwrap()
    }
}

fn label(s: &str) -> Answer {
    Answer::Label(s.into())
}

#[path = "conformance/amend.rs"]
mod amend_cases;
#[path = "conformance/webhooks.rs"]
mod webhook_cases;

#[path = "conformance/revocation.rs"]
mod revocation;

#[path = "conformance/deactivation.rs"]
mod deactivation;
#[path = "conformance/overrides.rs"]
mod override_cases;
#[path = "conformance/search.rs"]
mod search;

#[path = "conformance/fatigue.rs"]
mod fatigue_cases;
#[path = "conformance/fields.rs"]
mod fields_cases;
#[path = "conformance/multi.rs"]
mod multi;
#[path = "conformance/sla.rs"]
mod sla;
#[path = "conformance/storage.rs"]
mod storage;
#[path = "conformance/workload.rs"]
mod workload;

mod suite {
    pub use super::amend_cases::*;
    pub use super::deactivation::*;
    pub use super::exports::*;
    pub use super::fatigue_cases::*;
    pub use super::fields_cases::*;
    pub use super::multi::*;
    pub use super::override_cases::*;
    pub use super::revocation::*;
    pub use super::search::*;
    pub use super::sla::*;
    pub use super::webhook_cases::*;
    pub use super::workload::*;

    use super::*;

    pub async fn keys_and_principals(f: Fixture) {
        let s = &f.store;
        assert!(s.bootstrap_admin("admin-hash", 1).await.unwrap());
        assert!(
            !s.bootstrap_admin("other-hash", 2).await.unwrap(),
            "a second admin bootstrap is refused"
        );
        assert_eq!(s.principal("admin-hash").await.unwrap(), Some(Principal::Admin));
        assert_eq!(s.principal("other-hash").await.unwrap(), None);
        let r = f.reviewer("ann", &[1, 2]).await;
        match s.principal("hash-ann").await.unwrap() {
            Some(Principal::Reviewer(got)) => assert_eq!(got, r),
            other => panic!("{other:?}"),
        }
        s.create_service_key(
            NewServiceKey {
                projects: vec!["spam".into()],
                key_hash: "svc".into(),
                name: Some("ci — nightly".into()),
            },
            "admin",
            1,
        )
        .await
        .unwrap();
        assert_eq!(
            s.principal("svc").await.unwrap(),
            Some(Principal::Service {
                projects: vec![f.project.id]
            })
        );
        let e = s
            .create_service_key(
                NewServiceKey {
                    projects: vec!["nope".into()],
                    key_hash: "svc2".into(),
                    name: None,
                },
                "admin",
                1,
            )
            .await;
        assert!(matches!(e, Err(StoreError::Invalid(v)) if v.field == "projects[0]"));
        assert_eq!(s.principal("svc2").await.unwrap(), None, "a refused key is not stored");
        let dup = s
            .create_reviewer(
                NewReviewer {
                    name: "ann".into(),
                    tiers: vec![1],
                    projects: vec![],
                    key_hash: "x".into(),
                    password_hash: None,
                },
                "admin",
                1,
            )
            .await;
        assert!(matches!(
            dup,
            Err(StoreError::Conflict {
                code: "reviewer_exists",
                ..
            })
        ));
    }

    pub async fn projects_and_policy_versions(f: Fixture) {
        let s = &f.store;
        assert_eq!(f.project.policy_version, 1);
        let dup = s
            .create_project(
                NewProject {
                    name: "spam".into(),
                    labels: vec!["a".into(), "b".into()],
                    policy: json!({}),
                    answer_fields: json!([]),
                    label_mode: Default::default(),
                },
                "admin",
                2,
            )
            .await;
        assert!(matches!(
            dup,
            Err(StoreError::Conflict {
                code: "project_exists",
                ..
            })
        ));
        assert_eq!(
            s.set_policy("spam", json!({"rules": [], "audit_rate": 0.5}), "admin", 3)
                .await
                .unwrap(),
            2
        );
        let p = s.project("spam").await.unwrap().unwrap();
        assert_eq!(p.policy_version, 2);
        assert_eq!(p.policy["audit_rate"], 0.5);
        assert!(matches!(
            s.set_policy("nope", json!({}), "admin", 3).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(s.project("nope").await.unwrap().is_none());
        // Every version is kept, newest first, with who stored it and when.
        let versions = s.policy_versions(p.id).await.unwrap();
        let got: Vec<_> = versions
            .iter()
            .map(|v| {
                (
                    v.version,
                    v.policy["audit_rate"].clone(),
                    v.created_by.as_str(),
                    v.created_at,
                )
            })
            .collect();
        assert_eq!(
            got,
            [(2, json!(0.5), "admin", 3), (1, serde_json::Value::Null, "admin", 1)]
        );
        let kinds: Vec<_> = f.all_events().await.into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["project.created", "policy.updated"]);
    }

    pub async fn submit_is_idempotent(f: Fixture) {
        let out = f
            .submit(vec![
                review("a", "q", 1, 0, 1),
                auto("b", "spam", false),
                review("a", "q", 1, 0, 1),
            ])
            .await;
        assert_eq!(out.len(), 3);
        assert!(!out[0].duplicate && !out[1].duplicate);
        assert!(out[2].duplicate, "the same external id twice in a batch is a duplicate");
        assert_eq!(out[2].item_id, out[0].item_id);
        let events_before = f.all_events().await.len();
        let again = f.submit(vec![auto("a", "ham", false)]).await;
        assert!(again[0].duplicate);
        assert_eq!(again[0].decision, out[0].decision, "the first decision is returned");
        assert_eq!(f.all_events().await.len(), events_before, "a duplicate writes nothing");
        let stats = f.store.stats(f.project.id, 20).await.unwrap();
        assert_eq!(
            (stats.items, stats.auto, stats.review, stats.resolved, stats.open_tasks),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(
            stats.queues,
            vec![QueueStats {
                name: "q".into(),
                open: 1,
                oldest_age_ms: 10,
                ..QueueStats::default()
            }]
        );
        let labels = f.all_labels().await;
        assert_eq!(labels.len(), 1);
        assert_eq!(
            (
                labels[0].external_id.as_str(),
                labels[0].label.as_str(),
                labels[0].source.as_str()
            ),
            ("b", "spam", "auto")
        );
        assert_eq!(labels[0].model_version.as_deref(), Some("7"));
        let detail = f.store.item(f.project.id, "b").await.unwrap().unwrap();
        assert_eq!(detail.attributes, json!({"country": "FR"}));
        assert_eq!(detail.resolution.unwrap().label, "spam");
        assert!(f.store.item(f.project.id, "zzz").await.unwrap().is_none());

        // A batch larger than one multi-row statement (SQLite writes pieces of 64, 32, ...,
        // 1 rows): every item keeps its place, its task, its label and its one event.
        let batch: Vec<NewItem> = (0..150)
            .map(|i| match i {
                100 => review("big-3", "q", 1, 0, 1), // the same external id as item 3
                i if i % 3 == 0 => review(&format!("big-{i}"), "q", 1, 0, 1),
                i if i % 3 == 1 => auto(&format!("big-{i}"), "ham", false),
                i => auto(&format!("big-{i}"), "spam", true),
            })
            .collect();
        let events_before = f.all_events().await.len();
        let out = f.submit(batch).await;
        assert_eq!(out.len(), 150);
        for (i, o) in out.iter().enumerate() {
            let want = if i == 100 {
                "big-3".to_string()
            } else {
                format!("big-{i}")
            };
            assert_eq!(o.external_id, want);
            assert_eq!(o.duplicate, i == 100, "{i}");
        }
        assert_eq!(out[100].item_id, out[3].item_id);
        let events = f.all_events().await;
        let decided = &events[events_before..];
        assert_eq!(decided.len(), 149);
        for (e, o) in decided.iter().zip(out.iter().filter(|o| !o.duplicate)) {
            assert_eq!(
                (e.kind.as_str(), e.external_id.as_deref()),
                ("item.decided", Some(o.external_id.as_str()))
            );
            // Reviews and audited auto decisions have one task, the rest none.
            let i: usize = o.external_id[4..].parse().unwrap();
            let tasks = e.data["tasks"].as_array().unwrap();
            assert_eq!(tasks.len(), usize::from(i % 3 != 1), "{e:?}");
            assert_eq!(e.task_id, tasks.first().and_then(|t| t.as_i64()), "{e:?}");
            // The event names the decision it records (SQLite reads it from the item).
            assert_eq!(e.data["decision"], serde_json::to_value(&o.decision).unwrap(), "{e:?}");
            assert_eq!(e.data["resolved"].is_string(), !i.is_multiple_of(3), "{e:?}");
        }
        let labels = f.all_labels().await;
        assert_eq!(labels.len(), 1 + 99, "the earlier auto item and every new auto item");
        let stats = f.store.stats(f.project.id, 20).await.unwrap();
        assert_eq!((stats.items, stats.open_tasks), (2 + 149, 1 + 50 + 50), "{stats:?}");
    }

    pub async fn claims_follow_priority_then_age_and_tiers(f: Fixture) {
        f.submit(vec![
            review("low", "standard", 1, 0, 1),
            review("high", "standard", 1, 10, 1),
            review("low2", "standard", 1, 0, 1),
            review("t2", "urgent", 2, 100, 1),
        ])
        .await;
        let l1 = f.reviewer("l1", &[1]).await;
        let l2 = f.reviewer("l2", &[2]).await;
        let order: Vec<String> = {
            let mut v = vec![];
            while let Some(t) = f.claim(&l1, None, 100).await {
                v.push(t.external_id);
            }
            v
        };
        assert_eq!(order, ["high", "low", "low2"], "tier 1 never sees the tier 2 task");
        let t = f.claim(&l2, Some("standard"), 100).await;
        assert!(t.is_none(), "queue filter and tier filter both apply");
        let t = f.claim(&l2, Some("urgent"), 100).await.unwrap();
        assert_eq!((t.external_id.as_str(), t.stage, t.tier), ("t2", Stage::Review, 2));
        assert_eq!(t.lease_expires_at, 100 + LEASE);
        assert_eq!(t.payload["text"], "text of t2");
    }

    pub async fn overlap_needs_distinct_reviewers_and_majority(f: Fixture) {
        let scored = |mut item: NewItem| {
            item.prediction = Some(Prediction {
                model: "m".into(),
                version: None,
                scores: vec![("ham".into(), 0.2), ("spam".into(), 0.8)],
                novelty: None,
            });
            item
        };
        f.submit(vec![
            scored(review("agree", "q", 1, 1, 2)),
            scored(review("tie", "q", 1, 0, 2)),
        ])
        .await;
        let a = f.reviewer("a", &[1]).await;
        let b = f.reviewer("b", &[1]).await;
        let adj = f.reviewer("adj", &[2]).await;
        let a1 = f.claim(&a, None, 100).await.unwrap();
        let a2 = f.claim(&a, None, 100).await.unwrap();
        assert_eq!(
            (a1.external_id.as_str(), a2.external_id.as_str()),
            ("agree", "tie"),
            "a reviewer never gets the same item twice"
        );
        assert!(f.claim(&a, None, 100).await.is_none());
        let b1 = f.claim(&b, None, 100).await.unwrap();
        let b2 = f.claim(&b, None, 100).await.unwrap();
        assert_eq!(
            f.answer(&a, &a1, "a1", label("spam"), 200).await.unwrap().outcome,
            "waiting"
        );
        let r = f.answer(&b, &b1, "b1", label("spam"), 210).await.unwrap();
        assert_eq!(r.outcome, "resolved");
        let res = r.resolution.unwrap();
        assert_eq!(
            (res.label.as_str(), res.method.as_str(), res.confidence),
            ("spam", "majority", 1.0)
        );
        assert_eq!(res.reviewers, ["a", "b"]);
        f.answer(&a, &a2, "a2", label("spam"), 220).await.unwrap();
        let r = f.answer(&b, &b2, "b2", label("ham"), 230).await.unwrap();
        assert_eq!(r.outcome, "adjudicate");
        assert!(f.claim(&a, None, 300).await.is_none(), "adjudication is one tier up");
        let t = f.claim(&adj, None, 300).await.unwrap();
        assert_eq!((t.external_id.as_str(), t.stage, t.tier), ("tie", Stage::Adjudicate, 2));
        let r = f.answer(&adj, &t, "adj1", label("ham"), 400).await.unwrap();
        assert_eq!(
            r.resolution.as_ref().unwrap().source,
            flywheel_core::task::Source::Adjudicated
        );
        let labels = f.all_labels().await;
        let got: Vec<_> = labels
            .iter()
            .map(|l| (l.external_id.as_str(), l.label.as_str(), l.source.as_str()))
            .collect();
        assert_eq!(got, [("agree", "spam", "human"), ("tie", "ham", "adjudicated")]);
        let detail = f.store.item(f.project.id, "tie").await.unwrap().unwrap();
        // Each task counts every answer, the one that closed it too.
        let tasks: Vec<_> = detail
            .tasks
            .iter()
            .map(|t| (t.stage, t.answered, t.state.as_str()))
            .collect();
        assert_eq!(tasks, [(Stage::Review, 2, "done"), (Stage::Adjudicate, 1, "done")]);
        assert_eq!(detail.reviews.len(), 3);
        assert_eq!(detail.reviews[0].claimed_at, 100);
        // Calibration sees how each label was reached: votes, and whether a split was settled.
        let verified = f.store.verified_predictions(f.project.id, 10).await.unwrap();
        let got: Vec<_> = verified
            .iter()
            .map(|v| (v.external_id.as_str(), v.human_label.as_str(), v.votes, v.adjudicated))
            .collect();
        assert_eq!(
            got,
            [("tie", "ham", 3, true), ("agree", "spam", 2, false)],
            "newest first"
        );
    }

    pub async fn escalate_and_skip(f: Fixture) {
        f.submit(vec![review("x", "q", 1, 0, 1), review("y", "q", 1, 0, 1)])
            .await;
        let a = f.reviewer("a", &[1]).await;
        let b = f.reviewer("b", &[1, 2]).await;
        let t = f.claim(&a, None, 100).await.unwrap();
        let r = f
            .answer(
                &a,
                &t,
                "e",
                Answer::Escalate {
                    reason: "not sure".into(),
                },
                110,
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, "adjudicate");
        let t = f.claim(&a, None, 120).await.unwrap();
        assert_eq!(t.external_id, "y");
        assert_eq!(
            f.answer(&a, &t, "s", Answer::Skip { reason: "later".into() }, 130)
                .await
                .unwrap()
                .outcome,
            "requeued"
        );
        assert!(
            f.claim(&a, None, 140).await.is_none(),
            "a skipped item does not come back to the skipper"
        );
        let first = f.claim(&b, None, 150).await.unwrap();
        assert_eq!(
            (first.external_id.as_str(), first.stage),
            ("x", Stage::Adjudicate),
            "priority ties go by age"
        );
        let second = f.claim(&b, None, 150).await.unwrap();
        assert_eq!(
            second.external_id, "y",
            "the skipped task is back in the queue for others"
        );
    }

    pub async fn leases_expire_and_are_lost(f: Fixture) {
        f.submit(vec![review("x", "q", 1, 0, 1)]).await;
        let a = f.reviewer("a", &[1]).await;
        let b = f.reviewer("b", &[1]).await;
        let t = f.claim(&a, None, 1_000).await.unwrap();
        assert!(
            f.claim(&b, None, 1_000).await.is_none(),
            "a leased task is not handed out twice"
        );
        let exp = f.store.heartbeat(t.task_id, t.lease_id, a.id, 30_000).await.unwrap();
        assert_eq!(exp, 30_000 + LEASE);
        let wrong = f.store.heartbeat(t.task_id, t.lease_id, b.id, 30_000).await;
        assert!(
            matches!(wrong, Err(StoreError::Conflict { code: "lease_lost", .. })),
            "another reviewer's lease is not theirs"
        );
        assert_eq!(f.store.expire_leases(exp - 1, 100).await.unwrap(), 0);
        assert_eq!(f.store.expire_leases(exp, 100).await.unwrap(), 1);
        let lost = f.answer(&a, &t, "late", label("ham"), exp + 1).await;
        assert!(matches!(lost, Err(StoreError::Conflict { code: "lease_lost", .. })));
        let hb = f.store.heartbeat(t.task_id, t.lease_id, a.id, exp + 1).await;
        assert!(matches!(hb, Err(StoreError::Conflict { code: "lease_lost", .. })));
        let t2 = f.claim(&b, None, exp + 2).await.unwrap();
        assert_eq!(t2.task_id, t.task_id);
        assert_ne!(t2.lease_id, t.lease_id);
        assert_eq!(
            f.answer(&b, &t2, "ok", label("ham"), exp + 3).await.unwrap().outcome,
            "resolved"
        );
        let kinds: Vec<_> = f.all_events().await.into_iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&"lease.expired".to_string()), "{kinds:?}");
    }

    pub async fn reviews_are_idempotent_and_checked(f: Fixture) {
        f.submit(vec![review("x", "q", 1, 0, 1)]).await;
        let a = f.reviewer("a", &[1]).await;
        let t = f.claim(&a, None, 100).await.unwrap();
        let events_before = f.all_events().await.len();
        let bad = f.answer(&a, &t, "r1", label("eggs"), 110).await;
        assert!(
            matches!(bad, Err(StoreError::Invalid(ref v)) if v.field == "label"),
            "{bad:?}"
        );
        assert_eq!(
            f.all_events().await.len(),
            events_before,
            "a refused review writes nothing"
        );
        let first = f.answer(&a, &t, "r1", label("spam"), 120).await.unwrap();
        let mut again = f.answer(&a, &t, "r1", label("ham"), 130).await.unwrap();
        // The answer's tier and time on task come only with the call that stored it, so
        // that the server's metrics count a retry once.
        assert_eq!(
            first.stored,
            Some(StoredAnswer {
                tier: 1,
                time_on_task_ms: 20,
                too_fast: false,
                project_id: f.project.id,
            })
        );
        assert_eq!(again.stored.take(), None, "a retry stores nothing");
        assert_eq!(
            ReviewResult {
                stored: first.stored,
                ..again
            },
            first,
            "a retried review returns the stored result"
        );
        assert_eq!(f.all_labels().await.len(), 1);
        f.submit(vec![review("z", "q", 1, 0, 1)]).await;
        let t2 = f.claim(&a, None, 135).await.unwrap();
        // The idempotency key is per task: the same review_id on another task is another
        // answer, stored and resolved, not the first one's result.
        let labels_before = f.all_labels().await.len();
        assert_eq!(
            f.answer(&a, &t2, "r1", label("ham"), 136).await.unwrap().outcome,
            "resolved"
        );
        assert_eq!(f.all_labels().await.len(), labels_before + 1);
        let other = f.answer(&a, &t, "r2", label("spam"), 140).await;
        assert!(
            matches!(other, Err(StoreError::Conflict { code: "lease_lost", .. })),
            "an answered lease is spent"
        );
    }

    pub async fn audits_confirm_or_correct(f: Fixture) {
        f.submit(vec![
            auto("ok", "spam", true),
            auto("wrong", "spam", true),
            auto("plain", "spam", false),
        ])
        .await;
        let a = f.reviewer("a", &[1]).await;
        let t = f.claim(&a, Some("audit"), 100).await.unwrap();
        assert_eq!((t.external_id.as_str(), t.stage), ("ok", Stage::Audit));
        assert_eq!(
            f.answer(&a, &t, "1", label("spam"), 110).await.unwrap().outcome,
            "confirmed"
        );
        let t = f.claim(&a, Some("audit"), 120).await.unwrap();
        assert_eq!(
            f.answer(&a, &t, "2", label("ham"), 130).await.unwrap().outcome,
            "corrected"
        );
        assert!(f.claim(&a, None, 140).await.is_none());
        let labels = f.all_labels().await;
        let got: Vec<_> = labels
            .iter()
            .map(|l| (l.external_id.as_str(), l.label.as_str(), l.source.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("ok", "spam", "auto"),
                ("wrong", "spam", "auto"),
                ("plain", "spam", "auto"),
                ("ok", "spam", "human"),
                ("wrong", "ham", "human")
            ],
            "a confirming audit is a human label too"
        );
        let kinds: Vec<_> = f.all_events().await.into_iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&"item.corrected".to_string()) && kinds.contains(&"audit.confirmed".to_string()));
    }

    pub async fn feeds_page_by_cursor(f: Fixture) {
        let items: Vec<_> = (0..25).map(|i| auto(&format!("i{i:02}"), "ham", false)).collect();
        f.submit(items).await;
        let mut cursor = 0;
        let mut seen = vec![];
        loop {
            let page = f.store.labels(f.project.id, cursor, 10).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 10);
            cursor = page.last().unwrap().cursor;
            seen.extend(page.into_iter().map(|l| l.external_id));
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen[0], "i00");
        let events = f.all_events().await;
        assert_eq!(events.iter().filter(|e| e.kind == "item.decided").count(), 25);
        let seqs: Vec<_> = events.iter().map(|e| e.seq).collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted);
        let tail = f.store.events(Some(f.project.id), seqs[20], 1000).await.unwrap();
        assert_eq!(tail.len(), events.len() - 21);
        let global = f.store.events(None, 0, 10_000).await.unwrap();
        assert!(global.len() >= events.len());
    }

    /// Writers and readers at once: each reader follows both feeds from 0 while writers
    /// add labels and events, and must see every position exactly once, in order, with no
    /// gap (on PostgreSQL positions are handed out after commit, and reads take no lock);
    /// each writer finds its own label in the feed as soon as its write returns.
    pub async fn feeds_have_no_gap_under_concurrent_writers_and_readers(f: Fixture) {
        const WRITERS: usize = 6;
        const ROUNDS: usize = 15;
        let project = f.project.id;
        let writing = Arc::new(std::sync::atomic::AtomicUsize::new(WRITERS));
        let mut readers = Vec::new();
        for reader in 0..4usize {
            let (store, writing) = (f.store.clone(), writing.clone());
            readers.push(tokio::spawn(async move {
                let (mut label_at, mut event_at) = (0i64, 0i64);
                let page = 1 + reader * 7;
                loop {
                    let last_pass = writing.load(std::sync::atomic::Ordering::SeqCst) == 0;
                    let labels = store.labels(project, label_at, page).await.unwrap();
                    for l in &labels {
                        assert_eq!(
                            l.cursor,
                            label_at + 1,
                            "reader {reader}: label positions in order, no gap"
                        );
                        label_at = l.cursor;
                    }
                    let events = store.events(None, event_at, page).await.unwrap();
                    for e in &events {
                        assert_eq!(e.seq, event_at + 1, "reader {reader}: event positions in order, no gap");
                        event_at = e.seq;
                    }
                    if last_pass && labels.is_empty() && events.is_empty() {
                        break (label_at, event_at);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (store, writing) = (f.store.clone(), writing.clone());
            writers.push(tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let id = format!("w{writer}-{round}");
                    store
                        .submit_items(project, vec![auto(&id, "spam", false)], "service", 10)
                        .await
                        .unwrap();
                    // The acknowledged write is in the next read of the feed.
                    let feed = store.labels(project, 0, 100_000).await.unwrap();
                    assert!(
                        feed.iter().any(|l| l.external_id == id),
                        "{id} is in the label feed once its write returned"
                    );
                }
                writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        let all_labels = f.store.labels(project, 0, 100_000).await.unwrap();
        let all_events = f.store.events(None, 0, 100_000).await.unwrap();
        assert_eq!(all_labels.len(), WRITERS * ROUNDS, "one label per item");
        for r in readers {
            let (label_at, event_at) = r.await.unwrap();
            assert_eq!(label_at, all_labels.last().unwrap().cursor, "a reader saw every label");
            assert_eq!(event_at, all_events.last().unwrap().seq, "a reader saw every event");
            assert_eq!(label_at as usize, all_labels.len());
            assert_eq!(event_at as usize, all_events.len());
        }
    }

    pub async fn gold_is_scored_and_a_careless_reviewer_held(f: Fixture) {
        use flywheel_core::policy::QualitySpec;
        let s = &f.store;
        let gold = (0..6)
            .map(|i| NewGold {
                external_id: format!("g{i}"),
                payload: json!({"text": "gold"}),
                attributes: json!({}),
                label: "spam".into(),
                prediction: None,
            })
            .collect();
        assert_eq!(s.add_gold(f.project.id, gold, "admin", 5).await.unwrap(), 6);
        f.submit((0..10).map(|i| review(&format!("r{i}"), "q", 1, 0, 1)).collect())
            .await;
        let a = f.reviewer("a", &[1]).await;
        let quality = QualitySpec {
            gold_rate: 1.0,
            min_accuracy: 0.9,
            min_gold: 4,
        };
        let judging: std::collections::HashMap<i64, Judging> = [(
            f.project.id,
            Judging {
                quality: Some(quality),
                ..Default::default()
            },
        )]
        .into();
        let request = |gold: bool| ClaimRequest {
            project_id: f.project.id,
            reviewer_id: a.id,
            reviewer_name: "a".into(),
            tiers: vec![1],
            queue: None,
            lease_ms: LEASE,
            gold: gold.then_some(0.0),
        };
        let mut held_at = None;
        for n in 0..6 {
            match s.claim(request(true), 100 + n).await {
                Err(StoreError::Forbidden {
                    code: "reviewer_held", ..
                }) => {
                    held_at = Some(n);
                    break;
                }
                other => {
                    let t = other.unwrap().unwrap();
                    assert!(t.external_id.starts_with('g'), "gold was asked for and exists");
                    let review = NewReview {
                        task_id: t.task_id,
                        lease_id: t.lease_id,
                        reviewer_id: a.id,
                        reviewer_name: "a".into(),
                        review_id: format!("n{n}"),
                        answer: label("ham"),
                        failure_category: None,
                        note: None,
                        fields: None,
                        judging: judging.clone(),
                    };
                    let r = s.submit_review(review, 110 + n).await.unwrap();
                    assert_eq!(r.outcome, "resolved", "a gold answer looks like any overlap-1 answer");
                }
            }
        }
        assert_eq!(held_at, Some(4), "held after min_gold wrong gold answers");
        assert!(
            matches!(
                s.claim(request(false), 150).await,
                Err(StoreError::Forbidden {
                    code: "reviewer_held",
                    ..
                })
            ),
            "held for regular work too"
        );
        let stats = s.reviewer_stats(f.project.id).await.unwrap();
        assert_eq!(
            (stats[0].gold_answers, stats[0].gold_correct, stats[0].held),
            (4, 0, true)
        );
        assert!(f.all_labels().await.is_empty(), "gold never reaches the label feed");
        s.release_reviewer(f.project.id, "a", "admin", 200).await.unwrap();
        let t = f.claim(&a, None, 201).await.expect("released");
        let granted = s.item(f.project.id, &t.external_id).await.unwrap().unwrap().events;
        let granted = granted
            .iter()
            .find(|e| e.kind == "lease.granted")
            .expect("the lease's event");
        assert_eq!(
            (granted.task_id, granted.actor.as_str()),
            (Some(t.task_id), "reviewer:a")
        );
        assert_eq!(
            granted.data,
            json!({"lease_id": t.lease_id, "reviewer_id": a.id, "expires_at": t.lease_expires_at, "stage": "review"})
        );
        assert!(matches!(
            s.release_reviewer(f.project.id, "zed", "admin", 200).await,
            Err(StoreError::NotFound { .. })
        ));
        let st = s.stats(f.project.id, 300).await.unwrap();
        assert_eq!(st.items, 10, "gold items are not counted as items");
    }

    /// Which gold item a claim hands out is the caller's draw (the pick-th unseen gold item
    /// by id), never the database's random(): a server with seeded draws — a demo — gives
    /// the same gold tasks on every run.
    pub async fn the_gold_item_is_the_callers_pick(f: Fixture) {
        let s = &f.store;
        let gold = (0..5)
            .map(|i| NewGold {
                external_id: format!("g{i}"),
                payload: json!({"text": "gold"}),
                attributes: json!({}),
                label: "spam".into(),
                prediction: None,
            })
            .collect();
        s.add_gold(f.project.id, gold, "admin", 5).await.unwrap();
        f.submit(vec![review("x", "q", 1, 0, 1)]).await;
        let a = f.reviewer("a", &[1]).await;
        let request = |pick: Option<f64>| ClaimRequest {
            project_id: f.project.id,
            reviewer_id: a.id,
            reviewer_name: "a".into(),
            tiers: vec![1],
            queue: None,
            lease_ms: LEASE,
            gold: pick,
        };
        let mut got = vec![];
        // Unseen g0..g4: 0 → g0; g1..g4: 0.999 → the last, g4; g1..g3: 0.5 → the middle,
        // g2; then g1 and g3; then none is left and the regular task comes.
        for (n, pick) in [0.0, 0.999, 0.5, 0.0, 0.9, 0.0].into_iter().enumerate() {
            let t = s.claim(request(Some(pick)), 100 + n as i64).await.unwrap().unwrap();
            got.push(t.external_id);
        }
        assert_eq!(got, ["g0", "g4", "g2", "g1", "g3", "x"]);
        assert_eq!(gold_pick_offset(0.999_999, 1), 0);
        assert_eq!(gold_pick_offset(1.0, 3), 2, "a pick is below 1; were it not, the last");
    }

    pub async fn dynamic_overlap_adds_a_slot(f: Fixture) {
        use flywheel_core::policy::{ConsensusMethod, ConsensusSpec};
        f.submit(vec![review("x", "q", 1, 0, 2)]).await;
        let judging: std::collections::HashMap<i64, Judging> = [(
            f.project.id,
            Judging {
                consensus: ConsensusSpec {
                    method: ConsensusMethod::Majority,
                    min_confidence: 0.9,
                    max_overlap: 3,
                },
                ..Default::default()
            },
        )]
        .into();
        let mut outcomes = vec![];
        for (i, lab) in ["spam", "ham", "spam"].iter().enumerate() {
            let r = f.reviewer(&format!("v{i}"), &[1]).await;
            let t = f.claim(&r, None, 100).await.expect("a slot");
            let review = NewReview {
                task_id: t.task_id,
                lease_id: t.lease_id,
                reviewer_id: r.id,
                reviewer_name: r.name.clone(),
                review_id: "x".into(),
                answer: label(lab),
                failure_category: None,
                note: None,
                fields: None,
                judging: judging.clone(),
            };
            outcomes.push(f.store.submit_review(review, 110).await.unwrap().outcome);
        }
        assert_eq!(
            outcomes,
            ["waiting", "waiting", "adjudicate"],
            "1-1 asks a third; 2-1 at the cap is not 0.9 sure"
        );
        let project_answers = f.store.project_answers(f.project.id).await.unwrap();
        assert_eq!(project_answers.len(), 3);
    }

    pub async fn closing_a_task_cancels_other_leases_and_expired_gold_closes(f: Fixture) {
        f.submit(vec![review("x", "q", 1, 0, 2), review("y", "q", 1, 0, 1)])
            .await;
        let a = f.reviewer("a", &[1]).await;
        let b = f.reviewer("b", &[1]).await;
        let ta = f.claim(&a, None, 100).await.unwrap();
        let tb = f.claim(&b, None, 100).await.unwrap();
        assert_eq!(ta.task_id, tb.task_id, "overlap 2: both hold a slot of x");
        let r = f
            .answer(
                &a,
                &ta,
                "esc",
                Answer::Escalate {
                    reason: "unsure".into(),
                },
                110,
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, "adjudicate");
        let late = f.answer(&b, &tb, "late", label("ham"), 120).await;
        assert!(
            matches!(late, Err(StoreError::Conflict { code: "lease_lost", .. })),
            "b's lease was cancelled"
        );
        let kinds: Vec<_> = f.all_events().await.into_iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&"lease.cancelled".to_string()), "{kinds:?}");

        let s = &f.store;
        let gold = vec![NewGold {
            external_id: "g".into(),
            payload: json!({"text": "gold"}),
            attributes: json!({}),
            label: "spam".into(),
            prediction: None,
        }];
        s.add_gold(f.project.id, gold, "admin", 130).await.unwrap();
        let c = f.reviewer("c", &[1]).await;
        let req = |who: &Reviewer, gold: bool| ClaimRequest {
            project_id: f.project.id,
            reviewer_id: who.id,
            reviewer_name: who.name.clone(),
            tiers: vec![1],
            queue: None,
            lease_ms: LEASE,
            gold: gold.then_some(0.0),
        };
        let t = s.claim(req(&c, true), 140).await.unwrap().unwrap();
        assert_eq!(t.external_id, "g");
        assert_eq!(s.expire_leases(140 + LEASE, 100).await.unwrap(), 1);
        let next = s.claim(req(&c, false), 150 + LEASE).await.unwrap().unwrap();
        assert_eq!(
            next.external_id, "y",
            "an expired gold task closes; it never becomes regular work"
        );
        let d = f.store.item(f.project.id, "g").await.unwrap().unwrap();
        assert!(d.tasks.iter().all(|t| t.state == "done"));
    }

    pub async fn accounts_sessions_and_keys(f: Fixture) {
        let s = &f.store;
        assert!(s.bootstrap_admin("admin-hash", 1).await.unwrap());
        let r = f.reviewer("ana", &[1]).await;
        assert_eq!(s.password_hash("ana").await.unwrap(), None, "no password yet");
        s.set_password("ana", Some("$argon2id$x"), "admin", 2).await.unwrap();
        assert_eq!(
            s.password_hash("ana").await.unwrap(),
            Some((r.id, "$argon2id$x".into()))
        );
        assert!(matches!(
            s.set_password("nobody", Some("h"), "admin", 2).await,
            Err(StoreError::NotFound { .. })
        ));

        // Sessions: by password (a reviewer) and by key; they expire and end.
        s.create_session("s-pw", SessionOwner::Reviewer(r.id), 100, 3)
            .await
            .unwrap();
        s.create_session("s-key", SessionOwner::Key("admin-hash".into()), 100, 3)
            .await
            .unwrap();
        assert!(matches!(s.session("s-pw", 50).await.unwrap(), Some(Principal::Reviewer(v)) if v.name == "ana"));
        assert_eq!(s.session("s-key", 50).await.unwrap(), Some(Principal::Admin));
        assert_eq!(s.session("s-pw", 100).await.unwrap(), None, "expired at expires_at");
        assert_eq!(s.session("nope", 50).await.unwrap(), None);
        s.end_session("s-pw").await.unwrap();
        assert_eq!(s.session("s-pw", 50).await.unwrap(), None);
        s.create_session("s-pw2", SessionOwner::Reviewer(r.id), 100, 3)
            .await
            .unwrap();
        s.set_password("ana", Some("$argon2id$y"), "admin", 4).await.unwrap();
        assert_eq!(
            s.session("s-pw2", 50).await.unwrap(),
            None,
            "a new password ends old sessions"
        );
        assert!(matches!(
            s.revoke_key("admin-hash", "admin", 4).await,
            Err(StoreError::Conflict {
                code: "last_admin_key",
                ..
            })
        ));

        // Grants change; a hold stops claims in that project until released.
        let r = s
            .update_reviewer("ana", vec![1, 2], vec!["spam".into()], "admin", 4)
            .await
            .unwrap();
        assert_eq!(r.tiers, vec![1, 2]);
        assert!(matches!(
            s.update_reviewer("ana", vec![1], vec!["nope".into()], "admin", 4).await,
            Err(StoreError::Invalid(e)) if e.field == "projects[0]"
        ));
        s.hold_reviewer(f.project.id, "ana", "rude notes", "admin", 5)
            .await
            .unwrap();
        let held = s.reviewer_stats(f.project.id).await.unwrap();
        assert!(held[0].held && held[0].held_reason.as_deref() == Some("rude notes"));
        s.release_reviewer(f.project.id, "ana", "admin", 6).await.unwrap();
        assert!(!s.reviewer_stats(f.project.id).await.unwrap()[0].held);

        // Keys: listed by hash (never the key); revoking one ends its sessions.
        s.add_reviewer_key("ana", "hash-ana-2", Some("laptop"), "admin", 7)
            .await
            .unwrap();
        // A key's name comes back; last use is unset until touched, then only moves forward.
        let key = |ks: Vec<KeyRecord>| ks.into_iter().find(|k| k.hash == "hash-ana-2").unwrap();
        let k = key(s.keys().await.unwrap());
        assert_eq!((k.name.as_deref(), k.last_used_at), (Some("laptop"), None));
        s.touch_key("hash-ana-2", 60_007).await.unwrap();
        s.touch_key("hash-ana-2", 50).await.unwrap();
        s.touch_key("no-such", 60_007).await.unwrap();
        assert_eq!(key(s.keys().await.unwrap()).last_used_at, Some(60_007));
        let accounts = s.reviewers().await.unwrap();
        assert_eq!(accounts.len(), 1);
        assert!(accounts[0].has_password);
        assert_eq!(accounts[0].active_keys, 2);
        s.create_session("s-ana-key", SessionOwner::Key("hash-ana-2".into()), 1000, 8)
            .await
            .unwrap();
        s.revoke_key("hash-ana-2", "admin", 9).await.unwrap();
        assert_eq!(s.session("s-ana-key", 10).await.unwrap(), None);
        assert_eq!(s.principal("hash-ana-2").await.unwrap(), None);
        assert!(matches!(
            s.revoke_key("no-such", "admin", 9).await,
            Err(StoreError::NotFound { .. })
        ));
        let keys = s.keys().await.unwrap();
        let k = keys.iter().find(|k| k.hash == "hash-ana-2").unwrap();
        assert_eq!(
            (k.kind.as_str(), k.reviewer.as_deref(), k.revoked_at),
            ("reviewer", Some("ana"), Some(9))
        );
        assert_eq!(s.reviewers().await.unwrap()[0].active_keys, 1);
        assert_eq!(
            s.projects()
                .await
                .unwrap()
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            vec!["spam"]
        );
        let kinds: Vec<String> = f.all_events().await.into_iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&"reviewer.held".to_string()));
    }

    pub async fn dashboard_series_and_queue_depths(f: Fixture) {
        let s = &f.store;
        // Items at t=10 (submit's clock): two to review, one auto; two carry a novelty.
        let mut b = review("b", "q", 1, 0, 1);
        b.prediction = auto("b", "ham", false).prediction;
        b.prediction.as_mut().unwrap().novelty = Some(0.75);
        let mut c = auto("c", "ham", false);
        c.prediction.as_mut().unwrap().novelty = Some(0.25);
        f.submit(vec![review("a", "q", 1, 0, 1), b, c]).await;
        let r = f.reviewer("ana", &[1]).await;
        let t = f.claim(&r, None, 20).await.unwrap();
        f.answer(&r, &t, "w1", label("spam"), 1_500).await.unwrap();
        let series = s.activity(f.project.id, 0, 1_000).await.unwrap();
        assert_eq!(
            series,
            vec![
                ActivityBucket {
                    start: 0,
                    auto: 1,
                    review: 2,
                    answers: 0,
                    novelty: Some(0.5)
                },
                ActivityBucket {
                    start: 1_000,
                    auto: 0,
                    review: 0,
                    answers: 1,
                    novelty: None
                },
            ]
        );
        assert_eq!(
            s.activity(f.project.id, 1_000, 1_000).await.unwrap().len(),
            1,
            "since filters"
        );
        // Open tasks by queue and tier: a tier-2 task due at 1,010 joins the tier-1 one left
        // open (no deadline).
        f.submit(vec![with_sla(review("d", "q", 2, 0, 1), 1)]).await;
        let depth = |tier, breaches| QueueDepth {
            queue: "q".into(),
            tier,
            open: 1,
            oldest_age_ms: 990,
            breaches,
        };
        assert_eq!(
            s.queue_depths(f.project.id, 1_000, vec!["q".into(), "other".into()])
                .await
                .unwrap(),
            vec![depth(1, Some(0)), depth(2, Some(0))],
            "not yet due"
        );
        assert_eq!(
            s.queue_depths(f.project.id, 1_000, vec![]).await.unwrap(),
            vec![depth(1, None), depth(2, None)],
            "no SLA, no breach count"
        );
        let at_due = |tier, breaches| QueueDepth {
            oldest_age_ms: 1_000,
            ..depth(tier, breaches)
        };
        assert_eq!(
            s.queue_depths(f.project.id, 1_010, vec!["q".into()]).await.unwrap(),
            vec![at_due(1, Some(0)), at_due(2, Some(1))],
            "the tier-2 task is due at 1,010; the other has no deadline"
        );
        // Answers per UTC day: one on day 0, then one on day 1 (the second task).
        let t2 = f.claim(&r, None, DAY_MS).await.unwrap();
        f.answer(&r, &t2, "w2", label("ham"), DAY_MS + 5).await.unwrap();
        assert_eq!(s.answers_on_day(r.id, 0).await.unwrap(), 1);
        assert_eq!(s.answers_on_day(r.id, 1).await.unwrap(), 1);
        assert_eq!(s.answers_on_day(r.id, 2).await.unwrap(), 0);
        let latest = s.latest_events(f.project.id, 2).await.unwrap();
        assert_eq!(latest.len(), 2);
        assert!(latest[0].seq > latest[1].seq, "newest first");
        assert_eq!(latest[0].seq, f.all_events().await.last().unwrap().seq);
    }

    /// Many callers at once, with external ids in common and two actors: the backends
    /// merge concurrent submissions (SQLite in its group commit, PostgreSQL into one
    /// statement), and each caller must still get exactly its own items' answers.
    pub async fn concurrent_submissions_are_each_answered(f: Fixture) {
        let store = f.store.clone();
        let project = f.project.id;
        let mut handles = Vec::new();
        for caller in 0..48usize {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let ids: Vec<String> = (0..1 + caller % 3)
                    .map(|k| format!("c{}", (caller * 7 + k) % 40))
                    .collect();
                let items = ids
                    .iter()
                    .enumerate()
                    .map(|(k, id)| match (caller + k) % 3 {
                        0 => auto(id, "spam", caller % 2 == 0),
                        1 => auto(id, "ham", false),
                        _ => review(id, "q", 1, i32::try_from(caller).unwrap(), 1),
                    })
                    .collect::<Vec<_>>();
                let sent: Vec<Decision> = items.iter().map(|i| i.decision.clone()).collect();
                let actor = if caller % 4 == 0 { "other" } else { "service" };
                let out = store
                    .submit_items(project, items, actor, 10 + caller as i64)
                    .await
                    .unwrap();
                (ids, sent, out, actor)
            }));
        }
        let mut first: std::collections::HashMap<String, (i64, Decision)> = Default::default();
        let mut creator: std::collections::HashMap<String, &str> = Default::default();
        let mut answers = Vec::new();
        for h in handles {
            let (ids, sent, out, actor) = h.await.unwrap();
            assert_eq!(out.len(), ids.len(), "each caller gets one answer per item it sent");
            for ((id, sent), o) in ids.iter().zip(sent).zip(out) {
                assert_eq!(&o.external_id, id, "answers come in the caller's order");
                if !o.duplicate {
                    assert_eq!(o.decision, sent, "a new item is answered with its own decision");
                    let earlier = first.insert(id.clone(), (o.item_id, o.decision.clone()));
                    assert!(earlier.is_none(), "'{id}' was created twice");
                    creator.insert(id.clone(), actor);
                }
                answers.push(o);
            }
        }
        assert_eq!(first.len(), 40, "every external id was created once");
        for o in answers.iter().filter(|o| o.duplicate) {
            let (item_id, decision) = &first[&o.external_id];
            assert_eq!(
                (o.item_id, &o.decision),
                (*item_id, decision),
                "a duplicate gets the stored item"
            );
        }
        for (id, (item_id, decision)) in &first {
            let d = f.store.item(project, id).await.unwrap().unwrap();
            assert_eq!((d.item_id, &d.decision), (*item_id, decision));
            let want_tasks =
                usize::from(matches!(decision.outcome, Outcome::Review { .. }) || decision.audit.is_some());
            assert_eq!(d.tasks.len(), want_tasks, "'{id}' has its one task, if any");
            let decided: Vec<_> = d.events.iter().filter(|e| e.kind == "item.decided").collect();
            assert_eq!(decided.len(), 1, "'{id}' has one item.decided event");
            assert_eq!(
                decided[0].actor, creator[id],
                "'{id}' was decided for the caller that created it"
            );
        }
        let stats = f.store.stats(project, 100).await.unwrap();
        assert_eq!(stats.items, 40);
    }

    /// An item one backend refuses (PostgreSQL's jsonb has no NUL; SQLite stores it) fails
    /// at most its own submission, never the others merged with it.
    pub async fn a_refused_item_fails_only_its_own_submission(f: Fixture) {
        // Many callers at once, so that refused items share statements with good ones.
        let bad = |caller: usize| caller % 10 == 7;
        let mut handles = Vec::new();
        for caller in 0..120usize {
            let store = f.store.clone();
            let project = f.project.id;
            handles.push(tokio::spawn(async move {
                let mut item = review(&format!("r{caller}"), "q", 1, 0, 1);
                if bad(caller) {
                    item.payload = json!({"text": "nul \u{0} here"});
                }
                store.submit_items(project, vec![item], "service", 10).await
            }));
        }
        let mut refused = 0;
        for (caller, h) in handles.into_iter().enumerate() {
            match h.await.unwrap() {
                Ok(out) => assert_eq!(out[0].external_id, format!("r{caller}")),
                Err(_) if bad(caller) => refused += 1,
                Err(e) => panic!("caller {caller} failed with a refused item's error: {e}"),
            }
        }
        for caller in (0..120).filter(|c| !bad(*c)) {
            assert!(
                f.store
                    .item(f.project.id, &format!("r{caller}"))
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        eprintln!("{refused} of 12 items with a NUL refused by this backend");
    }

    /// `/stats` counters kept with each write equal a recount after a mixed history —
    /// submissions, audits, answers that resolve, escalate and skip, deadlines — written
    /// by concurrent callers while other callers read (and, on PostgreSQL, fold) them.
    pub async fn stats_counters_equal_a_recount_under_concurrent_writes(f: Fixture) {
        let f = Arc::new(f);
        let mut reviewers = vec![];
        for i in 0..4 {
            reviewers.push(f.reviewer(&format!("s{i}"), &[1, 2]).await);
        }
        let mut handles = vec![];
        for caller in 0..4 {
            let f = f.clone();
            handles.push(tokio::spawn(async move {
                for batch in 0..10 {
                    let items: Vec<_> = (0..8)
                        .map(|i| {
                            let id = format!("m{caller}-{batch}-{i}");
                            match i % 4 {
                                0 => auto(&id, "spam", i % 8 == 0),
                                1 => with_sla(review(&id, "urgent", 1, 5, 1), 60),
                                2 => review(&id, "q", 1, 0, 2),
                                _ => review(&id, "q", 2, 0, 1),
                            }
                        })
                        .collect();
                    f.submit(items).await;
                }
            }));
        }
        for r in reviewers {
            let f = f.clone();
            handles.push(tokio::spawn(async move {
                for n in 0..40 {
                    let Some(t) = f.claim(&r, None, 100 + n).await else {
                        continue;
                    };
                    let answer = match n % 5 {
                        3 => Answer::Escalate {
                            reason: "unsure".into(),
                        },
                        4 => Answer::Skip { reason: String::new() },
                        _ => label(if n % 2 == 0 { "spam" } else { "ham" }),
                    };
                    // An escalation can close a task another reviewer holds: their answer
                    // then finds the lease cancelled, as it should.
                    match f.answer(&r, &t, &format!("a{n}"), answer, 100 + n).await {
                        Ok(_) | Err(StoreError::Conflict { code: "lease_lost", .. }) => {}
                        Err(e) => panic!("answer {n} of {}: {e}", r.name),
                    }
                }
            }));
        }
        for _ in 0..2 {
            let f = f.clone();
            handles.push(tokio::spawn(async move {
                for _ in 0..30 {
                    f.store.stats(f.project.id, 200).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        for now in [300, 70_000, 100_000_000] {
            let recount = f.store.stats_recount(f.project.id, now).await.unwrap();
            assert_eq!(recount.items, 320, "every submitted item is counted");
            assert!(recount.resolved > 0 && recount.open_tasks > 0, "{recount:?}");
            assert_eq!(f.store.stats(f.project.id, now).await.unwrap(), recount, "at {now}");
        }
    }

    pub async fn concurrent_claims_never_double_assign(f: Fixture) {
        let items: Vec<_> = (0..200).map(|i| review(&format!("c{i}"), "q", 1, 0, 1)).collect();
        f.submit(items).await;
        let mut reviewers = vec![];
        for i in 0..8 {
            reviewers.push(f.reviewer(&format!("r{i}"), &[1]).await);
        }
        let f = Arc::new(f);
        let mut handles = vec![];
        for r in reviewers {
            let f = f.clone();
            handles.push(tokio::spawn(async move {
                let mut got = vec![];
                while let Some(t) = f.claim(&r, None, 100).await {
                    got.push(t.task_id);
                }
                got
            }));
        }
        let mut all = vec![];
        for h in handles {
            all.extend(h.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "no task was handed out twice");
        assert_eq!(n, 200);
    }
}

/// Every event a case left in the log reads back as one of `flywheel_core::Event`'s kinds
/// with its typed data, on each backend: both write the same shapes.
async fn every_event_is_typed(store: &dyn Store) {
    let events = store.events(None, 0, 100_000).await.unwrap();
    for e in events {
        if let Err(err) = flywheel_core::Event::parse(&e.kind, e.data.clone()) {
            panic!("event {} ({}) does not parse: {err}: {}", e.seq, e.kind, e.data);
        }
    }
}

/// Every project's `/stats` counters equal a recount of its rows after whatever history a
/// case left, on each backend, at several moments from the last write on (the SLA figures
/// depend on `now`; stats are asked for the present, never for before a write).
async fn counters_equal_a_recount(store: &dyn Store) {
    let latest = store
        .events(None, 0, 100_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.at)
        .max()
        .unwrap_or(0);
    for p in store.projects().await.unwrap() {
        for now in [latest, latest + 60_000, latest + 3_600_000, latest + 10 * 86_400_000] {
            let recount = store.stats_recount(p.id, now).await.unwrap();
            // Twice: on PostgreSQL the first read may fold the deltas it summed.
            for _ in 0..2 {
                assert_eq!(
                    store.stats(p.id, now).await.unwrap(),
                    recount,
                    "project {} at {now}: counters against a recount",
                    p.name
                );
            }
        }
    }
}

macro_rules! conformance {
    ([$($case:ident),* $(,)?]) => {
        mod sqlite_backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let mut f = sqlite().await;
                    let (store, dir) = (f.store.clone(), f._dir.take());
                    suite::$case(f).await;
                    every_event_is_typed(&*store).await;
                    counters_equal_a_recount(&*store).await;
                    drop(dir);
                }
            )*
        }

        mod postgres_backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some((f, url, schema)) = postgres(stringify!($case)).await {
                        let store = f.store.clone();
                        suite::$case(f).await;
                        every_event_is_typed(&*store).await;
                        counters_equal_a_recount(&*store).await;
                        flywheel_store::postgres::PgStore::drop_schema(&url, &schema).await.unwrap();
                    }
                }
            )*
        }
    };
}

conformance!([
    keys_and_principals,
    projects_and_policy_versions,
    submit_is_idempotent,
    concurrent_submissions_are_each_answered,
    a_refused_item_fails_only_its_own_submission,
    claims_follow_priority_then_age_and_tiers,
    overlap_needs_distinct_reviewers_and_majority,
    escalate_and_skip,
    leases_expire_and_are_lost,
    reviews_are_idempotent_and_checked,
    audits_confirm_or_correct,
    feeds_page_by_cursor,
    feeds_have_no_gap_under_concurrent_writers_and_readers,
    concurrent_claims_never_double_assign,
    stats_counters_equal_a_recount_under_concurrent_writes,
    accounts_sessions_and_keys,
    dashboard_series_and_queue_depths,
    gold_is_scored_and_a_careless_reviewer_held,
    the_gold_item_is_the_callers_pick,
    dynamic_overlap_adds_a_slot,
    closing_a_task_cancels_other_leases_and_expired_gold_closes,
    webhooks_keep_a_cursor_and_their_attempts,
    webhooks_belong_to_their_project,
    webhook_backlog_counts_events_after_enabled_cursors,
    export_pages_items_with_answers_and_filters,
    imported_labels_resolve_items_once,
    a_withdrawn_grant_cancels_that_projects_leases,
    a_hold_cancels_the_reviewers_leases_in_the_project,
    workload_answers_are_read_by_window,
    too_fast_answers_are_stored_and_discounted,
    gold_answers_are_signals_and_a_lone_answer_is_not,
    fatigue_is_recorded_once_per_session,
    claims_follow_priority_then_deadline_then_age,
    sla_warning_and_breach_are_written_once_per_task,
    answered_within_sla_is_the_share_closed_by_the_deadline,
    sla_escalate_moves_the_task_up_and_keeps_its_leases,
    sla_auto_resolves_with_the_model_label_or_only_notes,
    adjudication_and_escalation_tasks_get_their_queues_deadline,
    a_gold_hold_cancels_the_reviewers_other_leases,
    an_item_answered_or_skipped_never_comes_back,
    answer_fields_are_checked_stored_and_resolved,
    undo_replaces_an_open_tasks_answer_within_the_window,
    an_amendment_after_resolution_reopens_adjudication,
    deactivation_ends_leases_and_access_and_the_tier_it_held,
    items_are_found_by_text_label_reviewer_state_and_time,
    a_search_page_reads_at_most_its_bound_and_says_where_to_go_on,
    an_override_resolves_or_reroutes_and_ends_the_leases,
    multi_label_answers_are_checked_stored_and_decided_per_label,
]);
