//! Structured logging: the subscriber set-up and the one span per invocation.
//!
//! Logs go to stdout through `lambda_runtime`'s tracing set-up, which honours Lambda's advanced
//! logging controls: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), INFO by default. Each invocation runs inside an
//! `invocation` span carrying the request id, trigger, operation, its target (`bot_endpoint`,
//! `public_id`, `bot_id`, `job_id`: each field means one thing whatever the operation), upstream
//! status, latency and error type, so every line of an invocation can be correlated. The raw event,
//! headers, input values and response bodies are never logged.

use std::time::Duration;

use tracing::Span;
use tracing::field::Empty;

use crate::error::Failure;
use crate::request::Operation;

/// Installs the global subscriber (call once, first thing in `main`).
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The span of one invocation; the other fields are recorded as they become known.
pub fn invocation_span(request_id: &str, trigger: &'static str) -> Span {
    tracing::info_span!(
        "invocation",
        request_id = %request_id,
        trigger,
        operation = Empty,
        bot_endpoint = Empty,
        public_id = Empty,
        bot_id = Empty,
        job_id = Empty,
        upstream_status = Empty,
        latency_ms = Empty,
        error_type = Empty,
    )
}

/// Records the operation and its target on the current invocation span.
pub fn record_target(operation: &Operation) {
    let span = Span::current();
    span.record("operation", operation.kind().name());
    match operation {
        Operation::Execute { bot, .. } => {
            span.record("bot_endpoint", bot.url());
            span.record("public_id", bot.public_id().as_str());
            span.record("bot_id", bot.bot_id().as_str());
        }
        Operation::ReferJob { job } => {
            span.record("public_id", job.public_id().as_str());
            span.record("job_id", job.job_id().as_str());
        }
        Operation::ListBots { public_id } => {
            span.record("public_id", public_id.as_str());
        }
        // The id is a secret: nothing of it is recorded.
        Operation::Callback { .. } => {}
        Operation::ResolveIdempotency { job, .. } => {
            if let Some(job) = job {
                span.record("public_id", job.public_id().as_str());
                span.record("job_id", job.job_id().as_str());
            }
        }
    }
}

/// Records what Cloud BOT answered (HTTP status and, when a job is known, its id).
pub fn record_upstream(status: Option<u16>, job_id: Option<&str>) {
    let span = Span::current();
    if let Some(status) = status {
        span.record("upstream_status", status);
    }
    if let Some(job_id) = job_id {
        span.record("job_id", job_id);
    }
}

/// Logs the end of the invocation once, with its latency and, on failure, the error type and
/// message (messages never contain credentials or bodies; see [`Failure::log_text`]).
pub fn finish<T>(result: &Result<T, Failure>, latency: Duration) {
    let span = Span::current();
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    span.record("latency_ms", latency_ms);
    match result {
        Ok(_) => tracing::info!(latency_ms, "invocation succeeded"),
        Err(failure) => {
            span.record("error_type", failure.error_type());
            if let Failure::CloudBot(err) = failure {
                span.record("upstream_status", err.upstream_status());
            }
            tracing::warn!(
                latency_ms,
                error_type = failure.error_type(),
                retryable = failure.retryable(),
                error = %failure.log_text(),
                "invocation failed"
            );
        }
    }
}
