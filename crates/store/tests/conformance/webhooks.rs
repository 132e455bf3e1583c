//! Conformance cases for webhooks: endpoints, their cursors into the event log, delivery
//! rounds (held by one round at a time, written at the end, never over a change the API
//! made meanwhile), attempts and rotation. Part of the conformance binary.

use flywheel_core::Event;
use flywheel_core::event::WebhookFailing;
use flywheel_store::*;

use super::{Fixture, review};

fn new_hook(url: &str) -> NewWebhook {
    NewWebhook {
        url: url.into(),
        events: vec!["item.*".into()],
        enabled: true,
        secret: "whsec_AAAA".into(),
    }
}

fn attempt(seq: i64, n: u32, outcome: AttemptOutcome, at: Millis) -> DeliveryAttempt {
    DeliveryAttempt {
        event_seq: seq,
        kind: "item.decided".into(),
        message_id: message_id(1, seq),
        attempt: n,
        at,
        status: Some(if outcome == AttemptOutcome::Delivered { 200 } else { 500 }),
        latency_ms: 3,
        response: "ok".into(),
        outcome,
        next_attempt_at: None,
    }
}

pub async fn webhooks_keep_a_cursor_and_their_attempts(f: Fixture) {
    let (s, p) = (f.store, f.project.id);
    let before = s.events(Some(p), 0, 1000).await.unwrap();
    let hook = s
        .create_webhook(p, new_hook("http://a.example/h"), "admin", 10)
        .await
        .unwrap();
    assert_eq!(
        hook.cursor,
        before.last().map_or(0, |e| e.seq),
        "new endpoints start at the end of the log"
    );
    assert!((hook.enabled, hook.failing, hook.attempts) == (true, false, 0));
    assert_eq!(s.webhooks(p).await.unwrap(), vec![hook.clone()]);
    // Its own `webhook.created` is after the cursor: there is work.
    assert_eq!(s.due_webhooks(10).await.unwrap(), vec![hook.id]);

    s.submit_items(p, vec![review("a", "q", 1, 0, 1), review("b", "q", 1, 0, 1)], "svc", 20)
        .await
        .unwrap();
    let events = s.events(Some(p), hook.cursor, 100).await.unwrap();
    let decided: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "item.decided")
        .map(|e| e.seq)
        .collect();
    assert_eq!(decided.len(), 2);

    // One round at a time holds an endpoint.
    let lease = s.lease_webhook(hook.id, 30).await.unwrap().expect("due and free");
    assert!(
        s.lease_webhook(hook.id, 30).await.unwrap().is_none(),
        "held by the first round"
    );
    let t = lease.target();
    assert_eq!(
        (t.secrets.clone(), t.hook.cursor),
        (vec!["whsec_AAAA".to_string()], hook.cursor)
    );
    let round = DeliveryRound {
        attempts: vec![
            attempt(decided[0], 1, AttemptOutcome::Delivered, 31),
            attempt(decided[1], 1, AttemptOutcome::Failed, 32),
        ],
        cursor: decided[0],
        head_attempts: 1,
        next_attempt_at: 5_032,
        failing: false,
        disable: false,
        events: vec![],
    };
    lease.finish(round, 33).await.unwrap();
    let h = s.webhook(p, hook.id).await.unwrap().unwrap();
    assert_eq!((h.cursor, h.attempts, h.next_attempt_at), (decided[0], 1, 5_032));
    let d = s.webhook_deliveries(p, hook.id, 10).await.unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].attempt.event_seq, d[0].attempt.outcome, d[1].attempt.outcome),
        (decided[1], AttemptOutcome::Failed, AttemptOutcome::Delivered),
        "newest first"
    );
    assert!(s.due_webhooks(5_031).await.unwrap().is_empty(), "not before the retry");
    assert!(s.lease_webhook(hook.id, 5_031).await.unwrap().is_none());
    assert_eq!(s.due_webhooks(5_032).await.unwrap(), vec![hook.id]);

    // A round that read the endpoint before a replay does not write over the replay.
    let lease = s.lease_webhook(hook.id, 6_000).await.unwrap().unwrap();
    let replayed = s.replay_webhook(p, hook.id, decided[0], "admin", 6_001).await.unwrap();
    assert_eq!((replayed.cursor, replayed.attempts), (decided[0] - 1, 0));
    let round = DeliveryRound {
        attempts: vec![attempt(decided[1], 2, AttemptOutcome::GivenUp, 6_002)],
        cursor: decided[1],
        failing: true,
        events: vec![Event::WebhookFailing(WebhookFailing {
            webhook_id: hook.id,
            url: hook.url.clone(),
            event_seq: decided[1],
            attempts: 2,
            status: Some(500),
            error: "ok".into(),
        })],
        ..Default::default()
    };
    lease.finish(round, 6_003).await.unwrap();
    let h = s.webhook(p, hook.id).await.unwrap().unwrap();
    assert_eq!((h.cursor, h.failing), (decided[0] - 1, false), "the replay stands");
    assert_eq!(
        s.webhook_deliveries(p, hook.id, 10).await.unwrap().len(),
        3,
        "the attempt is kept"
    );
    let kinds = |evs: Vec<EventRecord>| evs.into_iter().map(|e| e.kind).collect::<Vec<_>>();
    assert!(!kinds(s.events(Some(p), 0, 1000).await.unwrap()).contains(&"webhook.failing".to_string()));

    // The same round on the current endpoint writes its state and events; 410 disables.
    let lease = s.lease_webhook(hook.id, 7_000).await.unwrap().unwrap();
    let round = DeliveryRound {
        cursor: decided[0],
        failing: true,
        disable: true,
        events: vec![Event::WebhookFailing(WebhookFailing {
            webhook_id: hook.id,
            url: hook.url.clone(),
            event_seq: decided[0],
            attempts: 10,
            status: None,
            error: "timed out".into(),
        })],
        ..Default::default()
    };
    lease.finish(round, 7_001).await.unwrap();
    let h = s.webhook(p, hook.id).await.unwrap().unwrap();
    assert_eq!((h.cursor, h.failing, h.enabled), (decided[0], true, false));
    assert!(kinds(s.events(Some(p), 0, 1000).await.unwrap()).contains(&"webhook.failing".to_string()));
    assert!(s.due_webhooks(8_000).await.unwrap().is_empty(), "disabled");
    assert!(s.lease_webhook(hook.id, 8_000).await.unwrap().is_none());
    let change = WebhookChange {
        enabled: Some(true),
        ..Default::default()
    };
    let h = s.update_webhook(p, hook.id, change, "admin", 8_001).await.unwrap();
    assert!(h.enabled && h.next_attempt_at == 0);
    assert_eq!(s.due_webhooks(8_002).await.unwrap(), vec![hook.id]);

    // Rotation: both secrets sign until `previous_until`, then the new one alone.
    let r = s
        .rotate_webhook(p, hook.id, "whsec_BBBB", 9_000, "admin", 8_003)
        .await
        .unwrap();
    assert_eq!(r.previous_until, Some(9_000));
    let lease = s.lease_webhook(hook.id, 8_999).await.unwrap().unwrap();
    assert_eq!(
        lease.target().secrets,
        vec!["whsec_BBBB".to_string(), "whsec_AAAA".to_string()]
    );
    lease
        .finish(
            DeliveryRound {
                cursor: decided[0],
                ..Default::default()
            },
            8_999,
        )
        .await
        .unwrap();
    let lease = s.lease_webhook(hook.id, 9_000).await.unwrap().unwrap();
    assert_eq!(lease.target().secrets, vec!["whsec_BBBB".to_string()]);
    drop(lease);
    // A dropped round lets go. On PostgreSQL the round is a transaction whose rollback (and
    // with it the advisory lock) sqlx runs after the drop, on the connection's next use, so
    // the endpoint comes free shortly after rather than at once: wait for it, boundedly.
    let mut free = false;
    for _ in 0..200 {
        if s.lease_webhook(hook.id, 9_001).await.unwrap().is_some() {
            free = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(free, "a dropped round lets go");
}

pub async fn webhooks_belong_to_their_project(f: Fixture) {
    let (s, p) = (f.store, f.project.id);
    let other = s
        .create_project(
            NewProject {
                name: "other".into(),
                labels: vec!["a".into(), "b".into()],
                policy: serde_json::json!({"rules": []}),
                answer_fields: serde_json::json!([]),
                label_mode: Default::default(),
            },
            "admin",
            1,
        )
        .await
        .unwrap();
    let hook = s
        .create_webhook(p, new_hook("http://a.example/h"), "admin", 10)
        .await
        .unwrap();
    let hook2 = s
        .create_webhook(other.id, new_hook("http://b.example/h"), "admin", 10)
        .await
        .unwrap();
    assert_ne!(hook.id, hook2.id);
    assert_eq!(s.webhook(other.id, hook.id).await.unwrap(), None);
    let missing = s
        .update_webhook(other.id, hook.id, WebhookChange::default(), "admin", 11)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    assert!(matches!(
        s.delete_webhook(other.id, hook.id, "admin", 11).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.webhook_deliveries(other.id, hook.id, 5).await,
        Err(StoreError::NotFound { .. })
    ));
    s.delete_webhook(p, hook.id, "admin", 12).await.unwrap();
    assert!(s.webhooks(p).await.unwrap().is_empty());
    assert_eq!(s.webhooks(other.id).await.unwrap().len(), 1);
    // A new endpoint never takes a deleted one's id (message ids name the endpoint).
    let again = s
        .create_webhook(p, new_hook("http://a.example/h"), "admin", 13)
        .await
        .unwrap();
    assert!(again.id > hook2.id);
}

pub async fn webhook_backlog_counts_events_after_enabled_cursors(f: Fixture) {
    let (s, p) = (f.store, f.project.id);
    assert!(s.webhook_backlog().await.unwrap().is_empty(), "no endpoint, no backlog");
    let a = s
        .create_webhook(p, new_hook("http://a.example/h"), "admin", 10)
        .await
        .unwrap();
    // `a`'s own `webhook.created` is after its cursor.
    assert_eq!(s.webhook_backlog().await.unwrap(), vec![(p, 1)]);
    let b = s
        .create_webhook(p, new_hook("http://b.example/h"), "admin", 11)
        .await
        .unwrap();
    assert_eq!(
        s.webhook_backlog().await.unwrap(),
        vec![(p, 2 + 1)],
        "a: 2 events, b: 1"
    );
    s.submit_items(p, vec![review("a", "q", 1, 0, 1), review("b", "q", 1, 0, 1)], "svc", 20)
        .await
        .unwrap();
    let head = s.events(Some(p), 0, 1000).await.unwrap().last().unwrap().seq;
    let after = |cursor: i64| {
        let s = s.clone();
        async move { s.events(Some(p), cursor, 1000).await.unwrap().len() as i64 }
    };
    let (behind_a, behind_b) = (after(a.cursor).await, after(b.cursor).await);
    assert!(behind_b >= 3, "webhook.created and two items");
    assert_eq!(s.webhook_backlog().await.unwrap(), vec![(p, behind_a + behind_b)]);

    // A round that reaches the head leaves only the other endpoint's backlog.
    let lease = s.lease_webhook(a.id, 30).await.unwrap().unwrap();
    let round = DeliveryRound {
        cursor: head,
        ..Default::default()
    };
    lease.finish(round, 31).await.unwrap();
    assert_eq!(s.webhook_backlog().await.unwrap(), vec![(p, behind_b)]);

    // A disabled endpoint's backlog leaves the sum (its `webhook.updated` is `a`'s).
    let off = WebhookChange {
        enabled: Some(false),
        ..Default::default()
    };
    s.update_webhook(p, b.id, off, "admin", 40).await.unwrap();
    let behind = after(head).await;
    assert_eq!(s.webhook_backlog().await.unwrap(), vec![(p, behind)]);
    assert!(behind >= 1, "b's webhook.updated is after a's cursor");
    let lease = s.lease_webhook(a.id, 50).await.unwrap().unwrap();
    let head = s.events(Some(p), 0, 1000).await.unwrap().last().unwrap().seq;
    let round = DeliveryRound {
        cursor: head,
        ..Default::default()
    };
    lease.finish(round, 51).await.unwrap();
    assert_eq!(s.webhook_backlog().await.unwrap(), vec![(p, 0)], "caught up reads 0");
}
