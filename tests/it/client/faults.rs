//! Each emulator fault mode: reads (GET, DELETE) are retried and succeed; the execute POST is
//! never repeated once it may have reached the server (exactly one POST, at most one job), and
//! is retried only when the server provably started nothing (503/429 with Retry-After).

use std::time::{Duration, Instant};

use cloudbot_emulator::{Emulator, FaultKind, FaultRule};
use cloudbot_trigger::cloudbot::{
    CloudBotClient, CloudBotError, ExecuteRequest, Failure, JobEndpoint, JobStatus, PublicId,
    Started,
};

use crate::support::{bot, call, client_for, credentials, emulator, eventually, requests_to};

const T: Duration = Duration::from_secs(10);

async fn start_job(client: &CloudBotClient, bot_id: &str) -> Started {
    client
        .execute(
            &call(&credentials(), T),
            &bot(client, "demo", bot_id),
            &ExecuteRequest::default(),
        )
        .await
        .unwrap()
}

async fn execute(client: &CloudBotClient) -> Result<Started, CloudBotError> {
    client
        .execute(
            &call(&credentials(), T),
            &bot(client, "demo", "echo_bot"),
            &ExecuteRequest::default(),
        )
        .await
}

fn get_rule(fault: FaultKind) -> FaultRule {
    FaultRule::new(fault).method("GET").times(1)
}

fn post_rule(fault: FaultKind) -> FaultRule {
    FaultRule::new(fault)
        .method("POST")
        .path_prefix("/demo/bots/")
        .times(1)
}

fn posts(emu: &Emulator) -> usize {
    requests_to(emu, "POST", "/demo/bots/").len()
}

/// A job started before faults are armed, and its reference endpoint.
async fn with_job(emu: &Emulator) -> (CloudBotClient, JobEndpoint) {
    let client = client_for(&emu.base_url());
    let started = start_job(&client, "echo_bot").await;
    (client, started.job_reference)
}

async fn refer(client: &CloudBotClient, job: &JobEndpoint) -> Result<JobStatus, CloudBotError> {
    client
        .refer_job(&call(&credentials(), T), job)
        .await
        .map(|j| j.status)
}

fn gets(emu: &Emulator) -> usize {
    requests_to(emu, "GET", "/demo/jobs/").len()
}

#[tokio::test]
async fn get_is_retried_after_503_and_succeeds() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::Status).status(503)])
        .unwrap();
    assert!(refer(&client, &job).await.is_ok());
    assert_eq!(gets(&emu), 2);
}

#[tokio::test]
async fn get_is_retried_after_500_502_504() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([
        get_rule(FaultKind::Status).status(500),
        get_rule(FaultKind::Status).status(502),
        get_rule(FaultKind::Status).status(504),
    ])
    .unwrap();
    assert!(refer(&client, &job).await.is_ok());
    assert_eq!(gets(&emu), 4);
}

#[tokio::test]
async fn get_gives_up_after_the_attempt_limit() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([FaultRule::new(FaultKind::Status).status(500).method("GET")])
        .unwrap();
    let err = refer(&client, &job).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::Unavailable {
            cause: Failure::Status(500)
        }
    );
    assert!(err.is_retryable());
    assert_eq!(gets(&emu), 4);
}

#[tokio::test]
async fn get_honours_retry_after_on_429() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::Status).status(429).retry_after(1)])
        .unwrap();
    let t0 = Instant::now();
    assert!(refer(&client, &job).await.is_ok());
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(gets(&emu), 2);
}

#[tokio::test]
async fn get_is_rate_limited_when_retry_after_exceeds_the_deadline() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([FaultRule::new(FaultKind::Status)
        .status(429)
        .retry_after(30)
        .method("GET")])
        .unwrap();
    let t0 = Instant::now();
    let err = client
        .refer_job(&call(&credentials(), Duration::from_secs(3)), &job)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CloudBotError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(gets(&emu), 1);
}

#[tokio::test]
async fn get_is_retried_after_a_reset_before_the_answer() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::ResetBefore)]).unwrap();
    assert!(refer(&client, &job).await.is_ok());
    assert_eq!(gets(&emu), 2);
}

#[tokio::test]
async fn get_is_retried_after_a_reset_after_processing() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::ResetAfter)]).unwrap();
    assert!(refer(&client, &job).await.is_ok());
    assert_eq!(gets(&emu), 2);
}

#[tokio::test]
async fn get_is_retried_after_a_truncated_body() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::TruncatedBody)])
        .unwrap();
    assert!(refer(&client, &job).await.is_ok());
    assert_eq!(gets(&emu), 2);
}

#[tokio::test]
async fn get_with_latency_within_the_timeout_succeeds_once() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::Latency).latency_ms(300)])
        .unwrap();
    let t0 = Instant::now();
    assert!(refer(&client, &job).await.is_ok());
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(gets(&emu), 1);
}

#[tokio::test]
async fn malformed_json_on_a_read_is_an_invalid_response_not_retried() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::MalformedJson)])
        .unwrap();
    let err = refer(&client, &job).await.unwrap_err();
    assert!(
        matches!(err, CloudBotError::InvalidResponse { status: 200, .. }),
        "{err:?}"
    );
    assert_eq!(err.name(), "InvalidResponse");
    assert_eq!(gets(&emu), 1);
}

#[tokio::test]
async fn oversized_body_on_a_read_is_capped_and_invalid() {
    let emu = emulator().await;
    let (client, job) = with_job(&emu).await;
    emu.set_faults([get_rule(FaultKind::OversizedBody)])
        .unwrap();
    let err = refer(&client, &job).await.unwrap_err();
    assert!(
        matches!(err, CloudBotError::InvalidResponse { .. }),
        "{err:?}"
    );
    assert_eq!(gets(&emu), 1);
}

#[tokio::test]
async fn list_bots_is_retried_after_502() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([get_rule(FaultKind::Status).status(502)])
        .unwrap();
    let public_id = PublicId::parse("demo", "public_id").unwrap();
    let bots = client
        .list_bots(&call(&credentials(), T), &public_id)
        .await
        .unwrap();
    assert!(!bots.is_empty());
    assert_eq!(requests_to(&emu, "GET", "/demo/bots").len(), 2);
}

#[tokio::test]
async fn suspend_is_retried_like_a_read() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let started = start_job(&client, "slow_bot").await;
    emu.set_faults([FaultRule::new(FaultKind::Status)
        .status(503)
        .method("DELETE")
        .times(1)])
        .unwrap();
    let job = client
        .suspend_job(&call(&credentials(), T), &started.job_reference)
        .await
        .unwrap();
    assert_eq!(job.job_id, started.job.job_id);
    assert_eq!(requests_to(&emu, "DELETE", "/demo/jobs/").len(), 2);
}

/// Checks that the emulator received exactly `n` API requests in all (counted on arrival: a
/// request the client gave up on is not in the request log, whose entries are written with
/// the answer).
pub(super) async fn requests_settle(emu: &Emulator, n: u64) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(emu.stats().requests, n);
}

/// Waits until the emulator has created `n` jobs (a fault may answer before the job is stored).
async fn jobs_settle(emu: &Emulator, n: usize) {
    let settled = eventually(Duration::from_secs(3), || {
        (emu.jobs().len() == n).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "expected {n} jobs, have {}",
        emu.jobs().len()
    );
    // And no more appear.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emu.jobs().len(), n);
}

#[tokio::test]
async fn execute_is_not_retried_after_a_reset_after_the_job_was_created() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::ResetAfter)]).unwrap();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Failure::Transport
        }
    );
    assert!(!err.is_retryable());
    assert_eq!(posts(&emu), 1);
    jobs_settle(&emu, 1).await;
}

#[tokio::test]
async fn execute_is_not_retried_after_a_reset_before_the_answer() {
    // From the client's side a reset before any answer is indistinguishable from one after the
    // job was created: only connect errors prove nothing was sent.
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::ResetBefore)]).unwrap();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Failure::Transport
        }
    );
    assert_eq!(posts(&emu), 1);
    jobs_settle(&emu, 0).await;
}

#[tokio::test]
async fn execute_is_not_retried_after_500() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::Status).status(500)])
        .unwrap();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Failure::Status(500)
        }
    );
    assert_eq!(err.upstream_status(), Some(500));
    assert_eq!(posts(&emu), 1);
}

#[tokio::test]
async fn execute_is_not_retried_after_503_without_retry_after() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::Status).status(503)])
        .unwrap();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Failure::Status(503)
        }
    );
    assert_eq!(posts(&emu), 1);
}

#[tokio::test]
async fn execute_is_not_retried_after_a_timeout() {
    let emu = emulator().await;
    let client = crate::support::client_with_timeout(&emu.base_url(), Duration::from_millis(500));
    emu.set_faults([post_rule(FaultKind::Latency).latency_ms(2_000)])
        .unwrap();
    let t0 = Instant::now();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Failure::Timeout
        }
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    requests_settle(&emu, 1).await;
    // The job exists although the caller never heard about it.
    jobs_settle(&emu, 1).await;
}

#[tokio::test]
async fn execute_is_not_retried_after_a_truncated_body() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::TruncatedBody)])
        .unwrap();
    let err = execute(&client).await.unwrap_err();
    // Depending on when the close reaches the client, the cut shows up while reading the head
    // (Transport) or the body (Body): a job may exist either way.
    assert!(
        matches!(
            err,
            CloudBotError::OutcomeUnknown {
                cause: Failure::Body | Failure::Transport
            }
        ),
        "{err:?}"
    );
    assert_eq!(posts(&emu), 1);
    jobs_settle(&emu, 1).await;
}

#[tokio::test]
async fn execute_with_malformed_json_answer_is_outcome_unknown() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::MalformedJson)])
        .unwrap();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Failure::Body
        }
    );
    assert_eq!(posts(&emu), 1);
    jobs_settle(&emu, 1).await;
}

#[tokio::test]
async fn execute_with_oversized_answer_is_capped_and_outcome_unknown() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::OversizedBody)])
        .unwrap();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::OutcomeUnknown {
            cause: Failure::Body
        }
    );
    assert_eq!(posts(&emu), 1);
    jobs_settle(&emu, 1).await;
}

#[tokio::test]
async fn execute_is_retried_after_503_with_retry_after() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::Status).status(503).retry_after(1)])
        .unwrap();
    let t0 = Instant::now();
    let started = execute(&client).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(900));
    assert_eq!(posts(&emu), 2);
    jobs_settle(&emu, 1).await;
    assert_eq!(emu.jobs()[0].job_id, started.job.job_id);
}

#[tokio::test]
async fn execute_is_retried_after_429_with_retry_after() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::Status).status(429).retry_after(1)])
        .unwrap();
    assert!(execute(&client).await.is_ok());
    assert_eq!(posts(&emu), 2);
    jobs_settle(&emu, 1).await;
}

#[tokio::test]
async fn execute_503_with_retry_after_beyond_the_deadline_is_unavailable() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([post_rule(FaultKind::Status).status(503).retry_after(30)])
        .unwrap();
    let err = client
        .execute(
            &call(&credentials(), Duration::from_secs(3)),
            &bot(&client, "demo", "echo_bot"),
            &ExecuteRequest::default(),
        )
        .await
        .unwrap_err();
    // The server refused before starting anything: safe for the caller to retry later.
    assert_eq!(
        err,
        CloudBotError::Unavailable {
            cause: Failure::Status(503)
        }
    );
    assert!(err.is_retryable());
    assert_eq!(posts(&emu), 1);
    jobs_settle(&emu, 0).await;
}

#[tokio::test]
async fn execute_to_a_closed_port_is_unavailable_without_a_job() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client_for(&base);
    let t0 = Instant::now();
    let err = execute(&client).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::Unavailable {
            cause: Failure::Connect
        }
    );
    assert!(err.is_retryable());
    assert!(t0.elapsed() < Duration::from_secs(5));
}
