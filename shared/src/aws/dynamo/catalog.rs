//! Providers, models, keys and routes as items (see the access patterns in the module above).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use tokio::task::JoinSet;

use super::{
    DynamoStore, Expr, Item, QuerySpec, Reader, boolean, build_failed, condition_failed, failed, get_item, key, n,
    put_opt, s, unexpected,
};
use crate::domain::{
    ApiKey, Catalog, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderEntry, ProviderKind, Route,
};
use crate::store::{CatalogStore, StoreError};

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
            .ok_or_else(|| StoreError::Backend(format!("dynamodb: provider item: unknown kind `{kind}`")))?,
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
    ]);
    put_opt(&mut item, "context_window", m.context_window.map(n));
    put_opt(&mut item, "max_output_tokens", m.max_output_tokens.map(n));
    put_opt(&mut item, "price_cached_input", m.prices.cached_input.map(n));
    put_opt(&mut item, "price_cache_write", m.prices.cache_write.map(n));
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
            .ok_or_else(|| StoreError::Backend(format!("dynamodb: key item: unknown status `{status}`")))?,
        cooldown_until: r.opt_n("cooldown_until")?,
        limits: KeyLimits { rpm: r.opt_n("rpm")?, tpm: r.opt_n("tpm")?, rpd: r.opt_n("rpd")? },
    })
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

/// One provider with its models and keys, from one Query; `None` if its `META` item is gone.
async fn load_provider(client: Client, table: String, code: String) -> Result<Option<ProviderEntry>, StoreError> {
    let items = partition(&client, &table, provider_pk(&code), "load a provider").await?;
    let mut provider = None;
    let (mut models, mut keys) = (Vec::new(), Vec::new());
    for item in &items {
        let sk = Reader::new(item, "catalog").s("sk")?;
        if sk == META {
            provider = Some(provider_from(item)?);
        } else if sk.starts_with("MODEL#") {
            models.push(model_from(item)?);
        } else if sk.starts_with("KEY#") {
            keys.push(key_from(item)?);
        }
    }
    models.sort_by(|a, b| a.model.cmp(&b.model));
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(provider.map(|provider| ProviderEntry { provider, models, keys }))
}

impl DynamoStore {
    /// The provider a key is filed under, from its `KEYREF#<id>` item.
    async fn key_provider(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        let item = get_item(&self.client, &self.table, key(keyref_pk(key_id), META), "read a key reference").await?;
        item.map(|item| Reader::new(&item, "key reference").s("provider")).transpose()
    }
}

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn load_catalog(&self) -> Result<Catalog, StoreError> {
        let listing = partition(&self.client, &self.table, CATALOG_PK.to_string(), "list the catalog").await?;
        let mut routes = Vec::new();
        let mut loads = JoinSet::new();
        for item in &listing {
            let r = Reader::new(item, "catalog listing");
            let sk = r.s("sk")?;
            if let Some(code) = sk.strip_prefix("PROVIDER#") {
                loads.spawn(load_provider(self.client.clone(), self.table.clone(), code.to_string()));
            } else if sk.starts_with("ROUTE#") {
                routes.push(Route { name: r.s("name")?, targets: r.string_list("targets")? });
            }
        }
        let mut providers = Vec::new();
        while let Some(joined) = loads.join_next().await {
            let loaded =
                joined.map_err(|e| StoreError::Backend(format!("dynamodb: loading a provider failed: {e}")))?;
            providers.extend(loaded?);
        }
        providers
            .sort_by(|a, b| (a.provider.sort_order, &a.provider.code).cmp(&(b.provider.sort_order, &b.provider.code)));
        routes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Catalog { providers, routes })
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
        let items = vec![put(self, provider_item(provider), None)?, put(self, listing, None)?];
        match self.transact("upsert a provider", items, false).await? {
            None => Ok(()),
            Some(codes) => Err(unexpected("upsert a provider", &codes)),
        }
    }

    async fn upsert_model(&self, model: &Model) -> Result<(), StoreError> {
        let items = vec![exists(self, provider_pk(&model.provider), META)?, put(self, model_item(model), None)?];
        match self.transact("upsert a model", items, false).await? {
            None => Ok(()),
            Some(codes) if condition_failed(&codes, 0) => {
                Err(StoreError::NotFound(format!("provider {}", model.provider)))
            }
            Some(codes) => Err(unexpected("upsert a model", &codes)),
        }
    }

    async fn insert_model_if_absent(&self, model: &Model) -> Result<bool, StoreError> {
        let items =
            vec![exists(self, provider_pk(&model.provider), META)?, put(self, model_item(model), Some(absent()))?];
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
                put(self, key_item(api_key), None)?,
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
        let mut item = key(route_pk(&route.name), META);
        let mut listing = key(CATALOG_PK, route_sk(&route.name));
        for (entity, target) in [("route", &mut item), ("catalog_route", &mut listing)] {
            target.extend([
                ("entity".to_string(), s(entity)),
                ("name".to_string(), s(&route.name)),
                ("targets".to_string(), targets(route)),
            ]);
        }
        let items = vec![put(self, item, None)?, put(self, listing, None)?];
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
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(provider_pk(&provider), key_sk(key_id))))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(not_found())
            }
            Err(e) => Err(failed("set a key's status", &e)),
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
