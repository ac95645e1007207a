//! The error table: every error type the function reports, one typed row each.
//!
//! A row is the whole public identity of a class of failure: the stable Lambda `errorType` that
//! Step Functions `Retry`/`Catch` match on, the HTTP status API Gateway callers get, whether the
//! same request may simply be sent again, and what it means. Each error enum maps its variants to
//! a row with one exhaustive `match` (no wildcard arm), so a new variant does not compile until it
//! has a row. docs/errors.md is checked against [`ALL`] by a test (and regenerated from it).

/// One row of the error table.
#[derive(Debug, PartialEq, Eq)]
pub struct ErrorKind {
    /// Stable Lambda `errorType` (also `error_type` in problem+json).
    pub name: &'static str,
    /// HTTP status for API Gateway callers. Upstream auth failures are 502: a 401/403 would tell
    /// the caller that *their* credentials were refused.
    pub http_status: u16,
    /// True when repeating the same request later is safe and may succeed.
    pub retryable: bool,
    /// What it means, as documented (Markdown).
    pub meaning: &'static str,
}

/// `InvalidRequest`.
pub static INVALID_REQUEST: ErrorKind = ErrorKind {
    name: "InvalidRequest",
    http_status: 400,
    retryable: false,
    meaning: "the event or request is invalid, including a payload that is not JSON, nested deeper than 128 levels or holding a number outside the 64-bit float range; the message names the field (or where); nothing was sent. 413 when the body is too large, 404 for an unknown route",
};

/// `Credentials.Unavailable`.
pub static CREDENTIALS_UNAVAILABLE: ErrorKind = ErrorKind {
    name: "Credentials.Unavailable",
    http_status: 503,
    retryable: true,
    meaning: "Secrets Manager could not be read (throttled, unreachable, access denied, secret missing) and no cached credentials may stand in (stale credentials: docs/deploy.md, \"The secret\")",
};

/// `Credentials.Invalid`.
pub static CREDENTIALS_INVALID: ErrorKind = ErrorKind {
    name: "Credentials.Invalid",
    http_status: 500,
    retryable: false,
    meaning: "the secret is not `{\"access_token\", \"secret_key\"}` JSON with non-empty, visible-ASCII values; the message names the key, never a value",
};

/// `Credentials.UnknownContract`.
pub static CREDENTIALS_UNKNOWN_CONTRACT: ErrorKind = ErrorKind {
    name: "Credentials.UnknownContract",
    http_status: 404,
    retryable: false,
    meaning: "the function has one secret per contract (`CLOUDBOT_CONTRACT_SECRETS`) and none for the contract the request names; the message names it; nothing was read or sent (docs/deploy.md, \"Several contracts\")",
};

/// `CloudBot.Unauthorized`.
pub static CLOUDBOT_UNAUTHORIZED: ErrorKind = ErrorKind {
    name: "CloudBot.Unauthorized",
    http_status: 502,
    retryable: false,
    meaning: "Cloud BOT rejected the credentials, also after re-reading the secret once",
};

/// `CloudBot.Forbidden`.
pub static CLOUDBOT_FORBIDDEN: ErrorKind = ErrorKind {
    name: "CloudBot.Forbidden",
    http_status: 502,
    retryable: false,
    meaning: "the access token lacks the permission (Execute / Refer)",
};

/// `CloudBot.NotFound`.
pub static CLOUDBOT_NOT_FOUND: ErrorKind = ErrorKind {
    name: "CloudBot.NotFound",
    http_status: 404,
    retryable: false,
    meaning: "unknown contract, BOT (or BOT not published via API), or job",
};

/// `CloudBot.BadRequest`.
pub static CLOUDBOT_BAD_REQUEST: ErrorKind = ErrorKind {
    name: "CloudBot.BadRequest",
    http_status: 422,
    retryable: false,
    meaning: "Cloud BOT refused the request as malformed (HTTP 400)",
};

/// `CloudBot.PayloadTooLarge`.
pub static CLOUDBOT_PAYLOAD_TOO_LARGE: ErrorKind = ErrorKind {
    name: "CloudBot.PayloadTooLarge",
    http_status: 413,
    retryable: false,
    meaning: "the execute body is over 4 MB (HTTP 413, or refused before sending)",
};

/// `CloudBot.UnsupportedMediaType`.
pub static CLOUDBOT_UNSUPPORTED_MEDIA_TYPE: ErrorKind = ErrorKind {
    name: "CloudBot.UnsupportedMediaType",
    http_status: 502,
    retryable: false,
    meaning: "Cloud BOT rejected the content type (HTTP 415)",
};

/// `CloudBot.Unprocessable`.
pub static CLOUDBOT_UNPROCESSABLE: ErrorKind = ErrorKind {
    name: "CloudBot.Unprocessable",
    http_status: 422,
    retryable: false,
    meaning: "Cloud BOT could not process the request, e.g. invalid input data (HTTP 422)",
};

/// `CloudBot.RateLimited`.
pub static CLOUDBOT_RATE_LIMITED: ErrorKind = ErrorKind {
    name: "CloudBot.RateLimited",
    http_status: 503,
    retryable: true,
    meaning: "Cloud BOT answered 429 (and kept answering it within the trigger's retry budget); retry after its `Retry-After`",
};

/// `CloudBot.Unavailable`.
pub static CLOUDBOT_UNAVAILABLE: ErrorKind = ErrorKind {
    name: "CloudBot.Unavailable",
    http_status: 503,
    retryable: true,
    meaning: "Cloud BOT unreachable or failing (5xx, timeout, reset) and provably no job was started (connection refused, 503 with `Retry-After`), or it was a read; API Gateway callers get the server's `Retry-After` when it gave one",
};

/// `CloudBot.OutcomeUnknown`.
pub static CLOUDBOT_OUTCOME_UNKNOWN: ErrorKind = ErrorKind {
    name: "CloudBot.OutcomeUnknown",
    http_status: 504,
    retryable: false,
    meaning: "execute may have reached Cloud BOT and it is unknown whether a job started (timeout, reset, 500/502/504, unreadable answer): look at the BOT's jobs before running it again",
};

/// `CloudBot.InvalidResponse`.
pub static CLOUDBOT_INVALID_RESPONSE: ErrorKind = ErrorKind {
    name: "CloudBot.InvalidResponse",
    http_status: 502,
    retryable: false,
    meaning: "Cloud BOT's answer to a read could not be decoded",
};

/// `CloudBot.UnexpectedStatus`.
pub static CLOUDBOT_UNEXPECTED_STATUS: ErrorKind = ErrorKind {
    name: "CloudBot.UnexpectedStatus",
    http_status: 502,
    retryable: false,
    meaning: "Cloud BOT answered with an undocumented HTTP status",
};

/// `CloudBot.InvalidCredentials`.
pub static CLOUDBOT_INVALID_CREDENTIALS: ErrorKind = ErrorKind {
    name: "CloudBot.InvalidCredentials",
    http_status: 500,
    retryable: false,
    meaning: "the client was given credentials that cannot be sent as HTTP headers (the function checks the secret first and reports `Credentials.Invalid`)",
};

/// `Idempotency.KeyReused`.
pub static IDEMPOTENCY_KEY_REUSED: ErrorKind = ErrorKind {
    name: "Idempotency.KeyReused",
    http_status: 422,
    retryable: false,
    meaning: "the idempotency key was used before for a different request (BOT, input, callback or timeout differ); nothing was sent ([exactly once](exactly-once.md))",
};

/// `Idempotency.InProgress`.
pub static IDEMPOTENCY_IN_PROGRESS: ErrorKind = ErrorKind {
    name: "Idempotency.InProgress",
    http_status: 409,
    retryable: true,
    meaning: "the first request with this idempotency key is still running; nothing was sent. Retry after `Retry-After`: the retry gets the first request's answer",
};

/// `Idempotency.Unavailable`.
pub static IDEMPOTENCY_UNAVAILABLE: ErrorKind = ErrorKind {
    name: "Idempotency.Unavailable",
    http_status: 503,
    retryable: true,
    meaning: "the idempotency table could not be read or written (unreachable, throttled, access denied, missing); nothing was sent",
};

/// `Function.DeadlineExceeded`.
pub static FUNCTION_DEADLINE_EXCEEDED: ErrorKind = ErrorKind {
    name: "Function.DeadlineExceeded",
    http_status: 504,
    retryable: true,
    meaning: "the invocation ran out of time before the request could be sent; no job was started",
};

/// `Function.Internal`.
pub static FUNCTION_INTERNAL: ErrorKind = ErrorKind {
    name: "Function.Internal",
    http_status: 500,
    retryable: false,
    meaning: "an internal error (the HTTP client could not be built, a body could not be encoded)",
};

/// `Callback.NotFound`.
pub static CALLBACK_NOT_FOUND: ErrorKind = ErrorKind {
    name: "Callback.NotFound",
    http_status: 404,
    retryable: false,
    meaning: "a callback for an unknown, malformed or expired callback id; nothing was called ([state machines](state-machines.md#callback-driven-runs))",
};

/// `Callback.NotReady`.
pub static CALLBACK_NOT_READY: ErrorKind = ErrorKind {
    name: "Callback.NotReady",
    http_status: 503,
    retryable: true,
    meaning: "a callback arrived before the execute that registered it recorded its job, or a BOT-done delivery names a job that does not read as ended yet ([events](events.md#runs-started-outside-aws)); Cloud BOT retries it",
};

/// `Callback.Unavailable`.
pub static CALLBACK_UNAVAILABLE: ErrorKind = ErrorKind {
    name: "Callback.Unavailable",
    http_status: 503,
    retryable: true,
    meaning: "the callback records (idempotency table) or Step Functions could not be used; before an execute's POST nothing was sent",
};

/// `Schedule.TooLate` (issue 21).
pub static SCHEDULE_TOO_LATE: ErrorKind = ErrorKind {
    name: "Schedule.TooLate",
    http_status: 422,
    retryable: false,
    meaning: "a managed schedule's tick was delivered later than its `max_lateness` after its scheduled time; nothing was sent. A catch-up delivery (`backfill`) is not checked ([schedules](schedules.md#run-policies))",
};

/// `Calendar.Stale` (issue 21).
pub static CALENDAR_STALE: ErrorKind = ErrorKind {
    name: "Calendar.Stale",
    http_status: 500,
    retryable: false,
    meaning: "a managed schedule's tick falls after the last year of the shipped Japanese holiday list; nothing was sent, never a guess. Update the holiday data ([schedules](schedules.md#how-a-tick-is-decided)); alarmed",
};

/// `Calendar.Undecidable` (issue 21).
pub static CALENDAR_UNDECIDABLE: ErrorKind = ErrorKind {
    name: "Calendar.Undecidable",
    http_status: 500,
    retryable: false,
    meaning: "the calendar could not decide a managed schedule's tick: a date before the holiday list (1955), no business day within a year of it, or a defect of the shipped list; nothing was sent ([schedules](schedules.md#how-a-tick-is-decided))",
};

/// `Job.Overrun` (issue 22).
pub static JOB_OVERRUN: ErrorKind = ErrorKind {
    name: "Job.Overrun",
    http_status: 422,
    retryable: false,
    meaning: "the job ran longer than its maximum run time (`max_run_seconds`, else the stack default): it was suspended, re-read, and its run recorded as ended `overrun`; catch it to handle an overrun ([overrun](overrun.md))",
};

/// `Job.SuspendForbidden` (issue 22).
pub static JOB_SUSPEND_FORBIDDEN: ErrorKind = ErrorKind {
    name: "Job.SuspendForbidden",
    http_status: 502,
    retryable: false,
    meaning: "the job ran longer than its maximum run time, or its workflow failed, timed out or was stopped ([orphans](orphans.md)), but Cloud BOT refused to suspend it (HTTP 403): the access token needs the Suspend permission; the job is still running ([overrun](overrun.md))",
};

/// `Orphans.Unavailable` (issue 22).
pub static ORPHANS_UNAVAILABLE: ErrorKind = ErrorKind {
    name: "Orphans.Unavailable",
    http_status: 503,
    retryable: true,
    meaning: "the status-change path or the sweep could not read the run ledger's open runs (or no ledger is configured): nothing was suspended by this call; EventBridge retries the event and the next sweep looks again ([orphans](orphans.md))",
};

/// `Budget.Exhausted` (issue 22).
pub static BUDGET_EXHAUSTED: ErrorKind = ErrorKind {
    name: "Budget.Exhausted",
    http_status: 429,
    retryable: false,
    meaning: "the contract's BOT-seconds this month reached the budget's stop level and the execute's `priority` is `normal`; nothing was sent and its idempotency key is free again, so the same request runs once the budget allows (next month, or a higher allowance). `priority` `high` still runs ([usage](usage.md#budget))",
};

/// Every row, in documentation order.
pub static ALL: &[&ErrorKind] = &[
    &INVALID_REQUEST,
    &CREDENTIALS_UNAVAILABLE,
    &CREDENTIALS_INVALID,
    &CREDENTIALS_UNKNOWN_CONTRACT,
    &CLOUDBOT_UNAUTHORIZED,
    &CLOUDBOT_FORBIDDEN,
    &CLOUDBOT_NOT_FOUND,
    &CLOUDBOT_BAD_REQUEST,
    &CLOUDBOT_PAYLOAD_TOO_LARGE,
    &CLOUDBOT_UNSUPPORTED_MEDIA_TYPE,
    &CLOUDBOT_UNPROCESSABLE,
    &CLOUDBOT_RATE_LIMITED,
    &CLOUDBOT_UNAVAILABLE,
    &CLOUDBOT_OUTCOME_UNKNOWN,
    &CLOUDBOT_INVALID_RESPONSE,
    &CLOUDBOT_UNEXPECTED_STATUS,
    &CLOUDBOT_INVALID_CREDENTIALS,
    &IDEMPOTENCY_KEY_REUSED,
    &IDEMPOTENCY_IN_PROGRESS,
    &IDEMPOTENCY_UNAVAILABLE,
    &CALLBACK_NOT_FOUND,
    &CALLBACK_NOT_READY,
    &CALLBACK_UNAVAILABLE,
    &SCHEDULE_TOO_LATE,
    &CALENDAR_STALE,
    &CALENDAR_UNDECIDABLE,
    &JOB_OVERRUN,
    &JOB_SUSPEND_FORBIDDEN,
    &ORPHANS_UNAVAILABLE,
    &BUDGET_EXHAUSTED,
    &FUNCTION_DEADLINE_EXCEEDED,
    &FUNCTION_INTERNAL,
];
