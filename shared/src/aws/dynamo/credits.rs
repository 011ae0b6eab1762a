//! Users' credits (see `store::credits`): per user one partition `CREDIT#<user>`, its account
//! item `ACCOUNT` (`available_micros`, `held_micros`) and its ledger items
//! `L#<ts_ms, 13 digits>#<entry id>`. A hold is a conditional update (`available_micros >= :a`);
//! top-ups and settles write the account and the ledger entry in one transaction, a settle's
//! entry only if absent (so a settle counts once per call). Every write carries an idempotency
//! token, so a retry after a lost answer is never applied twice.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::{
    DynamoStore, Expr, Item, QuerySpec, Reader, build_failed, condition_failed, get_item, key, n, put_opt, s,
    unexpected,
};
use crate::store::{CreditAccount, CreditStore, LedgerEntry, LedgerKind, Settlement, StoreError, TopUp};

const ACCOUNT: &str = "ACCOUNT";

fn pk(user_id: &str) -> String {
    format!("CREDIT#{user_id}")
}

fn ledger_sk(ts_ms: i64, id: &str) -> String {
    format!("L#{:013}#{id}", ts_ms.max(0))
}

fn entry_item(e: &LedgerEntry) -> Item {
    let mut item = key(pk(&e.user_id), ledger_sk(e.ts_ms, &e.id));
    item.extend(
        [
            ("entity", s("credit_ledger")),
            ("id", s(&e.id)),
            ("user_id", s(&e.user_id)),
            ("ts_ms", n(e.ts_ms)),
            ("kind", s(e.kind.as_str())),
            ("amount_micros", n(e.amount_micros)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value)),
    );
    put_opt(&mut item, "reason", e.reason.as_deref().map(s));
    put_opt(&mut item, "actor", e.actor.as_deref().map(s));
    put_opt(&mut item, "call_id", e.call_id.as_deref().map(s));
    item
}

fn entry_from(item: &Item) -> Result<LedgerEntry, StoreError> {
    let r = Reader::new(item, "credit ledger");
    let kind = r.s("kind")?;
    Ok(LedgerEntry {
        id: r.s("id")?,
        user_id: r.s("user_id")?,
        ts_ms: r.n("ts_ms")?,
        kind: LedgerKind::parse(&kind)
            .ok_or_else(|| StoreError::backend(format!("dynamodb: credit ledger item: unknown kind `{kind}`")))?,
        amount_micros: r.n("amount_micros")?,
        reason: r.opt_s("reason")?,
        actor: r.opt_s("actor")?,
        call_id: r.opt_s("call_id")?,
    })
}

impl DynamoStore {
    /// `ADD available :available, held :held` on the account (created at zero if absent).
    fn account_update(
        &self,
        user_id: &str,
        available: i64,
        held: i64,
        what: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut expr = Expr::default();
        let update = format!(
            "ADD {} {}, {} {} SET {} = {}",
            expr.name("available_micros"),
            expr.value("available", n(available)),
            expr.name("held_micros"),
            expr.value("held", n(held)),
            expr.name("entity"),
            expr.value("entity", s("credit_account"))
        );
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(user_id), ACCOUNT)))
            .update_expression(update)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_failed(what))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn new_entry(&self, e: &LedgerEntry, what: &str) -> Result<TransactWriteItem, StoreError> {
        let mut expr = Expr::default();
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(entry_item(e)))
            .condition_expression(format!("attribute_not_exists({})", expr.name("pk")))
            .set_expression_attribute_names(expr.names())
            .build()
            .map_err(build_failed(what))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[async_trait]
impl CreditStore for DynamoStore {
    async fn top_up(&self, t: &TopUp<'_>) -> Result<LedgerEntry, StoreError> {
        let entry = LedgerEntry::top_up(t);
        let items =
            vec![self.account_update(t.user_id, t.amount_micros, 0, "top up")?, self.new_entry(&entry, "top up")?];
        match self.transact("top up credits", items, true).await? {
            None => Ok(entry),
            Some(codes) => Err(unexpected("top up credits", &codes)),
        }
    }

    async fn credit_account(&self, user_id: &str) -> Result<CreditAccount, StoreError> {
        let item = get_item(&self.client, &self.table, key(pk(user_id), ACCOUNT), "read credits").await?;
        let Some(item) = item else { return Ok(CreditAccount::default()) };
        let r = Reader::new(&item, "credit account");
        Ok(CreditAccount {
            available_micros: r.opt_n("available_micros")?.unwrap_or(0),
            held_micros: r.opt_n("held_micros")?.unwrap_or(0),
        })
    }

    async fn hold_credits(&self, user_id: &str, amount_micros: i64) -> Result<bool, StoreError> {
        if amount_micros <= 0 {
            return Ok(true);
        }
        let mut expr = Expr::default();
        let available = expr.name("available_micros");
        let amount = expr.value("amount", n(amount_micros));
        let minus = expr.value("minus", n(-amount_micros));
        let update = format!("ADD {available} {minus}, {} {amount}", expr.name("held_micros"));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(user_id), ACCOUNT)))
            .update_expression(update)
            .condition_expression(format!("{available} >= {amount}"))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_failed("hold credits"))?;
        let items = vec![TransactWriteItem::builder().update(update).build()];
        match self.transact("hold credits", items, true).await? {
            None => Ok(true),
            Some(codes) if condition_failed(&codes, 0) => Ok(false),
            Some(codes) => Err(unexpected("hold credits", &codes)),
        }
    }

    async fn settle_credits(&self, st: &Settlement<'_>) -> Result<(), StoreError> {
        let entry = LedgerEntry::charge(st);
        let items = vec![
            self.new_entry(&entry, "settle credits")?,
            self.account_update(st.user_id, st.held_micros - st.charge_micros, -st.held_micros, "settle credits")?,
        ];
        match self.transact("settle credits", items, true).await? {
            None => Ok(()),
            // The call's entry is there: settled already.
            Some(codes) if condition_failed(&codes, 0) => Ok(()),
            Some(codes) => Err(unexpected("settle credits", &codes)),
        }
    }

    async fn credit_ledger(
        &self,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut expr = Expr::default();
        let high = match &before {
            Some((ts, id)) => ledger_sk(*ts, id),
            None => "L#~".to_string(),
        };
        let condition = format!(
            "{} = {} AND {} BETWEEN {} AND {}",
            expr.name("pk"),
            expr.value("pk", s(pk(user_id))),
            expr.name("sk"),
            expr.value("low", s("L#")),
            expr.value("high", s(&high))
        );
        let mut spec = QuerySpec::new(condition, expr);
        spec.consistent = true;
        spec.newest_first = true;
        // One more than asked: the cursor's own entry is in the range and left out.
        let items = spec.run(&self.client, &self.table, "read the ledger", Some(limit + 1)).await?;
        let mut entries = Vec::with_capacity(limit);
        for item in &items {
            let entry = entry_from(item)?;
            if before.as_ref().is_some_and(|(ts, id)| entry.ts_ms == *ts && entry.id == *id) {
                continue;
            }
            entries.push(entry);
        }
        entries.truncate(limit);
        Ok(entries)
    }
}
