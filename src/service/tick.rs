//! A managed schedule's tick ([`crate::schedule`]): decided once, by the same code, whichever
//! target the Scheduler delivers it to.
//!
//! - The function as the Scheduler's target: `execute` decides first ([`Service::decide`]) and
//!   runs the BOT under the nominal occurrence's key.
//! - The RunBot / RunBotCallback state machines: their DecideTick state asks for the decision
//!   only (`schedule_tick`, [`Service::schedule_tick`]) and runs ExecuteBot under the key it
//!   answers (docs/schedules.md, "Where the decision runs"), with the schedule's
//!   `policies.rerun` (answered as `rerun`) in the run's request for the state machine's
//!   re-run loop.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::Serialize;

use super::{DEADLINE_MARGIN, Scope, Service, answer, upstream, with_refresh};
use crate::cloudbot::{JobEndpoint, JobStatus};
use crate::error::Failure;
use crate::idempotency::{IdempotencyError, RecordKey};
use crate::metrics::Invocation;
use crate::request::Execute;
use crate::schedule::state::RunOf;
use crate::schedule::{Decided, ScheduleTick};
use crate::schedule::{ScheduleError, Skipped};
use crate::table::{get_number, get_string};
use crate::trigger::Answer;
use cloudbot_calendar::schedule::Overlap;
use cloudbot_calendar::wire::state;
use cloudbot_calendar::{RerunPolicy, Run};

/// The answer of a tick that runs, for a state machine: the key to run it under.
#[derive(Debug, Serialize)]
struct RunDecision<'a> {
    /// The schedule's name.
    schedule: &'a str,
    /// The tick's scheduled time.
    scheduled_time: Timestamp,
    /// Always `run`.
    decision: &'static str,
    /// The day it runs (the tick's date in the schedule's time zone).
    day: jiff::civil::Date,
    /// The occurrence's nominal date (differs from `day` when shifted).
    nominal: jiff::civil::Date,
    /// `schedule:<arn>@<nominal instant>`: ExecuteBot's key is this and `#ExecuteBot`.
    idempotency_key: &'a str,
    /// The schedule's `policies.rerun`, in the request's `rerun` form: the state machine puts it
    /// in the run's request (TickRerun), so its re-run loop runs it. Absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    rerun: Option<&'a RerunPolicy>,
}

impl Service {
    /// Decides `tick` now; a skip is counted and logged here (it sends nothing, whoever asked).
    ///
    /// The schedule's state record is written here too: a skip's or a late delivery's outcome
    /// (best effort: nothing is sent either way), and for a run the breaker's threshold, which
    /// must be written before anything is sent (`Idempotency.Unavailable`, retryable, if not).
    pub(super) async fn decide(
        &self,
        tick: &ScheduleTick,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Decided, Failure> {
        let name = tick.definition.name.as_str();
        let decided = match tick.decide(Timestamp::now()) {
            Ok(decided) => decided,
            Err(err) => {
                if matches!(err, ScheduleError::TooLate { .. }) {
                    self.note_outcome(name, "too_late", scope).await;
                }
                return Err(err.into());
            }
        };
        match &decided {
            Decided::Skipped(skipped) => {
                record.set_schedule_skip(skipped.code());
                tracing::info!(
                    schedule = %skipped.schedule,
                    reason = skipped.code(),
                    "scheduled tick skipped: nothing sent"
                );
                self.note_outcome(name, "skipped", scope).await;
            }
            Decided::Run { run, .. } => {
                if let Some(states) = self.schedule_states() {
                    let threshold = tick.definition.policies.failure_breaker;
                    states
                        .decided_run(name, threshold, scope.deadline)
                        .await
                        .map_err(|err| Failure::Idempotency(IdempotencyError::Unavailable(err)))?;
                    // One read of the state record serves the run policies that need it: the
                    // breaker's pause (every schedule) and the previous run (overlap: skip).
                    let item = states
                        .read(name, scope.deadline)
                        .await
                        .map_err(|err| Failure::Idempotency(IdempotencyError::Unavailable(err)))?;
                    let policy_skip = if let Some((paused_at, pause_reason)) =
                        item.as_ref().and_then(paused)
                    {
                        Some((
                            Skipped::breaker_paused(tick, run, paused_at, pause_reason),
                            "paused",
                            "scheduled tick skipped: the failure breaker paused the schedule \
                             (`cloudbot schedules resume`); nothing sent",
                        ))
                    } else if tick.definition.policies.overlap == Overlap::Skip
                        && let Some((job, nominal)) = self
                            .still_running(item.as_ref(), run, scope, record)
                            .await?
                    {
                        Some((
                            Skipped::overlap(tick, run, job, nominal),
                            "skipped",
                            "scheduled tick skipped: the previous run still executes; nothing sent",
                        ))
                    } else {
                        None
                    };
                    if let Some((skipped, outcome, message)) = policy_skip {
                        record.set_schedule_skip(skipped.code());
                        tracing::info!(schedule = name, reason = skipped.code(), "{message}");
                        self.note_outcome(name, outcome, scope).await;
                        return Ok(Decided::Skipped(skipped));
                    }
                }
            }
        }
        Ok(decided)
    }

    /// The previous run recorded in the state record `item` (its job and nominal occurrence)
    /// when it still executes, read from Cloud BOT now, never from memory. `None` when there is
    /// no previous run, when it is this occurrence's (a repeated delivery: the claim replays it)
    /// or when it has ended. A read that fails fails the tick with the read's own error
    /// (nothing was sent).
    async fn still_running(
        &self,
        item: Option<&HashMap<String, AttributeValue>>,
        run: &Run,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Option<(String, String)>, Failure> {
        let Some(item) = item else { return Ok(None) };
        let (Some(job), Some(nominal)) = (
            get_string(item, state::LAST_JOB),
            get_string(item, state::LAST_NOMINAL),
        ) else {
            return Ok(None);
        };
        if nominal == run.nominal_time.to_string() {
            return Ok(None);
        }
        let endpoint = JobEndpoint::parse(&self.config.requests.api_base, &job, state::LAST_JOB)
            .map_err(|_| {
                Failure::Internal(
                    "the schedule's last job is not a job endpoint of the configured API base",
                )
            })?;
        let fetched = self
            .credentials
            .get(endpoint.public_id(), scope.deadline)
            .await?;
        let found = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, &endpoint),
            |_| (Some(200), None)
        ))?;
        // Only an end read just now lets the tick run: an unknown status counts as running.
        let ended = matches!(found.status, JobStatus::Succeeded | JobStatus::Error);
        Ok((!ended).then_some((job, nominal)))
    }

    /// Records the outcome of a tick that sent nothing (`skipped`, `too_late`, `paused`); a failed write is logged, not raised.
    async fn note_outcome(&self, schedule: &str, outcome: &str, scope: Scope) {
        let Some(states) = self.schedule_states() else {
            return;
        };
        if let Err(err) = states.outcome(schedule, outcome, scope.deadline).await {
            tracing::warn!(schedule, outcome, error = %err, "the schedule's state record was not written");
        }
    }

    /// The job of a scheduled run started under `key` (either target): recorded on the
    /// schedule's state record when the key is a managed schedule's. Best effort: the job runs
    /// whatever happens here; a failed write is logged.
    pub(super) async fn note_started(&self, key: &RecordKey, job: &str, scope: Scope) {
        let (Some(states), Some(run)) = (self.schedule_states(), RunOf::of_key(key)) else {
            return;
        };
        let deadline = scope.deadline + DEADLINE_MARGIN / 2;
        match states.started(&run, job, deadline).await {
            Ok(true) => {
                tracing::info!(schedule = %run.schedule, "scheduled run recorded as started")
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(schedule = %run.schedule, error = %err, "the schedule's state record was not written")
            }
        }
    }

    /// `schedule_tick`: the decision only, for a state machine's DecideTick state. A skip is
    /// answered as the function target answers it; a run with the key to run it under.
    pub(super) async fn schedule_tick(
        &self,
        execute: &Execute,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let tick = execute
            .schedule
            .as_ref()
            .ok_or(Failure::Internal("a schedule_tick without its tick"))?;
        match self.decide(tick, scope, record).await? {
            Decided::Skipped(skipped) => answer::skipped(&skipped),
            Decided::Run { key, run } => {
                tracing::info!(
                    schedule = %tick.definition.name.as_str(),
                    nominal = %run.nominal,
                    "scheduled tick runs"
                );
                answer::decided(&RunDecision {
                    schedule: tick.definition.name.as_str(),
                    scheduled_time: tick.scheduled_time,
                    decision: "run",
                    day: run.on,
                    nominal: run.nominal,
                    idempotency_key: key.as_str(),
                    rerun: tick.definition.policies.rerun.as_ref(),
                })
            }
        }
    }
}

/// The failure breaker's pause in a state record: `paused_at` and `pause_reason` (`None` when
/// not paused). A pause without its reason (not one the function writes) still pauses.
fn paused(item: &HashMap<String, AttributeValue>) -> Option<(u64, String)> {
    let at = get_number(item, state::PAUSED_AT)?;
    let reason =
        get_string(item, state::PAUSE_REASON).unwrap_or_else(|| "no reason recorded".into());
    Some((at, reason))
}
