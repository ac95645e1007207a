//! The caller's deadline bounds every attempt and every retry wait; connections are reused (the
//! reads' pool and the execute POST's own).

use std::time::{Duration, Instant};

use cloudbot_emulator::{FaultKind, FaultRule};
use cloudbot_trigger::cloudbot::{
    ApiBase, Cause, ClientSettings, CloudBotClient, CloudBotError, ExecuteRequest,
};
use cloudbot_trigger::error::Classified;

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

/// The connection each request of `emu` arrived on, in order.
fn connection_ids(emu: &cloudbot_emulator::Emulator) -> Vec<u64> {
    emu.requests().iter().map(|r| r.connection_id).collect()
}

#[tokio::test]
async fn reads_share_one_connection_and_back_to_back_executes_another() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let public_id = demo();
    client
        .list_bots(&call(&creds, T), &public_id)
        .await
        .unwrap();
    // A burst: the second execute follows the first well inside the execute reuse window.
    let started = execute_demo(&client, &creds, "echo_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap();
    execute_demo(&client, &creds, "echo_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap();
    // A clone shares both pools.
    let clone = client.clone();
    for c in [&client, &clone, &client] {
        c.refer_job(&call(&creds, T), &started.job_reference)
            .await
            .unwrap();
    }
    let stats = emu.stats();
    assert_eq!(stats.requests, 6);
    // The execute POST has its own pool (docs/client.md, "Idle connections and frozen
    // sandboxes"): one connection for the reads, one for the executes.
    assert_eq!(stats.connections_accepted, 2, "{stats:?}");
    let ids = connection_ids(&emu);
    let (reads, executes) = (ids[0], ids[1]);
    assert_ne!(reads, executes);
    assert_eq!(ids, [reads, executes, executes, reads, reads, reads]);
}

#[tokio::test]
async fn an_execute_reuse_window_of_zero_sends_every_execute_on_a_fresh_connection() {
    let emu = emulator().await;
    let client = CloudBotClient::new(ClientSettings {
        base: ApiBase::parse(&emu.base_url()).unwrap(),
        execute_reuse_window: Duration::ZERO,
        ..ClientSettings::default()
    })
    .unwrap();
    let creds = credentials();
    for _ in 0..2 {
        let started = execute_demo(&client, &creds, "echo_bot", &ExecuteRequest::default(), T)
            .await
            .unwrap();
        client
            .refer_job(&call(&creds, T), &started.job_reference)
            .await
            .unwrap();
    }
    let ids = connection_ids(&emu);
    assert_eq!(ids.len(), 4);
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    assert_ne!(ids[0], ids[2], "each execute on its own connection");
    assert_eq!(ids[1], ids[3], "the reads still share theirs");
}
