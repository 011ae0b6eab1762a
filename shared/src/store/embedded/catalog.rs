//! Providers, models, keys and routes. Upserts are `INSERT … ON CONFLICT DO UPDATE` (never
//! `INSERT OR REPLACE`, which deletes the row first and would cascade to a provider's models
//! and keys). Children come back in their DynamoDB sort-key order (model name, key id) so both
//! backends return the same catalog.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{Connection, Row, params};

use super::{EmbeddedStore, backend, found_or, is_missing_reference, json_column, parsed, to_json};
use crate::domain::{
    ApiKey, Catalog, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderEntry, ProviderKind, Route,
};
use crate::store::{CatalogStore, StoreError};

const SELECT_PROVIDERS: &str =
    "SELECT code, kind, name, base_url, headers, is_active, sort_order FROM providers ORDER BY sort_order, code";
const SELECT_MODELS: &str = "SELECT provider, model, model_type, context_window, max_output_tokens, \
     supports_streaming, supports_tools, supports_vision, price_input, price_cached_input, price_cache_write, \
     price_output, is_active, is_default FROM models ORDER BY provider, model";
const SELECT_KEYS: &str = "SELECT id, provider, name, secret_ref, masked, priority, is_active, status, cooldown_until, \
     rpm, tpm, rpd FROM api_keys ORDER BY provider, id";
const SELECT_ROUTES: &str = "SELECT name, targets FROM routes ORDER BY name";
const ANY_PROVIDER: &str = "SELECT EXISTS (SELECT 1 FROM providers)";

const UPSERT_PROVIDER: &str = "INSERT INTO providers (code, kind, name, base_url, headers, is_active, sort_order) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (code) DO UPDATE SET kind = excluded.kind, name = excluded.name, base_url = excluded.base_url, \
     headers = excluded.headers, is_active = excluded.is_active, sort_order = excluded.sort_order";

/// The model insert both model writes share; they differ only in what a conflict does.
macro_rules! insert_model {
    () => {
        "INSERT INTO models (provider, model, model_type, context_window, max_output_tokens, supports_streaming, \
         supports_tools, supports_vision, price_input, price_cached_input, price_cache_write, price_output, \
         is_active, is_default) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (provider, model) "
    };
}
const UPSERT_MODEL: &str = concat!(
    insert_model!(),
    "DO UPDATE SET model_type = excluded.model_type, context_window = excluded.context_window, \
     max_output_tokens = excluded.max_output_tokens, supports_streaming = excluded.supports_streaming, \
     supports_tools = excluded.supports_tools, supports_vision = excluded.supports_vision, \
     price_input = excluded.price_input, price_cached_input = excluded.price_cached_input, \
     price_cache_write = excluded.price_cache_write, price_output = excluded.price_output, \
     is_active = excluded.is_active, is_default = excluded.is_default"
);
const INSERT_MODEL_IF_ABSENT: &str = concat!(insert_model!(), "DO NOTHING");

const UPSERT_KEY: &str = "INSERT INTO api_keys (id, provider, name, secret_ref, masked, priority, is_active, status, \
     cooldown_until, rpm, tpm, rpd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, name = excluded.name, \
     secret_ref = excluded.secret_ref, masked = excluded.masked, priority = excluded.priority, \
     is_active = excluded.is_active, status = excluded.status, \
     cooldown_until = excluded.cooldown_until, rpm = excluded.rpm, tpm = excluded.tpm, rpd = excluded.rpd";
const DELETE_KEY: &str = "DELETE FROM api_keys WHERE id = ?1";
const SET_KEY_STATUS: &str = "UPDATE api_keys SET status = ?2, cooldown_until = ?3 WHERE id = ?1";

const UPSERT_ROUTE: &str =
    "INSERT INTO routes (name, targets) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET targets = excluded.targets";

fn provider_from_row(row: &Row<'_>) -> rusqlite::Result<Provider> {
    Ok(Provider {
        code: row.get(0)?,
        kind: parsed(row, 1, "providers.kind", ProviderKind::parse)?,
        name: row.get(2)?,
        base_url: row.get(3)?,
        headers: json_column(row, 4, "providers.headers")?,
        is_active: row.get(5)?,
        sort_order: row.get(6)?,
    })
}

fn model_from_row(row: &Row<'_>) -> rusqlite::Result<Model> {
    Ok(Model {
        provider: row.get(0)?,
        model: row.get(1)?,
        model_type: row.get(2)?,
        context_window: row.get(3)?,
        max_output_tokens: row.get(4)?,
        supports_streaming: row.get(5)?,
        supports_tools: row.get(6)?,
        supports_vision: row.get(7)?,
        prices: Prices {
            input: row.get(8)?,
            cached_input: row.get(9)?,
            cache_write: row.get(10)?,
            output: row.get(11)?,
        },
        is_active: row.get(12)?,
        is_default: row.get(13)?,
    })
}

/// The bound values of [`UPSERT_MODEL`] and [`INSERT_MODEL_IF_ABSENT`].
fn model_params(m: &Model) -> [&dyn ToSql; 14] {
    [
        &m.provider,
        &m.model,
        &m.model_type,
        &m.context_window,
        &m.max_output_tokens,
        &m.supports_streaming,
        &m.supports_tools,
        &m.supports_vision,
        &m.prices.input,
        &m.prices.cached_input,
        &m.prices.cache_write,
        &m.prices.output,
        &m.is_active,
        &m.is_default,
    ]
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        provider: row.get(1)?,
        name: row.get(2)?,
        secret_ref: row.get(3)?,
        masked: row.get(4)?,
        priority: row.get(5)?,
        is_active: row.get(6)?,
        status: parsed(row, 7, "api_keys.status", KeyStatus::parse)?,
        cooldown_until: row.get(8)?,
        limits: KeyLimits { rpm: row.get(9)?, tpm: row.get(10)?, rpd: row.get(11)? },
    })
}

fn route_from_row(row: &Row<'_>) -> rusqlite::Result<Route> {
    Ok(Route { name: row.get(0)?, targets: json_column(row, 1, "routes.targets")? })
}

/// Runs a whole-table `SELECT` and maps every row.
fn select_all<T>(conn: &Connection, sql: &str, map: fn(&Row<'_>) -> rusqlite::Result<T>) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], map)?;
    rows.collect()
}

/// Reads the four tables inside one read transaction, so the snapshot is consistent even while
/// another process writes.
fn load(conn: &mut Connection) -> rusqlite::Result<Catalog> {
    let tx = conn.transaction()?;
    let providers = select_all(&tx, SELECT_PROVIDERS, provider_from_row)?;
    let models = select_all(&tx, SELECT_MODELS, model_from_row)?;
    let keys = select_all(&tx, SELECT_KEYS, key_from_row)?;
    let routes = select_all(&tx, SELECT_ROUTES, route_from_row)?;
    tx.finish()?;

    let mut entries: Vec<ProviderEntry> = providers
        .into_iter()
        .map(|provider| ProviderEntry { provider, models: Vec::new(), keys: Vec::new() })
        .collect();
    let index: HashMap<String, usize> = entries.iter().enumerate().map(|(i, e)| (e.provider.code.clone(), i)).collect();
    // Foreign keys guarantee every child has its provider; `get` only guards a hand-edited file.
    for model in models {
        if let Some(&i) = index.get(&model.provider) {
            entries[i].models.push(model);
        }
    }
    for key in keys {
        if let Some(&i) = index.get(&key.provider) {
            entries[i].keys.push(key);
        }
    }
    Ok(Catalog { providers: entries, routes })
}

/// Maps a write that referenced an unknown provider to `NotFound`, anything else to `Backend`.
fn write_error(what: &'static str, provider: &str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        if is_missing_reference(&e) { StoreError::NotFound(format!("provider {provider}")) } else { backend(what)(e) }
    }
}

#[async_trait]
impl CatalogStore for EmbeddedStore {
    async fn load_catalog(&self) -> Result<Catalog, StoreError> {
        self.with_db(|db| load(&mut db.conn).map_err(backend("load the catalog")))
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.with_db(|db| {
            let any: bool =
                db.conn.query_row(ANY_PROVIDER, [], |row| row.get(0)).map_err(backend("count providers"))?;
            Ok(!any)
        })
    }

    async fn upsert_provider(&self, provider: &Provider) -> Result<(), StoreError> {
        let headers = to_json(&provider.headers, "providers.headers")?;
        let values = params![
            provider.code,
            provider.kind.as_str(),
            provider.name,
            provider.base_url,
            headers,
            provider.is_active,
            provider.sort_order,
        ];
        self.with_db(|db| db.execute(UPSERT_PROVIDER, values).map(drop).map_err(backend("upsert a provider")))
    }

    async fn upsert_model(&self, model: &Model) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(UPSERT_MODEL, model_params(model).as_slice())
                .map(drop)
                .map_err(write_error("upsert a model", &model.provider))
        })
    }

    async fn insert_model_if_absent(&self, model: &Model) -> Result<bool, StoreError> {
        self.with_db(|db| {
            db.execute(INSERT_MODEL_IF_ABSENT, model_params(model).as_slice())
                .map(|inserted| inserted == 1)
                .map_err(write_error("insert a model", &model.provider))
        })
    }

    async fn upsert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let values = params![
            key.id,
            key.provider,
            key.name,
            key.secret_ref,
            key.masked,
            key.priority,
            key.is_active,
            key.status.as_str(),
            key.cooldown_until,
            key.limits.rpm,
            key.limits.tpm,
            key.limits.rpd,
        ];
        self.with_db(|db| db.execute(UPSERT_KEY, values).map(drop).map_err(write_error("upsert a key", &key.provider)))
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), StoreError> {
        let deleted = self.with_db(|db| db.execute(DELETE_KEY, [key_id]).map_err(backend("delete a key")))?;
        found_or(deleted, || format!("key {key_id}"))
    }

    async fn upsert_route(&self, route: &Route) -> Result<(), StoreError> {
        let targets = to_json(&route.targets, "routes.targets")?;
        self.with_db(|db| {
            db.execute(UPSERT_ROUTE, params![route.name, targets]).map(drop).map_err(backend("upsert a route"))
        })
    }

    async fn set_key_status(
        &self,
        key_id: &str,
        status: KeyStatus,
        cooldown_until: Option<i64>,
    ) -> Result<(), StoreError> {
        let updated = self.with_db(|db| {
            db.execute(SET_KEY_STATUS, params![key_id, status.as_str(), cooldown_until])
                .map_err(backend("set a key's status"))
        })?;
        found_or(updated, || format!("key {key_id}"))
    }
}
