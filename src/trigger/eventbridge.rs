//! EventBridge events (custom bus events, rule matches and scheduled rules): the request is the
//! event's `detail`. A `Scheduled Event` from `aws.events` with an empty `detail` runs the
//! configured default BOT.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

use super::{Decoded, Trigger, typed_error};
use crate::config::Config;
use crate::request::{self, RequestError};

/// Decodes an event [`super::detect`] found to be EventBridge-shaped.
pub(super) fn decode(event: Value, config: &Config) -> Decoded {
    let event = match serde_json::from_value::<EventBridgeEvent<Value>>(event) {
        Ok(event) => event,
        Err(e) => {
            return Decoded {
                trigger: Trigger::EventBridge,
                request: Err(typed_error("an EventBridge event", &e)),
            };
        }
    };
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
    Decoded { trigger, request }
}
