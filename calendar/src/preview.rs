//! The coming runs of a schedule, with every skipped or shifted occurrence labelled: what
//! `cloudbot schedules preview NAME --days 30` prints.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::CalendarError;
use crate::calendar::DayStatus;
use crate::occurrence::{DayDecision, Recurrence, Resolution, SkipReason};
use crate::schedule::Schedule;
use crate::tick::occurrence_time;

/// One line of a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewEntry {
    /// The day the line is about.
    pub day: Date,
    /// The occurrence's nominal date.
    pub nominal: Date,
    /// What happens.
    #[serde(flatten)]
    pub kind: PreviewKind,
}

/// What happens on a preview line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreviewKind {
    /// A run at this instant (on `day`; shifted when `day` differs from `nominal`).
    Run {
        /// When.
        at: Timestamp,
    },
    /// The nominal occurrence does not run on `day` (skipped, shifted elsewhere, coalesced).
    Skipped {
        /// Why, with the holiday's name or the company's label.
        #[serde(flatten)]
        reason: SkipReason,
    },
}

/// A preview: the lines in date order, and where the holiday data ran out, if it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// The lines, in date order.
    pub entries: Vec<PreviewEntry>,
    /// The error that ended the preview early (`Stale` past the holiday data's validity).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "display")]
    pub stopped: Option<CalendarError>,
}

fn display<S: serde::Serializer>(
    error: &Option<CalendarError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.collect_str(error),
        None => serializer.serialize_none(),
    }
}

/// The runs and skipped occurrences of `schedule` on the `days` days from `from` (dates in the
/// schedule's time zone). A paused schedule is previewed as if enabled.
pub fn preview(schedule: &Schedule, from: Date, days: u16) -> Preview {
    let mut entries = Vec::new();
    let mut day = from;
    for _ in 0..days {
        if let Err(error) = preview_day(schedule, day, &mut entries) {
            return Preview {
                entries,
                stopped: Some(error),
            };
        }
        day = match day.tomorrow() {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    Preview {
        entries,
        stopped: None,
    }
}

fn preview_day(
    schedule: &Schedule,
    day: Date,
    entries: &mut Vec<PreviewEntry>,
) -> Result<(), CalendarError> {
    let rule = schedule.rule();
    let run = PreviewKind::Run {
        at: occurrence_time(schedule, day),
    };
    if let Recurrence::BusinessDay(nth) = schedule.recurrence {
        if let DayDecision::Run { nominal } = rule.decide_day(day)? {
            entries.push(PreviewEntry {
                day,
                nominal,
                kind: run,
            });
        } else if day == day.last_of_month()
            && rule.in_months(day)
            && let Err(reason) = rule.nth_business_day(day, nth)?
        {
            // A month without the requested business day: one line on its last day.
            entries.push(PreviewEntry {
                day,
                nominal: day,
                kind: PreviewKind::Skipped { reason },
            });
        }
        return Ok(());
    }
    match rule.resolve(day)? {
        Some(Resolution::Run { on }) if on == day => {
            entries.push(PreviewEntry {
                day,
                nominal: day,
                kind: run,
            });
        }
        Some(Resolution::Run { on }) => {
            // resolve() shifts only closed days.
            if let DayStatus::Closed(closed) = rule.calendar.status(day)? {
                let reason = SkipReason::Shifted { to: on, closed };
                entries.push(PreviewEntry {
                    day,
                    nominal: day,
                    kind: PreviewKind::Skipped { reason },
                });
            }
        }
        Some(Resolution::Skipped(reason)) => {
            entries.push(PreviewEntry {
                day,
                nominal: day,
                kind: PreviewKind::Skipped { reason },
            });
        }
        None => {
            if let DayDecision::Run { nominal } = rule.decide_day(day)? {
                entries.push(PreviewEntry {
                    day,
                    nominal,
                    kind: run,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
