//! The function under test as the sandboxes run it: the environment Lambda would give it (with
//! the stand-ins as its endpoints), its secret (the emulator's demo token pair), the execute
//! events the benchmark and the process-level tests send, and the job id read back from a result.

use bytes::Bytes;
use cloudbot_emulator::{DEMO_ACCESS_TOKEN, DEMO_SECRET_KEY};
use serde_json::Value;

use crate::Error;

/// Secret name [`function_env`] configures; its value is [`demo_secret`].
pub const SECRET_ID: &str = "cloudbot/bench";

/// The environment Lambda would give the function, plus local endpoints and dummy credentials.
pub fn function_env(
    api_base: &str,
    bot_endpoint: &str,
    secrets_url: &str,
) -> Vec<(String, String)> {
    let pairs = [
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            "cloudbot-trigger-bench".to_owned(),
        ),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]bench".to_owned(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/cloudbot-trigger-bench".to_owned(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
        ("AWS_SESSION_TOKEN", "bench".to_owned()),
        // Never fall back to instance metadata: there is none, and probing it costs seconds.
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url.to_owned()),
        ("AWS_ENDPOINT_URL", secrets_url.to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("CLOUDBOT_SECRET_ID", SECRET_ID.to_owned()),
        ("CLOUDBOT_API_BASE", api_base.to_owned()),
        ("CLOUDBOT_DEFAULT_BOT_ENDPOINT", bot_endpoint.to_owned()),
        ("CLOUDBOT_LANGUAGE", "en".to_owned()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The demo token pair as the function's secret value.
pub fn demo_secret() -> String {
    serde_json::json!({
        "access_token": DEMO_ACCESS_TOKEN,
        "secret_key": DEMO_SECRET_KEY,
    })
    .to_string()
}

/// The `n`-th execute event of a run (each with its own input, so jobs are told apart).
pub fn execute_event(bot_endpoint: &str, n: usize) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "operation": "execute",
            "bot_endpoint": bot_endpoint,
            "input": { "message": format!("bench {n}") },
        })
        .to_string(),
    )
}

/// The job id of a successful execute result, or why the answer is not one.
pub fn job_id_of(body: &[u8]) -> Result<String, Error> {
    let v: Value = serde_json::from_slice(body)?;
    if v.get("operation").and_then(Value::as_str) != Some("execute") {
        return Err(Error::msg(format!(
            "not an execute result: {}",
            String::from_utf8_lossy(body)
        )));
    }
    v.get("job_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::msg("execute result without job_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_of_reads_an_execute_result_and_names_what_else_it_got() {
        let ok = br#"{"operation":"execute","job_id":"j-1","job_reference_endpoint":"x"}"#;
        assert_eq!(job_id_of(ok).unwrap(), "j-1");
        let refer = br#"{"operation":"refer_job","job_id":"j-1"}"#;
        let err = job_id_of(refer).unwrap_err().to_string();
        assert!(err.contains("not an execute result"), "{err}");
        for no_job in [
            &br#"{"operation":"execute"}"#[..],
            br#"{"operation":"execute","job_id":""}"#,
        ] {
            let err = job_id_of(no_job).unwrap_err().to_string();
            assert_eq!(err, "execute result without job_id");
        }
        assert!(
            job_id_of(b"not json")
                .unwrap_err()
                .to_string()
                .starts_with("JSON: ")
        );
    }

    #[test]
    fn execute_events_differ_by_their_input_and_name_the_endpoint() {
        let event = |n| serde_json::from_slice::<Value>(&execute_event("http://e/b", n)).unwrap();
        assert_eq!(event(0)["bot_endpoint"], "http://e/b");
        assert_eq!(event(0)["operation"], "execute");
        assert_ne!(event(0)["input"], event(1)["input"]);
    }
}
