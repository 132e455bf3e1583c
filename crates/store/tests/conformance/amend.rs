//! Undo and amend: a reviewer's change of mind, written as core's `amend::plan` says —
//! replaced within the window while the task is open, an adjudication one tier up once
//! it has closed — with an idempotency key, and refusals that write nothing.

use super::*;

fn amendment(r: &Reviewer, review_id: &str, amend_id: &str, label: &str, reason: Option<&str>) -> NewAmendment {
    NewAmendment {
        reviewer_id: r.id,
        reviewer_name: r.name.clone(),
        review_id: review_id.into(),
        amend_id: amend_id.into(),
        label: Some(label.into()),
        labels: None,
        reason: reason.map(str::to_string),
        fields: None,
        // The project's rules: a 60 s window (the policy's default).
        rules: [(
            1,
            AmendRules {
                undo_seconds: 60,
                slas: Default::default(),
                multi: false,
                fields: Default::default(),
            },
        )]
        .into(),
    }
}

fn fix_project(mut a: NewAmendment, project_id: i64) -> NewAmendment {
    let rules = a.rules.remove(&1).unwrap();
    a.rules.insert(project_id, rules);
    a
}

async fn kinds(f: &Fixture, kind: &str) -> Vec<serde_json::Value> {
    f.all_events()
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.data)
        .collect()
}

pub async fn undo_replaces_an_open_tasks_answer_within_the_window(f: Fixture) {
    let s = &f.store;
    let pid = f.project.id;
    let (ann, bob) = (f.reviewer("ann", &[1]).await, f.reviewer("bob", &[1]).await);
    f.submit(vec![review("a", "default", 1, 0, 2), review("b", "default", 1, 0, 2)])
        .await;
    let t = f.claim(&ann, None, 1_000).await.unwrap();
    assert_eq!(t.external_id, "a");
    assert_eq!(
        f.answer(&ann, &t, "r-a", label("spam"), 2_000).await.unwrap().outcome,
        "waiting"
    );
    let undo = fix_project(amendment(&ann, "r-a", "m1", "ham", None), pid);
    let got = s.amend_review(undo.clone(), 31_000).await.unwrap();
    assert_eq!(
        (
            got.outcome.as_str(),
            got.previous.as_deref(),
            got.label.as_str(),
            got.adjudication_task_id
        ),
        ("undone", Some("spam"), "ham", None)
    );
    // A retried amend_id gets the stored result and writes nothing more.
    assert_eq!(s.amend_review(undo, 90_000).await.unwrap(), got);
    let undone = kinds(&f, "review.undone").await;
    assert_eq!(undone.len(), 1);
    assert_eq!(undone[0]["previous"], "spam");
    assert_eq!(undone[0]["label"], "ham");
    assert_eq!(undone[0]["reviewer_id"], ann.id);
    // Consensus counts the new label: bob's "ham" agrees with it and resolves the item.
    let t2 = f.claim(&bob, None, 40_000).await.unwrap();
    assert_eq!(t2.external_id, "a");
    let res = f.answer(&bob, &t2, "r-a-bob", label("ham"), 41_000).await.unwrap();
    assert_eq!(res.outcome, "resolved");
    assert_eq!(res.resolution.unwrap().label, "ham");
    let item = s.item(pid, "a").await.unwrap().unwrap();
    let anns = item.reviews.iter().find(|r| r.reviewer == "ann").unwrap();
    assert_eq!(anns.label.as_deref(), Some("ham"));

    // Past the window, with the task still open, a change is refused and writes nothing.
    let t = f.claim(&ann, None, 50_000).await.unwrap();
    assert_eq!(t.external_id, "b");
    f.answer(&ann, &t, "r-b", label("spam"), 51_000).await.unwrap();
    let late = s
        .amend_review(fix_project(amendment(&ann, "r-b", "m2", "ham", None), pid), 111_001)
        .await;
    assert!(
        matches!(
            late,
            Err(StoreError::Conflict {
                code: "undo_expired",
                ..
            })
        ),
        "{late:?}"
    );
    let item = s.item(pid, "b").await.unwrap().unwrap();
    assert_eq!(item.reviews[0].label.as_deref(), Some("spam"));
    // The same label changes nothing; a label outside the project, an answer the reviewer
    // never gave, and another reviewer's answer are refused.
    let same = s
        .amend_review(fix_project(amendment(&ann, "r-b", "m3", "spam", None), pid), 52_000)
        .await
        .unwrap();
    assert_eq!(same.outcome, "unchanged");
    let bad = s
        .amend_review(fix_project(amendment(&ann, "r-b", "m4", "eggs", None), pid), 52_000)
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(v)) if v.field == "label"));
    let none = s
        .amend_review(fix_project(amendment(&ann, "r-zz", "m5", "ham", None), pid), 52_000)
        .await;
    assert!(matches!(none, Err(StoreError::NotFound { .. })), "{none:?}");
    let theirs = s
        .amend_review(fix_project(amendment(&bob, "r-b", "m6", "ham", None), pid), 52_000)
        .await;
    assert!(matches!(theirs, Err(StoreError::NotFound { .. })), "{theirs:?}");
    assert_eq!(kinds(&f, "review.undone").await.len(), 1);
}

pub async fn an_amendment_after_resolution_reopens_adjudication(f: Fixture) {
    let s = &f.store;
    let pid = f.project.id;
    let (ann, lead) = (f.reviewer("ann", &[1]).await, f.reviewer("lead", &[2]).await);
    f.submit(vec![review("a", "default", 1, 4, 1), review("b", "default", 1, 0, 1)])
        .await;
    let t = f.claim(&ann, None, 1_000).await.unwrap();
    let first = f.answer(&ann, &t, "r-a", label("spam"), 2_000).await.unwrap();
    assert_eq!(first.outcome, "resolved");
    assert!(f.claim(&lead, None, 3_000).await.is_none(), "nothing at tier 2 yet");
    // Long past the window: the task has closed, so this is an amendment.
    let m = fix_project(amendment(&ann, "r-a", "m1", "ham", Some("misread the sender")), pid);
    let got = s.amend_review(m.clone(), 10_000_000).await.unwrap();
    assert_eq!(
        (got.outcome.as_str(), got.previous.as_deref()),
        ("amended", Some("spam"))
    );
    let adj = got.adjudication_task_id.expect("an adjudication task");
    assert_eq!(
        s.amend_review(m, 10_000_001).await.unwrap(),
        got,
        "a retry opens nothing more"
    );
    let amended = kinds(&f, "review.amended").await;
    assert_eq!(amended.len(), 1);
    assert_eq!(amended[0]["adjudication_tier"], 2);
    let escalated = kinds(&f, "task.escalated").await;
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0]["from_task"], t.task_id);
    // The item keeps its resolution until the adjudicator decides; the new task carries
    // the reason, one tier up, at the answered task's priority.
    let item = s.item(pid, "a").await.unwrap().unwrap();
    assert_eq!(item.resolution.as_ref().unwrap().label, "spam");
    let task = item.tasks.iter().find(|x| x.task_id == adj).unwrap();
    assert_eq!(task.tier, 2);
    assert!(
        task.reason.as_deref().unwrap().contains("misread the sender"),
        "{task:?}"
    );
    // The reviewer who amended is not handed it; the lead is, and resolves it.
    assert!(f.claim(&ann, None, 10_000_100).await.unwrap().external_id == "b");
    let c = f.claim(&lead, None, 10_000_200).await.unwrap();
    assert_eq!((c.task_id, c.stage), (adj, Stage::Adjudicate));
    let res = f.answer(&lead, &c, "r-lead", label("ham"), 10_000_300).await.unwrap();
    assert_eq!(res.outcome, "resolved");
    assert_eq!(
        s.item(pid, "a").await.unwrap().unwrap().resolution.unwrap().label,
        "ham"
    );
    let fed: Vec<_> = f.all_labels().await.into_iter().map(|l| l.label).collect();
    assert_eq!(fed, vec!["spam", "ham"], "the label feed gets the adjudicated label");

    // An escalation amended while its adjudication is open opens no second one.
    let (ben, pat) = (f.reviewer("ben", &[1]).await, f.reviewer("pat", &[1]).await);
    f.submit(vec![review("c", "default", 1, 9, 1)]).await;
    let t = f.claim(&ben, None, 10_001_000).await.unwrap();
    assert_eq!(t.external_id, "c");
    let up = f
        .answer(
            &ben,
            &t,
            "r-c",
            Answer::Escalate {
                reason: "unsure".into(),
            },
            10_001_100,
        )
        .await
        .unwrap();
    assert_eq!(up.outcome, "adjudicate");
    let got = s
        .amend_review(fix_project(amendment(&ben, "r-c", "m2", "ham", None), pid), 10_001_200)
        .await
        .unwrap();
    assert_eq!(
        (got.outcome.as_str(), got.previous, got.adjudication_task_id),
        ("amended", None, None)
    );
    let open_adjudications = s
        .item(pid, "c")
        .await
        .unwrap()
        .unwrap()
        .tasks
        .iter()
        .filter(|x| x.stage == Stage::Adjudicate)
        .count();
    assert_eq!(open_adjudications, 1);
    // A skip gave the task back: there is nothing to amend.
    f.submit(vec![review("d", "default", 1, 9, 1)]).await;
    let t = f.claim(&pat, None, 10_002_000).await.unwrap();
    assert_eq!(t.external_id, "d");
    f.answer(&pat, &t, "r-d", Answer::Skip { reason: String::new() }, 10_002_100)
        .await
        .unwrap();
    let skip = s
        .amend_review(fix_project(amendment(&pat, "r-d", "m3", "ham", None), pid), 10_002_200)
        .await;
    assert!(
        matches!(
            skip,
            Err(StoreError::Conflict {
                code: "not_amendable",
                ..
            })
        ),
        "{skip:?}"
    );
}
