//! Settling a waiting Step Functions task: the small trait the receiver goes through and its
//! `aws-sdk-sfn` adapter (the only code that sees that SDK's types).
//!
//! A task that is already closed is not an error for the receiver: `TaskTimedOut` (the task
//! timed out, or was settled before: AWS answers a second `SendTaskSuccess` this way),
//! `TaskDoesNotExist` (the execution ended) and `InvalidToken` (a token from an older attempt
//! that Step Functions no longer accepts) all mean "nothing left to tell", and the callback is
//! answered 2xx so Cloud BOT stops retrying (its retries are billed as BOT minutes).

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};

use super::id::TaskToken;

/// `SendTaskSuccess.output` limit (256 KiB of UTF-8).
pub const MAX_TASK_OUTPUT: usize = 256 * 1024;
/// `SendTaskFailure.error` limit (characters).
pub const MAX_TASK_ERROR_CHARS: usize = 256;
/// `SendTaskFailure.cause` limit (characters).
pub const MAX_TASK_CAUSE_CHARS: usize = 32_768;

/// How a settle call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Step Functions took the outcome.
    Accepted,
    /// The task was already closed (the error code Step Functions answered).
    AlreadyClosed(&'static str),
}

/// Step Functions could not be told; the task still waits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettleError(pub String);

/// A boxed settle future (the trait is used as `dyn TaskSettler`).
pub type SettleFuture<'a> = Pin<Box<dyn Future<Output = Result<Settled, SettleError>> + Send + 'a>>;

/// Tells a waiting task how its job ended.
pub trait TaskSettler: Send + Sync + Debug {
    /// `SendTaskSuccess` with `output` (JSON, at most [`MAX_TASK_OUTPUT`] bytes).
    fn succeed<'a>(&'a self, token: &'a TaskToken, output: &'a str) -> SettleFuture<'a>;
    /// `SendTaskFailure` with `error` and `cause` (within the limits above).
    fn fail<'a>(&'a self, token: &'a TaskToken, error: &'a str, cause: &'a str)
    -> SettleFuture<'a>;
}

/// The Step Functions adapter.
#[derive(Debug, Clone)]
pub struct SfnSettler {
    client: aws_sdk_sfn::Client,
}

impl SfnSettler {
    /// The adapter over `client` (built once, see `sdk.rs`).
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

impl TaskSettler for SfnSettler {
    fn succeed<'a>(&'a self, token: &'a TaskToken, output: &'a str) -> SettleFuture<'a> {
        Box::pin(async move {
            let sent = self
                .client
                .send_task_success()
                .task_token(token.expose())
                .output(output)
                .send()
                .await;
            outcome("SendTaskSuccess", sent.map(|_| ()))
        })
    }

    fn fail<'a>(
        &'a self,
        token: &'a TaskToken,
        error: &'a str,
        cause: &'a str,
    ) -> SettleFuture<'a> {
        Box::pin(async move {
            let sent = self
                .client
                .send_task_failure()
                .task_token(token.expose())
                .error(error)
                .cause(cause)
                .send()
                .await;
            outcome("SendTaskFailure", sent.map(|_| ()))
        })
    }
}

fn outcome<E: ProvideErrorMetadata, R>(
    operation: &str,
    sent: Result<(), SdkError<E, R>>,
) -> Result<Settled, SettleError> {
    match sent {
        Ok(()) => Ok(Settled::Accepted),
        Err(SdkError::ServiceError(ctx)) => classify(operation, ctx.err().code()),
        Err(SdkError::TimeoutError(_)) => Err(SettleError(format!("{operation} timed out"))),
        Err(SdkError::DispatchFailure(_)) => Err(SettleError(format!(
            "{operation} could not be sent (no connection)"
        ))),
        Err(_) => Err(SettleError(format!("{operation} failed"))),
    }
}

/// What a Step Functions error code means for the receiver.
pub fn classify(operation: &str, code: Option<&str>) -> Result<Settled, SettleError> {
    match code {
        Some("TaskTimedOut") => Ok(Settled::AlreadyClosed("TaskTimedOut")),
        Some("TaskDoesNotExist") => Ok(Settled::AlreadyClosed("TaskDoesNotExist")),
        Some("InvalidToken") => Ok(Settled::AlreadyClosed("InvalidToken")),
        Some(code) => Err(SettleError(format!("{operation} failed: {code}"))),
        None => Err(SettleError(format!("{operation} failed: unknown error"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_task_is_settled_and_anything_else_is_retried() {
        // moto accepts a second SendTaskSuccess; AWS answers TaskTimedOut: covered here.
        for code in ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"] {
            assert_eq!(
                classify("SendTaskSuccess", Some(code)),
                Ok(Settled::AlreadyClosed(code))
            );
        }
        for code in [Some("ThrottlingException"), Some("InvalidOutput"), None] {
            assert!(classify("SendTaskSuccess", code).is_err(), "{code:?}");
        }
    }
}
