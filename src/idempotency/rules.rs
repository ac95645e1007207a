//! The record lifecycle as pure rules: what a request finds when its key is already taken, how
//! an execute's result finishes the record, and when an operator may resolve it. No I/O, no
//! SDK types, the clock passed in: every rule is a table test below.
//!
//! ```text
//!   (absent / expired / released) --claim--> in_progress --started-----------> completed
//!                                                 |   \----provably not sent--> released
//!                                                 |    \---ambiguous----------> unknown
//!                                                 \-- owner's deadline passed = unknown
//! ```
//!
//! The hole this closes (Powertools for AWS Lambda has it): there, an in-progress record
//! expires at the owner's deadline and a retry then calls the third party again, although the
//! owner may have died right after its request went out. Here the deadline only ends the
//! *in-flight window*: a claim whose owner did not come back counts as unknown, never as free.

use std::time::Duration;

use crate::cloudbot::CloudBotError;

use super::fingerprint::Fingerprint;

/// The state of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Claimed; the owner is (or was) sending the execute request.
    InProgress,
    /// A job was started; the record holds the result to replay.
    Completed,
    /// The execute request may have reached Cloud BOT and its outcome is unknown.
    Unknown,
    /// Provably no job was started; the key is free again.
    Released,
}

impl State {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::InProgress => "in_progress",
            State::Completed => "completed",
            State::Unknown => "unknown",
            State::Released => "released",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "in_progress" => State::InProgress,
            "completed" => State::Completed,
            "unknown" => State::Unknown,
            "released" => State::Released,
            _ => return None,
        })
    }
}

/// A record as stored (times in milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's state.
    pub state: State,
    /// Random id of the claim that wrote it.
    pub owner: String,
    /// Fingerprint of the request that claimed the key.
    pub fingerprint: Fingerprint,
    /// The record counts as absent from this instant (DynamoDB's TTL deletes it some time
    /// later, best effort, so the rules never rely on the deletion).
    pub expires_at_ms: u64,
    /// End of the owner's in-flight window: its invocation deadline.
    pub in_flight_until_ms: u64,
    /// The BOT execution endpoint the request targets.
    pub bot_endpoint: Option<String>,
    /// `completed`: the execute result JSON to replay.
    pub result: Option<String>,
    /// `completed`: the job reference endpoint.
    pub job_reference_endpoint: Option<String>,
    /// When the claim was written (records written before the reconcile existed may lack it).
    pub claimed_at_ms: Option<u64>,
    /// When the record was last written (for `unknown`: when the owner gave the request up).
    pub updated_at_ms: Option<u64>,
}

/// What a claim that lost the conditional write does, given the record that won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The record is this claim's own (an SDK retry of a write that had succeeded): proceed.
    Ours,
    /// Expired or released: the write should not have lost. Claim again.
    Free,
    /// Same key, different request: refuse, send nothing.
    KeyReused,
    /// The first request started a job: answer its result again.
    Replay(String),
    /// The owner is still within its window: retry after the delay.
    InProgress {
        /// Time until the owner's window ends (at least one second).
        retry_after: Duration,
    },
    /// The outcome is unknown (recorded so, or the owner did not come back in time).
    Unknown {
        /// True when the record says in progress but its owner's window has passed.
        owner_gone: bool,
    },
}

/// Judges an existing record for a claim by `owner` of a request with `fingerprint` at `now_ms`.
pub fn judge(existing: &Record, owner: &str, fingerprint: &Fingerprint, now_ms: u64) -> Verdict {
    if existing.expires_at_ms <= now_ms || existing.state == State::Released {
        return Verdict::Free;
    }
    if existing.owner == owner {
        return Verdict::Ours;
    }
    if existing.fingerprint != *fingerprint {
        return Verdict::KeyReused;
    }
    match existing.state {
        State::Completed => match &existing.result {
            Some(result) => Verdict::Replay(result.clone()),
            // A completed record without its result cannot be replayed; a second run must not
            // happen either.
            None => Verdict::Unknown { owner_gone: false },
        },
        State::Unknown => Verdict::Unknown { owner_gone: false },
        State::InProgress if now_ms < existing.in_flight_until_ms => Verdict::InProgress {
            retry_after: Duration::from_millis(existing.in_flight_until_ms - now_ms)
                .max(Duration::from_secs(1)),
        },
        State::InProgress => Verdict::Unknown { owner_gone: true },
        State::Released => Verdict::Free,
    }
}

/// How a failed execute finishes its claim (a started job completes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Provably no job was started: free the key so a retry can run.
    Release,
    /// A job may have started: record the outcome as unknown.
    Unknown,
}

/// How a failed execute finishes its claim.
pub fn finish_of(err: &CloudBotError) -> Finish {
    match err {
        // Refused before anything was sent, or answered with a status that starts no job.
        CloudBotError::Unauthorized
        | CloudBotError::Forbidden
        | CloudBotError::NotFound
        | CloudBotError::BadRequest { .. }
        | CloudBotError::PayloadTooLarge { .. }
        | CloudBotError::UnsupportedMediaType
        | CloudBotError::Unprocessable { .. }
        | CloudBotError::RateLimited { .. }
        // The client reports Unavailable for an execute only when nothing can have started
        // (no connection, or 503 with Retry-After): cloudbot/retry.rs.
        | CloudBotError::Unavailable { .. }
        | CloudBotError::DeadlineExceeded
        | CloudBotError::InvalidCredentials
        | CloudBotError::Internal { .. } => Finish::Release,
        // Ambiguous, and anything this list does not know yet: never free a key on a guess.
        _ => Finish::Unknown,
    }
}

/// Whether an operator may resolve `existing` at `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveCheck {
    /// The record's outcome is unknown: resolving is what it waits for. The record as read
    /// (the resolution is written only over it).
    Allowed(Record),
    /// The owner may still finish: wait.
    InFlight {
        /// Time until the owner's window ends.
        retry_after: Duration,
    },
    /// Nothing to resolve (absent, expired, released or completed), in words.
    Refused(&'static str),
}

/// Checks a resolve request against the current record.
pub fn may_resolve(existing: Option<Record>, now_ms: u64) -> ResolveCheck {
    let Some(record) = existing.filter(|r| r.expires_at_ms > now_ms) else {
        return ResolveCheck::Refused("no record with this key (never claimed, or expired)");
    };
    match record.state {
        State::Unknown => ResolveCheck::Allowed(record),
        State::InProgress if now_ms >= record.in_flight_until_ms => ResolveCheck::Allowed(record),
        State::InProgress => ResolveCheck::InFlight {
            retry_after: Duration::from_millis(record.in_flight_until_ms - now_ms)
                .max(Duration::from_secs(1)),
        },
        State::Completed => {
            ResolveCheck::Refused("the record is completed: a job was started and is replayed")
        }
        State::Released => {
            ResolveCheck::Refused("the record is released: the next request runs normally")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudbot::Cause;

    const NOW: u64 = 1_800_000_000_000;

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::from_stored(s.to_owned())
    }

    fn record(state: State) -> Record {
        Record {
            state,
            owner: "first".into(),
            fingerprint: fp("same"),
            expires_at_ms: NOW + 86_400_000,
            in_flight_until_ms: NOW + 10_000,
            bot_endpoint: None,
            result: (state == State::Completed).then(|| "{\"job_id\":\"j\"}".to_owned()),
            job_reference_endpoint: None,
            claimed_at_ms: Some(NOW - 5_000),
            updated_at_ms: Some(NOW - 5_000),
        }
    }

    #[test]
    fn what_a_duplicate_gets_in_each_record_state() {
        let in_window = record(State::InProgress);
        let owner_gone = Record {
            in_flight_until_ms: NOW - 1,
            ..record(State::InProgress)
        };
        let expired = Record {
            expires_at_ms: NOW,
            ..record(State::Unknown)
        };
        let completed_without_result = Record {
            result: None,
            ..record(State::Completed)
        };
        let cases: &[(&str, &Record, &str, &str, Verdict)] = &[
            (
                "in flight",
                &in_window,
                "second",
                "same",
                Verdict::InProgress {
                    retry_after: Duration::from_secs(10),
                },
            ),
            (
                "owner gone",
                &owner_gone,
                "second",
                "same",
                Verdict::Unknown { owner_gone: true },
            ),
            (
                "unknown",
                &record(State::Unknown),
                "second",
                "same",
                Verdict::Unknown { owner_gone: false },
            ),
            (
                "completed",
                &record(State::Completed),
                "second",
                "same",
                Verdict::Replay("{\"job_id\":\"j\"}".into()),
            ),
            (
                "completed, no result",
                &completed_without_result,
                "second",
                "same",
                Verdict::Unknown { owner_gone: false },
            ),
            (
                "released",
                &record(State::Released),
                "second",
                "other",
                Verdict::Free,
            ),
            ("expired", &expired, "second", "other", Verdict::Free),
            (
                "reused in flight",
                &in_window,
                "second",
                "other",
                Verdict::KeyReused,
            ),
            (
                "reused completed",
                &record(State::Completed),
                "second",
                "other",
                Verdict::KeyReused,
            ),
            (
                "reused unknown",
                &record(State::Unknown),
                "second",
                "other",
                Verdict::KeyReused,
            ),
            (
                "own write retried",
                &in_window,
                "first",
                "same",
                Verdict::Ours,
            ),
        ];
        for (name, existing, owner, fingerprint, expected) in cases {
            assert_eq!(
                judge(existing, owner, &fp(fingerprint), NOW),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn the_in_progress_retry_delay_is_at_least_a_second() {
        let nearly_done = Record {
            in_flight_until_ms: NOW + 10,
            ..record(State::InProgress)
        };
        assert_eq!(
            judge(&nearly_done, "second", &fp("same"), NOW),
            Verdict::InProgress {
                retry_after: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn only_provably_unsent_executes_release_the_key() {
        let release = [
            CloudBotError::Unauthorized,
            CloudBotError::Forbidden,
            CloudBotError::NotFound,
            CloudBotError::BadRequest { message: None },
            CloudBotError::PayloadTooLarge { size: 1 },
            CloudBotError::UnsupportedMediaType,
            CloudBotError::Unprocessable { message: None },
            CloudBotError::RateLimited { retry_after: None },
            CloudBotError::Unavailable {
                cause: Cause::Status(503),
                retry_after: Some(std::time::Duration::from_secs(1)),
            },
            CloudBotError::DeadlineExceeded,
            CloudBotError::InvalidCredentials,
            CloudBotError::Internal { detail: "x" },
        ];
        for err in release {
            assert_eq!(finish_of(&err), Finish::Release, "{err:?}");
        }
        let unknown = [
            CloudBotError::OutcomeUnknown {
                cause: Cause::Timeout,
            },
            CloudBotError::OutcomeUnknown { cause: Cause::Body },
            CloudBotError::UnexpectedStatus { status: 302 },
            CloudBotError::InvalidResponse {
                status: 201,
                detail: "x",
            },
        ];
        for err in unknown {
            assert_eq!(finish_of(&err), Finish::Unknown, "{err:?}");
        }
    }

    #[test]
    fn operators_resolve_only_unknown_outcomes() {
        let owner_gone = Record {
            in_flight_until_ms: NOW,
            ..record(State::InProgress)
        };
        let expired = Record {
            expires_at_ms: NOW - 1,
            ..record(State::Unknown)
        };
        assert_eq!(
            may_resolve(Some(record(State::Unknown)), NOW),
            ResolveCheck::Allowed(record(State::Unknown))
        );
        assert_eq!(
            may_resolve(Some(owner_gone.clone()), NOW),
            ResolveCheck::Allowed(owner_gone)
        );
        assert_eq!(
            may_resolve(Some(record(State::InProgress)), NOW),
            ResolveCheck::InFlight {
                retry_after: Duration::from_secs(10)
            }
        );
        for refused in [
            None,
            Some(expired),
            Some(record(State::Completed)),
            Some(record(State::Released)),
        ] {
            assert!(
                matches!(may_resolve(refused.clone(), NOW), ResolveCheck::Refused(_)),
                "{refused:?}"
            );
        }
    }
}
