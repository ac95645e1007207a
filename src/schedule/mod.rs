//! Scheduled runs of the schedule file (issue 21): the tick a Scheduler envelope with a
//! `definition` carries, and the decision at fire time.
//!
//! EventBridge Scheduler fires on a superset of the occurrences (every day at the schedule's
//! time of day); the function reads the tick's `scheduled_time` in the schedule's time zone and
//! asks the calendar crate ([`cloudbot_calendar::decide_tick`]) whether it is an occurrence, and
//! of which nominal date. The run is keyed on the nominal occurrence, so a shifted run is one
//! run whatever is delivered twice and on whichever day. Order and reasons: docs/schedules.md,
//! "How a tick is decided".

pub mod state;

use cloudbot_calendar::{CalendarError, Run, Schedule, TickDecision, decide_tick};
use jiff::Timestamp;
use serde::Serialize;

use crate::idempotency::RecordKey;

/// A tick of a managed schedule: the envelope's `schedule` with a `definition`.
#[derive(Debug, Clone)]
pub struct ScheduleTick {
    /// `<aws.scheduler.schedule-arn>`, filled in by the Scheduler.
    pub arn: String,
    /// `<aws.scheduler.scheduled-time>`: the tick's time, the same on every attempt.
    pub scheduled_time: Timestamp,
    /// The schedule as the CLI applied it.
    pub definition: Box<Schedule>,
    /// `backfill: true`: the CLI's catch-up delivery; the lateness check is not applied.
    pub backfill: bool,
}

/// What a tick does, once decided.
#[derive(Debug)]
pub enum Decided {
    /// Start the BOT under this key (the nominal occurrence's).
    Run {
        /// `schedule:<arn>@<nominal instant>`.
        key: RecordKey,
        /// The occurrence: its nominal date, the day it runs, the nominal instant.
        run: Run,
    },
    /// Send nothing; answer this.
    Skipped(Skipped),
}

/// The answer of a tick that sends nothing (docs/schedules.md, "How a tick is decided").
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// The schedule's name.
    pub schedule: String,
    /// The tick's scheduled time.
    pub scheduled_time: Timestamp,
    /// `decision: "skipped"`, the tick's `day`, the `reason` code and its details (a holiday's
    /// `name`, a shifted run's `to`, a running job, ...).
    #[serde(flatten)]
    pub decision: SkipDecision,
}

/// Why a tick sends nothing: the calendar's decision, or a run policy's.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SkipDecision {
    /// The calendar (or the definition: paused, wrong time) says this tick is no occurrence.
    Calendar(TickDecision),
    /// An occurrence that a run policy holds back.
    Policy(PolicySkip),
}

/// An occurrence a run policy holds back: `{"decision": "skipped", "day", "reason", ...}`.
#[derive(Debug, Serialize)]
pub struct PolicySkip {
    /// Always `skipped`.
    pub decision: &'static str,
    /// The tick's date in the schedule's time zone.
    pub day: jiff::civil::Date,
    /// The reason code and its details.
    #[serde(flatten)]
    pub reason: PolicyReason,
}

/// The run policies that hold an occurrence back.
#[derive(Debug, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PolicyReason {
    /// `policies.overlap: skip` and the previous run's job, read from Cloud BOT just now, is
    /// still executing.
    Overlap {
        /// That job's reference endpoint.
        running_job: String,
        /// Its nominal occurrence.
        running_nominal: String,
    },
    /// The failure breaker paused the schedule (`policies.failure_breaker` consecutive failed
    /// jobs) and `cloudbot schedules resume` has not lifted the pause yet.
    BreakerPaused {
        /// When it paused, epoch seconds (the state record's `paused_at`).
        paused_at: u64,
        /// Why (the state record's `pause_reason`).
        pause_reason: String,
    },
}

impl Skipped {
    /// The reason code, the skip metric's dimension value.
    pub fn code(&self) -> &'static str {
        match &self.decision {
            SkipDecision::Calendar(TickDecision::Skipped { reason, .. }) => reason.code(),
            // Never built with a run (see [`ScheduleTick::decide`]).
            SkipDecision::Calendar(TickDecision::Run(_)) => "run",
            SkipDecision::Policy(PolicySkip {
                reason: PolicyReason::Overlap { .. },
                ..
            }) => "overlap",
            SkipDecision::Policy(PolicySkip {
                reason: PolicyReason::BreakerPaused { .. },
                ..
            }) => "breaker_paused",
        }
    }

    /// The skip of `run` while the failure breaker holds the schedule paused.
    pub fn breaker_paused(
        tick: &ScheduleTick,
        run: &Run,
        paused_at: u64,
        pause_reason: String,
    ) -> Self {
        Self::policy(
            tick,
            run,
            PolicyReason::BreakerPaused {
                paused_at,
                pause_reason,
            },
        )
    }

    fn policy(tick: &ScheduleTick, run: &Run, reason: PolicyReason) -> Self {
        Skipped {
            schedule: tick.definition.name.as_str().to_owned(),
            scheduled_time: tick.scheduled_time,
            decision: SkipDecision::Policy(PolicySkip {
                decision: "skipped",
                day: run.on,
                reason,
            }),
        }
    }

    /// The overlap skip of `run`: the previous run's `running_job` still executes.
    pub fn overlap(
        tick: &ScheduleTick,
        run: &Run,
        running_job: String,
        running_nominal: String,
    ) -> Self {
        Self::policy(
            tick,
            run,
            PolicyReason::Overlap {
                running_job,
                running_nominal,
            },
        )
    }
}

/// Why a tick is refused: nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Delivered later than the schedule's `max_lateness` after its scheduled time.
    #[error(
        "schedule `{schedule}`: the tick of {scheduled_time} was delivered {late_by_s} s late, more than its max_lateness of {max_lateness}; nothing was sent (deliver it with `backfill: true` to run it anyway)"
    )]
    TooLate {
        /// The schedule's name.
        schedule: String,
        /// The tick's scheduled time.
        scheduled_time: Timestamp,
        /// Seconds between the scheduled time and the delivery.
        late_by_s: i64,
        /// The policy, as written in the file.
        max_lateness: String,
    },
    /// The calendar could not answer for the tick's date.
    #[error("schedule `{schedule}`: {source}; nothing was sent")]
    Calendar {
        /// The schedule's name.
        schedule: String,
        /// Why.
        source: CalendarError,
    },
    /// A defect: the nominal key could not be formed from parts already checked.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl ScheduleTick {
    /// Decides the tick delivered at `now`: the calendar first (a skip sends nothing, however
    /// late it is delivered), then the lateness of a run (not for a backfill).
    pub fn decide(&self, now: Timestamp) -> Result<Decided, ScheduleError> {
        let schedule = &self.definition;
        let name = || schedule.name.as_str().to_owned();
        let decision = decide_tick(schedule, self.scheduled_time).map_err(|source| {
            ScheduleError::Calendar {
                schedule: name(),
                source,
            }
        })?;
        let run = match decision {
            TickDecision::Run(run) => run,
            skipped @ TickDecision::Skipped { .. } => {
                return Ok(Decided::Skipped(Skipped {
                    schedule: name(),
                    scheduled_time: self.scheduled_time,
                    decision: SkipDecision::Calendar(skipped),
                }));
            }
        };
        if !self.backfill && schedule.policies.too_late(self.scheduled_time, now) {
            return Err(ScheduleError::TooLate {
                schedule: name(),
                scheduled_time: self.scheduled_time,
                late_by_s: now.duration_since(self.scheduled_time).as_secs(),
                max_lateness: schedule.policies.max_lateness.to_string(),
            });
        }
        // The ARN and the instant were checked as key parts when the envelope was read (the
        // nominal instant has the same form as a scheduled time).
        let key = RecordKey::schedule(&self.arn, &run.nominal_time.to_string())
            .map_err(|_| ScheduleError::Internal("the nominal occurrence's key is malformed"))?;
        Ok(Decided::Run { key, run })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/g/month-end";

    fn tick(definition: serde_json::Value, at: &str, backfill: bool) -> ScheduleTick {
        ScheduleTick {
            arn: ARN.into(),
            scheduled_time: at.parse().unwrap(),
            definition: Box::new(Schedule::from_value(definition).unwrap()),
            backfill,
        }
    }

    fn monthly_25_next() -> serde_json::Value {
        json!({"name": "pay", "at": "09:00", "recurrence": {"monthly": 25},
            "on_closed": "next_business_day",
            "bot_endpoint": "https://api.c-bot.pro/demo/bots/echo_bot/jobs"})
    }

    fn daily() -> serde_json::Value {
        json!({"name": "daily", "at": "09:00", "recurrence": "daily",
            "bot_endpoint": "https://api.c-bot.pro/demo/bots/echo_bot/jobs"})
    }

    #[test]
    fn a_holiday_is_skipped_with_its_name() {
        // 2026-11-23 (Mon) is 勤労感謝の日; 09:00 JST is 00:00Z.
        let t = tick(daily(), "2026-11-23T00:00:00Z", false);
        let Decided::Skipped(skipped) = t.decide("2026-11-23T00:00:05Z".parse().unwrap()).unwrap()
        else {
            panic!("a holiday runs")
        };
        assert_eq!(skipped.code(), "holiday");
        let body = serde_json::to_value(&skipped).unwrap();
        assert_eq!(body["decision"], "skipped");
        assert_eq!(body["reason"], "holiday");
        assert_eq!(body["name"], "勤労感謝の日");
        assert_eq!(body["day"], "2026-11-23");
        assert_eq!(body["schedule"], "daily");
    }

    #[test]
    fn a_shifted_run_is_keyed_on_its_nominal_occurrence() {
        // 2027-04-25 is a Sunday: the run of the 25th moves to Monday 26th.
        let on_nominal = tick(monthly_25_next(), "2027-04-25T00:00:00Z", true);
        let Decided::Skipped(skipped) = on_nominal.decide(Timestamp::now()).unwrap() else {
            panic!("the nominal closed day runs")
        };
        assert_eq!(skipped.code(), "shifted");
        let shifted = tick(monthly_25_next(), "2027-04-26T00:00:00Z", true);
        let Decided::Run { key, .. } = shifted.decide(Timestamp::now()).unwrap() else {
            panic!("the shifted day does not run")
        };
        assert_eq!(key.as_str(), format!("schedule:{ARN}@2027-04-25T00:00:00Z"));
    }

    #[test]
    fn a_late_run_is_refused_unless_backfilled() {
        // Default max_lateness is well under a day.
        let late = tick(daily(), "2026-11-24T00:00:00Z", false);
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let err = late.decide(now).unwrap_err();
        assert!(matches!(err, ScheduleError::TooLate { .. }), "{err}");
        let backfill = tick(daily(), "2026-11-24T00:00:00Z", true);
        assert!(matches!(backfill.decide(now), Ok(Decided::Run { .. })));
        // A holiday delivered late is still a skip: nothing would be sent anyway.
        let holiday = tick(daily(), "2026-11-23T00:00:00Z", false);
        assert!(matches!(holiday.decide(now), Ok(Decided::Skipped(_))));
    }

    #[test]
    fn a_date_past_the_holiday_data_is_stale() {
        let t = tick(daily(), "2031-06-02T00:00:00Z", true);
        let err = t.decide(Timestamp::now()).unwrap_err();
        assert!(
            matches!(
                err,
                ScheduleError::Calendar {
                    source: CalendarError::Stale { .. },
                    ..
                }
            ),
            "{err}"
        );
    }
}
