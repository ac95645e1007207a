//! The DynamoDB adapter of [`CallbackStore`], in the idempotency table (partition key
//! `record_key`, TTL on `expires_at`). Item layout: `store`. The only callback code that sees SDK
//! types; failures become a fixed description plus the service's error code, never a body.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::id::TaskToken;
use super::store::{
    CallbackRecord, CallbackState, CallbackStore, NewCallback, RECORD_PREFIX, TASK_PREFIX,
};
use crate::idempotency::{KEY_ATTRIBUTE, StoreError, StoreFuture, TTL_ATTRIBUTE};

/// Callback records on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbCallbackStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbCallbackStore {
    /// A store on `table` through `client` (the idempotency store's client and table).
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn record_key(hash: &str) -> AttributeValue {
    s(&format!("{RECORD_PREFIX}{hash}"))
}

impl CallbackStore for DynamoDbCallbackStore {
    fn create<'a>(&'a self, new: &'a NewCallback<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let expires = n(new.expires_at_ms.div_ceil(1000));
            let record = HashMap::from([
                (KEY_ATTRIBUTE.to_owned(), record_key(new.hash)),
                ("state".to_owned(), s(CallbackState::Waiting.as_str())),
                ("task_key".to_owned(), s(new.task_key)),
                ("task_token".to_owned(), s(new.task_token.expose())),
                (TTL_ATTRIBUTE.to_owned(), expires.clone()),
                ("created_at".to_owned(), n(new.now_ms)),
                ("updated_at".to_owned(), n(new.now_ms)),
            ]);
            // A fresh 256-bit id never collides; the condition only guards against a bug.
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record))
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", KEY_ATTRIBUTE)
                .send()
                .await
                .map_err(|e| unavailable("PutItem", &e))?;
            let pointer = HashMap::from([
                (
                    KEY_ATTRIBUTE.to_owned(),
                    s(&format!("{TASK_PREFIX}{}", new.task_key)),
                ),
                ("callback_hash".to_owned(), s(new.hash)),
                (TTL_ATTRIBUTE.to_owned(), expires),
                ("updated_at".to_owned(), n(new.now_ms)),
            ]);
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(pointer))
                .send()
                .await
                .map_err(|e| unavailable("PutItem", &e))?;
            Ok(())
        })
    }

    fn set_job<'a>(
        &'a self,
        hash: &'a str,
        job_reference_endpoint: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .update_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, record_key(hash))
                .condition_expression("attribute_exists(#key)")
                .update_expression("SET #job = :job, #updated = :now")
                .expression_attribute_names("#key", KEY_ATTRIBUTE)
                .expression_attribute_names("#job", "job_reference_endpoint")
                .expression_attribute_names("#updated", "updated_at")
                .expression_attribute_values(":job", s(job_reference_endpoint))
                .expression_attribute_values(":now", n(now_ms))
                .send()
                .await
                .map_err(|e| unavailable("UpdateItem", &e))?;
            Ok(())
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
                .client
                .get_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(&format!("{TASK_PREFIX}{task_key}")))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| unavailable("GetItem", &e))?;
            let Some(hash) = pointer
                .item()
                .and_then(|item| item.get("callback_hash"))
                .and_then(|v| v.as_s().ok())
            else {
                return Ok(false);
            };
            let updated = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, record_key(hash))
                .condition_expression("attribute_exists(#key)")
                .update_expression("SET #token = :token, #updated = :now")
                .expression_attribute_names("#key", KEY_ATTRIBUTE)
                .expression_attribute_names("#token", "task_token")
                .expression_attribute_names("#updated", "updated_at")
                .expression_attribute_values(":token", s(token.expose()))
                .expression_attribute_values(":now", n(now_ms))
                .send()
                .await;
            match updated {
                Ok(_) => Ok(true),
                Err(SdkError::ServiceError(ctx))
                    if ctx.err().is_conditional_check_failed_exception() =>
                {
                    Ok(false)
                }
                Err(e) => Err(unavailable("UpdateItem", &e)),
            }
        })
    }

    fn get<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<CallbackRecord>> {
        Box::pin(async move {
            let got = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, record_key(hash))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| unavailable("GetItem", &e))?;
            got.item().map(record_of).transpose()
        })
    }

    fn mark_settled<'a>(&'a self, hash: &'a str, how: &'a str, now_ms: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .update_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, record_key(hash))
                .condition_expression("attribute_exists(#key)")
                .update_expression("SET #state = :state, #how = :how, #updated = :now")
                .expression_attribute_names("#key", KEY_ATTRIBUTE)
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#how", "settled_as")
                .expression_attribute_names("#updated", "updated_at")
                .expression_attribute_values(":state", s(CallbackState::Settled.as_str()))
                .expression_attribute_values(":how", s(how))
                .expression_attribute_values(":now", n(now_ms))
                .send()
                .await
                .map_err(|e| unavailable("UpdateItem", &e))?;
            Ok(())
        })
    }
}

fn unavailable<E: ProvideErrorMetadata, R>(operation: &str, err: &SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(match err {
        SdkError::ServiceError(ctx) => format!(
            "DynamoDB {operation} failed: {}",
            ctx.err().code().unwrap_or("unknown error")
        ),
        SdkError::TimeoutError(_) => format!("DynamoDB {operation} timed out"),
        SdkError::DispatchFailure(_) => {
            format!("DynamoDB {operation} could not be sent (no connection)")
        }
        _ => format!("DynamoDB {operation} failed"),
    })
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Result<CallbackRecord, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let expires_s = item
        .get(TTL_ATTRIBUTE)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(StoreError::Malformed(TTL_ATTRIBUTE))?;
    let token = text("task_token").ok_or(StoreError::Malformed("task_token"))?;
    Ok(CallbackRecord {
        task_key: text("task_key").ok_or(StoreError::Malformed("task_key"))?,
        task_token: TaskToken::parse(&token).map_err(|_| StoreError::Malformed("task_token"))?,
        job_reference_endpoint: text("job_reference_endpoint"),
        state: text("state")
            .as_deref()
            .and_then(CallbackState::parse)
            .ok_or(StoreError::Malformed("state"))?,
        expires_at_ms: expires_s.saturating_mul(1000),
    })
}
