//! The callback records and the small trait they are kept through (the DynamoDB adapter is in
//! `dynamodb`; nothing above it sees an SDK type).
//!
//! Two items per callback-driven task, in the idempotency table under their own key prefixes
//! (they never collide with idempotency keys, which start with `request:`, `event:`, `http:` or
//! `schedule:`):
//! - `callback:<sha256 of the id>`: the task token, the task's idempotency key, the job reference
//!   endpoint once the execute POST has answered, the state (waiting / settling / settled), the
//!   settling delivery's lease while it tells Step Functions (`rules`), and the expiry;
//! - `callback-task:<idempotency key>`: the hash of that task's callback id, so a Task retry
//!   (which carries the same idempotency key and a *new* token, and is answered with a replay of
//!   the same job) can put its token into the record the job's callback URL points at.

use std::fmt::Debug;

use super::id::TaskToken;
use crate::table::StoreFuture;

/// Key prefix of a callback record.
pub const RECORD_PREFIX: &str = "callback:";
/// Key prefix of the pointer from a task's idempotency key to its callback record.
pub const TASK_PREFIX: &str = "callback-task:";

/// Whether the task of a record was told its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackState {
    /// Waiting for the job's end.
    Waiting,
    /// One delivery has claimed the record and is telling Step Functions (see its [`Lease`]).
    Settling,
    /// Settled (or found closed by Step Functions): later deliveries change nothing.
    Settled,
}

impl CallbackState {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Waiting => "waiting",
            CallbackState::Settling => "settling",
            CallbackState::Settled => "settled",
        }
    }

    /// The state of a stored value.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "waiting" => Some(CallbackState::Waiting),
            "settling" => Some(CallbackState::Settling),
            "settled" => Some(CallbackState::Settled),
            _ => None,
        }
    }
}

/// A stored callback record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRecord {
    /// The task's idempotency key (stored form).
    pub task_key: String,
    /// The newest task token of the task.
    pub task_token: TaskToken,
    /// The job reference endpoint; `None` until the execute POST has answered.
    pub job_reference_endpoint: Option<String>,
    /// Waiting, settling or settled.
    pub state: CallbackState,
    /// The settling delivery's claim (kept after it ends; only meaningful while settling).
    pub lease: Option<Lease>,
    /// When the record stops being valid (epoch ms; compared by the code, TTL deletes later).
    pub expires_at_ms: u64,
}

/// The claim of the one delivery that tells Step Functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Random id of the claiming delivery.
    pub owner: String,
    /// The claim lapses at this instant (epoch ms): a receiver that died mid-settlement blocks
    /// the record no longer than this.
    pub until_ms: u64,
}

/// A claim to settle a record, written only when [`super::rules::turn`] says `Free`.
#[derive(Debug, Clone, Copy)]
pub struct SettleClaim<'a> {
    /// SHA-256 hex of the callback id.
    pub hash: &'a str,
    /// Random id of this delivery.
    pub owner: &'a str,
    /// Now (epoch ms).
    pub now_ms: u64,
    /// End of the lease (epoch ms).
    pub lease_until_ms: u64,
}

/// How the conditional settle-claim write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleClaimWrite {
    /// The record is this delivery's to settle; as it reads after the claim, so its token is
    /// the newest at the claim.
    Won(CallbackRecord),
    /// Not written: the record as it is (absent: `None`), returned by the failed write itself.
    Lost(Option<CallbackRecord>),
}

/// A record to write before the execute POST.
#[derive(Debug, Clone, Copy)]
pub struct NewCallback<'a> {
    /// SHA-256 hex of the callback id.
    pub hash: &'a str,
    /// The task's idempotency key (stored form).
    pub task_key: &'a str,
    /// The task token.
    pub task_token: &'a TaskToken,
    /// Now (epoch ms).
    pub now_ms: u64,
    /// Expiry (epoch ms).
    pub expires_at_ms: u64,
}

/// Where callback records are kept.
pub trait CallbackStore: Send + Sync + Debug {
    /// Writes the record and the task's pointer to it (overwriting an older pointer: the new
    /// record belongs to the job about to be started).
    fn create<'a>(&'a self, new: &'a NewCallback<'a>) -> StoreFuture<'a, ()>;

    /// Records the started job's reference endpoint.
    fn set_job<'a>(
        &'a self,
        hash: &'a str,
        job_reference_endpoint: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, ()>;

    /// Puts `token` into the record the task's pointer names; `false` when the task has no
    /// callback record.
    fn renew_token<'a>(
        &'a self,
        task_key: &'a str,
        token: &'a TaskToken,
        now_ms: u64,
    ) -> StoreFuture<'a, bool>;

    /// Reads the record of `hash` (strongly consistent).
    fn read<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<CallbackRecord>>;

    /// Claims the record for one delivery's settlement if it is waiting, or settling under a
    /// lapsed lease, and not expired (the condition of [`super::rules::turn`], in one
    /// conditional write).
    fn claim_settlement<'a>(
        &'a self,
        claim: &'a SettleClaim<'a>,
    ) -> StoreFuture<'a, SettleClaimWrite>;

    /// Gives a claim back (Step Functions could not be told): waiting again, if `owner` still
    /// holds it; otherwise nothing changes.
    fn release_settlement<'a>(
        &'a self,
        hash: &'a str,
        owner: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, ()>;

    /// Marks the record settled with how it ended (`succeeded`, `failed`, `closed:<code>`).
    fn mark_settled<'a>(&'a self, hash: &'a str, how: &'a str, now_ms: u64) -> StoreFuture<'a, ()>;
}
