//! Providers, models, keys and routes as items (see the access patterns in the module above).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};
use tokio::task::JoinSet;

use super::{
    DynamoStore, Expr, Item, QuerySpec, Reader, boolean, build_failed, condition_failed, get_item, key, n, put_opt,
    retry, s, unexpected,
};
use crate::cache::CachePolicy;
use crate::domain::{
    ApiKey, Catalog, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderEntry, ProviderKind, Route, RoutePolicy,
};
use crate::store::catalog_admin::stale;
use crate::store::{
    AdminCatalog, AdminProviderEntry, CatalogAdminStore, CatalogStore, KeyError, KeyRecord, ModelRecord,
    ProviderRecord, RouteRecord, StoreError,
};

const CATALOG_PK: &str = "CATALOG";
const META: &str = "META";
/// Attempts at a key write whose reference changed between read and write.
const KEY_WRITE_ATTEMPTS: u32 = 3;

fn provider_pk(code: &str) -> String {
    format!("PROVIDER#{code}")
}

fn provider_sk(code: &str) -> String {
    format!("PROVIDER#{code}")
}

fn model_sk(model: &str) -> String {
    format!("MODEL#{model}")
}

fn key_sk(id: &str) -> String {
    format!("KEY#{id}")
}

fn keyref_pk(id: &str) -> String {
    format!("KEYREF#{id}")
}

fn route_pk(name: &str) -> String {
    format!("ROUTE#{name}")
}

fn route_sk(name: &str) -> String {
    format!("ROUTE#{name}")
}

fn provider_item(p: &Provider) -> Item {
    let mut item = key(provider_pk(&p.code), META);
    item.extend([
        ("entity".to_string(), s("provider")),
        ("code".to_string(), s(&p.code)),
        ("kind".to_string(), s(p.kind.as_str())),
        ("name".to_string(), s(&p.name)),
        ("base_url".to_string(), s(&p.base_url)),
        ("headers".to_string(), AttributeValue::M(p.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect())),
        ("is_active".to_string(), boolean(p.is_active)),
        ("sort_order".to_string(), n(p.sort_order)),
    ]);
    item
}

fn provider_from(item: &Item) -> Result<Provider, StoreError> {
    let r = Reader::new(item, "provider");
    let kind = r.s("kind")?;
    Ok(Provider {
        code: r.s("code")?,
        kind: ProviderKind::parse(&kind)
            .ok_or_else(|| StoreError::backend(format!("dynamodb: provider item: unknown kind `{kind}`")))?,
        name: r.s("name")?,
        base_url: r.s("base_url")?,
        headers: r.string_map("headers")?,
        is_active: r.bool("is_active")?,
        sort_order: r.n("sort_order")?,
    })
}

fn model_item(m: &Model) -> Item {
    let mut item = key(provider_pk(&m.provider), model_sk(&m.model));
    item.extend([
        ("entity".to_string(), s("model")),
        ("provider".to_string(), s(&m.provider)),
        ("model".to_string(), s(&m.model)),
        ("model_type".to_string(), s(&m.model_type)),
        ("supports_streaming".to_string(), boolean(m.supports_streaming)),
        ("supports_tools".to_string(), boolean(m.supports_tools)),
        ("supports_vision".to_string(), boolean(m.supports_vision)),
        ("price_input".to_string(), n(m.prices.input)),
        ("price_output".to_string(), n(m.prices.output)),
        ("is_active".to_string(), boolean(m.is_active)),
        ("is_default".to_string(), boolean(m.is_default)),
        ("drop_params".to_string(), boolean(m.drop_params)),
        ("created".to_string(), n(m.created)),
    ]);
    put_opt(&mut item, "context_window", m.context_window.map(n));
    put_opt(&mut item, "max_output_tokens", m.max_output_tokens.map(n));
    put_opt(&mut item, "price_cached_input", m.prices.cached_input.map(n));
    put_opt(&mut item, "price_cache_write", m.prices.cache_write.map(n));
    // The response-cache settings as JSON text; absent for the defaults (no cache).
    let cache = (!m.cache.is_default()).then(|| serde_json::to_string(&m.cache).ok()).flatten();
    put_opt(&mut item, "cache", cache.map(s));
    item
}

fn model_from(item: &Item) -> Result<Model, StoreError> {
    let r = Reader::new(item, "model");
    Ok(Model {
        provider: r.s("provider")?,
        model: r.s("model")?,
        model_type: r.s("model_type")?,
        context_window: r.opt_n("context_window")?,
        max_output_tokens: r.opt_n("max_output_tokens")?,
        supports_streaming: r.bool("supports_streaming")?,
        supports_tools: r.bool("supports_tools")?,
        supports_vision: r.bool("supports_vision")?,
        prices: Prices {
            input: r.n("price_input")?,
            cached_input: r.opt_n("price_cached_input")?,
            cache_write: r.opt_n("price_cache_write")?,
            output: r.n("price_output")?,
        },
        is_active: r.bool("is_active")?,
        is_default: r.bool("is_default")?,
        drop_params: r.flag("drop_params")?,
        created: r.opt_n("created")?.unwrap_or(0),
        cache: match r.opt_s("cache")? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::backend_caused("dynamodb: a stored model cache setting is not valid", e))?,
            None => CachePolicy::default(),
        },
    })
}

fn key_item(k: &ApiKey) -> Item {
    let mut item = key(provider_pk(&k.provider), key_sk(&k.id));
    item.extend([
        ("entity".to_string(), s("key")),
        ("id".to_string(), s(&k.id)),
        ("provider".to_string(), s(&k.provider)),
        ("name".to_string(), s(&k.name)),
        ("secret_ref".to_string(), s(&k.secret_ref)),
        ("masked".to_string(), s(&k.masked)),
        ("priority".to_string(), n(k.priority)),
        ("is_active".to_string(), boolean(k.is_active)),
        ("status".to_string(), s(k.status.as_str())),
    ]);
    put_opt(&mut item, "cooldown_until", k.cooldown_until.map(n));
    put_opt(&mut item, "rpm", k.limits.rpm.map(n));
    put_opt(&mut item, "tpm", k.limits.tpm.map(n));
    put_opt(&mut item, "rpd", k.limits.rpd.map(n));
    item
}

fn key_from(item: &Item) -> Result<ApiKey, StoreError> {
    let r = Reader::new(item, "key");
    let status = r.s("status")?;
    Ok(ApiKey {
        id: r.s("id")?,
        provider: r.s("provider")?,
        name: r.s("name")?,
        secret_ref: r.s("secret_ref")?,
        masked: r.s("masked")?,
        priority: r.n("priority")?,
        is_active: r.bool("is_active")?,
        status: KeyStatus::parse(&status)
            .ok_or_else(|| StoreError::backend(format!("dynamodb: key item: unknown status `{status}`")))?,
        cooldown_until: r.opt_n("cooldown_until")?,
        limits: KeyLimits { rpm: r.opt_n("rpm")?, tpm: r.opt_n("tpm")?, rpd: r.opt_n("rpd")? },
    })
}

/// A route's rules and strategy as the JSON text of its `policy` attribute (absent: a plain
/// fallback chain).
fn route_policy(route: &Route) -> Result<Option<String>, StoreError> {
    route
        .policy()
        .map(|p| {
            serde_json::to_string(&p).map_err(|e| StoreError::backend_caused("dynamodb: encode a route policy", e))
        })
        .transpose()
}

fn parse_policy(text: Option<String>) -> Result<Option<RoutePolicy>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::backend_caused("dynamodb: a stored route policy is not valid", e))
    })
    .transpose()
}

fn targets(route: &Route) -> AttributeValue {
    AttributeValue::L(route.targets.iter().map(s).collect())
}

fn put(store: &DynamoStore, item: Item, condition: Option<(String, Expr)>) -> Result<TransactWriteItem, StoreError> {
    let (condition, expr) = condition.map_or((None, Expr::default()), |(c, e)| (Some(c), e));
    let put = Put::builder()
        .table_name(&store.table)
        .set_item(Some(item))
        .set_condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .build()
        .map_err(build_failed("write a catalog item"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transaction item that only checks that `pk`/`sk` exists.
fn exists(store: &DynamoStore, pk: String, sk: &str) -> Result<TransactWriteItem, StoreError> {
    let mut expr = Expr::default();
    let condition = format!("attribute_exists({})", expr.name("pk"));
    let check = ConditionCheck::builder()
        .table_name(&store.table)
        .set_key(Some(key(pk, sk)))
        .condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .build()
        .map_err(build_failed("check a catalog item"))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

fn delete(
    store: &DynamoStore,
    pk: String,
    sk: String,
    condition: Option<(String, Expr)>,
) -> Result<TransactWriteItem, StoreError> {
    let (condition, expr) = condition.map_or((None, Expr::default()), |(c, e)| (Some(c), e));
    let delete = Delete::builder()
        .table_name(&store.table)
        .set_key(Some(key(pk, sk)))
        .set_condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .build()
        .map_err(build_failed("delete a catalog item"))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// `attribute_not_exists(pk)`.
fn absent() -> (String, Expr) {
    let mut expr = Expr::default();
    (format!("attribute_not_exists({})", expr.name("pk")), expr)
}

/// `provider = :provider`, for a key reference that must still point where it did.
fn points_to(provider: &str) -> (String, Expr) {
    let mut expr = Expr::default();
    (format!("{} = {}", expr.name("provider"), expr.value("provider", s(provider))), expr)
}

/// Everything under `pk` (strongly consistent).
async fn partition(client: &Client, table: &str, pk: String, what: &'static str) -> Result<Vec<Item>, StoreError> {
    let mut expr = Expr::default();
    let condition = format!("{} = {}", expr.name("pk"), expr.value("pk", s(pk)));
    let mut spec = QuerySpec::new(condition, expr);
    spec.consistent = true;
    spec.run(client, table, what, None).await
}

/// One provider with its models and keys (as records), from one Query; `None` if its `META`
/// item is gone.
async fn load_provider(client: Client, table: String, code: String) -> Result<Option<AdminProviderEntry>, StoreError> {
    let items = partition(&client, &table, provider_pk(&code), "load a provider").await?;
    let mut provider = None;
    let (mut models, mut keys) = (Vec::new(), Vec::new());
    for item in &items {
        let r = Reader::new(item, "catalog");
        let sk = r.s("sk")?;
        if sk == META {
            provider = Some(ProviderRecord {
                provider: provider_from(item)?,
                description: r.opt_s("description")?,
                version: version_of(item)?,
            });
        } else if sk.starts_with("MODEL#") {
            models.push(ModelRecord {
                model: model_from(item)?,
                model_name: r.opt_s("model_name")?,
                version: version_of(item)?,
            });
        } else if sk.starts_with("KEY#") {
            keys.push(KeyRecord {
                key: key_from(item)?,
                version: version_of(item)?,
                last_used_at: r.opt_n("last_used_at")?,
                last_error_at: r.opt_n("last_error_at")?,
                last_error: match (r.opt_s("last_error_message")?, r.opt_n("last_error_message_at")?) {
                    (Some(message), Some(at_ms)) => Some(KeyError { message, at_ms }),
                    _ => None,
                },
            });
        }
    }
    models.sort_by(|a, b| a.model.model.cmp(&b.model.model));
    keys.sort_by(|a, b| a.key.id.cmp(&b.key.id));
    Ok(provider.map(|provider| AdminProviderEntry { provider, models, keys }))
}

/// An item's `version`; items written before versions existed count as version 1.
fn version_of(item: &Item) -> Result<u64, StoreError> {
    Ok(Reader::new(item, "catalog").opt_n("version")?.unwrap_or(1))
}

/// The parts of an UpdateItem (alone or in a transaction).
struct UpdateSpec {
    key: Item,
    update: String,
    condition: Option<String>,
    expr: Expr,
}

impl UpdateSpec {
    /// Writes every attribute of `item` but its key, removes the `optional` attributes it lacks,
    /// and sets the version: `ADD version 1` for `Bump`, `SET version = expected + 1` under the
    /// condition that the item exists at `expected` for `Expect`. Attributes not named (a
    /// provider's description, a key's last use) are left as they are.
    fn new(mut item: Item, optional: &[&str], version: Versioning) -> Self {
        let mut expr = Expr::default();
        let key = key(take_s(&mut item, "pk"), take_s(&mut item, "sk"));
        let mut names: Vec<&String> = item.keys().collect();
        names.sort();
        let mut set: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{} = {}", expr.name(name), expr.value(&format!("v{i}"), item[*name].clone())))
            .collect();
        let remove: Vec<String> =
            optional.iter().filter(|name| !item.contains_key(**name)).map(|name| expr.name(name)).collect();
        let mut condition = None;
        let mut add = None;
        match version {
            Versioning::Bump => add = Some(format!("ADD {} {}", expr.name("version"), expr.value("one", n(1)))),
            Versioning::Expect(expected) => {
                set.push(format!("{} = {}", expr.name("version"), expr.value("next", n(expected + 1))));
                condition = Some(at_version(&mut expr, expected));
            }
            Versioning::Set(version) => {
                set.push(format!("{} = {}", expr.name("version"), expr.value("next", n(version))));
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        if let Some(add) = add {
            update.push(' ');
            update.push_str(&add);
        }
        Self { key, update, condition, expr }
    }

    fn transact(self, store: &DynamoStore) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&store.table)
            .set_key(Some(self.key))
            .update_expression(self.update)
            .set_condition_expression(self.condition)
            .set_expression_attribute_names(self.expr.names())
            .set_expression_attribute_values(self.expr.values())
            .build()
            .map_err(build_failed("update a catalog item"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[derive(Debug, Clone, Copy)]
enum Versioning {
    /// Any write: the version goes up by one (a new item starts at 1).
    Bump,
    /// An admin's write of the version it read.
    Expect(u64),
    /// This version, unconditionally (a route's listing item follows its route item).
    Set(u64),
}

fn take_s(item: &mut Item, name: &str) -> String {
    match item.remove(name) {
        Some(AttributeValue::S(v)) => v,
        _ => String::new(),
    }
}

/// `attribute_exists(pk) AND version = :expected` (items without a version are at 1).
fn at_version(expr: &mut Expr, expected: u64) -> String {
    let pk = expr.name("pk");
    let version = expr.name("version");
    let value = expr.value("expected", n(expected));
    if expected == 1 {
        format!("attribute_exists({pk}) AND (attribute_not_exists({version}) OR {version} = {value})")
    } else {
        format!("attribute_exists({pk}) AND {version} = {value}")
    }
}

/// The optional attributes of each item kind: absent in the domain value, removed from the item.
const MODEL_OPTIONAL: [&str; 5] =
    ["context_window", "max_output_tokens", "price_cached_input", "price_cache_write", "cache"];
const KEY_OPTIONAL: [&str; 4] = ["cooldown_until", "rpm", "tpm", "rpd"];

impl DynamoStore {
    /// The provider a key is filed under, from its `KEYREF#<id>` item.
    async fn key_provider(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        let item = get_item(&self.client, &self.table, key(keyref_pk(key_id), META), "read a key reference").await?;
        item.map(|item| Reader::new(&item, "key reference").s("provider")).transpose()
    }

    /// Why a versioned write of `pk`/`sk` was refused: the item is gone, or at another version.
    async fn refusal(&self, pk: String, sk: String, what: String, expected: u64) -> StoreError {
        match get_item(&self.client, &self.table, key(pk, sk), "read a version").await {
            Ok(None) => StoreError::NotFound(what),
            Ok(Some(item)) => match version_of(&item) {
                Ok(current) => stale(&what, expected, current),
                Err(e) => e,
            },
            Err(e) => e,
        }
    }

    /// Runs one UpdateItem; `Ok(false)` when its condition did not hold.
    async fn update_item(&self, spec: UpdateSpec, what: &'static str) -> Result<bool, StoreError> {
        retry::retrying(what, |_| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(spec.key.clone()))
                .update_expression(&spec.update)
                .set_condition_expression(spec.condition.clone())
                .set_expression_attribute_names(spec.expr.names())
                .set_expression_attribute_values(spec.expr.values());
            async move {
                match request.send().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                        Ok(false)
                    }
                    Err(e) => Err(retry::classify(what, &e)),
                }
            }
        })
        .await
    }

    fn route_items(&self, route: &Route, version: Versioning) -> Result<Vec<TransactWriteItem>, StoreError> {
        let policy = route_policy(route)?;
        let mut item = key(route_pk(&route.name), META);
        let mut listing = key(CATALOG_PK, route_sk(&route.name));
        for (entity, target) in [("route", &mut item), ("catalog_route", &mut listing)] {
            target.extend([
                ("entity".to_string(), s(entity)),
                ("name".to_string(), s(&route.name)),
                ("targets".to_string(), targets(route)),
                ("drop_params".to_string(), boolean(route.drop_params)),
            ]);
            put_opt(target, "policy", policy.as_deref().map(s));
        }
        // The listing carries the version too (the catalog is loaded from it); only the route
        // item holds the condition, and both move to the same version.
        let listing_version = match version {
            Versioning::Expect(expected) => Versioning::Set(expected + 1),
            other => other,
        };
        // A route back to a plain fallback chain loses its stored policy.
        let listing = UpdateSpec::new(listing, &["policy"], listing_version);
        Ok(vec![UpdateSpec::new(item, &["policy"], version).transact(self)?, listing.transact(self)?])
    }
}

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn load_catalog(&self) -> Result<Catalog, StoreError> {
        let records = self.load_admin_catalog().await?;
        Ok(Catalog {
            providers: records
                .providers
                .into_iter()
                .map(|e| ProviderEntry {
                    provider: e.provider.provider,
                    models: e.models.into_iter().map(|m| m.model).collect(),
                    keys: e.keys.into_iter().map(|k| k.key).collect(),
                })
                .collect(),
            routes: records.routes.into_iter().map(|r| r.route).collect(),
        })
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        let condition = format!(
            "{} = {} AND begins_with({}, {})",
            expr.name("pk"),
            expr.value("pk", s(CATALOG_PK)),
            expr.name("sk"),
            expr.value("prefix", s("PROVIDER#"))
        );
        let mut spec = QuerySpec::new(condition, expr);
        spec.consistent = true;
        Ok(spec.run(&self.client, &self.table, "look for a provider", Some(1)).await?.is_empty())
    }

    async fn upsert_provider(&self, provider: &Provider) -> Result<(), StoreError> {
        let mut listing = key(CATALOG_PK, provider_sk(&provider.code));
        listing.extend([("entity".to_string(), s("catalog_provider")), ("code".to_string(), s(&provider.code))]);
        let items = vec![
            UpdateSpec::new(provider_item(provider), &[], Versioning::Bump).transact(self)?,
            put(self, listing, None)?,
        ];
        match self.transact("upsert a provider", items, false).await? {
            None => Ok(()),
            Some(codes) => Err(unexpected("upsert a provider", &codes)),
        }
    }

    async fn upsert_model(&self, model: &Model) -> Result<(), StoreError> {
        let items = vec![
            exists(self, provider_pk(&model.provider), META)?,
            UpdateSpec::new(model_item(model), &MODEL_OPTIONAL, Versioning::Bump).transact(self)?,
        ];
        match self.transact("upsert a model", items, false).await? {
            None => Ok(()),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(StoreError::NotFound(format!("provider {}", model.provider)))
            }
            Some(codes) => Err(unexpected("upsert a model", &codes)),
        }
    }

    async fn insert_model_if_absent(&self, model: &Model) -> Result<bool, StoreError> {
        let mut item = model_item(model);
        item.insert("version".to_string(), n(1));
        let items = vec![exists(self, provider_pk(&model.provider), META)?, put(self, item, Some(absent()))?];
        match self.transact("insert a model", items, false).await? {
            None => Ok(true),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(StoreError::NotFound(format!("provider {}", model.provider)))
            }
            Some(codes) if condition_failed(&codes, 1) => Ok(false),
            Some(codes) => Err(unexpected("insert a model", &codes)),
        }
    }

    /// Writes the key under its provider and its `KEYREF#<id>` in one transaction; a key that
    /// moved to another provider leaves its old item in the same transaction.
    async fn upsert_key(&self, api_key: &ApiKey) -> Result<(), StoreError> {
        for _ in 0..KEY_WRITE_ATTEMPTS {
            let previous = self.key_provider(&api_key.id).await?;
            let mut reference = key(keyref_pk(&api_key.id), META);
            reference.extend([("entity".to_string(), s("key_ref")), ("provider".to_string(), s(&api_key.provider))]);
            let guard = match &previous {
                None => absent(),
                Some(old) => points_to(old),
            };
            let mut items = vec![
                exists(self, provider_pk(&api_key.provider), META)?,
                UpdateSpec::new(key_item(api_key), &KEY_OPTIONAL, Versioning::Bump).transact(self)?,
                put(self, reference, Some(guard))?,
            ];
            if let Some(old) = previous.as_deref().filter(|old| *old != api_key.provider) {
                items.push(delete(self, provider_pk(old), key_sk(&api_key.id), None)?);
            }
            match self.transact("upsert a key", items, false).await? {
                None => return Ok(()),
                Some(codes) if condition_failed(&codes, 0) => {
                    return Err(StoreError::NotFound(format!("provider {}", api_key.provider)));
                }
                // The reference changed since it was read: read it again.
                Some(codes) if condition_failed(&codes, 2) => continue,
                Some(codes) => return Err(unexpected("upsert a key", &codes)),
            }
        }
        Err(StoreError::Conflict(format!("key {} kept changing while it was written", api_key.id)))
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), StoreError> {
        for _ in 0..KEY_WRITE_ATTEMPTS {
            let Some(provider) = self.key_provider(key_id).await? else {
                return Err(StoreError::NotFound(format!("key {key_id}")));
            };
            let items = vec![
                delete(self, provider_pk(&provider), key_sk(key_id), None)?,
                delete(self, keyref_pk(key_id), META.to_string(), Some(points_to(&provider)))?,
            ];
            match self.transact("delete a key", items, false).await? {
                None => return Ok(()),
                Some(codes) if condition_failed(&codes, 1) => continue,
                Some(codes) => return Err(unexpected("delete a key", &codes)),
            }
        }
        Err(StoreError::Conflict(format!("key {key_id} kept changing while it was deleted")))
    }

    async fn upsert_route(&self, route: &Route) -> Result<(), StoreError> {
        let items = self.route_items(route, Versioning::Bump)?;
        match self.transact("upsert a route", items, false).await? {
            None => Ok(()),
            Some(codes) => Err(unexpected("upsert a route", &codes)),
        }
    }

    async fn set_key_status(
        &self,
        key_id: &str,
        status: KeyStatus,
        cooldown_until: Option<i64>,
    ) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound(format!("key {key_id}"));
        let provider = self.key_provider(key_id).await?.ok_or_else(not_found)?;
        let mut expr = Expr::default();
        let set_status = format!("{} = {}", expr.name("status"), expr.value("status", s(status.as_str())));
        let update = match cooldown_until {
            Some(until) => {
                format!("SET {set_status}, {} = {}", expr.name("cooldown_until"), expr.value("until", n(until)))
            }
            None => format!("SET {set_status} REMOVE {}", expr.name("cooldown_until")),
        };
        let condition = format!("attribute_exists({})", expr.name("pk"));
        const WHAT: &str = "set a key's status";
        let updated = retry::retrying(WHAT, |_| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(provider_pk(&provider), key_sk(key_id))))
                .update_expression(&update)
                .condition_expression(&condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values());
            async move {
                match request.send().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                        Ok(false)
                    }
                    Err(e) => Err(retry::classify(WHAT, &e)),
                }
            }
        })
        .await?;
        if updated { Ok(()) } else { Err(not_found()) }
    }

    /// One UpdateItem on the key, conditioned on the key existing and holding no newer error; a
    /// newer error is no failure (`NotFound` only when the key is gone).
    async fn note_key_error(&self, key_id: &str, message: &str, at_ms: i64) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound(format!("key {key_id}"));
        let provider = self.key_provider(key_id).await?.ok_or_else(not_found)?;
        let mut expr = Expr::default();
        let at = expr.name("last_error_message_at");
        let ts = expr.value("at", n(at_ms));
        let update = format!(
            "SET {} = {}, {at} = {ts}",
            expr.name("last_error_message"),
            expr.value("message", s(crate::store::key_error_text(message)))
        );
        let condition =
            format!("attribute_exists({}) AND (attribute_not_exists({at}) OR {at} <= {ts})", expr.name("pk"));
        const WHAT: &str = "note a key's error";
        let noted = retry::retrying(WHAT, |_| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(provider_pk(&provider), key_sk(key_id))))
                .update_expression(&update)
                .condition_expression(&condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values());
            async move {
                match request.send().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                        Ok(false)
                    }
                    Err(e) => Err(retry::classify(WHAT, &e)),
                }
            }
        })
        .await?;
        if noted {
            return Ok(());
        }
        // Refused: a newer error is there (fine), or the key went away meanwhile.
        match self.key_provider(key_id).await? {
            Some(_) => Ok(()),
            None => Err(not_found()),
        }
    }
}

#[async_trait]
impl CatalogAdminStore for DynamoStore {
    async fn load_admin_catalog(&self) -> Result<AdminCatalog, StoreError> {
        let listing = partition(&self.client, &self.table, CATALOG_PK.to_string(), "list the catalog").await?;
        let mut routes = Vec::new();
        let mut loads = JoinSet::new();
        for item in &listing {
            let r = Reader::new(item, "catalog listing");
            let sk = r.s("sk")?;
            if let Some(code) = sk.strip_prefix("PROVIDER#") {
                loads.spawn(load_provider(self.client.clone(), self.table.clone(), code.to_string()));
            } else if sk.starts_with("ROUTE#") {
                routes.push(RouteRecord {
                    route: Route {
                        drop_params: r.flag("drop_params")?,
                        ..Route::fallback(r.s("name")?, r.string_list("targets")?)
                    }
                    .with_policy(parse_policy(r.opt_s("policy")?)?),
                    version: version_of(item)?,
                });
            }
        }
        let mut providers = Vec::new();
        while let Some(joined) = loads.join_next().await {
            let loaded = joined.map_err(|e| StoreError::backend_caused("dynamodb: loading a provider failed", e))?;
            providers.extend(loaded?);
        }
        providers.sort_by(|a, b| {
            let (a, b) = (&a.provider.provider, &b.provider.provider);
            (a.sort_order, &a.code).cmp(&(b.sort_order, &b.code))
        });
        routes.sort_by(|a, b| a.route.name.cmp(&b.route.name));
        Ok(AdminCatalog { providers, routes })
    }

    async fn create_provider(&self, provider: &Provider, description: Option<&str>) -> Result<u64, StoreError> {
        let mut item = provider_item(provider);
        put_opt(&mut item, "description", description.map(s));
        item.insert("version".to_string(), n(1));
        let mut listing = key(CATALOG_PK, provider_sk(&provider.code));
        listing.extend([("entity".to_string(), s("catalog_provider")), ("code".to_string(), s(&provider.code))]);
        let items = vec![put(self, item, Some(absent()))?, put(self, listing, None)?];
        match self.transact("create a provider", items, false).await? {
            None => Ok(1),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(StoreError::Conflict(format!("provider {} exists", provider.code)))
            }
            Some(codes) => Err(unexpected("create a provider", &codes)),
        }
    }

    async fn update_provider(
        &self,
        provider: &Provider,
        description: Option<&str>,
        expected_version: u64,
    ) -> Result<u64, StoreError> {
        let mut item = provider_item(provider);
        put_opt(&mut item, "description", description.map(s));
        let spec = UpdateSpec::new(item, &["description"], Versioning::Expect(expected_version));
        if self.update_item(spec, "update a provider").await? {
            return Ok(expected_version + 1);
        }
        let what = format!("provider {}", provider.code);
        Err(self.refusal(provider_pk(&provider.code), META.to_string(), what, expected_version).await)
    }

    async fn create_model_if_absent(&self, model: &Model, model_name: Option<&str>) -> Result<bool, StoreError> {
        let mut item = model_item(model);
        put_opt(&mut item, "model_name", model_name.map(s));
        item.insert("version".to_string(), n(1));
        let items = vec![exists(self, provider_pk(&model.provider), META)?, put(self, item, Some(absent()))?];
        match self.transact("insert a model", items, false).await? {
            None => Ok(true),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(StoreError::NotFound(format!("provider {}", model.provider)))
            }
            Some(codes) if condition_failed(&codes, 1) => Ok(false),
            Some(codes) => Err(unexpected("insert a model", &codes)),
        }
    }

    async fn update_model(
        &self,
        model: &Model,
        model_name: Option<&str>,
        expected_version: u64,
    ) -> Result<u64, StoreError> {
        let mut item = model_item(model);
        put_opt(&mut item, "model_name", model_name.map(s));
        let mut optional = MODEL_OPTIONAL.to_vec();
        optional.push("model_name");
        let mut items = vec![UpdateSpec::new(item, &optional, Versioning::Expect(expected_version)).transact(self)?];
        if model.is_default {
            // The other providers that call this model their default give it up in the same write.
            let catalog = self.load_admin_catalog().await?;
            for entry in catalog.providers.iter().filter(|e| e.provider.provider.code != model.provider) {
                if entry.models.iter().any(|m| m.model.model == model.model && m.model.is_default) {
                    let mut expr = Expr::default();
                    let update = format!(
                        "SET {} = {} ADD {} {}",
                        expr.name("is_default"),
                        expr.value("no", boolean(false)),
                        expr.name("version"),
                        expr.value("one", n(1))
                    );
                    let condition = format!("attribute_exists({})", expr.name("pk"));
                    let spec = UpdateSpec {
                        key: key(provider_pk(&entry.provider.provider.code), model_sk(&model.model)),
                        update,
                        condition: Some(condition),
                        expr,
                    };
                    items.push(spec.transact(self)?);
                }
            }
        }
        match self.transact("update a model", items, false).await? {
            None => Ok(expected_version + 1),
            Some(codes) if condition_failed(&codes, 0) => {
                let what = format!("model {}/{}", model.provider, model.model);
                Err(self.refusal(provider_pk(&model.provider), model_sk(&model.model), what, expected_version).await)
            }
            // Another provider's default model went away meanwhile: the admin may simply retry.
            Some(_) => Err(StoreError::Conflict(format!(
                "model {} changed at another provider while its default was moved; retry",
                model.model
            ))),
        }
    }

    async fn create_key(&self, api_key: &ApiKey) -> Result<u64, StoreError> {
        let mut item = key_item(api_key);
        item.insert("version".to_string(), n(1));
        let mut reference = key(keyref_pk(&api_key.id), META);
        reference.extend([("entity".to_string(), s("key_ref")), ("provider".to_string(), s(&api_key.provider))]);
        let items = vec![
            exists(self, provider_pk(&api_key.provider), META)?,
            put(self, item, Some(absent()))?,
            put(self, reference, Some(absent()))?,
        ];
        match self.transact("create a key", items, false).await? {
            None => Ok(1),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(StoreError::NotFound(format!("provider {}", api_key.provider)))
            }
            Some(codes) if condition_failed(&codes, 1) || condition_failed(&codes, 2) => {
                Err(StoreError::Conflict(format!("key {} exists", api_key.id)))
            }
            Some(codes) => Err(unexpected("create a key", &codes)),
        }
    }

    async fn update_key(&self, api_key: &ApiKey, expected_version: u64) -> Result<u64, StoreError> {
        let what = format!("key {}", api_key.id);
        let provider = self.key_provider(&api_key.id).await?.ok_or_else(|| StoreError::NotFound(what.clone()))?;
        // Only the admin's fields: never the provider, the status or the cool-down.
        let mut item = key(provider_pk(&provider), key_sk(&api_key.id));
        item.extend([
            ("name".to_string(), s(&api_key.name)),
            ("secret_ref".to_string(), s(&api_key.secret_ref)),
            ("masked".to_string(), s(&api_key.masked)),
            ("priority".to_string(), n(api_key.priority)),
            ("is_active".to_string(), boolean(api_key.is_active)),
        ]);
        put_opt(&mut item, "rpm", api_key.limits.rpm.map(n));
        put_opt(&mut item, "tpm", api_key.limits.tpm.map(n));
        put_opt(&mut item, "rpd", api_key.limits.rpd.map(n));
        let spec = UpdateSpec::new(item, &["rpm", "tpm", "rpd"], Versioning::Expect(expected_version));
        if self.update_item(spec, "update a key").await? {
            return Ok(expected_version + 1);
        }
        Err(self.refusal(provider_pk(&provider), key_sk(&api_key.id), what, expected_version).await)
    }

    async fn delete_key_versioned(&self, key_id: &str, expected_version: Option<u64>) -> Result<(), StoreError> {
        let what = format!("key {key_id}");
        for _ in 0..KEY_WRITE_ATTEMPTS {
            let Some(provider) = self.key_provider(key_id).await? else {
                return Err(StoreError::NotFound(what));
            };
            let condition = expected_version.map(|expected| {
                let mut expr = Expr::default();
                (at_version(&mut expr, expected), expr)
            });
            let items = vec![
                delete(self, provider_pk(&provider), key_sk(key_id), condition)?,
                delete(self, keyref_pk(key_id), META.to_string(), Some(points_to(&provider)))?,
            ];
            match self.transact("delete a key", items, false).await? {
                None => return Ok(()),
                Some(codes) if condition_failed(&codes, 0) => {
                    let expected = expected_version.unwrap_or(0);
                    return Err(self.refusal(provider_pk(&provider), key_sk(key_id), what, expected).await);
                }
                Some(codes) if condition_failed(&codes, 1) => continue,
                Some(codes) => return Err(unexpected("delete a key", &codes)),
            }
        }
        Err(StoreError::Conflict(format!("key {key_id} kept changing while it was deleted")))
    }

    /// The provider's models first, up to 100 per transaction, then the provider and its catalog
    /// listing in one transaction at the version: a failure part way leaves the provider with
    /// fewer models, and a retry finishes. A key refuses the delete (read first; a key created
    /// after that read and before the provider goes would be left behind, so the console asks
    /// for keys to be deleted before it offers this).
    async fn delete_provider(&self, code: &str, expected_version: Option<u64>) -> Result<usize, StoreError> {
        let what = format!("provider {code}");
        let items = partition(&self.client, &self.table, provider_pk(code), "read a provider").await?;
        let mut found = false;
        let mut models = Vec::new();
        let mut keys = 0usize;
        for item in &items {
            let sk = Reader::new(item, "provider item").s("sk")?;
            if sk == META {
                found = true;
                if let Some(expected) = expected_version {
                    let current = version_of(item)?;
                    if current != expected {
                        return Err(stale(&what, expected, current));
                    }
                }
            } else if sk.starts_with("KEY#") {
                keys += 1;
            } else if sk.starts_with("MODEL#") {
                models.push(sk);
            }
        }
        if !found {
            return Err(StoreError::NotFound(what));
        }
        if keys > 0 {
            return Err(StoreError::Conflict(format!("provider {code} has {keys} keys")));
        }
        for chunk in models.chunks(100) {
            let deletes = chunk
                .iter()
                .map(|sk| delete(self, provider_pk(code), sk.clone(), None))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(codes) = self.transact("delete a provider's models", deletes, false).await? {
                return Err(unexpected("delete a provider's models", &codes));
            }
        }
        let condition = {
            let mut expr = Expr::default();
            let condition = match expected_version {
                Some(expected) => at_version(&mut expr, expected),
                None => format!("attribute_exists({})", expr.name("pk")),
            };
            (condition, expr)
        };
        let last = vec![
            delete(self, provider_pk(code), META.to_string(), Some(condition))?,
            delete(self, CATALOG_PK.to_string(), provider_sk(code), None)?,
        ];
        match self.transact("delete a provider", last, false).await? {
            None => Ok(models.len()),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(self.refusal(provider_pk(code), META.to_string(), what, expected_version.unwrap_or(0)).await)
            }
            Some(codes) => Err(unexpected("delete a provider", &codes)),
        }
    }

    async fn create_route(&self, route: &Route) -> Result<u64, StoreError> {
        let policy = route_policy(route)?;
        let mut item = key(route_pk(&route.name), META);
        let mut listing = key(CATALOG_PK, route_sk(&route.name));
        for (entity, target) in [("route", &mut item), ("catalog_route", &mut listing)] {
            target.extend([
                ("entity".to_string(), s(entity)),
                ("name".to_string(), s(&route.name)),
                ("targets".to_string(), targets(route)),
                ("drop_params".to_string(), boolean(route.drop_params)),
                ("version".to_string(), n(1)),
            ]);
            put_opt(target, "policy", policy.as_deref().map(s));
        }
        let items = vec![put(self, item, Some(absent()))?, put(self, listing, None)?];
        match self.transact("create a route", items, false).await? {
            None => Ok(1),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(StoreError::Conflict(format!("route {} exists", route.name)))
            }
            Some(codes) => Err(unexpected("create a route", &codes)),
        }
    }

    async fn update_route(&self, route: &Route, expected_version: u64) -> Result<u64, StoreError> {
        let items = self.route_items(route, Versioning::Expect(expected_version))?;
        match self.transact("update a route", items, false).await? {
            None => Ok(expected_version + 1),
            Some(codes) if condition_failed(&codes, 0) => {
                let what = format!("route {}", route.name);
                Err(self.refusal(route_pk(&route.name), META.to_string(), what, expected_version).await)
            }
            Some(codes) => Err(unexpected("update a route", &codes)),
        }
    }

    async fn delete_route(&self, name: &str, expected_version: Option<u64>) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        let condition = match expected_version {
            Some(expected) => at_version(&mut expr, expected),
            None => format!("attribute_exists({})", expr.name("pk")),
        };
        let items = vec![
            delete(self, route_pk(name), META.to_string(), Some((condition, expr)))?,
            delete(self, CATALOG_PK.to_string(), route_sk(name), None)?,
        ];
        match self.transact("delete a route", items, false).await? {
            None => Ok(()),
            Some(codes) if condition_failed(&codes, 0) => Err(self
                .refusal(route_pk(name), META.to_string(), format!("route {name}"), expected_version.unwrap_or(0))
                .await),
            Some(codes) => Err(unexpected("delete a route", &codes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn catalog_items_round_trip_with_every_optional_field_set_and_unset() {
        let provider = Provider {
            code: "p".into(),
            kind: ProviderKind::Anthropic,
            name: "P".into(),
            base_url: "https://p.example".into(),
            headers: BTreeMap::from([("x-a".to_string(), "1".to_string())]),
            is_active: false,
            sort_order: -3,
        };
        assert_eq!(provider_from(&provider_item(&provider)).expect("provider"), provider);
        let model = Model {
            provider: "p".into(),
            model: "m".into(),
            model_type: "chat".into(),
            context_window: Some(1),
            max_output_tokens: None,
            supports_streaming: true,
            supports_tools: false,
            supports_vision: true,
            prices: Prices { input: 1, cached_input: None, cache_write: Some(u64::MAX), output: 4 },
            is_active: true,
            is_default: false,
            drop_params: false,
            created: 0,
            cache: Default::default(),
        };
        assert_eq!(model_from(&model_item(&model)).expect("model"), model);
        let api_key = ApiKey {
            id: "k".into(),
            provider: "p".into(),
            name: "n".into(),
            secret_ref: "maestro/keys/k".into(),
            masked: "sk-…abcd".into(),
            priority: 7,
            is_active: true,
            status: KeyStatus::Error,
            cooldown_until: Some(1_795_000_000_000),
            limits: KeyLimits { rpm: Some(1), tpm: None, rpd: Some(0) },
        };
        let item = key_item(&api_key);
        assert_eq!(key_from(&item).expect("key"), api_key);
        assert_eq!(item["pk"], s("PROVIDER#p"));
        assert_eq!(item["sk"], s("KEY#k"));
    }
}
