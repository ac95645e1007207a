//! Record keys: one per logical request, namespaced by where the key came from.
//!
//! The same text can mean different things to different triggers (an API caller's key and a
//! state machine's key could collide, by accident or on purpose), so the stored key carries its
//! source as a prefix: `request:` (the `idempotency_key` field, also sent by the shipped state
//! machines), `event:` (an EventBridge event id), `sqs:` (an SQS message id, the run queue), `http:` (the API Gateway `Idempotency-Key`
//! header) and `schedule:` (EventBridge Scheduler's schedule ARN and scheduled time). The prefixed
//! form is what errors, logs and the operator's resolve operation show and take. Keys per trigger:
//! docs/exactly-once.md.

use std::fmt;

/// Longest key a caller may give, in characters (a Step Functions execution ARN plus state and
/// Map index, or a schedule ARN plus time, stays well below it; DynamoDB allows 2048 bytes).
pub const MAX_KEY_LEN: usize = 512;

/// The namespaces of stored keys, as `(prefix, meaning)`.
const SOURCES: &[&str] = &["request:", "event:", "sqs:", "http:", "schedule:"];

/// Why a key was refused (the caller names the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_KEY_LEN`].
    #[error("is {0} characters long; the limit is {MAX_KEY_LEN}")]
    TooLong(usize),
    /// A character outside visible ASCII (`!` to `~`) at this 0-based position.
    #[error(
        "may only contain visible ASCII characters (`!` to `~`, no spaces); position {0} is not one"
    )]
    Charset(usize),
    /// Not a structured-field string or token (the `Idempotency-Key` header).
    #[error("must be a structured-field string (\"key\") or a bare token")]
    HeaderSyntax,
    /// A stored key without one of the known source prefixes (resolve operation).
    #[error(
        "must start with `request:`, `event:`, `sqs:`, `http:` or `schedule:` (the key as shown in the error or log)"
    )]
    Source,
}

/// A validated key of the idempotency table, with its source prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey(String);

impl RecordKey {
    /// The key of a request's `idempotency_key` field (direct invocations, state machines).
    pub fn request(raw: &str) -> Result<Self, KeyProblem> {
        check(raw)?;
        Ok(Self(format!("request:{raw}")))
    }

    /// The key of an EventBridge event: its `id` (the same for every delivery of one event).
    pub fn event(id: &str) -> Result<Self, KeyProblem> {
        check(id)?;
        Ok(Self(format!("event:{id}")))
    }

    /// The key of a run queue message: its SQS message id (the same in every delivery of one
    /// message).
    pub fn message(id: &str) -> Result<Self, KeyProblem> {
        check(id)?;
        Ok(Self(format!("sqs:{id}")))
    }

    /// The key of an API Gateway request: the decoded `Idempotency-Key` header value.
    pub fn http(value: &str) -> Result<Self, KeyProblem> {
        check(value)?;
        Ok(Self(format!("http:{value}")))
    }

    /// The key of one scheduled run: the schedule's ARN and the time it was due. Not the
    /// scheduler's execution id, which changes on every attempt of the same run.
    pub fn schedule(schedule_arn: &str, scheduled_time: &str) -> Result<Self, KeyProblem> {
        let joined = format!("{schedule_arn}@{scheduled_time}");
        check(schedule_arn)?;
        check(scheduled_time)?;
        check(&joined)?;
        Ok(Self(format!("schedule:{joined}")))
    }

    /// A stored key as shown in errors and logs (the operator's resolve operation).
    pub fn parse(stored: &str) -> Result<Self, KeyProblem> {
        let Some(prefix) = SOURCES.iter().find(|p| stored.starts_with(**p)) else {
            return Err(KeyProblem::Source);
        };
        check(&stored[prefix.len()..])?;
        Ok(Self(stored.to_owned()))
    }

    /// The stored form, prefix included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check(raw: &str) -> Result<(), KeyProblem> {
    if raw.is_empty() {
        return Err(KeyProblem::Empty);
    }
    if let Some(pos) = raw.chars().position(|c| !c.is_ascii_graphic()) {
        return Err(KeyProblem::Charset(pos));
    }
    // All ASCII from here: bytes are characters.
    if raw.len() > MAX_KEY_LEN {
        return Err(KeyProblem::TooLong(raw.len()));
    }
    Ok(())
}

/// Decodes an `Idempotency-Key` header value. The IETF httpapi draft defines it as a
/// structured-field string (`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, RFC 8941 §3.3.3); many
/// clients send the bare value, so a token (RFC 8941 §3.3.4) is accepted too. Parameters
/// (`;a=1`) are not part of the key and are refused rather than silently kept or dropped.
pub fn parse_header(value: &str) -> Result<String, KeyProblem> {
    let value = value.trim_matches(' ');
    let Some(quoted) = value.strip_prefix('"') else {
        let mut chars = value.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '*' || c.is_ascii_digit());
        // RFC 8941 tokens start with ALPHA or "*"; a leading digit is accepted too because
        // bare UUIDs are by far the most common key.
        let rest_ok = chars.all(|c| is_tchar(c) || c == ':' || c == '/');
        return if first_ok && rest_ok {
            Ok(value.to_owned())
        } else if value.is_empty() {
            Err(KeyProblem::Empty)
        } else {
            Err(KeyProblem::HeaderSyntax)
        };
    };
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    loop {
        match chars.next() {
            None => return Err(KeyProblem::HeaderSyntax),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some(c @ ('"' | '\\')) => out.push(c),
                _ => return Err(KeyProblem::HeaderSyntax),
            },
            Some(c) if (' '..='~').contains(&c) => out.push(c),
            Some(_) => return Err(KeyProblem::HeaderSyntax),
        }
    }
    if chars.next().is_some() {
        return Err(KeyProblem::HeaderSyntax);
    }
    Ok(out)
}

/// RFC 9110 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_by_source() {
        assert_eq!(RecordKey::request("k-1").unwrap().as_str(), "request:k-1");
        assert_eq!(RecordKey::event("53dc").unwrap().as_str(), "event:53dc");
        assert_eq!(RecordKey::http("abc").unwrap().as_str(), "http:abc");
        assert_eq!(
            RecordKey::schedule(
                "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly",
                "2026-11-24T00:00:00Z"
            )
            .unwrap()
            .as_str(),
            "schedule:arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly@2026-11-24T00:00:00Z"
        );
        assert_ne!(RecordKey::request("x"), RecordKey::http("x"));
    }

    #[test]
    fn bad_keys_are_refused_with_the_reason() {
        for (raw, problem) in [
            ("", KeyProblem::Empty),
            ("a b", KeyProblem::Charset(1)),
            ("ü", KeyProblem::Charset(0)),
            ("tab\t", KeyProblem::Charset(3)),
        ] {
            assert_eq!(RecordKey::request(raw).unwrap_err(), problem, "{raw:?}");
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            RecordKey::request(&long).unwrap_err(),
            KeyProblem::TooLong(MAX_KEY_LEN + 1)
        );
        assert!(RecordKey::request(&"k".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn stored_keys_parse_only_with_a_known_source() {
        assert_eq!(
            RecordKey::parse("http:abc").unwrap(),
            RecordKey::http("abc").unwrap()
        );
        assert_eq!(RecordKey::parse("abc").unwrap_err(), KeyProblem::Source);
        assert_eq!(RecordKey::parse("event:").unwrap_err(), KeyProblem::Empty);
    }

    #[test]
    fn header_accepts_structured_strings_and_bare_tokens() {
        for (value, key) in [
            (
                "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"",
                "8e03978e-40d5-43e8-bc93-6894a57f9324",
            ),
            (
                "8e03978e-40d5-43e8-bc93-6894a57f9324",
                "8e03978e-40d5-43e8-bc93-6894a57f9324",
            ),
            ("order:42/retry", "order:42/retry"),
            (" \"a\\\"b\\\\c\" ", "a\"b\\c"),
            ("\"with space\"", "with space"),
        ] {
            assert_eq!(parse_header(value).unwrap(), key, "{value}");
        }
        for value in ["\"open", "\"a\"x", "\"bad\\n\"", "a b", "a;p=1", "\"é\""] {
            assert_eq!(
                parse_header(value).unwrap_err(),
                KeyProblem::HeaderSyntax,
                "{value}"
            );
        }
        assert_eq!(parse_header("").unwrap_err(), KeyProblem::Empty);
        // A quoted key with a space decodes, then fails the key charset by position.
        assert_eq!(
            RecordKey::http(&parse_header("\"with space\"").unwrap()).unwrap_err(),
            KeyProblem::Charset(4)
        );
    }
}
