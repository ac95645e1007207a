//! Credentials from a real Secrets Manager (moto): caching, TTL, single flight, rotation with
//! refresh-on-401, malformed and unreachable secrets.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Harness, Setup, http_body};
use crate::support::logs::capture_function_logs;
use crate::support::moto::OutageKind;

fn execute() -> serde_json::Value {
    json!({"public_id": "demo", "bot_id": "echo_bot", "input": {"message": "hi"}})
}

#[tokio::test]
async fn rotated_secret_is_refetched_once_after_401_and_the_execute_retried() {
    let h = Harness::start().await;
    h.invoke(execute()).await.expect("first execute");
    assert_eq!(h.secret_reads.get(), 1);

    // Rotate while the sandbox is warm: Cloud BOT now rejects the cached token; the secret has a
    // new version with the new pair.
    h.rotate("rotated-token", "rotated-secret").await;

    let ok = h.invoke(execute()).await.expect("execute after rotation");
    assert_eq!(ok["status"], "executing");
    assert_eq!(
        h.secret_reads.get(),
        2,
        "Secrets Manager read exactly twice"
    );
    let posts: Vec<_> = h
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [Some(201), Some(401), Some(201)]);
    assert_eq!(h.emulator.stats().jobs_created, 2, "one job per invocation");

    // The fresh credentials are cached again.
    h.invoke(execute()).await.unwrap();
    assert_eq!(h.secret_reads.get(), 2);
}

#[tokio::test]
async fn unauthorized_without_a_new_secret_version_is_not_retried() {
    let h = Harness::start().await;
    h.invoke(execute()).await.unwrap();
    h.emulator
        .rotate_token("demo-access-token", "rotated-token", "rotated-secret")
        .unwrap();
    let err = h.invoke(execute()).await.unwrap_err();
    assert_eq!(err.error_type, "CloudBot.Unauthorized");
    assert_eq!(
        h.secret_reads.get(),
        2,
        "re-read once to look for a rotation"
    );
    let rejected = h
        .emulator
        .requests()
        .iter()
        .filter(|r| r.status == Some(401))
        .count();
    assert_eq!(rejected, 1, "same secret: no second attempt");
    assert_eq!(h.emulator.stats().jobs_created, 1);
}

#[tokio::test]
async fn upstream_401_is_a_502_for_api_gateway_callers() {
    let h = Harness::start().await;
    h.emulator
        .rotate_token("demo-access-token", "rotated-token", "rotated-secret")
        .unwrap();
    let response = h
        .invoke(h.event("apigw-v2-list-bots.json", None))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 502);
    let body = http_body(&response);
    assert_eq!(body["error_type"], "CloudBot.Unauthorized");
    assert_eq!(body["retryable"], false);
}

#[tokio::test]
async fn credentials_are_cached_for_the_ttl() {
    let h = Harness::start_with(Setup {
        env: vec![("CLOUDBOT_SECRET_TTL_SECONDS", "1".to_owned())],
        ..Setup::default()
    })
    .await;
    h.invoke(execute()).await.unwrap();
    h.invoke(execute()).await.unwrap();
    assert_eq!(h.secret_reads.get(), 1, "second call served from the cache");
    crate::support::advance_clock(Duration::from_millis(1100)).await;
    h.invoke(execute()).await.unwrap();
    assert_eq!(h.secret_reads.get(), 2, "re-read after the TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invocations_share_one_secret_fetch() {
    let h = Arc::new(Harness::start().await);
    h.invoke_concurrently(12, json!({"operation": "list_bots", "public_id": "demo"}))
        .await;
    assert_eq!(h.secret_reads.get(), 1, "single flight");
}

#[tokio::test]
async fn malformed_secret_names_the_missing_key_and_sends_nothing() {
    let h = Harness::start_with(Setup {
        secret: json!({"access_token": "tok-visible-9731"}).to_string(),
        ..Setup::default()
    })
    .await;
    let err = h.invoke(execute()).await.unwrap_err();
    assert_eq!(err.error_type, "Credentials.Invalid");
    assert!(
        err.error_message.contains("secret_key"),
        "{}",
        err.error_message
    );
    assert!(!err.error_message.contains("tok-visible-9731"));
    assert_eq!(h.upstream_requests(), 0);
}

#[tokio::test]
async fn missing_secret_is_credentials_unavailable() {
    let h = Harness::start_with(Setup {
        env: vec![("CLOUDBOT_SECRET_ID", "no-such-secret".to_owned())],
        ..Setup::default()
    })
    .await;
    let err = h.invoke(execute()).await.unwrap_err();
    assert_eq!(err.error_type, "Credentials.Unavailable");
    assert!(
        err.error_message.contains("ResourceNotFound"),
        "{}",
        err.error_message
    );
    let response = h
        .invoke(h.event("apigw-v1-list-bots.json", None))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 503);
    assert_eq!(http_body(&response)["retryable"], true);
    assert_eq!(h.upstream_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_401s_after_rotation_share_one_refresh() {
    let h = Arc::new(Harness::start().await);
    h.invoke(json!({"operation": "list_bots", "public_id": "demo"}))
        .await
        .unwrap();
    h.rotate("rotated-token", "rotated-secret").await;
    h.invoke_concurrently(8, json!({"operation": "list_bots", "public_id": "demo"}))
        .await;
    assert_eq!(
        h.secret_reads.get(),
        2,
        "one initial read, one shared refresh"
    );
}

/// TTL 0: every invocation asks Secrets Manager first, so an outage is met at once.
fn always_refetch(max_stale: &str) -> Setup {
    Setup {
        env: vec![
            ("CLOUDBOT_SECRET_TTL_SECONDS", "0".to_owned()),
            ("CLOUDBOT_SECRET_MAX_STALE_SECONDS", max_stale.to_owned()),
        ],
        ..Setup::default()
    }
}

// current_thread runtime: the thread-local log capture sees the provider's warning.
#[tokio::test]
async fn cached_credentials_are_served_past_the_ttl_while_secrets_manager_throttles() {
    let captured = capture_function_logs("info");
    let h = Harness::start_with(always_refetch("900")).await;
    h.invoke(execute()).await.expect("first execute");
    h.secret_outage.set(Some(OutageKind::Throttling));
    let reads = h.secret_reads.get();
    for _ in 0..2 {
        let ok = h
            .invoke(execute())
            .await
            .expect("execute with stale credentials");
        assert_eq!(ok["status"], "executing");
    }
    assert!(
        h.secret_reads.get() >= reads + 2,
        "Secrets Manager is asked every time"
    );
    assert_eq!(h.emulator.stats().jobs_created, 3);
    let logs = captured.text();
    assert!(
        logs.contains("using the cached Cloud BOT credentials past their TTL"),
        "{logs}"
    );
    assert!(logs.contains("ThrottlingException"), "{logs}");
    assert!(!logs.contains("demo-secret-key"), "{logs}");

    // Secrets Manager answers again: fresh credentials, no warning needed.
    h.secret_outage.set(None);
    h.invoke(execute()).await.unwrap();
}

#[tokio::test]
async fn stale_credentials_are_not_served_without_a_bound_or_on_a_definite_answer() {
    // No stale time allowed: a throttled Secrets Manager fails the invocation.
    let h = Harness::start_with(always_refetch("0")).await;
    h.invoke(execute()).await.unwrap();
    h.secret_outage.set(Some(OutageKind::Throttling));
    let err = h.invoke(execute()).await.unwrap_err();
    assert_eq!(err.error_type, "Credentials.Unavailable", "{err:?}");
    assert!(err.error_message.contains("ThrottlingException"), "{err:?}");

    // Access denied is an answer, not an outage: never masked by the cache.
    let h = Harness::start_with(always_refetch("900")).await;
    h.invoke(execute()).await.unwrap();
    h.secret_outage.set(Some(OutageKind::AccessDenied));
    let err = h.invoke(execute()).await.unwrap_err();
    assert_eq!(err.error_type, "Credentials.Unavailable", "{err:?}");
    assert!(err.error_message.contains("AccessDenied"), "{err:?}");
    assert_eq!(h.emulator.stats().jobs_created, 1);
}

#[tokio::test]
async fn credentials_cloud_bot_rejected_are_never_served_stale() {
    let h = Harness::start_with(always_refetch("900")).await;
    h.invoke(execute()).await.unwrap();
    // The token is revoked at Cloud BOT while Secrets Manager is throttling.
    h.emulator
        .rotate_token("demo-access-token", "rotated-token", "rotated-secret")
        .unwrap();
    h.secret_outage.set(Some(OutageKind::Throttling));
    for _ in 0..2 {
        let err = h.invoke(execute()).await.unwrap_err();
        assert_eq!(err.error_type, "Credentials.Unavailable", "{err:?}");
    }
    let posts: Vec<_> = h
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    // One 401, then the rejected credentials are not sent again.
    assert_eq!(posts, [Some(201), Some(401)]);
    assert_eq!(h.emulator.stats().jobs_created, 1);
}
