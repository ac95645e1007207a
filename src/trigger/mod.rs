//! Trigger adapters: tell the event's shape apart, decode it into the logical [`Request`], and
//! encode the answer back in the shape that trigger expects.
//!
//! [`detect`] looks only at discriminating keys of the raw JSON, in this order (the first match
//! wins, the way `lambda_http`'s deserializer tries event types in a fixed order):
//! 1. API Gateway HTTP API (payload 2.0): an object with `requestContext` and `"version": "2.0"`.
//! 2. API Gateway REST API / HTTP API payload 1.0: an object with `requestContext` and `httpMethod`.
//! 3. EventBridge (rule or bus event): an object with `detail-type`, `source` and `detail`.
//! 4. Anything else is a plain request object (Step Functions task input, EventBridge Scheduler
//!    target input, direct invoke), bare or in an envelope with its idempotency key
//!    ([`envelope`]). Non-objects and unknown fields are rejected by name.
//!
//! The detected shape is then decoded into its `aws_lambda_events` type by the adapter of its
//! family: [`http`] (both API Gateway payload versions share one path), [`eventbridge`] and
//! [`envelope`]. Each adapter also takes the trigger's idempotency key (docs/exactly-once.md).
//! The request contract and the routes are documented in docs/contract.md.
//!
//! An SQS event (the run queue) is a batch, not one request: [`is_sqs_event`] tells it apart
//! before [`decode`], and [`decode_batch`] decodes its messages ([`sqs`], docs/queue.md).

mod batch;
mod envelope;
mod eventbridge;
mod execution;
mod http;
mod route;
mod sqs;

use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;

pub use batch::{Fate, encode_batch, fate_table};
pub use route::MAX_HTTP_BODY_BYTES;
pub use sqs::{Lane, Queued, decode_batch, decode_message_body, is_sqs_event};

use crate::config::Requests;
use crate::error::Failure;
use crate::payload::Payload;
use crate::request::{OperationKind, Request, RequestError};

/// Which kind of trigger delivered the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// API Gateway REST API (or HTTP API payload 1.0) proxy integration.
    ApiGatewayRest,
    /// API Gateway HTTP API payload 2.0.
    ApiGatewayHttp,
    /// An EventBridge event (custom bus event or rule match); request in `detail`.
    EventBridge,
    /// An EventBridge scheduled rule event (`Scheduled Event`).
    Scheduled,
    /// EventBridge Scheduler with the template's input envelope (`schedule` + `request`).
    Scheduler,
    /// A plain request object (Step Functions, direct invoke, a schedule with a plain input).
    Direct,
    /// A message of the run queue (SQS, docs/queue.md).
    Queue,
}

impl Trigger {
    /// Stable name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::ApiGatewayRest => "apigw-rest",
            Trigger::ApiGatewayHttp => "apigw-http",
            Trigger::EventBridge => "eventbridge",
            Trigger::Scheduled => "scheduled",
            Trigger::Scheduler => "scheduler",
            Trigger::Direct => "direct",
            Trigger::Queue => "sqs",
        }
    }

    /// True when failures are answered as HTTP responses instead of Lambda errors.
    pub fn is_http(self) -> bool {
        matches!(self, Trigger::ApiGatewayRest | Trigger::ApiGatewayHttp)
    }

    /// How long the Cloud BOT client may wait between attempts in one invocation of this
    /// trigger (docs/contract.md, "Retry budget per trigger"). An HTTP caller waits
    /// synchronously behind API Gateway's integration timeout: it gets an early 503 with
    /// `Retry-After` rather than a long wait. The other triggers are asynchronous or have their
    /// own retries (Step Functions), so only the invocation's deadline bounds them.
    /// A run queue message is put back rather than held (the batch's other messages wait on it):
    /// it gets the same short budget.
    pub fn retry_budget(self) -> Duration {
        if self.is_http() || self == Trigger::Queue {
            HTTP_RETRY_BUDGET
        } else {
            Duration::MAX
        }
    }
}

/// Retry budget of API Gateway invocations (see [`Trigger::retry_budget`]).
pub const HTTP_RETRY_BUDGET: Duration = Duration::from_secs(2);

/// The event shapes [`detect`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// API Gateway proxy event, payload 2.0.
    HttpV2,
    /// API Gateway proxy event, REST API or payload 1.0.
    HttpV1,
    /// EventBridge event (rule, bus or schedule).
    EventBridge,
    /// Anything else: a plain request.
    Request,
}

/// The event's shape, from its discriminating keys alone (order in the module header).
fn detect(event: &Value) -> Shape {
    let Some(obj) = event.as_object() else {
        return Shape::Request;
    };
    let has = |key: &str| obj.contains_key(key);
    if has("requestContext") && obj.get("version").and_then(Value::as_str) == Some("2.0") {
        Shape::HttpV2
    } else if has("requestContext") && has("httpMethod") {
        Shape::HttpV1
    } else if has("detail-type") && has("source") && has("detail") {
        Shape::EventBridge
    } else {
        Shape::Request
    }
}

/// A decoded event: the trigger is known even when the request is invalid, so the error can be
/// answered in that trigger's shape.
#[derive(Debug)]
pub struct Decoded {
    /// The trigger kind.
    pub trigger: Trigger,
    /// The validated request, or why there is none.
    pub request: Result<Request, RequestError>,
}

/// A successful answer, before trigger-specific encoding.
#[derive(Debug)]
pub struct Answer {
    /// The result JSON (fields in docs/contract.md).
    pub body: Box<RawValue>,
    /// HTTP status for API Gateway (202 for execute, 200 otherwise).
    pub http_status: u16,
    /// `Location` header for API Gateway (the job reference endpoint after execute).
    pub location: Option<String>,
}

/// Decodes the invocation payload: a payload that is not JSON, or not JSON we accept (see
/// [`crate::payload`]), is an invalid direct request.
pub fn decode_payload(payload: &Payload, config: &Requests) -> Decoded {
    match payload.parse() {
        Ok(event) => decode(event, config),
        Err(err) => Decoded {
            trigger: Trigger::Direct,
            request: Err(err),
        },
    }
}

/// Decodes an event of any supported trigger.
pub fn decode(event: Value, config: &Requests) -> Decoded {
    let decoded = decode_shape(event, config);
    let trigger = decoded.trigger;
    let request = decoded.request.and_then(|request| {
        // Settling an idempotency record is an operator's act: never from an event source or
        // an HTTP caller, whatever the payload says.
        if request.operation.kind() == OperationKind::ResolveIdempotency
            && trigger != Trigger::Direct
        {
            return Err(RequestError::field(
                "operation",
                "`resolve_idempotency` is accepted from a direct invocation only",
            ));
        }
        crate::rerun::envelope::check_delivery(trigger == Trigger::Direct, &request)?;
        Ok(request)
    });
    Decoded { trigger, request }
}

fn decode_shape(event: Value, config: &Requests) -> Decoded {
    match detect(&event) {
        Shape::HttpV2 => Decoded {
            trigger: Trigger::ApiGatewayHttp,
            request: http::decode(http::Version::V2, event, config),
        },
        Shape::HttpV1 => Decoded {
            trigger: Trigger::ApiGatewayRest,
            request: http::decode(http::Version::V1, event, config),
        },
        Shape::EventBridge => eventbridge::decode(event, config),
        Shape::Request => envelope::decode(event, config),
    }
}

/// Encodes the result for the trigger: API Gateway always gets an HTTP response (errors as
/// problem+json); every other trigger gets the result JSON or a Lambda error.
pub fn encode(
    trigger: Trigger,
    result: Result<Answer, Failure>,
) -> Result<Box<RawValue>, lambda_runtime::Diagnostic> {
    match trigger {
        Trigger::ApiGatewayHttp => http::encode(http::Version::V2, result),
        Trigger::ApiGatewayRest => http::encode(http::Version::V1, result),
        Trigger::EventBridge
        | Trigger::Scheduled
        | Trigger::Scheduler
        | Trigger::Direct
        | Trigger::Queue => result
            .map(|answer| answer.body)
            .map_err(lambda_runtime::Diagnostic::from),
    }
}

/// serde's messages can quote values (an API Gateway event carries `Authorization`), so only the
/// position is kept.
fn typed_error(what: &str, err: &serde_json::Error) -> RequestError {
    RequestError::Malformed(format!(
        "the event looks like {what} but does not decode as one ({:?} error at line {}, column {})",
        err.classify(),
        err.line(),
        err.column()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn config() -> Requests {
        crate::config::Config::from_lookup(|k| match k {
            "CLOUDBOT_SECRET_ID" => Some("s".into()),
            "CLOUDBOT_DEFAULT_BOT_ENDPOINT" => {
                Some("https://api.c-bot.pro/demo/bots/echo_bot/jobs".into())
            }
            _ => None,
        })
        .unwrap()
        .requests
    }

    #[test]
    fn an_api_execute_carries_the_signing_principal_and_nothing_else_does() {
        let cfg = config();
        let arn = "arn:aws:sts::123456789012:assumed-role/Ops/alice";
        let caller = |event: Value| match decode(event, &cfg).request.unwrap().operation {
            crate::request::Operation::Execute(execute) => execute.caller,
            other => panic!("{other:?}"),
        };
        let body = r#"{"public_id": "demo", "bot_id": "echo_bot"}"#;
        let v2 = |authorizer: Value| {
            json!({"version": "2.0", "rawPath": "/run", "body": body, "isBase64Encoded": false,
                   "requestContext": {"http": {"method": "POST", "path": "/run"},
                                      "timeEpoch": 0, "authorizer": authorizer}})
        };
        assert_eq!(
            caller(v2(
                json!({"iam": {"userArn": arn, "accessKey": "AKIAEXAMPLE"}})
            ))
            .as_deref(),
            Some(arn)
        );
        // An API without the IAM authorizer (or an empty ARN) names nobody.
        assert_eq!(
            caller(v2(json!({"jwt": {"claims": {}, "scopes": null}}))),
            None
        );
        assert_eq!(caller(v2(json!({"iam": {"userArn": ""}}))), None);
        let v1 = json!({"httpMethod": "POST", "path": "/run", "body": body,
                        "requestContext": {"httpMethod": "POST", "identity": {"userArn": arn}}});
        assert_eq!(caller(v1).as_deref(), Some(arn));
        // A direct invoke says nothing about its caller, whatever its body holds.
        let direct = json!({"public_id": "demo", "bot_id": "echo_bot"});
        assert_eq!(caller(direct), None);
        let forged = json!({"public_id": "demo", "bot_id": "echo_bot", "caller": arn});
        assert!(decode(forged, &cfg).request.is_err(), "an unknown field");
    }

    #[test]
    fn shapes_are_told_apart_in_the_documented_order() {
        let cfg = config();
        let v2 = json!({"version": "2.0", "routeKey": "GET /bots/{p}", "rawPath": "/bots/demo",
            "requestContext": {"http": {"method": "GET", "path": "/bots/demo"}, "timeEpoch": 0}});
        assert_eq!(decode(v2, &cfg).trigger, Trigger::ApiGatewayHttp);
        let v1 = json!({"httpMethod": "GET", "path": "/bots/demo", "requestContext": {"httpMethod": "GET"}});
        assert_eq!(decode(v1, &cfg).trigger, Trigger::ApiGatewayRest);
        let scheduled =
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        let decoded = decode(scheduled, &cfg);
        assert_eq!(decoded.trigger, Trigger::Scheduled);
        assert!(matches!(
            decoded.request.unwrap().operation,
            crate::request::Operation::Execute(crate::request::Execute {
                default_bot: true,
                ..
            })
        ));
        let custom =
            json!({"detail-type": "Run", "source": "app", "detail": {"operation": "list_bots"}});
        assert_eq!(decode(custom, &cfg).trigger, Trigger::EventBridge);
        // A plain request that merely has a `detail` key is not an EventBridge event.
        let plain = json!({"detail": {}});
        let decoded = decode(plain, &cfg);
        assert_eq!(decoded.trigger, Trigger::Direct);
        assert!(decoded.request.unwrap_err().to_string().contains("detail"));
    }

    #[test]
    fn an_earlier_shape_wins_when_keys_of_several_are_present() {
        // `version: "2.0"` beats `httpMethod`; API Gateway beats EventBridge keys.
        let both = json!({"version": "2.0", "httpMethod": "GET", "requestContext": {},
            "detail-type": "x", "source": "y", "detail": {}});
        assert_eq!(detect(&both), Shape::HttpV2);
        let v1_and_eb = json!({"httpMethod": "GET", "requestContext": {},
            "detail-type": "x", "source": "y", "detail": {}});
        assert_eq!(detect(&v1_and_eb), Shape::HttpV1);
        for other in [
            json!([]),
            json!("x"),
            json!(null),
            json!({"version": "2.0"}),
        ] {
            assert_eq!(detect(&other), Shape::Request, "{other}");
        }
    }
}
