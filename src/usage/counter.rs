//! The usage counter item: one per contract and month in the run ledger table, keyed
//! `usage:<public_id>@<YYYY-MM>` under the table's partition key `run` (a run's key is
//! `<public_id>/<job_id>` and a public id has no `:`, so the two never collide; the item has no
//! `bot` or `month`, so no index holds it). `ADD` makes concurrent ends commute with no read;
//! the add answers the new total (`ReturnValues` `UPDATED_NEW`, no extra request). The DynamoDB
//! adapter is the only code of `usage` that sees SDK types.

use aws_sdk_dynamodb::types::ReturnValue;

use super::UsageStore;
use crate::ledger::attribute::RUN;
use crate::table::{StoreError, StoreFuture, get_number, number_value, string_value, unavailable};

/// The prefix of a counter's key.
pub const COUNTER_PREFIX: &str = "usage:";

/// The counter item's attributes (docs/usage.md, "The counter item").
pub mod attribute {
    /// BOT-seconds of the runs whose end was recorded, summed (N).
    pub const BOT_SECONDS: &str = "bot_seconds";
    /// How many ends were added (N).
    pub const RUNS: &str = "runs";
}

/// A counter's key: a contract (public id) and a month (`YYYY-MM`, JST).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey(String);

impl CounterKey {
    /// The counter of `contract` in `month`.
    pub fn new(contract: &str, month: &str) -> Self {
        Self(format!("{COUNTER_PREFIX}{contract}@{month}"))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The counter on DynamoDB (the run ledger table). Cheap to clone: the SDK client is shared.
#[derive(Debug, Clone)]
pub struct UsageTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl UsageTable {
    /// Counters in `table` (the run ledger's name or ARN) through `client` (built once).
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }
}

impl UsageStore for UsageTable {
    fn add<'a>(
        &'a self,
        key: &'a CounterKey,
        seconds: u64,
        expires_at_s: u64,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let output = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(RUN, string_value(key.as_str()))
                .update_expression("ADD #s :s, #r :one SET #e = :e")
                .expression_attribute_names("#s", attribute::BOT_SECONDS)
                .expression_attribute_names("#r", attribute::RUNS)
                .expression_attribute_names("#e", crate::table::TTL_ATTRIBUTE)
                .expression_attribute_values(":s", number_value(seconds))
                .expression_attribute_values(":one", number_value(1))
                .expression_attribute_values(":e", number_value(expires_at_s))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await
                .map_err(|err| unavailable("UpdateItem", &err))?;
            output
                .attributes()
                .and_then(|item| get_number(item, attribute::BOT_SECONDS))
                .ok_or(StoreError::Malformed("bot_seconds"))
        })
    }

    fn read<'a>(&'a self, key: &'a CounterKey) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            // Eventually consistent: half the read cost, and the cache is staler anyway.
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(RUN, string_value(key.as_str()))
                .projection_expression("#s")
                .expression_attribute_names("#s", attribute::BOT_SECONDS)
                .send()
                .await
                .map_err(|err| unavailable("GetItem", &err))?;
            Ok(output
                .item()
                .and_then(|item| get_number(item, attribute::BOT_SECONDS))
                .unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_keyed_by_contract_and_month() {
        assert_eq!(
            CounterKey::new("demo", "2026-12").as_str(),
            "usage:demo@2026-12"
        );
    }
}
