//! The DynamoDB adapter of [`Store`]: one conditional `PutItem` to claim (returning the old item
//! on conflict, so a lost race costs no extra read), one conditional `UpdateItem` to finish, and
//! a consistent `GetItem` for the operator's resolve operation and the reconcile, and a `Query`
//! of the index `by_bot` (the claims on one BOT, for the reconcile of an unknown outcome). The
//! only code that sees SDK types.
//!
//! Table: `table`. Attributes of an idempotency record: `state`, `owner`, `fingerprint`, `in_flight_until` (epoch ms), `bot_endpoint`,
//! `request_id`, `claimed_at`, `updated_at` (epoch ms), and per state `result`,
//! `job_reference_endpoint` (completed) or `detail` (unknown). Expiry is compared in the
//! condition itself: DynamoDB deletes expired items only eventually.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::fingerprint::Fingerprint;
use super::key::RecordKey;
use super::reconcile::OtherClaim;
use super::rules::{Record, State};
use super::store::{ClaimWrite, Expected, NewClaim, Store, Update, UpdateWrite};
use crate::table::{
    DynamoDbStore, KEY_ATTRIBUTE, StoreError, StoreFuture, TTL_ATTRIBUTE, failed_condition,
    get_number, get_string, number_value, seconds_ceil, string_value, unavailable,
};

/// Claim if absent, expired (by our clock, sent as `:now`) or released.
const CLAIM_CONDITION: &str =
    "attribute_not_exists(#key) OR #expires <= :now_s OR #state = :released";

impl Store for DynamoDbStore {
    fn claim<'a>(&'a self, claim: &'a NewClaim<'a>) -> StoreFuture<'a, ClaimWrite> {
        Box::pin(async move {
            let item = HashMap::from([
                (KEY_ATTRIBUTE.to_owned(), string_value(claim.key.as_str())),
                ("state".to_owned(), string_value(State::InProgress.as_str())),
                ("owner".to_owned(), string_value(claim.owner)),
                (
                    "fingerprint".to_owned(),
                    string_value(claim.fingerprint.as_str()),
                ),
                (
                    TTL_ATTRIBUTE.to_owned(),
                    number_value(seconds_ceil(claim.expires_at_ms)),
                ),
                (
                    "in_flight_until".to_owned(),
                    number_value(claim.in_flight_until_ms),
                ),
                ("bot_endpoint".to_owned(), string_value(claim.bot_endpoint)),
                ("request_id".to_owned(), string_value(claim.request_id)),
                ("claimed_at".to_owned(), number_value(claim.now_ms)),
                ("updated_at".to_owned(), number_value(claim.now_ms)),
            ]);
            let request = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression(CLAIM_CONDITION)
                .expression_attribute_names("#key", KEY_ATTRIBUTE)
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_names("#state", "state")
                // Seconds, like the stored TTL: an item is free once its expiry second is reached.
                .expression_attribute_values(":now_s", number_value(claim.now_ms / 1000))
                .expression_attribute_values(":released", string_value(State::Released.as_str()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            match self.send_put_item(request).await {
                Ok(_) => Ok(ClaimWrite::Won),
                Err(SdkError::ServiceError(ctx))
                    if ctx.err().is_conditional_check_failed_exception() =>
                {
                    let old = match ctx.err() {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => e.item(),
                        _ => None,
                    };
                    let old = old.ok_or(StoreError::Malformed(
                        "the conditional write failed without returning the record",
                    ))?;
                    Ok(ClaimWrite::Taken(record_of(old)?))
                }
                Err(err) => Err(unavailable("PutItem", &err)),
            }
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a RecordKey,
        expected: Expected<'a>,
        update: &'a Update<'a>,
        now_ms: u64,
    ) -> StoreFuture<'a, UpdateWrite> {
        Box::pin(async move {
            let mut request = self
                .client()
                .update_item()
                .table_name(self.table())
                .key(KEY_ATTRIBUTE, string_value(key.as_str()))
                .condition_expression("#owner = :owner AND #state = :expected")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#updated", "updated_at")
                .expression_attribute_values(":owner", string_value(expected.owner))
                .expression_attribute_values(":expected", string_value(expected.state.as_str()))
                .expression_attribute_values(":state", string_value(update.state().as_str()))
                .expression_attribute_values(":now", number_value(now_ms))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            request = match update {
                Update::Complete {
                    result,
                    job_reference_endpoint,
                } => request
                    .update_expression(
                        "SET #state = :state, #updated = :now, #result = :result, #job = :job",
                    )
                    .expression_attribute_names("#result", "result")
                    .expression_attribute_names("#job", "job_reference_endpoint")
                    .expression_attribute_values(":result", string_value(result))
                    .expression_attribute_values(":job", string_value(job_reference_endpoint)),
                Update::Unknown { detail } => request
                    .update_expression("SET #state = :state, #updated = :now, #detail = :detail")
                    .expression_attribute_names("#detail", "detail")
                    .expression_attribute_values(":detail", string_value(detail)),
                Update::Release => {
                    request.update_expression("SET #state = :state, #updated = :now")
                }
            };
            match self.send_update_item(request).await {
                Ok(_) => Ok(UpdateWrite::Written),
                Err(err) => match failed_condition(&err) {
                    Some(old) => Ok(UpdateWrite::Changed(old.map(record_of).transpose()?)),
                    None => Err(unavailable("UpdateItem", &err)),
                },
            }
        })
    }

    fn get<'a>(&'a self, key: &'a RecordKey) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            let got = self.read_item(string_value(key.as_str())).await?;
            got.as_ref().map(record_of).transpose()
        })
    }

    fn claims_on_bot<'a>(
        &'a self,
        bot_endpoint: &'a str,
        from_ms: u64,
        to_ms: u64,
    ) -> StoreFuture<'a, Vec<OtherClaim>> {
        Box::pin(self.query_claims_on_bot(bot_endpoint, from_ms, to_ms))
    }
}

/// The index of claims by BOT (template.yaml: `bot_endpoint`, `claimed_at`; sparse: only
/// idempotency records have both attributes).
pub const BY_BOT_INDEX: &str = "by_bot";

/// Pages of the index read at most: a BOT with more claims in one reconcile window than this
/// reads as "cannot tell" (the reconcile stays unknown).
const MAX_PAGES: usize = 10;

fn other_of(item: &HashMap<String, AttributeValue>) -> Result<OtherClaim, StoreError> {
    Ok(OtherClaim {
        key: get_string(item, KEY_ATTRIBUTE).ok_or(StoreError::Malformed(KEY_ATTRIBUTE))?,
        state: get_string(item, "state")
            .as_deref()
            .and_then(State::parse)
            .ok_or(StoreError::Malformed("state"))?,
        claimed_at_ms: get_number(item, "claimed_at").ok_or(StoreError::Malformed("claimed_at"))?,
        in_flight_until_ms: get_number(item, "in_flight_until")
            .ok_or(StoreError::Malformed("in_flight_until"))?,
        job_reference_endpoint: get_string(item, "job_reference_endpoint"),
    })
}

impl DynamoDbStore {
    async fn query_claims_on_bot(
        &self,
        bot_endpoint: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<OtherClaim>, StoreError> {
        let mut claims = Vec::new();
        let mut start = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(BY_BOT_INDEX)
                .key_condition_expression("#bot = :bot AND #claimed BETWEEN :from AND :to")
                .expression_attribute_names("#bot", "bot_endpoint")
                .expression_attribute_names("#claimed", "claimed_at")
                .expression_attribute_values(":bot", string_value(bot_endpoint))
                .expression_attribute_values(":from", number_value(from_ms))
                .expression_attribute_values(":to", number_value(to_ms))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Query", &e))?;
            for item in page.items() {
                claims.push(other_of(item)?);
            }
            match page.last_evaluated_key() {
                Some(next) if !next.is_empty() => start = Some(next.clone()),
                _ => return Ok(claims),
            }
        }
        Err(StoreError::Unavailable(format!(
            "more than {MAX_PAGES} pages of claims on the BOT in the window"
        )))
    }
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Result<Record, StoreError> {
    let text = |name: &str| get_string(item, name);
    let number = |name: &str| get_number(item, name);
    let state = text("state")
        .as_deref()
        .and_then(State::parse)
        .ok_or(StoreError::Malformed("state"))?;
    Ok(Record {
        state,
        owner: text("owner").ok_or(StoreError::Malformed("owner"))?,
        fingerprint: Fingerprint::from_stored(
            text("fingerprint").ok_or(StoreError::Malformed("fingerprint"))?,
        ),
        expires_at_ms: number(TTL_ATTRIBUTE)
            .ok_or(StoreError::Malformed(TTL_ATTRIBUTE))?
            .saturating_mul(1000),
        in_flight_until_ms: number("in_flight_until")
            .ok_or(StoreError::Malformed("in_flight_until"))?,
        bot_endpoint: text("bot_endpoint"),
        result: text("result"),
        job_reference_endpoint: text("job_reference_endpoint"),
        claimed_at_ms: number("claimed_at"),
        updated_at_ms: number("updated_at"),
    })
}
