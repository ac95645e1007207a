//! The caller's deadline bounds every attempt and every retry wait; connections are reused.

use std::time::{Duration, Instant};

use cloudbot_emulator::{FaultKind, FaultRule};
use cloudbot_trigger::cloudbot::{Cause, CloudBotError, ExecuteRequest};

use crate::support::{
    call, client_for, client_with_timeout, credentials, demo, emulator, execute_demo, execute_echo,
};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn get_with_latency_and_a_short_deadline_returns_promptly() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_latency(Duration::from_secs(5));
    let public_id = demo();
    let t0 = Instant::now();
    let err = client
        .list_bots(
            &call(&credentials(), Duration::from_millis(800)),
            &public_id,
        )
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(
            err,
            CloudBotError::Unavailable {
                cause: Cause::Timeout,
                retry_after: None,
            } | CloudBotError::DeadlineExceeded
        ),
        "{err:?}"
    );
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[tokio::test]
async fn a_deadline_already_passed_sends_nothing() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let err = execute_echo(&client, Duration::ZERO).await.unwrap_err();
    assert_eq!(err, CloudBotError::DeadlineExceeded);
    assert_eq!(err.kind().name, "Function.DeadlineExceeded");
    assert_eq!(emu.stats().requests, 0);
}

#[tokio::test]
async fn execute_attempt_is_cut_at_the_deadline() {
    let emu = emulator().await;
    // Request timeout far beyond the deadline: the deadline must win.
    let client = client_with_timeout(&emu.base_url(), Duration::from_secs(30));
    emu.set_faults([FaultRule::new(FaultKind::Latency)
        .latency_ms(2_500)
        .method("POST")])
        .unwrap();
    let t0 = Instant::now();
    let err = execute_echo(&client, Duration::from_millis(800))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Cause::Timeout
        }
    );
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    // Exactly one request (the POST), no retry.
    super::faults::requests_settle(&emu, 1).await;
}

#[tokio::test]
async fn retries_stop_before_the_deadline() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    // Every GET fails, with a latency that leaves room for only a few attempts.
    emu.set_faults([FaultRule::new(FaultKind::Status).status(503).method("GET")])
        .unwrap();
    emu.set_latency(Duration::from_millis(300));
    let public_id = demo();
    let t0 = Instant::now();
    let err = client
        .list_bots(
            &call(&credentials(), Duration::from_millis(700)),
            &public_id,
        )
        .await
        .unwrap_err();
    assert!(err.kind().retryable, "{err:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn one_connection_is_reused_across_calls() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let public_id = demo();
    client
        .list_bots(&call(&creds, T), &public_id)
        .await
        .unwrap();
    let started = execute_demo(&client, &creds, "echo_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap();
    // A clone shares the pool.
    let clone = client.clone();
    for c in [&client, &clone, &client] {
        c.refer_job(&call(&creds, T), &started.job_reference)
            .await
            .unwrap();
    }
    let stats = emu.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    let conns: std::collections::HashSet<u64> =
        emu.requests().iter().map(|r| r.connection_id).collect();
    assert_eq!(conns.len(), 1);
}
