//! The contract between the CLI, EventBridge Scheduler and the function for a schedule of the
//! schedule file: what `cloudbot schedules apply` puts in a schedule's target input, how a
//! managed schedule is recognised, and the names of the schedule's state record (last outcome,
//! consecutive failures, pause) that the function writes and the CLI reads. One home for these
//! names; docs/schedules.md describes them.

use serde_json::{Map, Value, json};

use crate::schedule::Schedule;

/// Replaced by EventBridge Scheduler with the schedule's ARN (the same on every attempt).
pub const SCHEDULE_ARN_PLACEHOLDER: &str = "<aws.scheduler.schedule-arn>";
/// Replaced by EventBridge Scheduler with the occurrence's scheduled time (the same on every
/// attempt of one tick).
pub const SCHEDULED_TIME_PLACEHOLDER: &str = "<aws.scheduler.scheduled-time>";

/// The start of the `Description` of every schedule `apply` manages, followed by the SHA-256
/// (64 lowercase hex digits) of everything `apply` set on it, so a schedule changed by hand since
/// is recognised (its live fields no longer hash to the marker). A description, not a tag:
/// EventBridge Scheduler's `TagResource` accepts schedule groups only, not schedules.
pub const MANAGED_MARKER: &str = "cloudbot-trigger managed, sha256=";

/// The `Description` that marks a managed schedule whose applied fields hash to `sha256_hex`.
pub fn managed_description(sha256_hex: &str) -> String {
    format!("{MANAGED_MARKER}{sha256_hex}")
}

/// The SHA-256 (hex) a managed schedule's `Description` carries; `None` when the description is
/// not a marker (the schedule is not managed by `apply`).
pub fn managed_digest(description: &str) -> Option<&str> {
    let digest = description.strip_prefix(MANAGED_MARKER)?;
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    (digest.len() == 64 && digest.chars().all(is_hex)).then_some(digest)
}

/// The target input of `schedule`: the Scheduler envelope (its key attributes), the schedule's
/// definition (the function decides each tick from it, no lookup) and the execute request.
///
/// `{"schedule": {"schedule_arn": "<aws.scheduler.schedule-arn>", "scheduled_time":
/// "<aws.scheduler.scheduled-time>", "definition": {...}}, "request": {"bot_endpoint": ...,
/// "input": {...}}}`
pub fn target_input(schedule: &Schedule) -> Value {
    let mut request = Map::new();
    request.insert(
        "bot_endpoint".into(),
        Value::String(schedule.bot_endpoint.url().to_string()),
    );
    if let Some(input) = &schedule.input {
        request.insert("input".into(), Value::Object(input.clone()));
    }
    json!({
        "schedule": {
            "schedule_arn": SCHEDULE_ARN_PLACEHOLDER,
            "scheduled_time": SCHEDULED_TIME_PLACEHOLDER,
            "definition": schedule,
        },
        "request": request,
    })
}

/// The schedule's state record in the function's table (partition key `record_key`).
pub mod state {
    /// Its key: this prefix and the schedule's name (names are unique in the stack's group).
    pub const KEY_PREFIX: &str = "schedule:";
    /// The endpoint of the last job a tick started (S).
    pub const LAST_JOB: &str = "last_job";
    /// The nominal occurrence of that run: its instant, RFC 3339 UTC (the `@` part of the
    /// run's idempotency key, e.g. `2026-10-25T00:00:00Z`) (S).
    pub const LAST_NOMINAL: &str = "last_nominal";
    /// The last outcome learnt: `started`, `succeeded`, `failed`, `skipped`, `too_late`,
    /// `paused` (S).
    pub const LAST_OUTCOME: &str = "last_outcome";
    /// When it was learnt, epoch seconds (N).
    pub const LAST_OUTCOME_AT: &str = "last_outcome_at";
    /// The breaker's threshold N of the schedule as last decided (N); written by the function
    /// whenever a tick is decided to run, so its presence also marks a managed schedule.
    pub const FAILURE_BREAKER: &str = "failure_breaker";
    /// Consecutive runs whose BOT job ended failed (N); 0 after a success or a resume.
    pub const CONSECUTIVE_FAILURES: &str = "consecutive_failures";
    /// The last job whose end was counted (S), so a job is counted once.
    pub const COUNTED_JOB: &str = "counted_job";
    /// The nominal occurrence (as [`LAST_NOMINAL`]) whose failed job was counted last (S), so a
    /// run's re-run attempts that fail again count one failed run, not one per job; removed by
    /// a counted success.
    pub const FAILED_NOMINAL: &str = "failed_nominal";
    /// When the breaker paused the schedule, epoch seconds (N); absent when not paused by it.
    pub const PAUSED_AT: &str = "paused_at";
    /// Why it was paused (S).
    pub const PAUSE_REASON: &str = "pause_reason";
    /// When `cloudbot schedules resume` last resumed it, epoch seconds (N).
    pub const RESUMED_AT: &str = "resumed_at";

    /// The record key of the schedule `name`.
    pub fn key(name: &str) -> String {
        format!("{KEY_PREFIX}{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_input_carries_the_key_attributes_the_definition_and_the_request() {
        let schedule = Schedule::from_value(json!({
            "name": "daily-report",
            "at": "09:00",
            "recurrence": "daily",
            "bot_endpoint": "https://api.c-bot.pro/demo/bots/echo_bot/jobs",
            "input": {"a": 1},
        }))
        .unwrap();
        let input = target_input(&schedule);
        assert_eq!(input["schedule"]["schedule_arn"], SCHEDULE_ARN_PLACEHOLDER);
        assert_eq!(
            input["schedule"]["scheduled_time"],
            SCHEDULED_TIME_PLACEHOLDER
        );
        assert_eq!(
            Schedule::from_value(input["schedule"]["definition"].clone()).unwrap(),
            schedule
        );
        assert_eq!(
            input["request"],
            json!({"bot_endpoint": "https://api.c-bot.pro/demo/bots/echo_bot/jobs", "input": {"a": 1}})
        );
        assert_eq!(state::key("daily-report"), "schedule:daily-report");
    }

    #[test]
    fn a_managed_description_carries_its_digest_and_nothing_else_is_one() {
        let digest = "0123456789abcdef".repeat(4);
        assert_eq!(
            managed_digest(&managed_description(&digest)),
            Some(digest.as_str())
        );
        for other in [
            "",
            "a schedule made by hand",
            &format!("{MANAGED_MARKER}{}", &digest[..63]),
            &format!("{MANAGED_MARKER}{}", digest.to_uppercase()),
            &format!("{MANAGED_MARKER}{digest} edited"),
        ] {
            assert_eq!(managed_digest(other), None, "{other}");
        }
    }
}
