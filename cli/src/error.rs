//! The errors a command can stop with, each with a stable type name (the `type` of the `--json`
//! error document), the exit code it means on its own, and what to do next. How far the command
//! got (`stage.rs`) can turn that exit code into "a job may exist" or "the job's state is
//! unknown": that is decided in `report.rs`.
//!
//! Messages never contain a credential: they are built from the library's typed errors, whose
//! `Display` is credential-free by design.

use cloudbot_trigger::cloudbot::CloudBotError;
use cloudbot_trigger::credentials::CredentialsError;
use cloudbot_trigger::error::Classified;

use crate::exit::Exit;

/// The AWS CLI's own words for a missing region and missing credentials, so operators meet the
/// message they already know.
pub const NO_REGION: &str =
    "You must specify a region. You can also configure your region by running \"aws configure\".";
/// See [`NO_REGION`].
pub const NO_CREDENTIALS: &str =
    "Unable to locate credentials. You can configure credentials by running \"aws configure\".";

/// Why a command stopped before it could report a result.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or configuration, found before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// The AWS configuration (region, credentials) is missing; nothing was sent.
    #[error("{0}")]
    AwsSetup(&'static str),
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
    /// Reading the job still failed after the follow retries (or the error is not retried).
    #[error("reading the job failed ({name}) after {attempts} {tries}",
            name = source.kind().name, tries = if *attempts == 1 { "try" } else { "tries" })]
    ReadFailed {
        /// Reads made (each with the client's own quick retries inside).
        attempts: u32,
        /// The last read's error.
        #[source]
        source: CloudBotError,
    },
    /// `--timeout` ran out while the followed job was still running; the job goes on.
    #[error("stopped following after {waited}: --timeout ran out while the job was running")]
    TimedOut {
        /// How long it was followed, human readable.
        waited: String,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// The function's `resolve_idempotency` could not be invoked, or answered with an error.
    #[error("{0}")]
    Resolve(#[from] crate::resolve::ResolveError),
    /// `rerun`: the function did not start the run again (cli/src/rerun.rs).
    #[error("{0}")]
    Rerun(crate::rerun::RerunError),
    /// An EventBridge Scheduler or DynamoDB call of `schedules` failed.
    #[error(transparent)]
    Aws(#[from] crate::scheduler::AwsError),
    /// The run ledger could not be read, or holds no such run (`runs`).
    #[error("{0}")]
    Ledger(String),
    /// A BOT-done subscribe request whose outcome is unknown (`subscribe`): a subscription may
    /// exist; no job was started or changed.
    #[error("{0}")]
    Subscription(String),
    /// The result could not be written to stdout (closed pipe, full disk).
    #[error("could not write the output")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// Wraps a Cloud BOT error with what was being done.
    pub fn cloud_bot(action: &'static str) -> impl FnOnce(CloudBotError) -> CliError {
        move |source| CliError::CloudBot { action, source }
    }

    /// The stable name of the error: the library's error type for Cloud BOT and credentials
    /// errors (`CloudBot.OutcomeUnknown`, ...), else a `Cli.` / `Aws.` / `Lambda.` name.
    pub fn error_type(&self) -> String {
        match self {
            CliError::Usage(_) => "Cli.Usage".into(),
            CliError::AwsSetup(what) if *what == NO_REGION => "Aws.NoRegion".into(),
            CliError::AwsSetup(_) => "Aws.NoCredentials".into(),
            CliError::Credentials(e) => e.kind().name.into(),
            CliError::CloudBot { source, .. } | CliError::ReadFailed { source, .. } => {
                source.kind().name.into()
            }
            CliError::TimedOut { .. } => "Cli.TimedOut".into(),
            CliError::Interrupted => "Cli.Interrupted".into(),
            CliError::Resolve(e) => e.error_type(),
            CliError::Rerun(e) => e.error_type(),
            CliError::Aws(e) => e.error_type(),
            CliError::Ledger(_) => "Cli.Ledger".into(),
            CliError::Subscription(_) => "Cli.Subscription".into(),
            CliError::Output(_) => "Cli.Output".into(),
        }
    }

    /// The exit code of this error when the command had sent nothing that can start or change
    /// a job (`report.rs` raises it when it had).
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_)
            | CliError::AwsSetup(_)
            | CliError::Credentials(CredentialsError::Invalid(_)) => Exit::Usage,
            CliError::CloudBot {
                source: CloudBotError::OutcomeUnknown { .. },
                ..
            } => Exit::JobMayExist,
            CliError::TimedOut { .. } => Exit::StillRunning,
            CliError::Interrupted => Exit::Interrupted,
            CliError::Resolve(e) => e.exit(),
            CliError::Rerun(e) => e.exit(),
            CliError::Credentials(_)
            | CliError::CloudBot { .. }
            | CliError::ReadFailed { .. }
            | CliError::Aws(_)
            | CliError::Ledger(_)
            | CliError::Subscription(_)
            | CliError::Output(_) => Exit::NotStarted,
        }
    }

    /// What the operator should do about this error itself (the stage adds the job's next
    /// command in `report.rs`).
    pub fn hint(&self) -> Option<&'static str> {
        let source = match self {
            CliError::CloudBot { source, .. } | CliError::ReadFailed { source, .. } => source,
            _ => return None,
        };
        match source {
            CloudBotError::Unauthorized => Some(
                "Cloud BOT rejected the access token / secret key: check the credentials and \
                 that CLOUDBOT_API_BASE is the service they were issued for.",
            ),
            CloudBotError::Forbidden => Some(match self {
                CliError::CloudBot {
                    action: CANCEL_ACTION,
                    ..
                } => {
                    "cancelling needs an access token with the Suspend permission (Cloud BOT \
                     console: API access token settings); this one lacks it, so nothing was \
                     changed."
                }
                CliError::CloudBot {
                    action: EXECUTE_ACTION,
                    ..
                } => "starting a BOT needs an access token with the Execute permission.",
                CliError::CloudBot {
                    action: SUBSCRIBE_ACTION | UNSUBSCRIBE_ACTION,
                    ..
                } => {
                    "subscribing and unsubscribing presumably need an access token with the \
                     Execute permission (inferred: docs/events.md, \"Runs started outside AWS\")."
                }
                _ => "reading needs an access token with the Refer permission.",
            }),
            _ => None,
        }
    }
}

/// The action of `run`'s execute call.
pub const EXECUTE_ACTION: &str = "starting the BOT";
/// The action of `cancel`'s DELETE call.
pub const CANCEL_ACTION: &str = "cancelling the job";
/// The action of `subscribe`'s POST.
pub const SUBSCRIBE_ACTION: &str = "subscribing to the BOT done event";
/// The action of `unsubscribe`'s DELETE.
pub const UNSUBSCRIBE_ACTION: &str = "unsubscribing";

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbot_trigger::cloudbot::Cause;

    #[test]
    fn outcome_unknown_means_a_job_may_exist() {
        let err = CliError::CloudBot {
            action: EXECUTE_ACTION,
            source: CloudBotError::OutcomeUnknown {
                cause: Cause::Timeout,
            },
        };
        assert_eq!(err.exit(), Exit::JobMayExist);
        assert_eq!(err.error_type(), "CloudBot.OutcomeUnknown");
        assert!(err.to_string().contains("CloudBot.OutcomeUnknown"));
    }

    #[test]
    fn a_forbidden_cancel_names_the_suspend_permission() {
        let err = CliError::CloudBot {
            action: CANCEL_ACTION,
            source: CloudBotError::Forbidden,
        };
        assert!(err.hint().unwrap().contains("Suspend"));
        assert_eq!(err.exit(), Exit::NotStarted);
    }
}
