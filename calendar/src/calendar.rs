//! Business calendars: which days are open, which are closed and why.
//!
//! A [`CalendarRule`] combines Japan's national holidays, closed weekdays (Saturday and Sunday
//! unless the rule says otherwise), the company's closed days (single days or ranges, every year
//! or once) and extra open days. Precedence, first match wins: an extra open day is open; a
//! national holiday is closed (labelled with its 祝日名); a company closed day is closed (with its
//! label); a closed weekday is closed; anything else is open.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, Weekday};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::CalendarError;
use crate::error::MAX_SEARCH_DAYS;
use crate::holidays;

/// A business calendar: what is open and what is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarRule {
    /// Japan's national holidays (including 振替休日 and 国民の休日) are closed days.
    #[serde(default = "national_holidays_default")]
    pub national_holidays: bool,
    /// The weekdays that are closed; `[]` for a seven-day calendar.
    #[serde(default = "closed_weekdays_default")]
    pub closed_weekdays: Vec<WeekdayName>,
    /// The company's closed days, each with a label (`年末年始`, `お盆`, `創立記念日`).
    #[serde(default)]
    pub closed: Vec<LabelledDays>,
    /// Extra open days: open even on a closed weekday, a national holiday or a company closed
    /// day (a Saturday of a quarter close, a holiday the office works).
    #[serde(default)]
    pub open: Vec<LabelledDays>,
}

fn national_holidays_default() -> bool {
    true
}

fn closed_weekdays_default() -> Vec<WeekdayName> {
    vec![WeekdayName::Sat, WeekdayName::Sun]
}

impl Default for CalendarRule {
    /// Weekends and Japan's national holidays closed, nothing else.
    fn default() -> Self {
        CalendarRule {
            national_holidays: national_holidays_default(),
            closed_weekdays: closed_weekdays_default(),
            closed: Vec::new(),
            open: Vec::new(),
        }
    }
}

/// A day of the week as written in a schedule file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum WeekdayName {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl WeekdayName {
    /// The name as written in a schedule file (`mon`).
    pub fn code(self) -> &'static str {
        match self {
            WeekdayName::Mon => "mon",
            WeekdayName::Tue => "tue",
            WeekdayName::Wed => "wed",
            WeekdayName::Thu => "thu",
            WeekdayName::Fri => "fri",
            WeekdayName::Sat => "sat",
            WeekdayName::Sun => "sun",
        }
    }
}

impl From<Weekday> for WeekdayName {
    fn from(weekday: Weekday) -> Self {
        match weekday {
            Weekday::Monday => WeekdayName::Mon,
            Weekday::Tuesday => WeekdayName::Tue,
            Weekday::Wednesday => WeekdayName::Wed,
            Weekday::Thursday => WeekdayName::Thu,
            Weekday::Friday => WeekdayName::Fri,
            Weekday::Saturday => WeekdayName::Sat,
            Weekday::Sunday => WeekdayName::Sun,
        }
    }
}

impl fmt::Display for WeekdayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            WeekdayName::Mon => "Monday",
            WeekdayName::Tue => "Tuesday",
            WeekdayName::Wed => "Wednesday",
            WeekdayName::Thu => "Thursday",
            WeekdayName::Fri => "Friday",
            WeekdayName::Sat => "Saturday",
            WeekdayName::Sun => "Sunday",
        };
        f.write_str(name)
    }
}

/// Days with a label, as listed under `closed` or `open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelledDays {
    /// The days: `MM-DD` or `MM-DD..MM-DD` every year, `YYYY-MM-DD` or
    /// `YYYY-MM-DD..YYYY-MM-DD` once.
    pub dates: DaySpan,
    /// What the days are, shown in previews and skip reasons.
    #[schemars(length(min = 1))]
    pub label: String,
}

/// One day or a range of days, every year (`MM-DD`, `MM-DD..MM-DD`) or once (`YYYY-MM-DD`,
/// `YYYY-MM-DD..YYYY-MM-DD`). Ranges include both ends; a yearly range may cross the year end
/// (`12-29..01-03`). A yearly `02-29` matches only in leap years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySpan {
    /// The same days every year: from `(month, day)` through `(month, day)`.
    Yearly {
        /// First day (month, day).
        from: (i8, i8),
        /// Last day (month, day); before `from` when the range crosses the year end.
        to: (i8, i8),
    },
    /// Days of one period.
    Once {
        /// First day.
        from: Date,
        /// Last day, not before `from`.
        to: Date,
    },
}

impl DaySpan {
    /// Whether `date` is one of the days.
    pub fn contains(&self, date: Date) -> bool {
        match *self {
            DaySpan::Yearly { from, to } => {
                let day = (date.month(), date.day());
                if from <= to {
                    from <= day && day <= to
                } else {
                    day >= from || day <= to
                }
            }
            DaySpan::Once { from, to } => from <= date && date <= to,
        }
    }
}

/// Why a day span could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a day or a range of days: {reason} (expected MM-DD, MM-DD..MM-DD, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)"
)]
pub struct DaySpanError {
    text: String,
    reason: &'static str,
}

impl FromStr for DaySpan {
    type Err = DaySpanError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| DaySpanError {
            text: text.to_owned(),
            reason,
        };
        let (first, last) = text.split_once("..").unwrap_or((text, text));
        if text.contains("..") && first == last {
            return Err(error(
                "a range's ends are the same day; write the day alone",
            ));
        }
        match (parse_month_day(first), parse_month_day(last)) {
            (Some(from), Some(to)) => return Ok(DaySpan::Yearly { from, to }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(error("both ends must be MM-DD, or both YYYY-MM-DD"));
            }
            (None, None) => {}
        }
        let from = parse_date(first).ok_or_else(|| error("not a valid date"))?;
        let to = parse_date(last).ok_or_else(|| error("not a valid date"))?;
        if to < from {
            return Err(error("the range ends before it starts"));
        }
        Ok(DaySpan::Once { from, to })
    }
}

/// `MM-DD` with a day that exists in some year (`02-29` included).
fn parse_month_day(text: &str) -> Option<(i8, i8)> {
    let (month, day) = text.split_once('-')?;
    if month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (month, day) = (month.parse::<i8>().ok()?, day.parse::<i8>().ok()?);
    // 2024 is a leap year, so every MM-DD that exists in any year exists in it.
    Date::new(2024, month, day).ok().map(|_| (month, day))
}

/// `YYYY-MM-DD`, strictly.
fn parse_date(text: &str) -> Option<Date> {
    if text.len() != 10 {
        return None;
    }
    text.parse::<Date>().ok()
}

impl fmt::Display for DaySpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DaySpan::Yearly { from, to } if from == to => write!(f, "{:02}-{:02}", from.0, from.1),
            DaySpan::Yearly { from, to } => {
                write!(f, "{:02}-{:02}..{:02}-{:02}", from.0, from.1, to.0, to.1)
            }
            DaySpan::Once { from, to } if from == to => write!(f, "{from}"),
            DaySpan::Once { from, to } => write!(f, "{from}..{to}"),
        }
    }
}

impl Serialize for DaySpan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DaySpan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DaySpan {
    fn schema_name() -> Cow<'static, str> {
        "DaySpan".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "One day or a range of days (both ends included): every year as MM-DD or MM-DD..MM-DD (may cross the year end, e.g. 12-29..01-03), or once as YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD.",
            "pattern": "^(\\d{2}-\\d{2}(\\.\\.\\d{2}-\\d{2})?|\\d{4}-\\d{2}-\\d{2}(\\.\\.\\d{4}-\\d{2}-\\d{2})?)$"
        })
    }
}

/// Whether a day is open, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayStatus {
    /// A business day.
    Open,
    /// A closed day.
    Closed(ClosedReason),
}

/// Why a day is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ClosedReason {
    /// A national holiday (or 振替休日 / 国民の休日, named `休日`).
    Holiday {
        /// The 祝日名 from the official list.
        name: &'static str,
    },
    /// One of the company's closed days.
    CompanyClosed {
        /// The label from the calendar rule.
        label: String,
    },
    /// A closed weekday.
    Weekend {
        /// The weekday.
        weekday: WeekdayName,
    },
}

impl ClosedReason {
    /// The reason as one word, for metrics and tables.
    pub fn code(&self) -> &'static str {
        match self {
            ClosedReason::Holiday { .. } => "holiday",
            ClosedReason::CompanyClosed { .. } => "company_closed",
            ClosedReason::Weekend { .. } => "weekend",
        }
    }
}

impl fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosedReason::Holiday { name } => write!(f, "national holiday {name}"),
            ClosedReason::CompanyClosed { label } => write!(f, "company closed day {label}"),
            ClosedReason::Weekend { weekday } => write!(f, "weekend ({weekday})"),
        }
    }
}

/// The direction of a search for a business day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Later days.
    Forward,
    /// Earlier days.
    Backward,
}

impl CalendarRule {
    /// Whether `date` is open, and if not, why. Needs the holiday data only when the rule uses
    /// national holidays and `date` is not an extra open day: then a date past the data is
    /// [`CalendarError::Stale`].
    pub fn status(&self, date: Date) -> Result<DayStatus, CalendarError> {
        if self.open.iter().any(|days| days.dates.contains(date)) {
            return Ok(DayStatus::Open);
        }
        if self.national_holidays
            && let Some(holiday) = holidays::holiday_on(date)?
        {
            return Ok(DayStatus::Closed(ClosedReason::Holiday {
                name: holiday.name,
            }));
        }
        if let Some(days) = self.closed.iter().find(|days| days.dates.contains(date)) {
            return Ok(DayStatus::Closed(ClosedReason::CompanyClosed {
                label: days.label.clone(),
            }));
        }
        let weekday = WeekdayName::from(date.weekday());
        if self.closed_weekdays.contains(&weekday) {
            return Ok(DayStatus::Closed(ClosedReason::Weekend { weekday }));
        }
        Ok(DayStatus::Open)
    }

    /// Whether `date` is a business day.
    pub fn is_open(&self, date: Date) -> Result<bool, CalendarError> {
        Ok(self.status(date)? == DayStatus::Open)
    }

    /// The first business day strictly after (`Forward`) or before (`Backward`) `date`.
    pub fn next_open(&self, date: Date, direction: Direction) -> Result<Date, CalendarError> {
        let mut day = date;
        for _ in 0..MAX_SEARCH_DAYS {
            day = step(day, direction).ok_or(CalendarError::NoBusinessDay { from: date })?;
            if self.is_open(day)? {
                return Ok(day);
            }
        }
        Err(CalendarError::NoBusinessDay { from: date })
    }

    /// The business days of the month that `date` is in, in order.
    pub fn open_days_of_month(&self, date: Date) -> Result<Vec<Date>, CalendarError> {
        let mut days = Vec::with_capacity(23);
        let mut day = date.first_of_month();
        loop {
            if self.is_open(day)? {
                days.push(day);
            }
            if day == date.last_of_month() {
                return Ok(days);
            }
            day =
                step(day, Direction::Forward).ok_or(CalendarError::NoBusinessDay { from: date })?;
        }
    }
}

/// The next day in `direction` (`None` only at the ends of jiff's range, years -9999 and 9999).
pub(crate) fn step(date: Date, direction: Direction) -> Option<Date> {
    match direction {
        Direction::Forward => date.tomorrow().ok(),
        Direction::Backward => date.yesterday().ok(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
