//! The small interface between the rules and a table: one conditional claim, one conditional
//! update, one read (operators and the reconcile of unknown outcomes), one query of the claims
//! on a BOT (the reconcile only). The DynamoDB adapter implements it; nothing above it sees
//! an SDK type.

use std::fmt::Debug;

use super::fingerprint::Fingerprint;
use super::key::RecordKey;
use super::reconcile::OtherClaim;
use super::rules::{Record, State};
use crate::table::StoreFuture;

/// A new claim: written only when the key is absent, expired or released.
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    /// The key.
    pub key: &'a RecordKey,
    /// Random id of this claim.
    pub owner: &'a str,
    /// What the request would send.
    pub fingerprint: &'a Fingerprint,
    /// The BOT execution endpoint (kept for operators and the resolve check).
    pub bot_endpoint: &'a str,
    /// The Lambda request id of the claiming invocation (kept for operators).
    pub request_id: &'a str,
    /// Now, in milliseconds since the Unix epoch (expired records count as absent).
    pub now_ms: u64,
    /// End of the owner's in-flight window (its invocation deadline).
    pub in_flight_until_ms: u64,
    /// When the record expires.
    pub expires_at_ms: u64,
}

/// How the conditional claim write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimWrite {
    /// The record is ours.
    Won,
    /// The key is taken: the record that holds it, returned by the failed write itself.
    Taken(Record),
}

/// A change of a record's state, written only if the record is still as `Expected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update<'a> {
    /// A job was started.
    Complete {
        /// The execute result JSON to replay.
        result: &'a str,
        /// The job reference endpoint.
        job_reference_endpoint: &'a str,
    },
    /// The outcome is unknown.
    Unknown {
        /// Why (an error type and message; never input values).
        detail: &'a str,
    },
    /// No job was started: the key is free.
    Release,
}

impl Update<'_> {
    /// The state the update writes.
    pub fn state(&self) -> State {
        match self {
            Update::Complete { .. } => State::Completed,
            Update::Unknown { .. } => State::Unknown,
            Update::Release => State::Released,
        }
    }
}

/// The condition of an update: the record still has this owner and state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The claim's owner id.
    pub owner: &'a str,
    /// The state the record must still be in.
    pub state: State,
}

/// How the conditional update write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateWrite {
    /// Written.
    Written,
    /// The record was no longer as expected; what it is now (absent: `None`).
    Changed(Option<Record>),
}

/// An idempotency table.
pub trait Store: Send + Sync + Debug {
    /// Writes `claim` if its key is absent, expired or released; otherwise returns the record.
    fn claim<'a>(&'a self, claim: &'a NewClaim<'a>) -> StoreFuture<'a, ClaimWrite>;

    /// Applies `update` to the record of `key` if it is still as `expected`.
    fn update<'a>(
        &'a self,
        key: &'a RecordKey,
        expected: Expected<'a>,
        update: &'a Update<'a>,
        now_ms: u64,
    ) -> StoreFuture<'a, UpdateWrite>;

    /// Reads the record of `key` (strongly consistent). Only the operator's resolve reads.
    fn get<'a>(&'a self, key: &'a RecordKey) -> StoreFuture<'a, Option<Record>>;

    /// The claims on the BOT `bot_endpoint` claimed from `from_ms` to `to_ms` (epoch ms, both
    /// included), for the reconcile of an unknown outcome. A store that cannot answer says so,
    /// and the outcome then stays unknown.
    fn claims_on_bot<'a>(
        &'a self,
        bot_endpoint: &'a str,
        from_ms: u64,
        to_ms: u64,
    ) -> StoreFuture<'a, Vec<OtherClaim>> {
        let _ = (bot_endpoint, from_ms, to_ms);
        Box::pin(async {
            Err(crate::table::StoreError::Unavailable(
                "this store cannot list the claims on a BOT".into(),
            ))
        })
    }
}
