//! Providers, models, keys and routes. Upserts are `INSERT … ON CONFLICT DO UPDATE` (never
//! `INSERT OR REPLACE`, which deletes the row first and would cascade to a provider's models
//! and keys). Children come back in their DynamoDB sort-key order (model name, key id) so both
//! backends return the same catalog.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{EmbeddedStore, backend, found_or, is_missing_reference, json_column, parsed, to_json};
use crate::cache::CachePolicy;
use crate::domain::{
    ApiKey, Catalog, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderEntry, ProviderKind, Route,
};
use crate::store::catalog_admin::stale;
use crate::store::{
    AdminCatalog, AdminProviderEntry, CatalogAdminStore, CatalogStore, KeyError, KeyRecord, ModelRecord,
    ProviderRecord, RouteRecord, StoreError,
};

const SELECT_PROVIDERS: &str =
    "SELECT code, kind, name, base_url, headers, is_active, sort_order FROM providers ORDER BY sort_order, code";
const SELECT_MODELS: &str = "SELECT provider, model, model_type, context_window, max_output_tokens, \
     supports_streaming, supports_tools, supports_vision, price_input, price_cached_input, price_cache_write, \
     price_output, is_active, is_default, drop_params, created, cache FROM models ORDER BY provider, model";
const SELECT_KEYS: &str = "SELECT id, provider, name, secret_ref, masked, priority, is_active, status, cooldown_until, \
     rpm, tpm, rpd FROM api_keys ORDER BY provider, id";
const SELECT_ROUTES: &str = "SELECT name, targets, drop_params, policy FROM routes ORDER BY name";
const ANY_PROVIDER: &str = "SELECT EXISTS (SELECT 1 FROM providers)";

const UPSERT_PROVIDER: &str = "INSERT INTO providers (code, kind, name, base_url, headers, is_active, sort_order) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (code) DO UPDATE SET kind = excluded.kind, name = excluded.name, base_url = excluded.base_url, \
     headers = excluded.headers, is_active = excluded.is_active, sort_order = excluded.sort_order, \
     version = version + 1";

/// The model insert both model writes share; they differ only in what a conflict does.
macro_rules! insert_model {
    () => {
        "INSERT INTO models (provider, model, model_type, context_window, max_output_tokens, supports_streaming, \
         supports_tools, supports_vision, price_input, price_cached_input, price_cache_write, price_output, \
         is_active, is_default, drop_params, created, cache) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
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
     is_active = excluded.is_active, is_default = excluded.is_default, drop_params = excluded.drop_params, \
     cache = excluded.cache, version = version + 1"
);
const INSERT_MODEL_IF_ABSENT: &str = concat!(insert_model!(), "DO NOTHING");

const UPSERT_KEY: &str = "INSERT INTO api_keys (id, provider, name, secret_ref, masked, priority, is_active, status, \
     cooldown_until, rpm, tpm, rpd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, name = excluded.name, \
     secret_ref = excluded.secret_ref, masked = excluded.masked, priority = excluded.priority, \
     is_active = excluded.is_active, status = excluded.status, \
     cooldown_until = excluded.cooldown_until, rpm = excluded.rpm, tpm = excluded.tpm, rpd = excluded.rpd, \
     version = version + 1";
const DELETE_KEY: &str = "DELETE FROM api_keys WHERE id = ?1";
const SET_KEY_STATUS: &str = "UPDATE api_keys SET status = ?2, cooldown_until = ?3 WHERE id = ?1";
/// A key's error, unless a newer one is noted (the row is found either way).
const NOTE_KEY_ERROR: &str = "UPDATE api_keys SET \
     last_error_message = CASE WHEN COALESCE(last_error_message_at, ?3) <= ?3 THEN ?2 ELSE last_error_message END, \
     last_error_message_at = MAX(COALESCE(last_error_message_at, ?3), ?3) WHERE id = ?1";

const UPSERT_ROUTE: &str = "INSERT INTO routes (name, targets, drop_params, policy) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (name) DO UPDATE SET targets = excluded.targets, drop_params = excluded.drop_params, \
     policy = excluded.policy, version = version + 1";

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
        drop_params: row.get(14)?,
        created: row.get(15)?,
        cache: row.get(16)?,
    })
}

/// A model's cache settings in its `cache` column: JSON, NULL for the defaults (no cache).
impl ToSql for CachePolicy {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        if self.is_default() {
            return Ok(ToSqlOutput::Owned(rusqlite::types::Value::Null));
        }
        let json = serde_json::to_string(self).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(ToSqlOutput::Owned(rusqlite::types::Value::Text(json)))
    }
}

impl FromSql for CachePolicy {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Null => Ok(Self::default()),
            other => serde_json::from_str(other.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e))),
        }
    }
}

/// The bound values of [`UPSERT_MODEL`] and [`INSERT_MODEL_IF_ABSENT`].
fn model_params(m: &Model) -> [&dyn ToSql; 17] {
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
        &m.drop_params,
        &m.created,
        &m.cache,
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

/// A route's `targets` and `policy` columns (`policy` NULL for a plain fallback chain).
fn route_columns(route: &Route) -> Result<(String, Option<String>), StoreError> {
    let targets = to_json(&route.targets, "routes.targets")?;
    let policy = route.policy().map(|p| to_json(&p, "routes.policy")).transpose()?;
    Ok((targets, policy))
}

fn route_from_row(row: &Row<'_>) -> rusqlite::Result<Route> {
    let policy: Option<String> = row.get(3)?;
    let policy = match policy {
        Some(_) => Some(json_column(row, 3, "routes.policy")?),
        None => None,
    };
    let route = Route::fallback(row.get::<_, String>(0)?, json_column(row, 1, "routes.targets")?);
    Ok(Route { drop_params: row.get(2)?, ..route }.with_policy(policy))
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
        let (targets, policy) = route_columns(route)?;
        self.with_db(|db| {
            db.execute(UPSERT_ROUTE, params![route.name, targets, route.drop_params, policy])
                .map(drop)
                .map_err(backend("upsert a route"))
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

    async fn note_key_error(&self, key_id: &str, message: &str, at_ms: i64) -> Result<(), StoreError> {
        let message = crate::store::key_error_text(message);
        let updated = self.with_db(|db| {
            db.execute(NOTE_KEY_ERROR, params![key_id, message, at_ms]).map_err(backend("note a key's error"))
        })?;
        found_or(updated, || format!("key {key_id}"))
    }
}

// ---- Versioned writes for the admin API (`CatalogAdminStore`) -------------------------------

const SELECT_PROVIDER_RECORDS: &str = "SELECT code, kind, name, base_url, headers, is_active, sort_order, description, \
     version FROM providers ORDER BY sort_order, code";
const SELECT_MODEL_RECORDS: &str = "SELECT provider, model, model_type, context_window, max_output_tokens, \
     supports_streaming, supports_tools, supports_vision, price_input, price_cached_input, price_cache_write, \
     price_output, is_active, is_default, drop_params, created, cache, model_name, version FROM models \
     ORDER BY provider, model";
const SELECT_KEY_RECORDS: &str = "SELECT id, provider, name, secret_ref, masked, priority, is_active, status, \
     cooldown_until, rpm, tpm, rpd, version, last_used_at, last_error_at, last_error_message, last_error_message_at \
     FROM api_keys ORDER BY provider, id";
const SELECT_ROUTE_RECORDS: &str = "SELECT name, targets, drop_params, policy, version FROM routes ORDER BY name";

const CREATE_PROVIDER: &str = "INSERT INTO providers (code, kind, name, base_url, headers, is_active, sort_order, \
     description, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1) ON CONFLICT (code) DO NOTHING";
const UPDATE_PROVIDER: &str = "UPDATE providers SET kind = ?2, name = ?3, base_url = ?4, headers = ?5, \
     is_active = ?6, sort_order = ?7, description = ?8, version = version + 1 WHERE code = ?1 AND version = ?9";
const PROVIDER_VERSION: &str = "SELECT version FROM providers WHERE code = ?1";
const PROVIDER_KEYS: &str = "SELECT COUNT(*) FROM api_keys WHERE provider = ?1";
const PROVIDER_MODELS: &str = "SELECT COUNT(*) FROM models WHERE provider = ?1";
/// The provider's models go with it (`ON DELETE CASCADE`).
const DELETE_PROVIDER: &str = "DELETE FROM providers WHERE code = ?1 AND (?2 IS NULL OR version = ?2)";

const CREATE_MODEL_IF_ABSENT: &str = "INSERT INTO models (provider, model, model_type, context_window, \
     max_output_tokens, supports_streaming, supports_tools, supports_vision, price_input, price_cached_input, \
     price_cache_write, price_output, is_active, is_default, drop_params, created, cache, model_name, version) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, 1) \
     ON CONFLICT (provider, model) DO NOTHING";
const UPDATE_MODEL: &str = "UPDATE models SET model_type = ?3, context_window = ?4, max_output_tokens = ?5, \
     supports_streaming = ?6, supports_tools = ?7, supports_vision = ?8, price_input = ?9, price_cached_input = ?10, \
     price_cache_write = ?11, price_output = ?12, is_active = ?13, is_default = ?14, drop_params = ?15, \
     created = ?16, cache = ?17, model_name = ?18, version = version + 1 \
     WHERE provider = ?1 AND model = ?2 AND version = ?19";
const MODEL_VERSION: &str = "SELECT version FROM models WHERE provider = ?1 AND model = ?2";
const CLEAR_OTHER_DEFAULTS: &str = "UPDATE models SET is_default = 0, version = version + 1 \
     WHERE model = ?1 AND provider <> ?2 AND is_default = 1";

const CREATE_KEY: &str = "INSERT INTO api_keys (id, provider, name, secret_ref, masked, priority, is_active, status, \
     cooldown_until, rpm, tpm, rpd, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1) \
     ON CONFLICT (id) DO NOTHING";
const UPDATE_KEY: &str = "UPDATE api_keys SET name = ?2, secret_ref = ?3, masked = ?4, priority = ?5, \
     is_active = ?6, rpm = ?7, tpm = ?8, rpd = ?9, version = version + 1 WHERE id = ?1 AND version = ?10";
const DELETE_KEY_VERSIONED: &str = "DELETE FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR version = ?2)";
const KEY_VERSION: &str = "SELECT version FROM api_keys WHERE id = ?1";

const CREATE_ROUTE: &str = "INSERT INTO routes (name, targets, drop_params, policy, version) VALUES (?1, ?2, ?3, ?4, 1) \
     ON CONFLICT (name) DO NOTHING";
const UPDATE_ROUTE: &str = "UPDATE routes SET targets = ?2, drop_params = ?3, policy = ?4, version = version + 1 WHERE name = ?1 AND version = ?5";
const DELETE_ROUTE: &str = "DELETE FROM routes WHERE name = ?1 AND (?2 IS NULL OR version = ?2)";
const ROUTE_VERSION: &str = "SELECT version FROM routes WHERE name = ?1";

fn load_records(conn: &mut Connection) -> rusqlite::Result<AdminCatalog> {
    let tx = conn.transaction()?;
    let providers = select_all(&tx, SELECT_PROVIDER_RECORDS, |row| {
        Ok(ProviderRecord { provider: provider_from_row(row)?, description: row.get(7)?, version: row.get(8)? })
    })?;
    let models = select_all(&tx, SELECT_MODEL_RECORDS, |row| {
        Ok(ModelRecord { model: model_from_row(row)?, model_name: row.get(17)?, version: row.get(18)? })
    })?;
    let keys = select_all(&tx, SELECT_KEY_RECORDS, |row| {
        Ok(KeyRecord {
            key: key_from_row(row)?,
            version: row.get(12)?,
            last_used_at: row.get(13)?,
            last_error_at: row.get(14)?,
            last_error: match (row.get::<_, Option<String>>(15)?, row.get::<_, Option<i64>>(16)?) {
                (Some(message), Some(at_ms)) => Some(KeyError { message, at_ms }),
                _ => None,
            },
        })
    })?;
    let routes = select_all(&tx, SELECT_ROUTE_RECORDS, |row| {
        Ok(RouteRecord { route: route_from_row(row)?, version: row.get(4)? })
    })?;
    tx.finish()?;

    let mut entries: Vec<AdminProviderEntry> = providers
        .into_iter()
        .map(|provider| AdminProviderEntry { provider, models: Vec::new(), keys: Vec::new() })
        .collect();
    let index: HashMap<String, usize> =
        entries.iter().enumerate().map(|(i, e)| (e.provider.provider.code.clone(), i)).collect();
    for model in models {
        if let Some(&i) = index.get(&model.model.provider) {
            entries[i].models.push(model);
        }
    }
    for key in keys {
        if let Some(&i) = index.get(&key.key.provider) {
            entries[i].keys.push(key);
        }
    }
    Ok(AdminCatalog { providers: entries, routes })
}

/// Why a conditional write changed nothing: the row is gone, or its version moved on.
fn missed(
    tx: &rusqlite::Transaction<'_>,
    version_sql: &str,
    key: &[&dyn ToSql],
    what: &str,
    expected: u64,
) -> Result<StoreError, StoreError> {
    let current: Option<u64> = tx
        .prepare_cached(version_sql)
        .and_then(|mut stmt| stmt.query_row(key, |row| row.get(0)).optional())
        .map_err(backend("read a version"))?;
    Ok(match current {
        None => StoreError::NotFound(what.to_string()),
        Some(current) => stale(what, expected, current),
    })
}

/// Runs `write` in a `BEGIN IMMEDIATE` transaction; when it changed no row, says why.
fn conditional(
    conn: &mut Connection,
    write: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<usize>,
    version_sql: &str,
    key: &[&dyn ToSql],
    what: &str,
    expected: Option<u64>,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend("begin a write"))?;
    let changed = write(&tx).map_err(backend("write a catalog row"))?;
    if changed == 0 {
        let err = missed(&tx, version_sql, key, what, expected.unwrap_or(0))?;
        return Err(err);
    }
    tx.commit().map_err(backend("commit a catalog write"))
}

#[async_trait]
impl CatalogAdminStore for EmbeddedStore {
    async fn load_admin_catalog(&self) -> Result<AdminCatalog, StoreError> {
        self.with_db(|db| load_records(&mut db.conn).map_err(backend("load the catalog")))
    }

    async fn create_provider(&self, p: &Provider, description: Option<&str>) -> Result<u64, StoreError> {
        let headers = to_json(&p.headers, "providers.headers")?;
        let values =
            params![p.code, p.kind.as_str(), p.name, p.base_url, headers, p.is_active, p.sort_order, description];
        let created = self.with_db(|db| db.execute(CREATE_PROVIDER, values).map_err(backend("create a provider")))?;
        if created == 0 {
            return Err(StoreError::Conflict(format!("provider {} exists", p.code)));
        }
        Ok(1)
    }

    async fn update_provider(
        &self,
        p: &Provider,
        description: Option<&str>,
        expected_version: u64,
    ) -> Result<u64, StoreError> {
        let headers = to_json(&p.headers, "providers.headers")?;
        let what = format!("provider {}", p.code);
        self.with_db(|db| {
            conditional(
                &mut db.conn,
                |tx| {
                    tx.prepare_cached(UPDATE_PROVIDER)?.execute(params![
                        p.code,
                        p.kind.as_str(),
                        p.name,
                        p.base_url,
                        headers,
                        p.is_active,
                        p.sort_order,
                        description,
                        expected_version
                    ])
                },
                PROVIDER_VERSION,
                &[&p.code],
                &what,
                Some(expected_version),
            )
        })?;
        Ok(expected_version + 1)
    }

    async fn create_model_if_absent(&self, model: &Model, model_name: Option<&str>) -> Result<bool, StoreError> {
        let mut values: Vec<&dyn ToSql> = model_params(model).to_vec();
        values.push(&model_name);
        self.with_db(|db| {
            db.execute(CREATE_MODEL_IF_ABSENT, values.as_slice())
                .map(|inserted| inserted == 1)
                .map_err(write_error("insert a model", &model.provider))
        })
    }

    async fn update_model(
        &self,
        model: &Model,
        model_name: Option<&str>,
        expected_version: u64,
    ) -> Result<u64, StoreError> {
        let what = format!("model {}/{}", model.provider, model.model);
        self.with_db(|db| {
            conditional(
                &mut db.conn,
                |tx| {
                    let mut values: Vec<&dyn ToSql> = model_params(model).to_vec();
                    values.push(&model_name);
                    values.push(&expected_version);
                    let changed = tx.prepare_cached(UPDATE_MODEL)?.execute(values.as_slice())?;
                    if changed == 1 && model.is_default {
                        tx.prepare_cached(CLEAR_OTHER_DEFAULTS)?.execute(params![model.model, model.provider])?;
                    }
                    Ok(changed)
                },
                MODEL_VERSION,
                &[&model.provider, &model.model],
                &what,
                Some(expected_version),
            )
        })?;
        Ok(expected_version + 1)
    }

    async fn create_key(&self, key: &ApiKey) -> Result<u64, StoreError> {
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
        let created =
            self.with_db(|db| db.execute(CREATE_KEY, values).map_err(write_error("create a key", &key.provider)))?;
        if created == 0 {
            return Err(StoreError::Conflict(format!("key {} exists", key.id)));
        }
        Ok(1)
    }

    async fn update_key(&self, key: &ApiKey, expected_version: u64) -> Result<u64, StoreError> {
        let what = format!("key {}", key.id);
        self.with_db(|db| {
            conditional(
                &mut db.conn,
                |tx| {
                    tx.prepare_cached(UPDATE_KEY)?.execute(params![
                        key.id,
                        key.name,
                        key.secret_ref,
                        key.masked,
                        key.priority,
                        key.is_active,
                        key.limits.rpm,
                        key.limits.tpm,
                        key.limits.rpd,
                        expected_version
                    ])
                },
                KEY_VERSION,
                &[&key.id],
                &what,
                Some(expected_version),
            )
        })?;
        Ok(expected_version + 1)
    }

    async fn delete_key_versioned(&self, key_id: &str, expected_version: Option<u64>) -> Result<(), StoreError> {
        let what = format!("key {key_id}");
        self.with_db(|db| {
            conditional(
                &mut db.conn,
                |tx| tx.prepare_cached(DELETE_KEY_VERSIONED)?.execute(params![key_id, expected_version]),
                KEY_VERSION,
                &[&key_id],
                &what,
                expected_version,
            )
        })
    }

    async fn delete_provider(&self, code: &str, expected_version: Option<u64>) -> Result<usize, StoreError> {
        let what = format!("provider {code}");
        self.with_db(|db| {
            let tx =
                db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend("begin a write"))?;
            let count = |sql: &str| -> Result<usize, StoreError> {
                tx.prepare_cached(sql)
                    .and_then(|mut stmt| stmt.query_row([code], |row| row.get::<_, i64>(0)))
                    .map(|n| usize::try_from(n).unwrap_or(0))
                    .map_err(backend("count a provider's rows"))
            };
            let keys = count(PROVIDER_KEYS)?;
            let models = count(PROVIDER_MODELS)?;
            let deleted = tx
                .prepare_cached(DELETE_PROVIDER)
                .and_then(|mut stmt| stmt.execute(params![code, expected_version]))
                .map_err(backend("delete a provider"))?;
            if deleted == 0 {
                return Err(missed(&tx, PROVIDER_VERSION, &[&code], &what, expected_version.unwrap_or(0))?);
            }
            if keys > 0 {
                // Dropped with the transaction: nothing was deleted.
                return Err(StoreError::Conflict(format!("provider {code} has {keys} keys")));
            }
            tx.commit().map_err(backend("commit a catalog write"))?;
            Ok(models)
        })
    }

    async fn create_route(&self, route: &Route) -> Result<u64, StoreError> {
        let (targets, policy) = route_columns(route)?;
        let created = self.with_db(|db| {
            db.execute(CREATE_ROUTE, params![route.name, targets, route.drop_params, policy])
                .map_err(backend("create a route"))
        })?;
        if created == 0 {
            return Err(StoreError::Conflict(format!("route {} exists", route.name)));
        }
        Ok(1)
    }

    async fn update_route(&self, route: &Route, expected_version: u64) -> Result<u64, StoreError> {
        let (targets, policy) = route_columns(route)?;
        let what = format!("route {}", route.name);
        self.with_db(|db| {
            conditional(
                &mut db.conn,
                |tx| {
                    tx.prepare_cached(UPDATE_ROUTE)?.execute(params![
                        route.name,
                        targets,
                        route.drop_params,
                        policy,
                        expected_version
                    ])
                },
                ROUTE_VERSION,
                &[&route.name],
                &what,
                Some(expected_version),
            )
        })?;
        Ok(expected_version + 1)
    }

    async fn delete_route(&self, name: &str, expected_version: Option<u64>) -> Result<(), StoreError> {
        let what = format!("route {name}");
        self.with_db(|db| {
            conditional(
                &mut db.conn,
                |tx| tx.prepare_cached(DELETE_ROUTE)?.execute(params![name, expected_version]),
                ROUTE_VERSION,
                &[&name],
                &what,
                expected_version,
            )
        })
    }
}
