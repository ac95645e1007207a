//! Japan's national holidays (国民の祝日・休日) from the Cabinet Office's official list.
//!
//! The list (`data/syukujitsu.csv`, the Cabinet Office's `syukujitsu.csv` converted to UTF-8) is
//! compiled into the binary with `include_str!`: no I/O and no network at run time. It covers
//! 1955 through [`VALID_THROUGH_YEAR`]; a question about a later date is
//! [`CalendarError::Stale`], never a guess (holidays change by law, and the equinox days are only
//! fixed each February for the following year). Where the data comes from and how to update it:
//! the crate's README.

use std::sync::LazyLock;

use jiff::civil::Date;

use crate::CalendarError;

#[cfg(test)]
mod law;
#[cfg(test)]
mod tests;

/// The last year the shipped list covers: the one place this is stated (a test checks that the
/// data ends in this year and has every year before it). Raise it when updating the data.
pub const VALID_THROUGH_YEAR: i16 = 2027;

/// The first year of the official list.
pub const FIRST_YEAR: i16 = 1955;

/// The official list, as shipped.
const SYUKUJITSU_CSV: &str = include_str!("../../data/syukujitsu.csv");

/// The header line of the official list (国民の祝日・休日月日, 国民の祝日・休日名称).
const HEADER: &str = "国民の祝日・休日月日,国民の祝日・休日名称";

/// A national holiday or a day off by law (振替休日 and 国民の休日 are named `休日`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    /// The date.
    pub date: Date,
    /// The name as the official list gives it (祝日名), e.g. `元日`, `休日`.
    pub name: &'static str,
}

static LIST: LazyLock<Result<Vec<Holiday>, CalendarError>> =
    LazyLock::new(|| parse(SYUKUJITSU_CSV));

/// The last date the data covers (31 December of [`VALID_THROUGH_YEAR`]).
pub fn valid_through() -> Date {
    Date::constant(VALID_THROUGH_YEAR, 12, 31)
}

/// The first date the data covers (1 January of [`FIRST_YEAR`]).
pub fn first_date() -> Date {
    Date::constant(FIRST_YEAR, 1, 1)
}

/// Fails unless the data covers `date`.
pub fn check_covered(date: Date) -> Result<(), CalendarError> {
    if date > valid_through() {
        return Err(CalendarError::Stale {
            date,
            valid_through: valid_through(),
        });
    }
    if date < first_date() {
        return Err(CalendarError::BeforeData {
            date,
            first: first_date(),
        });
    }
    Ok(())
}

/// The national holiday on `date`, if any; an error when the data does not cover `date`.
pub fn holiday_on(date: Date) -> Result<Option<Holiday>, CalendarError> {
    check_covered(date)?;
    let list = all()?;
    Ok(list
        .binary_search_by(|holiday| holiday.date.cmp(&date))
        .ok()
        .map(|index| list[index]))
}

/// Every holiday of the shipped list, in date order.
pub fn all() -> Result<&'static [Holiday], CalendarError> {
    match &*LIST {
        Ok(list) => Ok(list),
        Err(error) => Err(*error),
    }
}

/// Reads the official format: a header, then `YYYY/M/D,name` lines in date order.
fn parse(text: &'static str) -> Result<Vec<Holiday>, CalendarError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim_start_matches('\u{feff}').trim_end() == HEADER => {}
        _ => return Err(CalendarError::MalformedData { line: 1 }),
    }
    let mut list: Vec<Holiday> = Vec::with_capacity(1100);
    for (index, line) in lines {
        let line_no = index + 1;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let malformed = CalendarError::MalformedData { line: line_no };
        let (date, name) = line.split_once(',').ok_or(malformed)?;
        let parts: Option<Vec<i16>> = date.split('/').map(|part| part.parse().ok()).collect();
        let Some(&[year, month, day]) = parts.as_deref() else {
            return Err(malformed);
        };
        let month = i8::try_from(month).map_err(|_| malformed)?;
        let day = i8::try_from(day).map_err(|_| malformed)?;
        let date = Date::new(year, month, day).map_err(|_| malformed)?;
        if name.is_empty() || list.last().is_some_and(|last| last.date >= date) {
            return Err(malformed);
        }
        list.push(Holiday { date, name });
    }
    Ok(list)
}
