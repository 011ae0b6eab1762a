//! `AlertStore`: versioned rule and channel records, instance states, the history and the
//! evaluation lease.

use std::sync::Arc;

use maestro_shared::store::{AlertRecordKind, AlertStore, StoreError};

pub async fn given_alert_records_then_writes_are_versioned_and_kinds_stay_apart(store: Arc<dyn AlertStore>) {
    let rule = AlertRecordKind::Rule;
    assert_eq!(store.put_alert_record(rule, "errors", r#"{"a":1}"#, Some(0)).await.expect("create"), 1);
    assert!(matches!(store.put_alert_record(rule, "errors", "{}", Some(0)).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.put_alert_record(rule, "errors", r#"{"a":2}"#, Some(1)).await.expect("update"), 2);
    assert!(matches!(store.put_alert_record(rule, "errors", "{}", Some(1)).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.put_alert_record(rule, "nope", "{}", Some(3)).await, Err(StoreError::NotFound(_))));
    // Unversioned writes (the TOML applied at start) go over whatever is there.
    assert_eq!(store.put_alert_record(rule, "errors", r#"{"a":3}"#, None).await.expect("upsert"), 3);
    assert_eq!(store.put_alert_record(rule, "spend", "{}", None).await.expect("upsert new"), 1);
    store.put_alert_record(AlertRecordKind::Channel, "errors", "{}", None).await.expect("a channel of the same name");

    let rules = store.alert_records(rule).await.expect("rules");
    let seen: Vec<(&str, &str, u64)> = rules.iter().map(|r| (r.name.as_str(), r.body.as_str(), r.version)).collect();
    assert_eq!(seen, [("errors", r#"{"a":3}"#, 3), ("spend", "{}", 1)]);
    assert_eq!(store.alert_records(AlertRecordKind::Channel).await.expect("channels").len(), 1);
    assert!(store.alert_records(AlertRecordKind::State).await.expect("states").is_empty());

    assert!(matches!(store.delete_alert_record(rule, "errors", Some(2)).await, Err(StoreError::Conflict(_))));
    store.delete_alert_record(rule, "errors", Some(3)).await.expect("delete");
    assert!(matches!(store.delete_alert_record(rule, "errors", Some(3)).await, Err(StoreError::NotFound(_))));
    store.delete_alert_record(rule, "errors", None).await.expect("an unversioned delete of nothing is fine");
    let names: Vec<String> = store.alert_records(rule).await.expect("rules").into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["spend"]);
}

pub async fn given_history_entries_then_they_read_newest_first_up_to_the_limit(store: Arc<dyn AlertStore>) {
    for (ts, id) in [(1_000, "a"), (3_000, "c"), (2_000, "b"), (3_000, "d")] {
        store.append_alert_history(1_795_000_000_000 + ts, id, &format!("entry {id}")).await.expect("append");
    }
    assert_eq!(store.alert_history(3).await.expect("history"), ["entry d", "entry c", "entry b"]);
    assert_eq!(store.alert_history(10).await.expect("history").len(), 4);
}

pub async fn given_two_evaluators_then_only_one_holds_the_lease_until_it_runs_out(store: Arc<dyn AlertStore>) {
    let now = 1_795_000_000_000;
    assert!(store.acquire_alert_lease("container-a", now, 90_000).await.expect("lease"));
    assert!(!store.acquire_alert_lease("container-b", now + 1_000, 90_000).await.expect("lease"), "a holds it");
    assert!(store.acquire_alert_lease("container-a", now + 60_000, 90_000).await.expect("renew"));
    assert!(!store.acquire_alert_lease("container-b", now + 149_999, 90_000).await.expect("lease"));
    assert!(store.acquire_alert_lease("container-b", now + 150_000, 90_000).await.expect("lease ran out"));
    assert!(!store.acquire_alert_lease("container-a", now + 150_001, 90_000).await.expect("lease"), "b has it now");
    // Many at once: exactly one wins.
    let racers = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.acquire_alert_lease(&format!("racer-{i}"), now + 500_000, 90_000).await })
    });
    let mut won = 0;
    for racer in racers {
        won += usize::from(racer.await.expect("join").expect("lease"));
    }
    assert_eq!(won, 1);
}
