//! The decision at fire time: is this Scheduler tick an occurrence, and of which nominal date?
//!
//! The Scheduler fires on a superset (daily at the schedule's time of day); the function reads
//! the tick's `<aws.scheduler.scheduled-time>` in the schedule's time zone and asks
//! [`decide_tick`]. A run carries its nominal date and the nominal instant
//! ([`Run::nominal_time`]): the function keys deduplication on the nominal instant, not on the
//! tick's time, so a shifted occurrence is one run whatever is delivered twice and on whichever
//! day. A skip carries its reason for the answer and the metric.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde::Serialize;

use crate::CalendarError;
use crate::occurrence::{DayDecision, SkipReason};
use crate::schedule::Schedule;

/// What a tick does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum TickDecision {
    /// Run the BOT for this occurrence.
    Run(Run),
    /// Send nothing.
    Skipped {
        /// The tick's date in the schedule's time zone.
        day: Date,
        /// Why.
        #[serde(flatten)]
        reason: TickSkip,
    },
}

/// An occurrence to run now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The occurrence's nominal date: its identity.
    pub nominal: Date,
    /// The day it runs (the tick's date); differs from `nominal` when shifted.
    pub on: Date,
    /// The nominal date at the schedule's time of day in its time zone: the instant to key
    /// deduplication on (`schedule:<arn>@<nominal_time>`).
    pub nominal_time: Timestamp,
}

impl Run {
    /// Whether the occurrence was moved off its nominal date.
    pub fn shifted(&self) -> bool {
        self.nominal != self.on
    }
}

/// Why a tick sends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TickSkip {
    /// The calendar and the recurrence say so.
    Calendar(SkipReason),
    /// The schedule is paused (`enabled: false`): a delivery that was already on its way.
    Other(OtherSkip),
}

/// Skips that do not come from the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum OtherSkip {
    /// The schedule is paused.
    Paused,
    /// The tick is not at the schedule's time of day (a Scheduler expression that does not
    /// match the file).
    WrongTime {
        /// The schedule's time of day.
        expected: Time,
        /// The tick's time of day in the schedule's time zone.
        got: Time,
    },
}

impl TickSkip {
    /// The reason as one word, for the skip metric's dimension.
    pub fn code(&self) -> &'static str {
        match self {
            TickSkip::Calendar(reason) => reason.code(),
            TickSkip::Other(OtherSkip::Paused) => "paused",
            TickSkip::Other(OtherSkip::WrongTime { .. }) => "wrong_time",
        }
    }
}

/// Decides what the tick scheduled at `scheduled_time` does for `schedule`.
pub fn decide_tick(
    schedule: &Schedule,
    scheduled_time: Timestamp,
) -> Result<TickDecision, CalendarError> {
    let local = scheduled_time.to_zoned_datetime(schedule.time_zone.tz().clone());
    let day = local.date();
    if !schedule.enabled {
        return Ok(TickDecision::Skipped {
            day,
            reason: TickSkip::Other(OtherSkip::Paused),
        });
    }
    let expected = schedule.at.0;
    let got = local.time();
    if (got.hour(), got.minute()) != (expected.hour(), expected.minute()) {
        let reason = TickSkip::Other(OtherSkip::WrongTime { expected, got });
        return Ok(TickDecision::Skipped { day, reason });
    }
    Ok(match schedule.rule().decide_day(day)? {
        DayDecision::Run { nominal } => TickDecision::Run(Run {
            nominal,
            on: day,
            nominal_time: occurrence_time(schedule, nominal),
        }),
        DayDecision::Skip(reason) => TickDecision::Skipped {
            day,
            reason: TickSkip::Calendar(reason),
        },
    })
}

/// `date` at the schedule's time of day in its time zone. A local time in a DST gap or fold is
/// resolved the "compatible" way (later in a gap, earlier in a fold), like EventBridge Scheduler.
pub fn occurrence_time(schedule: &Schedule, date: Date) -> Timestamp {
    let datetime = date.to_datetime(schedule.at.0);
    match datetime.to_zoned_datetime(schedule.time_zone.tz().clone()) {
        Ok(zoned) => zoned.timestamp(),
        // Only at the very ends of the supported range (years -9999 and 9999).
        Err(_) => Timestamp::MIN,
    }
}

#[cfg(test)]
mod tests;
