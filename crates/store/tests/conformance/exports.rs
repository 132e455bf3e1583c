//! Exports and imported labels: keyset pages with answers and filters; labels given
//! elsewhere resolving items once.

use super::*;
use flywheel_core::task::Source;

async fn export_all(f: &Fixture, filter: ExportFilter, page: usize) -> Vec<ExportRow> {
    let mut out: Vec<ExportRow> = Vec::new();
    loop {
        let after = out.last().map_or(0, |r| r.item_id);
        let rows = f
            .store
            .export_items(f.project.id, filter.clone(), after, page)
            .await
            .unwrap();
        assert!(rows.len() <= page);
        if rows.is_empty() {
            return out;
        }
        out.extend(rows);
    }
}

fn ids(rows: &[ExportRow]) -> Vec<&str> {
    rows.iter().map(|r| r.external_id.as_str()).collect()
}

pub async fn export_pages_items_with_answers_and_filters(f: Fixture) {
    let s = &f.store;
    s.submit_items(
        f.project.id,
        vec![review("r1", "q", 1, 0, 1), review("r2", "q", 1, 0, 1)],
        "service",
        100,
    )
    .await
    .unwrap();
    s.submit_items(f.project.id, vec![auto("a1", "spam", false)], "service", 200)
        .await
        .unwrap();
    s.submit_items(
        f.project.id,
        vec![review("r3", "q", 1, 0, 1), auto("a2", "ham", false)],
        "service",
        300,
    )
    .await
    .unwrap();
    s.add_gold(
        f.project.id,
        vec![NewGold {
            external_id: "g1".into(),
            payload: json!({"text": "gold"}),
            attributes: json!({}),
            label: "ham".into(),
            prediction: None,
        }],
        "admin",
        300,
    )
    .await
    .unwrap();
    let ann = f.reviewer("ann", &[1]).await;
    let t = f.claim(&ann, None, 400).await.unwrap();
    assert_eq!(t.external_id, "r1");
    f.answer(&ann, &t, "x1", label("spam"), 450).await.unwrap();

    let all = export_all(&f, ExportFilter::default(), 2).await;
    assert_eq!(
        ids(&all),
        ["r1", "r2", "a1", "r3", "a2"],
        "id order, gold left out, across pages"
    );
    let r1 = &all[0];
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r1.payload).unwrap(),
        json!({"text": "text of r1"})
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&all[2].attributes).unwrap(),
        json!({"country": "FR"})
    );
    assert_eq!(r1.created_at, 100);
    assert_eq!(r1.decision().unwrap().rule, "r");
    let res = r1.resolution().unwrap().unwrap();
    assert_eq!((res.label.as_str(), res.source), ("spam", Source::Human));
    assert_eq!(
        r1.reviews,
        vec![ExportReview {
            reviewer: "ann".into(),
            stage: Stage::Review,
            answer: "label".into(),
            label: Some("spam".into()),
            claimed_at: 400,
            answered_at: 450,
        }]
    );
    assert!(all[1].reviews.is_empty() && all[1].resolution_json.is_none());
    let a1 = &all[2];
    assert_eq!(a1.resolution().unwrap().unwrap().source, Source::Auto);
    assert_eq!(a1.prediction().unwrap().unwrap().model, "m");

    let window = ExportFilter {
        since: Some(200),
        until: Some(300),
        source: None,
    };
    assert_eq!(
        ids(&export_all(&f, window, 10).await),
        ["a1"],
        "since is inclusive, until is not"
    );
    let by = |source| ExportFilter {
        source: Some(source),
        ..Default::default()
    };
    assert_eq!(
        ids(&export_all(&f, by(SourceFilter::Resolved(Source::Auto)), 10).await),
        ["a1", "a2"]
    );
    assert_eq!(
        ids(&export_all(&f, by(SourceFilter::Resolved(Source::Human)), 10).await),
        ["r1"]
    );
    assert_eq!(
        ids(&export_all(&f, by(SourceFilter::Unresolved), 1).await),
        ["r2", "r3"]
    );
    let after_all = s
        .export_items(f.project.id, ExportFilter::default(), all[4].item_id, 10)
        .await
        .unwrap();
    assert!(after_all.is_empty());
}

pub async fn imported_labels_resolve_items_once(f: Fixture) {
    let s = &f.store;
    f.submit(vec![
        review("r1", "q", 1, 0, 1),
        review("r2", "q", 1, 0, 1),
        review("r3", "q", 1, 0, 1),
        review("r4", "q", 1, 0, 1),
        auto("a1", "spam", false),
    ])
    .await;
    let ann = f.reviewer("ann", &[1]).await;
    // ann holds r1's lease and has answered r4 (resolved by a human already).
    let held = f.claim(&ann, None, 20).await.unwrap();
    assert_eq!(held.external_id, "r1");
    let bob = f.reviewer("bob", &[1]).await;
    let mut t = f.claim(&bob, None, 20).await.unwrap();
    while t.external_id != "r4" {
        t = f.claim(&bob, None, 20).await.unwrap();
    }
    f.answer(&bob, &t, "b4", label("ham"), 30).await.unwrap();
    let labels_before = f.all_labels().await.len();

    let imported = |id: &str, l: &str| ImportedLabel {
        external_id: id.into(),
        label: l.into(),
        reviewers: vec!["ls-1".into(), "ls-2".into()],
        confidence: 1.0,
    };
    // Checked whole before anything is written.
    let bad = s
        .import_labels(
            f.project.id,
            vec![imported("r2", "spam"), imported("nope", "spam")],
            "admin",
            50,
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(v)) if v.field == "labels[1].external_id"));
    let bad = s
        .import_labels(f.project.id, vec![imported("r2", "maybe")], "admin", 50)
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(v)) if v.field == "labels[0].label"));
    assert_eq!(
        f.all_labels().await.len(),
        labels_before,
        "a refused import writes nothing"
    );
    assert!(s.item(f.project.id, "r2").await.unwrap().unwrap().resolution.is_none());

    let batch = vec![
        imported("r1", "spam"),
        imported("r2", "ham"),
        imported("r4", "spam"),
        imported("a1", "ham"),
    ];
    let n = s.import_labels(f.project.id, batch.clone(), "admin", 60).await.unwrap();
    assert_eq!(n, 3, "r4 was resolved by a human already");
    let r1 = s.item(f.project.id, "r1").await.unwrap().unwrap();
    let res = r1.resolution.unwrap();
    assert_eq!(
        (res.label.as_str(), res.source, res.method.as_str(), res.resolved_at),
        ("spam", Source::Human, IMPORTED, 60)
    );
    assert_eq!(res.reviewers, ["ls-1", "ls-2"]);
    assert!(
        r1.tasks.iter().all(|t| t.state == "done"),
        "the item's open task is closed"
    );
    let lost = f.answer(&ann, &held, "a1", label("ham"), 70).await;
    assert!(
        matches!(lost, Err(StoreError::Conflict { code: "lease_lost", .. })),
        "the lease on a closed task is cancelled: {lost:?}"
    );
    assert_eq!(
        s.item(f.project.id, "r4")
            .await
            .unwrap()
            .unwrap()
            .resolution
            .unwrap()
            .label,
        "ham"
    );
    let a1 = s.item(f.project.id, "a1").await.unwrap().unwrap();
    assert_eq!(
        a1.resolution.unwrap().label,
        "ham",
        "an imported human label replaces an auto one"
    );
    let resolved = a1.events.iter().find(|e| e.kind == "item.resolved").unwrap();
    assert_eq!(resolved.data["previous"], "spam");
    assert_eq!(resolved.data["method"], IMPORTED);

    let feed = f.all_labels().await;
    let new: Vec<_> = feed[labels_before..]
        .iter()
        .map(|l| (l.external_id.as_str(), l.label.as_str(), l.source.as_str()))
        .collect();
    assert_eq!(
        new,
        [("r1", "spam", "human"), ("r2", "ham", "human"), ("a1", "ham", "human")]
    );
    let r3 = s.item(f.project.id, "r3").await.unwrap().unwrap();
    assert!(
        r3.resolution.is_none() && r3.tasks[0].state == "open",
        "an item not imported stays open"
    );

    // One external id twice in a batch: resolved once.
    let twice = vec![imported("r3", "spam"), imported("r3", "ham")];
    assert_eq!(s.import_labels(f.project.id, twice, "admin", 85).await.unwrap(), 1);
    assert_eq!(
        s.item(f.project.id, "r3")
            .await
            .unwrap()
            .unwrap()
            .resolution
            .unwrap()
            .label,
        "spam"
    );
    let feed = f.all_labels().await;

    // Idempotent: the same import again changes nothing.
    assert_eq!(s.import_labels(f.project.id, batch, "admin", 90).await.unwrap(), 0);
    assert_eq!(f.all_labels().await.len(), feed.len());
}
