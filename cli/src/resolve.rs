//! `cloudbot resolve`: settles an idempotency record the function left unknown, by invoking
//! the function's `resolve_idempotency` operation directly (Lambda `Invoke`, the only trigger
//! that operation accepts; docs/exactly-once.md, "The operator's way out").
//!
//! The record key is taken as the `CloudBot.OutcomeUnknown` message shows it, or cut out of
//! that whole message, so an operator can paste what the alarm or the failed execution said.

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use cloudbot_trigger::cloudbot::JobEndpoint;
use cloudbot_trigger::idempotency::RecordKey;
use serde_json::{Value, json};

use crate::exit::Exit;

/// Why `resolve` failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The Lambda `Invoke` call itself failed (no such function, no permission, unreachable).
    #[error("invoking the function failed ({code}): {message}")]
    Invoke {
        /// The Lambda error code (`ResourceNotFoundException`, ...), or `InvokeFailed`.
        code: String,
        /// Lambda's message, or what failed on the way.
        message: String,
    },
    /// The function answered with an error (the record was not changed).
    #[error("the function refused ({error_type}): {message}")]
    Function {
        /// The function's errorType (`InvalidRequest`, `Idempotency.InProgress`, ...).
        error_type: String,
        /// Its errorMessage.
        message: String,
    },
}

impl ResolveError {
    /// The stable error type: the function's own, or `Lambda.<code>` for the invoke.
    pub fn error_type(&self) -> String {
        match self {
            ResolveError::Invoke { code, .. } => format!("Lambda.{code}"),
            ResolveError::Function { error_type, .. } => error_type.clone(),
        }
    }

    /// Nothing was started either way; the record is unchanged unless the invoke's answer was
    /// lost (then running the same `resolve` again says "completed"/"released").
    pub fn exit(&self) -> Exit {
        Exit::NotStarted
    }
}

/// The record key in `raw`: the key itself, or the backticked key in an OutcomeUnknown message
/// ("... idempotency key `request:...` may have started a job ..."), checked by the function's
/// own key rules; the error names the problem.
pub fn record_key(raw: &str) -> Result<RecordKey, String> {
    let raw = raw.trim();
    let key = match raw.split_once("idempotency key `") {
        Some((_, rest)) => rest
            .split_once('`')
            .map(|(key, _)| key)
            .ok_or("the message's key has no closing backtick")?,
        None => raw,
    };
    RecordKey::parse(key).map_err(|problem| format!("the record key {problem}"))
}

/// The candidate jobs a `CloudBot.OutcomeUnknown` message names when Cloud BOT's job list could
/// not settle the record ("... candidate jobs: <endpoint>, <endpoint>. ..."; docs/exactly-once.md,
/// "Reconciling unknown outcomes"); empty for a bare key or a message without them.
pub fn candidates(raw: &str) -> Vec<String> {
    let Some((_, rest)) = raw.split_once("candidate jobs: ") else {
        return Vec::new();
    };
    rest.split_whitespace()
        .map(|word| word.trim_end_matches([',', '.']))
        .take_while(|word| word.starts_with("http"))
        .map(str::to_owned)
        .collect()
}

/// The `resolve_idempotency` payload: `started` with the job found, or `not_started`.
pub fn payload(key: &RecordKey, started: Option<&JobEndpoint>) -> Value {
    match started {
        Some(job) => json!({
            "operation": "resolve_idempotency",
            "record_key": key.as_str(),
            "resolution": "started",
            "job_reference_endpoint": job.url(),
        }),
        None => json!({
            "operation": "resolve_idempotency",
            "record_key": key.as_str(),
            "resolution": "not_started",
        }),
    }
}

/// Invokes `function` synchronously with `payload`; the function's answer, or its error.
pub async fn invoke(
    aws: &aws_types::SdkConfig,
    function: &str,
    payload: &Value,
) -> Result<Value, ResolveError> {
    let client = aws_sdk_lambda::Client::new(aws);
    let answer = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(|e| ResolveError::Invoke {
            code: e.code().unwrap_or("InvokeFailed").to_owned(),
            message: e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| aws_sdk_lambda::error::DisplayErrorContext(&e).to_string()),
        })?;
    let body: Value = answer
        .payload()
        .and_then(|b| serde_json::from_slice(b.as_ref()).ok())
        .unwrap_or(Value::Null);
    if answer.function_error().is_some() {
        let field = |name: &str| body[name].as_str().unwrap_or("").to_owned();
        return Err(ResolveError::Function {
            error_type: field("errorType"),
            message: field("errorMessage"),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_taken_as_is_or_cut_from_the_outcome_unknown_message() {
        assert_eq!(
            record_key("request:arn:aws:states:r:1:execution:m:e#ExecuteBot")
                .unwrap()
                .as_str(),
            "request:arn:aws:states:r:1:execution:m:e#ExecuteBot"
        );
        let message = "an earlier request with idempotency key `schedule:arn:aws:scheduler:x@2026-11-24T00:00:00Z` \
                       may have started a job and its outcome is unknown; nothing was sent.";
        assert_eq!(
            record_key(message).unwrap().as_str(),
            "schedule:arn:aws:scheduler:x@2026-11-24T00:00:00Z"
        );
        for bad in ["", "request:", "no key here", "idempotency key `oops"] {
            assert!(record_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_candidate_jobs_are_cut_from_the_message() {
        let message = "an earlier request with idempotency key `request:k` may have started a job \
                       and its outcome is unknown; nothing was sent. Cloud BOT's job list cannot \
                       settle it: more than one job of the BOT started while the request was out; \
                       candidate jobs: https://api.c-bot.pro/demo/jobs/j2, \
                       https://api.c-bot.pro/demo/jobs/j1. Check the BOT's jobs, then settle the \
                       key with the resolve_idempotency operation (docs/exactly-once.md)";
        assert_eq!(
            candidates(message),
            [
                "https://api.c-bot.pro/demo/jobs/j2",
                "https://api.c-bot.pro/demo/jobs/j1"
            ]
        );
        assert!(candidates("request:k").is_empty());
        assert!(candidates("... candidate jobs: none. Check ...").is_empty());
    }
}
