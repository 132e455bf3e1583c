//! Item search: by text in the external id or payload, resolved label, reviewer, state
//! and time, newest first, keyset-paged below the last row's id.

use super::*;

fn text_item(external_id: &str, text: &str) -> NewItem {
    let mut i = review(external_id, "q", 1, 0, 1);
    i.payload = json!({"text": text});
    i
}

async fn ids(f: &Fixture, search: ItemSearch, before: Option<i64>, limit: usize) -> Vec<String> {
    f.store
        .search_items(f.project.id, search, before, limit, 1000)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.external_id)
        .collect()
}

pub async fn items_are_found_by_text_label_reviewer_state_and_time(f: Fixture) {
    let s = &f.store;
    s.submit_items(
        f.project.id,
        vec![text_item("a-1", "Win a FREE phone"), text_item("b-2", "lunch at noon?")],
        "service",
        10,
    )
    .await
    .unwrap();
    s.submit_items(
        f.project.id,
        vec![text_item("c-3", "free lunch"), auto("d-4", "ham", false)],
        "service",
        20,
    )
    .await
    .unwrap();
    let ann = f.reviewer("ann", &[1]).await;
    let bob = f.reviewer("bob", &[1]).await;
    // ann labels a-1 spam; bob labels b-2 ham; c-3 stays open.
    let t = f.claim(&ann, None, 100).await.unwrap();
    f.answer(&ann, &t, "r1", label("spam"), 110).await.unwrap();
    let t = f.claim(&bob, None, 120).await.unwrap();
    f.answer(&bob, &t, "r2", label("ham"), 130).await.unwrap();

    let text = |t: &str| ItemSearch {
        text: Some(t.into()),
        ..ItemSearch::default()
    };
    // Newest first; the text is lowercase and matches any case in the payload or the id.
    assert_eq!(ids(&f, text("free"), None, 10).await, ["c-3", "a-1"]);
    assert_eq!(ids(&f, text("lunch"), None, 10).await, ["c-3", "b-2"]);
    assert_eq!(ids(&f, text("b-2"), None, 10).await, ["b-2"]);
    assert!(ids(&f, text("nothing like it"), None, 10).await.is_empty());
    assert_eq!(
        ids(&f, ItemSearch::default(), None, 10).await,
        ["d-4", "c-3", "b-2", "a-1"]
    );

    let by = |label: Option<&str>, reviewer: Option<&str>, state: Option<ItemState>| ItemSearch {
        label: label.map(str::to_string),
        reviewer: reviewer.map(str::to_string),
        state,
        ..ItemSearch::default()
    };
    assert_eq!(ids(&f, by(Some("spam"), None, None), None, 10).await, ["a-1"]);
    assert_eq!(ids(&f, by(Some("ham"), None, None), None, 10).await, ["d-4", "b-2"]);
    assert_eq!(ids(&f, by(None, Some("bob"), None), None, 10).await, ["b-2"]);
    assert!(ids(&f, by(None, Some("nobody"), None), None, 10).await.is_empty());
    assert_eq!(ids(&f, by(None, None, Some(ItemState::Open)), None, 10).await, ["c-3"]);
    assert_eq!(
        ids(&f, by(None, None, Some(ItemState::Unresolved)), None, 10).await,
        ["c-3"]
    );
    assert_eq!(
        ids(&f, by(None, None, Some(ItemState::Resolved)), None, 10).await,
        ["d-4", "b-2", "a-1"]
    );
    // Every condition must hold.
    assert_eq!(
        ids(&f, by(Some("ham"), Some("bob"), Some(ItemState::Resolved)), None, 10).await,
        ["b-2"]
    );
    assert!(ids(&f, by(Some("spam"), Some("bob"), None), None, 10).await.is_empty());

    let window = |since: Option<i64>, until: Option<i64>| ItemSearch {
        since,
        until,
        ..ItemSearch::default()
    };
    assert_eq!(ids(&f, window(Some(20), None), None, 10).await, ["d-4", "c-3"]);
    assert_eq!(ids(&f, window(None, Some(20)), None, 10).await, ["b-2", "a-1"]);
    assert!(ids(&f, window(Some(11), Some(20)), None, 10).await.is_empty());

    // Keyset pages: each starts below the last row's id.
    let first = s
        .search_items(f.project.id, ItemSearch::default(), None, 3, 1000)
        .await
        .unwrap()
        .hits;
    assert_eq!(first.len(), 3);
    let rest = ids(&f, ItemSearch::default(), Some(first[2].item_id), 3).await;
    assert_eq!(rest, ["a-1"]);
    let hit = &first[1];
    assert_eq!(
        (
            hit.external_id.as_str(),
            hit.outcome.as_str(),
            hit.rule.as_str(),
            hit.open_tasks
        ),
        ("c-3", "review", "r", 1)
    );
    assert_eq!(hit.payload, json!({"text": "free lunch"}));
    assert_eq!(first[0].resolved_label.as_deref(), Some("ham"));

    // Gold items are never found.
    s.add_gold(
        f.project.id,
        vec![NewGold {
            external_id: "g-free".into(),
            payload: json!({"text": "free gold"}),
            attributes: json!({}),
            label: "spam".into(),
            prediction: None,
        }],
        "admin",
        30,
    )
    .await
    .unwrap();
    assert_eq!(ids(&f, text("free"), None, 10).await, ["c-3", "a-1"]);
}

pub async fn a_search_page_reads_at_most_its_bound_and_says_where_to_go_on(f: Fixture) {
    let items = ["e-1", "e-2", "e-3", "e-4", "e-5"]
        .map(|id| text_item(id, if id == "e-1" || id == "e-4" { "free" } else { "paid" }));
    f.store
        .submit_items(f.project.id, items.to_vec(), "service", 10)
        .await
        .unwrap();
    let all = f
        .store
        .search_items(f.project.id, ItemSearch::default(), None, 10, 1000)
        .await
        .unwrap();
    assert_eq!(all.read_to, None);
    let id = |external: &str| all.hits.iter().find(|h| h.external_id == external).unwrap().item_id;
    let free = ItemSearch {
        text: Some("free".into()),
        ..ItemSearch::default()
    };
    let page = |before: Option<i64>| f.store.search_items(f.project.id, free.clone(), before, 10, 2);
    // Two items read a page: e-5 and e-4, then e-3 and e-2 (nothing found, read on), then
    // e-1, the last.
    let first = page(None).await.unwrap();
    let found = |p: &SearchHits| p.hits.iter().map(|h| h.external_id.clone()).collect::<Vec<_>>();
    assert_eq!(
        (found(&first), first.read_to),
        (vec!["e-4".to_string()], Some(id("e-3") + 1))
    );
    let second = page(first.read_to).await.unwrap();
    assert_eq!((found(&second), second.read_to), (vec![], Some(id("e-1") + 1)));
    let third = page(second.read_to).await.unwrap();
    assert_eq!((found(&third), third.read_to), (vec!["e-1".to_string()], None));
}
