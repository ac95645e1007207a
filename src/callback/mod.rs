//! Callback-driven runs: a Step Functions task waits (`.waitForTaskToken`) while the BOT runs,
//! and Cloud BOT's callback at the job's end settles it (tells the task). This module keeps the
//! callback records and tells Step Functions; the receiver's whole story (find, read the job,
//! settle, answer) is told in `crate::service` (`service/callback.rs`), the execute side in
//! `service/execute.rs`. Flow, costs and risks: docs/state-machines.md.
//!
//! The execute side ([`Callbacks::register`]) makes a fresh secret id, stores the task token
//! under the id's hash *before* the POST goes out, gives Cloud BOT `<callback base>/<id>` as
//! `callback_endpoint`, and records the job reference endpoint once the POST has answered. A
//! Task retry (same idempotency key, new token, the job replayed) moves its token into the same
//! record ([`Callbacks::renew`]). The receiving side finds the record ([`Callbacks::find`]) and
//! settles the task ([`Callbacks::settle`]) once it has claimed the record: of concurrent
//! deliveries only one calls Step Functions (`rules`).
//!
//! - `id`: callback ids (CSPRNG) and task tokens, both redacted in `Debug`.
//! - `store` / `dynamodb`: the records in the shared table (`crate::table`) and their adapter.
//! - `rules`: which delivery settles (the claim and its lease), as pure functions.
//! - `tasks`: the Step Functions adapter (`SendTaskSuccess` / `SendTaskFailure`).
//! - `outcome`: what a task is told for a job, as pure functions.

mod dynamodb;
#[cfg(test)]
pub(crate) mod fake;
mod id;
mod outcome;
mod rules;
mod store;
mod tasks;

use std::time::Duration;

use tokio::time::Instant;

pub use id::{CallbackId, TaskToken};
pub use outcome::{LOOK_SIGNAL, TaskOutcome, look_signal, task_outcome};
pub use rules::{Turn, turn};
pub use store::{
    CallbackRecord, CallbackState, CallbackStore, Lease, NewCallback, SettleClaim, SettleClaimWrite,
};
pub use tasks::{SettleFuture, Settled, SfnSettler, TaskSettler};

use outcome::JOB_FAILED;
use rules::lease_for;
use tasks::SettleError;

use crate::idempotency::RecordKey;
use crate::table::StoreError;
use crate::table::{bounded, now_ms};

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
    /// Another delivery of the same callback holds the claim and is telling the task now: this
    /// one is a duplicate (nothing called).
    BeingSettled,
    /// The job did not read as ended yet: the task was told to look ([`TaskOutcome::Look`]) and
    /// the workflow follows the job in its short polling loop.
    Signalled,
}

impl Delivery {
    /// Stable name for the answer body and logs.
    pub fn name(self) -> &'static str {
        match self {
            Delivery::Settled => "settled",
            Delivery::AlreadySettled(_) => "already_settled",
            Delivery::BeingSettled => "being_settled",
            Delivery::Signalled => "signalled",
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
        let record = bounded(deadline, self.store.read(&id.hash())).await?;
        match record {
            Some(record) if record.expires_at_ms > now_ms() => Ok(record),
            _ => Err(CallbackError::NotFound),
        }
    }

    /// What a delivery that found `record` answers without reading the job, if anything:
    /// settled before, or being settled by another delivery right now.
    pub fn answered_without_reading(&self, record: &CallbackRecord) -> Option<Delivery> {
        match turn(record, None, now_ms()) {
            Turn::Settled => Some(Delivery::AlreadySettled("settled")),
            Turn::HeldElsewhere => Some(Delivery::BeingSettled),
            Turn::Free | Turn::Ours | Turn::Expired => None,
        }
    }

    /// Tells the task of callback `id` the `outcome`, if this delivery wins the claim on the
    /// record (`rules`); a delivery that loses it to a live claim is a duplicate and calls
    /// nothing. The token told is the newest at the claim; when Step Functions says its task is
    /// closed, the record is read once more, since a Task retry may have put a newer token in
    /// it. Step Functions unavailable: the claim is given back and the error returned (Cloud BOT
    /// retries). Every Step Functions call ends before the lease does.
    pub async fn settle(
        &self,
        id: &CallbackId,
        outcome: &TaskOutcome,
        deadline: Instant,
    ) -> Result<Delivery, CallbackError> {
        let hash = id.hash();
        let owner = format!("{:032x}", fastrand::u128(..));
        let lease = lease_for(deadline.saturating_duration_since(Instant::now()));
        let lease_end = Instant::now() + lease;
        let now = now_ms();
        let claim = SettleClaim {
            hash: &hash,
            owner: &owner,
            now_ms: now,
            lease_until_ms: now.saturating_add(u64::try_from(lease.as_millis()).unwrap_or(0)),
        };
        let claimed = match bounded(lease_end, self.store.claim_settlement(&claim)).await? {
            SettleClaimWrite::Won(record) => record,
            SettleClaimWrite::Lost(None) => return Err(CallbackError::NotFound),
            SettleClaimWrite::Lost(Some(current)) => match turn(&current, Some(&owner), now) {
                Turn::Ours => current,
                Turn::Settled => return Ok(Delivery::AlreadySettled("settled")),
                Turn::HeldElsewhere => return Ok(Delivery::BeingSettled),
                Turn::Expired => return Err(CallbackError::NotFound),
                // The write's condition is this rule; they cannot disagree unless a bug makes
                // them. Guessing would risk a second settlement: Cloud BOT retries instead.
                Turn::Free => {
                    return Err(CallbackError::Unavailable(
                        "the callback record changed during the claim".into(),
                    ));
                }
            },
        };
        let told = match self.tell_newest(id, &claimed, outcome, lease_end).await {
            Ok(delivery) => delivery,
            Err(err) => {
                if let Err(release) = bounded(
                    deadline,
                    self.store.release_settlement(&hash, &owner, now_ms()),
                )
                .await
                {
                    // The lease lapses on its own; the next delivery then claims the record.
                    tracing::warn!(error = %release, "could not give back a settle claim");
                }
                return Err(err);
            }
        };
        let how = match (told, outcome) {
            (Delivery::AlreadySettled(code), _) => code,
            (_, TaskOutcome::Fail(_) | TaskOutcome::Failure { .. }) => "failed",
            (_, TaskOutcome::Look(_)) => "signalled",
            _ => "succeeded",
        };
        if let Err(err) = bounded(deadline, self.store.mark_settled(&hash, how, now_ms())).await {
            // The task is settled; a later delivery then costs one refused call at most.
            tracing::warn!(error = %err, "could not mark the callback record settled");
        }
        Ok(told)
    }

    /// Tells the claimed record's token, then a newer one if Step Functions had closed that
    /// token's task and a Task retry renewed the record meanwhile.
    async fn tell_newest(
        &self,
        id: &CallbackId,
        claimed: &CallbackRecord,
        outcome: &TaskOutcome,
        lease_end: Instant,
    ) -> Result<Delivery, CallbackError> {
        let delivery = self.tell(&claimed.task_token, outcome, lease_end).await?;
        if let Delivery::AlreadySettled(_) = delivery
            && let Ok(newer) = self.find(id, lease_end).await
            && newer.task_token != claimed.task_token
        {
            return self.tell(&newer.task_token, outcome, lease_end).await;
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
            TaskOutcome::Look(signal) => self.tasks.succeed(token, signal),
            TaskOutcome::Failure { error, cause } => self.tasks.fail(token, error, cause),
        };
        let told = tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| Err(SettleError("no answer before the deadline".into())))
            .map_err(|e| CallbackError::Unavailable(e.0))?;
        Ok(match told {
            Settled::Accepted if matches!(outcome, TaskOutcome::Look(_)) => Delivery::Signalled,
            Settled::Accepted => Delivery::Settled,
            Settled::AlreadyClosed(code) => Delivery::AlreadySettled(code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{setup, token};
    use super::*;

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    async fn registered(callbacks: &Callbacks, key: &RecordKey, t: &str) -> CallbackId {
        let registered = callbacks
            .register(key, &token(t), deadline())
            .await
            .unwrap();
        assert!(registered.url.starts_with("https://cb.example/callbacks/"));
        assert!(
            !registered.url.contains(t),
            "the token never goes into the URL"
        );
        let segment = registered.url.rsplit('/').next().unwrap();
        CallbackId::parse(segment).unwrap()
    }

    #[tokio::test]
    async fn a_retried_task_is_settled_with_its_newest_token() {
        let (callbacks, shared) = setup();
        let key = RecordKey::request("exec#ExecuteBot").unwrap();
        let id = registered(&callbacks, &key, "token-attempt-1").await;
        // Attempt 1's task is gone (its Lambda failed); attempt 2 is the open one.
        shared.open("token-attempt-2");
        callbacks
            .renew(&key, &token("token-attempt-2"), deadline())
            .await;

        let record = callbacks.find(&id, deadline()).await.unwrap();
        assert_eq!(record.task_token, token("token-attempt-2"));
        let outcome = TaskOutcome::Succeed("{}".into());
        let delivery = callbacks.settle(&id, &outcome, deadline()).await;
        assert_eq!(delivery, Ok(Delivery::Settled));
        let calls = shared.0.1.calls.lock().unwrap().clone();
        assert_eq!(calls, [("token-attempt-2".into(), "success {}".into())]);
    }

    #[tokio::test]
    async fn a_token_renewed_before_the_claim_is_the_one_told() {
        let (callbacks, shared) = setup();
        let key = RecordKey::request("exec#ExecuteBot").unwrap();
        let id = registered(&callbacks, &key, "old").await;
        let _seen = callbacks.find(&id, deadline()).await.unwrap();
        // The retry renews after the receiver read the record, before it claimed it.
        shared.open("new");
        callbacks.renew(&key, &token("new"), deadline()).await;

        let outcome = TaskOutcome::Succeed("{}".into());
        assert_eq!(
            callbacks.settle(&id, &outcome, deadline()).await,
            Ok(Delivery::Settled)
        );
        let calls = shared.0.1.calls.lock().unwrap().clone();
        assert_eq!(calls, [("new".into(), "success {}".into())]);
    }

    #[tokio::test]
    async fn a_token_renewed_during_the_settlement_is_tried_once_more() {
        let (callbacks, shared) = setup();
        let key = RecordKey::request("exec#ExecuteBot").unwrap();
        let id = registered(&callbacks, &key, "old").await;
        // The retry renews after the claim, while the old token's call is under way.
        *shared.0.2.lock().unwrap() = Some("new".into());

        let outcome = TaskOutcome::Fail("Step 3 failed".into());
        let delivery = callbacks.settle(&id, &outcome, deadline()).await;
        assert_eq!(delivery, Ok(Delivery::Settled));
        let tokens: Vec<String> = shared
            .0
            .1
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.0.clone())
            .collect();
        assert_eq!(tokens, ["old", "new"]);
    }

    #[tokio::test]
    async fn a_closed_task_is_settled_and_marked_so_later_deliveries_change_nothing() {
        let (callbacks, shared) = setup();
        let key = RecordKey::request("k").unwrap();
        let id = registered(&callbacks, &key, "token-of-the-task").await;
        // No open task: AWS answers TaskTimedOut (timed out, or settled before).
        let delivery = callbacks
            .settle(&id, &TaskOutcome::Succeed("{}".into()), deadline())
            .await;
        assert_eq!(delivery, Ok(Delivery::AlreadySettled("TaskTimedOut")));
        let record = callbacks.find(&id, deadline()).await.unwrap();
        assert_eq!(record.state, CallbackState::Settled);
        // One call: the token did not change, so there was nothing to try again.
        assert_eq!(shared.0.1.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unknown_and_expired_ids_are_not_found() {
        let (callbacks, shared) = setup();
        let stranger = CallbackId::generate().unwrap();
        assert_eq!(
            callbacks.find(&stranger, deadline()).await,
            Err(CallbackError::NotFound)
        );
        let key = RecordKey::request("k").unwrap();
        let id = registered(&callbacks, &key, "token-of-the-task").await;
        shared
            .0
            .0
            .records
            .lock()
            .unwrap()
            .values_mut()
            .for_each(|r| r.expires_at_ms = 1);
        assert_eq!(
            callbacks.find(&id, deadline()).await,
            Err(CallbackError::NotFound)
        );
        assert!(shared.0.1.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_job_still_executing_tells_the_task_to_look_once() {
        let (callbacks, shared) = setup();
        let key = RecordKey::request("k").unwrap();
        let id = registered(&callbacks, &key, "token-of-the-task").await;
        shared.open("token-of-the-task");
        let signal = look_signal(
            crate::cloudbot::JobStatus::Executing,
            "https://api.c-bot.pro/demo/jobs/j",
        );
        let outcome = TaskOutcome::Look(signal.clone());
        let delivery = callbacks.settle(&id, &outcome, deadline()).await;
        assert_eq!(delivery, Ok(Delivery::Signalled));
        let calls = shared.0.1.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [("token-of-the-task".into(), format!("success {signal}"))]
        );
        // The task is closed: Cloud BOT's next attempt is answered without a call.
        let record = callbacks.find(&id, deadline()).await.unwrap();
        assert_eq!(record.state, CallbackState::Settled);
        assert_eq!(
            callbacks.answered_without_reading(&record),
            Some(Delivery::AlreadySettled("settled"))
        );
    }

    #[tokio::test]
    async fn a_second_delivery_during_a_settlement_is_a_duplicate_and_calls_nothing() {
        let (callbacks, shared) = setup();
        let key = RecordKey::request("k").unwrap();
        let id = registered(&callbacks, &key, "token-of-the-task").await;
        shared.open("token-of-the-task");
        let hash = id.hash();
        // Another delivery holds a live claim.
        let claim = SettleClaim {
            hash: &hash,
            owner: "other-delivery",
            now_ms: now_ms(),
            lease_until_ms: now_ms() + 10_000,
        };
        assert!(matches!(
            shared.0.0.claim_settlement(&claim).await,
            Ok(SettleClaimWrite::Won(_))
        ));
        let record = callbacks.find(&id, deadline()).await.unwrap();
        assert_eq!(
            callbacks.answered_without_reading(&record),
            Some(Delivery::BeingSettled)
        );
        let outcome = TaskOutcome::Succeed("{}".into());
        assert_eq!(
            callbacks.settle(&id, &outcome, deadline()).await,
            Ok(Delivery::BeingSettled)
        );
        assert!(shared.0.1.calls.lock().unwrap().is_empty());

        // The holder died: once its lease lapses, the next delivery settles the task.
        shared
            .0
            .0
            .records
            .lock()
            .unwrap()
            .values_mut()
            .for_each(|r| r.lease.as_mut().unwrap().until_ms = now_ms() - 1);
        let record = callbacks.find(&id, deadline()).await.unwrap();
        assert_eq!(callbacks.answered_without_reading(&record), None);
        assert_eq!(
            callbacks.settle(&id, &outcome, deadline()).await,
            Ok(Delivery::Settled)
        );
        assert_eq!(shared.0.1.calls.lock().unwrap().len(), 1);
        let record = callbacks.find(&id, deadline()).await.unwrap();
        assert_eq!(
            callbacks.answered_without_reading(&record),
            Some(Delivery::AlreadySettled("settled"))
        );
    }

    #[tokio::test]
    async fn step_functions_unavailable_gives_the_claim_back_for_cloud_bots_retry() {
        let (callbacks, shared) = setup();
        let key = RecordKey::request("k").unwrap();
        let id = registered(&callbacks, &key, "token-of-the-task").await;
        shared.open("token-of-the-task");
        *shared.0.1.throttled.lock().unwrap() = true;
        let outcome = TaskOutcome::Succeed("{}".into());
        assert!(matches!(
            callbacks.settle(&id, &outcome, deadline()).await,
            Err(CallbackError::Unavailable(_))
        ));
        let record = callbacks.find(&id, deadline()).await.unwrap();
        assert_eq!(record.state, CallbackState::Waiting, "claim released");

        *shared.0.1.throttled.lock().unwrap() = false;
        assert_eq!(
            callbacks.settle(&id, &outcome, deadline()).await,
            Ok(Delivery::Settled)
        );
        assert_eq!(shared.0.1.calls.lock().unwrap().len(), 2);
    }
}
