//! Maestro API keys for callers: the listing item `CALLERKEYS`/`CALLERKEY#<id>` and a full copy
//! under `CALLERHASH#<sha256>`/`META`, so the hot path finds a key by its hash with one GetItem.
//! Both are written (and revoked) together in one transaction; neither ever holds the key.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::{
    DynamoStore, Expr, Item, QuerySpec, Reader, build_failed, condition_failed, get_item, key, n, put_opt, s,
    unexpected,
};
use crate::store::{BudgetLimits, CallerKey, CallerKeyStore, StoreError};

const LISTING_PK: &str = "CALLERKEYS";
const META: &str = "META";
/// Rounds of read-then-revoke while another revocation races this one.
const REVOKE_ATTEMPTS: u32 = 3;

fn listing_sk(id: &str) -> String {
    format!("CALLERKEY#{id}")
}

fn hash_pk(key_hash: &str) -> String {
    format!("CALLERHASH#{key_hash}")
}

fn attributes(k: &CallerKey) -> Item {
    let mut item: Item = [
        ("entity", s("caller_key")),
        ("id", s(&k.id)),
        ("key_hash", s(&k.key_hash)),
        ("masked", s(&k.masked)),
        ("owner", s(&k.owner)),
        ("name", s(&k.name)),
        ("allowed_models", AttributeValue::L(k.allowed_models.iter().map(s).collect())),
        ("created_at_ms", n(k.created_at_ms)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    put_opt(&mut item, "rpm", k.limits.rpm.map(n));
    put_opt(&mut item, "tokens_per_day", k.limits.tokens_per_day.map(n));
    put_opt(&mut item, "cost_micros_per_day", k.limits.cost_micros_per_day.map(n));
    put_opt(&mut item, "revoked_at_ms", k.revoked_at_ms.map(n));
    item
}

fn caller_key_from(item: &Item) -> Result<CallerKey, StoreError> {
    let r = Reader::new(item, "caller key");
    Ok(CallerKey {
        id: r.s("id")?,
        key_hash: r.s("key_hash")?,
        masked: r.s("masked")?,
        owner: r.s("owner")?,
        name: r.s("name")?,
        allowed_models: r.string_list("allowed_models")?,
        limits: BudgetLimits {
            rpm: r.opt_n("rpm")?,
            tokens_per_day: r.opt_n("tokens_per_day")?,
            cost_micros_per_day: r.opt_n("cost_micros_per_day")?,
        },
        created_at_ms: r.n("created_at_ms")?,
        revoked_at_ms: r.opt_n("revoked_at_ms")?,
    })
}

impl DynamoStore {
    fn put_new(&self, pk: String, sk: String, k: &CallerKey) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(pk, sk);
        item.extend(attributes(k));
        let mut expr = Expr::default();
        let condition = format!("attribute_not_exists({})", expr.name("pk"));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .build()
            .map_err(build_failed("create a caller key"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `SET revoked_at_ms` on an existing, not yet revoked item.
    fn revoke_item(&self, pk: String, sk: String, at_ms: i64) -> Result<TransactWriteItem, StoreError> {
        let mut expr = Expr::default();
        let revoked = expr.name("revoked_at_ms");
        let update = format!("SET {revoked} = {}", expr.value("at", n(at_ms)));
        let condition = format!("attribute_exists({}) AND attribute_not_exists({revoked})", expr.name("pk"));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_failed("revoke a caller key"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn caller_key_by_id(&self, id: &str) -> Result<Option<CallerKey>, StoreError> {
        let item = get_item(&self.client, &self.table, key(LISTING_PK, listing_sk(id)), "read a caller key").await?;
        item.as_ref().map(caller_key_from).transpose()
    }
}

#[async_trait]
impl CallerKeyStore for DynamoStore {
    async fn create_caller_key(&self, k: &CallerKey) -> Result<(), StoreError> {
        let items = vec![
            self.put_new(LISTING_PK.to_string(), listing_sk(&k.id), k)?,
            self.put_new(hash_pk(&k.key_hash), META.to_string(), k)?,
        ];
        match self.transact("create a caller key", items, false).await? {
            None => Ok(()),
            Some(codes) if condition_failed(&codes, 0) || condition_failed(&codes, 1) => {
                Err(StoreError::Conflict(format!("caller key {} exists already", k.id)))
            }
            Some(codes) => Err(unexpected("create a caller key", &codes)),
        }
    }

    async fn caller_key_by_hash(&self, key_hash: &str) -> Result<Option<CallerKey>, StoreError> {
        let item = get_item(&self.client, &self.table, key(hash_pk(key_hash), META), "read a caller key").await?;
        item.as_ref().map(caller_key_from).transpose()
    }

    async fn list_caller_keys(&self) -> Result<Vec<CallerKey>, StoreError> {
        let mut expr = Expr::default();
        let condition = format!(
            "{} = {} AND begins_with({}, {})",
            expr.name("pk"),
            expr.value("pk", s(LISTING_PK)),
            expr.name("sk"),
            expr.value("prefix", s("CALLERKEY#"))
        );
        let mut spec = QuerySpec::new(condition, expr);
        spec.consistent = true;
        spec.newest_first = true; // ids are UUID v7: newest first by sort key
        let items = spec.run(&self.client, &self.table, "list caller keys", None).await?;
        items.iter().map(caller_key_from).collect()
    }

    async fn revoke_caller_key(&self, id: &str, at_ms: i64) -> Result<CallerKey, StoreError> {
        for _ in 0..REVOKE_ATTEMPTS {
            let current =
                self.caller_key_by_id(id).await?.ok_or_else(|| StoreError::NotFound(format!("caller key {id}")))?;
            if current.is_revoked() {
                return Ok(current);
            }
            let items = vec![
                self.revoke_item(LISTING_PK.to_string(), listing_sk(id), at_ms)?,
                self.revoke_item(hash_pk(&current.key_hash), META.to_string(), at_ms)?,
            ];
            match self.transact("revoke a caller key", items, false).await? {
                None => return Ok(CallerKey { revoked_at_ms: Some(at_ms), ..current }),
                // Revoked (or deleted) in between: read again and report what is there.
                Some(codes) if condition_failed(&codes, 0) || condition_failed(&codes, 1) => continue,
                Some(codes) => return Err(unexpected("revoke a caller key", &codes)),
            }
        }
        Err(StoreError::Conflict(format!("caller key {id} kept changing while it was revoked")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_key_round_trips_through_its_item_without_the_key() {
        let k = CallerKey {
            id: "ck_1".into(),
            key_hash: "ab".repeat(32),
            masked: "mk-…wxyz".into(),
            owner: "user-1".into(),
            name: "ci".into(),
            allowed_models: vec!["openai/gpt-4o".into(), "smart".into()],
            limits: BudgetLimits { rpm: Some(2), tokens_per_day: None, cost_micros_per_day: Some(5) },
            created_at_ms: 7,
            revoked_at_ms: None,
        };
        assert_eq!(caller_key_from(&attributes(&k)).expect("read"), k);
        let empty = CallerKey { allowed_models: vec![], revoked_at_ms: Some(9), ..k };
        assert_eq!(caller_key_from(&attributes(&empty)).expect("read"), empty);
        assert_eq!(listing_sk("ck_1"), "CALLERKEY#ck_1");
        assert_eq!(hash_pk("ff"), "CALLERHASH#ff");
    }
}
