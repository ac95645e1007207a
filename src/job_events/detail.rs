//! The detail types of job-finished events and their details, as pure values. The detail is
//! a summary of the run (docs/events.md, "Detail"): never a secret, a task token, a callback
//! id, nor the BOT's input or output data.

use jiff::Timestamp;
use serde::Serialize;

use super::Event;
use crate::ledger::EndedRun;

/// The `source` of every event the function puts.
pub const SOURCE: &str = "cloudbot-trigger";

/// The outcome an event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailType {
    /// The job ended with status 0.
    Succeeded,
    /// The job ended with status 1 (Cloud BOT reads a job stopped by its suspend API as 1 too,
    /// unless the suspending path recorded the end as `suspended`).
    Failed,
    /// The run's end was recorded as `overrun`: this product suspended the job past its
    /// maximum run time (docs/overrun.md).
    Overrun,
    /// The run's end was recorded as `orphaned`: this product suspended the job because the
    /// workflow that started it failed, timed out or was stopped (docs/orphans.md).
    Suspended,
    /// Cloud BOT refused the execute: provably no job was started.
    FailedToStart,
}

/// Every detail type with what it announces, in documentation order: docs/events.md's table
/// is checked against this list (tests/it/lambda/docs.rs).
pub const DETAIL_TYPES: &[(DetailType, &str)] = &[
    (
        DetailType::Succeeded,
        "a BOT job ended successfully (status 0)",
    ),
    (
        DetailType::Failed,
        "a BOT job ended in error (status 1; presumably also a job suspended from Cloud BOT's \
         console)",
    ),
    (
        DetailType::Overrun,
        "a BOT job was suspended by this product past its maximum run time (its ledger end \
         status `overrun`)",
    ),
    (
        DetailType::Suspended,
        "a BOT job was suspended by this product because the workflow that started it failed, \
         timed out or was stopped (its ledger end status `orphaned`)",
    ),
    (
        DetailType::FailedToStart,
        "Cloud BOT refused an execute: provably no job was started (no run, no ledger record)",
    ),
];

impl DetailType {
    /// The `detail-type` as EventBridge carries it (what a rule matches).
    pub fn name(self) -> &'static str {
        match self {
            DetailType::Succeeded => "BOT Job Succeeded",
            DetailType::Failed => "BOT Job Failed",
            DetailType::Overrun => "BOT Job Overrun",
            DetailType::Suspended => "BOT Job Suspended",
            DetailType::FailedToStart => "BOT Job Failed To Start",
        }
    }

    /// The detail type of a run recorded as ended with `end_status` (the ledger's).
    pub fn of_end(end_status: &str) -> Self {
        match end_status {
            "succeeded" => DetailType::Succeeded,
            crate::ledger::OVERRUN => DetailType::Overrun,
            crate::ledger::ORPHANED => DetailType::Suspended,
            _ => DetailType::Failed,
        }
    }
}

/// The detail of a job's end (docs/events.md, "Detail").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ended<'a> {
    /// The run's key in the ledger: `<public_id>/<job_id>`.
    pub run: &'a str,
    /// `<public_id>/<bot_id>`, when Cloud BOT named it.
    pub bot: Option<&'a str>,
    /// The job reference endpoint.
    pub job_endpoint: &'a str,
    /// `succeeded`, `error` or `overrun`.
    pub status: &'a str,
    /// The start, RFC 3339.
    pub started_at: String,
    /// When the end was learned, RFC 3339.
    pub ended_at: String,
    /// Cloud BOT's elapsed seconds, else the time since the start.
    pub elapsed_s: u64,
    /// Cloud BOT's message (at most the ledger's length).
    pub message: Option<&'a str>,
    /// Who started it (`scheduler`, `api`, …, `cloudbot` for a run started outside AWS);
    /// `null` when the start was never recorded.
    pub trigger: Option<&'a str>,
    /// The schedule's name, for a scheduled run.
    pub schedule: Option<&'a str>,
    /// The schedule's occurrence (RFC 3339), with `schedule`.
    pub nominal_time: Option<&'a str>,
}

impl<'a> Ended<'a> {
    /// The detail of `run`'s end.
    pub fn of(run: &'a EndedRun) -> Self {
        Self {
            run: run.run.as_str(),
            bot: run.bot.as_deref(),
            job_endpoint: &run.job_endpoint,
            status: run.end.status,
            started_at: rfc3339(run.started_at_ms),
            ended_at: rfc3339(run.end.ended_at_ms),
            elapsed_s: run.end.elapsed_s,
            message: run.end.message.as_deref(),
            trigger: run.trigger.as_deref(),
            schedule: run.schedule.as_deref(),
            nominal_time: run.nominal_time.as_deref(),
        }
    }

    /// The event announcing it.
    pub fn event(&self) -> Event {
        Event {
            detail_type: DetailType::of_end(self.status),
            detail: to_json(self),
        }
    }
}

/// The detail of an execute Cloud BOT refused (docs/events.md, "Detail").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotStarted<'a> {
    /// `<public_id>/<bot_id>`.
    pub bot: String,
    /// The BOT execution endpoint.
    pub bot_endpoint: &'a str,
    /// Always `not_started`.
    pub status: &'static str,
    /// The error type of the refusal (docs/errors.md).
    pub error_type: &'static str,
    /// The error's message, as the caller got it.
    pub message: String,
    /// When the refusal came, RFC 3339.
    pub refused_at: String,
    /// Who asked (`scheduler`, `api`, …).
    pub trigger: &'static str,
    /// The schedule's name, for a scheduled run.
    pub schedule: Option<&'a str>,
    /// The schedule's occurrence (RFC 3339), with `schedule`.
    pub nominal_time: Option<&'a str>,
}

impl NotStarted<'_> {
    /// The event announcing it.
    pub fn event(&self) -> Event {
        Event {
            detail_type: DetailType::FailedToStart,
            detail: to_json(self),
        }
    }
}

/// `ms` (epoch ms) as RFC 3339 in UTC, to the millisecond.
pub fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

fn to_json(detail: &impl Serialize) -> String {
    // Plain strings and numbers: serialization cannot fail; an empty object if it ever did.
    serde_json::to_string(detail).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::cloudbot::{ApiBase, JobEndpoint, JobStatus};
    use crate::ledger::{Observed, RecordedStart, RunWrite};

    fn ended(status: JobStatus) -> EndedRun {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        let job = JobEndpoint::parse(&base, "https://api.c-bot.pro/demo/jobs/j-1", "j").unwrap();
        let observed = Observed {
            status,
            bot_id: "echo_bot",
            start_time: None,
            elapsed_s: Some(42),
            message: Some("done"),
            output_omitted: false,
        };
        let write = RunWrite::of(&job, &observed, None, 1_796_050_842_000, 100);
        let recorded = RecordedStart {
            started_at_ms: Some(1_796_050_800_000),
            trigger: Some("scheduler".into()),
            schedule: Some("nightly".into()),
            nominal_time: Some("2026-12-01T00:00:00Z".into()),
            month: None,
            bot: None,
            end_status: None,
        };
        EndedRun::of(&write, &recorded).unwrap()
    }

    #[test]
    fn an_end_is_announced_with_the_documented_detail() {
        let run = ended(JobStatus::Succeeded);
        let event = Ended::of(&run).event();
        assert_eq!(event.detail_type.name(), "BOT Job Succeeded");
        let detail: Value = serde_json::from_str(&event.detail).unwrap();
        assert_eq!(
            detail,
            json!({
                "run": "demo/j-1",
                "bot": "demo/echo_bot",
                "job_endpoint": "https://api.c-bot.pro/demo/jobs/j-1",
                "status": "succeeded",
                "started_at": "2026-11-30T15:00:00Z",
                "ended_at": "2026-11-30T15:00:42Z",
                "elapsed_s": 42,
                "message": "done",
                "trigger": "scheduler",
                "schedule": "nightly",
                "nominal_time": "2026-12-01T00:00:00Z",
            })
        );
        assert_eq!(
            Ended::of(&ended(JobStatus::Error)).event().detail_type,
            DetailType::Failed
        );
    }

    #[test]
    fn each_end_status_has_its_detail_type_and_every_type_is_listed_once() {
        assert_eq!(DetailType::of_end("succeeded"), DetailType::Succeeded);
        assert_eq!(DetailType::of_end("error"), DetailType::Failed);
        assert_eq!(DetailType::of_end("overrun"), DetailType::Overrun);
        assert_eq!(DetailType::of_end("orphaned"), DetailType::Suspended);
        let names: Vec<&str> = DETAIL_TYPES.iter().map(|(t, _)| t.name()).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        // No wildcard: a new variant does not compile here until it is listed.
        for (t, _) in DETAIL_TYPES {
            match t {
                DetailType::Succeeded
                | DetailType::Failed
                | DetailType::Overrun
                | DetailType::Suspended
                | DetailType::FailedToStart => {}
            }
        }
        assert_eq!(DETAIL_TYPES.len(), 5);
    }
}
