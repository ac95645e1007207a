//! Reading a Step Functions execution's status for the sweep (`DescribeExecution`; the function's
//! role may describe only the stack's state machines' executions: template.yaml). The only code
//! of the orphan paths that sees SDK types. Only the status is read: an execution's input and
//! output may carry BOT data and are dropped with the answer.

use std::fmt::Debug;

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};

use super::ExecutionStatus;
use crate::table::{StoreError, StoreFuture};

/// Reads executions' statuses.
pub trait ExecutionReader: Send + Sync + Debug {
    /// The status of the execution `arn`; `Ok(None)` when Step Functions does not know it
    /// (deleted with its state machine, or past its history's retention).
    fn status<'a>(&'a self, arn: &'a str) -> StoreFuture<'a, Option<ExecutionStatus>>;
}

/// [`ExecutionReader`] over Step Functions. Cheap to clone: the SDK client is shared.
#[derive(Debug, Clone)]
pub struct StepFunctionsExecutions {
    client: aws_sdk_sfn::Client,
}

impl StepFunctionsExecutions {
    /// The reader over `client` (built once, see `sdk.rs`).
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

impl ExecutionReader for StepFunctionsExecutions {
    fn status<'a>(&'a self, arn: &'a str) -> StoreFuture<'a, Option<ExecutionStatus>> {
        Box::pin(async move {
            match self
                .client
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
            {
                Ok(output) => {
                    let raw = output.status().as_str();
                    ExecutionStatus::parse(raw)
                        .map(Some)
                        .ok_or(StoreError::Malformed("an undocumented execution status"))
                }
                Err(SdkError::ServiceError(ctx))
                    if ctx.err().code() == Some("ExecutionDoesNotExist") =>
                {
                    Ok(None)
                }
                Err(err) => Err(failed(&err)),
            }
        })
    }
}

/// A failed `DescribeExecution` as a fixed description plus the error code, never a body.
fn failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(match err {
        SdkError::ServiceError(ctx) => format!(
            "Step Functions DescribeExecution failed: {}",
            ctx.err().code().unwrap_or("unknown error")
        ),
        SdkError::TimeoutError(_) => "Step Functions DescribeExecution timed out".to_owned(),
        SdkError::DispatchFailure(_) => {
            "Step Functions DescribeExecution could not be sent (no connection)".to_owned()
        }
        _ => "Step Functions DescribeExecution failed".to_owned(),
    })
}
