//! The callback route's answers to what is not a well-formed callback: a callback id never comes
//! back in an answer or a log line (any method, any level), and a malformed id is
//! `Callback.NotFound` (docs/contract.md, docs/errors.md), with nothing sent upstream. (The
//! harness wires no callback records; tests/py/test_callbacks.py sends malformed ids to the real
//! callback stack.)

use cloudbot_trigger::callback::CallbackId;
use serde_json::{Value, json};

use super::{Harness, http_body};
use crate::support::logs::capture_function_logs;

/// `event` (an API Gateway sample of either version) sent as `method path` to the callback API.
fn at(mut event: Value, method: &str, path: &str) -> Value {
    event["routeKey"] = json!("ANY /{proxy+}");
    event["pathParameters"] = json!({"proxy": path.trim_start_matches('/')});
    if event["version"] == "2.0" {
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(path);
    } else {
        event["httpMethod"] = json!(method);
        event["path"] = json!(path);
        event["resource"] = json!("/{proxy+}");
    }
    event["body"] = Value::Null;
    event["isBase64Encoded"] = json!(false);
    event
}

// current_thread runtime: the thread-local capture sees every event of the handler.
#[tokio::test]
async fn a_callback_id_in_a_path_is_never_repeated_in_an_answer_or_a_log_at_any_level() {
    for level in ["info", "debug", "trace"] {
        let captured = capture_function_logs(level);
        let h = Harness::start().await;
        let id = CallbackId::generate().unwrap();
        let id = id.expose();
        let samples = [
            h.event("apigw-v1-execute.json", None),
            h.event("apigw-v2-execute.json", None),
        ];
        let mut answered = 0;
        for sample in &samples {
            for method in ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
                for path in [
                    format!("/callbacks/{id}"),
                    format!("/prod/callbacks/{id}"),
                    format!("/callbacks/{id}/again"),
                ] {
                    let case = format!("{level} {method} {path} ({})", sample["version"]);
                    let response = h.invoke(at(sample.clone(), method, &path)).await.unwrap();
                    assert_eq!(response["statusCode"], 404, "{case}: {response}");
                    assert!(!response.to_string().contains(id), "{case}: {response}");
                    let problem = http_body(&response);
                    assert_eq!(problem["error_type"], "InvalidRequest", "{case}");
                    assert_eq!(
                        problem["detail"],
                        format!("no route for {method} on this path"),
                        "{case}"
                    );
                    answered += 1;
                }
            }
        }
        assert_eq!(answered, 36);
        let logs = captured.text();
        assert!(logs.contains("no route for GET"), "{level}: {logs}");
        assert!(
            !logs.contains(id),
            "logs at {level} contain the callback id:\n{logs}"
        );
        assert_eq!(h.upstream_requests(), 0, "{level}");
    }
}

#[tokio::test]
async fn a_malformed_callback_id_is_callback_not_found_and_reaches_nothing() {
    let h = Harness::start().await;
    let well_formed = CallbackId::generate().unwrap();
    let long = format!("{}x", well_formed.expose());
    let mut foreign = well_formed.expose().to_owned();
    foreign.replace_range(0..1, "+");
    let samples = [
        h.event("apigw-v1-execute.json", None),
        h.event("apigw-v2-execute.json", None),
    ];
    for sample in &samples {
        for id in ["short", long.as_str(), foreign.as_str(), "%2e%2e"] {
            let case = format!("{id} ({})", sample["version"]);
            let mut event = at(sample.clone(), "POST", &format!("/callbacks/{id}"));
            event["body"] = json!(r#"{"job_id": "x", "status": 0}"#);
            let response = h.invoke(event).await.unwrap();
            assert_eq!(response["statusCode"], 404, "{case}: {response}");
            let problem = http_body(&response);
            assert_eq!(problem["error_type"], "Callback.NotFound", "{case}");
            assert_eq!(
                problem["type"],
                "urn:cloudbot-trigger:error:Callback.NotFound"
            );
            assert_eq!(problem["retryable"], false, "{case}");
        }
    }
    assert_eq!(h.upstream_requests(), 0, "nothing reached Cloud BOT");
    assert_eq!(h.secret_reads.get(), 0, "nothing read from Secrets Manager");
}
