//! Plain request objects (direct invoke, Step Functions, EventBridge Scheduler), bare or in an
//! envelope that carries the idempotency key next to the request:
//!
//! - `{"idempotency_key": "...", "request": {...}}`: what the shipped state machines send (the
//!   key built from the execution id and the state, docs/state-machines.md).
//! - `{"schedule": {"schedule_arn": "<aws.scheduler.schedule-arn>", "scheduled_time":
//!   "<aws.scheduler.scheduled-time>"}, "request": {...}}`: the template's schedule input;
//!   EventBridge Scheduler fills in the context attributes, so every attempt of one run shares
//!   the key (its execution id changes per attempt and is not used). A managed schedule's
//!   envelope (the CLI's, `cloudbot_calendar::wire::target_input`) also carries `definition`
//!   (the schedule as applied) and, for a catch-up delivery, `backfill: true`: the function then
//!   decides the tick at fire time and keys the run on its nominal occurrence
//!   (docs/schedules.md). Without `definition`, nothing of that applies. With
//!   `"operation": "schedule_tick"` next to them (the state machines' DecideTick state) the
//!   function only answers the tick's decision and runs nothing.
//!
//! - `{"idempotency_key": "...", "task_token": "<$$.Task.Token>", "request": {...}}`: the
//!   callback-driven state machine's ExecuteBot (`.waitForTaskToken`); the function then starts
//!   the job with its own callback endpoint (docs/state-machines.md), so the request must not
//!   name one. A task token needs the idempotency key: a Task retry is matched to its job by it.
//!
//! Every ExecuteBot state also sends `execution` (`$$.Execution.Id`), recorded in the run ledger
//! for the orphan paths (src/trigger/execution.rs).
//!
//! A bare request (no `request` key) may carry `idempotency_key` itself. Keys per trigger:
//! docs/exactly-once.md.

use serde_json::{Map, Value};

use super::{Decoded, Trigger};
use crate::callback::TaskToken;
use crate::config::Requests;
use crate::idempotency::RecordKey;
use crate::request::{self, Execute, Operation, Request, RequestError};
use crate::schedule::ScheduleTick;
use crate::schedule::state::RunOf;
use cloudbot_calendar::{FileError, Schedule};

const ENVELOPE_FIELDS: &[&str] = &[
    "request",
    "idempotency_key",
    "schedule",
    "task_token",
    "operation",
    // RunBot's re-run loop (src/rerun/envelope.rs).
    "attempt",
    "job",
    // The sending execution (src/trigger/execution.rs).
    "execution",
];

/// The one envelope-level `operation`: decide a managed schedule's tick, run nothing.
const SCHEDULE_TICK: &str = "schedule_tick";

/// Decodes an event [`super::detect`] found to be a plain request.
pub(super) fn decode(event: Value, config: &Requests) -> Decoded {
    let map = match event {
        Value::Object(map) => map,
        other => {
            return Decoded {
                trigger: Trigger::Direct,
                request: Err(RequestError::Malformed(format!(
                    "the event is not an API Gateway proxy event, an EventBridge event or a \
                     request object (it is {})",
                    request::kind_of(&other)
                ))),
            };
        }
    };
    if !map.contains_key("request") {
        return Decoded {
            trigger: Trigger::Direct,
            request: request::parse_map(map, config),
        };
    }
    // A DecideTick state (Step Functions) invokes the function like any task does.
    let trigger = if map.contains_key("schedule") && !map.contains_key("operation") {
        Trigger::Scheduler
    } else {
        Trigger::Direct
    };
    Decoded {
        trigger,
        request: envelope(map, config),
    }
}

fn envelope(mut map: Map<String, Value>, config: &Requests) -> Result<Request, RequestError> {
    if let Some(unknown) = map.keys().find(|k| !ENVELOPE_FIELDS.contains(&k.as_str())) {
        return Err(RequestError::field(
            unknown.as_str(),
            "unknown envelope field; an envelope has `request` and one of `idempotency_key`, \
             `schedule` (request fields go inside `request`)",
        ));
    }
    let decide_rerun = crate::rerun::envelope::asks_decision(&map);
    let decide_only = !decide_rerun && decide_only(&map)?;
    let (key, tick) = envelope_key(&map)?;
    let inner = match map.remove("request") {
        Some(Value::Object(inner)) => inner,
        other => {
            return Err(RequestError::field(
                "request",
                format!(
                    "must be a request object, not {}",
                    other.as_ref().map_or("missing", request::kind_of)
                ),
            ));
        }
    };
    let mut request = request::parse_map(inner, config).map_err(inside_request)?;
    if let Some(key) = key {
        let Some(execute) = request.operation.execute_mut() else {
            return Err(RequestError::field(
                "request.operation",
                "an envelope's key applies to `execute` only",
            ));
        };
        if execute.idempotency_key.is_some() {
            return Err(RequestError::field(
                "request.idempotency_key",
                "conflicts with the envelope's key; give the key once",
            ));
        }
        execute.idempotency_key = Some(key);
    }
    if let Some(tick) = tick {
        let Some(execute) = request.operation.execute_mut() else {
            return Err(RequestError::field(
                "request.operation",
                "a schedule's definition applies to `execute` only",
            ));
        };
        if execute.bot.url() != tick.definition.bot_endpoint.url().as_str() {
            return Err(RequestError::field(
                "request.bot_endpoint",
                "differs from `schedule.definition.bot_endpoint`; re-apply the schedule file",
            ));
        }
        execute.schedule = Some(tick);
    }
    if let Some(token) = map.get("task_token") {
        let execute = request.operation.execute_mut();
        let token = task_token(token, execute.as_deref())?;
        if let Some(execute) = execute {
            execute.task_token = Some(token);
        }
    }
    if decide_only {
        let Operation::Execute(execute) = request.operation else {
            return Err(RequestError::field(
                "request.operation",
                "a schedule's definition applies to `execute` only",
            ));
        };
        if execute.schedule.is_none() {
            return Err(RequestError::field(
                "schedule.definition",
                "is required for `schedule_tick` (only a managed schedule's tick is decided)",
            ));
        }
        request.operation = Operation::ScheduleTick(execute);
    }
    let request = super::execution::apply(&map, request)?;
    crate::rerun::envelope::apply(&map, request, &config.api_base)
}

/// Whether the envelope asks for the tick's decision only (`"operation": "schedule_tick"`).
/// It goes with `schedule` (and its `definition`, checked once the schedule is read) and
/// nothing else of the envelope: no key of its own, no task token.
fn decide_only(map: &Map<String, Value>) -> Result<bool, RequestError> {
    let Some(operation) = map.get("operation") else {
        return Ok(false);
    };
    if operation.as_str() != Some(SCHEDULE_TICK) {
        return Err(RequestError::field(
            "operation",
            format!(
                "an envelope's operation can only be `{SCHEDULE_TICK}` (other operations go \
                 inside `request`)"
            ),
        ));
    }
    if let Some(extra) = ["idempotency_key", "task_token"]
        .into_iter()
        .find(|k| map.contains_key(*k))
    {
        return Err(RequestError::field(
            extra,
            format!(
                "is not valid with `{SCHEDULE_TICK}`: a decision claims no key and waits for nothing"
            ),
        ));
    }
    if !map.contains_key("schedule") {
        return Err(RequestError::field(
            "schedule",
            format!("is required for `{SCHEDULE_TICK}`"),
        ));
    }
    Ok(true)
}

/// The envelope's idempotency key: its `idempotency_key`, or its `schedule`'s, or none; and a
/// managed schedule's tick.
fn envelope_key(
    map: &Map<String, Value>,
) -> Result<(Option<RecordKey>, Option<ScheduleTick>), RequestError> {
    match (map.get("idempotency_key"), map.get("schedule")) {
        (Some(_), Some(_)) => Err(RequestError::field(
            "schedule",
            "conflicts with `idempotency_key`; give one of them",
        )),
        (Some(key), None) => {
            let key = key.as_str().ok_or_else(|| {
                RequestError::field(
                    "idempotency_key",
                    format!("must be a string, not {}", request::kind_of(key)),
                )
            })?;
            RecordKey::request(key)
                .map(|key| (Some(key), None))
                .map_err(|p| RequestError::field("idempotency_key", p.to_string()))
        }
        (None, Some(schedule)) => schedule_key(schedule).map(|(key, tick)| (Some(key), tick)),
        (None, None) => Ok((None, None)),
    }
}

/// The envelope's task token, for an execute with an idempotency key and no callback of its own
/// (`execute`: `None` when the request is not an execute).
fn task_token(token: &Value, execute: Option<&Execute>) -> Result<TaskToken, RequestError> {
    const FIELD: &str = "task_token";
    let raw = token.as_str().ok_or_else(|| {
        RequestError::field(
            FIELD,
            format!("must be a string, not {}", request::kind_of(token)),
        )
    })?;
    // The token's text never goes into a message.
    let token = TaskToken::parse(raw).map_err(|p| RequestError::field(FIELD, p.to_string()))?;
    let Some(execute) = execute.filter(|e| e.idempotency_key.is_some()) else {
        return Err(RequestError::field(
            FIELD,
            "needs `idempotency_key` (a retried task is matched to its job by the key)",
        ));
    };
    if execute.body.callback_endpoint.is_some() {
        return Err(RequestError::field(
            "request.callback_endpoint",
            "conflicts with `task_token`: the function gives Cloud BOT its own callback endpoint",
        ));
    }
    Ok(token)
}

/// The key of a scheduled run from the context attributes the template puts in the input, and
/// the tick of a managed schedule when the envelope carries its `definition` (issue 21).
fn schedule_key(schedule: &Value) -> Result<(RecordKey, Option<ScheduleTick>), RequestError> {
    const FIELDS: [&str; 2] = ["schedule_arn", "scheduled_time"];
    const OPTIONAL: [&str; 2] = ["definition", "backfill"];
    let Value::Object(schedule) = schedule else {
        return Err(RequestError::field(
            "schedule",
            "must be an object with `schedule_arn` and `scheduled_time`",
        ));
    };
    if let Some(unknown) = schedule
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()) && !OPTIONAL.contains(&k.as_str()))
    {
        return Err(RequestError::field(
            format!("schedule.{unknown}"),
            "unknown field; expected `schedule_arn` and `scheduled_time` (and, for a managed \
             schedule, `definition` and `backfill`)",
        ));
    }
    let mut parts = FIELDS.iter().map(|field| {
        let name = format!("schedule.{field}");
        let value = schedule
            .get(*field)
            .and_then(Value::as_str)
            .ok_or_else(|| RequestError::field(name.as_str(), "is required (a string)"))?;
        if value.starts_with("<aws.scheduler.") {
            return Err(RequestError::field(
                name.as_str(),
                "was not filled in: only EventBridge Scheduler substitutes <aws.scheduler.…> \
                 (to run the BOT by hand, invoke with the plain request)",
            ));
        }
        Ok(value)
    });
    let (arn, time) = match (parts.next(), parts.next()) {
        (Some(arn), Some(time)) => (arn?, time?),
        _ => return Err(RequestError::field("schedule", "is incomplete")),
    };
    let key = RecordKey::schedule(arn, time)
        .map_err(|p| RequestError::field("schedule", p.to_string()))?;
    let backfill = match schedule.get("backfill") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(RequestError::field(
                "schedule.backfill",
                format!("must be true or false, not {}", request::kind_of(other)),
            ));
        }
    };
    let Some(definition) = schedule.get("definition") else {
        if backfill.is_some() {
            return Err(RequestError::field(
                "schedule.backfill",
                "applies to a managed schedule only (an envelope with `definition`)",
            ));
        }
        // The template's own schedule: today's behaviour, keyed on the scheduled time.
        return Ok((key, None));
    };
    let definition = Schedule::from_value(definition.clone()).map_err(definition_error)?;
    // The state record is keyed by the name, and a state machine's ExecuteBot knows the
    // schedule only by the ARN in its key: the two must agree (`cloudbot schedules apply` names
    // each Scheduler schedule after its definition).
    if RunOf::schedule_of_arn(arn) != Some(definition.name.as_str()) {
        return Err(RequestError::field(
            "schedule.schedule_arn",
            format!(
                "must name the schedule `{}` (…:schedule/<group>/{}), as `cloudbot schedules \
                 apply` creates it",
                definition.name.as_str(),
                definition.name.as_str()
            ),
        ));
    }
    let scheduled_time = time.parse().map_err(|_| {
        RequestError::field(
            "schedule.scheduled_time",
            "must be an RFC 3339 instant like 2026-11-24T00:00:00Z",
        )
    })?;
    let tick = ScheduleTick {
        arn: arn.to_owned(),
        scheduled_time,
        definition: Box::new(definition),
        backfill: backfill.unwrap_or(false),
    };
    Ok((key, Some(tick)))
}

/// A definition error named by its path in the envelope (`schedule.definition.<path>`).
fn definition_error(err: FileError) -> RequestError {
    match err {
        FileError::Field { field, reason } => {
            let field = field.trim_start_matches('.');
            if field.is_empty() {
                RequestError::field("schedule.definition", reason)
            } else {
                RequestError::field(format!("schedule.definition.{field}"), reason)
            }
        }
        FileError::Syntax { message, .. } => RequestError::field("schedule.definition", message),
    }
}

/// Names a field error of the inner request by its path in the envelope.
fn inside_request(err: RequestError) -> RequestError {
    match err {
        RequestError::Field { field, reason } => {
            RequestError::field(format!("request.{field}"), reason)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::tests::config;
    use serde_json::json;

    fn key_of(event: Value) -> (Trigger, Result<Option<String>, String>) {
        let decoded = decode(event, &config());
        let key = decoded
            .request
            .map(|mut r| {
                r.operation
                    .execute_mut()
                    .and_then(|e| e.idempotency_key.take())
                    .map(|k| k.as_str().to_owned())
            })
            .map_err(|e| e.to_string());
        (decoded.trigger, key)
    }

    #[test]
    fn keys_come_from_the_envelope_or_the_request() {
        assert_eq!(
            key_of(json!({"idempotency_key": "exec#ExecuteBot", "request": {"bot_id": "b"}})),
            (Trigger::Direct, Ok(Some("request:exec#ExecuteBot".into())))
        );
        assert_eq!(
            key_of(json!({"idempotency_key": "k", "bot_id": "b"})),
            (Trigger::Direct, Ok(Some("request:k".into())))
        );
        assert_eq!(key_of(json!({"bot_id": "b"})), (Trigger::Direct, Ok(None)));
        assert_eq!(
            key_of(json!({"schedule": {
                "schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly",
                "scheduled_time": "2026-11-24T00:00:00Z"}, "request": {}})),
            (
                Trigger::Scheduler,
                Ok(Some(
                    "schedule:arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly@2026-11-24T00:00:00Z"
                        .into()
                ))
            )
        );
    }

    #[test]
    fn envelope_mistakes_are_named() {
        for (event, field) in [
            (
                json!({"idempotency_key": "k", "request": {}, "bot_id": "b"}),
                "`bot_id`",
            ),
            (json!({"idempotency_key": "k", "request": "x"}), "`request`"),
            (
                json!({"idempotency_key": 7, "request": {}}),
                "`idempotency_key`",
            ),
            (
                json!({"idempotency_key": "a b", "request": {}}),
                "`idempotency_key`",
            ),
            (
                json!({"idempotency_key": "k", "request": {"idempotency_key": "j"}}),
                "`request.idempotency_key`",
            ),
            (
                json!({"idempotency_key": "k", "request": {"operation": "list_bots", "public_id": "p"}}),
                "`request.operation`",
            ),
            (
                json!({"idempotency_key": "k", "request": {"inptu": {}}}),
                "`request.inptu`",
            ),
            (
                json!({"schedule": {"schedule_arn": "<aws.scheduler.schedule-arn>",
                "scheduled_time": "<aws.scheduler.scheduled-time>"}, "request": {}}),
                "`schedule.schedule_arn`",
            ),
            (
                json!({"schedule": {"schedule_arn": "a"}, "request": {}}),
                "`schedule.scheduled_time`",
            ),
            (
                json!({"schedule": {"schedule_arn": "a", "scheduled_time": "t"}, "idempotency_key": "k", "request": {}}),
                "`schedule`",
            ),
        ] {
            let (_, key) = key_of(event.clone());
            let err = key.unwrap_err();
            assert!(err.contains(field), "{event}: {err}");
        }
    }

    fn managed(definition: Value, extra: Value) -> Value {
        let mut schedule = json!({
            "schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/g/daily",
            "scheduled_time": "2026-11-24T00:00:00Z",
            "definition": definition,
        });
        for (k, v) in extra.as_object().unwrap() {
            schedule[k] = v.clone();
        }
        json!({"schedule": schedule,
            "request": {"bot_endpoint": "https://api.c-bot.pro/demo/bots/echo_bot/jobs"}})
    }

    fn daily() -> Value {
        json!({"name": "daily", "at": "09:00", "recurrence": "daily",
            "bot_endpoint": "https://api.c-bot.pro/demo/bots/echo_bot/jobs"})
    }

    fn tick_of(event: Value) -> Result<Option<ScheduleTick>, String> {
        decode(event, &config())
            .request
            .map(|mut r| r.operation.execute_mut().and_then(|e| e.schedule.take()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_definition_makes_a_managed_tick_and_none_keeps_todays_envelope() {
        let tick = tick_of(managed(daily(), json!({}))).unwrap().unwrap();
        assert_eq!(tick.definition.name.as_str(), "daily");
        assert!(!tick.backfill);
        assert_eq!(tick.scheduled_time.to_string(), "2026-11-24T00:00:00Z");
        let backfill = tick_of(managed(daily(), json!({"backfill": true})))
            .unwrap()
            .unwrap();
        assert!(backfill.backfill);
        // Without a definition: no tick, the key on the scheduled time, as before.
        let plain = json!({"schedule": {
            "schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly",
            "scheduled_time": "2026-11-24T00:00:00Z"}, "request": {}});
        assert!(tick_of(plain).unwrap().is_none());
    }

    #[test]
    fn definition_mistakes_are_named_by_their_path_in_the_envelope() {
        let mut bad_closed = daily();
        bad_closed["calendar"] = json!({"closed": [{"label": "x", "dates": ["2026-13-01"]}]});
        let mut unknown = daily();
        unknown["colour"] = json!("blue");
        let mut bad_at = daily();
        bad_at["at"] = json!("25:00");
        let mut other_bot = daily();
        other_bot["bot_endpoint"] = json!("https://api.c-bot.pro/demo/bots/other_bot/jobs");
        for (event, field) in [
            (managed(bad_at, json!({})), "`schedule.definition.at`"),
            (managed(unknown, json!({})), "`schedule.definition"),
            (
                managed(bad_closed, json!({})),
                "`schedule.definition.calendar.closed[0]",
            ),
            (managed(json!(7), json!({})), "`schedule.definition"),
            (
                managed(daily(), json!({"backfill": "yes"})),
                "`schedule.backfill`",
            ),
            (
                managed(daily(), json!({"scheduled_time": "tomorrow"})),
                "`schedule.scheduled_time`",
            ),
            (managed(other_bot, json!({})), "`request.bot_endpoint`"),
            (
                json!({"schedule": {"schedule_arn": "a", "scheduled_time": "t", "backfill": true},
                    "request": {}}),
                "`schedule.backfill`",
            ),
            (managed(daily(), json!({"colour": 1})), "`schedule.colour`"),
        ] {
            let err = tick_of(event.clone()).unwrap_err();
            assert!(err.contains(field), "{event}: {err}");
        }
    }
}
