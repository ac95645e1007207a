//! One logical Cloud BOT request, sent and retried as a whole: the attempts (send, then read the
//! body within its cap), the headers every call carries, and the mapping of HTTP answers and
//! transport failures to [`CloudBotError`]. Which failures are retried, and after how long, is
//! decided in `retry.rs`; each attempt is logged at debug with its method, path template,
//! status, attempt number and latency (never a URL with ids, a body or a credential).

use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use super::credentials::Credentials;
use super::error::{Cause, CloudBotError, sanitize_message};
use super::model::ErrorBody;
use super::model::Language;
use super::retry::{self, AttemptEnd, MIN_ATTEMPT_TIME, Safety};
use super::skim::OutputSkim;
use super::transport::Transport;

/// Largest response body kept (1 MiB). A job with its output is usually far smaller; a bigger
/// answer is never buffered: a job answer goes on without its `output` (`skim.rs`), anything
/// else is an invalid answer.
const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Per-call context: who calls, in which language, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Access token + secret key.
    pub credentials: &'a Credentials,
    /// `content-language` of server messages.
    pub language: Language,
    /// No attempt starts, and no retry wait ends, after this instant (the Lambda's remaining
    /// time minus a safety margin).
    pub deadline: Instant,
    /// Most time the call may spend waiting between attempts, all waits together (backoff and
    /// `Retry-After`); a retry that would need more ends the call with the last error instead.
    /// [`Duration::MAX`] leaves only the deadline to bound it.
    pub retry_budget: Duration,
}

/// One logical request (retried as a whole).
pub(super) struct Op<'a> {
    pub(super) method: Method,
    /// Path template for logs, e.g. `/{public_id}/jobs/{job_id}`.
    pub(super) template: &'static str,
    pub(super) url: &'a str,
    pub(super) body: Option<Vec<u8>>,
    pub(super) safety: Safety,
    /// The answer is a job object: when it exceeds the cap, its top-level `output` is dropped
    /// (replaced by `null`) instead of failing the call.
    pub(super) job_answer: bool,
}

/// A reply (any status) with its body read within the cap.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    /// True when the body exceeded the cap and its job `output` was dropped to fit.
    pub(super) output_dropped: bool,
}

/// How one attempt ended.
enum AttemptResult {
    /// The server answered and the body was read (any status).
    Answered(Reply),
    /// The server answered with a success status but the body was cut off.
    BodyCut { status: u16 },
    /// The server answered but the body exceeded [`MAX_RESPONSE_BODY`].
    BodyTooLarge { status: u16 },
    /// No answer.
    Failed(AttemptEnd),
}

/// Logs one attempt at debug: its method, path template, status, attempt number and latency,
/// then the given fields and message.
macro_rules! attempt_event {
    ($op:expr, $status:expr, $attempt:expr, $latency_ms:expr, $($rest:tt)+) => {
        tracing::debug!(
            method = %$op.method,
            path = $op.template,
            status = $status,
            attempt = $attempt,
            latency_ms = $latency_ms,
            $($rest)+
        )
    };
}

/// How one attempt was judged: the call is over (a 2xx answer, or an error not worth asking
/// again), or it failed in a way the retry policy decides on.
enum Judged {
    Over(Result<Reply, CloudBotError>),
    Failed {
        status: Option<u16>,
        end: AttemptEnd,
        error: CloudBotError,
    },
}

/// Run `op` on `transport` with retries per `retry.rs`, each attempt within `request_timeout`;
/// `Ok` only for a 2xx answer whose body was read.
pub(super) async fn exchange(
    transport: &Transport,
    request_timeout: Duration,
    call: &Call<'_>,
    op: Op<'_>,
) -> Result<Reply, CloudBotError> {
    let headers = request_headers(call)?;
    let mut attempt: u32 = 0;
    let mut last_error = None;
    let mut waited = Duration::ZERO;
    loop {
        attempt += 1;
        let now = Instant::now();
        let time_left = call.deadline.saturating_duration_since(now);
        if time_left < MIN_ATTEMPT_TIME {
            // After a failed attempt, its error says more than "no time left".
            return Err(last_error.unwrap_or(CloudBotError::DeadlineExceeded));
        }
        let attempt_timeout = request_timeout.min(time_left);
        let result = send_once(transport, &op, &headers, attempt_timeout).await;
        let latency_ms = u64::try_from(now.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, end, error) = match judge(call, &op, result, attempt, latency_ms) {
            Judged::Over(result) => return result,
            Judged::Failed { status, end, error } => (status, end, error),
        };
        attempt_event!(
            op,
            status,
            attempt,
            latency_ms,
            error = error.name(),
            "cloud bot call failed"
        );
        let time_left = call.deadline.saturating_duration_since(Instant::now());
        let budget_left = call.retry_budget.saturating_sub(waited);
        match retry::retry_wait(op.safety, end, attempt, time_left, budget_left) {
            Some(wait) => {
                last_error = Some(error);
                waited += wait;
                tokio::time::sleep(wait).await;
            }
            None => return Err(error),
        }
    }
}

/// One attempt: send, then read the body with the size cap, all within `timeout`.
async fn send_once(
    transport: &Transport,
    op: &Op<'_>,
    headers: &HeaderMap,
    timeout: Duration,
) -> AttemptResult {
    let mut request = transport
        .for_request(op.safety)
        .request(op.method.clone(), op.url)
        .headers(headers.clone())
        .timeout(timeout);
    if let Some(body) = &op.body {
        request = request.body(body.clone());
    }
    let exchange = async {
        match request.send().await {
            Ok(response) => read_answer(response, op.job_answer).await,
            Err(e) => AttemptResult::Failed(classify(e)),
        }
    };
    // reqwest's own timeout covers the same span; this one also bounds the body reads
    // independently of reqwest's internals, so the deadline holds whatever happens.
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => AttemptResult::Failed(AttemptEnd::Timeout),
    }
}

/// Reads an answer's body within [`MAX_RESPONSE_BODY`]. A success answer must be whole; an
/// error answer's status is what matters, so its body is dropped when it does not fit or breaks.
/// A success job answer (`job_answer`) that outgrows the cap goes on through [`OutputSkim`]:
/// what is kept is the job without its output, itself within the cap.
async fn read_answer(mut response: reqwest::Response, job_answer: bool) -> AttemptResult {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let success = response.status().is_success();
    let skims = success && job_answer;
    let declared_too_large = response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BODY as u64);
    if declared_too_large && !skims {
        return if success {
            AttemptResult::BodyTooLarge { status }
        } else {
            AttemptResult::Answered(Reply {
                status,
                headers,
                body: Vec::new(),
                output_dropped: false,
            })
        };
    }
    let mut body = Vec::new();
    let mut skim: Option<OutputSkim> = declared_too_large.then(OutputSkim::default);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if let Some(skim) = &mut skim {
                    skim.feed(&chunk);
                    if skim.kept_len() > MAX_RESPONSE_BODY {
                        return AttemptResult::BodyTooLarge { status };
                    }
                    continue;
                }
                if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                    if skims {
                        let mut started = OutputSkim::default();
                        started.feed(&std::mem::take(&mut body));
                        started.feed(&chunk);
                        if started.kept_len() > MAX_RESPONSE_BODY {
                            return AttemptResult::BodyTooLarge { status };
                        }
                        skim = Some(started);
                        continue;
                    }
                    if success {
                        return AttemptResult::BodyTooLarge { status };
                    }
                    body.clear();
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                let e = e.without_url();
                tracing::debug!(error = %e, "cloud bot answer body cut off");
                if success {
                    return AttemptResult::BodyCut { status };
                }
                body.clear();
                break;
            }
        }
    }
    let (body, output_dropped) = match skim {
        Some(skim) => skim.finish(),
        None => (body, false),
    };
    if output_dropped {
        tracing::debug!(status, "cloud bot job answer over the cap: output dropped");
    }
    AttemptResult::Answered(Reply {
        status,
        headers,
        body,
        output_dropped,
    })
}

/// A non-success answer: its error, and what the retry policy needs of it.
fn judge_status(call: &Call<'_>, op: &Op<'_>, answer: &Reply) -> Judged {
    let retry_after = answer
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
    Judged::Failed {
        status: Some(answer.status),
        end: AttemptEnd::Status {
            status: answer.status,
            retry_after,
        },
        error: status_error(call, op, answer, retry_after),
    }
}

/// What one attempt's result means for the call.
fn judge(
    call: &Call<'_>,
    op: &Op<'_>,
    result: AttemptResult,
    attempt: u32,
    latency_ms: u64,
) -> Judged {
    match result {
        AttemptResult::Answered(answer) if (200..300).contains(&answer.status) => {
            attempt_event!(
                op,
                answer.status,
                attempt,
                latency_ms,
                "cloud bot call succeeded"
            );
            Judged::Over(Ok(answer))
        }
        AttemptResult::Answered(answer) => judge_status(call, op, &answer),
        AttemptResult::BodyCut { status } => Judged::Failed {
            status: Some(status),
            end: AttemptEnd::Transport,
            error: match op.safety {
                Safety::ExecuteOnce => CloudBotError::OutcomeUnknown { cause: Cause::Body },
                Safety::Idempotent => CloudBotError::Unavailable {
                    cause: Cause::Transport,
                    retry_after: None,
                },
            },
        },
        AttemptResult::BodyTooLarge { status } => {
            // Not transient: do not ask for the same oversized answer again.
            attempt_event!(
                op,
                status,
                attempt,
                latency_ms,
                "cloud bot answer too large"
            );
            Judged::Over(Err(match op.safety {
                Safety::ExecuteOnce => CloudBotError::OutcomeUnknown { cause: Cause::Body },
                Safety::Idempotent => CloudBotError::InvalidResponse {
                    status,
                    detail: "body exceeds the size limit",
                },
            }))
        }
        AttemptResult::Failed(end) => Judged::Failed {
            status: None,
            end,
            error: transport_error(op.safety, end),
        },
    }
}

/// The headers of every call. Credentials go into sensitive header values here and nowhere else.
fn request_headers(call: &Call<'_>) -> Result<HeaderMap, CloudBotError> {
    let (token, secret) = call
        .credentials
        .header_values()
        .ok_or(CloudBotError::InvalidCredentials)?;
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(call.language.as_str()),
    );
    headers.insert(HeaderName::from_static("access-token"), token);
    headers.insert(HeaderName::from_static("secret-key"), secret);
    Ok(headers)
}

/// Reduce a transport error to what the retry policy needs. The error itself is dropped (after
/// `without_url`, only its kind is logged).
fn classify(e: reqwest::Error) -> AttemptEnd {
    let e = e.without_url();
    tracing::debug!(error = %e, "cloud bot transport error");
    if e.is_connect() {
        // Connector failures (DNS, TCP connect, TLS handshake, connect timeout) happen before
        // any byte of the request is written.
        AttemptEnd::ConnectFailed
    } else if e.is_timeout() {
        AttemptEnd::Timeout
    } else {
        AttemptEnd::Transport
    }
}

/// The error for a failed attempt that got no answer.
fn transport_error(safety: Safety, end: AttemptEnd) -> CloudBotError {
    let cause = match end {
        AttemptEnd::ConnectFailed => {
            return CloudBotError::Unavailable {
                cause: Cause::Connect,
                retry_after: None,
            };
        }
        AttemptEnd::Timeout => Cause::Timeout,
        AttemptEnd::Transport | AttemptEnd::Status { .. } => Cause::Transport,
    };
    match safety {
        Safety::ExecuteOnce => CloudBotError::OutcomeUnknown { cause },
        Safety::Idempotent => CloudBotError::Unavailable {
            cause,
            retry_after: None,
        },
    }
}

/// The error for a non-success answer.
fn status_error(
    call: &Call<'_>,
    op: &Op<'_>,
    answer: &Reply,
    retry_after: Option<Duration>,
) -> CloudBotError {
    let message = || server_message(call.credentials, &answer.body);
    match answer.status {
        400 => CloudBotError::BadRequest { message: message() },
        401 => CloudBotError::Unauthorized,
        403 => CloudBotError::Forbidden,
        404 => CloudBotError::NotFound,
        413 => CloudBotError::PayloadTooLarge {
            size: op.body.as_ref().map_or(0, Vec::len),
        },
        415 => CloudBotError::UnsupportedMediaType,
        422 => CloudBotError::Unprocessable { message: message() },
        429 => CloudBotError::RateLimited { retry_after },
        s @ 500..=599 => match op.safety {
            // A 503 that names a retry time is a refusal before any work started.
            Safety::ExecuteOnce if !(s == 503 && retry_after.is_some()) => {
                CloudBotError::OutcomeUnknown {
                    cause: Cause::Status(s),
                }
            }
            // The server's Retry-After travels with the error: when the call ends on it (past
            // the deadline or the caller's retry budget), the caller learns when to come back.
            _ => CloudBotError::Unavailable {
                cause: Cause::Status(s),
                retry_after,
            },
        },
        _ => CloudBotError::UnexpectedStatus {
            status: answer.status,
        },
    }
}

/// The `message` of an error body `{"code":..,"message":..}`, scrubbed of the credentials and
/// truncated; `None` when the body is not such an object.
fn server_message(credentials: &Credentials, body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let text = match parsed.message? {
        serde_json::Value::String(s) => s,
        _ => return None,
    };
    let cleaned = sanitize_message(&credentials.scrub(&text));
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod status_error_tests {
    use super::*;

    fn error_for(safety: Safety, status: u16, retry_after: Option<u64>) -> CloudBotError {
        let credentials = Credentials::new("token".into(), "secret".into());
        let call = Call {
            credentials: &credentials,
            language: Language::En,
            deadline: Instant::now(),
            retry_budget: Duration::ZERO,
        };
        let op = Op {
            method: Method::POST,
            template: "/{public_id}/bots/{bot_id}/jobs",
            url: "http://127.0.0.1:1/demo/bots/echo_bot/jobs",
            body: None,
            safety,
            job_answer: true,
        };
        let answer = Reply {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
            output_dropped: false,
        };
        status_error(&call, &op, &answer, retry_after.map(Duration::from_secs))
    }

    /// The documented provably-not-started case keeps the server's Retry-After, so a caller the
    /// call ends for (deadline, retry budget) learns when to come back.
    #[test]
    fn execute_503_with_retry_after_is_unavailable_and_keeps_it() {
        let err = error_for(Safety::ExecuteOnce, 503, Some(30));
        assert_eq!(
            err,
            CloudBotError::Unavailable {
                cause: Cause::Status(503),
                retry_after: Some(Duration::from_secs(30)),
            }
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    }

    /// Any other 5xx on execute may have started a job: no Retry-After invites a retry.
    #[test]
    fn execute_5xx_that_may_have_started_a_job_carries_no_retry_after() {
        for (status, retry_after) in [(503, None), (500, Some(30)), (502, Some(30)), (504, None)] {
            let err = error_for(Safety::ExecuteOnce, status, retry_after);
            assert_eq!(
                err,
                CloudBotError::OutcomeUnknown {
                    cause: Cause::Status(status)
                },
                "{status}"
            );
            assert_eq!(err.retry_after(), None, "{status}");
        }
    }

    #[test]
    fn reads_keep_the_retry_after_of_any_5xx() {
        for status in [500, 502, 503, 504] {
            assert_eq!(
                error_for(Safety::Idempotent, status, Some(5)),
                CloudBotError::Unavailable {
                    cause: Cause::Status(status),
                    retry_after: Some(Duration::from_secs(5)),
                },
                "{status}"
            );
            assert_eq!(
                error_for(Safety::Idempotent, status, None).retry_after(),
                None,
                "{status}"
            );
        }
        assert_eq!(
            error_for(Safety::Idempotent, 429, Some(7)).retry_after(),
            Some(Duration::from_secs(7))
        );
    }
}
