//! Retry policy: which failed attempts may be repeated, and how long to wait first. The one
//! statement of it (docs/client.md links here); the figures are the constants below.
//!
//! - Every call takes `Call.deadline`. No attempt starts with less than [`MIN_ATTEMPT_TIME`]
//!   left (then `DeadlineExceeded`), no retry wait ends past it, and each attempt's timeout is
//!   `min(request_timeout, time left)`, enforced around sending **and** reading the body.
//! - Reads (GET) and suspend (DELETE, idempotent) retry on 429, any 5xx, connection errors,
//!   resets and timeouts: at most [`MAX_ATTEMPTS`] attempts, exponential backoff with full
//!   jitter (uniform in `[0, min(MAX_DELAY, BASE_DELAY × 2^(n-1))]`), and at least the server's
//!   `Retry-After` (seconds or an HTTP date). When `Retry-After` does not fit before the
//!   deadline the error is returned at once (`RateLimited` / `Unavailable`). 4xx answers and
//!   undecodable bodies are not retried.
//! - The waits of one call add up to at most the caller's retry budget
//!   ([`super::Call::retry_budget`]): a retry that needs more ends the call at once with the
//!   last error (`RateLimited` and `Unavailable` keep the server's `Retry-After`). A synchronous
//!   HTTP caller is better served by an early answer carrying `Retry-After` than by a long wait.
//!
//! **The execute POST is never retried once the request may have reached the server.** Every
//! execute that arrives starts a BOT run, and a duplicate run costs the user money and quota.
//! It is repeated only when the server provably did not start a job: the connection could not
//! be established (connect error or connect timeout: no byte sent), or the server answered
//! 429 / 503 *with* a `Retry-After` that still fits before the deadline. A reset before any
//! answer is not proof (the client cannot tell whether the server processed the request): it
//! ends as `OutcomeUnknown`, as do a timeout, any other 5xx, a 503 without `Retry-After` and a
//! success answer that cannot be read.
//!
//! Nothing below this policy re-sends a request on its own: the `reqwest` client is built with
//! `.retry(reqwest::retry::never())` (reqwest's default re-sends after some HTTP/2 protocol
//! NACKs; HTTP/2 is not compiled in, but the execute rule must not depend on that; unit test
//! `the_http_client_is_built_with_reqwest_retries_off`). What remains is hyper's pool replacing
//! a reused keep-alive connection that closed *before* the request was handed to it, so no byte
//! of that request was ever sent.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;

/// Most attempts made for one call (the first try included).
pub(crate) const MAX_ATTEMPTS: u32 = 4;

/// Backoff before the first retry is drawn from `[0, BASE_DELAY]`, doubling each time.
const BASE_DELAY: Duration = Duration::from_millis(100);

/// Upper bound of the backoff window.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Do not start an attempt with less time than this left: it could not finish anyway.
pub(crate) const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(50);

/// Whether repeating a request can cause a second effect on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    /// GET (refer, list) and DELETE (suspend): repeating is harmless.
    Idempotent,
    /// The execute POST: each request that reaches the server starts a BOT run.
    ExecuteOnce,
}

/// What one attempt ended with, as far as the retry decision is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptEnd {
    /// The server answered with this non-success status.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The connection could not be established: no byte of the request was sent.
    ConnectFailed,
    /// The attempt timed out (possibly after sending).
    Timeout,
    /// The connection failed mid-exchange (possibly after sending).
    Transport,
}

/// Decide whether to retry after attempt number `attempt` (1-based) ended with `end`, given the
/// time left before the deadline and the part of the retry budget not yet spent waiting.
/// Returns the wait before the next attempt.
pub(crate) fn retry_wait(
    safety: Safety,
    end: AttemptEnd,
    attempt: u32,
    time_left: Duration,
    budget_left: Duration,
) -> Option<Duration> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    let wait = match (safety, end) {
        // Provably nothing sent: safe for every method.
        (_, AttemptEnd::ConnectFailed) => backoff(attempt),
        // The server refused without starting a job and told us when to come back.
        (
            Safety::ExecuteOnce,
            AttemptEnd::Status {
                status: 429 | 503,
                retry_after: Some(after),
            },
        ) => after,
        // Anything else may have started a job: never repeat the execute POST.
        (Safety::ExecuteOnce, _) => return None,
        (Safety::Idempotent, AttemptEnd::Timeout | AttemptEnd::Transport) => backoff(attempt),
        (
            Safety::Idempotent,
            AttemptEnd::Status {
                status,
                retry_after,
            },
        ) if status == 429 || (500..600).contains(&status) => {
            let b = backoff(attempt);
            retry_after.map_or(b, |after| after.max(b))
        }
        (Safety::Idempotent, AttemptEnd::Status { .. }) => return None,
    };
    // Never sleep past the deadline, and leave room for the attempt itself. A spent budget
    // ends retrying even when full jitter drew a zero wait.
    if wait.saturating_add(MIN_ATTEMPT_TIME) > time_left
        || budget_left.is_zero()
        || wait > budget_left
    {
        return None;
    }
    Some(wait)
}

/// Full-jitter exponential backoff: uniform in `[0, min(MAX_DELAY, BASE_DELAY * 2^(attempt-1))]`.
fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let window = BASE_DELAY.saturating_mul(1u32 << exp).min(MAX_DELAY);
    let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(0..=millis))
}

/// Parse `Retry-After`: delay-seconds or an HTTP date (relative to `now`; a past date is 0).
/// A date is rounded up to whole seconds, the header's resolution: the delay is passed on as
/// `Retry-After` to HTTP callers and must never tell them to come back earlier than the server.
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    let left = at.duration_since(now).unwrap_or(Duration::ZERO);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOTS: Duration = Duration::from_secs(60);

    fn status(status: u16, retry_after: Option<u64>) -> AttemptEnd {
        AttemptEnd::Status {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn execute_is_never_retried_when_the_request_may_have_arrived() {
        for end in [
            AttemptEnd::Timeout,
            AttemptEnd::Transport,
            status(500, None),
            status(500, Some(1)),
            status(502, Some(1)),
            status(503, None),
            status(504, None),
            status(429, None),
            status(400, None),
        ] {
            assert_eq!(
                retry_wait(Safety::ExecuteOnce, end, 1, LOTS, LOTS),
                None,
                "{end:?}"
            );
        }
    }

    #[test]
    fn execute_is_retried_when_provably_not_started() {
        assert!(
            retry_wait(
                Safety::ExecuteOnce,
                AttemptEnd::ConnectFailed,
                1,
                LOTS,
                LOTS
            )
            .is_some()
        );
        assert_eq!(
            retry_wait(Safety::ExecuteOnce, status(503, Some(2)), 1, LOTS, LOTS),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_wait(Safety::ExecuteOnce, status(429, Some(0)), 1, LOTS, LOTS),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_beyond_the_deadline_stops() {
        let left = Duration::from_secs(3);
        assert_eq!(
            retry_wait(Safety::ExecuteOnce, status(503, Some(5)), 1, left, LOTS),
            None
        );
        assert_eq!(
            retry_wait(Safety::Idempotent, status(429, Some(5)), 1, left, LOTS),
            None
        );
    }

    #[test]
    fn reads_retry_on_transient_failures_only() {
        for end in [
            AttemptEnd::Timeout,
            AttemptEnd::Transport,
            AttemptEnd::ConnectFailed,
            status(500, None),
            status(503, None),
            status(429, None),
        ] {
            assert!(
                retry_wait(Safety::Idempotent, end, 1, LOTS, LOTS).is_some(),
                "{end:?}"
            );
        }
        for s in [400, 401, 403, 404, 413, 415, 422] {
            assert_eq!(
                retry_wait(Safety::Idempotent, status(s, None), 1, LOTS, LOTS),
                None
            );
        }
    }

    #[test]
    fn attempts_are_bounded() {
        assert!(
            retry_wait(
                Safety::Idempotent,
                AttemptEnd::Timeout,
                MAX_ATTEMPTS - 1,
                LOTS,
                LOTS
            )
            .is_some()
        );
        assert_eq!(
            retry_wait(
                Safety::Idempotent,
                AttemptEnd::Timeout,
                MAX_ATTEMPTS,
                LOTS,
                LOTS
            ),
            None
        );
    }

    #[test]
    fn waits_stop_at_the_retry_budget() {
        let budget = Duration::from_secs(2);
        // A Retry-After beyond the budget ends the call at once, for execute and reads alike.
        assert_eq!(
            retry_wait(Safety::ExecuteOnce, status(429, Some(7)), 1, LOTS, budget),
            None
        );
        assert_eq!(
            retry_wait(Safety::Idempotent, status(503, Some(3)), 1, LOTS, budget),
            None
        );
        assert_eq!(
            retry_wait(Safety::ExecuteOnce, status(429, Some(2)), 1, LOTS, budget),
            Some(budget)
        );
        // A spent budget stops backoff too.
        assert_eq!(
            retry_wait(
                Safety::Idempotent,
                AttemptEnd::Timeout,
                1,
                LOTS,
                Duration::ZERO
            ),
            None
        );
    }

    #[test]
    fn retry_after_is_honoured_for_reads() {
        let w = retry_wait(Safety::Idempotent, status(503, Some(3)), 1, LOTS, LOTS).unwrap();
        assert!(w >= Duration::from_secs(3));
    }

    #[test]
    fn backoff_stays_in_its_window() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            assert!(d <= MAX_DELAY);
            if attempt == 1 {
                assert!(d <= BASE_DELAY);
            }
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let v = |s: &str| parse_retry_after(&HeaderValue::from_str(s).unwrap(), now);
        assert_eq!(v("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            v("Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(v("Sun, 06 Nov 1994 08:49:00 GMT"), Some(Duration::ZERO));
        // A moment after `now` was taken, the date is still 10 s away in whole seconds.
        let later = now + Duration::from_millis(250);
        assert_eq!(
            parse_retry_after(
                &HeaderValue::from_static("Sun, 06 Nov 1994 08:49:47 GMT"),
                later
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(v("soon"), None);
        assert_eq!(v("-1"), None);
    }
}
