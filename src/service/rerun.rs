//! `decide_rerun`: the state machines' DecideRerun state (RunBot, RunBotCallback, a RunBotMap
//! item) asks whether the job of the
//! current attempt, which ended failed, runs again (the rule: src/rerun/). Nothing is sent to
//! Cloud BOT and no key is claimed: the answer names the next attempt's key, and ExecuteBot
//! claims it as it claims any key.

use serde::Serialize;

use super::answer;
use crate::error::Failure;
use crate::request::Execute;
use crate::rerun::{self, Decision, FailedJob, Stop};
use crate::trigger::Answer;

/// The next attempt, as ExecuteBot's `attempt` envelope field takes it.
#[derive(Serialize)]
struct NextAttempt<'a> {
    number: u32,
    previous_job: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
enum Answered<'a> {
    Rerun {
        attempt: NextAttempt<'a>,
        idempotency_key: String,
        wait_seconds: u32,
    },
    Stop {
        reason: Stop,
        attempt: u32,
    },
}

/// The decision for `failed`, the job of `execute`'s attempt (parsed with its key and policy:
/// src/rerun/envelope.rs).
pub(super) fn decide_rerun(execute: &Execute, failed: &FailedJob) -> Result<Answer, Failure> {
    let (Some(policy), Some(attempt), Some(key)) = (
        &execute.rerun,
        &execute.attempt,
        execute.idempotency_key.as_ref(),
    ) else {
        return Err(Failure::Internal(
            "a decide_rerun without its policy, attempt or key",
        ));
    };
    let key = key
        .as_str()
        .strip_prefix("request:")
        .unwrap_or(key.as_str());
    let decision = rerun::decide(
        policy,
        attempt.number,
        &failed.status,
        failed.message.as_deref(),
    );
    let answered = match decision {
        Decision::Rerun {
            attempt: next,
            wait_seconds,
        } => {
            tracing::info!(
                job_id = %failed.job.job_id().as_str(),
                attempt = next,
                wait_seconds,
                "the job ended failed: it runs again"
            );
            Answered::Rerun {
                attempt: NextAttempt {
                    number: next,
                    previous_job: failed.job.url(),
                },
                idempotency_key: rerun::attempt_key(key, next),
                wait_seconds,
            }
        }
        Decision::Stop(reason) => {
            tracing::info!(
                job_id = %failed.job.job_id().as_str(),
                attempt = attempt.number,
                reason = ?reason,
                "no further attempt"
            );
            Answered::Stop {
                reason,
                attempt: attempt.number,
            }
        }
    };
    answer::decided(&answered)
}
