//! The one error type of the Cloud BOT client, with variants named by what the caller can do.
//! Each variant's stable error type, HTTP status and retry safety are the function's, in its
//! error table (`crate::error`): the client knows nothing of them.
//!
//! Nothing in here holds a credential, a URL with secrets, a whole response body or a transport
//! library's error: server messages are scrubbed of the credentials and truncated, and transport
//! failures are reduced to a [`Cause`].

use std::time::Duration;

/// Longest server `message` kept in an error, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// What went wrong on the wire when no usable answer came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
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
    /// call was a read). Safe to retry, after `retry_after` when given.
    #[error("Cloud BOT is unavailable: {cause}{}", fmt_retry_after(.retry_after))]
    Unavailable {
        /// What failed.
        cause: Cause,
        /// The server's Retry-After on a 5xx answer (for execute: the 503 that proves no job
        /// started), when it sent one; `None` for transport failures.
        retry_after: Option<Duration>,
    },
    /// Execute only: the request may have reached the server and it is unknown whether a job
    /// started. Do not retry blindly: look at the BOT's job list first.
    #[error("outcome of the execute request is unknown ({cause}); a job may have started")]
    OutcomeUnknown {
        /// What failed.
        cause: Cause,
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
    /// The variant's name, for the client's own logs (the function's error table gives each
    /// variant its stable error type: `crate::error`).
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
            CloudBotError::UnexpectedStatus { .. } => "UnexpectedStatus",
            CloudBotError::InvalidCredentials => "InvalidCredentials",
            CloudBotError::DeadlineExceeded => "DeadlineExceeded",
            CloudBotError::Internal { .. } => "Internal",
        }
    }

    /// When the server said to come back (its `Retry-After`), for the errors that ask the caller
    /// to retry: `RateLimited` and `Unavailable`. Never for `OutcomeUnknown`, which must not be
    /// retried blindly whatever the server said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CloudBotError::RateLimited { retry_after }
            | CloudBotError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
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
            CloudBotError::Unavailable { cause, .. } | CloudBotError::OutcomeUnknown { cause } => {
                match cause {
                    Cause::Status(s) => Some(*s),
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
                cause: Cause::Status(503),
                retry_after: None,
            }
            .upstream_status(),
            Some(503)
        );
        assert_eq!(CloudBotError::DeadlineExceeded.upstream_status(), None);
    }

    #[test]
    fn retry_after_is_kept_for_the_errors_that_ask_for_a_retry() {
        let after = Some(Duration::from_secs(30));
        let unavailable = CloudBotError::Unavailable {
            cause: Cause::Status(503),
            retry_after: after,
        };
        assert_eq!(unavailable.retry_after(), after);
        assert_eq!(
            unavailable.to_string(),
            "Cloud BOT is unavailable: HTTP 503, retry after 30 s"
        );
        assert_eq!(
            CloudBotError::RateLimited { retry_after: after }.retry_after(),
            after
        );
        let connect = CloudBotError::Unavailable {
            cause: Cause::Connect,
            retry_after: None,
        };
        assert_eq!(connect.retry_after(), None);
        assert_eq!(
            connect.to_string(),
            "Cloud BOT is unavailable: could not connect"
        );
        assert_eq!(
            CloudBotError::OutcomeUnknown {
                cause: Cause::Status(500)
            }
            .retry_after(),
            None
        );
    }
}
