//! A managed schedule's tick ([`crate::schedule`]): decided once, by the same code, whichever
//! target the Scheduler delivers it to.
//!
//! - The function as the Scheduler's target: `execute` decides first ([`Service::decide`]) and
//!   runs the BOT under the nominal occurrence's key.
//! - The RunBot / RunBotCallback state machines: their DecideTick state asks for the decision
//!   only (`schedule_tick`, [`Service::schedule_tick`]) and runs ExecuteBot under the key it
//!   answers (docs/schedules.md, "Where the decision runs").

use jiff::Timestamp;
use serde::Serialize;

use super::{Service, answer};
use crate::error::Failure;
use crate::metrics::Invocation;
use crate::request::Execute;
use crate::schedule::{Decided, ScheduleTick};
use crate::trigger::Answer;

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
}

impl Service {
    /// Decides `tick` now; a skip is counted and logged here (it sends nothing, whoever asked).
    pub(super) fn decide(
        &self,
        tick: &ScheduleTick,
        record: &mut Invocation,
    ) -> Result<Decided, Failure> {
        let decided = tick.decide(Timestamp::now())?;
        if let Decided::Skipped(skipped) = &decided {
            record.set_schedule_skip(skipped.code());
            tracing::info!(
                schedule = %skipped.schedule,
                reason = skipped.code(),
                "scheduled tick skipped: nothing sent"
            );
        }
        Ok(decided)
    }

    /// `schedule_tick`: the decision only, for a state machine's DecideTick state. A skip is
    /// answered as the function target answers it; a run with the key to run it under.
    pub(super) fn schedule_tick(
        &self,
        execute: &Execute,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let tick = execute
            .schedule
            .as_ref()
            .ok_or(Failure::Internal("a schedule_tick without its tick"))?;
        match self.decide(tick, record)? {
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
                })
            }
        }
    }
}
