//! The errors of calendar evaluation: the holiday data does not cover a date.
//!
//! These are the only ways a calendar question can fail once a schedule file is valid. The
//! function maps [`CalendarError::Stale`] to its stable error type `Calendar.Stale` (alarmed): a
//! date past the data's validity is never answered by a guess.

use jiff::civil::Date;

/// How far a search for a business day goes before it gives up (a year and a day).
pub const MAX_SEARCH_DAYS: u16 = 366;

/// A calendar question could not be answered from the shipped holiday data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The date is after the last year the national holiday list covers. The Cabinet Office
    /// publishes the next year's list each February; update the data (the crate's README).
    #[error("{date} is past the Japanese holiday data, which is valid through {valid_through}")]
    Stale {
        /// The date asked about.
        date: Date,
        /// The last date the data covers.
        valid_through: Date,
    },
    /// The date is before the first year of the official list (1955).
    #[error("{date} is before the Japanese holiday data, which starts on {first}")]
    BeforeData {
        /// The date asked about.
        date: Date,
        /// The first date the data covers.
        first: Date,
    },
    /// No business day within a year of `from` in the searched direction (a calendar that closes
    /// everything, e.g. a company closed range of a whole year).
    #[error("no business day within {MAX_SEARCH_DAYS} days of {from}")]
    NoBusinessDay {
        /// Where the search started.
        from: Date,
    },
    /// The shipped holiday list could not be read (a defect of the data file; a test reads it).
    #[error("the shipped holiday list is malformed at line {line}")]
    MalformedData {
        /// The 1-based line of `data/syukujitsu.csv`.
        line: usize,
    },
}
