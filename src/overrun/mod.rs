//! Maximum run time (issue 22): how long a job has been running, the maximum that applies to
//! its run, and the error a run that overran ends with. Pure values; the suspend itself is
//! `Service::watch_running` (src/service/overrun.rs). Where the maximum comes from and when it
//! is looked at: docs/overrun.md.

use std::time::{Duration, SystemTime};

use jiff::Timestamp;

use crate::cloudbot::{Cause, CloudBotError, Job};

/// Largest maximum run time accepted (seconds), per request and for the stack default: 30
/// days, past any BOT run Cloud BOT plausibly allows; it only bounds a typo.
pub const MAX_RUN_SECONDS_LIMIT: u64 = 2_592_000;

/// The request field that sets a run's maximum (execute only).
pub const FIELD: &str = "max_run_seconds";

/// How long `job` has been running at `now`: Cloud BOT's `elapsed_time` when it gives one,
/// else the time since its `start_time`; `None` when it tells neither (nothing is guessed).
pub fn running_for(job: &Job, now: SystemTime) -> Option<Duration> {
    if let Some(elapsed) = job.elapsed_time.and_then(|s| u64::try_from(s).ok()) {
        return Some(Duration::from_secs(elapsed));
    }
    let started = job.start_time.as_deref()?.parse::<Timestamp>().ok()?;
    let now = Timestamp::try_from(now).ok()?;
    let since = now.duration_since(started);
    Some(Duration::try_from(since).unwrap_or(Duration::ZERO))
}

/// Where a run's maximum came from (said in the error and the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The request that started the run (`max_run_seconds`), as the run ledger recorded it.
    Run,
    /// The stack default (`CLOUDBOT_MAX_RUN_SECONDS`).
    Default,
}

impl Source {
    /// `the run's max_run_seconds` or `the stack default`.
    pub fn label(self) -> &'static str {
        match self {
            Source::Run => "the run's max_run_seconds",
            Source::Default => "the stack default CLOUDBOT_MAX_RUN_SECONDS",
        }
    }
}

/// The maximum that applies to a run: the one its request recorded, else the stack default;
/// `None` when neither is set.
pub fn maximum(
    recorded: Option<Duration>,
    default: Option<Duration>,
) -> Option<(Duration, Source)> {
    recorded
        .map(|max| (max, Source::Run))
        .or_else(|| default.map(|max| (max, Source::Default)))
}

/// True when a job that has run `running` has passed `max` (a job at exactly its maximum is
/// still within it).
pub fn overran(running: Duration, max: Duration) -> bool {
    running > max
}

/// True when a suspend that failed with `error` provably did not suspend the job: Cloud BOT
/// answered with a refusal (a 4xx, or a 3xx it does not document), or nothing was sent. Then
/// the run's suspend mark is taken away (the job runs on, and its own end is what it reads). A suspend that may have reached
/// Cloud BOT without a usable answer (a 5xx, a timeout, a reset, an unreadable answer) keeps
/// the mark: the job may be suspended, and reads `error` if it is (docs/overrun.md).
pub fn suspend_not_done(error: &CloudBotError) -> bool {
    match error {
        CloudBotError::Unavailable { cause, .. } => *cause == Cause::Connect,
        CloudBotError::OutcomeUnknown { .. } | CloudBotError::InvalidResponse { .. } => false,
        CloudBotError::UnexpectedStatus { status } => *status < 500,
        _ => true,
    }
}

/// A run ended because it passed its maximum run time, or could not be made to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrunError {
    /// The job ran longer than its maximum: it was suspended and the run ended as overrun.
    #[error(
        "the job ran {running_s} s, longer than its maximum of {max_s} s ({from}): it was \
         suspended and the run ended as overrun (job status after the suspend: {status})",
        from = .max_from.label()
    )]
    Overrun {
        /// Seconds it had run when it was looked at.
        running_s: u64,
        /// The maximum, in seconds.
        max_s: u64,
        /// Where the maximum came from.
        max_from: Source,
        /// The job's status label as re-read after the suspend.
        status: &'static str,
    },
    /// The job passed its maximum but Cloud BOT refused the suspend with 403.
    #[error(
        "the job ran {running_s} s, longer than its maximum of {max_s} s, but Cloud BOT refused \
         to suspend it (HTTP 403): the access token needs the Suspend permission (docs/overrun.md); \
         the job is still running"
    )]
    SuspendForbidden {
        /// Seconds it had run when it was looked at.
        running_s: u64,
        /// The maximum, in seconds.
        max_s: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(elapsed: Option<i64>, start: Option<&str>) -> Job {
        let mut job: Job =
            serde_json::from_value(serde_json::json!({"job_id": "j", "status": 2})).unwrap();
        job.elapsed_time = elapsed;
        job.start_time = start.map(str::to_owned);
        job
    }

    #[test]
    fn the_running_time_is_cloud_bots_elapsed_else_since_its_start_else_unknown() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_050_900);
        assert_eq!(
            running_for(&job(Some(42), Some("2026-11-30T15:00:00Z")), now),
            Some(Duration::from_secs(42))
        );
        // 2026-11-30T15:00:00Z is 1_796_050_800.
        assert_eq!(
            running_for(&job(None, Some("2026-11-30T15:00:00Z")), now),
            Some(Duration::from_secs(100))
        );
        assert_eq!(running_for(&job(None, Some("not a time")), now), None);
        assert_eq!(running_for(&job(None, None), now), None);
    }

    #[test]
    fn the_runs_own_maximum_wins_over_the_default_and_only_past_it_is_an_overrun() {
        let (s, m) = (Duration::from_secs, Duration::from_secs(60));
        assert_eq!(maximum(Some(m), Some(s(5))), Some((m, Source::Run)));
        assert_eq!(maximum(None, Some(m)), Some((m, Source::Default)));
        assert_eq!(maximum(None, None), None);
        assert!(!overran(s(60), m));
        assert!(overran(s(61), m));
    }

    #[test]
    fn the_forbidden_suspend_names_the_permission() {
        let text = OverrunError::SuspendForbidden {
            running_s: 70,
            max_s: 60,
        }
        .to_string();
        assert!(text.contains("Suspend permission"), "{text}");
    }

    #[test]
    fn only_a_refused_or_unsent_suspend_takes_the_mark_away() {
        let refused = [
            CloudBotError::Forbidden,
            CloudBotError::Unauthorized,
            CloudBotError::NotFound,
            CloudBotError::BadRequest { message: None },
            CloudBotError::RateLimited { retry_after: None },
            CloudBotError::UnexpectedStatus { status: 409 },
            CloudBotError::UnexpectedStatus { status: 302 },
            CloudBotError::Unavailable {
                cause: Cause::Connect,
                retry_after: None,
            },
            CloudBotError::DeadlineExceeded,
            CloudBotError::InvalidCredentials,
        ];
        for error in &refused {
            assert!(suspend_not_done(error), "{error:?}");
        }
        let maybe = [
            CloudBotError::Unavailable {
                cause: Cause::Status(503),
                retry_after: None,
            },
            CloudBotError::Unavailable {
                cause: Cause::Timeout,
                retry_after: None,
            },
            CloudBotError::Unavailable {
                cause: Cause::Transport,
                retry_after: None,
            },
            CloudBotError::Unavailable {
                cause: Cause::Body,
                retry_after: None,
            },
            CloudBotError::InvalidResponse {
                status: 200,
                detail: "body is not a job object",
            },
        ];
        for error in &maybe {
            assert!(!suspend_not_done(error), "{error:?}");
        }
    }
}
