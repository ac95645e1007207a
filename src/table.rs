//! The DynamoDB table the function keeps its records in, owned by neither of its two tenants:
//! idempotency records (`crate::idempotency`, key `request:…`, `http:…`, …) and callback records
//! (`crate::callback`, key `callback:…`, `task:…`) share it. Here are the handle both adapters
//! go through, the error and future types both store traits return, and the attribute helpers.
//! Nothing outside the two adapters sees SDK types.
//!
//! The hot-path calls (`PutItem`, `UpdateItem`, `GetItem`) go through [`DynamoDbStore`]'s
//! `send_*` methods, which take the SDK's own request builders and answer with the SDK's own
//! output and error types: once a call was learned they are sent on the lean path (`lean`: the
//! calls' JSON in `wire`, their signature in `sigv4`), otherwise through the SDK. Why and what it
//! saves: docs/benchmarks.md, "A lean DynamoDB call path".
//!
//! Table (template.yaml): partition key `record_key` (S), TTL on `expires_at` (epoch seconds).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

mod lean;
mod sigv4;
mod wire;

use lean::Lean;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

/// Partition key attribute of the table.
pub const KEY_ATTRIBUTE: &str = "record_key";
/// TTL attribute of the table (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Now, in milliseconds since the Unix epoch (the records' times).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs a store call within `deadline`: a store never holds an invocation past it.
pub(crate) async fn bounded<T, E: From<StoreError>>(
    deadline: tokio::time::Instant,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable("no answer before the invocation's deadline".into()).into())
        })
}

/// A boxed store future (the store traits are used as `dyn` objects).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not be used; nothing is known about the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The call failed (unreachable, throttled, access denied, table missing, timed out): the
    /// error code or a fixed description, never a request or response body.
    #[error("{0}")]
    Unavailable(String),
    /// A stored record could not be read back (a field missing or malformed).
    #[error("the stored record is malformed: {0}")]
    Malformed(&'static str),
}

/// The table on DynamoDB. Cheap to clone: the SDK client and the lean path (what it learned,
/// its credentials and signing key) are shared by the clones.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// `None`: every call through the SDK (the benchmark's reference).
    lean: Option<Arc<Lean>>,
}

impl DynamoDbStore {
    /// A store on `table` (name or ARN) through `client` (built once, see `sdk.rs`), its
    /// hot-path calls on the lean path once one call was learned. A client configured with
    /// interceptors of its own stays on the SDK path: they must see every call.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        let lean = client
            .config()
            .interceptors()
            .next()
            .is_none()
            .then(|| Arc::new(Lean::new()));
        Self {
            client,
            table,
            lean,
        }
    }

    /// A store that sends every call through the SDK (the side-by-side benchmark's reference,
    /// `bench/src/bin/store-cpu.rs`).
    pub fn sdk_only(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self {
            client,
            table,
            lean: None,
        }
    }

    /// The same client and lean path on another table: what one store learned serves the
    /// other, unless either table is named by ARN (an ARN can select another endpoint).
    pub fn on_table(&self, table: String) -> Self {
        let arn = |t: &str| t.starts_with("arn:");
        let lean = if arn(&table) || arn(&self.table) {
            self.lean.as_ref().map(|_| Arc::new(Lean::new()))
        } else {
            self.lean.clone()
        };
        Self {
            client: self.client.clone(),
            table,
            lean,
        }
    }

    /// Whether the hot-path calls go on the lean path now (a call was learned).
    pub fn is_lean(&self) -> bool {
        self.lean.as_ref().is_some_and(|l| l.route().is_some())
    }

    /// The SDK client (adapters only).
    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The table name or ARN.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    // The call futures are boxed: inlined, the lean path's and the SDK's futures nest deep
    // enough under the handler's to exceed rustc's layout recursion limit (as `main.rs` notes
    // for the handler itself); one small allocation per call.

    /// Sends a `PutItem`: on the lean path once learned, else through the SDK (learning).
    pub(crate) async fn send_put_item(
        &self,
        request: PutItemFluentBuilder,
    ) -> Result<PutItemOutput, SdkError<PutItemError, HttpResponse>> {
        if let Some(lean) = &self.lean {
            match lean.route() {
                Some(route) => {
                    if let Some(body) =
                        wire::put_body(request.as_input()).and_then(|b| b.to_bytes())
                    {
                        return Box::pin(lean.send::<wire::Put>(route, body)).await;
                    }
                }
                None => {
                    return Box::pin(request.customize().interceptor(lean.learner()).send()).await;
                }
            }
        }
        Box::pin(request.send()).await
    }

    /// Sends an `UpdateItem`: on the lean path once learned, else through the SDK (learning).
    pub(crate) async fn send_update_item(
        &self,
        request: UpdateItemFluentBuilder,
    ) -> Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>> {
        if let Some(lean) = &self.lean {
            match lean.route() {
                Some(route) => {
                    if let Some(body) =
                        wire::update_body(request.as_input()).and_then(|b| b.to_bytes())
                    {
                        return Box::pin(lean.send::<wire::Update>(route, body)).await;
                    }
                }
                None => {
                    return Box::pin(request.customize().interceptor(lean.learner()).send()).await;
                }
            }
        }
        Box::pin(request.send()).await
    }

    /// Sends a `GetItem`: on the lean path once learned, else through the SDK (learning).
    pub(crate) async fn send_get_item(
        &self,
        request: GetItemFluentBuilder,
    ) -> Result<GetItemOutput, SdkError<GetItemError, HttpResponse>> {
        if let Some(lean) = &self.lean {
            match lean.route() {
                Some(route) => {
                    if let Some(body) =
                        wire::get_body(request.as_input()).and_then(|b| b.to_bytes())
                    {
                        return Box::pin(lean.send::<wire::Get>(route, body)).await;
                    }
                }
                None => {
                    return Box::pin(request.customize().interceptor(lean.learner()).send()).await;
                }
            }
        }
        Box::pin(request.send()).await
    }

    /// Sends a `PutItem` whose answer is not needed.
    pub(crate) async fn send_put(&self, request: PutItemFluentBuilder) -> Result<(), StoreError> {
        self.send_put_item(request)
            .await
            .map(drop)
            .map_err(|e| unavailable("PutItem", &e))
    }

    /// Sends an `UpdateItem` whose answer is not needed.
    pub(crate) async fn send_update(
        &self,
        request: UpdateItemFluentBuilder,
    ) -> Result<(), StoreError> {
        self.send_update_item(request)
            .await
            .map(drop)
            .map_err(|e| unavailable("UpdateItem", &e))
    }

    /// The item whose key is `key`, read strongly consistent.
    pub(crate) async fn read_item(
        &self,
        key: AttributeValue,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let request = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key)
            .consistent_read(true);
        let got = self
            .send_get_item(request)
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        Ok(got.item)
    }
}

/// A string attribute.
pub(crate) fn string_value(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A number attribute.
pub(crate) fn number_value(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Epoch milliseconds as the TTL's epoch seconds, rounded up (never expires early).
pub(crate) fn seconds_ceil(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// The string attribute `name` of `item`.
pub(crate) fn get_string(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// The non-negative integer attribute `name` of `item`.
pub(crate) fn get_number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// `Some` when a conditional `UpdateItem` failed its condition: with the item as it is, when
/// the request asked for it (`ReturnValuesOnConditionCheckFailure::AllOld`) and there is one.
/// `None` for every other failure.
pub(crate) fn failed_condition<R>(
    err: &SdkError<UpdateItemError, R>,
) -> Option<Option<&HashMap<String, AttributeValue>>> {
    match err {
        SdkError::ServiceError(ctx) => match ctx.err() {
            UpdateItemError::ConditionalCheckFailedException(e) => Some(e.item()),
            _ => None,
        },
        _ => None,
    }
}

/// A failed call as a short, fixed description plus the service's error code, never a body.
pub(crate) fn unavailable<E: ProvideErrorMetadata, R>(
    operation: &str,
    err: &SdkError<E, R>,
) -> StoreError {
    StoreError::Unavailable(match err {
        SdkError::ServiceError(ctx) => format!(
            "DynamoDB {operation} failed: {}",
            ctx.err().code().unwrap_or("unknown error")
        ),
        SdkError::TimeoutError(_) => format!("DynamoDB {operation} timed out"),
        SdkError::DispatchFailure(_) => {
            format!("DynamoDB {operation} could not be sent (no connection)")
        }
        SdkError::ResponseError(_) => format!("DynamoDB {operation} answer could not be read"),
        _ => format!("DynamoDB {operation} could not be built"),
    })
}
