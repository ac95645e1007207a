//! The function's logs (captured JSON tracing output): one span per invocation with the
//! documented fields, and never a secret, a caller's Authorization header or input values.

use std::time::Duration;

use cloudbot_emulator::{FaultKind, FaultRule};
use cloudbot_trigger::cloudbot::CloudBotError;
use cloudbot_trigger::error::Failure;
use cloudbot_trigger::telemetry;
use cloudbot_trigger::telemetry::CAPPED_TARGETS;
use lambda_runtime::Diagnostic;
use serde_json::json;
use tracing::level_filters::LevelFilter;

use super::{Harness, Setup};
use crate::support::logs::{capture_function_logs, capture_json};

// current_thread runtime: the thread-local default subscriber sees every span of the handler.
#[tokio::test]
async fn logs_carry_the_invocation_fields_and_no_secrets_at_every_level() {
    for level in ["info", "debug", "trace"] {
        logs_carry_the_invocation_fields_and_no_secrets(level).await;
    }
}

/// One scenario (execute, a rotation with its 401 refresh, an invalid request, an upstream
/// failure, a malformed secret) logged through the function's subscriber at `level`.
async fn logs_carry_the_invocation_fields_and_no_secrets(level: &str) {
    let captured = capture_function_logs(level);

    let h = Harness::start().await;
    let started = h
        .invoke(h.event("apigw-v1-execute.json", None))
        .await
        .unwrap();
    assert_eq!(started["statusCode"], 202);
    // Rotation + refresh-on-401 logs, a malformed-input rejection and an upstream failure.
    h.rotate("rotated-token-5521", "rotated-secret-7733").await;
    h.invoke(h.event("apigw-v2-execute.json", None))
        .await
        .unwrap();
    h.invoke(json!({"public_id": "demo", "bot_id": "echo_bot", "inptu": {"message": "secret-ish input 4410"}}))
        .await
        .unwrap_err();
    h.emulator
        .set_faults([FaultRule::new(FaultKind::Status).status(500)])
        .unwrap();
    h.invoke(h.event("sfn-execute.json", None))
        .await
        .unwrap_err();

    let bad = Harness::start_with(Setup {
        secret: json!({"access_token": "malformed-token-8812"}).to_string(),
        ..Setup::default()
    })
    .await;
    bad.invoke(h.event("scheduler-input.json", None))
        .await
        .unwrap_err();

    let logs = captured.text();
    for secret in [
        "demo-access-token",
        "demo-secret-key",
        "rotated-token-5521",
        "rotated-secret-7733",
        "malformed-token-8812",
        "caller-token-that-must-never-be-logged",
        "Hello from API Gateway",
        "secret-ish input 4410",
        "Hello from EventBridge Scheduler",
    ] {
        assert!(
            !logs.contains(secret),
            "logs at {level} contain {secret:?}:\n{logs}"
        );
    }

    let lines = captured.lines();
    let finished: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            let m = l["fields"]["message"].as_str().unwrap_or("");
            m == "invocation succeeded" || m == "invocation failed"
        })
        .collect();
    assert_eq!(
        finished.len(),
        5,
        "one summary line per invocation:\n{logs}"
    );
    let first = finished[0]["span"].clone();
    assert_eq!(first["name"], "invocation");
    assert_eq!(first["trigger"], "apigw-rest");
    assert_eq!(first["operation"], "execute");
    assert!(first["request_id"].as_str().unwrap().starts_with("test-"));
    assert!(first["job_id"].is_string(), "{first}");
    assert_eq!(first["upstream_status"], 201);
    assert!(
        first["bot_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/demo/bots/echo_bot/jobs")
    );
    assert!(finished[0]["fields"]["latency_ms"].is_u64());

    let failed = finished[3];
    assert_eq!(failed["fields"]["error_type"], "CloudBot.OutcomeUnknown");
    assert_eq!(failed["span"]["upstream_status"], 500);
    assert!(
        logs.contains("re-reading the secret once"),
        "the refresh on 401 is logged"
    );
}

#[tokio::test]
async fn a_message_quoted_from_cloud_bot_goes_to_the_caller_but_not_to_the_logs() {
    // Cloud BOT's 400/422 messages may quote the caller's input values, which are never logged.
    let captured = capture_json(LevelFilter::DEBUG);
    for err in [
        CloudBotError::Unprocessable {
            message: Some("input \"name\" value Taro-4711 is invalid".into()),
        },
        CloudBotError::BadRequest {
            message: Some("bad value Taro-4711".into()),
        },
    ] {
        let failure = Failure::CloudBot(err);
        assert!(
            Diagnostic::from(&failure)
                .error_message
                .contains("Taro-4711")
        );
        assert!(failure.to_problem().detail.contains("Taro-4711"));
        telemetry::finish(&Err::<(), _>(failure), Duration::from_millis(5));
    }
    let logs = captured.text();
    assert!(!logs.contains("Taro-4711"), "{logs}");
    let failed: Vec<serde_json::Value> = captured
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "invocation failed")
        .collect();
    assert_eq!(failed.len(), 2, "{logs}");
    assert_eq!(failed[0]["fields"]["error_type"], "CloudBot.Unprocessable");
    assert!(
        failed[0]["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 422"),
        "{logs}"
    );
    assert_eq!(failed[1]["fields"]["error_type"], "CloudBot.BadRequest");
}

/// `lambda_runtime` logs the raw event at TRACE ("raw JSON event received from Lambda"), with an
/// API Gateway caller's `Authorization` header and the BOT input in it. The function's subscriber
/// caps the runtime crates at DEBUG whatever the configured level, so that line is never written,
/// and its field (the payload as UTF-8, which fails for other bytes and used to end the runtime
/// loop) is never computed.
#[test]
fn the_runtime_crates_never_log_the_raw_event_at_any_level() {
    for directives in [
        "trace",
        "lambda_runtime=trace",
        "trace,lambda_runtime=trace",
    ] {
        let captured = capture_function_logs(directives);
        let raw_event = r#"{"headers":{"Authorization":"Bearer caller-token-5150"}}"#;
        for target in CAPPED_TARGETS {
            // The same shape as lambda_runtime's own call site (layers/api_response.rs).
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = raw_event, "raw JSON event received from Lambda");
            tracing::trace!(target: "lambda_runtime_api_client::body", body = raw_event, "{target}");
            tracing::debug!(target: "lambda_runtime::runtime", "debug from the runtime still shows");
        }
        let mut computed = false;
        let not_utf8 = std::hint::black_box(vec![b'{', 0xff, b'}']);
        let mut trace_fn = || -> Result<(), std::str::Utf8Error> {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = {
                computed = true;
                std::str::from_utf8(&not_utf8)?
            }, "raw JSON event received from Lambda");
            Ok(())
        };
        assert!(
            trace_fn().is_ok(),
            "{directives}: the capped field was computed"
        );
        assert!(!computed, "{directives}");
        tracing::trace!(target: "cloudbot_trigger::service", "our own trace still shows");
        let logs = captured.text();
        assert!(!logs.contains("caller-token-5150"), "{directives}: {logs}");
        assert!(!logs.contains("raw JSON event"), "{directives}: {logs}");
        assert!(
            logs.contains("debug from the runtime still shows"),
            "{directives}: {logs}"
        );
        if directives.starts_with("trace") {
            assert!(
                logs.contains("our own trace still shows"),
                "{directives}: {logs}"
            );
        }
    }
}

/// The AWS SDK logs every request and response in full at TRACE (`aws_smithy_runtime`'s
/// "transmitting request" / "received response from service", `aws_sigv4`'s signing lines), so a
/// callback record's DynamoDB item and its task token would be written ~6 times per callback;
/// `reqwest`'s verbose connections log the bytes on the wire, credential headers included. The
/// cap holds these crates at DEBUG whatever `RUST_LOG` asks, a directive naming them included.
/// (The same through the real runtime loop with a real callback: tests/py/test_callbacks.py.)
#[test]
fn the_sdk_and_http_crates_never_log_above_debug_whatever_rust_log_asks() {
    let token = "task-token-AAEAAdsk-3141";
    for directives in [
        "trace",
        "aws_smithy_runtime=trace",
        "trace,aws_smithy_runtime=trace,aws_sdk_dynamodb=trace,aws_sdk_sfn=trace,aws_sigv4=trace,\
         aws_config=trace,hyper=trace,hyper_util=trace,h2=trace,rustls=trace,reqwest=trace,\
         tower=trace",
    ] {
        let captured = capture_function_logs(directives);
        // The shapes of the SDK's own call sites (aws-smithy-runtime orchestrator.rs, sign.rs).
        tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", request = ?json!({"Item": {"task_token": {"S": token}}}), "transmitting request");
        tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", output_or_error = %token);
        tracing::trace!(target: "aws_smithy_runtime::client::orchestrator::http", response = %token, "read HTTP response body");
        tracing::trace!(target: "aws_sigv4::http_request::sign", request = %token, "signing request");
        tracing::trace!(target: "aws_sdk_sfn::operation::send_task_success", token, "x");
        tracing::trace!(target: "aws_config::imds", token, "x");
        tracing::trace!(target: "hyper_util::client::legacy::pool", token, "x");
        tracing::trace!(target: "h2::codec::framed_write", token, "send");
        tracing::trace!(target: "rustls::conn", token, "x");
        tracing::trace!(target: "reqwest::connect::verbose", token, "write");
        tracing::trace!(target: "tower::buffer", token, "x");
        tracing::debug!(target: "aws_smithy_runtime::client::orchestrator::endpoints", "debug from the SDK still shows");
        tracing::trace!(target: "cloudbot_trigger::callback", "our own trace still shows");
        let logs = captured.text();
        assert!(!logs.contains(token), "{directives}: {logs}");
        assert!(
            logs.contains("debug from the SDK still shows"),
            "{directives}: {logs}"
        );
        if directives.starts_with("trace") {
            assert!(
                logs.contains("our own trace still shows"),
                "{directives}: {logs}"
            );
        }
    }
}
