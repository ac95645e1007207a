//! Stand-ins for unit tests (compiled for tests only): the table as a map, and Step Functions as
//! AWS behaves (a token is accepted once while its task is open).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::tasks::classify;
use super::*;
use crate::table::StoreFuture;

/// The table as a map (records by hash, pointers by task key).
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    pub(crate) records: Mutex<HashMap<String, CallbackRecord>>,
    pub(crate) pointers: Mutex<HashMap<String, String>>,
}

impl CallbackStore for MemoryStore {
    fn create<'a>(&'a self, new: &'a NewCallback<'a>) -> StoreFuture<'a, ()> {
        let record = CallbackRecord {
            task_key: new.task_key.to_owned(),
            task_token: new.task_token.clone(),
            job_reference_endpoint: None,
            state: CallbackState::Waiting,
            lease: None,
            expires_at_ms: new.expires_at_ms,
        };
        self.records
            .lock()
            .unwrap()
            .insert(new.hash.to_owned(), record);
        self.pointers
            .lock()
            .unwrap()
            .insert(new.task_key.to_owned(), new.hash.to_owned());
        Box::pin(async { Ok(()) })
    }

    fn set_job<'a>(&'a self, hash: &'a str, job: &'a str, _: u64) -> StoreFuture<'a, ()> {
        if let Some(r) = self.records.lock().unwrap().get_mut(hash) {
            r.job_reference_endpoint = Some(job.to_owned());
        }
        Box::pin(async { Ok(()) })
    }

    fn renew_token<'a>(
        &'a self,
        task_key: &'a str,
        token: &'a TaskToken,
        _: u64,
    ) -> StoreFuture<'a, bool> {
        let hash = self.pointers.lock().unwrap().get(task_key).cloned();
        let renewed = hash.is_some_and(|h| {
            self.records
                .lock()
                .unwrap()
                .get_mut(&h)
                .map(|r| r.task_token = token.clone())
                .is_some()
        });
        Box::pin(async move { Ok(renewed) })
    }

    fn read<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<CallbackRecord>> {
        let found = self.records.lock().unwrap().get(hash).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn claim_settlement<'a>(
        &'a self,
        claim: &'a SettleClaim<'a>,
    ) -> StoreFuture<'a, SettleClaimWrite> {
        // The DynamoDB adapter's condition, as the rule it implements.
        let mut records = self.records.lock().unwrap();
        let outcome = match records.get_mut(claim.hash) {
            Some(r) if turn(r, None, claim.now_ms) == Turn::Free => {
                r.state = CallbackState::Settling;
                r.lease = Some(Lease {
                    owner: claim.owner.to_owned(),
                    until_ms: claim.lease_until_ms,
                });
                SettleClaimWrite::Won(r.clone())
            }
            other => SettleClaimWrite::Lost(other.map(|r| r.clone())),
        };
        Box::pin(async move { Ok(outcome) })
    }

    fn release_settlement<'a>(
        &'a self,
        hash: &'a str,
        owner: &'a str,
        _: u64,
    ) -> StoreFuture<'a, ()> {
        if let Some(r) = self.records.lock().unwrap().get_mut(hash)
            && r.state == CallbackState::Settling
            && r.lease.as_ref().is_some_and(|l| l.owner == owner)
        {
            r.state = CallbackState::Waiting;
            r.lease = None;
        }
        Box::pin(async { Ok(()) })
    }

    fn mark_settled<'a>(&'a self, hash: &'a str, _: &'a str, _: u64) -> StoreFuture<'a, ()> {
        if let Some(r) = self.records.lock().unwrap().get_mut(hash) {
            r.state = CallbackState::Settled;
        }
        Box::pin(async { Ok(()) })
    }
}

/// Step Functions as AWS behaves: a token is accepted once while its task is open; a closed
/// or settled task answers `TaskTimedOut` (moto accepts a second call silently).
#[derive(Debug, Default)]
pub(crate) struct FakeStepFunctions {
    pub(crate) open: Mutex<Vec<String>>,
    pub(crate) calls: Mutex<Vec<(String, String)>>,
    /// Answer every call with a throttling error (the task stays open).
    pub(crate) throttled: Mutex<bool>,
}

impl FakeStepFunctions {
    fn answer(&self, token: &TaskToken, what: String) -> SettleFuture<'_> {
        self.calls
            .lock()
            .unwrap()
            .push((token.expose().to_owned(), what));
        if *self.throttled.lock().unwrap() {
            let outcome = classify("SendTaskSuccess", Some("ThrottlingException"));
            return Box::pin(async move { outcome });
        }
        let mut open = self.open.lock().unwrap();
        let outcome = match open.iter().position(|t| t == token.expose()) {
            Some(i) => {
                open.remove(i);
                Ok(Settled::Accepted)
            }
            None => classify("SendTaskSuccess", Some("TaskTimedOut")),
        };
        Box::pin(async move { outcome })
    }
}

impl TaskSettler for FakeStepFunctions {
    fn succeed<'a>(&'a self, token: &'a TaskToken, output: &'a str) -> SettleFuture<'a> {
        self.answer(token, format!("success {output}"))
    }

    fn fail<'a>(&'a self, token: &'a TaskToken, e: &'a str, c: &'a str) -> SettleFuture<'a> {
        self.answer(token, format!("failure {e} {c}"))
    }
}

/// A store and a Step Functions double shared with the [`Callbacks`] under test. The third
/// part: a Task retry's token that renews the record while the first Step Functions call is
/// under way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared(
    pub(crate) std::sync::Arc<(MemoryStore, FakeStepFunctions, Mutex<Option<String>>)>,
);

impl CallbackStore for Shared {
    fn create<'a>(&'a self, new: &'a NewCallback<'a>) -> StoreFuture<'a, ()> {
        self.0.0.create(new)
    }
    fn set_job<'a>(&'a self, h: &'a str, j: &'a str, n: u64) -> StoreFuture<'a, ()> {
        self.0.0.set_job(h, j, n)
    }
    fn renew_token<'a>(&'a self, k: &'a str, t: &'a TaskToken, n: u64) -> StoreFuture<'a, bool> {
        self.0.0.renew_token(k, t, n)
    }
    fn read<'a>(&'a self, h: &'a str) -> StoreFuture<'a, Option<CallbackRecord>> {
        self.0.0.read(h)
    }
    fn claim_settlement<'a>(&'a self, c: &'a SettleClaim<'a>) -> StoreFuture<'a, SettleClaimWrite> {
        self.0.0.claim_settlement(c)
    }
    fn release_settlement<'a>(&'a self, h: &'a str, o: &'a str, n: u64) -> StoreFuture<'a, ()> {
        self.0.0.release_settlement(h, o, n)
    }
    fn mark_settled<'a>(&'a self, h: &'a str, w: &'a str, n: u64) -> StoreFuture<'a, ()> {
        self.0.0.mark_settled(h, w, n)
    }
}

impl Shared {
    /// Opens a task with `token` (Step Functions accepts it once).
    pub(crate) fn open(&self, token: &str) {
        self.0.1.open.lock().unwrap().push(token.into());
    }

    /// Runs the task retry that `renew_during_call` names, if any, as a call goes out.
    fn renew_now(&self) {
        if let Some(newer) = self.0.2.lock().unwrap().take() {
            self.0.1.open.lock().unwrap().push(newer.clone());
            for r in self.0.0.records.lock().unwrap().values_mut() {
                r.task_token = token(&newer);
            }
        }
    }
}

impl TaskSettler for Shared {
    fn succeed<'a>(&'a self, t: &'a TaskToken, o: &'a str) -> SettleFuture<'a> {
        self.renew_now();
        self.0.1.succeed(t, o)
    }
    fn fail<'a>(&'a self, t: &'a TaskToken, e: &'a str, c: &'a str) -> SettleFuture<'a> {
        self.renew_now();
        self.0.1.fail(t, e, c)
    }
}

pub(crate) fn setup() -> (Callbacks, Shared) {
    let shared = Shared::default();
    let base = url::Url::parse("https://cb.example/callbacks").unwrap();
    let callbacks = Callbacks::new(
        shared.clone(),
        shared.clone(),
        &base,
        Duration::from_secs(3600),
    );
    (callbacks, shared)
}

pub(crate) fn token(raw: &str) -> TaskToken {
    TaskToken::parse(raw).unwrap()
}
