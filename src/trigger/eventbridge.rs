//! EventBridge events (custom bus events, rule matches and scheduled rules): the request is the
//! event's `detail`. A `Scheduled Event` from `aws.events` with an empty `detail` runs the
//! configured default BOT. The idempotency key of an execute is the event's `id` (the same in
//! every delivery of one event), unless the `detail` names its own `idempotency_key`. An
//! `aws.states` event is Step Functions' "Execution Status Change" (docs/orphans.md), parsed
//! strictly; no other `aws.states` shape is taken.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

use super::{Decoded, Trigger, typed_error};
use crate::config::Requests;
use crate::idempotency::RecordKey;
use crate::request::{self, RequestError};

/// Decodes an event [`super::detect`] found to be EventBridge-shaped.
pub(super) fn decode(event: Value, config: &Requests) -> Decoded {
    let event = match serde_json::from_value::<EventBridgeEvent<Value>>(event) {
        Ok(event) => event,
        Err(e) => {
            return Decoded {
                trigger: Trigger::EventBridge,
                request: Err(typed_error("an EventBridge event", &e)),
            };
        }
    };
    // Step Functions' own events are the orphan path's (docs/orphans.md), never a request.
    if event.source == crate::orphans::STATES_SOURCE {
        let request =
            crate::orphans::StatusChange::parse(&event.detail_type, &event.detail).map(|change| {
                request::Request {
                    operation: request::Operation::ExecutionEnded(change),
                    language: config.language,
                }
            });
        return Decoded {
            trigger: Trigger::EventBridge,
            request,
        };
    }
    let scheduled = event.source == "aws.events" && event.detail_type == "Scheduled Event";
    let trigger = if scheduled {
        Trigger::Scheduled
    } else {
        Trigger::EventBridge
    };
    let request = match event.detail {
        Value::Object(map) => request::parse_map(map, config),
        // Scheduled rules deliver `{}`; tolerate a null detail the same way.
        Value::Null if scheduled => request::parse_map(Map::new(), config),
        other => Err(RequestError::Malformed(format!(
            "the EventBridge `detail` must be a request object, not {}",
            request::kind_of(&other)
        ))),
    };
    let request = request.and_then(|mut request| {
        if let Some(execute) = request.operation.execute_mut()
            && execute.idempotency_key.is_none()
            && let Some(id) = event.id.as_deref()
        {
            execute.idempotency_key = Some(
                RecordKey::event(id)
                    .map_err(|p| RequestError::field("id", format!("(the event id) {p}")))?,
            );
        }
        Ok(request)
    });
    Decoded { trigger, request }
}
