//! Orphaned jobs (issue 22): a BOT job left running by a Step Functions execution that was
//! stopped, failed or timed out. Pure values here: the execution statuses and the rule of which
//! of them leave a job orphaned, the strict parse of Step Functions' "Execution Status Change"
//! event, the request flag that keeps a job running deliberately, and the error of the paths.
//! The suspensions themselves are `Service::execution_ended` and `Service::sweep`
//! (src/service/orphans.rs). Why, how and the limits: docs/orphans.md.
//!
//! - `executions`: reading an execution's status (`DescribeExecution`), the only SDK code here.

mod executions;

use serde_json::{Map, Value};

pub use executions::{ExecutionReader, StepFunctionsExecutions};

use crate::request::RequestError;

/// The request field that keeps a job running when its workflow ends (execute only).
pub const KEEP_RUNNING_FIELD: &str = "keep_running";

/// The `source` of Step Functions' events.
pub const STATES_SOURCE: &str = "aws.states";

/// The one `aws.states` detail type the function takes.
pub const STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// Most open runs one sweep looks at (docs/orphans.md, "The sweep"): each is one Cloud BOT read
/// at least, and the sweep must end well within the function's timeout.
pub const SWEEP_MAX_RUNS: usize = 100;

/// A Step Functions execution's status (`DescribeExecution`, the status-change event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Still running.
    Running,
    /// Ended successfully.
    Succeeded,
    /// Ended failed.
    Failed,
    /// Ended past its timeout.
    TimedOut,
    /// Stopped (`StopExecution`, the console).
    Aborted,
    /// Failed and being redriven: it goes on.
    PendingRedrive,
}

impl ExecutionStatus {
    /// The status as Step Functions spells it; `None` for a spelling it has not documented.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "RUNNING" => Self::Running,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "TIMED_OUT" => Self::TimedOut,
            "ABORTED" => Self::Aborted,
            "PENDING_REDRIVE" => Self::PendingRedrive,
            _ => return None,
        })
    }

    /// The status as Step Functions spells it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Aborted => "ABORTED",
            Self::PendingRedrive => "PENDING_REDRIVE",
        }
    }

    /// True when an execution in this status has left the jobs it started without anyone to
    /// follow them: it failed, timed out or was stopped. A succeeded execution may have left
    /// its job running on purpose (a fire-and-forget flow), and a running or redriven one still
    /// follows its job: neither orphans it.
    pub fn orphans_its_jobs(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::Aborted)
    }
}

/// What to do with one open run of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Suspend its job (if it still runs) and record the run's end as `orphaned`.
    Suspend,
    /// Its request asked to keep the job running (`keep_running`): only look at it.
    KeepRunning,
    /// Its execution has not left it: only look at it (the sweep learns an end nobody told).
    Look,
}

/// The rule: a run whose execution ended in a status that orphans its jobs is suspended,
/// unless its request said `keep_running`.
pub fn verdict(execution: Option<ExecutionStatus>, keep_running: bool) -> Verdict {
    match execution {
        Some(status) if status.orphans_its_jobs() && keep_running => Verdict::KeepRunning,
        Some(status) if status.orphans_its_jobs() => Verdict::Suspend,
        _ => Verdict::Look,
    }
}

/// Step Functions' "Execution Status Change" event, the fields the function uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The execution's ARN (`detail.executionArn`).
    pub execution_arn: String,
    /// Its state machine's ARN (`detail.stateMachineArn`).
    pub state_machine_arn: String,
    /// Its new status (`detail.status`).
    pub status: ExecutionStatus,
}

impl StatusChange {
    /// Parses the event `detail` of an `aws.states` event whose detail type is `detail_type`.
    /// Any other `aws.states` detail type, a missing or malformed field, or an undocumented
    /// status is refused by name (nothing is read or sent). The detail's other fields (input,
    /// output, error, cause, dates) are neither read nor kept: they may carry BOT data.
    pub fn parse(detail_type: &str, detail: &Value) -> Result<Self, RequestError> {
        if detail_type != STATUS_CHANGE {
            return Err(RequestError::field(
                "detail-type",
                format!(
                    "an `{STATES_SOURCE}` event must be `{STATUS_CHANGE}` (docs/orphans.md); \
                     other Step Functions events are not handled"
                ),
            ));
        }
        let Value::Object(detail) = detail else {
            return Err(RequestError::field("detail", "must be an object"));
        };
        let execution_arn = arn_field(detail, "executionArn", ":execution:")?;
        let state_machine_arn = arn_field(detail, "stateMachineArn", ":stateMachine:")?;
        let raw = detail
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| RequestError::field("detail.status", "must be a string"))?;
        let status = ExecutionStatus::parse(raw).ok_or_else(|| {
            RequestError::field(
                "detail.status",
                "must be RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE",
            )
        })?;
        Ok(Self {
            execution_arn,
            state_machine_arn,
            status,
        })
    }
}

/// A Step Functions ARN field of the detail: `arn:<partition>:states:…<kind>…`.
fn arn_field(detail: &Map<String, Value>, field: &str, kind: &str) -> Result<String, RequestError> {
    let name = format!("detail.{field}");
    let arn = detail
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::field(&name, "must be a string"))?;
    let shaped = arn.starts_with("arn:")
        && arn.contains(":states:")
        && arn.contains(kind)
        && arn.len() <= 2048
        && !arn.chars().any(char::is_whitespace);
    if !shaped {
        return Err(RequestError::field(
            &name,
            format!("must be a Step Functions ARN (`arn:…:states:…{kind}…`)"),
        ));
    }
    Ok(arn.to_owned())
}

/// `keep_running`: a boolean (execute only; docs/orphans.md).
pub fn keep_running(map: &Map<String, Value>) -> Result<bool, RequestError> {
    match map.get(KEEP_RUNNING_FIELD) {
        None => Ok(false),
        Some(Value::Bool(keep)) => Ok(*keep),
        Some(_) => Err(RequestError::field(
            KEEP_RUNNING_FIELD,
            "must be true or false",
        )),
    }
}

/// The orphan paths could not find or look at the runs to suspend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrphanError {
    /// The run ledger or Step Functions could not be read: nothing was suspended by this
    /// call. EventBridge retries the event; the next sweep looks again.
    #[error(
        "could not {what}: {error}; nothing was suspended by this call (the next sweep looks \
         again; docs/orphans.md)"
    )]
    Unavailable {
        /// What could not be done.
        what: &'static str,
        /// The store's or service's error code (never a body).
        error: String,
    },
    /// The run's workflow ended but Cloud BOT refused to suspend its job with 403.
    #[error(
        "the workflow that started the job failed, timed out or was stopped, but Cloud BOT \
         refused to suspend the job (HTTP 403): the access token needs the Suspend permission \
         (docs/overrun.md); the job is still running"
    )]
    SuspendForbidden,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_failed_timed_out_or_stopped_execution_orphans_its_jobs() {
        use ExecutionStatus::*;
        for (status, suspends) in [
            (Running, false),
            (Succeeded, false),
            (Failed, true),
            (TimedOut, true),
            (Aborted, true),
            (PendingRedrive, false),
        ] {
            assert_eq!(status.orphans_its_jobs(), suspends, "{status:?}");
            assert_eq!(ExecutionStatus::parse(status.label()), Some(status));
            let expected = if suspends {
                Verdict::Suspend
            } else {
                Verdict::Look
            };
            assert_eq!(verdict(Some(status), false), expected, "{status:?}");
        }
    }

    #[test]
    fn keep_running_is_never_suspended_and_an_unknown_execution_is_only_looked_at() {
        for status in [
            ExecutionStatus::Failed,
            ExecutionStatus::TimedOut,
            ExecutionStatus::Aborted,
        ] {
            assert_eq!(verdict(Some(status), true), Verdict::KeepRunning);
        }
        assert_eq!(verdict(None, false), Verdict::Look);
        assert_eq!(
            verdict(Some(ExecutionStatus::Succeeded), true),
            Verdict::Look
        );
    }

    fn detail(status: &str) -> Value {
        json!({
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e1",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:RunBot-x",
            "name": "e1", "status": status, "startDate": 1, "stopDate": 2,
            "input": "{\"input\":{\"secret\":\"kept out\"}}", "output": null
        })
    }

    #[test]
    fn the_status_change_event_is_parsed_strictly() {
        let change = StatusChange::parse(STATUS_CHANGE, &detail("ABORTED")).unwrap();
        assert_eq!(change.status, ExecutionStatus::Aborted);
        assert!(change.execution_arn.ends_with(":execution:RunBot-x:e1"));
        assert!(!format!("{change:?}").contains("kept out"));

        let err = StatusChange::parse("Step Functions State Machine Status Change", &detail("x"))
            .unwrap_err();
        assert!(err.to_string().contains("detail-type"), "{err}");
        let err = StatusChange::parse(STATUS_CHANGE, &detail("STOPPED")).unwrap_err();
        assert!(err.to_string().contains("detail.status"), "{err}");
        let mut wrong = detail("FAILED");
        wrong["executionArn"] = json!("arn:aws:states:us-east-1:1:stateMachine:RunBot-x");
        let err = StatusChange::parse(STATUS_CHANGE, &wrong).unwrap_err();
        assert!(err.to_string().contains("detail.executionArn"), "{err}");
        let err = StatusChange::parse(STATUS_CHANGE, &json!([])).unwrap_err();
        assert!(err.to_string().contains("detail"), "{err}");
    }

    #[test]
    fn keep_running_is_a_boolean() {
        let map = |v: Value| json!({ "keep_running": v }).as_object().unwrap().clone();
        assert!(keep_running(&map(json!(true))).unwrap());
        assert!(!keep_running(&map(json!(false))).unwrap());
        assert!(!keep_running(&Map::new()).unwrap());
        let err = keep_running(&map(json!("yes"))).unwrap_err();
        assert!(err.to_string().contains("keep_running"), "{err}");
    }
}
