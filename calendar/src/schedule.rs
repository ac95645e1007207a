//! The schedule file: one file a team keeps in git (YAML or JSON) with all its BOT schedules.
//!
//! Parsing is strict: an unknown field, a wrong type or an invalid value is an error naming the
//! field by its path (`schedules[2].calendar.closed[0].dates`), and nothing of a file with an
//! error is used. The JSON Schema of the format is generated from this model
//! (`schema/schedules.schema.json`, kept equal by a test).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::calendar::CalendarRule;
use crate::occurrence::{OnClosed, Recurrence, Rule};
use crate::rerun::RerunPolicy;

/// The only version of the file format so far.
pub const FILE_VERSION: u32 = 1;

/// A schedule file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cloudbot-trigger schedule file")]
pub struct ScheduleFile {
    /// The file format version: 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The schedules, each with a unique name.
    pub schedules: Vec<Schedule>,
}

/// One BOT schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The schedule's name, unique in the file: 1 to 64 of `A-Z a-z 0-9 - _ .` (the characters
    /// EventBridge Scheduler allows in a schedule name).
    pub name: ScheduleName,
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The time of day of each run, `HH:MM` (24-hour) in `time_zone`.
    pub at: TimeOfDay,
    /// Which days: `daily`, `{weekly: [mon, thu]}`, `{monthly: 25}`, `{business_day: 3}` or
    /// `{business_day: last}`.
    pub recurrence: Recurrence,
    /// Only in these months (1 to 12), e.g. `[3, 6, 9, 12]` for quarter ends; every month when
    /// absent. Applies to the nominal dates: a shifted run may fall in another month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), extend("uniqueItems" = true), inner(range(min = 1, max = 12)))]
    pub months: Option<Vec<u8>>,
    /// The IANA time zone the time of day and the dates are read in.
    #[serde(default)]
    pub time_zone: Zone,
    /// The BOT execution endpoint, e.g. `https://api.c-bot.pro/demo/bots/echo_bot/jobs`.
    pub bot_endpoint: BotEndpoint,
    /// The BOT's input: a JSON object passed as the job's `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Map<String, Value>>,
    /// The business calendar (default: Saturdays, Sundays and Japan's national holidays closed).
    /// Share one between schedules with a YAML anchor (`&company` / `*company`).
    #[serde(default)]
    pub calendar: CalendarRule,
    /// What a nominal occurrence on a closed day does (default `skip`). Not allowed with
    /// `daily` (every shifted day would land on a day that runs anyway) or `business_day`
    /// (always a business day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_closed: Option<OnClosed>,
    /// Overlap, lateness and failure policies.
    #[serde(default)]
    pub policies: RunPolicies,
    /// `false` pauses the schedule.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

impl Schedule {
    /// Reads and validates one schedule (as the CLI sends it to the function); fields are named
    /// relative to the schedule (`calendar.closed[0].dates`).
    pub fn from_value(value: Value) -> Result<Self, FileError> {
        let schedule: Schedule = serde_path_to_error::deserialize(value).map_err(path_error)?;
        schedule.check()?;
        Ok(schedule)
    }

    /// The checks serde cannot express: values in range and combinations that would not do
    /// what they say.
    fn check(&self) -> Result<(), FileError> {
        match &self.recurrence {
            Recurrence::Weekly(days) if days.is_empty() => {
                return Err(FileError::field("recurrence.weekly", "names no weekday"));
            }
            Recurrence::Weekly(days) => {
                if let Some(day) = first_repeat(days) {
                    return Err(FileError::field(
                        "recurrence.weekly",
                        format!("names `{}` twice", day.code()),
                    ));
                }
            }
            Recurrence::Monthly(day) if !(1..=31).contains(day) => {
                return Err(FileError::field(
                    "recurrence.monthly",
                    "must be a day of the month, 1 to 31",
                ));
            }
            Recurrence::Daily if self.on_closed.is_some_and(|o| o != OnClosed::Skip) => {
                return Err(FileError::field(
                    "on_closed",
                    "cannot shift a daily schedule: every closed day would move onto a business day that runs anyway; use skip",
                ));
            }
            Recurrence::BusinessDay(_) if self.on_closed.is_some() => {
                return Err(FileError::field(
                    "on_closed",
                    "has no effect with business_day, which is always a business day; remove it",
                ));
            }
            _ => {}
        }
        if let Some(months) = &self.months {
            if months.is_empty() {
                return Err(FileError::field(
                    "months",
                    "names no month; remove it for every month",
                ));
            }
            if let Some(month) = months.iter().find(|m| !(1..=12).contains(*m)) {
                return Err(FileError::field(
                    "months",
                    format!("{month} is not a month, 1 to 12"),
                ));
            }
            if let Some(month) = first_repeat(months) {
                return Err(FileError::field("months", format!("names {month} twice")));
            }
        }
        let calendar = &self.calendar;
        let closed_weekdays: std::collections::BTreeSet<_> =
            calendar.closed_weekdays.iter().collect();
        if closed_weekdays.len() == 7 && calendar.open.is_empty() {
            return Err(FileError::field(
                "calendar.closed_weekdays",
                "closes every day of the week",
            ));
        }
        for (list, days) in [("closed", &calendar.closed), ("open", &calendar.open)] {
            if let Some(i) = days.iter().position(|d| d.label.trim().is_empty()) {
                return Err(FileError::field(
                    format!("calendar.{list}[{i}].label"),
                    "must not be empty",
                ));
            }
        }
        if !(1..=100).contains(&self.policies.failure_breaker) {
            return Err(FileError::field(
                "policies.failure_breaker",
                "must be 1 to 100",
            ));
        }
        if self
            .policies
            .max_run_seconds
            .is_some_and(|s| !(1..=2_592_000).contains(&s))
        {
            return Err(FileError::field(
                "policies.max_run_seconds",
                "must be 1 to 2592000 seconds",
            ));
        }
        if let Some(rerun) = &self.policies.rerun {
            rerun.check().map_err(|(field, reason)| {
                FileError::field(format!("policies.rerun.{field}"), reason)
            })?;
        }
        Ok(())
    }

    /// The EventBridge Scheduler expression for this schedule, with `time_zone` as its
    /// `ScheduleExpressionTimezone`: every day at the time of day. Always daily, whatever the
    /// recurrence, because a shifted occurrence may run on any day; [`crate::decide_tick`]
    /// decides per tick.
    pub fn scheduler_expression(&self) -> String {
        format!("cron({} {} * * ? *)", self.at.0.minute(), self.at.0.hour())
    }

    /// The recurrence, calendar and closed-day policy that decide which days run.
    pub fn rule(&self) -> Rule<'_> {
        Rule {
            recurrence: &self.recurrence,
            months: self.months.as_deref(),
            on_closed: self.on_closed.unwrap_or_default(),
            calendar: &self.calendar,
        }
    }
}

/// Run policies, each with a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunPolicies {
    /// When the previous run of this schedule is still running: `skip` this one or `allow` both.
    #[serde(default)]
    pub overlap: Overlap,
    /// A delivery later than this after its scheduled time sends nothing (`Schedule.TooLate`).
    #[serde(default)]
    pub max_lateness: Lateness,
    /// After this many consecutive failed runs the schedule pauses itself (1 to 100).
    #[serde(default = "failure_breaker_default")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_breaker: u8,
    /// The maximum run time of each run's BOT job in seconds (1 to 2592000): a job still
    /// running past it when looked at is suspended and the run ends `overrun`
    /// (`Job.Overrun`). A request's own `max_run_seconds` wins; the stack default applies when
    /// both are absent (docs/overrun.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_592_000))]
    pub max_run_seconds: Option<u32>,
    /// Run the BOT again when a run's job ended failed (status 1): the same fields and bounds as
    /// an execute request's `rerun`. Run by the RunBot / RunBotCallback state machines' loop (the
    /// tick hands it on); a schedule that targets the function is refused at its tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<RerunPolicy>,
}

fn failure_breaker_default() -> u8 {
    3
}

impl Default for RunPolicies {
    fn default() -> Self {
        RunPolicies {
            overlap: Overlap::default(),
            max_lateness: Lateness::default(),
            failure_breaker: failure_breaker_default(),
            max_run_seconds: None,
            rerun: None,
        }
    }
}

impl RunPolicies {
    /// Whether a delivery at `now` of the tick scheduled at `scheduled` is too late. Lateness
    /// is measured from the tick's scheduled time (the delivery delay), not from a shifted
    /// run's nominal date.
    pub fn too_late(&self, scheduled: Timestamp, now: Timestamp) -> bool {
        now.duration_since(scheduled) > self.max_lateness.0
    }
}

/// What to do when the previous run is still running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Skip this run.
    #[default]
    Skip,
    /// Run anyway.
    Allow,
}

/// A schedule name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ScheduleName(String);

impl ScheduleName {
    /// The longest name EventBridge Scheduler accepts.
    pub const MAX_LEN: usize = 64;

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScheduleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ScheduleName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.chars().all(allowed) {
            return Err(format!(
                "`{}` is not a schedule name: 1 to {} of A-Z a-z 0-9 - _ .",
                text.chars().take(80).collect::<String>(),
                Self::MAX_LEN
            ));
        }
        Ok(ScheduleName(text.to_owned()))
    }
}

impl JsonSchema for ScheduleName {
    fn schema_name() -> Cow<'static, str> {
        "ScheduleName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"})
    }
}

/// A time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay(pub Time);

impl FromStr for TimeOfDay {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text.split_once(':').and_then(|(hour, minute)| {
            if hour.len() != 2 || minute.len() != 2 {
                return None;
            }
            Time::new(hour.parse().ok()?, minute.parse().ok()?, 0, 0).ok()
        });
        parsed.map(TimeOfDay).ok_or_else(|| {
            format!(
                "`{}` is not a time of day HH:MM (00:00 to 23:59)",
                text.chars().take(40).collect::<String>()
            )
        })
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0.hour(), self.0.minute())
    }
}

impl JsonSchema for TimeOfDay {
    fn schema_name() -> Cow<'static, str> {
        "TimeOfDay".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"})
    }
}

/// An IANA time zone from the compiled-in database.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// The default: Japan.
    pub const DEFAULT: &str = "Asia/Tokyo";

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time zone.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Default for Zone {
    fn default() -> Self {
        // The bundled database always has Asia/Tokyo (a test checks); the fixed +09:00 offset is
        // the same zone (Japan has had no DST since 1951).
        let tz = TimeZone::get(Self::DEFAULT)
            .unwrap_or_else(|_| TimeZone::fixed(jiff::tz::Offset::constant(9)));
        Zone {
            name: Self::DEFAULT.to_owned(),
            tz,
        }
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match TimeZone::get(name) {
            Ok(tz) => Ok(Zone {
                name: name.to_owned(),
                tz,
            }),
            Err(_) => Err(format!(
                "`{}` is not a known IANA time zone (e.g. Asia/Tokyo)",
                name.chars().take(80).collect::<String>()
            )),
        }
    }
}

impl JsonSchema for Zone {
    fn schema_name() -> Cow<'static, str> {
        "TimeZone".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "default": Zone::DEFAULT, "examples": ["Asia/Tokyo"]})
    }
}

/// A BOT execution endpoint URL. Only its shape is checked here; the function and the CLI check
/// it against the configured Cloud BOT API base before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotEndpoint(url::Url);

impl BotEndpoint {
    /// The URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl FromStr for BotEndpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(text).map_err(|error| format!("not a URL: {error}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err("must be an http(s) URL with a host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must have no query or fragment".to_owned());
        }
        if !url.path().ends_with("/jobs") || !url.path().contains("/bots/") {
            return Err(
                "must be a BOT execution endpoint, `{api base}/{public_id}/bots/{bot_id}/jobs`"
                    .to_owned(),
            );
        }
        Ok(BotEndpoint(url))
    }
}

impl fmt::Display for BotEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl JsonSchema for BotEndpoint {
    fn schema_name() -> Cow<'static, str> {
        "BotEndpoint".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "uri", "pattern": "^https?://[^?#]+/bots/[^?#]+/jobs$"})
    }
}

/// The largest lateness accepted: EventBridge Scheduler keeps retrying a delivery for at most
/// 24 hours (`MaximumEventAgeInSeconds` 86,400).
pub const MAX_LATENESS: SignedDuration = SignedDuration::from_hours(24);

/// How late a delivery may be, e.g. `30m`, `1h`, `2h 30m` (default 1 hour, at most 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness(pub SignedDuration);

impl Default for Lateness {
    fn default() -> Self {
        Lateness(SignedDuration::from_hours(1))
    }
}

impl FromStr for Lateness {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let duration: SignedDuration = text.parse().map_err(|_| {
            format!(
                "`{}` is not a duration like 30m or 1h",
                text.chars().take(40).collect::<String>()
            )
        })?;
        if duration <= SignedDuration::ZERO || duration > MAX_LATENESS {
            return Err("must be more than 0 and at most 24h".to_owned());
        }
        Ok(Lateness(duration))
    }
}

impl fmt::Display for Lateness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl JsonSchema for Lateness {
    fn schema_name() -> Cow<'static, str> {
        "Lateness".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "default": "1h", "examples": ["30m", "2h"]})
    }
}

/// String-typed values: parsed with `FromStr`, written back with `Display`.
macro_rules! string_serde {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<'de, str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_serde!(ScheduleName, TimeOfDay, Zone, BotEndpoint, Lateness);

macro_rules! display_serialize {
    ($($ty:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    )*};
}
display_serialize!(TimeOfDay, BotEndpoint, Lateness);

impl Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

/// A schedule file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The text is not YAML or JSON.
    #[error("not valid {format}: {message}")]
    Syntax {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message (with the line and column).
        message: String,
    },
    /// A field is unknown, missing, of the wrong type or invalid.
    #[error("field `{field}`: {reason}")]
    Field {
        /// The path of the field, e.g. `schedules[2].calendar.closed[0].dates`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl FileError {
    fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FileError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl ScheduleFile {
    /// Reads and validates a JSON schedule file.
    pub fn from_json(text: &str) -> Result<Self, FileError> {
        let value: Value = serde_json::from_str(text).map_err(|error| FileError::Syntax {
            format: "JSON",
            message: error.to_string(),
        })?;
        Self::from_value(value)
    }

    /// Reads and validates a YAML schedule file (YAML 1.2; anchors and aliases allowed).
    #[cfg(feature = "yaml")]
    pub fn from_yaml(text: &str) -> Result<Self, FileError> {
        let value: Value = serde_saphyr::from_str(text).map_err(|error| FileError::Syntax {
            format: "YAML",
            message: error.to_string(),
        })?;
        Self::from_value(value)
    }

    /// Validates a schedule file already parsed into JSON values.
    pub fn from_value(value: Value) -> Result<Self, FileError> {
        let file: ScheduleFile = serde_path_to_error::deserialize(value).map_err(path_error)?;
        file.validate()?;
        Ok(file)
    }

    /// The file-wide checks (the version, unique names), then each schedule's.
    fn validate(&self) -> Result<(), FileError> {
        if self.version != FILE_VERSION {
            return Err(FileError::field(
                "version",
                format!("must be {FILE_VERSION}"),
            ));
        }
        for (index, schedule) in self.schedules.iter().enumerate() {
            let at = |field: &str| format!("schedules[{index}].{field}");
            if let Some(first) = self.schedules[..index]
                .iter()
                .position(|s| s.name == schedule.name)
            {
                return Err(FileError::field(
                    at("name"),
                    format!(
                        "`{}` is already the name of schedules[{first}]",
                        schedule.name
                    ),
                ));
            }
            schedule.check().map_err(|error| match error {
                FileError::Field { field, reason } => FileError::Field {
                    field: at(&field),
                    reason,
                },
                other => other,
            })?;
        }
        Ok(())
    }
}

/// The first item that repeats an earlier one.
fn first_repeat<T: PartialEq>(items: &[T]) -> Option<&T> {
    items
        .iter()
        .enumerate()
        .find_map(|(i, item)| items[..i].contains(item).then_some(item))
}

/// A serde error with the path of the field it is about.
fn path_error(error: serde_path_to_error::Error<serde_json::Error>) -> FileError {
    let field = error.path().to_string();
    let field = if field == "." {
        "(file)".to_owned()
    } else {
        field
    };
    FileError::field(field, error.into_inner().to_string())
}

/// The JSON Schema of the schedule file, generated from the model.
pub fn json_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(ScheduleFile)).unwrap_or_default()
}

#[cfg(test)]
mod tests;
