//! The one place where failures meet the outside world.
//!
//! Every failure of an invocation is a [`Failure`]. This module decides, per variant, the stable
//! Lambda `errorType` (what Step Functions `Retry`/`Catch` match on), the HTTP status and RFC 9457
//! `application/problem+json` body API Gateway callers get, and whether retrying is safe. Messages
//! are the `Display` text of the typed errors, which never contain credentials or raw bodies.

use std::time::Duration;

use lambda_runtime::Diagnostic;
use serde::Serialize;

use crate::cloudbot::CloudBotError;
use crate::credentials::CredentialsError;
use crate::request::RequestError;

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The event or request is invalid; nothing was sent upstream.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The Cloud BOT secret could not be read or is malformed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The Cloud BOT API call failed.
    #[error(transparent)]
    CloudBot(#[from] CloudBotError),
    /// A bug-class failure inside the function (e.g. a result that could not be encoded).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Every error type the function reports, with its HTTP status, retry safety and meaning: the
/// source of the documentation table (a test keeps README.md in step with it).
pub const ERROR_TABLE: &[(&str, u16, bool, &str)] = &[
    (
        "InvalidRequest",
        400,
        false,
        "the event or request is invalid (the message names the field); nothing was sent to Cloud BOT. API Gateway: 413 when the body is too large, 404 for an unknown route",
    ),
    (
        "Credentials.Unavailable",
        503,
        true,
        "Secrets Manager could not be read (throttled, unreachable, access denied, secret missing)",
    ),
    (
        "Credentials.Invalid",
        500,
        false,
        "the secret is not {\"access_token\",\"secret_key\"} JSON; the message names the key",
    ),
    (
        "CloudBot.Unauthorized",
        502,
        false,
        "Cloud BOT rejected the credentials, also after re-reading the secret once",
    ),
    (
        "CloudBot.Forbidden",
        502,
        false,
        "the access token lacks the permission (Execute / Refer)",
    ),
    (
        "CloudBot.NotFound",
        404,
        false,
        "unknown contract, BOT (or BOT not published via API) or job",
    ),
    (
        "CloudBot.BadRequest",
        422,
        false,
        "Cloud BOT refused the request as malformed (HTTP 400)",
    ),
    (
        "CloudBot.PayloadTooLarge",
        413,
        false,
        "the execute body is over 4 MB (checked before sending, or HTTP 413)",
    ),
    (
        "CloudBot.UnsupportedMediaType",
        502,
        false,
        "Cloud BOT rejected the content type (HTTP 415)",
    ),
    (
        "CloudBot.Unprocessable",
        422,
        false,
        "Cloud BOT could not process the request, e.g. invalid input data (HTTP 422)",
    ),
    (
        "CloudBot.RateLimited",
        503,
        true,
        "Cloud BOT answered 429; retry after the Retry-After delay",
    ),
    (
        "CloudBot.Unavailable",
        503,
        true,
        "Cloud BOT unreachable or failing (5xx, timeout, reset) and provably no job was started (or it was a read)",
    ),
    (
        "CloudBot.OutcomeUnknown",
        504,
        false,
        "execute may have reached Cloud BOT and it is unknown whether a job started: check the BOT's jobs before retrying",
    ),
    (
        "CloudBot.InvalidResponse",
        502,
        false,
        "Cloud BOT's answer could not be decoded",
    ),
    (
        "CloudBot.UnexpectedStatus",
        502,
        false,
        "Cloud BOT answered with an undocumented HTTP status",
    ),
    (
        "CloudBot.InvalidCredentials",
        500,
        false,
        "the secret's values cannot be sent as HTTP headers (fix the secret)",
    ),
    (
        "Function.DeadlineExceeded",
        504,
        true,
        "the invocation ran out of time before the request could be sent; no job was started",
    ),
    (
        "Function.Internal",
        500,
        false,
        "an internal error (the HTTP client could not be built, a body could not be encoded)",
    ),
];

impl Failure {
    /// Stable Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Failure::Request(_) => "InvalidRequest",
            Failure::Credentials(CredentialsError::Unavailable(_)) => "Credentials.Unavailable",
            Failure::Credentials(CredentialsError::Invalid(_)) => "Credentials.Invalid",
            Failure::CloudBot(err) => match err {
                CloudBotError::Unauthorized => "CloudBot.Unauthorized",
                CloudBotError::Forbidden => "CloudBot.Forbidden",
                CloudBotError::NotFound => "CloudBot.NotFound",
                CloudBotError::BadRequest { .. } => "CloudBot.BadRequest",
                CloudBotError::PayloadTooLarge { .. } => "CloudBot.PayloadTooLarge",
                CloudBotError::UnsupportedMediaType => "CloudBot.UnsupportedMediaType",
                CloudBotError::Unprocessable { .. } => "CloudBot.Unprocessable",
                CloudBotError::RateLimited { .. } => "CloudBot.RateLimited",
                CloudBotError::Unavailable { .. } => "CloudBot.Unavailable",
                CloudBotError::OutcomeUnknown { .. } => "CloudBot.OutcomeUnknown",
                CloudBotError::InvalidResponse { .. } => "CloudBot.InvalidResponse",
                CloudBotError::UnexpectedStatus { .. } => "CloudBot.UnexpectedStatus",
                CloudBotError::InvalidCredentials => "CloudBot.InvalidCredentials",
                // The client only says "no time left before sending": nothing reached Cloud BOT.
                CloudBotError::DeadlineExceeded => "Function.DeadlineExceeded",
                // What remains are the client's own internal failures (the HTTP client could not
                // be built, a body could not be encoded): nothing was sent.
                _ => "Function.Internal",
            },
            Failure::Internal(_) => "Function.Internal",
        }
    }

    /// HTTP status for API Gateway callers. Upstream auth failures are 502: a 401/403 would tell
    /// the caller that *their* credentials were refused.
    pub fn http_status(&self) -> u16 {
        match self {
            Failure::Request(RequestError::TooLarge { .. }) => 413,
            Failure::Request(RequestError::NoRoute { .. }) => 404,
            _ => ERROR_TABLE
                .iter()
                .find(|(name, ..)| *name == self.error_type())
                .map_or(502, |(_, status, ..)| *status),
        }
    }

    /// True when repeating the same request later is safe and may succeed.
    pub fn retryable(&self) -> bool {
        ERROR_TABLE
            .iter()
            .find(|(name, ..)| *name == self.error_type())
            .is_some_and(|(_, _, retryable, _)| *retryable)
    }

    /// Delay the upstream asked for, if any (sent as `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::CloudBot(CloudBotError::RateLimited { retry_after }) => *retry_after,
            _ => None,
        }
    }

    /// Short, fixed title for problem+json.
    fn title(&self) -> &'static str {
        match self {
            Failure::Request(RequestError::TooLarge { .. }) => "Request too large",
            Failure::Request(RequestError::NoRoute { .. }) => "No such route",
            Failure::Request(_) => "Invalid request",
            Failure::Credentials(_) => "Cloud BOT credentials unavailable",
            Failure::CloudBot(_) => "Cloud BOT call failed",
            Failure::Internal(_) => "Internal error",
        }
    }

    /// The failure as logged: its `Display` text without a message quoted from Cloud BOT
    /// (400/422). Such a message can quote the caller's input values, which are never logged;
    /// the caller still gets it in the Lambda error message or the problem detail.
    pub fn log_text(&self) -> String {
        match self {
            Failure::CloudBot(CloudBotError::Unprocessable { .. }) => {
                CloudBotError::Unprocessable { message: None }.to_string()
            }
            Failure::CloudBot(CloudBotError::BadRequest { .. }) => {
                CloudBotError::BadRequest { message: None }.to_string()
            }
            other => other.to_string(),
        }
    }

    /// The Lambda error for Step Functions, EventBridge and direct invocations.
    pub fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic {
            error_type: self.error_type().to_owned(),
            error_message: self.to_string(),
        }
    }

    /// RFC 9457 problem details for API Gateway callers.
    pub fn to_problem(&self) -> Problem {
        Problem {
            kind: format!("urn:cloudbot-trigger:error:{}", self.error_type()),
            title: self.title(),
            status: self.http_status(),
            detail: self.to_string(),
            error_type: self.error_type(),
            retryable: self.retryable(),
        }
    }
}

/// `application/problem+json` body (RFC 9457) plus the stable `error_type`.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `urn:cloudbot-trigger:error:<error_type>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem class.
    pub title: &'static str,
    /// HTTP status (also the response's status).
    pub status: u16,
    /// This occurrence, in words (names the field for invalid requests).
    pub detail: String,
    /// The stable error type, as Lambda `errorType` elsewhere.
    pub error_type: &'static str,
    /// Whether the same request may be retried.
    pub retryable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudbot::Failure as Wire;

    #[test]
    fn upstream_auth_failures_are_bad_gateway_not_401() {
        for err in [CloudBotError::Unauthorized, CloudBotError::Forbidden] {
            let f = Failure::CloudBot(err);
            assert_eq!(f.http_status(), 502);
            assert!(!f.retryable());
        }
    }

    #[test]
    fn only_documented_errors_are_retryable() {
        let retryable: Vec<_> = ERROR_TABLE.iter().filter(|r| r.2).map(|r| r.0).collect();
        assert_eq!(
            retryable,
            [
                "Credentials.Unavailable",
                "CloudBot.RateLimited",
                "CloudBot.Unavailable",
                "Function.DeadlineExceeded"
            ]
        );
        let f = Failure::CloudBot(CloudBotError::OutcomeUnknown {
            cause: Wire::Timeout,
        });
        assert_eq!(
            (f.error_type(), f.http_status(), f.retryable()),
            ("CloudBot.OutcomeUnknown", 504, false)
        );
    }

    #[test]
    fn request_errors_pick_their_status() {
        let too_large = Failure::Request(RequestError::TooLarge {
            what: "body",
            size: 9,
            limit: 1,
        });
        assert_eq!(
            (too_large.error_type(), too_large.http_status()),
            ("InvalidRequest", 413)
        );
        let field = Failure::Request(RequestError::field("bot_id", "bad"));
        let problem = field.to_problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.kind, "urn:cloudbot-trigger:error:InvalidRequest");
        assert!(problem.detail.contains("bot_id"));
    }

    #[test]
    fn every_error_type_has_a_table_row() {
        let samples = [
            Failure::Credentials(CredentialsError::Unavailable("x".into())),
            Failure::Credentials(CredentialsError::Invalid("x".into())),
            Failure::CloudBot(CloudBotError::NotFound),
            Failure::CloudBot(CloudBotError::BadRequest { message: None }),
            Failure::CloudBot(CloudBotError::PayloadTooLarge { size: 1 }),
            Failure::CloudBot(CloudBotError::UnsupportedMediaType),
            Failure::CloudBot(CloudBotError::Unprocessable { message: None }),
            Failure::CloudBot(CloudBotError::RateLimited { retry_after: None }),
            Failure::CloudBot(CloudBotError::Unavailable {
                cause: Wire::Connect,
            }),
            Failure::CloudBot(CloudBotError::InvalidResponse {
                status: 200,
                detail: "x",
            }),
            Failure::CloudBot(CloudBotError::UnexpectedStatus { status: 409 }),
            Failure::CloudBot(CloudBotError::InvalidCredentials),
            Failure::CloudBot(CloudBotError::DeadlineExceeded),
            Failure::Internal("x"),
        ];
        for f in samples {
            assert!(
                ERROR_TABLE.iter().any(|r| r.0 == f.error_type()),
                "{}",
                f.error_type()
            );
        }
    }
}
