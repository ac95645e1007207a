//! The end of a run as the ledger recorded it: what the one learner that recorded the end
//! (`Learned::EndRecorded`) hands on to the job-finished event (`crate::job_events`). Built from
//! the end's own write and the record the conditional write returned (`ReturnValues ALL_NEW`,
//! no read of its own), so who started the run is known even when a poll learns the end.

use super::run::{End, ORPHANED, OVERRUN, RunKey, RunWrite};

/// What the record held after an end's write, about who started the run (the start's
/// attributes; all absent when the start was never written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedStart {
    /// `started_at` (epoch ms).
    pub started_at_ms: Option<u64>,
    /// `bot`: `<public_id>/<bot_id>`.
    pub bot: Option<String>,
    /// `trigger`: who started it (docs/ledger.md).
    pub trigger: Option<String>,
    /// `schedule`: the schedule's name, for a scheduled run.
    pub schedule: Option<String>,
    /// `nominal_time`: the schedule's occurrence (RFC 3339).
    pub nominal_time: Option<String>,
    /// `month`: the start's month (`YYYY-MM`, JST), whoever wrote it first.
    pub month: Option<String>,
    /// `end_status` as the end's write left it: an `error` end of a run marked as being
    /// suspended reads the mark's status (docs/overrun.md, "A callback during the suspend").
    pub end_status: Option<String>,
}

/// A run whose end this learner recorded (exactly one learner per run gets one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedRun {
    /// The run's key.
    pub run: RunKey,
    /// The job reference endpoint.
    pub job_endpoint: String,
    /// `<public_id>/<bot_id>`, when known.
    pub bot: Option<String>,
    /// The start (epoch ms): the record's, else this write's.
    pub started_at_ms: u64,
    /// Who started it, when the start was recorded.
    pub trigger: Option<String>,
    /// The schedule's name, for a scheduled run.
    pub schedule: Option<String>,
    /// The schedule's occurrence, with `schedule`.
    pub nominal_time: Option<String>,
    /// The run's month (`YYYY-MM`, JST) as the record holds it: its BOT-seconds count for it
    /// (docs/usage.md).
    pub month: String,
    /// The end as recorded.
    pub end: End,
}

impl EndedRun {
    /// The run `write` ended, completed by what the record held (`recorded`); `None` when the
    /// write carried no end.
    pub fn of(write: &RunWrite, recorded: &RecordedStart) -> Option<Self> {
        let end = write.end.clone()?;
        let origin = write.origin.as_ref();
        Some(Self {
            run: write.run.clone(),
            job_endpoint: write.job_endpoint.clone(),
            bot: recorded.bot.clone().or_else(|| write.bot.clone()),
            started_at_ms: recorded.started_at_ms.unwrap_or(write.started_at_ms),
            trigger: recorded
                .trigger
                .clone()
                .or_else(|| origin.map(|o| o.trigger.to_owned()))
                .or_else(|| write.trigger_if_unset.map(str::to_owned)),
            schedule: recorded
                .schedule
                .clone()
                .or_else(|| origin.and_then(|o| o.schedule.clone())),
            nominal_time: recorded
                .nominal_time
                .clone()
                .or_else(|| origin.and_then(|o| o.nominal_time.clone())),
            month: recorded
                .month
                .clone()
                .unwrap_or_else(|| write.month.clone()),
            end: End {
                status: recorded_status(recorded.end_status.as_deref()).unwrap_or(end.status),
                ..end
            },
        })
    }
}

/// The end status a suspend mark turned an end into ([`OVERRUN`] or [`ORPHANED`]), as the
/// record holds it; `None` for any other (the write's own status stands).
fn recorded_status(recorded: Option<&str>) -> Option<&'static str> {
    [OVERRUN, ORPHANED]
        .into_iter()
        .find(|status| recorded == Some(*status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudbot::{ApiBase, JobEndpoint, JobStatus};
    use crate::ledger::Observed;

    fn write(status: JobStatus) -> RunWrite {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        let job = JobEndpoint::parse(&base, "https://api.c-bot.pro/demo/jobs/j-1", "j").unwrap();
        let observed = Observed {
            status,
            bot_id: "echo_bot",
            start_time: None,
            elapsed_s: Some(4),
            message: Some("done"),
            output_omitted: false,
        };
        RunWrite::of(&job, &observed, None, 1_796_050_800_000, 100)
    }

    #[test]
    fn the_record_tells_who_started_the_run_a_poll_ended() {
        let recorded = RecordedStart {
            started_at_ms: Some(1_796_050_000_000),
            bot: None,
            trigger: Some("scheduler".into()),
            schedule: Some("nightly".into()),
            nominal_time: Some("2026-12-01T00:00:00Z".into()),
            month: None,
            end_status: Some("succeeded".into()),
        };
        let ended = EndedRun::of(&write(JobStatus::Succeeded), &recorded).unwrap();
        assert_eq!(ended.started_at_ms, 1_796_050_000_000);
        assert_eq!(ended.bot.as_deref(), Some("demo/echo_bot"));
        assert_eq!(ended.trigger.as_deref(), Some("scheduler"));
        assert_eq!(ended.schedule.as_deref(), Some("nightly"));
        assert_eq!((ended.end.status, ended.end.elapsed_s), ("succeeded", 4));
    }

    #[test]
    fn without_a_recorded_start_the_write_is_all_there_is() {
        let ended = EndedRun::of(&write(JobStatus::Error), &RecordedStart::default()).unwrap();
        assert_eq!(ended.started_at_ms, 1_796_050_800_000);
        assert_eq!(ended.trigger, None);
        assert!(EndedRun::of(&write(JobStatus::Executing), &RecordedStart::default()).is_none());
    }

    #[test]
    fn an_error_end_of_a_run_being_suspended_is_told_as_the_suspends_status() {
        // The record's end status after the write is the mark's (src/ledger/dynamodb.rs).
        let recorded = RecordedStart {
            end_status: Some(OVERRUN.into()),
            ..RecordedStart::default()
        };
        let ended = EndedRun::of(&write(JobStatus::Error), &recorded).unwrap();
        assert_eq!((ended.end.status, ended.end.elapsed_s), (OVERRUN, 4));
        assert_eq!(ended.end.message.as_deref(), Some("done"));
        // Anything else the record says leaves the write's own status.
        for other in [None, Some("error"), Some("something new")] {
            let recorded = RecordedStart {
                end_status: other.map(str::to_owned),
                ..RecordedStart::default()
            };
            let ended = EndedRun::of(&write(JobStatus::Error), &recorded).unwrap();
            assert_eq!(ended.end.status, "error", "{other:?}");
        }
    }
}
