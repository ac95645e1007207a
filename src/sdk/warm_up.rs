//! The DynamoDB connection prepared during init, where Lambda does not throttle the CPU: one
//! eventually consistent `GetItem` of a key no record can have, so the first keyed invocation
//! finds the DynamoDB connector built, the endpoint resolved once and a signed, pooled TLS
//! connection open, instead of paying the TCP connect and the full TLS handshake under the
//! 128 MB quota (measured in docs/benchmarks.md, "Levers tried", lever 15). Every store of the
//! function (idempotency, callbacks, schedule states, run ledger) shares the one client and so
//! the connection. Bounded; nothing here fails the init:
//! whatever did not finish, the first store call does as before.

use std::time::Duration;

use tokio::time::Instant;

use crate::table::{DynamoDbStore, string_value, unavailable};

/// The key read: outside every namespace of the idempotency table's keys (each carries a
/// prefix ending in `:`, e.g. `request:`, `schedule:`, `callback:`), so the read never returns a
/// record and never touches one.
pub const WARM_UP_KEY: &str = "cloudbot-trigger-warm-up";

/// How the warm-up ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWarmUp {
    /// DynamoDB answered: the connection is pooled for the first invocation.
    Answered,
    /// Not done (no table, or init-time work turned off).
    Skipped,
    /// No answer within the bound.
    TimedOut,
    /// DynamoDB refused or could not be reached (the store error's text: names the operation
    /// and the error code, never a request's content).
    Failed(String),
}

/// Reads [`WARM_UP_KEY`] from the table of `store` (whose partition key is `key_attribute`: the
/// function's role may read the idempotency table, not the run ledger), waiting at most `bound`
/// (`ZERO`: skipped), and logs the outcome. Through the store's own call path, so this SDK call is
/// also the one its lean path learns from (`crate::table`): the first invocation's store calls
/// are lean already.
pub async fn warm_up_dynamodb(
    store: &DynamoDbStore,
    key_attribute: &str,
    bound: Duration,
) -> StoreWarmUp {
    if bound.is_zero() {
        return StoreWarmUp::Skipped;
    }
    let started = Instant::now();
    let request = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(key_attribute, string_value(WARM_UP_KEY))
        // Only the key comes back if it ever existed: the smallest answer to parse.
        .projection_expression("#k")
        .expression_attribute_names("#k", key_attribute);
    let read = store.send_get_item(request);
    let outcome = match tokio::time::timeout(bound, read).await {
        Ok(Ok(_)) => StoreWarmUp::Answered,
        Ok(Err(err)) => StoreWarmUp::Failed(unavailable("GetItem", &err).to_string()),
        Err(_) => StoreWarmUp::TimedOut,
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match &outcome {
        StoreWarmUp::Answered => {
            tracing::info!(elapsed_ms, "DynamoDB connection opened during init")
        }
        StoreWarmUp::Skipped => {}
        StoreWarmUp::TimedOut => tracing::warn!(
            timeout_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
            "the DynamoDB warm-up did not finish during init within its timeout: the first \
             store call connects on its own"
        ),
        StoreWarmUp::Failed(error) => tracing::warn!(
            error = %error,
            elapsed_ms,
            "the DynamoDB warm-up failed during init: the first store call connects on its own"
        ),
    }
    outcome
}
