//! Callback-driven runs: a Step Functions task waits (`.waitForTaskToken`) while the BOT runs,
//! and Cloud BOT's callback at the job's end settles it.
//!
//! The execute side ([`Callbacks::register`]) makes a fresh secret id, stores the task token
//! under the id's hash *before* the POST goes out, gives Cloud BOT `<callback base>/<id>` as
//! `callback_endpoint`, and records the job reference endpoint once the POST has answered. A
//! Task retry (same idempotency key, new token, the job replayed) moves its token into the same
//! record ([`Callbacks::renew`]).
//!
//! The receiver side trusts nothing in the callback but the id: it finds the record
//! ([`Callbacks::find`]; unknown, malformed or expired → `Callback.NotFound`, no other call), the
//! service reads the job with `refer_job` on the *stored* endpoint, and [`Callbacks::settle`]
//! tells the task ([`outcome`]). Settled, already settled and closed tasks are all answered 2xx:
//! every other answer makes Cloud BOT retry, and retry time is billed as BOT minutes. Flow,
//! costs and risks: docs/state-machines.md.
//!
//! - `id`: callback ids (CSPRNG) and task tokens, both redacted in `Debug`.
//! - `store` / `dynamodb`: the records in the idempotency table and their DynamoDB adapter.
//! - `tasks`: the Step Functions adapter (`SendTaskSuccess` / `SendTaskFailure`).
//! - `outcome`: what a task is told for a job, as pure functions.

mod dynamodb;
mod id;
mod outcome;
mod store;
mod tasks;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

pub use dynamodb::DynamoDbCallbackStore;
pub use id::{CallbackId, ID_LEN, MAX_TASK_TOKEN_LEN, TaskToken, TokenProblem};
pub use outcome::{JOB_FAILED, TaskOutcome, task_outcome};
pub use store::{
    CallbackRecord, CallbackState, CallbackStore, NewCallback, RECORD_PREFIX, TASK_PREFIX,
};
pub use tasks::{
    MAX_TASK_CAUSE_CHARS, MAX_TASK_ERROR_CHARS, MAX_TASK_OUTPUT, SettleError, SettleFuture,
    Settled, SfnSettler, TaskSettler, classify,
};

use crate::idempotency::{RecordKey, StoreError};

/// Why a callback (or the callback part of an execute) could not be handled. Never names the
/// id or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// No valid record for this callback id (unknown, malformed or expired).
    #[error("unknown or expired callback")]
    NotFound,
    /// The record exists but the execute that made it has not recorded its job yet.
    #[error("the job of this callback is not recorded yet; retry later")]
    NotReady,
    /// The callback store or Step Functions could not be used.
    #[error("callback handling is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for CallbackError {
    fn from(err: StoreError) -> Self {
        CallbackError::Unavailable(err.to_string())
    }
}

/// A callback registered for a task, before the POST.
#[derive(Debug)]
pub struct Registered {
    hash: String,
    /// The `callback_endpoint` to send (contains the secret id: never log it).
    pub url: String,
}

/// How a callback ended for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The task was told the job's outcome now.
    Settled,
    /// It had been told before, or Step Functions had closed it (code).
    AlreadySettled(&'static str),
    /// The job is still executing: the task is left to its timeout and the polling fallback.
    LeftToFallback,
}

impl Delivery {
    /// Stable name for the answer body and logs.
    pub fn name(self) -> &'static str {
        match self {
            Delivery::Settled => "settled",
            Delivery::AlreadySettled(_) => "already_settled",
            Delivery::LeftToFallback => "left_to_fallback",
        }
    }
}

/// The callback side of the function: records, Step Functions, and the public base URL of the
/// callback route. Built once per sandbox.
#[derive(Debug)]
pub struct Callbacks {
    store: Box<dyn CallbackStore>,
    tasks: Box<dyn TaskSettler>,
    base: String,
    expiry: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn bounded<T, E: From<StoreError>>(
    deadline: Instant,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable("no answer before the invocation's deadline".into()).into())
        })
}

impl Callbacks {
    /// The callback side over `store` and `tasks`; `base` is the callback route's public URL
    /// (validated by the configuration, ends with `/callbacks`); records live `expiry`.
    pub fn new(
        store: impl CallbackStore + 'static,
        tasks: impl TaskSettler + 'static,
        base: &url::Url,
        expiry: Duration,
    ) -> Self {
        Self {
            store: Box::new(store),
            tasks: Box::new(tasks),
            base: base.as_str().trim_end_matches('/').to_owned(),
            expiry,
        }
    }

    /// Stores `token` under a fresh callback id for the task `key`, before the POST.
    pub async fn register(
        &self,
        key: &RecordKey,
        token: &TaskToken,
        deadline: Instant,
    ) -> Result<Registered, CallbackError> {
        let id = CallbackId::generate()
            .map_err(|_| CallbackError::Unavailable("no random bytes from the OS".into()))?;
        let hash = id.hash();
        let now = now_ms();
        let new = NewCallback {
            hash: &hash,
            task_key: key.as_str(),
            task_token: token,
            now_ms: now,
            expires_at_ms: now
                .saturating_add(u64::try_from(self.expiry.as_millis()).unwrap_or(u64::MAX)),
        };
        bounded(deadline, self.store.create(&new)).await?;
        tracing::debug!(idempotency_key = %key, "callback registered");
        Ok(Registered {
            url: format!("{}/{}", self.base, id.expose()),
            hash,
        })
    }

    /// Records the started job. A failed write is logged: the callback is then answered
    /// `Callback.NotReady` and the task ends through its timeout and the polling fallback.
    pub async fn job_started(&self, registered: &Registered, endpoint: &str, deadline: Instant) {
        let written = bounded(
            deadline,
            self.store.set_job(&registered.hash, endpoint, now_ms()),
        )
        .await;
        if let Err(err) = written {
            tracing::error!(error = %err, "could not record the job of a callback: the task will end through its timeout and the polling fallback");
        }
    }

    /// Moves a retried task's new token into its callback record (the job is being replayed).
    pub async fn renew(&self, key: &RecordKey, token: &TaskToken, deadline: Instant) {
        match bounded(
            deadline,
            self.store.renew_token(key.as_str(), token, now_ms()),
        )
        .await
        {
            Ok(true) => {
                tracing::info!(idempotency_key = %key, "retried task: its new token replaces the old one in the callback record")
            }
            Ok(false) => {
                tracing::warn!(idempotency_key = %key, "retried task without a callback record: it ends through its timeout and the polling fallback")
            }
            Err(err) => {
                tracing::error!(idempotency_key = %key, error = %err, "could not renew the task token: the task ends through its timeout and the polling fallback")
            }
        }
    }

    /// The valid record of `id`; one consistent read.
    pub async fn find(
        &self,
        id: &CallbackId,
        deadline: Instant,
    ) -> Result<CallbackRecord, CallbackError> {
        let record = bounded(deadline, self.store.get(&id.hash())).await?;
        match record {
            Some(record) if record.expires_at_ms > now_ms() => Ok(record),
            _ => Err(CallbackError::NotFound),
        }
    }

    /// Tells the task of `record` the `outcome`. When Step Functions says the token's task is
    /// closed, the record is read once more: a Task retry may have put a newer token in it.
    pub async fn settle(
        &self,
        id: &CallbackId,
        record: &CallbackRecord,
        outcome: &TaskOutcome,
        deadline: Instant,
    ) -> Result<Delivery, CallbackError> {
        let mut token = record.task_token.clone();
        let mut delivery = self.tell(&token, outcome, deadline).await?;
        if let Delivery::AlreadySettled(_) = delivery
            && let Ok(newer) = self.find(id, deadline).await
            && newer.task_token != token
        {
            token = newer.task_token;
            delivery = self.tell(&token, outcome, deadline).await?;
        }
        let how = match (delivery, outcome) {
            (Delivery::AlreadySettled(code), _) => code,
            (_, TaskOutcome::Fail(_)) => "failed",
            _ => "succeeded",
        };
        if let Err(err) =
            bounded(deadline, self.store.mark_settled(&id.hash(), how, now_ms())).await
        {
            // The task is settled; a second delivery then only costs one more refused call.
            tracing::warn!(error = %err, "could not mark the callback record settled");
        }
        Ok(delivery)
    }

    async fn tell(
        &self,
        token: &TaskToken,
        outcome: &TaskOutcome,
        deadline: Instant,
    ) -> Result<Delivery, CallbackError> {
        let call = match outcome {
            TaskOutcome::Succeed(output) => self.tasks.succeed(token, output),
            TaskOutcome::Fail(cause) => self.tasks.fail(token, JOB_FAILED, cause),
            TaskOutcome::NotFinal => return Ok(Delivery::LeftToFallback),
        };
        let told = tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| Err(SettleError("no answer before the deadline".into())))
            .map_err(|e| CallbackError::Unavailable(e.0))?;
        Ok(match told {
            Settled::Accepted => Delivery::Settled,
            Settled::AlreadyClosed(code) => Delivery::AlreadySettled(code),
        })
    }
}
