//! `SecretStore`: provider key secrets by reference.

use std::sync::Arc;

use maestro_shared::secret::SecretString;
use maestro_shared::store::{SecretStore, StoreError};

const VALUE: &str = "sk-live-conformance-0123456789abcdef";

async fn get(store: &dyn SecretStore, secret_ref: &str) -> Result<String, StoreError> {
    store.get_secret(secret_ref).await.map(|s| s.expose().to_string())
}

fn assert_not_found(result: Result<String, StoreError>) {
    match result {
        Err(StoreError::NotFound(message)) => assert!(!message.contains(VALUE), "leaks the secret: {message}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

pub async fn given_a_stored_secret_then_it_reads_back_and_an_unknown_ref_is_not_found_without_any_secret_value(
    store: Arc<dyn SecretStore>,
) {
    store.put_secret("maestro/keys/key-1", &SecretString::new(VALUE)).await.expect("put");
    assert_eq!(get(&*store, "maestro/keys/key-1").await.expect("get"), VALUE);

    let missing = store.get_secret("maestro/keys/key-2").await;
    let rendered = format!("{missing:?}");
    assert!(!rendered.contains(VALUE), "{rendered}");
    assert_not_found(missing.map(|s| s.expose().to_string()));
}

pub async fn given_a_secret_when_replaced_and_deleted_then_reads_follow_and_deleting_again_succeeds(
    store: Arc<dyn SecretStore>,
) {
    store.put_secret("maestro/keys/key-1", &SecretString::new("sk-old-value-000000000000")).await.expect("put");
    store.put_secret("maestro/keys/key-1", &SecretString::new(VALUE)).await.expect("replace");
    assert_eq!(get(&*store, "maestro/keys/key-1").await.expect("get"), VALUE);

    store.delete_secret("maestro/keys/key-1").await.expect("delete");
    assert_not_found(get(&*store, "maestro/keys/key-1").await);
    // A retried key deletion must be able to finish.
    store.delete_secret("maestro/keys/key-1").await.expect("delete again");
}
