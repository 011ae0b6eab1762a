//! Alert records (`ALERT#RULE` / `ALERT#CHANNEL` / `ALERT#STATE`, sorted by name), the history
//! (`ALERT#HISTORY`, `<ts>#<id>`, with TTL) and the evaluation lease (`ALERT#LEASE`): a few
//! small items written once a minute at most, so single partitions serve them.

use async_trait::async_trait;

use super::{DynamoStore, Expr, Item, QuerySpec, Reader, expires_after_days, key, n, retry, s};
use crate::store::alerts::check_version;
use crate::store::{ALERT_HISTORY_DAYS, AlertRecord, AlertRecordKind, AlertStore, StoreError};

const HISTORY_PK: &str = "ALERT#HISTORY";
const LEASE_PK: &str = "ALERT#LEASE";

fn records_pk(kind: AlertRecordKind) -> String {
    format!("ALERT#{}", kind.as_str().to_uppercase())
}

fn record_from(item: &Item) -> Result<AlertRecord, StoreError> {
    let r = Reader::new(item, "alert record");
    Ok(AlertRecord { name: r.s("sk")?, body: r.s("body")?, version: r.n("version")? })
}

impl DynamoStore {
    async fn alert_record(&self, kind: AlertRecordKind, name: &str) -> Result<Option<AlertRecord>, StoreError> {
        const WHAT: &str = "read an alert record";
        let k = key(records_pk(kind), name);
        let out = retry::retrying(WHAT, |_| {
            let request = self.client.get_item().table_name(&self.table).set_key(Some(k.clone())).consistent_read(true);
            async move { request.send().await.map_err(|e| retry::classify(WHAT, &e)) }
        })
        .await?;
        out.item().map(record_from).transpose()
    }

    /// A Put (`put`: body and new version) or a Delete (`None`) conditioned on the record being
    /// at `found` (absent for `None`); `Ok(false)` when it has moved since.
    async fn write_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        found: Option<u64>,
        put: Option<(&str, u64)>,
    ) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        let condition = match found {
            None => format!("attribute_not_exists({})", expr.name("pk")),
            Some(version) => format!("{} = {}", expr.name("version"), expr.value("found", n(version))),
        };
        const WHAT: &str = "write an alert record";
        let Some((body, version)) = put else {
            return retry::retrying(WHAT, |_| {
                let request = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(records_pk(kind), name)))
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
            .await;
        };
        let mut item = key(records_pk(kind), name);
        item.insert("entity".into(), s("alert_record"));
        item.insert("body".into(), s(body));
        item.insert("version".into(), n(version));
        retry::retrying(WHAT, |_| {
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
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
        .await
    }
}

#[async_trait]
impl AlertStore for DynamoStore {
    async fn alert_records(&self, kind: AlertRecordKind) -> Result<Vec<AlertRecord>, StoreError> {
        let mut expr = Expr::default();
        let condition = format!("{} = {}", expr.name("pk"), expr.value("pk", s(records_pk(kind))));
        let mut spec = QuerySpec::new(condition, expr);
        spec.consistent = true;
        let items = spec.run(&self.client, &self.table, "read alert records", None).await?;
        items.iter().map(record_from).collect()
    }

    async fn put_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        body: &str,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        loop {
            let found = self.alert_record(kind, name).await?.map(|r| r.version);
            check_version(kind, name, found, expected)?;
            let version = found.unwrap_or(0) + 1;
            if self.write_alert_record(kind, name, found, Some((body, version))).await? {
                return Ok(version);
            }
            // Another write came between the read and this one: a versioned write has lost;
            // an unversioned one reads again.
            if expected.is_some() {
                return Err(StoreError::Conflict(format!(
                    "the alert {} `{name}` changed meanwhile: reload it",
                    kind.as_str()
                )));
            }
        }
    }

    async fn delete_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        loop {
            let found = self.alert_record(kind, name).await?.map(|r| r.version);
            if expected.is_some() {
                check_version(kind, name, found, expected)?;
            }
            let Some(version) = found else { return Ok(()) };
            if self.write_alert_record(kind, name, Some(version), None).await? {
                return Ok(());
            }
            if expected.is_some() {
                return Err(StoreError::Conflict(format!(
                    "the alert {} `{name}` changed meanwhile: reload it",
                    kind.as_str()
                )));
            }
        }
    }

    async fn append_alert_history(&self, ts_ms: i64, id: &str, body: &str) -> Result<(), StoreError> {
        let mut item = key(HISTORY_PK, format!("{:013}#{id}", ts_ms.max(0)));
        item.insert("entity".into(), s("alert_history"));
        item.insert("body".into(), s(body));
        item.insert("expires_at".into(), n(expires_after_days(ts_ms, ALERT_HISTORY_DAYS)));
        const WHAT: &str = "add to the alert history";
        retry::retrying(WHAT, |_| {
            let request = self.client.put_item().table_name(&self.table).set_item(Some(item.clone()));
            async move { request.send().await.map(|_| ()).map_err(|e| retry::classify(WHAT, &e)) }
        })
        .await
    }

    async fn alert_history(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut expr = Expr::default();
        let condition = format!("{} = {}", expr.name("pk"), expr.value("pk", s(HISTORY_PK)));
        let mut spec = QuerySpec::new(condition, expr);
        spec.newest_first = true;
        let items = spec.run(&self.client, &self.table, "read the alert history", Some(limit)).await?;
        items.iter().take(limit).map(|item| Reader::new(item, "alert history").s("body")).collect()
    }

    async fn acquire_alert_lease(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        let (pk, held_by, until) = (expr.name("pk"), expr.name("holder"), expr.name("until_ms"));
        let me = expr.value("holder", s(holder));
        let now = expr.value("now", n(now_ms));
        let update = format!("SET {held_by} = {me}, {until} = {}", expr.value("until", n(now_ms + ttl_ms)));
        let condition = format!("attribute_not_exists({pk}) OR {held_by} = {me} OR {until} <= {now}");
        const WHAT: &str = "take the alert lease";
        retry::retrying(WHAT, |_| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(LEASE_PK, "LEASE")))
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
        .await
    }
}
