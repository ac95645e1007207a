//! The one place where failures meet the outside world.
//!
//! Every failure of an invocation is a [`Failure`]. Its identity (stable Lambda `errorType`, HTTP
//! status, retry safety, meaning) is a row of the typed error table in [`kind`]; each error enum
//! picks its row with one exhaustive `match` (`classify`, [`Classified`]). This module turns a failure into the Lambda error
//! ([`Diagnostic`]) and into the RFC 9457 `application/problem+json` body API Gateway callers get.
//! Messages are the `Display` text of the typed errors, which never contain credentials or raw
//! bodies.

mod classify;
pub mod kind;

use std::time::Duration;

use lambda_runtime::Diagnostic;
use serde::Serialize;

pub use classify::Classified;
pub use kind::ErrorKind;

use crate::callback::CallbackError;
use crate::cloudbot::CloudBotError;
use crate::credentials::CredentialsError;
use crate::idempotency::IdempotencyError;
use crate::overrun::OverrunError;
use crate::request::RequestError;
use crate::schedule::ScheduleError;
use crate::usage::BudgetError;

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
    /// The idempotency layer refused to send (or the store is down); nothing was sent.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// A callback could not be handled, or an execute could not register its callback.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// A managed schedule's tick was refused (too late, calendar unanswerable); nothing sent.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// A job passed its maximum run time (suspended), or could not be suspended.
    #[error(transparent)]
    Overrun(#[from] OverrunError),
    /// The month's budget refused a `normal` execute; nothing sent (docs/usage.md).
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The orphan paths could not find or suspend the runs (docs/orphans.md).
    #[error(transparent)]
    Orphan(#[from] crate::orphans::OrphanError),
    /// A bug-class failure inside the function (e.g. a result that could not be encoded).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Failure {
    /// The failure's row in the error table.
    pub fn kind(&self) -> &'static ErrorKind {
        match self {
            Failure::Request(_) => &kind::INVALID_REQUEST,
            Failure::Credentials(err) => err.kind(),
            Failure::CloudBot(err) => err.kind(),
            Failure::Idempotency(err) => err.kind(),
            Failure::Callback(err) => err.kind(),
            Failure::Schedule(err) => err.kind(),
            Failure::Overrun(err) => err.kind(),
            Failure::Budget(err) => err.kind(),
            Failure::Orphan(err) => err.kind(),
            Failure::Internal(_) => &kind::FUNCTION_INTERNAL,
        }
    }

    /// Stable Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        self.kind().name
    }

    /// HTTP status for API Gateway callers: the table's, except the two request errors that have
    /// a more precise HTTP meaning.
    pub fn http_status(&self) -> u16 {
        match self {
            Failure::Request(RequestError::TooLarge { .. }) => 413,
            Failure::Request(RequestError::NoRoute { .. }) => 404,
            _ => self.kind().http_status,
        }
    }

    /// True when repeating the same request later is safe and may succeed.
    pub fn retryable(&self) -> bool {
        self.kind().retryable
    }

    /// Delay the upstream asked for, if any (sent as `Retry-After`): Cloud BOT's `Retry-After`
    /// on a 429 or on a 5xx that left nothing started (see [`CloudBotError::retry_after`]).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::CloudBot(err) => err.retry_after(),
            Failure::Idempotency(IdempotencyError::InProgress { retry_after, .. }) => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// Short, fixed title for problem+json.
    fn title(&self) -> &'static str {
        match self {
            Failure::Request(RequestError::TooLarge { .. }) => "Request too large",
            Failure::Request(RequestError::NoRoute { .. }) => "No such route",
            Failure::Request(_) => "Invalid request",
            Failure::Credentials(CredentialsError::UnknownContract(_)) => {
                "No Cloud BOT secret for this contract"
            }
            Failure::Credentials(_) => "Cloud BOT credentials unavailable",
            Failure::CloudBot(_) => "Cloud BOT call failed",
            Failure::Idempotency(IdempotencyError::KeyReused { .. }) => "Idempotency key reused",
            Failure::Idempotency(IdempotencyError::InProgress { .. }) => {
                "A request with this idempotency key is in progress"
            }
            Failure::Idempotency(IdempotencyError::OutcomeUnknown { .. }) => {
                "Outcome of the first request is unknown"
            }
            Failure::Idempotency(IdempotencyError::Unavailable(_)) => {
                "Idempotency store unavailable"
            }
            Failure::Callback(CallbackError::NotFound) => "No such callback",
            Failure::Callback(_) => "Callback not handled",
            Failure::Schedule(ScheduleError::TooLate { .. }) => "Scheduled tick delivered too late",
            Failure::Schedule(_) => "Scheduled tick not decided",
            Failure::Overrun(OverrunError::Overrun { .. }) => "Job ran past its maximum run time",
            Failure::Overrun(OverrunError::SuspendForbidden { .. }) => {
                "Job past its maximum run time could not be suspended"
            }
            Failure::Budget(_) => "BOT-seconds budget exhausted",
            Failure::Orphan(crate::orphans::OrphanError::Unavailable { .. }) => {
                "Open runs could not be read"
            }
            Failure::Orphan(crate::orphans::OrphanError::SuspendForbidden) => {
                "Orphaned job could not be suspended"
            }
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

/// The Lambda error for Step Functions, EventBridge and direct invocations.
impl From<&Failure> for Diagnostic {
    fn from(failure: &Failure) -> Self {
        Diagnostic {
            error_type: failure.error_type().to_owned(),
            error_message: failure.to_string(),
        }
    }
}

impl From<Failure> for Diagnostic {
    fn from(failure: Failure) -> Self {
        Diagnostic::from(&failure)
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
    use std::collections::HashSet;

    use super::*;
    use crate::cloudbot::Cause;
    use crate::idempotency::RecordKey;
    use crate::table::StoreError;

    fn key() -> RecordKey {
        RecordKey::request("k").unwrap()
    }

    #[test]
    fn idempotency_refusals_carry_their_status_and_retry_after() {
        let in_progress = Failure::Idempotency(IdempotencyError::InProgress {
            key: key(),
            retry_after: Duration::from_secs(3),
        });
        assert_eq!(in_progress.http_status(), 409);
        assert_eq!(in_progress.retry_after(), Some(Duration::from_secs(3)));
        let reused = Failure::Idempotency(IdempotencyError::KeyReused { key: key() });
        assert_eq!((reused.http_status(), reused.retryable()), (422, false));
        let unknown = Failure::Idempotency(IdempotencyError::OutcomeUnknown {
            key: key(),
            owner_gone: false,
            reconcile: None,
        });
        assert_eq!(unknown.error_type(), "CloudBot.OutcomeUnknown");
    }

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
        let retryable: Vec<_> = kind::ALL
            .iter()
            .filter(|k| k.retryable)
            .map(|k| k.name)
            .collect();
        assert_eq!(
            retryable,
            [
                "Credentials.Unavailable",
                "CloudBot.RateLimited",
                "CloudBot.Unavailable",
                "Idempotency.InProgress",
                "Idempotency.Unavailable",
                "Callback.NotReady",
                "Callback.Unavailable",
                "Orphans.Unavailable",
                "Function.DeadlineExceeded"
            ]
        );
        let f = Failure::CloudBot(CloudBotError::OutcomeUnknown {
            cause: Cause::Timeout,
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

    /// One failure of every variant of every error enum: together they reach every row, and
    /// every row they reach is in the table (no dead rows, no rows missing from [`kind::ALL`]).
    #[test]
    fn every_row_is_reached_and_every_kind_is_listed() {
        let samples = [
            Failure::Request(RequestError::field("x", "y")),
            Failure::Credentials(CredentialsError::Unavailable("x".into())),
            Failure::Credentials(CredentialsError::Invalid("x".into())),
            Failure::Credentials(CredentialsError::UnknownContract(
                crate::cloudbot::PublicId::parse("x", "x").unwrap(),
            )),
            Failure::CloudBot(CloudBotError::Unauthorized),
            Failure::CloudBot(CloudBotError::Forbidden),
            Failure::CloudBot(CloudBotError::NotFound),
            Failure::CloudBot(CloudBotError::BadRequest { message: None }),
            Failure::CloudBot(CloudBotError::PayloadTooLarge { size: 1 }),
            Failure::CloudBot(CloudBotError::UnsupportedMediaType),
            Failure::CloudBot(CloudBotError::Unprocessable { message: None }),
            Failure::CloudBot(CloudBotError::RateLimited { retry_after: None }),
            Failure::CloudBot(CloudBotError::Unavailable {
                cause: Cause::Connect,
                retry_after: None,
            }),
            Failure::CloudBot(CloudBotError::OutcomeUnknown {
                cause: Cause::Timeout,
            }),
            Failure::CloudBot(CloudBotError::InvalidResponse {
                status: 200,
                detail: "x",
            }),
            Failure::CloudBot(CloudBotError::UnexpectedStatus { status: 409 }),
            Failure::CloudBot(CloudBotError::InvalidCredentials),
            Failure::CloudBot(CloudBotError::DeadlineExceeded),
            Failure::CloudBot(CloudBotError::Internal { detail: "x" }),
            Failure::Idempotency(IdempotencyError::KeyReused { key: key() }),
            Failure::Idempotency(IdempotencyError::InProgress {
                key: key(),
                retry_after: Duration::from_secs(3),
            }),
            Failure::Idempotency(IdempotencyError::OutcomeUnknown {
                key: key(),
                owner_gone: true,
                reconcile: None,
            }),
            Failure::Idempotency(IdempotencyError::Unavailable(StoreError::Unavailable(
                "x".into(),
            ))),
            Failure::Callback(CallbackError::NotFound),
            Failure::Callback(CallbackError::NotReady),
            Failure::Callback(CallbackError::Unavailable("x".into())),
            Failure::Schedule(ScheduleError::TooLate {
                schedule: "s".into(),
                scheduled_time: jiff::Timestamp::UNIX_EPOCH,
                late_by_s: 1,
                max_lateness: "1h".into(),
            }),
            Failure::Schedule(ScheduleError::Calendar {
                schedule: "s".into(),
                source: cloudbot_calendar::CalendarError::Stale {
                    date: jiff::civil::date(2031, 1, 1),
                    valid_through: jiff::civil::date(2027, 12, 31),
                },
            }),
            Failure::Schedule(ScheduleError::Calendar {
                schedule: "s".into(),
                source: cloudbot_calendar::CalendarError::NoBusinessDay {
                    from: jiff::civil::date(2027, 1, 1),
                },
            }),
            Failure::Schedule(ScheduleError::Internal("x")),
            Failure::Overrun(OverrunError::Overrun {
                running_s: 61,
                max_s: 60,
                max_from: crate::overrun::Source::Default,
                status: "error",
            }),
            Failure::Overrun(OverrunError::SuspendForbidden {
                running_s: 61,
                max_s: 60,
            }),
            Failure::Budget(crate::usage::BudgetError::Exhausted {
                contract: "demo".into(),
                month: "2026-12".into(),
                used_s: 2,
                stop_s: 1,
                stop_percent: 50,
                allowance_s: 2,
            }),
            Failure::Orphan(crate::orphans::OrphanError::Unavailable {
                what: "x",
                error: "y".into(),
            }),
            Failure::Orphan(crate::orphans::OrphanError::SuspendForbidden),
            Failure::Internal("x"),
        ];
        let reached: HashSet<&str> = samples.iter().map(Failure::error_type).collect();
        let listed: HashSet<&str> = kind::ALL.iter().map(|k| k.name).collect();
        assert_eq!(reached, listed);
        assert_eq!(
            listed.len(),
            kind::ALL.len(),
            "duplicate names in the table"
        );
        for f in &samples {
            let row = kind::ALL.iter().copied().find(|k| k.name == f.error_type());
            assert_eq!(row, Some(f.kind()));
        }
    }

    #[test]
    fn the_lambda_error_carries_the_table_name_and_the_message() {
        let f = Failure::CloudBot(CloudBotError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        });
        let d = Diagnostic::from(&f);
        assert_eq!(d.error_type, "CloudBot.RateLimited");
        assert!(d.error_message.contains("retry after 7 s"), "{d:?}");
    }
}
