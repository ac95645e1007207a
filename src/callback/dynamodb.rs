//! The DynamoDB adapter of [`CallbackStore`], on the idempotency table's handle
//! ([`DynamoDbStore`]: one client, one table, shared helpers). Item layout: `store`; who may
//! settle: `rules`, whose `Free` turn is [`SETTLE_CONDITION`] here. The only callback code that
//! sees SDK types; failures become a fixed description plus the service's error code, never a
//! body.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::id::TaskToken;
use super::store::{
    CallbackRecord, CallbackState, CallbackStore, Lease, NewCallback, RECORD_PREFIX, SettleClaim,
    SettleClaimWrite, TASK_PREFIX,
};
use crate::table::{
    DynamoDbStore, KEY_ATTRIBUTE, StoreError, StoreFuture, TTL_ATTRIBUTE, failed_condition,
    get_number, get_string, number_value, seconds_ceil, string_value, unavailable,
};

/// Claim if the record is not expired (by our clock, sent as `:now_s`) and waiting, or settling
/// under a lapsed lease (`rules::turn` says `Free`).
const SETTLE_CONDITION: &str = "attribute_exists(#key) AND #expires > :now_s AND (#state = \
     :waiting OR (#state = :settling AND (attribute_not_exists(#until) OR #until <= :now)))";

fn record_key(hash: &str) -> AttributeValue {
    string_value(&format!("{RECORD_PREFIX}{hash}"))
}

impl DynamoDbStore {
    /// An `UpdateItem` of the callback record `hash`, written only while the record exists.
    fn existing_record(&self, hash: &str) -> UpdateItemFluentBuilder {
        self.client()
            .update_item()
            .table_name(self.table())
            .key(KEY_ATTRIBUTE, record_key(hash))
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#key", KEY_ATTRIBUTE)
    }
}

impl CallbackStore for DynamoDbStore {
    fn create<'a>(&'a self, new: &'a NewCallback<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let expires = number_value(seconds_ceil(new.expires_at_ms));
            let record = HashMap::from([
                (KEY_ATTRIBUTE.to_owned(), record_key(new.hash)),
                (
                    "state".to_owned(),
                    string_value(CallbackState::Waiting.as_str()),
                ),
                ("task_key".to_owned(), string_value(new.task_key)),
                (
                    "task_token".to_owned(),
                    string_value(new.task_token.expose()),
                ),
                (TTL_ATTRIBUTE.to_owned(), expires.clone()),
                ("created_at".to_owned(), number_value(new.now_ms)),
                ("updated_at".to_owned(), number_value(new.now_ms)),
            ]);
            // A fresh 256-bit id never collides; the condition only guards against a bug.
            self.send_put(
                self.client()
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(record))
                    .condition_expression("attribute_not_exists(#key)")
                    .expression_attribute_names("#key", KEY_ATTRIBUTE),
            )
            .await?;
            let pointer = HashMap::from([
                (
                    KEY_ATTRIBUTE.to_owned(),
                    string_value(&format!("{TASK_PREFIX}{}", new.task_key)),
                ),
                ("callback_hash".to_owned(), string_value(new.hash)),
                (TTL_ATTRIBUTE.to_owned(), expires),
                ("updated_at".to_owned(), number_value(new.now_ms)),
            ]);
            self.send_put(
                self.client()
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(pointer)),
            )
            .await
        })
    }

    fn set_job<'a>(
        &'a self,
        hash: &'a str,
        job_reference_endpoint: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.send_update(
                self.existing_record(hash)
                    .update_expression("SET #job = :job, #updated = :now")
                    .expression_attribute_names("#job", "job_reference_endpoint")
                    .expression_attribute_names("#updated", "updated_at")
                    .expression_attribute_values(":job", string_value(job_reference_endpoint))
                    .expression_attribute_values(":now", number_value(now_ms)),
            )
            .await
        })
    }

    fn renew_token<'a>(
        &'a self,
        task_key: &'a str,
        token: &'a TaskToken,
        now_ms: u64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let pointer = self
                .read_item(string_value(&format!("{TASK_PREFIX}{task_key}")))
                .await?;
            let Some(hash) = pointer
                .as_ref()
                .and_then(|item| item.get("callback_hash"))
                .and_then(|v| v.as_s().ok())
            else {
                return Ok(false);
            };
            let updated = self
                .send_update_item(
                    self.existing_record(hash)
                        .update_expression("SET #token = :token, #updated = :now")
                        .expression_attribute_names("#token", "task_token")
                        .expression_attribute_names("#updated", "updated_at")
                        .expression_attribute_values(":token", string_value(token.expose()))
                        .expression_attribute_values(":now", number_value(now_ms)),
                )
                .await;
            match updated {
                Ok(_) => Ok(true),
                Err(e) if failed_condition(&e).is_some() => Ok(false),
                Err(e) => Err(unavailable("UpdateItem", &e)),
            }
        })
    }

    fn read<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<CallbackRecord>> {
        Box::pin(async move {
            let got = self.read_item(record_key(hash)).await?;
            got.as_ref().map(record_of).transpose()
        })
    }

    fn claim_settlement<'a>(
        &'a self,
        claim: &'a SettleClaim<'a>,
    ) -> StoreFuture<'a, SettleClaimWrite> {
        Box::pin(async move {
            let sent = self.send_update_item(self
                .client()
                .update_item()
                .table_name(self.table())
                .key(KEY_ATTRIBUTE, record_key(claim.hash))
                .condition_expression(SETTLE_CONDITION)
                .update_expression(
                    "SET #state = :settling, #owner = :owner, #until = :until, #updated = :now",
                )
                .expression_attribute_names("#key", KEY_ATTRIBUTE)
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#owner", "lease_owner")
                .expression_attribute_names("#until", "lease_until")
                .expression_attribute_names("#updated", "updated_at")
                // Seconds, like the stored TTL: a record is gone once its expiry second is reached.
                .expression_attribute_values(":now_s", number_value(claim.now_ms / 1000))
                .expression_attribute_values(":now", number_value(claim.now_ms))
                .expression_attribute_values(
                    ":waiting",
                    string_value(CallbackState::Waiting.as_str()),
                )
                .expression_attribute_values(
                    ":settling",
                    string_value(CallbackState::Settling.as_str()),
                )
                .expression_attribute_values(":owner", string_value(claim.owner))
                .expression_attribute_values(":until", number_value(claim.lease_until_ms))
                // The record as claimed: its token is the newest at the claim, atomically.
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                )
                .await;
            match sent {
                Ok(out) => {
                    let claimed = out
                        .attributes()
                        .ok_or(StoreError::Malformed("the settle claim returned no record"))?;
                    Ok(SettleClaimWrite::Won(record_of(claimed)?))
                }
                Err(e) => match failed_condition(&e) {
                    Some(old) => Ok(SettleClaimWrite::Lost(old.map(record_of).transpose()?)),
                    None => Err(unavailable("UpdateItem", &e)),
                },
            }
        })
    }

    fn release_settlement<'a>(
        &'a self,
        hash: &'a str,
        owner: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let sent = self
                .send_update_item(
                    self.client()
                        .update_item()
                        .table_name(self.table())
                        .key(KEY_ATTRIBUTE, record_key(hash))
                        .condition_expression("#state = :settling AND #owner = :owner")
                        .update_expression("SET #state = :waiting, #updated = :now REMOVE #until")
                        .expression_attribute_names("#state", "state")
                        .expression_attribute_names("#owner", "lease_owner")
                        .expression_attribute_names("#until", "lease_until")
                        .expression_attribute_names("#updated", "updated_at")
                        .expression_attribute_values(
                            ":settling",
                            string_value(CallbackState::Settling.as_str()),
                        )
                        .expression_attribute_values(
                            ":waiting",
                            string_value(CallbackState::Waiting.as_str()),
                        )
                        .expression_attribute_values(":owner", string_value(owner))
                        .expression_attribute_values(":now", number_value(now_ms)),
                )
                .await;
            match sent {
                Ok(_) => Ok(()),
                // Not ours any more (the lease lapsed and another delivery took it): leave it.
                Err(e) if failed_condition(&e).is_some() => Ok(()),
                Err(e) => Err(unavailable("UpdateItem", &e)),
            }
        })
    }

    fn mark_settled<'a>(&'a self, hash: &'a str, how: &'a str, now_ms: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.send_update(
                self.existing_record(hash)
                    .update_expression(
                        "SET #state = :state, #how = :how, #updated = :now REMOVE #until",
                    )
                    .expression_attribute_names("#until", "lease_until")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#how", "settled_as")
                    .expression_attribute_names("#updated", "updated_at")
                    .expression_attribute_values(
                        ":state",
                        string_value(CallbackState::Settled.as_str()),
                    )
                    .expression_attribute_values(":how", string_value(how))
                    .expression_attribute_values(":now", number_value(now_ms)),
            )
            .await
        })
    }
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Result<CallbackRecord, StoreError> {
    let text = |name: &str| get_string(item, name);
    let expires_s = get_number(item, TTL_ATTRIBUTE).ok_or(StoreError::Malformed(TTL_ATTRIBUTE))?;
    let lease = match (text("lease_owner"), get_number(item, "lease_until")) {
        (Some(owner), Some(until_ms)) => Some(Lease { owner, until_ms }),
        _ => None,
    };
    let token = text("task_token").ok_or(StoreError::Malformed("task_token"))?;
    Ok(CallbackRecord {
        task_key: text("task_key").ok_or(StoreError::Malformed("task_key"))?,
        task_token: TaskToken::parse(&token).map_err(|_| StoreError::Malformed("task_token"))?,
        job_reference_endpoint: text("job_reference_endpoint"),
        state: text("state")
            .as_deref()
            .and_then(CallbackState::parse)
            .ok_or(StoreError::Malformed("state"))?,
        lease,
        expires_at_ms: expires_s.saturating_mul(1000),
    })
}
