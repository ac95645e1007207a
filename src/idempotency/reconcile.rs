//! Reconciling an unknown outcome from Cloud BOT's job list, as a pure rule: given the record
//! whose outcome is unknown, the other claims of ours on the same BOT and the BOT's jobs, decide
//! whether the claim provably started no job, provably started exactly one (which one), or
//! cannot be told. No I/O, the clock passed in: every row of the rule is a table test below.
//! The rule, its window and its limits: docs/exactly-once.md, "Reconciling unknown outcomes".

use std::time::Duration;

use super::rules::{Record, State};

/// A claim of ours on the same BOT, as the reconcile sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherClaim {
    /// The record key as stored (`request:…`, `schedule:…`, …), named in the answer.
    pub key: String,
    /// Its state.
    pub state: State,
    /// When it was claimed (epoch ms).
    pub claimed_at_ms: u64,
    /// The end of its owner's in-flight window (epoch ms).
    pub in_flight_until_ms: u64,
    /// Completed: the job it started.
    pub job_reference_endpoint: Option<String>,
}

/// A job of the BOT as Cloud BOT's job list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedJob {
    /// Its job reference endpoint (what the answer and the operator see).
    pub endpoint: String,
    /// Its `start_time` (epoch ms), `None` when absent or unreadable.
    pub started_at_ms: Option<u64>,
}

/// The times during which a job started by the claim can have been created (epoch ms, both
/// ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The claim, less the settle time (clock skew between us and Cloud BOT).
    pub from_ms: u64,
    /// When the request was given up, plus the settle time.
    pub to_ms: u64,
}

/// What the reconcile concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The job list cannot prove anything yet (its lag): stay unknown, look again later.
    TooEarly {
        /// Until the settle time has passed.
        retry_after: Duration,
    },
    /// No job of the BOT started within the window: the claim started none.
    NotStarted,
    /// Exactly one job started within the window and no other claim of ours can explain it.
    Started(ListedJob),
    /// Anything else: stays unknown for the operator.
    Undecided {
        /// The jobs that may be this claim's (job reference endpoints).
        candidates: Vec<String>,
        /// Why it cannot be told, in words.
        why: String,
    },
}

/// The instant after which the claim's request can no longer reach Cloud BOT from our side:
/// when the owner recorded the outcome unknown (it had given the request up), else the end of
/// its in-flight window (an owner that died).
fn given_up_ms(record: &Record) -> u64 {
    match (record.state, record.updated_at_ms) {
        (State::Unknown, Some(updated)) => updated.min(record.in_flight_until_ms),
        _ => record.in_flight_until_ms,
    }
}

/// The window in which a job of `record`'s claim can have started, `None` when the record does
/// not say when it was claimed (written before the reconcile existed).
pub fn window(record: &Record, settle: Duration) -> Option<Window> {
    let settle = u64::try_from(settle.as_millis()).unwrap_or(u64::MAX);
    let claimed = record.claimed_at_ms?;
    Some(Window {
        from_ms: claimed.saturating_sub(settle),
        to_ms: given_up_ms(record).saturating_add(settle),
    })
}

/// The range of claim times of other claims whose window can overlap `window`: an owner lives
/// at most `MAX_INVOCATION` (Lambda's longest), so a claim older than that before the window
/// had given up before it opened.
pub fn claims_range(window: Window, settle: Duration) -> (u64, u64) {
    let reach = u64::try_from((MAX_INVOCATION + settle).as_millis()).unwrap_or(u64::MAX);
    (window.from_ms.saturating_sub(reach), window.to_ms)
}

/// Lambda's longest invocation: no owner's in-flight window is longer.
pub const MAX_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// The facts the rule decides on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The record whose outcome is unknown.
    pub record: &'a Record,
    /// Its key as stored (to leave it out of `others`).
    pub key: &'a str,
    /// The claims of ours on the same BOT claimed in [`claims_range`] (ours may be among them).
    pub others: &'a [OtherClaim],
    /// The BOT's jobs started since the window opened, newest first, as listed.
    pub jobs: &'a [ListedJob],
    /// True when the list may have been cut at its limit (it returned as many jobs as asked).
    pub list_full: bool,
    /// The settle time (the job list's lag and the clock skew we allow for).
    pub settle: Duration,
    /// Now (epoch ms).
    pub now_ms: u64,
}

/// Decides an unknown outcome. Never guesses: every answer other than `Undecided` is proved by
/// the facts, within the documented limits (jobs started outside this stack).
pub fn decide(facts: &Facts<'_>) -> Reconciled {
    let undecided =
        |candidates: Vec<String>, why: String| Reconciled::Undecided { candidates, why };
    let Some(window) = window(facts.record, facts.settle) else {
        return undecided(
            Vec::new(),
            "the record does not say when it was claimed".into(),
        );
    };
    // The list may lag: only once the settle time has passed since the request was given up
    // does a job it created show in the list.
    let proof_from = window.to_ms;
    if facts.now_ms < proof_from {
        return Reconciled::TooEarly {
            retry_after: Duration::from_millis(proof_from - facts.now_ms)
                .max(Duration::from_secs(1)),
        };
    }
    let in_window = |ms: u64| (window.from_ms..=window.to_ms).contains(&ms);
    // A completed claim of ours explains its own job.
    let explained: Vec<&str> = facts
        .others
        .iter()
        .filter(|o| o.key != facts.key && o.state == State::Completed)
        .filter_map(|o| o.job_reference_endpoint.as_deref())
        .collect();
    let mut found: Vec<&ListedJob> = Vec::new();
    for job in facts.jobs {
        match job.started_at_ms {
            Some(ms) if !in_window(ms) => {}
            Some(_) if explained.contains(&job.endpoint.as_str()) => {}
            Some(_) => found.push(job),
            None => {
                return undecided(
                    vec![job.endpoint.clone()],
                    "a job of the BOT has no readable start time".into(),
                );
            }
        }
    }
    let candidates: Vec<String> = found.iter().map(|j| j.endpoint.clone()).collect();
    if facts.list_full {
        // The oldest listed job is still inside the window: older ones may have been cut off.
        return undecided(
            candidates,
            "the BOT has more jobs in the window than one listing returns".into(),
        );
    }
    if candidates.is_empty() {
        return Reconciled::NotStarted;
    }
    // Claims of ours that may have started a job in the window without saying which.
    let rivals: Vec<&str> = facts
        .others
        .iter()
        .filter(|o| o.key != facts.key)
        .filter(|o| match o.state {
            State::Released => false,
            State::Completed => o.job_reference_endpoint.is_none(),
            State::InProgress | State::Unknown => true,
        })
        .filter(|o| {
            // Its own window, with the same allowances as ours.
            let settle = u64::try_from(facts.settle.as_millis()).unwrap_or(u64::MAX);
            let from = o.claimed_at_ms.saturating_sub(settle);
            let to = o
                .in_flight_until_ms
                .max(o.claimed_at_ms)
                .saturating_add(settle);
            from <= window.to_ms && window.from_ms <= to
        })
        .map(|o| o.key.as_str())
        .collect();
    if candidates.len() > 1 {
        return undecided(
            candidates,
            "more than one job of the BOT started while the request was out".into(),
        );
    }
    if !rivals.is_empty() {
        return undecided(
            candidates,
            format!(
                "another request of ours on the same BOT may have started it ({})",
                rivals.join(", ")
            ),
        );
    }
    match found.as_slice() {
        [one] => Reconciled::Started((*one).clone()),
        _ => undecided(
            candidates,
            "the jobs of the BOT could not be told apart".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::Fingerprint;

    const CLAIMED: u64 = 1_800_000_000_000;
    const GAVE_UP: u64 = CLAIMED + 10_000;
    const SETTLE: Duration = Duration::from_secs(60);
    const LATER: u64 = GAVE_UP + 600_000;

    fn unknown() -> Record {
        Record {
            state: State::Unknown,
            owner: "o".into(),
            fingerprint: Fingerprint::from_stored("f".into()),
            expires_at_ms: CLAIMED + 86_400_000,
            in_flight_until_ms: CLAIMED + 30_000,
            bot_endpoint: Some("https://api.c-bot.pro/demo/bots/b/jobs".into()),
            result: None,
            job_reference_endpoint: None,
            claimed_at_ms: Some(CLAIMED),
            updated_at_ms: Some(GAVE_UP),
        }
    }

    fn job(id: &str, at: u64) -> ListedJob {
        ListedJob {
            endpoint: format!("https://api.c-bot.pro/demo/jobs/{id}"),
            started_at_ms: Some(at),
        }
    }

    fn other(key: &str, state: State, at: u64, job: Option<&str>) -> OtherClaim {
        OtherClaim {
            key: key.into(),
            state,
            claimed_at_ms: at,
            in_flight_until_ms: at + 30_000,
            job_reference_endpoint: job.map(|id| format!("https://api.c-bot.pro/demo/jobs/{id}")),
        }
    }

    fn decide_at(
        record: &Record,
        others: &[OtherClaim],
        jobs: &[ListedJob],
        list_full: bool,
        now_ms: u64,
    ) -> Reconciled {
        decide(&Facts {
            record,
            key: "request:mine",
            others,
            jobs,
            list_full,
            settle: SETTLE,
            now_ms,
        })
    }

    fn undecided(ids: &[&str]) -> Vec<String> {
        ids.iter()
            .map(|id| format!("https://api.c-bot.pro/demo/jobs/{id}"))
            .collect()
    }

    #[test]
    fn the_window_runs_from_the_claim_to_the_give_up_with_the_settle_time_either_side() {
        assert_eq!(
            window(&unknown(), SETTLE),
            Some(Window {
                from_ms: CLAIMED - 60_000,
                to_ms: GAVE_UP + 60_000
            })
        );
        // An owner that died: its request could be out until its in-flight window ended.
        let dead = Record {
            state: State::InProgress,
            updated_at_ms: Some(CLAIMED),
            ..unknown()
        };
        assert_eq!(
            window(&dead, SETTLE).unwrap().to_ms,
            CLAIMED + 30_000 + 60_000
        );
        let old = Record {
            claimed_at_ms: None,
            ..unknown()
        };
        assert_eq!(window(&old, SETTLE), None);
    }

    /// A row of the rule table: name, other claims, listed jobs, list full, now, decision.
    type Row = (
        &'static str,
        Vec<OtherClaim>,
        Vec<ListedJob>,
        bool,
        u64,
        Reconciled,
    );

    #[test]
    fn the_rule_table() {
        let mine = unknown();
        let before = CLAIMED - 120_000;
        let inside = CLAIMED + 2_000;
        let after = GAVE_UP + 120_000;
        let rows: Vec<Row> = vec![
            (
                "no job at all",
                vec![],
                vec![],
                false,
                LATER,
                Reconciled::NotStarted,
            ),
            (
                "only jobs outside the window",
                vec![],
                vec![job("late", after), job("early", before)],
                false,
                LATER,
                Reconciled::NotStarted,
            ),
            (
                "one job in the window, no other claim",
                vec![],
                vec![job("late", after), job("j1", inside)],
                false,
                LATER,
                Reconciled::Started(job("j1", inside)),
            ),
            (
                "one job, explained by another completed claim",
                vec![other(
                    "request:other",
                    State::Completed,
                    CLAIMED,
                    Some("j1"),
                )],
                vec![job("j1", inside)],
                false,
                LATER,
                Reconciled::NotStarted,
            ),
            (
                "two jobs, one explained by another completed claim",
                vec![other(
                    "request:other",
                    State::Completed,
                    CLAIMED,
                    Some("j1"),
                )],
                vec![job("j2", inside + 1), job("j1", inside)],
                false,
                LATER,
                Reconciled::Started(job("j2", inside + 1)),
            ),
            (
                "released and far-off claims do not compete",
                vec![
                    other("request:freed", State::Released, CLAIMED, None),
                    other(
                        "request:long-ago",
                        State::Unknown,
                        CLAIMED - 3_600_000,
                        None,
                    ),
                    other("request:mine", State::Unknown, CLAIMED, None),
                ],
                vec![job("j1", inside)],
                false,
                LATER,
                Reconciled::Started(job("j1", inside)),
            ),
            (
                "zero jobs even though another claim is unknown",
                vec![other("request:other", State::Unknown, CLAIMED, None)],
                vec![],
                false,
                LATER,
                Reconciled::NotStarted,
            ),
            (
                "too early: the list may not show the job yet",
                vec![],
                vec![],
                false,
                GAVE_UP + 30_000,
                Reconciled::TooEarly {
                    retry_after: Duration::from_secs(30),
                },
            ),
            (
                "two jobs in the window",
                vec![],
                vec![job("j2", inside + 1), job("j1", inside)],
                false,
                LATER,
                Reconciled::Undecided {
                    candidates: undecided(&["j2", "j1"]),
                    why: "more than one job of the BOT started while the request was out".into(),
                },
            ),
            (
                "one job, another claim of ours unknown at the same time",
                vec![other(
                    "request:other",
                    State::Unknown,
                    CLAIMED + 1_000,
                    None,
                )],
                vec![job("j1", inside)],
                false,
                LATER,
                Reconciled::Undecided {
                    candidates: undecided(&["j1"]),
                    why: "another request of ours on the same BOT may have started it \
                          (request:other)"
                        .into(),
                },
            ),
            (
                "one job, another claim of ours still in progress",
                vec![other(
                    "request:other",
                    State::InProgress,
                    CLAIMED - 5_000,
                    None,
                )],
                vec![job("j1", inside)],
                false,
                LATER,
                Reconciled::Undecided {
                    candidates: undecided(&["j1"]),
                    why: "another request of ours on the same BOT may have started it \
                          (request:other)"
                        .into(),
                },
            ),
            (
                "a listing cut at its limit",
                vec![],
                vec![job("j1", inside)],
                true,
                LATER,
                Reconciled::Undecided {
                    candidates: undecided(&["j1"]),
                    why: "the BOT has more jobs in the window than one listing returns".into(),
                },
            ),
            (
                "a job without a start time",
                vec![],
                vec![ListedJob {
                    endpoint: "https://api.c-bot.pro/demo/jobs/x".into(),
                    started_at_ms: None,
                }],
                false,
                LATER,
                Reconciled::Undecided {
                    candidates: undecided(&["x"]),
                    why: "a job of the BOT has no readable start time".into(),
                },
            ),
        ];
        for (name, others, jobs, full, now, expected) in rows {
            assert_eq!(
                decide_at(&mine, &others, &jobs, full, now),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_record_without_its_claim_time_is_never_reconciled() {
        let old = Record {
            claimed_at_ms: None,
            ..unknown()
        };
        assert!(matches!(
            decide_at(&old, &[], &[], false, LATER),
            Reconciled::Undecided { .. }
        ));
    }

    #[test]
    fn the_claims_range_reaches_back_one_longest_invocation() {
        let w = window(&unknown(), SETTLE).unwrap();
        assert_eq!(
            claims_range(w, SETTLE),
            (w.from_ms - 900_000 - 60_000, w.to_ms)
        );
    }
}
