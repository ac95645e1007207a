//! The secret fetched during init (`Service::prefetch`, what `main` runs before the first poll):
//! a fetch that succeeds serves the first invocation from the cache; one that fails or does not
//! finish within `CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS` is logged without any secret and leaves
//! the fetch to the first invocation, as before.

use std::time::{Duration, Instant};

use cloudbot_testkit::secrets::SecretsEndpoint;
use serde_json::json;

use super::{Harness, Setup};
use crate::support::logs::capture_function_logs;
use crate::support::moto::{OutageKind, secret_json};

fn execute() -> serde_json::Value {
    json!({"public_id": "demo", "bot_id": "echo_bot", "input": {"message": "hi"}})
}

#[tokio::test]
async fn a_prefetched_secret_serves_the_first_invocation_without_a_call() {
    let captured = capture_function_logs("info");
    let h = Harness::start().await;
    h.service.prefetch().await;
    assert_eq!(h.secret_reads.get(), 1, "fetched during init");
    let ok = h.invoke(execute()).await.expect("first execute");
    assert_eq!(ok["status"], "executing");
    assert_eq!(
        h.secret_reads.get(),
        1,
        "the first invocation made no Secrets Manager call"
    );
    let logs = captured.text();
    assert!(
        logs.contains("Cloud BOT credentials fetched during init"),
        "{logs}"
    );
    assert!(!logs.contains("demo-secret-key"), "{logs}");
}

#[tokio::test]
async fn the_ttl_of_a_prefetched_secret_counts_from_the_prefetch() {
    let h = Harness::start_with(Setup {
        env: vec![("CLOUDBOT_SECRET_TTL_SECONDS", "1".to_owned())],
        ..Setup::default()
    })
    .await;
    h.service.prefetch().await;
    h.invoke(execute()).await.unwrap();
    assert_eq!(h.secret_reads.get(), 1);
    // The TTL is a clock, not an event: move the clock past it.
    crate::support::advance_clock(Duration::from_millis(1100)).await;
    h.invoke(execute()).await.unwrap();
    assert_eq!(
        h.secret_reads.get(),
        2,
        "re-read one TTL after the prefetch"
    );
}

#[tokio::test]
async fn a_failed_prefetch_is_logged_and_the_first_invocation_fetches() {
    let captured = capture_function_logs("info");
    let h = Harness::start().await;
    h.secret_outage.set(Some(OutageKind::AccessDenied));
    h.service.prefetch().await;
    assert_eq!(h.secret_reads.get(), 1);
    let logs = captured.text();
    assert!(
        logs.contains("could not fetch the Cloud BOT credentials during init")
            && logs.contains("AccessDenied")
            && logs.contains("\"WARN\""),
        "{logs}"
    );
    h.secret_outage.set(None);
    let ok = h.invoke(execute()).await.expect("first execute");
    assert_eq!(ok["status"], "executing");
    assert_eq!(h.secret_reads.get(), 2, "the first invocation fetched");
    assert!(!captured.text().contains("demo-secret-key"));
}

#[tokio::test]
async fn a_slow_secrets_manager_ends_the_prefetch_at_its_bound_and_the_first_invocation_fetches() {
    const SECRET_ID: &str = "cloudbot/prefetch-slow";
    let captured = capture_function_logs("info");
    let secrets = SecretsEndpoint::start(
        SECRET_ID,
        &secret_json("demo-access-token", "demo-secret-key"),
    )
    .await
    .unwrap();
    // Far longer than the bound: only the bound can end the wait.
    secrets.set_delay(Duration::from_secs(30));
    let bound = Duration::from_millis(200);
    let h = Harness::start_with(Setup {
        env: vec![
            ("CLOUDBOT_SECRET_ID", SECRET_ID.to_owned()),
            (
                "CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS",
                bound.as_millis().to_string(),
            ),
        ],
        secrets_endpoint: Some(secrets.url()),
        ..Setup::default()
    })
    .await;
    let started = Instant::now();
    h.service.prefetch().await;
    let waited = started.elapsed();
    assert!(
        waited >= bound && waited < bound + Duration::from_secs(2),
        "init waited {waited:?} for a bound of {bound:?}"
    );
    let logs = captured.text();
    assert!(
        logs.contains("Secrets Manager did not answer during init") && logs.contains("\"WARN\""),
        "{logs}"
    );

    secrets.set_delay(Duration::ZERO);
    let before = secrets.get_secret_value_calls();
    let ok = h.invoke(execute()).await.expect("first execute");
    assert_eq!(ok["status"], "executing");
    assert_eq!(
        secrets.get_secret_value_calls(),
        before + 1,
        "the first invocation fetched"
    );
    assert!(!captured.text().contains("demo-secret-key"));
}

#[tokio::test]
async fn no_prefetch_with_a_bound_of_zero_or_a_ttl_of_zero() {
    for (var, value) in [
        ("CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS", "0"),
        ("CLOUDBOT_SECRET_TTL_SECONDS", "0"),
    ] {
        let h = Harness::start_with(Setup {
            env: vec![(var, value.to_owned())],
            ..Setup::default()
        })
        .await;
        h.service.prefetch().await;
        assert_eq!(h.secret_reads.get(), 0, "{var}={value}");
        h.invoke(execute()).await.unwrap();
        assert_eq!(h.secret_reads.get(), 1, "{var}={value}");
    }
}
