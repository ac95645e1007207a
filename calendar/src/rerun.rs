//! A re-run policy's bounds and its `message_pattern`, the one home of both: an execute
//! request's `rerun` (the function, `src/rerun/`) and a schedule's `policies.rerun` (this
//! crate's [`crate::schedule`]) are checked by these, so a schedule file can never hold a policy
//! the function would refuse at run time (docs/state-machines.md, "Re-run on failure").
//!
//! Here rather than in the function because the function depends on this crate, not the other
//! way round; the CLI validates schedule files with it too.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most re-runs a policy may ask for: each one is a billed BOT run.
pub const MAX_RERUNS: u32 = 5;

/// Longest wait before a re-run (seconds): the state machines' whole execution is bounded
/// (their `TimeoutSeconds`), so a longer backoff would be cut by it.
pub const MAX_BACKOFF_SECONDS: u32 = 3600;

/// Longest `message_pattern` (characters).
pub const MAX_PATTERN_CHARS: usize = 256;

/// Bound on the compiled pattern (bytes), so a short pattern with large repetitions cannot make
/// an invocation compile a huge automaton.
const PATTERN_SIZE_LIMIT: usize = 1 << 16;

/// Why a `message_pattern` is refused; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Empty or longer than [`MAX_PATTERN_CHARS`].
    Length,
    /// Its compiled automaton is beyond the bound.
    TooLarge,
    /// Not a valid pattern (the syntax error names a position in the pattern only).
    Syntax(String),
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::Length => write!(f, "must be 1 to {MAX_PATTERN_CHARS} characters"),
            PatternError::TooLarge => write!(f, "compiles too large; simplify the pattern"),
            PatternError::Syntax(err) => write!(f, "is not a valid pattern: {err}"),
        }
    }
}

/// Compiles a `message_pattern` ([Rust `regex` syntax](https://docs.rs/regex/latest/regex/#syntax):
/// linear-time matching, no look-around or back-references) within the bounds.
pub fn compile_pattern(text: &str) -> Result<regex::Regex, PatternError> {
    if text.is_empty() || text.chars().count() > MAX_PATTERN_CHARS {
        return Err(PatternError::Length);
    }
    regex::RegexBuilder::new(text)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(_) => PatternError::TooLarge,
            other => PatternError::Syntax(other.to_string()),
        })
}

/// A schedule's `policies.rerun`: run the BOT again when its job ended failed. The same fields
/// and bounds as an execute request's `rerun`; the tick hands it to the state machine's loop
/// unchanged (serialized as the request's `rerun`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunPolicy {
    /// Re-runs after the first job (1 to 5): at most `attempts + 1` jobs, each billed.
    #[schemars(range(min = 1, max = MAX_RERUNS))]
    pub attempts: u32,
    /// The wait before each re-run, in seconds (0 to 3600).
    #[serde(default)]
    #[schemars(range(min = 0, max = MAX_BACKOFF_SECONDS))]
    pub backoff_seconds: u32,
    /// Re-run only when the failed job's message matches this regular expression (Rust `regex`
    /// syntax, 1 to 256 characters); a job without a message does not match. Absent: every
    /// failure is re-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_PATTERN_CHARS))]
    pub message_pattern: Option<String>,
}

impl RerunPolicy {
    /// The checks serde cannot express, as `(field under rerun, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_RERUNS).contains(&self.attempts) {
            return Err((
                "attempts",
                format!("must be a whole number from 1 to {MAX_RERUNS}"),
            ));
        }
        if self.backoff_seconds > MAX_BACKOFF_SECONDS {
            return Err((
                "backoff_seconds",
                format!("must be a whole number from 0 to {MAX_BACKOFF_SECONDS}"),
            ));
        }
        if let Some(pattern) = &self.message_pattern {
            compile_pattern(pattern).map_err(|err| ("message_pattern", err.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32, backoff_seconds: u32, pattern: Option<&str>) -> RerunPolicy {
        RerunPolicy {
            attempts,
            backoff_seconds,
            message_pattern: pattern.map(str::to_owned),
        }
    }

    #[test]
    fn the_bounds_and_the_pattern_are_checked() {
        assert_eq!(policy(1, 0, None).check(), Ok(()));
        assert_eq!(
            policy(MAX_RERUNS, MAX_BACKOFF_SECONDS, Some("(?i)time ?out")).check(),
            Ok(())
        );
        for (bad, field) in [
            (policy(0, 0, None), "attempts"),
            (policy(MAX_RERUNS + 1, 0, None), "attempts"),
            (policy(1, MAX_BACKOFF_SECONDS + 1, None), "backoff_seconds"),
            (policy(1, 0, Some("")), "message_pattern"),
            (policy(1, 0, Some("(")), "message_pattern"),
            (policy(1, 0, Some("\\w{1000}{1000}")), "message_pattern"),
        ] {
            assert_eq!(bad.check().unwrap_err().0, field, "{bad:?}");
        }
        let long = "a".repeat(MAX_PATTERN_CHARS + 1);
        assert_eq!(compile_pattern(&long).unwrap_err(), PatternError::Length);
        assert_eq!(
            compile_pattern("\\w{1000}{1000}").unwrap_err(),
            PatternError::TooLarge
        );
    }

    #[test]
    fn it_serializes_as_the_requests_rerun() {
        let p: RerunPolicy = serde_json::from_value(serde_json::json!({"attempts": 2})).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"attempts": 2, "backoff_seconds": 0})
        );
        assert!(
            serde_json::from_value::<RerunPolicy>(serde_json::json!({"attempts": 1, "retries": 2}))
                .is_err()
        );
    }
}
