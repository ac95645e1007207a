//! API Gateway proxy events, REST API (payload 1.0) and HTTP API (payload 2.0), on one path: each
//! payload version is decoded into its `aws_lambda_events` type and reduced to the same
//! [`HttpRequest`]; the request is built from that by [`route`]; the answer is one HTTP response
//! wrapped in the version's response type. An HTTP error is a response (problem+json), never a
//! function failure, which API Gateway would turn into a bare 502.

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use serde_json::value::RawValue;

use super::route::{self, HttpRequest};
use super::{Answer, typed_error};
use crate::config::Requests;
use crate::error::Failure;
use crate::request::{Request, RequestError};

/// The request header that carries the idempotency key (IETF httpapi draft).
pub(super) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// API Gateway payload version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// REST API, or HTTP API payload 1.0.
    V1,
    /// HTTP API payload 2.0.
    V2,
}

/// A decoded API Gateway event of either version.
enum HttpEvent {
    V1(Box<ApiGatewayProxyRequest>),
    V2(Box<ApiGatewayV2httpRequest>),
}

impl HttpEvent {
    fn decode(version: Version, event: Value) -> Result<Self, RequestError> {
        match version {
            Version::V1 => serde_json::from_value(event)
                .map(|e| HttpEvent::V1(Box::new(e)))
                .map_err(|e| typed_error("an API Gateway REST API proxy event", &e)),
            Version::V2 => serde_json::from_value(event)
                .map(|e| HttpEvent::V2(Box::new(e)))
                .map_err(|e| typed_error("an API Gateway HTTP API (2.0) event", &e)),
        }
    }

    fn parts(&self) -> HttpRequest<'_> {
        match self {
            HttpEvent::V1(e) => HttpRequest {
                method: e.http_method.as_str(),
                path: e.path.as_deref().unwrap_or_default(),
                query: &e.query_string_parameters,
                body: e.body.as_deref(),
                base64: e.is_base64_encoded,
                idempotency_key: e.headers.get(IDEMPOTENCY_KEY),
                caller: e.request_context.identity.user_arn.as_deref(),
            },
            HttpEvent::V2(e) => HttpRequest {
                method: e.request_context.http.method.as_str(),
                path: e
                    .request_context
                    .http
                    .path
                    .as_deref()
                    .or(e.raw_path.as_deref())
                    .unwrap_or_default(),
                query: &e.query_string_parameters,
                body: e.body.as_deref(),
                base64: e.is_base64_encoded,
                idempotency_key: e.headers.get(IDEMPOTENCY_KEY),
                caller: e
                    .request_context
                    .authorizer
                    .as_ref()
                    .and_then(|a| a.iam.as_ref())
                    .and_then(|iam| iam.user_arn.as_deref()),
            },
        }
    }
}

/// Decodes an event [`super::detect`] found to be an API Gateway proxy event of `version`.
pub(super) fn decode(
    version: Version,
    event: Value,
    config: &Requests,
) -> Result<Request, RequestError> {
    let event = HttpEvent::decode(version, event)?;
    route::build(&event.parts(), config)
}

/// The answer as an API Gateway response of `version`.
pub(super) fn encode(
    version: Version,
    result: Result<Answer, Failure>,
) -> Result<Box<RawValue>, Diagnostic> {
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
    let encoded = match version {
        Version::V2 => {
            let mut response = ApiGatewayV2httpResponse::default();
            response.status_code = i64::from(status);
            response.headers = headers;
            response.body = Some(Body::Text(body));
            response.is_base64_encoded = false;
            serde_json::value::to_raw_value(&response)
        }
        Version::V1 => {
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = i64::from(status);
            response.headers = headers;
            response.body = Some(Body::Text(body));
            response.is_base64_encoded = false;
            serde_json::value::to_raw_value(&response)
        }
    };
    encoded.map_err(|_| {
        Diagnostic::from(Failure::Internal(
            "the API Gateway response could not be encoded",
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cloudbot::{Cause, CloudBotError};

    fn answer(version: Version, err: CloudBotError) -> Value {
        let raw = encode(version, Err(Failure::CloudBot(err))).unwrap();
        serde_json::from_str(raw.get()).unwrap()
    }

    /// Whatever the error type, a Retry-After the server gave reaches the HTTP caller.
    #[test]
    fn a_retryable_failure_answers_with_the_servers_retry_after() {
        for version in [Version::V1, Version::V2] {
            for (err, error_type) in [
                (
                    CloudBotError::Unavailable {
                        cause: Cause::Status(503),
                        retry_after: Some(Duration::from_secs(30)),
                    },
                    "CloudBot.Unavailable",
                ),
                (
                    CloudBotError::RateLimited {
                        retry_after: Some(Duration::from_secs(30)),
                    },
                    "CloudBot.RateLimited",
                ),
            ] {
                let response = answer(version, err);
                assert_eq!(response["statusCode"], 503, "{version:?}");
                assert_eq!(response["headers"]["retry-after"], "30", "{version:?}");
                let problem: Value =
                    serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
                assert_eq!(problem["error_type"], error_type);
            }
        }
    }

    #[test]
    fn no_retry_after_is_invented() {
        for err in [
            CloudBotError::Unavailable {
                cause: Cause::Connect,
                retry_after: None,
            },
            CloudBotError::OutcomeUnknown {
                cause: Cause::Status(503),
            },
        ] {
            let response = answer(Version::V2, err);
            assert!(
                response["headers"].get("retry-after").is_none(),
                "{response}"
            );
        }
    }
}
