//! When a schedule's occurrences fall on the calendar, in both directions.
//!
//! Forward ([`Rule::resolve`]): given a nominal occurrence date (what the recurrence names: every
//! day, Mondays, the 25th, the 3rd business day), answer where it runs: on that day, shifted to
//! the next or previous business day, or skipped with the reason.
//!
//! Inverse ([`Rule::decide_day`]): given a day (the date of a Scheduler tick), answer whether an
//! occurrence runs on it and which nominal date it is. The nominal date is the occurrence's
//! identity: a shifted run is keyed on its nominal date, so it can never run both on its shifted
//! day and on its nominal day. Both directions agree by construction and by test: `resolve(n)`
//! runs on `d` exactly when `decide_day(d)` runs `n`.
//!
//! Several nominal occurrences shifted onto one business day (Monday and Tuesday both shifted by
//! a holiday onto Wednesday, or onto a day that runs its own occurrence) run once: the day's own
//! occurrence if it has one, else the earliest nominal date; the others are skipped as
//! `coalesced` into it.

use std::borrow::Cow;
use std::fmt;

use jiff::civil::Date;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::CalendarError;
use crate::calendar::{CalendarRule, ClosedReason, DayStatus, Direction, WeekdayName, step};
use crate::error::MAX_SEARCH_DAYS;

/// How often a schedule's nominal occurrences come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Recurrence {
    /// Every day (closed days skipped).
    Daily,
    /// On these weekdays.
    Weekly(#[schemars(length(min = 1), extend("uniqueItems" = true))] Vec<WeekdayName>),
    /// On this day of the month, 1 to 31; a month without that day has it on its last day.
    Monthly(#[schemars(range(min = 1, max = 31))] u8),
    /// On the Nth business day of the month (1 to 23), or its last business day (`last`).
    BusinessDay(NthBusinessDay),
}

/// Which business day of the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NthBusinessDay {
    /// The Nth (1-based, at most [`NthBusinessDay::MAX`]).
    Nth(u8),
    /// The last.
    Last,
}

impl NthBusinessDay {
    /// No month has more than 23 weekdays.
    pub const MAX: u8 = 23;
}

impl fmt::Display for NthBusinessDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NthBusinessDay::Nth(n) => write!(f, "business day {n}"),
            NthBusinessDay::Last => f.write_str("the last business day"),
        }
    }
}

impl Serialize for NthBusinessDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NthBusinessDay::Nth(n) => serializer.serialize_u8(*n),
            NthBusinessDay::Last => serializer.serialize_str("last"),
        }
    }
}

impl<'de> Deserialize<'de> for NthBusinessDay {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = NthBusinessDay;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer 1 to {} or \"last\"", NthBusinessDay::MAX)
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                match u8::try_from(n) {
                    Ok(n @ 1..=NthBusinessDay::MAX) => Ok(NthBusinessDay::Nth(n)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Unsigned(n), &self)),
                }
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(n), &self)),
                }
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                match text {
                    "last" => Ok(NthBusinessDay::Last),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(text), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for NthBusinessDay {
    fn schema_name() -> Cow<'static, str> {
        "NthBusinessDay".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The Nth business day of the month (1 to 23), or \"last\".",
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": NthBusinessDay::MAX},
                {"const": "last"}
            ]
        })
    }
}

/// What to do when a nominal occurrence falls on a closed day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnClosed {
    /// Do not run this occurrence.
    #[default]
    Skip,
    /// Run on the next business day.
    NextBusinessDay,
    /// Run on the previous business day.
    PreviousBusinessDay,
}

/// Why an occurrence does not run (on a day, or at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// The nominal day is a national holiday and the rule skips it.
    Holiday {
        /// The 祝日名.
        name: &'static str,
    },
    /// The nominal day is a company closed day and the rule skips it.
    CompanyClosed {
        /// The calendar's label.
        label: String,
    },
    /// The nominal day is a closed weekday and the rule skips it.
    Weekend {
        /// The weekday.
        weekday: WeekdayName,
    },
    /// The nominal day is closed; its occurrence runs on another day.
    Shifted {
        /// Where it runs.
        to: Date,
        /// Why the nominal day is closed.
        closed: ClosedReason,
    },
    /// Shifted onto a day that already runs another occurrence, so it runs as part of that one.
    Coalesced {
        /// The nominal date of the occurrence that runs.
        into: Date,
        /// The day it runs on.
        on: Date,
        /// Why this occurrence's nominal day is closed.
        closed: ClosedReason,
    },
    /// The month has fewer business days than the recurrence asks for.
    TooFewBusinessDays {
        /// The business day asked for.
        nth: u8,
        /// How many the month has.
        count: u8,
    },
    /// The day is not an occurrence of the recurrence at all.
    NotScheduled,
}

impl SkipReason {
    /// The reason as one word, for metrics and tables (`holiday`, `company_closed`, `weekend`,
    /// `shifted`, `coalesced`, `too_few_business_days`, `not_scheduled`).
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Holiday { .. } => "holiday",
            SkipReason::CompanyClosed { .. } => "company_closed",
            SkipReason::Weekend { .. } => "weekend",
            SkipReason::Shifted { .. } => "shifted",
            SkipReason::Coalesced { .. } => "coalesced",
            SkipReason::TooFewBusinessDays { .. } => "too_few_business_days",
            SkipReason::NotScheduled => "not_scheduled",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Holiday { name } => write!(f, "national holiday {name}"),
            SkipReason::CompanyClosed { label } => write!(f, "company closed day {label}"),
            SkipReason::Weekend { weekday } => write!(f, "weekend ({weekday})"),
            SkipReason::Shifted { to, closed } => write!(f, "{closed}: runs on {to}"),
            SkipReason::Coalesced { into, on, closed } => {
                write!(f, "{closed}: joins the run of {into} on {on}")
            }
            SkipReason::TooFewBusinessDays { nth, count } => {
                write!(f, "the month has {count} business days, not {nth}")
            }
            SkipReason::NotScheduled => f.write_str("not a scheduled day"),
        }
    }
}

impl From<ClosedReason> for SkipReason {
    fn from(closed: ClosedReason) -> Self {
        match closed {
            ClosedReason::Holiday { name } => SkipReason::Holiday { name },
            ClosedReason::CompanyClosed { label } => SkipReason::CompanyClosed { label },
            ClosedReason::Weekend { weekday } => SkipReason::Weekend { weekday },
        }
    }
}

/// Where a nominal occurrence runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It runs on this day (the nominal day, or the day it was shifted to).
    Run {
        /// The day it runs.
        on: Date,
    },
    /// It does not run.
    Skipped(SkipReason),
}

/// What happens on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayDecision {
    /// An occurrence runs on this day.
    Run {
        /// Its nominal date: the identity to deduplicate on.
        nominal: Date,
    },
    /// Nothing runs on this day.
    Skip(SkipReason),
}

/// A schedule's recurrence with its calendar and closed-day policy: everything that decides
/// which days run.
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    /// The nominal occurrences.
    pub recurrence: &'a Recurrence,
    /// Only nominal occurrences in these months (1 to 12); all months when `None`.
    pub months: Option<&'a [u8]>,
    /// What a closed nominal day does (ignored by `business_day`, always a business day).
    pub on_closed: OnClosed,
    /// The business calendar.
    pub calendar: &'a CalendarRule,
}

impl Rule<'_> {
    /// Where the occurrence of nominal date `nominal` runs; `None` when `nominal` is not an
    /// occurrence of the recurrence.
    pub fn resolve(&self, nominal: Date) -> Result<Option<Resolution>, CalendarError> {
        if !self.in_months(nominal) {
            return Ok(None);
        }
        if let Recurrence::BusinessDay(nth) = self.recurrence {
            return Ok(match self.nth_business_day(nominal, *nth)? {
                Ok(day) if day == nominal => Some(Resolution::Run { on: nominal }),
                _ => None,
            });
        }
        if !self.is_nominal(nominal) {
            return Ok(None);
        }
        let closed = match self.calendar.status(nominal)? {
            DayStatus::Open => return Ok(Some(Resolution::Run { on: nominal })),
            DayStatus::Closed(closed) => closed,
        };
        let direction = match self.on_closed {
            OnClosed::Skip => return Ok(Some(Resolution::Skipped(closed.into()))),
            OnClosed::NextBusinessDay => Direction::Forward,
            OnClosed::PreviousBusinessDay => Direction::Backward,
        };
        let on = self.calendar.next_open(nominal, direction)?;
        let winner = self.shifted_onto(on, direction)?;
        Ok(Some(match winner {
            Some(into) if into != nominal => {
                Resolution::Skipped(SkipReason::Coalesced { into, on, closed })
            }
            _ => Resolution::Run { on },
        }))
    }

    /// Whether an occurrence runs on `day`, and which; if none, why not.
    pub fn decide_day(&self, day: Date) -> Result<DayDecision, CalendarError> {
        if let Recurrence::BusinessDay(nth) = self.recurrence {
            if !self.in_months(day) {
                return Ok(DayDecision::Skip(SkipReason::NotScheduled));
            }
            return Ok(match self.nth_business_day(day, *nth)? {
                Ok(run) if run == day => DayDecision::Run { nominal: day },
                _ => DayDecision::Skip(SkipReason::NotScheduled),
            });
        }
        if self.is_nominal(day) {
            return Ok(match self.resolve(day)? {
                Some(Resolution::Run { on }) if on == day => DayDecision::Run { nominal: day },
                Some(Resolution::Run { on }) => match self.calendar.status(day)? {
                    DayStatus::Closed(closed) => {
                        DayDecision::Skip(SkipReason::Shifted { to: on, closed })
                    }
                    // resolve() shifts only closed days.
                    DayStatus::Open => DayDecision::Run { nominal: day },
                },
                Some(Resolution::Skipped(reason)) => DayDecision::Skip(reason),
                None => DayDecision::Skip(SkipReason::NotScheduled),
            });
        }
        let direction = match self.on_closed {
            OnClosed::Skip => return Ok(DayDecision::Skip(SkipReason::NotScheduled)),
            OnClosed::NextBusinessDay => Direction::Forward,
            OnClosed::PreviousBusinessDay => Direction::Backward,
        };
        if !self.calendar.is_open(day)? {
            return Ok(DayDecision::Skip(SkipReason::NotScheduled));
        }
        Ok(match self.shifted_onto(day, direction)? {
            Some(nominal) => DayDecision::Run { nominal },
            None => DayDecision::Skip(SkipReason::NotScheduled),
        })
    }

    /// Whether `date` is in one of the rule's months.
    pub fn in_months(&self, date: Date) -> bool {
        self.months.is_none_or(|months| {
            months
                .iter()
                .any(|month| i8::try_from(*month) == Ok(date.month()))
        })
    }

    /// Whether `date` is a nominal occurrence of a date-based recurrence (not `business_day`).
    fn is_nominal(&self, date: Date) -> bool {
        if !self.in_months(date) {
            return false;
        }
        match self.recurrence {
            Recurrence::Daily => true,
            Recurrence::Weekly(days) => days.contains(&WeekdayName::from(date.weekday())),
            Recurrence::Monthly(day) => {
                let day = i8::try_from(*day).unwrap_or(i8::MAX);
                date.day() == day.min(date.days_in_month())
            }
            Recurrence::BusinessDay(_) => false,
        }
    }

    /// The nominal occurrence that runs on business day `on` when closed days shift in
    /// `direction`: `on`'s own occurrence if it has one, else the earliest of the closed nominal
    /// days shifted onto it (the closed days just before `on` when shifting forward, just after
    /// it when shifting backward).
    fn shifted_onto(&self, on: Date, direction: Direction) -> Result<Option<Date>, CalendarError> {
        if self.is_nominal(on) {
            return Ok(Some(on));
        }
        let towards_nominal = match direction {
            Direction::Forward => Direction::Backward,
            Direction::Backward => Direction::Forward,
        };
        let mut earliest = None;
        let mut day = on;
        for _ in 0..MAX_SEARCH_DAYS {
            day = match step(day, towards_nominal) {
                Some(day) => day,
                None => return Ok(earliest),
            };
            if self.calendar.is_open(day)? {
                return Ok(earliest);
            }
            if self.is_nominal(day) {
                earliest = Some(day);
                // Shifting backward we walk forward, so the first find is the earliest: stop
                // there (and ask nothing of later days, which may be past the holiday data).
                if direction == Direction::Backward {
                    return Ok(earliest);
                }
            }
        }
        Err(CalendarError::NoBusinessDay { from: on })
    }

    /// The requested business day of `date`'s month, or how many the month has when it has
    /// fewer.
    pub fn nth_business_day(
        &self,
        date: Date,
        nth: NthBusinessDay,
    ) -> Result<Result<Date, SkipReason>, CalendarError> {
        let open = self.calendar.open_days_of_month(date)?;
        let count = u8::try_from(open.len()).unwrap_or(u8::MAX);
        let found = match nth {
            NthBusinessDay::Nth(n) => open.get(usize::from(n).saturating_sub(1)).copied(),
            NthBusinessDay::Last => open.last().copied(),
        };
        Ok(found.ok_or(SkipReason::TooFewBusinessDays {
            nth: match nth {
                NthBusinessDay::Nth(n) => n,
                NthBusinessDay::Last => 1,
            },
            count,
        }))
    }
}

#[cfg(test)]
mod tests;
