//! Re-running a BOT job that ended failed (docs/state-machines.md, "Re-run on failure"): the
//! request's `rerun` policy, parsed strictly; the attempt an execute belongs to and its key; and
//! the one rule that decides whether a failed job gets another attempt. Pure values: the shipped
//! state machines (RunBot, RunBotCallback, each RunBotMap item) run the loop and ask the function
//! (`decide_rerun`) at each failure, so the rule has one home and the workflows only follow it.
//! The policy's bounds live in `cloudbot_calendar::rerun`, shared with a schedule's
//! `policies.rerun`.

pub(crate) mod envelope;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::cloudbot::{ApiBase, JobEndpoint};
use crate::request::{RequestError, kind_of};

/// The request field (and the envelope's decision operation).
pub const FIELD: &str = "rerun";

/// The envelope's operation that asks for the decision (the state machine's DecideRerun state).
pub const DECIDE: &str = "decide_rerun";

/// The policy's bounds, shared with a schedule's `policies.rerun` (their one home:
/// `cloudbot_calendar::rerun`).
pub use cloudbot_calendar::rerun::{MAX_BACKOFF_SECONDS, MAX_PATTERN_CHARS, MAX_RERUNS};

/// Highest attempt number an execute may carry: a policy stops at `MAX_RERUNS + 1`, but
/// `cloudbot rerun` continues a chain by hand, one paid and confirmed run at a time.
pub const MAX_ATTEMPT_NUMBER: u32 = 1000;

/// What a request's `rerun` asks for.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Re-runs after the first job (`attempts`, 1..=[`MAX_RERUNS`]): at most `attempts + 1` jobs.
    pub attempts: u32,
    /// The wait before each re-run (`backoff_seconds`, 0..=[`MAX_BACKOFF_SECONDS`], default 0).
    pub backoff_seconds: u32,
    /// Re-run only when the failed job's message matches (`message_pattern`).
    pub pattern: Option<regex::Regex>,
}

impl Policy {
    /// The policy of a request's `rerun` object; every error names its field.
    pub fn parse(value: &Value) -> Result<Self, RequestError> {
        let Value::Object(map) = value else {
            return Err(RequestError::field(
                FIELD,
                format!("must be an object, not {}", kind_of(value)),
            ));
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !["attempts", "backoff_seconds", "message_pattern"].contains(&k.as_str()))
        {
            return Err(RequestError::field(
                format!("{FIELD}.{unknown}"),
                "unknown field; `rerun` has `attempts`, `backoff_seconds` and `message_pattern`",
            ));
        }
        let attempts = match map.get("attempts") {
            Some(v) => bounded(v, "attempts", 1, MAX_RERUNS)?,
            None => return Err(RequestError::field("rerun.attempts", "is required")),
        };
        let backoff_seconds = match map.get("backoff_seconds") {
            Some(v) => bounded(v, "backoff_seconds", 0, MAX_BACKOFF_SECONDS)?,
            None => 0,
        };
        let pattern = map.get("message_pattern").map(pattern).transpose()?;
        Ok(Self {
            attempts,
            backoff_seconds,
            pattern,
        })
    }
}

fn bounded(value: &Value, name: &str, min: u32, max: u32) -> Result<u32, RequestError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            RequestError::field(
                format!("{FIELD}.{name}"),
                format!("must be a whole number from {min} to {max}"),
            )
        })
}

fn pattern(value: &Value) -> Result<regex::Regex, RequestError> {
    const FIELD_NAME: &str = "rerun.message_pattern";
    let Value::String(text) = value else {
        return Err(RequestError::field(
            FIELD_NAME,
            format!("must be a string, not {}", kind_of(value)),
        ));
    };
    // The syntax error names a position in the pattern, not any user data beyond it.
    cloudbot_calendar::rerun::compile_pattern(text)
        .map_err(|err| RequestError::field(FIELD_NAME, err.to_string()))
}

/// The attempt an execute (or a decision) belongs to: the shipped state machine's `attempt`
/// envelope field, `{"number": 1}` for the first job, `{"number": n, "previous_job": "..."}`
/// for a re-run. Recorded in the run ledger (`attempt`, `previous_run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first job, 2.. for re-runs.
    pub number: u32,
    /// The failed job this attempt re-runs (`None` for the first).
    pub previous_job: Option<JobEndpoint>,
}

impl Attempt {
    /// The envelope's `attempt`, checked against the execute's idempotency `key` (as sent, no
    /// prefix): a re-run's key is [`attempt_key`]'s, so each attempt is its own exactly-once run.
    pub fn parse(value: &Value, key: Option<&str>, base: &ApiBase) -> Result<Self, RequestError> {
        let Value::Object(map) = value else {
            return Err(RequestError::field(
                "attempt",
                format!("must be an object, not {}", kind_of(value)),
            ));
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !["number", "previous_job"].contains(&k.as_str()))
        {
            return Err(RequestError::field(
                format!("attempt.{unknown}"),
                "unknown field; `attempt` has `number` and `previous_job`",
            ));
        }
        let number = map
            .get("number")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=MAX_ATTEMPT_NUMBER).contains(n))
            .ok_or_else(|| {
                RequestError::field(
                    "attempt.number",
                    format!("must be a whole number from 1 to {MAX_ATTEMPT_NUMBER}"),
                )
            })?;
        let previous_job = match (number, map.get("previous_job")) {
            (1, None) => None,
            (1, Some(_)) => {
                return Err(RequestError::field(
                    "attempt.previous_job",
                    "is only valid for a re-run (number 2 or more)",
                ));
            }
            (_, Some(Value::String(url))) => Some(
                JobEndpoint::parse(base, url, "attempt.previous_job")
                    .map_err(RequestError::from)?,
            ),
            (_, _) => {
                return Err(RequestError::field(
                    "attempt.previous_job",
                    "is required for a re-run: the job reference endpoint of the failed job",
                ));
            }
        };
        let Some(key) = key else {
            return Err(RequestError::field(
                "idempotency_key",
                "is required with `attempt`: each attempt is keyed",
            ));
        };
        if attempt_of_key(key) != number {
            return Err(RequestError::field(
                "idempotency_key",
                format!("does not name attempt {number} (a re-run's key ends in `#attempt-<n>`)"),
            ));
        }
        Ok(Self {
            number,
            previous_job,
        })
    }
}

/// The suffix that makes attempt `n`'s key.
fn suffix(number: u32) -> String {
    format!("#attempt-{number}")
}

/// The attempt a key names: `n` for `…#attempt-<n>` (n ≥ 2), else 1.
pub fn attempt_of_key(key: &str) -> u32 {
    key.rsplit_once("#attempt-")
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .filter(|n| *n >= 2 && key.ends_with(&suffix(*n)))
        .unwrap_or(1)
}

/// The key of attempt `next` of the run whose current attempt is keyed `key`: the first
/// attempt's key with `#attempt-<next>`, so every attempt of a run has its own key and a retry
/// of one attempt's execute replays that attempt, never starts another.
pub fn attempt_key(key: &str, next: u32) -> String {
    format!("{}{}", first_attempt_key(key), suffix(next))
}

/// The run's first attempt's key: `key` without its `#attempt-<n>` (n ≥ 2), so every attempt
/// of a scheduled run is that run's (its state record, its breaker count).
pub fn first_attempt_key(key: &str) -> &str {
    match attempt_of_key(key) {
        1 => key,
        current => &key[..key.len() - suffix(current).len()],
    }
}

/// Why a failed run gets no further attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The job did not end failed (only status `error` is re-run).
    NotFailed,
    /// Every attempt the policy allows has run.
    AttemptsExhausted,
    /// The failed job's message does not match `message_pattern` (or it has none).
    MessageNotMatched,
}

/// The rule's answer for the job of attempt `failed_attempt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start attempt `attempt` after `wait_seconds`.
    Rerun {
        /// The new attempt's number.
        attempt: u32,
        /// The backoff before it.
        wait_seconds: u32,
    },
    /// No further attempt.
    Stop(Stop),
}

/// Whether the job of attempt `failed_attempt`, which read `status` with `message`, is run
/// again under `policy`. Only a job that *ended failed* (status `error`, read from Cloud BOT) is
/// re-run: an execute that failed or whose outcome is unknown never reaches this rule.
pub fn decide(
    policy: &Policy,
    failed_attempt: u32,
    status: &str,
    message: Option<&str>,
) -> Decision {
    if status != "error" {
        return Decision::Stop(Stop::NotFailed);
    }
    if failed_attempt > policy.attempts {
        return Decision::Stop(Stop::AttemptsExhausted);
    }
    if let Some(pattern) = &policy.pattern
        && !message.is_some_and(|m| pattern.is_match(m))
    {
        return Decision::Stop(Stop::MessageNotMatched);
    }
    Decision::Rerun {
        attempt: failed_attempt + 1,
        wait_seconds: policy.backoff_seconds,
    }
}

/// The failed job a decision is asked about: the state machine's last `refer_job` result.
#[derive(Debug, Clone)]
pub struct FailedJob {
    /// Its job reference endpoint.
    pub job: JobEndpoint,
    /// Its status as the function named it (`error`, `succeeded`, …).
    pub status: String,
    /// Cloud BOT's message, if any.
    pub message: Option<String>,
}

impl FailedJob {
    /// The envelope's `job` (a `refer_job` result; only these three fields are read).
    pub fn parse(value: &Value, base: &ApiBase) -> Result<Self, RequestError> {
        let map: &Map<String, Value> = value.as_object().ok_or_else(|| {
            RequestError::field("job", format!("must be an object, not {}", kind_of(value)))
        })?;
        let text = |name: &str| -> Result<Option<&str>, RequestError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(RequestError::field(
                    format!("job.{name}"),
                    format!("must be a string, not {}", kind_of(other)),
                )),
            }
        };
        let url = text("job_reference_endpoint")?
            .ok_or_else(|| RequestError::field("job.job_reference_endpoint", "is required"))?;
        let job = JobEndpoint::parse(base, url, "job.job_reference_endpoint")
            .map_err(RequestError::from)?;
        let status = text("status")?
            .ok_or_else(|| RequestError::field("job.status", "is required"))?
            .to_owned();
        Ok(Self {
            job,
            status,
            message: text("message")?.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy(value: Value) -> Result<Policy, String> {
        Policy::parse(&value).map_err(|e| e.to_string())
    }

    fn base() -> ApiBase {
        ApiBase::parse("https://api.c-bot.pro").unwrap()
    }

    const JOB: &str = "https://api.c-bot.pro/acme/jobs/j1";

    #[test]
    fn a_policy_is_parsed_strictly_and_every_error_names_its_field() {
        let p = policy(json!({"attempts": 2, "backoff_seconds": 30, "message_pattern": "timeout"}))
            .unwrap();
        assert_eq!((p.attempts, p.backoff_seconds), (2, 30));
        assert_eq!(policy(json!({"attempts": 1})).unwrap().backoff_seconds, 0);
        for (value, field) in [
            (json!(3), "`rerun`"),
            (json!({}), "`rerun.attempts`"),
            (json!({"attempts": 0}), "`rerun.attempts`"),
            (json!({"attempts": MAX_RERUNS + 1}), "`rerun.attempts`"),
            (json!({"attempts": "2"}), "`rerun.attempts`"),
            (
                json!({"attempts": 1, "backoff_seconds": -1}),
                "`rerun.backoff_seconds`",
            ),
            (
                json!({"attempts": 1, "backoff_seconds": MAX_BACKOFF_SECONDS + 1}),
                "`rerun.backoff_seconds`",
            ),
            (
                json!({"attempts": 1, "message_pattern": ""}),
                "`rerun.message_pattern`",
            ),
            (
                json!({"attempts": 1, "message_pattern": "("}),
                "`rerun.message_pattern`",
            ),
            (
                json!({"attempts": 1, "message_pattern": null}),
                "`rerun.message_pattern`",
            ),
            (json!({"attempts": 1, "retries": 2}), "`rerun.retries`"),
        ] {
            let err = policy(value.clone()).unwrap_err();
            assert!(err.starts_with(&format!("field {field}")), "{value}: {err}");
        }
    }

    #[test]
    fn a_pattern_is_bounded_in_length_and_in_compiled_size() {
        let long = "a".repeat(MAX_PATTERN_CHARS + 1);
        assert!(policy(json!({"attempts": 1, "message_pattern": long})).is_err());
        // Short, but its automaton would be large.
        let err = policy(json!({"attempts": 1, "message_pattern": "\\w{1000}{1000}"})).unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn the_rule_reruns_a_failed_job_until_the_attempts_are_spent() {
        let p = policy(json!({"attempts": 2, "backoff_seconds": 5})).unwrap();
        let rerun = |attempt| Decision::Rerun {
            attempt,
            wait_seconds: 5,
        };
        assert_eq!(decide(&p, 1, "error", Some("x")), rerun(2));
        assert_eq!(decide(&p, 2, "error", None), rerun(3));
        assert_eq!(
            decide(&p, 3, "error", Some("x")),
            Decision::Stop(Stop::AttemptsExhausted)
        );
        for status in ["succeeded", "executing", "code_9"] {
            assert_eq!(decide(&p, 1, status, None), Decision::Stop(Stop::NotFailed));
        }
    }

    #[test]
    fn with_a_pattern_only_a_matching_message_is_rerun() {
        let p = policy(json!({"attempts": 1, "message_pattern": "(?i)time ?out"})).unwrap();
        assert!(matches!(
            decide(&p, 1, "error", Some("Step 2: Timeout waiting for page")),
            Decision::Rerun { attempt: 2, .. }
        ));
        for message in [Some("Step 3 failed: element not found"), None] {
            assert_eq!(
                decide(&p, 1, "error", message),
                Decision::Stop(Stop::MessageNotMatched)
            );
        }
    }

    #[test]
    fn each_attempt_has_its_own_key_built_on_the_first() {
        let first = "arn:aws:states:us-east-1:1:execution:run-bot:x#ExecuteBot";
        let second = attempt_key(first, 2);
        assert_eq!(second, format!("{first}#attempt-2"));
        assert_eq!(attempt_key(&second, 3), format!("{first}#attempt-3"));
        assert_eq!(attempt_of_key(first), 1);
        assert_eq!(attempt_of_key(&second), 2);
        assert_eq!(attempt_of_key("k#attempt-1"), 1);
        assert_eq!(attempt_of_key("k#attempt-x"), 1);
        assert_eq!(first_attempt_key(&attempt_key(first, 3)), first);
        assert_eq!(first_attempt_key(first), first);
    }

    #[test]
    fn an_attempt_must_agree_with_its_key_and_name_its_previous_job() {
        let b = base();
        let first = Attempt::parse(&json!({"number": 1}), Some("k#ExecuteBot"), &b).unwrap();
        assert_eq!(first.previous_job, None);
        let second = Attempt::parse(
            &json!({"number": 2, "previous_job": JOB}),
            Some("k#ExecuteBot#attempt-2"),
            &b,
        )
        .unwrap();
        assert_eq!(second.previous_job.unwrap().url(), JOB);
        for (value, key, field) in [
            (
                json!({"number": 2, "previous_job": JOB}),
                Some("k"),
                "`idempotency_key`",
            ),
            (
                json!({"number": 1}),
                Some("k#attempt-2"),
                "`idempotency_key`",
            ),
            (
                json!({"number": 2, "previous_job": JOB}),
                None,
                "`idempotency_key`",
            ),
            (
                json!({"number": 2}),
                Some("k#attempt-2"),
                "`attempt.previous_job`",
            ),
            (
                json!({"number": 1, "previous_job": JOB}),
                Some("k"),
                "`attempt.previous_job`",
            ),
            (json!({"number": 0}), Some("k"), "`attempt.number`"),
            (
                json!({"number": 2, "previous_job": "https://evil.example/acme/jobs/j1"}),
                Some("k#attempt-2"),
                "`attempt.previous_job`",
            ),
            (
                json!({"number": 1, "extra": 1}),
                Some("k"),
                "`attempt.extra`",
            ),
        ] {
            let err = Attempt::parse(&value, key, &b).unwrap_err().to_string();
            assert!(err.starts_with(&format!("field {field}")), "{value}: {err}");
        }
    }

    #[test]
    fn a_failed_job_is_read_from_a_refer_job_result() {
        let job = FailedJob::parse(
            &json!({"operation": "refer_job", "job_reference_endpoint": JOB, "status": "error",
                    "message": "boom", "output": {"a": 1}}),
            &base(),
        )
        .unwrap();
        assert_eq!(
            (job.status.as_str(), job.message.as_deref()),
            ("error", Some("boom"))
        );
        assert!(FailedJob::parse(&json!({"status": "error"}), &base()).is_err());
    }
}
