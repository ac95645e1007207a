//! The envelope's `execution`: the Step Functions execution ARN the shipped state machines'
//! ExecuteBot states send (`"execution.$": "$$.Execution.Id"`), so the run ledger records the
//! execution of every run they start, also one keyed on a schedule occurrence, whose key names
//! no execution (docs/orphans.md). Checked strictly here; recorded by `Origin::with_execution`.
//! Not sent to Cloud BOT and not part of the idempotency fingerprint: a redrive or a retry of
//! the same key replays.

use serde_json::{Map, Value};

use crate::idempotency::RecordKey;
use crate::ledger::execution_of_key;
use crate::request::{self, Request, RequestError};

/// The envelope field.
pub(super) const FIELD: &str = "execution";

/// Longest ARN accepted (Step Functions' own limit on an ARN).
const MAX_ARN_CHARS: usize = 2048;

/// `request` (decoded from the envelope `map`) with the execution the envelope names, if any.
pub(super) fn apply(
    map: &Map<String, Value>,
    mut request: Request,
) -> Result<Request, RequestError> {
    let Some(value) = map.get(FIELD) else {
        return Ok(request);
    };
    if let Some(other) = ["operation", "schedule"]
        .into_iter()
        .find(|k| map.contains_key(*k))
    {
        return Err(RequestError::field(
            FIELD,
            format!(
                "is not valid with `{other}`: only an ExecuteBot state's execute names its execution"
            ),
        ));
    }
    let arn = parse(value)?;
    let key = match map.get("idempotency_key").and_then(Value::as_str) {
        Some(key) => RecordKey::request(key)
            .map_err(|p| RequestError::field("idempotency_key", p.to_string()))?,
        None => {
            return Err(RequestError::field(
                FIELD,
                "needs `idempotency_key` (an ExecuteBot state sends both)",
            ));
        }
    };
    if let Some(named) = execution_of_key(&key).filter(|named| *named != arn) {
        // Both are the caller's own values (no secret): naming them shows the mistake.
        return Err(RequestError::field(
            FIELD,
            format!("differs from the execution `{named}` that `idempotency_key` names"),
        ));
    }
    let Some(execute) = request.operation.execute_mut() else {
        return Err(RequestError::field(
            "request.operation",
            "an envelope's `execution` applies to `execute` only",
        ));
    };
    execute.execution = Some(arn.to_owned());
    Ok(request)
}

/// A Step Functions execution ARN: `arn:<partition>:states:<region>:<account>:execution:
/// <state machine>:<name>`. No `#`: the ledger's open-runs key is `<execution ARN>#<run>` and
/// an execution's runs are found by that prefix (docs/orphans.md).
fn parse(value: &Value) -> Result<&str, RequestError> {
    let arn = value.as_str().ok_or_else(|| {
        RequestError::field(
            FIELD,
            format!("must be a string, not {}", request::kind_of(value)),
        )
    })?;
    let parts: Vec<&str> = arn.split(':').collect();
    let shaped = parts.len() == 8
        && parts[0] == "arn"
        && parts[2] == "states"
        && parts[5] == "execution"
        && parts.iter().all(|p| !p.is_empty())
        && arn.len() <= MAX_ARN_CHARS
        && !arn.contains('#')
        && !arn.chars().any(|c| c.is_whitespace() || c.is_control());
    if !shaped {
        return Err(RequestError::field(
            FIELD,
            "must be a Step Functions execution ARN \
             (`arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>`, \
             what `$$.Execution.Id` gives)",
        ));
    }
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::trigger::tests::config;

    const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e1";
    const SCHEDULE_KEY: &str = "schedule:arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly@2026-11-24T00:00:00Z#ExecuteBot";

    fn execution_of(event: serde_json::Value) -> Result<Option<String>, String> {
        super::super::envelope::decode(event, &config())
            .request
            .map(|mut r| r.operation.execute_mut().and_then(|e| e.execution.take()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_schedule_keyed_execute_carries_its_execution() {
        assert_eq!(
            execution_of(json!({"idempotency_key": SCHEDULE_KEY, "execution": EXEC,
                "request": {"bot_id": "b"}})),
            Ok(Some(EXEC.to_owned()))
        );
        // Agreeing with the key's execution; and absent, as before.
        assert_eq!(
            execution_of(json!({"idempotency_key": format!("{EXEC}#ExecuteBot"),
                "execution": EXEC, "request": {"bot_id": "b"}})),
            Ok(Some(EXEC.to_owned()))
        );
        assert_eq!(
            execution_of(json!({"idempotency_key": SCHEDULE_KEY, "request": {"bot_id": "b"}})),
            Ok(None)
        );
    }

    #[test]
    fn a_bad_execution_is_refused_naming_the_field() {
        let other = "arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e2";
        for execution in [
            json!(7),
            json!("e1"),
            json!("arn:aws:states:us-east-1:123456789012:stateMachine:RunBot-x"),
            json!("arn:aws:lambda:us-east-1:123456789012:execution:RunBot-x:e1"),
            json!("arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e1#x"),
            json!("arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e 1"),
            json!("arn:aws:states:us-east-1::execution:RunBot-x:e1"),
            json!(format!("{EXEC}:extra")),
        ] {
            let err = execution_of(json!({"idempotency_key": SCHEDULE_KEY,
                "execution": execution.clone(), "request": {"bot_id": "b"}}))
            .unwrap_err();
            assert!(err.contains("`execution`"), "{execution}: {err}");
        }
        // Disagreeing with the key's execution.
        let err = execution_of(json!({"idempotency_key": format!("{other}#ExecuteBot"),
            "execution": EXEC, "request": {"bot_id": "b"}}))
        .unwrap_err();
        assert!(err.contains("`execution`") && err.contains(other), "{err}");
        // Without a key, or with an envelope that is no ExecuteBot's.
        for event in [
            json!({"execution": EXEC, "request": {"bot_id": "b"}}),
            json!({"execution": EXEC, "schedule": {
                "schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/n",
                "scheduled_time": "2026-11-24T00:00:00Z"}, "request": {"bot_id": "b"}}),
        ] {
            let err = execution_of(event.clone()).unwrap_err();
            assert!(err.contains("`execution`"), "{event}: {err}");
        }
        let err = execution_of(json!({"idempotency_key": SCHEDULE_KEY, "execution": EXEC,
            "request": {"operation": "list_bots", "public_id": "p"}}))
        .unwrap_err();
        assert!(err.contains("`request.operation`"), "{err}");
    }
}
