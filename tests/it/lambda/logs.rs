//! The function's logs (captured JSON tracing output): one span per invocation with the
//! documented fields, and never a secret, a caller's Authorization header or input values.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cloudbot_emulator::{FaultKind, FaultRule};
use lambda_runtime::tracing::subscriber;
use serde_json::json;

use super::{Harness, Setup};
use crate::support::moto::{moto, secret_json};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

// current_thread runtime: the thread-local default subscriber sees every span of the handler.
#[tokio::test]
async fn logs_carry_the_invocation_fields_and_no_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let collector = subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(lambda_runtime::tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(collector);

    let h = Harness::start().await;
    let started = h
        .invoke(h.event("apigw-v1-execute.json", None))
        .await
        .unwrap();
    assert_eq!(started["statusCode"], 202);
    // Rotation + refresh-on-401 logs, a malformed-input rejection and an upstream failure.
    h.emulator
        .rotate_token(
            "demo-access-token",
            "rotated-token-5521",
            "rotated-secret-7733",
        )
        .unwrap();
    moto()
        .put_secret(
            &h.secret_id,
            &secret_json("rotated-token-5521", "rotated-secret-7733"),
        )
        .await;
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
        assert!(!logs.contains(secret), "logs contain {secret:?}:\n{logs}");
    }

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
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
        first["bot"]
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
