//! Each error enum of the layers below, mapped to its row of the error table ([`super::kind`]).
//! The one place that knows, for a Cloud BOT, credentials, idempotency or callback error, which
//! error type, HTTP status and retry safety it has: the layers themselves know none of it, so
//! the Cloud BOT client and the credentials provider can be linked (by the operator CLI)
//! without the function's status table. Every `match` is exhaustive (no wildcard arm): a new
//! variant does not compile until it has a row.

use super::kind::{self, ErrorKind};
use crate::callback::CallbackError;
use crate::cloudbot::CloudBotError;
use crate::credentials::CredentialsError;
use crate::idempotency::IdempotencyError;
use crate::overrun::OverrunError;
use crate::schedule::ScheduleError;
use crate::usage::BudgetError;

/// An error with a row in the error table.
pub trait Classified {
    /// The error's row.
    fn kind(&self) -> &'static ErrorKind;
}

impl Classified for CloudBotError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            CloudBotError::Unauthorized => &kind::CLOUDBOT_UNAUTHORIZED,
            CloudBotError::Forbidden => &kind::CLOUDBOT_FORBIDDEN,
            CloudBotError::NotFound => &kind::CLOUDBOT_NOT_FOUND,
            CloudBotError::BadRequest { .. } => &kind::CLOUDBOT_BAD_REQUEST,
            CloudBotError::PayloadTooLarge { .. } => &kind::CLOUDBOT_PAYLOAD_TOO_LARGE,
            CloudBotError::UnsupportedMediaType => &kind::CLOUDBOT_UNSUPPORTED_MEDIA_TYPE,
            CloudBotError::Unprocessable { .. } => &kind::CLOUDBOT_UNPROCESSABLE,
            CloudBotError::RateLimited { .. } => &kind::CLOUDBOT_RATE_LIMITED,
            CloudBotError::Unavailable { .. } => &kind::CLOUDBOT_UNAVAILABLE,
            CloudBotError::OutcomeUnknown { .. } => &kind::CLOUDBOT_OUTCOME_UNKNOWN,
            CloudBotError::InvalidResponse { .. } => &kind::CLOUDBOT_INVALID_RESPONSE,
            CloudBotError::UnexpectedStatus { .. } => &kind::CLOUDBOT_UNEXPECTED_STATUS,
            CloudBotError::InvalidCredentials => &kind::CLOUDBOT_INVALID_CREDENTIALS,
            // The client only says "no time left before sending": nothing reached Cloud BOT.
            CloudBotError::DeadlineExceeded => &kind::FUNCTION_DEADLINE_EXCEEDED,
            // The HTTP client could not be built or a body could not be encoded: nothing was sent.
            CloudBotError::Internal { .. } => &kind::FUNCTION_INTERNAL,
        }
    }
}

impl Classified for CredentialsError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            CredentialsError::Unavailable(_) => &kind::CREDENTIALS_UNAVAILABLE,
            CredentialsError::Invalid(_) => &kind::CREDENTIALS_INVALID,
            CredentialsError::UnknownContract(_) => &kind::CREDENTIALS_UNKNOWN_CONTRACT,
        }
    }
}

impl Classified for IdempotencyError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            IdempotencyError::KeyReused { .. } => &kind::IDEMPOTENCY_KEY_REUSED,
            IdempotencyError::InProgress { .. } => &kind::IDEMPOTENCY_IN_PROGRESS,
            // The same answer the first request got, so callers need one rule for it.
            IdempotencyError::OutcomeUnknown { .. } => &kind::CLOUDBOT_OUTCOME_UNKNOWN,
            IdempotencyError::Unavailable(_) => &kind::IDEMPOTENCY_UNAVAILABLE,
        }
    }
}

impl Classified for CallbackError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            CallbackError::NotFound => &kind::CALLBACK_NOT_FOUND,
            CallbackError::NotReady => &kind::CALLBACK_NOT_READY,
            CallbackError::Unavailable(_) => &kind::CALLBACK_UNAVAILABLE,
        }
    }
}

impl Classified for ScheduleError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            ScheduleError::TooLate { .. } => &kind::SCHEDULE_TOO_LATE,
            ScheduleError::Calendar { source, .. } => match source {
                cloudbot_calendar::CalendarError::Stale { .. } => &kind::CALENDAR_STALE,
                cloudbot_calendar::CalendarError::BeforeData { .. }
                | cloudbot_calendar::CalendarError::NoBusinessDay { .. }
                | cloudbot_calendar::CalendarError::MalformedData { .. } => {
                    &kind::CALENDAR_UNDECIDABLE
                }
            },
            ScheduleError::Internal(_) => &kind::FUNCTION_INTERNAL,
        }
    }
}

impl Classified for OverrunError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            OverrunError::Overrun { .. } => &kind::JOB_OVERRUN,
            OverrunError::SuspendForbidden { .. } => &kind::JOB_SUSPEND_FORBIDDEN,
        }
    }
}

impl Classified for crate::orphans::OrphanError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            Self::Unavailable { .. } => &kind::ORPHANS_UNAVAILABLE,
            Self::SuspendForbidden => &kind::JOB_SUSPEND_FORBIDDEN,
        }
    }
}

impl Classified for BudgetError {
    fn kind(&self) -> &'static ErrorKind {
        match self {
            BudgetError::Exhausted { .. } => &kind::BUDGET_EXHAUSTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cloudbot::Cause;

    #[test]
    fn kinds_are_stable() {
        assert_eq!(
            CloudBotError::Unauthorized.kind().name,
            "CloudBot.Unauthorized"
        );
        assert_eq!(
            CloudBotError::RateLimited { retry_after: None }.kind().name,
            "CloudBot.RateLimited"
        );
        assert_eq!(
            CloudBotError::DeadlineExceeded.kind().name,
            "Function.DeadlineExceeded"
        );
    }

    #[test]
    fn retryable_only_when_no_job_can_have_started() {
        let retryable = |e: CloudBotError| e.kind().retryable;
        assert!(retryable(CloudBotError::Unavailable {
            cause: Cause::Connect,
            retry_after: None,
        }));
        assert!(retryable(CloudBotError::RateLimited { retry_after: None }));
        assert!(!retryable(CloudBotError::OutcomeUnknown {
            cause: Cause::Timeout
        }));
        // Nothing was sent: a new invocation with its own time may succeed.
        assert!(retryable(CloudBotError::DeadlineExceeded));
    }

    #[test]
    fn a_503_that_started_nothing_is_retryable_with_its_retry_after() {
        let err = CloudBotError::Unavailable {
            cause: Cause::Status(503),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert!(err.kind().retryable);
    }
}
