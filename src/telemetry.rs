//! Structured logging: the subscriber set-up and the one span per invocation.
//!
//! Logs go to stdout the way `lambda_runtime`'s default subscriber writes them, honouring
//! Lambda's advanced logging controls: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), INFO by default. (These are the runtime's logging
//! controls, not the function's configuration, so they are read here rather than in `config`.)
//! One addition: the runtime, AWS SDK and HTTP crates' own events ([`CAPPED_TARGETS`]) are
//! capped at DEBUG whatever the level and whatever per-target directives `RUST_LOG` holds, because
//! their TRACE events print what we promise never to log: `lambda_runtime` the raw event (an API
//! Gateway caller's `Authorization` header, the BOT's input values), the SDK's orchestrator and
//! signer every request and response in full (a callback record's DynamoDB item with its task
//! token, the `SendTaskSuccess` token and output), `reqwest`'s verbose connections the bytes on
//! the wire (Cloud BOT's credential headers).
//!
//! Each invocation runs inside an `invocation` span carrying the request id, trigger, operation,
//! its target (`bot_endpoint`, `public_id`, `bot_id`, `job_id`: each field means one thing
//! whatever the operation), upstream status, latency and error type, so every line of an
//! invocation can be correlated. The raw event, headers, input values and response bodies are
//! never logged, at any level.

use std::str::FromStr;
use std::time::Duration;

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter, Targets};
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use lambda_runtime::tracing::subscriber::layer::SubscriberExt;
use lambda_runtime::tracing::subscriber::{self, util::SubscriberInitExt};
use tracing::Span;
use tracing::field::Empty;

use crate::error::Failure;
use crate::request::Operation;

/// Log targets capped at DEBUG, matched as prefixes of an event's target (tracing's rule, so
/// `aws_` covers `aws_config`, `aws_sdk_dynamodb`, `aws_smithy_runtime`, `aws_sigv4` and the SDK
/// crates to come; `hyper` covers `hyper_util` and `hyper_rustls`). Their TRACE events carry the
/// raw event, whole requests and responses (task tokens, secrets, BOT input) or wire bytes; their
/// DEBUG events do not (tested with a real callback at TRACE, tests/py/test_callbacks.py).
pub const CAPPED_TARGETS: &[&str] = &[
    "lambda_runtime",
    "aws_",
    "hyper",
    "h2",
    "rustls",
    "reqwest",
    "tower",
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (`AWS_LAMBDA_LOG_FORMAT=JSON`).
    Json,
    /// tracing's plain text.
    Text,
}

/// Installs the global subscriber (call once, first thing in `main`).
pub fn init() {
    let format = match std::env::var("AWS_LAMBDA_LOG_FORMAT") {
        Ok(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| LevelFilter::from_str(&l).ok())
        .unwrap_or(LevelFilter::INFO);
    // `RUST_LOG` may also hold per-target directives; the cap applies on top of them.
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    subscriber(format, filter, std::io::stdout).init();
}

/// The function's subscriber: `filter`, then the runtime cap, written by `writer` in `format`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(builder.json().finish().with(runtime_cap())),
        LogFormat::Text => Box::new(builder.finish().with(runtime_cap())),
    }
}

/// Every target as configured, except [`CAPPED_TARGETS`] at DEBUG at most. A separate filter
/// after the `RUST_LOG` one, so a directive such as `aws_smithy_runtime=trace` cannot raise a
/// capped target. Because the filter is global, a capped TRACE callsite is disabled outright and
/// its field values are never computed (`lambda_runtime`'s raw-event line fails on a payload that
/// is not UTF-8).
fn runtime_cap() -> Targets {
    CAPPED_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, target| targets.with_target(*target, LevelFilter::DEBUG),
    )
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
        Operation::Execute(execute)
        | Operation::ScheduleTick(execute)
        | Operation::DecideRerun(execute, _) => {
            let bot = &execute.bot;
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
        // The execution is not a secret but long; the sweep has no target.
        Operation::ExecutionEnded(_) | Operation::Sweep => {}
        // The BOT and the job, never the path token (a secret).
        Operation::BotDone(done) => {
            span.record("public_id", done.bot.public_id().as_str());
            span.record("bot_id", done.bot.bot_id().as_str());
            span.record("job_id", done.job.job_id().as_str());
        }
        Operation::ResolveIdempotency { resolution, .. } => {
            if let Some(job) = resolution.job() {
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
