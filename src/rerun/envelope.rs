//! The re-run loop's envelope fields, as the shipped state machines send them (the envelope
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
/// on it), and with a task token only when it carries the `attempt` the state machines' loop
/// sets (RunBotCallback's ExecuteBot, a RunBotMap item's ExecuteBotAndWait). Anything else (a
/// Scheduler or EventBridge target, the HTTP API, the run queue, a task token from some other
/// workflow) would start the BOT once and silently never re-run it, so it is refused before
/// anything is sent. A managed schedule whose definition has `policies.rerun` is refused the
/// same way when it is delivered to the function itself (no loop runs there).
pub(crate) fn check_delivery(direct: bool, request: &Request) -> Result<(), RequestError> {
    let Operation::Execute(execute) = &request.operation else {
        return Ok(());
    };
    if execute
        .schedule
        .as_ref()
        .is_some_and(|tick| tick.definition.policies.rerun.is_some())
    {
        return Err(RequestError::field(
            "schedule.definition.policies.rerun",
            "is run by the RunBot and RunBotCallback state machines only (docs/schedules.md, \
             \"Run policies\"): point the schedule at one of them (ScheduleTarget)",
        ));
    }
    if execute.rerun.is_none() {
        return Ok(());
    }
    const WHERE: &str = "is run by the shipped state machines only (docs/state-machines.md, \
                         \"Re-run on failure\"): start RunBot, RunBotCallback or RunBotMap with it";
    if !direct || execute.idempotency_key.is_none() || execute.schedule.is_some() {
        return Err(RequestError::field(super::FIELD, WHERE));
    }
    if execute.task_token.is_some() && execute.attempt.is_none() {
        return Err(RequestError::field(
            super::FIELD,
            "with a task token needs the `attempt` the state machines' loop sets \
             (RunBotCallback, a RunBotMap item): nothing else would run it again",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::config::Requests;
    use crate::request::Operation;
    use crate::trigger::{Trigger, decode};

    fn config() -> Requests {
        crate::config::Config::from_lookup(|k| match k {
            "CLOUDBOT_SECRET_ID" => Some("s".into()),
            _ => None,
        })
        .unwrap()
        .requests
    }

    const BOT: &str = "https://api.c-bot.pro/demo/bots/echo_bot/jobs";
    const JOB: &str = "https://api.c-bot.pro/demo/jobs/j1";

    fn decoded(event: Value) -> Result<Operation, String> {
        decode(event, &config())
            .request
            .map(|r| r.operation)
            .map_err(|e| e.to_string())
    }

    fn request() -> Value {
        json!({"bot_endpoint": BOT, "rerun": {"attempts": 2}})
    }

    #[test]
    fn runbots_execute_carries_its_attempt() {
        let op = decoded(
            json!({"idempotency_key": "k#attempt-2", "request": request(),
                                "attempt": {"number": 2, "previous_job": JOB}}),
        )
        .unwrap();
        let Operation::Execute(execute) = op else {
            panic!("not an execute")
        };
        assert_eq!(execute.attempt.map(|a| a.number), Some(2));
    }

    #[test]
    fn a_decision_needs_the_policy_the_attempt_and_the_job() {
        let job = json!({"job_reference_endpoint": JOB, "status": "error", "message": "m"});
        let op = decoded(json!({"operation": "decide_rerun", "idempotency_key": "k",
                                "attempt": {"number": 1}, "job": job, "request": request()}))
        .unwrap();
        assert!(matches!(op, Operation::DecideRerun(..)));
        for (event, field) in [
            (
                json!({"operation": "decide_rerun", "idempotency_key": "k", "attempt": {"number": 1},
                    "job": job, "request": {"bot_endpoint": BOT}}),
                "`request.rerun`",
            ),
            (
                json!({"operation": "decide_rerun", "idempotency_key": "k",
                    "job": job, "request": request()}),
                "`attempt`",
            ),
            (
                json!({"operation": "decide_rerun", "idempotency_key": "k", "attempt": {"number": 1},
                    "request": request()}),
                "`job`",
            ),
            (
                json!({"idempotency_key": "k", "attempt": {"number": 1}, "job": job,
                    "request": request()}),
                "`job`",
            ),
        ] {
            let err = decoded(event.clone()).unwrap_err();
            assert!(err.starts_with(&format!("field {field}")), "{event}: {err}");
        }
    }

    #[test]
    fn rerun_is_refused_where_nothing_runs_the_loop() {
        let cfg = config();
        // A direct invocation without a key, a Scheduler target, an EventBridge event, a task
        // token without the loop's attempt: refused by name, before anything is sent.
        let token = "t".repeat(40);
        for event in [
            request(),
            json!({"schedule": {"schedule_arn": "arn:aws:scheduler:us-east-1:1:schedule/default/s",
                                "scheduled_time": "2026-12-01T00:00:00Z"}, "request": request()}),
            json!({"version": "0", "id": "e1", "detail-type": "run", "source": "acme",
                   "account": "1", "time": "2026-12-01T00:00:00Z", "region": "us-east-1",
                   "resources": [], "detail": request()}),
            json!({"idempotency_key": "k", "task_token": token, "request": request()}),
        ] {
            let decoded = decode(event.clone(), &cfg);
            let err = decoded.request.map(|_| ()).unwrap_err().to_string();
            assert!(err.starts_with("field `rerun`"), "{event}: {err}");
        }
        let keyed = decode(json!({"idempotency_key": "k", "request": request()}), &cfg);
        assert_eq!(keyed.trigger, Trigger::Direct);
        assert!(keyed.request.is_ok());
    }

    #[test]
    fn a_task_token_with_the_loops_attempt_may_carry_rerun() {
        // RunBotCallback's ExecuteBot and a RunBotMap item's ExecuteBotAndWait: each attempt
        // with its own key, task token and callback.
        let token = "t".repeat(40);
        for (key, attempt) in [
            ("k", json!({"number": 1})),
            ("k#attempt-2", json!({"number": 2, "previous_job": JOB})),
        ] {
            let op = decoded(json!({"idempotency_key": key, "task_token": token,
                                    "attempt": attempt, "request": request()}))
            .unwrap();
            let Operation::Execute(execute) = op else {
                panic!("not an execute")
            };
            assert!(execute.task_token.is_some() && execute.rerun.is_some());
        }
    }

    #[test]
    fn a_managed_schedule_with_rerun_is_refused_at_the_function_target() {
        let definition = json!({"name": "daily", "at": "09:00", "recurrence": "daily",
                                "bot_endpoint": BOT, "policies": {"rerun": {"attempts": 1}}});
        let event = json!({"schedule": {
                "schedule_arn": "arn:aws:scheduler:us-east-1:1:schedule/default/daily",
                "scheduled_time": "2026-12-01T00:00:00Z", "definition": definition},
            "request": {"bot_endpoint": BOT}});
        let decoded = decode(event.clone(), &config());
        let err = decoded.request.map(|_| ()).unwrap_err().to_string();
        assert!(
            err.starts_with("field `schedule.definition.policies.rerun`"),
            "{err}"
        );
        // DecideTick (a state machine's) asks for the decision only: accepted, the loop runs it.
        let mut tick = event;
        tick["operation"] = json!("schedule_tick");
        assert!(decode(tick, &config()).request.is_ok());
    }
}
