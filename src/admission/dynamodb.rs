//! The DynamoDB adapter of the slots: items of the run ledger table (partition key `run`), each
//! change one conditional request, the listing of a contract one `BatchGetItem` (eventually
//! consistent: the sweep and the end's release check again with the conditional delete). The
//! only code of admission that sees SDK types.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::SlotStore;
use super::slot::{Slot, SlotKey, Taking, attribute};
use crate::cloudbot::PublicId;
use crate::ledger::attribute::RUN;
use crate::table::{
    StoreError, StoreFuture, failed_condition, get_number, get_string, number_value, string_value,
    unavailable,
};

/// The slots on DynamoDB (the run ledger table). Cheap to clone: the SDK client is shared.
#[derive(Debug, Clone)]
pub struct SlotTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl SlotTable {
    /// The slots in `table` (the run ledger table's name or ARN) through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }
}

fn key_value(key: &SlotKey) -> AttributeValue {
    string_value(&key.to_string())
}

impl SlotStore for SlotTable {
    fn take<'a>(&'a self, key: &'a SlotKey, taking: &'a Taking<'a>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(RUN, key_value(key))
                .item(attribute::TOKEN, string_value(taking.token))
                .item(attribute::HOLDER, string_value(taking.holder))
                .item(attribute::LANE, string_value(taking.lane))
                .item(attribute::TAKEN_AT, number_value(taking.taken_at_ms))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", RUN)
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(SdkError::ServiceError(ctx))
                    if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)) =>
                {
                    Ok(false)
                }
                Err(err) => Err(unavailable("PutItem", &err)),
            }
        })
    }

    fn note<'a>(
        &'a self,
        key: &'a SlotKey,
        token: &'a str,
        run: Option<(&'a str, &'a str)>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(RUN, key_value(key))
                .condition_expression("#t = :t")
                .expression_attribute_names("#t", attribute::TOKEN)
                .expression_attribute_values(":t", string_value(token));
            request = match run {
                Some((job_run, job_endpoint)) => request
                    .update_expression("SET #r = :r, #e = :e")
                    .expression_attribute_names("#r", attribute::JOB_RUN)
                    .expression_attribute_names("#e", attribute::JOB_ENDPOINT)
                    .expression_attribute_values(":r", string_value(job_run))
                    .expression_attribute_values(":e", string_value(job_endpoint)),
                None => request
                    .update_expression("SET #u = :u")
                    .expression_attribute_names("#u", attribute::OUTCOME_UNKNOWN)
                    .expression_attribute_values(":u", AttributeValue::Bool(true)),
            };
            match request.send().await {
                Ok(_) => Ok(true),
                Err(err) => match failed_condition(&err) {
                    Some(_) => Ok(false),
                    None => Err(unavailable("UpdateItem", &err)),
                },
            }
        })
    }

    fn release<'a>(&'a self, key: &'a SlotKey, token: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(RUN, key_value(key))
                .condition_expression("#t = :t")
                .expression_attribute_names("#t", attribute::TOKEN)
                .expression_attribute_values(":t", string_value(token))
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(SdkError::ServiceError(ctx))
                    if matches!(
                        ctx.err(),
                        DeleteItemError::ConditionalCheckFailedException(_)
                    ) =>
                {
                    Ok(false)
                }
                Err(err) => Err(unavailable("DeleteItem", &err)),
            }
        })
    }

    fn list<'a>(&'a self, public_id: &'a PublicId, cap: u32) -> StoreFuture<'a, Vec<Slot>> {
        Box::pin(async move {
            if cap == 0 {
                return Ok(Vec::new());
            }
            let keys: Vec<HashMap<String, AttributeValue>> = (0..cap)
                .map(|n| {
                    let key = SlotKey {
                        public_id: public_id.clone(),
                        n,
                    };
                    HashMap::from([(RUN.to_owned(), key_value(&key))])
                })
                .collect();
            let wanted = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|_| StoreError::Unavailable("BatchGetItem could not be built".into()))?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, wanted)
                .send()
                .await
                .map_err(|err| unavailable("BatchGetItem", &err))?;
            // Unprocessed keys (throttling) are slots not seen this time: the sweep comes again.
            let items = output
                .responses()
                .and_then(|r| r.get(&self.table))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut slots: Vec<Slot> = items
                .iter()
                .filter_map(|item| slot_of(public_id, item))
                .collect();
            slots.sort_by_key(|slot| slot.key.n);
            Ok(slots)
        })
    }
}

/// A stored slot item (`None` when it is not one of `public_id`'s).
fn slot_of(public_id: &PublicId, item: &HashMap<String, AttributeValue>) -> Option<Slot> {
    let key = get_string(item, RUN)?;
    let n = key
        .strip_prefix(&format!("{}{public_id}#", super::SLOT_PREFIX))?
        .parse()
        .ok()?;
    Some(Slot {
        key: SlotKey {
            public_id: public_id.clone(),
            n,
        },
        token: get_string(item, attribute::TOKEN)?,
        holder: get_string(item, attribute::HOLDER).unwrap_or_default(),
        taken_at_ms: get_number(item, attribute::TAKEN_AT).unwrap_or(0),
        job_run: get_string(item, attribute::JOB_RUN),
        job_endpoint: get_string(item, attribute::JOB_ENDPOINT),
        outcome_unknown: item
            .get(attribute::OUTCOME_UNKNOWN)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}
