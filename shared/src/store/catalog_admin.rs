//! What the admin API needs from the catalog beyond what the gateway reads: every provider, model,
//! key and route as a *record* with its `version` (optimistic concurrency) and the fields only
//! admins see (a provider's description, a model's display name, when a key was last used).
//!
//! Versions start at 1 and go up by one with every write of the item, whoever writes it (the
//! admin API, the config/seed bootstrap). A key's health (`status`, `cooldown_until`, set by the
//! gateway after provider errors or by a validation) and its usage times (set by the aggregator)
//! are not admin-editable and leave the version alone, so an admin's edit is never refused because
//! a key got rate limited meanwhile. Admin updates write only their own fields.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{ApiKey, Model, Provider, Route};

/// A provider as the admin API sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRecord {
    pub provider: Provider,
    pub description: Option<String>,
    pub version: u64,
}

/// A model as the admin API sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    pub model: Model,
    /// A display name (`Claude Opus 4.6`), when one is known.
    pub model_name: Option<String>,
    pub version: u64,
}

/// A key as the admin API sees it (never its secret, only `secret_ref` and the masked form).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub key: ApiKey,
    pub version: u64,
    /// Start (unix ms) of the newest recorded call made with the key.
    pub last_used_at: Option<i64>,
    /// Start (unix ms) of the newest recorded failed call made with the key.
    pub last_error_at: Option<i64>,
    /// The newest error Maestro noted for the key (see [`crate::store::CatalogStore::note_key_error`]).
    pub last_error: Option<KeyError>,
}

/// Why a key failed last, and when (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub message: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteRecord {
    pub route: Route,
    pub version: u64,
}

/// One provider with its models (by name) and keys (by id).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminProviderEntry {
    pub provider: ProviderRecord,
    pub models: Vec<ModelRecord>,
    pub keys: Vec<KeyRecord>,
}

/// The whole catalog with versions, in the order of [`crate::domain::Catalog`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminCatalog {
    pub providers: Vec<AdminProviderEntry>,
    pub routes: Vec<RouteRecord>,
}

impl AdminCatalog {
    pub fn provider(&self, code: &str) -> Option<&AdminProviderEntry> {
        self.providers.iter().find(|p| p.provider.provider.code == code)
    }

    pub fn key(&self, key_id: &str) -> Option<&KeyRecord> {
        self.providers.iter().flat_map(|p| p.keys.iter()).find(|k| k.key.id == key_id)
    }

    pub fn model(&self, provider: &str, model: &str) -> Option<&ModelRecord> {
        self.provider(provider)?.models.iter().find(|m| m.model.model == model)
    }

    pub fn route(&self, name: &str) -> Option<&RouteRecord> {
        self.routes.iter().find(|r| r.route.name == name)
    }
}

/// Versioned catalog writes. Every conditional write is atomic in the store (one SQLite
/// transaction, one DynamoDB conditional write or transaction): `NotFound` when the item is
/// missing, `Conflict` when it exists already (creates) or its version is not `expected_version`
/// (updates, deletes). Each write returns the item's new version.
#[async_trait]
pub trait CatalogAdminStore: Send + Sync {
    /// The catalog with versions and admin-only fields, strongly consistent.
    async fn load_admin_catalog(&self) -> Result<AdminCatalog, StoreError>;
    /// A new provider (version 1); `Conflict` if the code is taken.
    async fn create_provider(&self, provider: &Provider, description: Option<&str>) -> Result<u64, StoreError>;
    /// Rewrites a provider's fields (not its models or keys) if its version is `expected_version`.
    async fn update_provider(
        &self,
        provider: &Provider,
        description: Option<&str>,
        expected_version: u64,
    ) -> Result<u64, StoreError>;
    /// Inserts a model (version 1) only where none of that name exists; `false` if one did.
    async fn create_model_if_absent(&self, model: &Model, model_name: Option<&str>) -> Result<bool, StoreError>;
    /// Rewrites a model if its version is `expected_version`. When the model becomes the default,
    /// the same model code loses its default at every other provider in the same atomic write
    /// (their versions go up too).
    async fn update_model(
        &self,
        model: &Model,
        model_name: Option<&str>,
        expected_version: u64,
    ) -> Result<u64, StoreError>;
    /// A new key (version 1); `Conflict` if the id is taken, `NotFound` without its provider.
    async fn create_key(&self, key: &ApiKey) -> Result<u64, StoreError>;
    /// Rewrites a key's admin fields (name, secret_ref, masked, priority, is_active, limits; never
    /// its provider, status or cool-down) if its version is `expected_version`.
    async fn update_key(&self, key: &ApiKey, expected_version: u64) -> Result<u64, StoreError>;
    /// Deletes a key, if its version is `expected_version` when one is given.
    async fn delete_key_versioned(&self, key_id: &str, expected_version: Option<u64>) -> Result<(), StoreError>;
    /// Deletes a provider and its models, if its version is `expected_version` when one is given;
    /// `Conflict` while it has a key (keys hold secrets: they are deleted one by one, on purpose).
    /// Returns how many models went with it.
    async fn delete_provider(&self, code: &str, expected_version: Option<u64>) -> Result<usize, StoreError>;
    /// A new route (version 1); `Conflict` if the name is taken.
    async fn create_route(&self, route: &Route) -> Result<u64, StoreError>;
    async fn update_route(&self, route: &Route, expected_version: u64) -> Result<u64, StoreError>;
    async fn delete_route(&self, name: &str, expected_version: Option<u64>) -> Result<(), StoreError>;
}

/// The message of a stale-version conflict.
pub fn stale(what: &str, expected: u64, current: u64) -> StoreError {
    StoreError::Conflict(format!(
        "{what} was changed by someone else: it is at version {current}, not {expected}; read it again and retry"
    ))
}
