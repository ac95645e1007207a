//! The claim → send → finish flow the service runs around an execute, on top of any [`Store`].
//!
//! Fail closed: when the store cannot be asked, nothing is sent (`Idempotency.Unavailable`,
//! retryable). Once the request may have been sent, a failing store write never hides the
//! answer: the caller still gets its job (or error), and the record left in progress turns
//! into "unknown" when the owner's window ends, which is safe (no second run), only less
//! convenient (an operator resolves it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::fingerprint::Fingerprint;
use super::key::RecordKey;
use super::rules::{self, Finish, Record, ResolveCheck, State, Verdict};
use super::store::{ClaimWrite, Expected, NewClaim, Store, Update, UpdateWrite};
use crate::table::StoreError;
use crate::table::{bounded, now_ms};

/// Largest result stored for replay. DynamoDB items hold at most 400 KB; a result above this
/// (only possible when the caller waited for the job with `timeout` and the BOT returned a large
/// output) is stored without its `output`, which `refer_job` still returns.
pub const MAX_STORED_RESULT: usize = 350 * 1024;

/// What the idempotency layer reports to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    /// The key was used before for a different request (BOT, input, callback or timeout).
    #[error(
        "idempotency key `{key}` was already used for a different request (BOT, input, callback or \
         timeout differ); nothing was sent to Cloud BOT"
    )]
    KeyReused {
        /// The key.
        key: RecordKey,
    },
    /// The first request with this key is still running.
    #[error("a request with idempotency key `{key}` is still in progress; retry in {} s", retry_after.as_secs())]
    InProgress {
        /// The key.
        key: RecordKey,
        /// Until the first request's window ends.
        retry_after: Duration,
    },
    /// An earlier request with this key may have started a job and its outcome is unknown.
    #[error(
        "an earlier request with idempotency key `{key}` may have started a job and its outcome is \
         unknown{}; nothing was sent.{} Check the BOT's jobs, then settle the key with the \
         resolve_idempotency operation (docs/exactly-once.md)",
        if *owner_gone { " (it did not finish within its invocation)" } else { "" },
        reconcile.as_deref().map(|r| format!(" {r}.")).unwrap_or_default()
    )]
    OutcomeUnknown {
        /// The key.
        key: RecordKey,
        /// The first request's invocation ended without settling the record.
        owner_gone: bool,
        /// Why Cloud BOT's job list could not settle it, with the candidate jobs (no secrets:
        /// job reference endpoints and record keys), when a reconcile was tried.
        reconcile: Option<String>,
    },
    /// The store could not be used; nothing was sent.
    #[error("the idempotency store is unavailable: {0}; nothing was sent to Cloud BOT")]
    Unavailable(StoreError),
}

/// A request about to be sent, as the claim needs it.
#[derive(Debug, Clone, Copy)]
pub struct Pending<'a> {
    /// The key.
    pub key: &'a RecordKey,
    /// What would be sent.
    pub fingerprint: &'a Fingerprint,
    /// The BOT execution endpoint.
    pub bot_endpoint: &'a str,
    /// The Lambda request id (kept in the record for operators).
    pub request_id: &'a str,
    /// The invocation's deadline: the end of the in-flight window.
    pub in_flight_until: SystemTime,
}

/// A won claim: finish it after the call.
#[derive(Debug)]
pub struct Claim {
    key: RecordKey,
    owner: String,
}

impl Claim {
    /// The claimed key.
    pub fn key(&self) -> &RecordKey {
        &self.key
    }
}

/// What the caller does next.
#[derive(Debug)]
pub enum Begin {
    /// The key is ours: send, then finish the claim.
    Claimed(Claim),
    /// A job was started for this key before: answer this result again (the service marks it
    /// a replay).
    Replay(Replayed),
    /// An earlier request's outcome is unknown: the service may reconcile it from Cloud BOT's
    /// job list ([`Idempotency::reconcile_release`], [`Idempotency::reconcile_started`]),
    /// else answers [`Unsettled::into_error`].
    Unknown(Unsettled),
}

/// A record whose outcome is unknown, as the claim found it.
#[derive(Debug)]
pub struct Unsettled {
    /// The key.
    pub key: RecordKey,
    /// The record as read (a reconcile writes only over it).
    pub record: Record,
    /// True when the record says in progress but its owner's window has passed.
    pub owner_gone: bool,
}

impl Unsettled {
    /// The answer when the outcome stays unknown; `reconcile` says why the job list could not
    /// settle it (`None`: not tried).
    pub fn into_error(self, reconcile: Option<String>) -> IdempotencyError {
        IdempotencyError::OutcomeUnknown {
            key: self.key,
            owner_gone: self.owner_gone,
            reconcile,
        }
    }
}

/// A recorded result to answer again.
#[derive(Debug)]
pub struct Replayed {
    /// The result JSON as the first request recorded it.
    pub result: Map<String, Value>,
    /// The job reference endpoint (API Gateway's `Location`).
    pub job_reference_endpoint: Option<String>,
}

/// The idempotency layer: a store and the record expiry. Built once per sandbox.
#[derive(Debug)]
pub struct Idempotency {
    store: Box<dyn Store>,
    expiry: Duration,
    settle: Duration,
}

/// How long after an unknown outcome Cloud BOT's job list counts as proof by default
/// (`CLOUDBOT_RECONCILE_SETTLE_SECONDS`, docs/exactly-once.md).
pub const DEFAULT_RECONCILE_SETTLE: Duration = Duration::from_secs(90);

/// Milliseconds since the Unix epoch.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Idempotency {
    /// The layer over `store`; records expire `expiry` after their claim.
    pub fn new(store: impl Store + 'static, expiry: Duration) -> Self {
        Self {
            store: Box::new(store),
            expiry,
            settle: DEFAULT_RECONCILE_SETTLE,
        }
    }

    /// The layer with `settle` as the reconcile's settle time (the job list's lag and the
    /// clock skew it allows for).
    pub fn with_reconcile_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// The reconcile's settle time.
    pub fn reconcile_settle(&self) -> Duration {
        self.settle
    }

    /// The claims on the BOT `bot_endpoint` claimed from `from_ms` to `to_ms` (epoch ms).
    pub async fn claims_on_bot(
        &self,
        bot_endpoint: &str,
        from_ms: u64,
        to_ms: u64,
        deadline: Instant,
    ) -> Result<Vec<super::OtherClaim>, IdempotencyError> {
        bounded(
            deadline,
            self.store.claims_on_bot(bot_endpoint, from_ms, to_ms),
        )
        .await
        .map_err(IdempotencyError::Unavailable)
    }

    /// Reconcile: the job list proves no job started. Releases the record (only over what was
    /// read), then claims the key for this request. `Ok(None)`: the record changed meanwhile
    /// (another delivery reconciled it first); the caller answers as for an unknown outcome.
    pub async fn reconcile_release(
        &self,
        unsettled: &Unsettled,
        pending: Pending<'_>,
        deadline: Instant,
    ) -> Result<Option<Begin>, IdempotencyError> {
        let written = self
            .write_resolution(
                &unsettled.key,
                &unsettled.record,
                &Update::Release,
                deadline,
            )
            .await?;
        if !written {
            return Ok(None);
        }
        tracing::info!(idempotency_key = %unsettled.key, "unknown outcome reconciled: Cloud BOT's job list shows no job; the key is free");
        self.begin(pending, deadline).await.map(Some)
    }

    /// Reconcile: the job list proves the claim started the job `job_reference_endpoint`
    /// whose execute result would have been `result`. Records it as completed (only over what
    /// was read) and returns it as a replay. `Ok(None)`: the record changed meanwhile.
    pub async fn reconcile_started(
        &self,
        unsettled: &Unsettled,
        result: &RawValue,
        job_reference_endpoint: &str,
        deadline: Instant,
    ) -> Result<Option<Begin>, IdempotencyError> {
        let update = Update::Complete {
            result: result.get(),
            job_reference_endpoint,
        };
        let written = self
            .write_resolution(&unsettled.key, &unsettled.record, &update, deadline)
            .await?;
        if !written {
            return Ok(None);
        }
        tracing::info!(idempotency_key = %unsettled.key, job = job_reference_endpoint, "unknown outcome reconciled: the one job of the BOT started while the request was out is recorded as its job");
        replayed(
            &unsettled.key,
            &storable(result),
            Some(job_reference_endpoint.to_owned()),
        )
        .map(Some)
    }

    /// Claims the key of `pending`, or says why the request must not be sent.
    pub async fn begin(
        &self,
        pending: Pending<'_>,
        deadline: Instant,
    ) -> Result<Begin, IdempotencyError> {
        let owner = format!("{:032x}", fastrand::u128(..));
        // A record found expired or released between the write and its answer (clock edge):
        // claim once more, then give up rather than loop.
        for _ in 0..2 {
            let now = now_ms();
            let claim = NewClaim {
                key: pending.key,
                owner: &owner,
                fingerprint: pending.fingerprint,
                bot_endpoint: pending.bot_endpoint,
                request_id: pending.request_id,
                now_ms: now,
                in_flight_until_ms: epoch_ms(pending.in_flight_until),
                expires_at_ms: now
                    .saturating_add(u64::try_from(self.expiry.as_millis()).unwrap_or(u64::MAX)),
            };
            let outcome = bounded(deadline, self.store.claim(&claim))
                .await
                .map_err(IdempotencyError::Unavailable)?;
            let existing = match outcome {
                ClaimWrite::Won => return Ok(self.claimed(pending.key, owner)),
                ClaimWrite::Taken(existing) => existing,
            };
            let key = pending.key.clone();
            match rules::judge(&existing, &owner, pending.fingerprint, now) {
                Verdict::Ours => return Ok(self.claimed(pending.key, owner)),
                Verdict::Free => continue,
                Verdict::KeyReused => {
                    tracing::warn!(idempotency_key = %key, "idempotency key reused for a different request: not sent");
                    return Err(IdempotencyError::KeyReused { key });
                }
                Verdict::Replay(result) => {
                    tracing::info!(idempotency_key = %key, "duplicate request: answering the recorded result");
                    return replayed(&key, &result, existing.job_reference_endpoint);
                }
                Verdict::InProgress { retry_after } => {
                    tracing::info!(idempotency_key = %key, retry_after_s = retry_after.as_secs(), "duplicate request while the first is in progress");
                    return Err(IdempotencyError::InProgress { key, retry_after });
                }
                Verdict::Unknown { owner_gone } => {
                    tracing::warn!(idempotency_key = %key, owner_gone, "duplicate request of an execute whose outcome is unknown: not sent");
                    // A completed record without its result: a job exists, nothing to reconcile.
                    if existing.state == State::Completed {
                        return Err(IdempotencyError::OutcomeUnknown {
                            key,
                            owner_gone,
                            reconcile: None,
                        });
                    }
                    return Ok(Begin::Unknown(Unsettled {
                        key,
                        record: existing,
                        owner_gone,
                    }));
                }
            }
        }
        Err(IdempotencyError::Unavailable(StoreError::Unavailable(
            "the record changed while it was claimed".into(),
        )))
    }

    fn claimed(&self, key: &RecordKey, owner: String) -> Begin {
        tracing::debug!(idempotency_key = %key, "idempotency key claimed");
        Begin::Claimed(Claim {
            key: key.clone(),
            owner,
        })
    }

    /// Records the started job's result for replay. A failed write is logged, not returned:
    /// the job exists and the caller must learn about it.
    pub async fn complete(
        &self,
        claim: &Claim,
        result: &RawValue,
        job_reference_endpoint: &str,
        deadline: Instant,
    ) {
        let stored = storable(result);
        let update = Update::Complete {
            result: &stored,
            job_reference_endpoint,
        };
        self.finish(claim, &update, deadline).await;
    }

    /// Finishes the claim of a failed execute: releases the key when provably nothing started, records
    /// "unknown" with `detail` (an error type and message, never input values) otherwise.
    pub async fn finish_failed(
        &self,
        claim: &Claim,
        finish: Finish,
        detail: &str,
        deadline: Instant,
    ) {
        let update = match finish {
            Finish::Release => Update::Release,
            Finish::Unknown => Update::Unknown { detail },
        };
        self.finish(claim, &update, deadline).await;
    }

    async fn finish(&self, claim: &Claim, update: &Update<'_>, deadline: Instant) {
        let expected = Expected {
            owner: &claim.owner,
            state: State::InProgress,
        };
        let written = bounded(
            deadline,
            self.store.update(&claim.key, expected, update, now_ms()),
        )
        .await;
        let state = update.state().as_str();
        match written {
            Ok(UpdateWrite::Written) => {
                tracing::debug!(idempotency_key = %claim.key, state, "idempotency record settled");
            }
            // An SDK retry of a write that had gone through.
            Ok(UpdateWrite::Changed(Some(now)))
                if now.owner == claim.owner && now.state == update.state() => {}
            Ok(UpdateWrite::Changed(now)) => tracing::warn!(
                idempotency_key = %claim.key,
                state,
                found = now.as_ref().map_or("no record", |r| r.state.as_str()),
                "the idempotency record changed while the request ran (expired and claimed again, \
                 or resolved by an operator): not overwritten"
            ),
            Err(err) => tracing::error!(
                idempotency_key = %claim.key,
                state,
                error = %err,
                "could not settle the idempotency record: duplicates get CloudBot.OutcomeUnknown \
                 once this invocation's window ends"
            ),
        }
    }

    /// The current record of `key` and whether an operator may resolve it.
    pub async fn check_resolvable(
        &self,
        key: &RecordKey,
        deadline: Instant,
    ) -> Result<ResolveCheck, IdempotencyError> {
        let record = bounded(deadline, self.store.get(key))
            .await
            .map_err(IdempotencyError::Unavailable)?;
        Ok(rules::may_resolve(record, now_ms()))
    }

    /// Writes an operator's resolution over `seen` (the record [`Self::check_resolvable`]
    /// returned). `false` when the record changed in between (nothing written).
    pub async fn write_resolution(
        &self,
        key: &RecordKey,
        seen: &Record,
        update: &Update<'_>,
        deadline: Instant,
    ) -> Result<bool, IdempotencyError> {
        let expected = Expected {
            owner: &seen.owner,
            state: seen.state,
        };
        let stored;
        let update = match update {
            Update::Complete {
                result,
                job_reference_endpoint,
            } => {
                stored = storable_str(result);
                Update::Complete {
                    result: &stored,
                    job_reference_endpoint,
                }
            }
            other => other.clone(),
        };
        let written = bounded(
            deadline,
            self.store.update(key, expected, &update, now_ms()),
        )
        .await
        .map_err(IdempotencyError::Unavailable)?;
        Ok(written == UpdateWrite::Written)
    }
}

fn replayed(
    key: &RecordKey,
    stored: &str,
    job_reference_endpoint: Option<String>,
) -> Result<Begin, IdempotencyError> {
    let unreadable = || {
        tracing::error!(idempotency_key = %key, "the recorded result cannot be read: not replayed, not sent");
        IdempotencyError::OutcomeUnknown {
            key: key.clone(),
            owner_gone: false,
            reconcile: None,
        }
    };
    let result: Map<String, Value> = serde_json::from_str(stored).map_err(|_| unreadable())?;
    Ok(Begin::Replay(Replayed {
        result,
        job_reference_endpoint,
    }))
}

fn storable(result: &RawValue) -> String {
    storable_str(result.get())
}

/// The result as stored: unchanged, or without `output` when it would not fit an item.
fn storable_str(result: &str) -> String {
    if result.len() <= MAX_STORED_RESULT {
        return result.to_owned();
    }
    let Ok(mut map) = serde_json::from_str::<Map<String, Value>>(result) else {
        return "{}".to_owned();
    };
    map.insert("output".into(), Value::Null);
    tracing::warn!(
        size = result.len(),
        "the execute result is too large to store for replay: stored without `output`"
    );
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_keep_the_recorded_result_and_unreadable_ones_are_unknown() {
        let key = RecordKey::request("k").unwrap();
        let Ok(Begin::Replay(r)) = replayed(&key, r#"{"job_id":"j","replay":false}"#, None) else {
            panic!("expected a replay");
        };
        assert_eq!(
            serde_json::to_string(&r.result).unwrap(),
            r#"{"job_id":"j","replay":false}"#
        );
        assert!(matches!(
            replayed(&key, "not json", None),
            Err(IdempotencyError::OutcomeUnknown { .. })
        ));
    }

    #[test]
    fn oversized_results_are_stored_without_output() {
        let big = format!(
            r#"{{"job_id":"j","output":"{}"}}"#,
            "x".repeat(MAX_STORED_RESULT)
        );
        assert_eq!(storable_str(&big), r#"{"job_id":"j","output":null}"#);
        assert_eq!(storable_str(r#"{"a":1}"#), r#"{"a":1}"#);
    }
}
