//! Every operation and every documented status, against the emulator.

use std::time::Duration;

use cloudbot_trigger::cloudbot::{
    BotEndpoint, CloudBotClient, CloudBotError, Credentials, ExecuteRequest, Job, JobEndpoint,
    JobStatus, MAX_REQUEST_BODY, PublicId,
};
use cloudbot_trigger::error::Classified;
use serde_json::Value;

use crate::support::{
    ACCESS_TOKEN, call, client_for, credentials, demo, emulator, eventually, execute_demo, job,
    message, refer_credentials, requests_to, unprocessable,
};

const T: Duration = Duration::from_secs(10);

/// Refer until the job is final (bounded).
async fn wait_final(client: &CloudBotClient, creds: &Credentials, job: &JobEndpoint) -> Job {
    for _ in 0..100 {
        let j = client.refer_job(&call(creds, T), job).await.unwrap();
        if j.status.is_final() {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job did not finish");
}

#[tokio::test]
async fn list_bots_gives_each_bot_its_execution_endpoint() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let public_id = demo();
    let bots = client
        .list_bots(&call(&credentials(), T), &public_id)
        .await
        .unwrap();
    let ids: Vec<&str> = bots.iter().map(|(b, _)| b.id.as_str()).collect();
    for expected in ["echo_bot", "error_bot", "slow_bot"] {
        assert!(ids.contains(&expected), "{ids:?}");
    }
    for (b, endpoint) in &bots {
        let endpoint = endpoint.as_ref().unwrap();
        assert_eq!(
            endpoint.url(),
            format!("{}/demo/bots/{}/jobs", emu.base_url(), b.id)
        );
        // The listed endpoint is exactly what the execute path accepts back.
        let parsed = BotEndpoint::parse(client.base(), endpoint.url(), "bot_endpoint").unwrap();
        assert_eq!(&parsed, endpoint);
        assert!(b.name.is_some());
    }
}

#[tokio::test]
async fn execute_starts_a_job_and_builds_its_reference_endpoint() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let started = execute_demo(&client, &credentials(), "echo_bot", &message("hello"), T)
        .await
        .unwrap();
    assert_eq!(started.http_status, 201);
    assert_eq!(started.job.status, JobStatus::Executing);
    assert_eq!(started.job.bot_id, "echo_bot");
    assert_eq!(
        started.job_reference.url(),
        format!("{}/demo/jobs/{}", emu.base_url(), started.job.job_id)
    );
    assert_eq!(started.job_reference.job_id().as_str(), started.job.job_id);
    let jobs = emu.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, started.job.job_id);
}

#[tokio::test]
async fn refer_job_follows_a_job_to_success_with_raw_output() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let started = execute_demo(&client, &creds, "echo_bot", &message("hello"), T)
        .await
        .unwrap();
    let done = wait_final(&client, &creds, &started.job_reference).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.job_id, started.job.job_id);
    let output: Value = serde_json::from_str(done.output.as_ref().unwrap().get()).unwrap();
    assert!(output.is_object(), "{output}");
    // The raw output is what the emulator recorded, value for value.
    let recorded = emu.job(&done.job_id).unwrap().output.unwrap();
    assert_eq!(output, recorded);
}

#[tokio::test]
async fn error_bot_ends_in_error_with_a_message() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let started = execute_demo(&client, &creds, "error_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap();
    let done = wait_final(&client, &creds, &started.job_reference).await;
    assert_eq!(done.status, JobStatus::Error);
    assert!(done.message.is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn execute_with_timeout_returns_the_finished_job() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let started = execute_demo(
        &client,
        &credentials(),
        "echo_bot",
        &ExecuteRequest {
            timeout_ms: Some(5_000),
            ..ExecuteRequest::default()
        },
        T,
    )
    .await
    .unwrap();
    assert_eq!(started.http_status, 200);
    assert_eq!(started.job.status, JobStatus::Succeeded);
    assert!(started.job.output.is_some());
}

#[tokio::test]
async fn suspend_job_ends_a_running_job() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let started = execute_demo(&client, &creds, "slow_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap();
    let suspended = client
        .suspend_job(&call(&creds, T), &started.job_reference)
        .await
        .unwrap();
    assert_eq!(suspended.job_id, started.job.job_id);
    assert!(emu.job(&started.job.job_id).unwrap().suspended);
    let after = client
        .refer_job(&call(&creds, T), &started.job_reference)
        .await
        .unwrap();
    assert!(after.status.is_final(), "{:?}", after.status);
    assert_eq!(requests_to(&emu, "DELETE", "/demo/jobs/").len(), 1);
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let wrong = Credentials::new(ACCESS_TOKEN.to_owned(), "not-the-secret".to_owned());
    let public_id = demo();
    let err = client
        .list_bots(&call(&wrong, T), &public_id)
        .await
        .unwrap_err();
    assert_eq!(err, CloudBotError::Unauthorized);
    assert_eq!(err.upstream_status(), Some(401));
    let err = execute_demo(&client, &wrong, "echo_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap_err();
    assert_eq!(err, CloudBotError::Unauthorized);
    assert_eq!(emu.stats().jobs_created, 0);
    // Not retried: a 401 does not get better by asking again.
    assert_eq!(emu.stats().requests, 2);
}

#[tokio::test]
async fn rotated_token_is_unauthorized() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.rotate_token(ACCESS_TOKEN, "new-token", "new-secret")
        .unwrap();
    let public_id = demo();
    let err = client
        .list_bots(&call(&credentials(), T), &public_id)
        .await
        .unwrap_err();
    assert_eq!(err, CloudBotError::Unauthorized);
    let fresh = Credentials::new("new-token".into(), "new-secret".into());
    assert!(client.list_bots(&call(&fresh, T), &public_id).await.is_ok());
}

#[tokio::test]
async fn refer_only_token_cannot_execute_or_suspend() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let refer = refer_credentials();
    let err = execute_demo(&client, &refer, "echo_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap_err();
    assert_eq!(err, CloudBotError::Forbidden);
    assert_eq!(err.kind().name, "CloudBot.Forbidden");
    assert_eq!(emu.stats().jobs_created, 0);

    // It can list and refer, but not suspend.
    let public_id = demo();
    assert!(client.list_bots(&call(&refer, T), &public_id).await.is_ok());
    let started = execute_demo(
        &client,
        &credentials(),
        "slow_bot",
        &ExecuteRequest::default(),
        T,
    )
    .await
    .unwrap();
    assert!(
        client
            .refer_job(&call(&refer, T), &started.job_reference)
            .await
            .is_ok()
    );
    assert_eq!(
        client
            .suspend_job(&call(&refer, T), &started.job_reference)
            .await
            .unwrap_err(),
        CloudBotError::Forbidden
    );
}

#[tokio::test]
async fn unknown_contract_bot_and_job_are_not_found() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let nowhere = PublicId::parse("no_such_contract", "public_id").unwrap();
    assert_eq!(
        client
            .list_bots(&call(&creds, T), &nowhere)
            .await
            .unwrap_err(),
        CloudBotError::NotFound
    );
    assert_eq!(
        execute_demo(
            &client,
            &creds,
            "no_such_bot",
            &ExecuteRequest::default(),
            T
        )
        .await
        .unwrap_err(),
        CloudBotError::NotFound
    );
    let missing = job(&client, "demo", "00000000-0000-0000-0000-000000000000");
    assert_eq!(
        client
            .refer_job(&call(&creds, T), &missing)
            .await
            .unwrap_err(),
        CloudBotError::NotFound
    );
    assert_eq!(
        client
            .suspend_job(&call(&creds, T), &missing)
            .await
            .unwrap_err(),
        CloudBotError::NotFound
    );
    assert_eq!(emu.stats().jobs_created, 0);
}

#[tokio::test]
async fn payload_over_4_mb_is_refused_before_anything_is_sent() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let big = "x".repeat(MAX_REQUEST_BODY);
    let err = execute_demo(&client, &credentials(), "echo_bot", &message(&big), T)
        .await
        .unwrap_err();
    match err {
        CloudBotError::PayloadTooLarge { size } => assert!(size > MAX_REQUEST_BODY),
        other => panic!("{other:?}"),
    }
    let stats = emu.stats();
    assert_eq!(stats.requests, 0);
    assert_eq!(stats.connections_accepted, 0);
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn payload_just_under_4_mb_is_sent() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    // `{"input":{"message":"..."}}` adds 26 bytes around the string.
    let fits = "x".repeat(MAX_REQUEST_BODY - 64);
    let started = execute_demo(&client, &credentials(), "echo_bot", &message(&fits), T)
        .await
        .unwrap();
    assert_eq!(started.job.status, JobStatus::Executing);
}

#[tokio::test]
async fn invalid_execute_body_is_unprocessable_with_the_server_message() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let err = execute_demo(&client, &credentials(), "echo_bot", &unprocessable(), T)
        .await
        .unwrap_err();
    match &err {
        CloudBotError::Unprocessable { message: Some(m) } => {
            assert!(m.contains("callback_tries"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind().name, "CloudBot.Unprocessable");
    assert_eq!(emu.stats().jobs_created, 0);
}

#[tokio::test]
async fn execute_with_callback_is_delivered_to_the_endpoint() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/hook"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let started = execute_demo(
        &client,
        &credentials(),
        "echo_bot",
        &ExecuteRequest {
            callback_endpoint: Some(format!("{}/hook", receiver.uri())),
            callback_tries: Some(2),
            ..ExecuteRequest::default()
        },
        T,
    )
    .await
    .unwrap();
    let attempts = eventually(Duration::from_secs(10), || {
        let a = emu.callbacks();
        (!a.is_empty()).then_some(a)
    })
    .await
    .expect("a callback attempt");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].job_id, started.job.job_id);
    assert_eq!(attempts[0].status, Some(200));
    let received = receiver.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let body: Job = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body.job_id, started.job.job_id);
    assert_eq!(body.status, JobStatus::Succeeded);
}
