//! Trigger adapters: decode any supported event into the logical [`Request`], and encode the
//! answer back in the shape that trigger expects.
//!
//! Decoding order (the first match wins; shapes are told apart by discriminating keys on the raw
//! JSON, then decoded into the `aws_lambda_events` type):
//! 1. API Gateway HTTP API (payload 2.0): an object with `requestContext` and `"version": "2.0"`.
//! 2. API Gateway REST API / HTTP API payload 1.0: an object with `requestContext` and `httpMethod`.
//! 3. EventBridge (rule or bus event): an object with `detail-type`, `source` and `detail`; the
//!    request is `detail`. A `Scheduled Event` from `aws.events` with an empty `detail` runs the
//!    configured default BOT.
//! 4. Anything else is a plain request object (Step Functions task input, EventBridge Scheduler
//!    target input, direct invoke). Non-objects and unknown fields are rejected by name.
//!
//! API Gateway routes (matched on the trailing path segments, so stage and base-path prefixes
//! do not matter): `POST …/bots/{public_id}/{bot_id}/jobs` (execute; the body may carry `input`,
//! `callback_endpoint`, `callback_tries`, `timeout`, `language`), `GET …/jobs/{public_id}/{job_id}`
//! (refer_job), `GET …/bots/{public_id}` (list_bots), and `POST` on any other path with a full
//! request object as body. The only query parameter accepted is `language`.

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::outcome::Failure;
use crate::request::{self, MAX_UPSTREAM_BODY_BYTES, Request, RequestError};

/// Largest API Gateway body accepted, checked before decoding: the 4 MB execute body plus room
/// for the request's other fields.
pub const MAX_HTTP_BODY_BYTES: usize = MAX_UPSTREAM_BODY_BYTES + 64 * 1024;

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
    /// A plain request object (Step Functions, EventBridge Scheduler, direct invoke).
    Direct,
}

impl Trigger {
    /// Stable name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::ApiGatewayRest => "apigw-rest",
            Trigger::ApiGatewayHttp => "apigw-http",
            Trigger::EventBridge => "eventbridge",
            Trigger::Scheduled => "scheduled",
            Trigger::Direct => "direct",
        }
    }

    /// True when failures are answered as HTTP responses instead of Lambda errors.
    pub fn is_http(self) -> bool {
        matches!(self, Trigger::ApiGatewayRest | Trigger::ApiGatewayHttp)
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
    /// The result JSON (see README.md for its fields).
    pub body: Box<RawValue>,
    /// HTTP status for API Gateway (202 for execute, 200 otherwise).
    pub http_status: u16,
    /// `Location` header for API Gateway (the job reference endpoint after execute).
    pub location: Option<String>,
}

/// Decodes an event of any supported trigger.
pub fn decode(event: Value, config: &Config) -> Decoded {
    let obj = event.as_object();
    let has = |key: &str| obj.is_some_and(|o| o.contains_key(key));
    if has("requestContext")
        && obj.and_then(|o| o.get("version")).and_then(Value::as_str) == Some("2.0")
    {
        let request = serde_json::from_value::<ApiGatewayV2httpRequest>(event)
            .map_err(|e| typed_error("an API Gateway HTTP API (2.0) event", &e))
            .and_then(|ev| {
                let method = ev.request_context.http.method.as_str().to_owned();
                let path = ev
                    .request_context
                    .http
                    .path
                    .clone()
                    .or_else(|| ev.raw_path.clone())
                    .unwrap_or_default();
                http_request(
                    &method,
                    &path,
                    &ev.query_string_parameters,
                    ev.body.as_deref(),
                    ev.is_base64_encoded,
                    config,
                )
            });
        return Decoded {
            trigger: Trigger::ApiGatewayHttp,
            request,
        };
    }
    if has("requestContext") && has("httpMethod") {
        let request = serde_json::from_value::<ApiGatewayProxyRequest>(event)
            .map_err(|e| typed_error("an API Gateway REST API proxy event", &e))
            .and_then(|ev| {
                let path = ev.path.clone().unwrap_or_default();
                http_request(
                    ev.http_method.as_str(),
                    &path,
                    &ev.query_string_parameters,
                    ev.body.as_deref(),
                    ev.is_base64_encoded,
                    config,
                )
            });
        return Decoded {
            trigger: Trigger::ApiGatewayRest,
            request,
        };
    }
    if has("detail-type") && has("source") && has("detail") {
        return match serde_json::from_value::<EventBridgeEvent<Value>>(event) {
            Err(e) => Decoded {
                trigger: Trigger::EventBridge,
                request: Err(typed_error("an EventBridge event", &e)),
            },
            Ok(ev) => {
                let scheduled = ev.source == "aws.events" && ev.detail_type == "Scheduled Event";
                let trigger = if scheduled {
                    Trigger::Scheduled
                } else {
                    Trigger::EventBridge
                };
                let request = match ev.detail {
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
        };
    }
    let request = match event {
        Value::Object(map) => request::parse_map(map, config),
        other => Err(RequestError::Malformed(format!(
            "the event is not an API Gateway proxy event, an EventBridge event or a request object \
             (it is {})",
            request::kind_of(&other)
        ))),
    };
    Decoded {
        trigger: Trigger::Direct,
        request,
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

enum Route<'a> {
    Execute { public_id: &'a str, bot_id: &'a str },
    ReferJob { public_id: &'a str, job_id: &'a str },
    ListBots { public_id: &'a str },
    Body,
}

fn route<'a>(method: &str, path: &'a str) -> Option<Route<'a>> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let tail = |n: usize| {
        segments
            .len()
            .checked_sub(n)
            .map(|start| &segments[start..])
    };
    match method {
        "POST" => match tail(4) {
            Some(["bots", public_id, bot_id, "jobs"]) => Some(Route::Execute { public_id, bot_id }),
            _ => Some(Route::Body),
        },
        "GET" => {
            if let Some(["jobs", public_id, job_id]) = tail(3) {
                Some(Route::ReferJob { public_id, job_id })
            } else if let Some(["bots", public_id]) = tail(2) {
                Some(Route::ListBots { public_id })
            } else {
                None
            }
        }
        _ => None,
    }
}

fn http_request(
    method: &str,
    path: &str,
    query: &QueryMap,
    body: Option<&str>,
    base64: bool,
    config: &Config,
) -> Result<Request, RequestError> {
    let route = route(method, path).ok_or_else(|| RequestError::NoRoute {
        method: method.chars().take(16).collect(),
        // The path is caller-controlled: keep the message short.
        path: path.chars().take(200).collect(),
    })?;
    let mut map = http_body(body, base64)?;
    if matches!(route, Route::ReferJob { .. } | Route::ListBots { .. }) && !map.is_empty() {
        return Err(RequestError::Malformed(
            "a GET request must not have a body".into(),
        ));
    }

    if matches!(route, Route::Body) && body.is_none_or(|b| b.trim().is_empty()) {
        return Err(RequestError::Malformed("the request body is empty".into()));
    }
    if matches!(route, Route::Execute { .. }) && map.contains_key("bot_endpoint") {
        return Err(RequestError::field(
            "bot_endpoint",
            "conflicts with the BOT in the path",
        ));
    }
    let mut from_path = |field: &'static str, value: Value| -> Result<(), RequestError> {
        if map.contains_key(field) {
            return Err(RequestError::field(
                field,
                "is given both in the path and in the body",
            ));
        }
        map.insert(field.to_owned(), value);
        Ok(())
    };
    match route {
        Route::Execute { public_id, bot_id } => {
            from_path("operation", "execute".into())?;
            from_path("public_id", public_id.into())?;
            from_path("bot_id", bot_id.into())?;
        }
        Route::ReferJob { public_id, job_id } => {
            from_path("operation", "refer_job".into())?;
            from_path("public_id", public_id.into())?;
            from_path("job_id", job_id.into())?;
        }
        Route::ListBots { public_id } => {
            from_path("operation", "list_bots".into())?;
            from_path("public_id", public_id.into())?;
        }
        Route::Body => {}
    }
    for (key, value) in query.iter() {
        if key != "language" {
            return Err(RequestError::field(
                format!("?{key}"),
                "unknown query parameter (only `language` is accepted)",
            ));
        }
        from_path("language", value.into())?;
    }
    request::parse_map(map, config)
}

/// Checks the size before decoding anything, then base64-decodes and parses the body.
fn http_body(body: Option<&str>, base64: bool) -> Result<Map<String, Value>, RequestError> {
    let Some(body) = body else {
        return Ok(Map::new());
    };
    // base64 grows the body by 4/3: compare the decoded size the text can hold.
    let decoded_len = if base64 {
        body.len() / 4 * 3
    } else {
        body.len()
    };
    if decoded_len > MAX_HTTP_BODY_BYTES {
        return Err(RequestError::TooLarge {
            what: "the request body",
            size: decoded_len,
            limit: MAX_HTTP_BODY_BYTES,
        });
    }
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| RequestError::Malformed("the request body is not valid base64".into()))?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(RequestError::Malformed(format!(
            "the request body must be a JSON object, not {}",
            request::kind_of(&other)
        ))),
        // Position only: the body is user data.
        Err(e) => Err(RequestError::Malformed(format!(
            "the request body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

/// Encodes the result for the trigger: API Gateway always gets an HTTP response (errors as
/// problem+json); every other trigger gets the result JSON or a Lambda error.
pub fn encode(
    trigger: Trigger,
    result: Result<Answer, Failure>,
) -> Result<Box<RawValue>, lambda_runtime::Diagnostic> {
    if !trigger.is_http() {
        return result
            .map(|answer| answer.body)
            .map_err(|f| f.to_diagnostic());
    }
    let mut headers = HeaderMap::new();
    let (status, content_type, body) = match result {
        Ok(answer) => {
            if let Some(location) = answer
                .location
                .as_deref()
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                headers.insert(header::LOCATION, location);
            }
            (
                answer.http_status,
                "application/json",
                answer.body.get().to_owned(),
            )
        }
        Err(failure) => {
            if let Some(delay) = failure.retry_after() {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(delay.as_secs()));
            }
            let problem = failure.to_problem();
            let body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".to_owned());
            (problem.status, "application/problem+json", body)
        }
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let encoded = if trigger == Trigger::ApiGatewayHttp {
        let mut response = ApiGatewayV2httpResponse::default();
        response.status_code = i64::from(status);
        response.headers = headers;
        response.body = Some(Body::Text(body));
        response.is_base64_encoded = false;
        serde_json::value::to_raw_value(&response)
    } else {
        let mut response = ApiGatewayProxyResponse::default();
        response.status_code = i64::from(status);
        response.headers = headers;
        response.body = Some(Body::Text(body));
        response.is_base64_encoded = false;
        serde_json::value::to_raw_value(&response)
    };
    encoded.map_err(|e| lambda_runtime::Diagnostic {
        error_type: "Function.EncodingFailed".to_owned(),
        error_message: format!("could not encode the API Gateway response: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "CLOUDBOT_SECRET_ID" => Some("s".into()),
            "CLOUDBOT_DEFAULT_BOT_ENDPOINT" => {
                Some("https://api.c-bot.pro/demo/bots/echo_bot/jobs".into())
            }
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn routes_match_on_trailing_segments_whatever_the_prefix() {
        assert!(matches!(
            route("POST", "/prod/v1/bots/demo/echo_bot/jobs"),
            Some(Route::Execute {
                public_id: "demo",
                bot_id: "echo_bot"
            })
        ));
        assert!(matches!(
            route("GET", "/jobs/demo/abc"),
            Some(Route::ReferJob {
                public_id: "demo",
                job_id: "abc"
            })
        ));
        assert!(matches!(
            route("GET", "/stage/bots/demo"),
            Some(Route::ListBots { public_id: "demo" })
        ));
        assert!(matches!(route("POST", "/run"), Some(Route::Body)));
        assert!(route("GET", "/run").is_none());
        assert!(route("PUT", "/bots/demo/echo_bot/jobs").is_none());
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
            crate::request::Operation::Execute {
                default_bot: true,
                ..
            }
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
    fn base64_size_is_checked_before_decoding() {
        let huge = "A".repeat((MAX_HTTP_BODY_BYTES + 10) * 4 / 3);
        assert!(matches!(
            http_body(Some(&huge), true),
            Err(RequestError::TooLarge { .. })
        ));
        assert!(matches!(
            http_body(Some("%%%"), true),
            Err(RequestError::Malformed(_))
        ));
        assert!(http_body(Some("  "), false).unwrap().is_empty());
    }
}
