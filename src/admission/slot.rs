//! A slot: one item per running (or starting) BOT job of a capped contract, in the run ledger
//! table under the key `slot:<public_id>#<n>` (`n` from 0 to the cap - 1). An item present is a
//! slot taken; taking is a conditional put that fails when the item exists, releasing is a
//! conditional delete by the taker's token. The item says who holds it and why, so a leaked
//! slot is found by its key and explained by its attributes (docs/queue.md, "Slots").

use std::fmt;

use crate::cloudbot::PublicId;

/// The key prefix of slot items in the run ledger table (never a run's `<public_id>/<job_id>`).
pub const SLOT_PREFIX: &str = "slot:";

/// Names of a slot item's attributes (docs/queue.md, "Slots").
pub mod attribute {
    /// The taker's token: the one value a release or an update must name.
    pub const TOKEN: &str = "token";
    /// The idempotency key of the request holding it.
    pub const HOLDER: &str = "holder";
    /// `high` or `normal`.
    pub const LANE: &str = "lane";
    /// When it was taken (epoch ms).
    pub const TAKEN_AT: &str = "taken_at";
    /// The run it holds, `<public_id>/<job_id>`, once the execute started it.
    pub const JOB_RUN: &str = "job_run";
    /// The job reference endpoint of that run (the sweep reads the job there).
    pub const JOB_ENDPOINT: &str = "job_endpoint";
    /// Set when the execute's outcome is unknown: the slot stays taken until an operator
    /// releases it (a job may be running).
    pub const OUTCOME_UNKNOWN: &str = "outcome_unknown";
}

/// The key of slot `n` of `public_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotKey {
    /// The contract.
    pub public_id: PublicId,
    /// The slot's number (0 to the cap - 1).
    pub n: u32,
}

impl fmt::Display for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SLOT_PREFIX}{}#{}", self.public_id, self.n)
    }
}

/// What a take writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taking<'a> {
    /// Unique per take (the holder's key and the take's time).
    pub token: &'a str,
    /// The idempotency key of the request.
    pub holder: &'a str,
    /// The lane it came from.
    pub lane: &'a str,
    /// Now (epoch ms).
    pub taken_at_ms: u64,
}

/// A slot this invocation took: released or attached to its run by the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The slot.
    pub key: SlotKey,
    /// The take's token.
    pub token: String,
}

/// A taken slot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The slot.
    pub key: SlotKey,
    /// The take's token.
    pub token: String,
    /// The idempotency key of the request holding it.
    pub holder: String,
    /// When it was taken (epoch ms).
    pub taken_at_ms: u64,
    /// The run it holds, once started (`<public_id>/<job_id>`).
    pub job_run: Option<String>,
    /// That run's job reference endpoint.
    pub job_endpoint: Option<String>,
    /// The execute's outcome is unknown.
    pub outcome_unknown: bool,
}

impl Slot {
    /// The hold of this slot (to release it).
    pub fn hold(&self) -> Hold {
        Hold {
            key: self.key.clone(),
            token: self.token.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_key_is_never_a_run_key() {
        let key = SlotKey {
            public_id: PublicId::parse("demo", "t").unwrap(),
            n: 2,
        };
        // A run's key is `<public_id>/<job_id>`: a slot's has no `/`.
        assert_eq!(key.to_string(), "slot:demo#2");
        assert!(!key.to_string().contains('/'));
    }
}
