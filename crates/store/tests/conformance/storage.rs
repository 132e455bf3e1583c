//! A full disk: SQLite's `SQLITE_FULL` (provoked with `PRAGMA max_page_count`) is
//! `StoreError::StorageFull` for the write that hit it, nothing of it is kept, and the
//! store writes again once there is room. (PostgreSQL's SQLSTATE 53100 is mapped by
//! `postgres::classify`, unit-tested there.)

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_is_storage_full_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(flywheel_store::sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let f = fixture(sqlite.clone() as Arc<dyn Store>, None).await;
    f.submit(vec![review("first", "q", 1, 0, 1)]).await;
    let used = sqlite.page_count().await.unwrap();
    assert_eq!(sqlite.set_max_pages(used + 2).await.unwrap(), used + 2);
    // Items with large payloads until the file cannot grow.
    let big = |i: usize| NewItem {
        payload: json!({"text": "x".repeat(64 * 1024)}),
        ..review(&format!("big{i}"), "q", 1, 0, 1)
    };
    let mut refused = None;
    for i in 0..50 {
        match f.store.submit_items(f.project.id, vec![big(i)], "service", 20).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (at, e) = refused.expect("the capped database filled up");
    assert!(matches!(e, StoreError::StorageFull(_)), "{e:?}");
    assert!(
        f.store.item(f.project.id, &format!("big{at}")).await.unwrap().is_none(),
        "the refused item was not written"
    );
    // Room again: the same item is accepted.
    sqlite.set_max_pages(1 << 30).await.unwrap();
    f.store
        .submit_items(f.project.id, vec![big(at)], "service", 30)
        .await
        .unwrap();
    assert!(f.store.item(f.project.id, &format!("big{at}")).await.unwrap().is_some());
}
