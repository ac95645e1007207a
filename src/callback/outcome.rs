//! What a waiting task is told about a job, as pure functions (table-tested): the job result
//! (the shape `refer_job` returns) for a succeeded job, `CloudBot.JobFailed` with the BOT's
//! message for an error job, and for a job not final yet a *look signal*: the callback is a
//! signal to look, never the result, so the workflow is woken into its short polling loop
//! (docs/state-machines.md, "A callback while the job still reads executing").

use serde_json::{Map, Value};

use super::tasks::{MAX_TASK_CAUSE_CHARS, MAX_TASK_OUTPUT};
use crate::cloudbot::JobStatus;

/// The task error of a BOT that ended in error (the name the polling state machine also uses).
pub const JOB_FAILED: &str = "CloudBot.JobFailed";

// Step Functions refuses a longer `error` (checked when compiling).
const _: () = assert!(JOB_FAILED.len() <= super::tasks::MAX_TASK_ERROR_CHARS);

/// What to tell the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// `SendTaskSuccess` with this output.
    Succeed(String),
    /// `SendTaskFailure` with [`JOB_FAILED`] and this cause.
    Fail(String),
    /// Not final yet (Cloud BOT may call before its job reads as ended): `SendTaskSuccess`
    /// with this [`look_signal`], which sends the workflow into its short polling loop.
    Look(String),
    /// The run ended with one of the function's own errors (the error type, e.g.
    /// `Job.Overrun`, and its message): `SendTaskFailure` with them, so the workflow fails with
    /// the error a look would have failed with (docs/overrun.md).
    Failure {
        /// The error type (docs/errors.md).
        error: &'static str,
        /// The error's message, at most `SendTaskFailure`'s cause limit.
        cause: String,
    },
}

impl TaskOutcome {
    /// [`TaskOutcome::Failure`] with `error` and `message`, cut to the cause limit.
    pub fn failure(error: &'static str, message: &str) -> Self {
        TaskOutcome::Failure {
            error,
            cause: message.chars().take(MAX_TASK_CAUSE_CHARS).collect(),
        }
    }
}

/// The `signal` value of a look signal (the state machines' `CallbackSaid` choice tests for the
/// field).
pub const LOOK_SIGNAL: &str = "job_not_final";

/// The task output that wakes the workflow to read the job itself: `{"signal", "status",
/// "job_reference_endpoint"}`. Never the job's result (no output, no message): what the
/// workflow reports is what its own reads find.
pub fn look_signal(status: JobStatus, endpoint: &str) -> String {
    serde_json::json!({
        "signal": LOOK_SIGNAL,
        "status": status.label(),
        "job_reference_endpoint": endpoint,
    })
    .to_string()
}

/// The outcome for a job of `status` whose `refer_job` result is `result` (JSON object).
/// `message` is the BOT's message; `endpoint` names the job when there is none.
pub fn task_outcome(
    status: JobStatus,
    result: &str,
    message: Option<&str>,
    endpoint: &str,
) -> TaskOutcome {
    match status {
        JobStatus::Succeeded => TaskOutcome::Succeed(fit_output(result)),
        JobStatus::Error => TaskOutcome::Fail(match message {
            Some(m) if !m.is_empty() => m.chars().take(MAX_TASK_CAUSE_CHARS).collect(),
            _ => format!("The BOT job {endpoint} ended in error without a message."),
        }),
        JobStatus::Executing | JobStatus::Unknown(_) => {
            TaskOutcome::Look(look_signal(status, endpoint))
        }
    }
}

/// `output_note` of a callback result whose output was left out to fit the task output
/// (docs/state-machines.md).
pub const TASK_OUTPUT_NOTE: &str = "The job's output exceeds what Step Functions accepts as a \
task's output, so it is left out (the status and the other fields are complete). Read it outside \
Step Functions: the function's refer_job operation, or GET the job_reference_endpoint from Cloud \
BOT with an access token that has the Refer permission.";

/// The result unchanged when it fits `SendTaskSuccess` (256 KiB); otherwise the same result
/// with `output: null`, `output_omitted: true` and [`TASK_OUTPUT_NOTE`]: the workflow still learns the job succeeded
/// and where it is, and the output stays readable with `refer_job` outside Step Functions (a
/// state cannot carry more than 256 KiB either way).
fn fit_output(result: &str) -> String {
    if result.len() <= MAX_TASK_OUTPUT {
        return result.to_owned();
    }
    let Ok(mut map) = serde_json::from_str::<Map<String, Value>>(result) else {
        return "{}".to_owned();
    };
    map.insert("output".into(), Value::Null);
    map.insert("output_omitted".into(), Value::Bool(true));
    map.insert("output_note".into(), Value::String(TASK_OUTPUT_NOTE.into()));
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EP: &str = "https://api.c-bot.pro/demo/jobs/j";

    #[test]
    fn each_status_has_its_outcome() {
        let result = r#"{"status":"succeeded","output":{"a":"1"}}"#;
        assert_eq!(
            task_outcome(JobStatus::Succeeded, result, None, EP),
            TaskOutcome::Succeed(result.to_owned())
        );
        assert_eq!(
            task_outcome(JobStatus::Error, "{}", Some("Step 3 failed"), EP),
            TaskOutcome::Fail("Step 3 failed".into())
        );
        assert_eq!(
            task_outcome(JobStatus::Error, "{}", None, EP),
            TaskOutcome::Fail(format!(
                "The BOT job {EP} ended in error without a message."
            ))
        );
        for status in [JobStatus::Executing, JobStatus::Unknown(7)] {
            let TaskOutcome::Look(signal) =
                task_outcome(status, r#"{"output":"x"}"#, Some("m"), EP)
            else {
                panic!("expected a look signal for {status:?}");
            };
            let value: Value = serde_json::from_str(&signal).unwrap();
            // The signal names the job and nothing of its result.
            assert_eq!(
                value,
                serde_json::json!({
                    "signal": LOOK_SIGNAL,
                    "status": status.label(),
                    "job_reference_endpoint": EP,
                })
            );
        }
    }

    #[test]
    fn limits_of_step_functions_are_kept() {
        let long = "é".repeat(MAX_TASK_CAUSE_CHARS + 10);
        let TaskOutcome::Fail(cause) = task_outcome(JobStatus::Error, "{}", Some(&long), EP) else {
            panic!("expected a failure");
        };
        assert_eq!(cause.chars().count(), MAX_TASK_CAUSE_CHARS);
        assert!(JOB_FAILED.len() <= super::super::tasks::MAX_TASK_ERROR_CHARS);

        let big = format!(
            r#"{{"job_id":"j","output":"{}"}}"#,
            "x".repeat(MAX_TASK_OUTPUT)
        );
        let TaskOutcome::Succeed(output) = task_outcome(JobStatus::Succeeded, &big, None, EP)
        else {
            panic!("expected a success");
        };
        assert!(output.len() <= MAX_TASK_OUTPUT);
        let value: Value = serde_json::from_str(&output).unwrap();
        assert_eq!(value["output"], Value::Null);
        assert_eq!(value["output_omitted"], Value::Bool(true));
        assert_eq!(value["output_note"], TASK_OUTPUT_NOTE);
        assert_eq!(value["job_id"], "j");
    }
}
