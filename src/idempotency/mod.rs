//! Exactly-once BOT starts under at-least-once delivery: the idempotency store.
//!
//! Every trigger can deliver one logical request more than once (asynchronous invocations are
//! duplicated by Lambda's queue, API clients retry, Step Functions retries a task it cannot tell
//! ran). Before the execute POST the function claims the request's key with one conditional
//! write; after it, it records what happened. A duplicate then gets the recorded result (a
//! replay), "in progress", or the recorded "outcome unknown", never a second POST. Keys per
//! trigger, what a duplicate gets in each state and the operator's way out:
//! docs/exactly-once.md.
//!
//! Hand-written on purpose: no maintained Rust library does this for Lambda (there is no
//! Powertools for Rust), and the rules are the product, including the part Powertools gets
//! wrong (see `rules`).
//!
//! - `key`: record keys per trigger, their validation, the `Idempotency-Key` header.
//! - `fingerprint`: the hash of what would be sent, to refuse a reused key.
//! - `rules`: the record lifecycle as pure functions, with table tests.
//! - `store`: the small trait the rules go through.
//! - `dynamodb`: the adapter to the shared table (`crate::table`), the only code here that sees
//!   SDK types.
//! - `guard`: the claim → send → finish flow the service runs.
//! - `reconcile`: the rule that settles an unknown outcome from Cloud BOT's job list, when
//!   it can be proved (the I/O around it: `crate::service`'s reconcile).

mod dynamodb;
mod fingerprint;
mod guard;
mod key;
mod reconcile;
mod rules;
mod store;

pub use fingerprint::Fingerprint;
pub use guard::{
    Begin, Claim, DEFAULT_RECONCILE_SETTLE, Idempotency, IdempotencyError, MAX_STORED_RESULT,
    Pending, Replayed, Unsettled,
};
pub use key::{KeyProblem, MAX_KEY_LEN, RecordKey, parse_header};
pub use reconcile::{
    Facts, ListedJob, MAX_INVOCATION, OtherClaim, Reconciled, Window, claims_range, decide, window,
};
pub use rules::{Finish, Record, ResolveCheck, State, finish_of};
pub use store::{ClaimWrite, Expected, NewClaim, Store, Update, UpdateWrite};
