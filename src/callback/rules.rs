//! Who settles a callback, as pure rules: Cloud BOT may deliver one callback more than once, and
//! two deliveries can arrive at the same time (a retry after a slow answer, two receivers). Only
//! the delivery that wins one conditional write tells Step Functions; the others are duplicates
//! and are answered 2xx without any call. No I/O, the clock passed in: table tests below.
//!
//! ```text
//!   waiting --claim (lease)--> settling --told / closed--> settled
//!      ^                          |  \--Step Functions unavailable: release--> waiting
//!      \------ lease lapsed ------/   (a receiver that died mid-settlement)
//! ```
//!
//! The lease ends at the claiming invocation's deadline and at most [`SETTLE_LEASE`] after the
//! claim; its holder makes no Step Functions call after it. [`SETTLE_LEASE`] is below the 30 s
//! Cloud BOT waits at least before a retry, so the retry that follows a receiver dying
//! mid-settlement always finds the lease lapsed and settles the task itself.

use std::time::Duration;

use super::store::{CallbackRecord, CallbackState};

/// Longest lease of a settling delivery: room for two `SendTask*` calls (the recorded token and
/// a newer one) and the record writes, and shorter than Cloud BOT's shortest retry interval.
pub const SETTLE_LEASE: Duration = Duration::from_secs(10);

/// What a delivery finds when it looks at (or lost the claim of) a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Nobody is settling the task (waiting, or the holder's lease lapsed): claim it.
    Free,
    /// The claim is this delivery's own (an SDK retry of a claim write that had succeeded).
    Ours,
    /// Another delivery holds a live claim: this one is a duplicate.
    HeldElsewhere,
    /// Settled before: nothing left to do.
    Settled,
    /// Past its expiry: the record counts as absent.
    Expired,
}

/// The turn of a delivery `owner` (`None`: one that has not claimed) at `now_ms`.
pub fn turn(record: &CallbackRecord, owner: Option<&str>, now_ms: u64) -> Turn {
    if record.expires_at_ms <= now_ms {
        return Turn::Expired;
    }
    match (record.state, &record.lease) {
        (CallbackState::Settled, _) => Turn::Settled,
        (CallbackState::Waiting, _) => Turn::Free,
        (CallbackState::Settling, Some(lease)) if Some(lease.owner.as_str()) == owner => Turn::Ours,
        (CallbackState::Settling, Some(lease)) if now_ms < lease.until_ms => Turn::HeldElsewhere,
        // Lapsed, or a settling record without its lease (never written so): nobody can be
        // relied on to finish, so the task must not wait for it.
        (CallbackState::Settling, _) => Turn::Free,
    }
}

/// The lease of a claim made with `remaining` time before the invocation's deadline.
pub fn lease_for(remaining: Duration) -> Duration {
    remaining.min(SETTLE_LEASE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::{Lease, TaskToken};

    const NOW: u64 = 1_800_000_000_000;

    fn record(state: CallbackState, lease: Option<(&str, u64)>) -> CallbackRecord {
        CallbackRecord {
            task_key: "request:k".into(),
            task_token: TaskToken::parse("token").unwrap(),
            job_reference_endpoint: Some("https://api.c-bot.pro/demo/jobs/j".into()),
            state,
            lease: lease.map(|(owner, until_ms)| Lease {
                owner: owner.into(),
                until_ms,
            }),
            expires_at_ms: NOW + 86_400_000,
        }
    }

    #[test]
    fn what_a_delivery_finds_in_each_record_state() {
        use CallbackState::{Settled, Settling, Waiting};
        let expired = CallbackRecord {
            expires_at_ms: NOW,
            ..record(Waiting, None)
        };
        let cases: &[(&str, CallbackRecord, Option<&str>, Turn)] = &[
            ("waiting", record(Waiting, None), None, Turn::Free),
            (
                "waiting after a release",
                record(Waiting, Some(("first", NOW + 5_000))),
                Some("second"),
                Turn::Free,
            ),
            (
                "held by another, live",
                record(Settling, Some(("first", NOW + 1))),
                Some("second"),
                Turn::HeldElsewhere,
            ),
            (
                "held, seen before claiming",
                record(Settling, Some(("first", NOW + 5_000))),
                None,
                Turn::HeldElsewhere,
            ),
            (
                "lease lapsed exactly now",
                record(Settling, Some(("first", NOW))),
                Some("second"),
                Turn::Free,
            ),
            (
                "lease lapsed long ago",
                record(Settling, Some(("first", NOW - 60_000))),
                None,
                Turn::Free,
            ),
            (
                "settling without a lease",
                record(Settling, None),
                None,
                Turn::Free,
            ),
            (
                "own claim (SDK retry)",
                record(Settling, Some(("first", NOW + 5_000))),
                Some("first"),
                Turn::Ours,
            ),
            ("settled", record(Settled, None), None, Turn::Settled),
            (
                "settled, lease left behind",
                record(Settled, Some(("first", NOW + 5_000))),
                Some("first"),
                Turn::Settled,
            ),
            ("expired", expired, None, Turn::Expired),
        ];
        for (name, record, owner, expected) in cases {
            assert_eq!(turn(record, *owner, NOW), *expected, "{name}");
        }
    }

    #[test]
    fn the_lease_ends_at_the_deadline_and_within_cloud_bots_retry_interval() {
        assert_eq!(lease_for(Duration::from_secs(900)), SETTLE_LEASE);
        assert_eq!(lease_for(Duration::from_secs(3)), Duration::from_secs(3));
        // Cloud BOT retries a callback at least 30 s apart (docs/state-machines.md).
        assert!(SETTLE_LEASE < Duration::from_secs(30));
    }
}
