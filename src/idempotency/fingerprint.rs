//! The fingerprint of an execute request: a SHA-256 over what would be sent to Cloud BOT (BOT
//! endpoint, input, callback endpoint and tries, requested timeout), so that a key reused for a
//! different request is refused (`Idempotency.KeyReused`) instead of replaying the wrong answer.
//!
//! Object keys are written in sorted order, so the same input gives the same fingerprint
//! whatever order its fields arrived in. The requested `timeout` counts, not the one actually
//! sent (that is shortened to fit each invocation's remaining time and differs between retries).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cloudbot::{BotEndpoint, ExecuteRequest};

/// Version tag hashed first: a change of what is hashed must not match old records.
const VERSION: &[u8] = b"cloudbot-trigger/execute/v1\n";

/// Hex SHA-256 of an execute request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of executing `body` on `bot`.
    pub fn of_execute(bot: &BotEndpoint, body: &ExecuteRequest) -> Self {
        let mut canonical = Vec::with_capacity(256);
        canonical.extend_from_slice(VERSION);
        canonical.push(b'[');
        write_str(&mut canonical, bot.url());
        canonical.push(b',');
        match &body.input {
            Some(input) => write_object(&mut canonical, input),
            None => canonical.extend_from_slice(b"null"),
        }
        canonical.push(b',');
        match &body.callback_endpoint {
            Some(url) => write_str(&mut canonical, url),
            None => canonical.extend_from_slice(b"null"),
        }
        canonical.push(b',');
        write_opt_number(&mut canonical, body.callback_tries.map(u64::from));
        canonical.push(b',');
        write_opt_number(&mut canonical, body.timeout_ms);
        canonical.push(b']');
        let digest = Sha256::digest(&canonical);
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A fingerprint read back from the store.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn write_opt_number(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail; an empty string would only weaken the hash.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_object(out: &mut Vec<u8>, map: &serde_json::Map<String, Value>) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push(b'{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        if let Some(value) = map.get(key) {
            write_value(out, value);
        }
    }
    out.push(b'}');
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => write_object(out, map),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudbot::ApiBase;
    use serde_json::json;

    fn bot(id: &str) -> BotEndpoint {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        BotEndpoint::parse(
            &base,
            &format!("https://api.c-bot.pro/demo/bots/{id}/jobs"),
            "b",
        )
        .unwrap()
    }

    fn body(input: Value) -> ExecuteRequest {
        ExecuteRequest {
            input: input.as_object().cloned(),
            ..ExecuteRequest::default()
        }
    }

    #[test]
    fn field_order_does_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{"a":1,"b":{"y":[1,{"q":1,"p":2}],"x":"s"}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"b":{"x":"s","y":[1,{"p":2,"q":1}]},"a":1}"#).unwrap();
        assert_eq!(
            Fingerprint::of_execute(&bot("echo"), &body(a)),
            Fingerprint::of_execute(&bot("echo"), &body(b))
        );
    }

    #[test]
    fn everything_sent_counts() {
        let base = body(json!({"message": "hi"}));
        let fp = |bot_id: &str, b: &ExecuteRequest| Fingerprint::of_execute(&bot(bot_id), b);
        let reference = fp("echo", &base);
        assert_eq!(reference.as_str().len(), 64);
        let variants = [
            fp("other", &base),
            fp("echo", &body(json!({"message": "ho"}))),
            fp("echo", &ExecuteRequest::default()),
            fp(
                "echo",
                &ExecuteRequest {
                    callback_endpoint: Some("https://cb.example/h".into()),
                    callback_tries: Some(3),
                    ..base.clone()
                },
            ),
            fp(
                "echo",
                &ExecuteRequest {
                    timeout_ms: Some(0),
                    ..base.clone()
                },
            ),
        ];
        for v in variants {
            assert_ne!(v, reference);
        }
        // An empty input object is sent as `"input": {}`, which is not the same as no input.
        assert_ne!(
            fp("echo", &body(json!({}))),
            fp("echo", &ExecuteRequest::default())
        );
    }
}
