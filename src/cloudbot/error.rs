//! The one error type of the Cloud BOT client, with variants named by what the caller can do and
//! a stable [`CloudBotError::name`] per variant (the Lambda turns it into `CloudBot.<name>`).
//!
//! Nothing in here holds a credential, a URL with secrets, a whole response body or a transport
//! library's error: server messages are scrubbed of the credentials and truncated, and transport
//! failures are reduced to a [`Failure`] kind.

use std::time::Duration;

/// Longest server `message` kept in an error, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// What went wrong on the wire when no usable answer came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The server answered with this HTTP status (5xx).
    #[error("HTTP {0}")]
    Status(u16),
    /// The attempt ran out of time (request timeout or the caller's deadline).
    #[error("timed out")]
    Timeout,
    /// No connection could be established (nothing was sent).
    #[error("could not connect")]
    Connect,
    /// The connection failed after the request may have been sent (reset, closed early).
    #[error("connection failed during the exchange")]
    Transport,
    /// A success answer whose body was cut off, too large, or not the expected JSON.
    #[error("answer body was unusable")]
    Body,
}

/// Errors of the Cloud BOT client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloudBotError {
    /// 401: access token or secret key wrong (or rotated).
    #[error("Cloud BOT rejected the access token or secret key (HTTP 401)")]
    Unauthorized,
    /// 403: the token lacks the permission (Refer / Execute / Suspend).
    #[error("the access token lacks the permission for this call (HTTP 403)")]
    Forbidden,
    /// 404: unknown contract, BOT (or BOT not published via API) or job.
    #[error("Cloud BOT does not know this contract, BOT or job (HTTP 404)")]
    NotFound,
    /// 400: the server refused the request.
    #[error("Cloud BOT refused the request as malformed (HTTP 400){}", fmt_message(.message))]
    BadRequest {
        /// The server's message (scrubbed, truncated).
        message: Option<String>,
    },
    /// 413, or the local guard: the serialized body is over 4 MB (nothing was sent then).
    #[error("request body of {size} bytes exceeds the 4 MB limit")]
    PayloadTooLarge {
        /// Size of the serialized request body in bytes.
        size: usize,
    },
    /// 415: the server did not accept the content type.
    #[error("Cloud BOT rejected the content type (HTTP 415)")]
    UnsupportedMediaType,
    /// 422: the request could not be processed (e.g. invalid input data).
    #[error("Cloud BOT could not process the request (HTTP 422){}", fmt_message(.message))]
    Unprocessable {
        /// The server's message (scrubbed, truncated).
        message: Option<String>,
    },
    /// 429: too many requests; try again after `retry_after` when given.
    #[error("Cloud BOT is rate limiting (HTTP 429){}", fmt_retry_after(.retry_after))]
    RateLimited {
        /// The server's Retry-After, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The service could not be reached or failed, and no job was started by this call (or the
    /// call was a read). Safe to retry.
    #[error("Cloud BOT is unavailable: {cause}")]
    Unavailable {
        /// What failed.
        cause: Failure,
    },
    /// Execute only: the request may have reached the server and it is unknown whether a job
    /// started. Do not retry blindly: look at the BOT's job list first.
    #[error("outcome of the execute request is unknown ({cause}); a job may have started")]
    OutcomeUnknown {
        /// What failed.
        cause: Failure,
    },
    /// A read's answer did not decode (or was too large).
    #[error("Cloud BOT sent an invalid answer (HTTP {status}): {detail}")]
    InvalidResponse {
        /// HTTP status of the answer.
        status: u16,
        /// What was wrong (a fixed description, never the body).
        detail: &'static str,
    },
    /// No time was left before the (next) attempt could be sent.
    #[error("deadline reached before the request could be sent")]
    DeadlineExceeded,
    /// Another HTTP status (e.g. 405, 409, 3xx) the API does not document.
    #[error("Cloud BOT answered with unexpected HTTP status {status}")]
    UnexpectedStatus {
        /// The status.
        status: u16,
    },
    /// The credentials cannot be sent (empty, or characters not allowed in a header).
    #[error("credentials are empty or contain characters not allowed in HTTP headers")]
    InvalidCredentials,
    /// The HTTP client could not be built, or a request could not be encoded: a configuration
    /// problem or a bug on this side, not something the service did.
    #[error("internal error in the Cloud BOT client: {detail}")]
    Internal {
        /// A fixed description.
        detail: &'static str,
    },
}

impl CloudBotError {
    /// Stable name of the variant (e.g. `"RateLimited"`), used as the error type by callers.
    pub fn name(&self) -> &'static str {
        match self {
            CloudBotError::Unauthorized => "Unauthorized",
            CloudBotError::Forbidden => "Forbidden",
            CloudBotError::NotFound => "NotFound",
            CloudBotError::BadRequest { .. } => "BadRequest",
            CloudBotError::PayloadTooLarge { .. } => "PayloadTooLarge",
            CloudBotError::UnsupportedMediaType => "UnsupportedMediaType",
            CloudBotError::Unprocessable { .. } => "Unprocessable",
            CloudBotError::RateLimited { .. } => "RateLimited",
            CloudBotError::Unavailable { .. } => "Unavailable",
            CloudBotError::OutcomeUnknown { .. } => "OutcomeUnknown",
            CloudBotError::InvalidResponse { .. } => "InvalidResponse",
            CloudBotError::DeadlineExceeded => "DeadlineExceeded",
            CloudBotError::UnexpectedStatus { .. } => "UnexpectedStatus",
            CloudBotError::InvalidCredentials => "InvalidCredentials",
            CloudBotError::Internal { .. } => "Internal",
        }
    }

    /// The HTTP status the server answered with, when the error came from one.
    /// (`PayloadTooLarge` reports 413 whether the server or the local guard refused it.)
    pub fn upstream_status(&self) -> Option<u16> {
        match self {
            CloudBotError::Unauthorized => Some(401),
            CloudBotError::Forbidden => Some(403),
            CloudBotError::NotFound => Some(404),
            CloudBotError::BadRequest { .. } => Some(400),
            CloudBotError::PayloadTooLarge { .. } => Some(413),
            CloudBotError::UnsupportedMediaType => Some(415),
            CloudBotError::Unprocessable { .. } => Some(422),
            CloudBotError::RateLimited { .. } => Some(429),
            CloudBotError::Unavailable { cause } | CloudBotError::OutcomeUnknown { cause } => {
                match cause {
                    Failure::Status(s) => Some(*s),
                    _ => None,
                }
            }
            CloudBotError::InvalidResponse { status, .. }
            | CloudBotError::UnexpectedStatus { status } => Some(*status),
            CloudBotError::DeadlineExceeded
            | CloudBotError::InvalidCredentials
            | CloudBotError::Internal { .. } => None,
        }
    }

    /// True when repeating the same call later is safe and may succeed (rate limited, or
    /// unavailable without a job having been started).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudBotError::RateLimited { .. } | CloudBotError::Unavailable { .. }
        )
    }
}

fn fmt_message(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(": {m}"),
        None => String::new(),
    }
}

fn fmt_retry_after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {} s", d.as_secs()),
        None => String::new(),
    }
}

/// Make a server message safe to keep: control characters dropped, at most
/// [`MAX_MESSAGE_CHARS`] characters (an ellipsis marks the cut).
pub(crate) fn sanitize_message(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS + 1)
        .collect();
    if let Some((cut, _)) = out.char_indices().nth(MAX_MESSAGE_CHARS) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(CloudBotError::Unauthorized.name(), "Unauthorized");
        assert_eq!(
            CloudBotError::RateLimited { retry_after: None }.name(),
            "RateLimited"
        );
        assert_eq!(
            CloudBotError::OutcomeUnknown {
                cause: Failure::Timeout
            }
            .name(),
            "OutcomeUnknown"
        );
    }

    #[test]
    fn retryable_only_when_no_job_can_have_started() {
        assert!(
            CloudBotError::Unavailable {
                cause: Failure::Connect
            }
            .is_retryable()
        );
        assert!(CloudBotError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            !CloudBotError::OutcomeUnknown {
                cause: Failure::Timeout
            }
            .is_retryable()
        );
        assert!(!CloudBotError::DeadlineExceeded.is_retryable());
    }

    #[test]
    fn messages_are_truncated_and_cleaned() {
        let long = "x".repeat(5000) + "\n";
        let s = sanitize_message(&long);
        assert_eq!(s.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(!sanitize_message("a\r\nb").contains('\n'));
        let e = CloudBotError::Unprocessable {
            message: Some(sanitize_message(&long)),
        };
        assert!(e.to_string().len() < 1000);
    }

    #[test]
    fn upstream_status_maps() {
        assert_eq!(
            CloudBotError::Unavailable {
                cause: Failure::Status(503)
            }
            .upstream_status(),
            Some(503)
        );
        assert_eq!(CloudBotError::DeadlineExceeded.upstream_status(), None);
    }
}
