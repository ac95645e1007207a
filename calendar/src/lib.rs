//! Japanese business calendars and the schedule file model, for the function and the CLI.
//!
//! - [`holidays`]: Japan's national holidays from the Cabinet Office's official list, compiled
//!   in, valid through [`holidays::VALID_THROUGH_YEAR`]; later dates are [`CalendarError::Stale`].
//! - [`calendar`]: business calendars (national holidays, closed weekdays, company closed days,
//!   extra open days) and why a day is closed.
//! - [`occurrence`]: recurrences (daily, weekly, monthly, Nth / last business day) and the
//!   closed-day policy (skip, next or previous business day), in both directions: where a
//!   nominal occurrence runs, and which nominal occurrence runs on a day.
//! - [`tick`]: the fire-time decision for a Scheduler tick, keyed on the nominal occurrence.
//! - [`schedule`]: the schedule file (YAML or JSON) with strict validation and its JSON Schema.
//! - [`rerun`]: a re-run policy's bounds and pattern, shared by a request's `rerun` and a
//!   schedule's `policies.rerun`.
//! - [`preview`]: the coming runs with skipped and shifted occurrences labelled.
//! - [`wire`]: what the CLI puts in a Scheduler target input and the names of a schedule's state
//!   record, shared by the function and the CLI.
//!
//! Pure code: no AWS SDK, no I/O at run time (holiday list and time zone database compiled in).
//! The semantics are described in the crate's README.

pub mod calendar;
mod error;
pub mod holidays;
pub mod occurrence;
pub mod preview;
pub mod rerun;
pub mod schedule;
pub mod tick;
pub mod wire;

pub use calendar::{CalendarRule, ClosedReason, DaySpan, DayStatus, LabelledDays, WeekdayName};
pub use error::{CalendarError, MAX_SEARCH_DAYS};
pub use occurrence::{
    DayDecision, NthBusinessDay, OnClosed, Recurrence, Resolution, Rule, SkipReason,
};
pub use preview::{Preview, PreviewEntry, PreviewKind, preview};
pub use rerun::RerunPolicy;
pub use schedule::{FileError, RunPolicies, Schedule, ScheduleFile, json_schema};
pub use tick::{Run, TickDecision, TickSkip, decide_tick};
