//! The client's debug events: method, path template, status, attempt and latency; never
//! headers, credentials, input values or response bodies.

use std::time::Duration;

use cloudbot_emulator::{FaultKind, FaultRule};
use cloudbot_trigger::cloudbot::CloudBotError;
use cloudbot_trigger::error::Classified;
use serde_json::Value;
use tracing::level_filters::LevelFilter;

use crate::support::logs::capture_json;
use crate::support::{
    ACCESS_TOKEN, SECRET_KEY, bot, call, client_for, credentials, emulator, message, unprocessable,
};

// current_thread runtime: the thread-local subscriber also sees the connection tasks.
#[tokio::test]
async fn debug_events_describe_calls_without_secrets_inputs_or_bodies() {
    let captured = capture_json(LevelFilter::TRACE);
    let emu = emulator().await;

    let client = client_for(&emu.base_url());
    let creds = credentials();
    let ctx = call(&creds, Duration::from_secs(10));
    let echo_bot = bot(&client, "demo", "echo_bot");
    let started = client
        .execute(&ctx, &echo_bot, &message("input-value-4711"))
        .await
        .unwrap();
    emu.set_faults([FaultRule::new(FaultKind::Status)
        .status(503)
        .method("GET")
        .times(1)])
        .unwrap();
    client
        .refer_job(&ctx, &started.job_reference)
        .await
        .unwrap();
    let err = client
        .execute(&ctx, &echo_bot, &unprocessable())
        .await
        .unwrap_err();
    assert_eq!(err.kind().name, "CloudBot.Unprocessable");
    assert!(matches!(err, CloudBotError::Unprocessable { .. }));

    let text = captured.text();
    let events: Vec<Value> = captured
        .lines()
        .into_iter()
        .filter(|e: &Value| {
            e["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("cloudbot_trigger"))
        })
        .collect();
    let fields: Vec<&Value> = events.iter().map(|e| &e["fields"]).collect();
    // execute 201, GET 503 (attempt 1) then 200 (attempt 2), execute 422.
    let seen: Vec<(String, String, u64, u64)> = fields
        .iter()
        .filter(|f| f["attempt"].is_u64())
        .map(|f| {
            (
                f["method"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
                f["status"].as_u64().unwrap(),
                f["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("POST", "/{public_id}/bots/{bot_id}/jobs", 201, 1),
        ("GET", "/{public_id}/jobs/{job_id}", 503, 1),
        ("GET", "/{public_id}/jobs/{job_id}", 200, 2),
        ("POST", "/{public_id}/bots/{bot_id}/jobs", 422, 1),
    ];
    let expected: Vec<(String, String, u64, u64)> = expected
        .iter()
        .map(|(m, p, s, a)| (m.to_string(), p.to_string(), *s, *a))
        .collect();
    assert_eq!(seen, expected, "{text}");
    assert!(
        fields
            .iter()
            .filter(|f| f["attempt"].is_u64())
            .all(|f| f["latency_ms"].is_u64())
    );
    for secret in [
        ACCESS_TOKEN,
        SECRET_KEY,
        "input-value-4711",
        "callback_tries must be",
        "access-token",
        "secret-key",
    ] {
        assert!(!text.contains(secret), "{secret} in logs: {text}");
    }
}
