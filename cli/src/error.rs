//! What a command can end with: the exit codes (one table, documented in docs/operations.md,
//! "Exit codes") and the errors that lead to them. Messages never contain a credential: they
//! are built from the library's typed errors, whose `Display` is credential-free by design.

use std::process::ExitCode;

use cloudbot_trigger::cloudbot::{CloudBotError, JobStatus};
use cloudbot_trigger::credentials::CredentialsError;
use cloudbot_trigger::error::Classified;

/// The process exit code of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command worked; a followed job succeeded (or, not followed, is running or succeeded).
    Ok = 0,
    /// The job ended in error (status 1).
    JobFailed = 1,
    /// Bad arguments, endpoint, input or configuration: nothing was sent anywhere.
    Usage = 2,
    /// A Cloud BOT or Secrets Manager call failed (for `run`: no job was started), or the
    /// output could not be written.
    CallFailed = 3,
    /// `run` could not learn whether the job started (CloudBot.OutcomeUnknown): check `jobs`.
    OutcomeUnknown = 4,
    /// `--timeout` ran out while the followed job was still running.
    StillRunning = 5,
    /// Interrupted (Ctrl-C) while following; the job itself goes on.
    Interrupted = 130,
}

impl Exit {
    /// The exit code a job state means: an error job fails the command, anything else does not.
    pub fn of_status(status: JobStatus) -> Exit {
        match status {
            JobStatus::Error => Exit::JobFailed,
            JobStatus::Succeeded | JobStatus::Executing | JobStatus::Unknown(_) => Exit::Ok,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Why a command stopped before it could report a result.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or configuration, found before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// The credentials could not be read from Secrets Manager, or are malformed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// A Cloud BOT call failed.
    #[error("{action} failed ({name})", name = source.kind().name)]
    CloudBot {
        /// What was being done, e.g. "starting the BOT".
        action: &'static str,
        /// The client's error.
        #[source]
        source: CloudBotError,
    },
    /// Following stopped before the job ended (timeout or Ctrl-C); the job goes on.
    #[error("stopped following job {job_endpoint} after {waited}: {why}")]
    StoppedFollowing {
        /// The job reference endpoint to continue with.
        job_endpoint: String,
        /// How long it was followed, human readable.
        waited: String,
        /// `--timeout` or Ctrl-C.
        why: &'static str,
        /// Timeout or interrupt.
        exit: Exit,
    },
    /// The result could not be written to stdout (closed pipe, full disk).
    #[error("could not write the output")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// Wraps a Cloud BOT error with what was being done.
    pub fn cloud_bot(action: &'static str) -> impl FnOnce(CloudBotError) -> CliError {
        move |source| CliError::CloudBot { action, source }
    }

    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) | CliError::Credentials(CredentialsError::Invalid(_)) => Exit::Usage,
            CliError::Credentials(CredentialsError::Unavailable(_)) => Exit::CallFailed,
            CliError::CloudBot {
                source: CloudBotError::OutcomeUnknown { .. },
                ..
            } => Exit::OutcomeUnknown,
            CliError::CloudBot { .. } | CliError::Output(_) => Exit::CallFailed,
            CliError::StoppedFollowing { exit, .. } => *exit,
        }
    }

    /// What the operator should do next, when there is more to say than the error itself.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::CloudBot {
                source: CloudBotError::OutcomeUnknown { .. },
                ..
            } => Some(
                "the execute request may have reached Cloud BOT, so a job may or may not have \
                 started. Do not run the BOT again blindly: look for the job with \
                 `cloudbot jobs BOT_ENDPOINT --since 15m`, then follow it with `cloudbot job`.",
            ),
            CliError::CloudBot {
                source: CloudBotError::Unauthorized,
                ..
            } => Some(
                "Cloud BOT rejected the access token / secret key: check the credentials and \
                 that CLOUDBOT_API_BASE is the service they were issued for.",
            ),
            CliError::CloudBot {
                source: CloudBotError::Forbidden,
                ..
            } => Some(
                "the access token lacks the permission (Refer for bots/job/jobs, Execute for run).",
            ),
            CliError::StoppedFollowing { .. } => {
                Some("the job goes on: continue with `cloudbot job JOB_ENDPOINT --follow`.")
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbot_trigger::cloudbot::Cause;

    #[test]
    fn outcome_unknown_has_its_own_exit_code_and_a_hint() {
        let err = CliError::CloudBot {
            action: "starting the BOT",
            source: CloudBotError::OutcomeUnknown {
                cause: Cause::Timeout,
            },
        };
        assert_eq!(err.exit(), Exit::OutcomeUnknown);
        assert!(err.to_string().contains("CloudBot.OutcomeUnknown"));
        assert!(err.hint().is_some_and(|h| h.contains("cloudbot jobs")));
    }

    #[test]
    fn job_states_map_to_exit_codes() {
        assert_eq!(Exit::of_status(JobStatus::Succeeded), Exit::Ok);
        assert_eq!(Exit::of_status(JobStatus::Error), Exit::JobFailed);
        assert_eq!(Exit::of_status(JobStatus::Executing), Exit::Ok);
        assert_eq!(ExitCode::from(Exit::OutcomeUnknown), ExitCode::from(4));
    }
}
