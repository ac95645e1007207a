//! The re-run loop's envelope fields, as the RunBot state machine sends them (the envelope
//! itself: src/trigger/envelope.rs): `attempt` on ExecuteBot, and `"operation": "decide_rerun"`
//! with `attempt` and `job` on DecideRerun. Also where a `rerun` is refused when nothing would
//! run the loop (docs/state-machines.md, "Re-run on failure").

use serde_json::{Map, Value};

use super::{Attempt, DECIDE, FailedJob};
use crate::cloudbot::ApiBase;
use crate::request::{Operation, Request, RequestError};

/// Whether the envelope asks for a re-run decision (`"operation": "decide_rerun"`).
pub(crate) fn asks_decision(map: &Map<String, Value>) -> bool {
    map.get("operation").and_then(Value::as_str) == Some(DECIDE)
}

/// `request` (already decoded from the envelope `map`) with its attempt, or turned into a
/// decision; errors name the envelope field at fault.
pub(crate) fn apply(
    map: &Map<String, Value>,
    mut request: Request,
    base: &ApiBase,
) -> Result<Request, RequestError> {
    let decide = asks_decision(map);
    if !decide && map.contains_key("job") {
        return Err(RequestError::field(
            "job",
            format!("is only valid with `\"operation\": \"{DECIDE}\"`"),
        ));
    }
    if let Some(attempt) = map.get("attempt") {
        let key = map.get("idempotency_key").and_then(Value::as_str);
        let attempt = Attempt::parse(attempt, key, base)?;
        let Some(execute) = request.operation.execute_mut() else {
            return Err(RequestError::field(
                "request.operation",
                "an attempt applies to `execute` only",
            ));
        };
        execute.attempt = Some(attempt);
    }
    if !decide {
        return Ok(request);
    }
    if let Some(extra) = ["task_token", "schedule"]
        .into_iter()
        .find(|k| map.contains_key(*k))
    {
        return Err(RequestError::field(
            extra,
            format!("is not valid with `{DECIDE}`: a decision is keyed by the attempt's key"),
        ));
    }
    let Operation::Execute(execute) = request.operation else {
        return Err(RequestError::field(
            "request.operation",
            format!("`{DECIDE}` is about an `execute`"),
        ));
    };
    if execute.attempt.is_none() {
        return Err(RequestError::field(
            "attempt",
            format!("is required for `{DECIDE}`"),
        ));
    }
    if execute.rerun.is_none() {
        return Err(RequestError::field(
            "request.rerun",
            format!("is required for `{DECIDE}` (the policy to decide by)"),
        ));
    }
    let job = match map.get("job") {
        Some(job) => FailedJob::parse(job, base)?,
        None => {
            return Err(RequestError::field(
                "job",
                format!("is required for `{DECIDE}` (the last `refer_job` result)"),
            ));
        }
    };
    request.operation = Operation::DecideRerun(execute, job);
    Ok(request)
}

/// A request with `rerun` is accepted only where the loop runs: a direct invocation (the shipped
/// state machines invoke the function directly) with an idempotency key (each attempt is keyed
/// on it) and without a task token (RunBotCallback and RunBotMap do not run the loop). Anything
/// else (a Scheduler or EventBridge target, the HTTP API, the run queue) would start the BOT once
/// and silently never re-run it, so it is refused before anything is sent.
pub(crate) fn check_delivery(direct: bool, request: &Request) -> Result<(), RequestError> {
    let Operation::Execute(execute) = &request.operation else {
        return Ok(());
    };
    if execute.rerun.is_none() {
        return Ok(());
    }
    const WHERE: &str = "is run by the RunBot state machine only (docs/state-machines.md, \
                         \"Re-run on failure\"): start RunBot with it";
    if !direct || execute.idempotency_key.is_none() || execute.schedule.is_some() {
        return Err(RequestError::field(super::FIELD, WHERE));
    }
    if execute.task_token.is_some() {
        return Err(RequestError::field(
            super::FIELD,
            "is not supported by RunBotCallback or a RunBotMap item: use RunBot",
        ));
    }
    Ok(())
}
