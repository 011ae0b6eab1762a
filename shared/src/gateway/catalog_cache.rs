//! The container's copy of the catalog: read once, reused for a few seconds, so a warm request
//! reads nothing from the store.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::Catalog;
use crate::store::{CatalogStore, StoreError};

pub struct CatalogCache {
    ttl: Duration,
    current: RwLock<Option<(Instant, Arc<Catalog>)>>,
}

impl CatalogCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, current: RwLock::new(None) }
    }

    /// The cached catalog, reloaded from the store when older than the TTL.
    pub async fn get(&self, store: &dyn CatalogStore) -> Result<Arc<Catalog>, StoreError> {
        if let Ok(guard) = self.current.read()
            && let Some((loaded_at, catalog)) = guard.as_ref()
            && loaded_at.elapsed() < self.ttl
        {
            return Ok(catalog.clone());
        }
        let fresh = Arc::new(store.load_catalog().await?);
        if let Ok(mut guard) = self.current.write() {
            *guard = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }

    /// Forgets the copy, after this container changed the catalog (a key status, an admin edit).
    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.current.write() {
            *guard = None;
        }
    }
}
