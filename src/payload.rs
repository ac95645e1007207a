//! The invocation payload as `lambda_runtime` hands it over, and the one JSON parser for
//! everything a caller sends (the payload itself and API Gateway bodies).
//!
//! `lambda_runtime` deserializes the payload into the handler's event type before the handler
//! runs, and reports a failure with its own error type, which is not in our error table. So the
//! handler's event type is [`Payload`], whose deserialization cannot fail: it keeps the payload as
//! raw JSON text (serde_json skips over a raw value iteratively, without a depth limit or number
//! conversion, so this is linear in the payload's size at any depth) or remembers why it is not
//! JSON at all. [`parse`] then builds the JSON value with serde_json's nesting limit kept and
//! turns each failure into an `InvalidRequest` that names the place (the field for a number
//! outside the range of a 64-bit float), never a value.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::request::RequestError;

/// Deepest nesting accepted: serde_json's own recursion limit, which bounds the parser's stack.
pub const MAX_DEPTH: usize = 128;

/// Longest place (path) quoted in an error, in characters: paths are built from the caller's
/// keys.
const MAX_PATH_CHARS: usize = 120;

/// The invocation payload: its JSON text, or why it is not JSON.
#[derive(Debug)]
pub struct Payload(Result<Box<RawValue>, String>);

impl Payload {
    /// The payload as a JSON value, or the `InvalidRequest` it gets.
    pub fn parse(&self) -> Result<Value, RequestError> {
        match &self.0 {
            Ok(raw) => parse(raw.get(), "the event"),
            Err(reason) => Err(RequestError::Malformed(format!(
                "the event is not valid JSON ({reason})"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    /// Never fails (see the module docs). serde_json's syntax errors give a position and a
    /// category, never input text, so the reason is safe to keep.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Payload(
            Box::<RawValue>::deserialize(deserializer).map_err(|e| e.to_string()),
        ))
    }
}

/// Parses `text` (called `what` in errors) as JSON with the nesting limit.
pub fn parse(text: &str, what: &str) -> Result<Value, RequestError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: Value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| rejection(what, &err.path().to_string(), err.inner()))?;
    deserializer
        .end()
        .map_err(|err| rejection(what, ".", &err))?;
    Ok(value)
}

/// The error for a parse failure at `path`. serde_json names these cases only in its message,
/// which is stable and checked by the tests below.
fn rejection(what: &str, path: &str, err: &serde_json::Error) -> RequestError {
    let message = err.to_string();
    let place: String = path.chars().take(MAX_PATH_CHARS).collect();
    if message.starts_with("recursion limit exceeded") {
        RequestError::Malformed(format!(
            "{what} is nested deeper than {MAX_DEPTH} levels (at `{place}`…)"
        ))
    } else if message.starts_with("number out of range") {
        RequestError::field(
            place,
            format!("{what} holds a number outside the range of a 64-bit float"),
        )
    } else {
        // Position only: the text is the caller's data.
        RequestError::Malformed(format!(
            "{what} is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    /// What lambda_runtime does with the bytes it receives.
    fn delivered(bytes: &[u8]) -> Payload {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de).unwrap()
    }

    #[test]
    fn the_payload_type_accepts_any_bytes() {
        for bytes in [
            nested(100_000).as_bytes(),
            br#"{"timeout": 1e400}"#,
            b"{\"a\": \"\xff\xfe\"}",
            b"not json",
            b"",
        ] {
            let payload = delivered(bytes);
            assert!(matches!(
                payload.parse(),
                Err(RequestError::Malformed(_) | RequestError::Field { .. })
            ));
        }
    }

    #[test]
    fn nesting_is_limited_and_the_place_is_named() {
        assert!(parse(&nested(MAX_DEPTH - 1), "x").is_ok());
        let err = parse(&nested(MAX_DEPTH + 1), "the event")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nested deeper than 128 levels"), "{err}");
        let deep = format!(r#"{{"detail": {{"input": {}}}}}"#, nested(200));
        let err = parse(&deep, "the event").unwrap_err().to_string();
        assert!(err.contains("at `detail.input[0][0]"), "{err}");
    }

    #[test]
    fn numbers_outside_f64_name_their_field() {
        let digits = "9".repeat(400);
        for (text, field) in [
            (r#"{"timeout": 1e400}"#.to_owned(), "timeout"),
            (format!(r#"{{"timeout": {digits}}}"#), "timeout"),
            (r#"{"input": {"n": [1, -1e999]}}"#.to_owned(), "input.n[1]"),
        ] {
            match parse(&text, "the event") {
                Err(RequestError::Field { field: f, reason }) => {
                    assert_eq!(f, field);
                    assert!(reason.contains("64-bit float"), "{reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // In range: parsed (and left to the field's own validation).
        assert!(parse(r#"{"timeout": 1e300}"#, "x").is_ok());
    }

    #[test]
    fn other_failures_give_a_position_not_the_text() {
        let err = parse(r#"{"secret-ish": tru}"#, "the request body")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON (line 1"), "{err}");
        assert!(!err.contains("secret-ish"), "{err}");
        let err = parse(r#"{} {}"#, "the request body")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
