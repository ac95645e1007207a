//! Narrow wire-level cases against wiremock: the exact headers and body sent, statuses the
//! emulator does not produce (415, 400, 409), a server that echoes secrets, and the job
//! reference endpoint announced by the server (Location header or body field).

use std::time::Duration;

use cloudbot_trigger::cloudbot::{
    Cause, CloudBotClient, CloudBotError, Credentials, EndpointProblem, ExecuteRequest, JobStatus,
    Language, MAX_MESSAGE_CHARS, PublicId, Started,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{ACCESS_TOKEN, SECRET_KEY, bot, call, client_for, credentials, job};

const T: Duration = Duration::from_secs(5);
const JOB_ID: &str = "1b7c0f6e-93a4-4c1e-9f7b-0123456789ab";

fn job_body() -> Value {
    json!({"code": 201, "job_id": JOB_ID, "bot_id": "b", "bot_name": "B", "status": 2,
           "start_time": "2024-02-14T05:00:42Z", "elapsed_time": 0})
}

async fn server_answering_execute(template: ResponseTemplate) -> (MockServer, CloudBotClient) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/demo/bots/b/jobs"))
        .respond_with(template)
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    (server, client)
}

async fn execute(client: &CloudBotClient) -> Result<Started, CloudBotError> {
    client
        .execute(
            &call(&credentials(), T),
            &bot(client, "demo", "b"),
            &ExecuteRequest::default(),
        )
        .await
}

#[tokio::test]
async fn sends_the_documented_headers_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/demo/bots/b/jobs"))
        .and(header("content-type", "application/json"))
        .and(header("content-language", "ja"))
        .and(header("access-token", ACCESS_TOKEN))
        .and(header("secret-key", SECRET_KEY))
        .and(header(
            "user-agent",
            format!("cloudbot-trigger/{}", env!("CARGO_PKG_VERSION")).as_str(),
        ))
        .and(body_json(
            json!({"timeout": 0, "callback_endpoint": "https://cb.example/x",
                              "callback_tries": 3, "input": {"k": "v", "n": ["1", "2"]}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(job_body()))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let creds = credentials();
    let mut ctx = call(&creds, T);
    ctx.language = Language::Ja;
    let Value::Object(input) = json!({"k": "v", "n": ["1", "2"]}) else {
        unreachable!()
    };
    let started = client
        .execute(
            &ctx,
            &bot(&client, "demo", "b"),
            &ExecuteRequest {
                input: Some(input),
                callback_endpoint: Some("https://cb.example/x".into()),
                callback_tries: Some(3),
                timeout_ms: Some(0),
            },
        )
        .await
        .unwrap();
    assert_eq!(started.job.job_id, JOB_ID);
    server.verify().await;
}

#[tokio::test]
async fn empty_execute_request_sends_an_empty_object() {
    let (server, client) =
        server_answering_execute(ResponseTemplate::new(201).set_body_json(job_body())).await;
    execute(&client).await.unwrap();
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"{}");
    assert_eq!(got[0].headers.get("content-language").unwrap(), "en");
}

#[tokio::test]
async fn status_415_is_unsupported_media_type() {
    let (_server, client) = server_answering_execute(
        ResponseTemplate::new(415).set_body_json(json!({"code": 415, "message": "bad type"})),
    )
    .await;
    let err = execute(&client).await.unwrap_err();
    assert_eq!(err, CloudBotError::UnsupportedMediaType);
    assert_eq!(err.upstream_status(), Some(415));
}

#[tokio::test]
async fn status_413_from_the_server_is_payload_too_large() {
    let (_server, client) = server_answering_execute(ResponseTemplate::new(413)).await;
    assert_eq!(
        execute(&client).await.unwrap_err(),
        CloudBotError::PayloadTooLarge { size: 2 }
    );
}

#[tokio::test]
async fn status_400_keeps_the_message() {
    let (_server, client) = server_answering_execute(
        ResponseTemplate::new(400).set_body_json(json!({"code": 400, "message": "input broken"})),
    )
    .await;
    assert_eq!(
        execute(&client).await.unwrap_err(),
        CloudBotError::BadRequest {
            message: Some("input broken".into())
        }
    );
}

#[tokio::test]
async fn undocumented_status_is_unexpected_and_not_retried() {
    let (server, client) = server_answering_execute(ResponseTemplate::new(409)).await;
    assert_eq!(
        execute(&client).await.unwrap_err(),
        CloudBotError::UnexpectedStatus { status: 409 }
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (server, client) = server_answering_execute(
        ResponseTemplate::new(307).insert_header("location", "http://127.0.0.1:9/steal"),
    )
    .await;
    assert_eq!(
        execute(&client).await.unwrap_err(),
        CloudBotError::UnexpectedStatus { status: 307 }
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn echoed_secrets_are_scrubbed_and_long_messages_truncated() {
    let echo = format!(
        "token {ACCESS_TOKEN} with secret {SECRET_KEY} is invalid {}",
        "x".repeat(10_000)
    );
    let (_server, client) = server_answering_execute(
        ResponseTemplate::new(422).set_body_json(json!({"code": 422, "message": echo})),
    )
    .await;
    let err = execute(&client).await.unwrap_err();
    let CloudBotError::Unprocessable { message: Some(m) } = &err else {
        panic!("{err:?}")
    };
    assert!(m.starts_with("token *** with secret *** is invalid"), "{m}");
    assert!(m.chars().count() <= MAX_MESSAGE_CHARS + 1);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(ACCESS_TOKEN) && !shown.contains(SECRET_KEY));
}

#[tokio::test]
async fn error_body_that_is_not_json_still_maps_the_status() {
    let (_server, client) =
        server_answering_execute(ResponseTemplate::new(422).set_body_string("<html>nope</html>"))
            .await;
    assert_eq!(
        execute(&client).await.unwrap_err(),
        CloudBotError::Unprocessable { message: None }
    );
}

/// Execute against a server whose 201 carries `location(server_uri, port)` as `Location`; the
/// job reference the client settled on, and the server's URI.
async fn job_reference_with_location(
    location: impl FnOnce(&str, u16) -> String,
) -> (String, String) {
    let server = MockServer::start().await;
    let location = location(&server.uri(), server.address().port());
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(job_body())
                .insert_header("location", location.as_str()),
        )
        .mount(&server)
        .await;
    let started = execute(&client_for(&server.uri())).await.unwrap();
    (started.job_reference.url().to_owned(), server.uri())
}

#[tokio::test]
async fn location_header_is_preferred_for_the_job_reference() {
    let (reference, uri) =
        job_reference_with_location(|_, _| format!("/demo-alias/jobs/{JOB_ID}")).await;
    assert_eq!(reference, format!("{uri}/demo-alias/jobs/{JOB_ID}"));

    // Absolute form on the same origin, too.
    let (reference, uri) =
        job_reference_with_location(|uri, _| format!("{uri}/other/jobs/{JOB_ID}")).await;
    assert_eq!(reference, format!("{uri}/other/jobs/{JOB_ID}"));
}

#[tokio::test]
async fn location_on_another_origin_is_ignored() {
    // Same port, other host name: a different origin. Credentials never follow it. Nor a
    // scheme-relative reference to another host.
    let others: [fn(&str, u16) -> String; 3] = [
        |_, port| format!("http://localhost:{port}/other/jobs/{JOB_ID}"),
        |_, port| format!("//localhost:{port}/demo/jobs/{JOB_ID}"),
        |_, _| format!("//evil.example/demo/jobs/{JOB_ID}"),
    ];
    for other in others {
        let (reference, uri) = job_reference_with_location(other).await;
        assert_eq!(reference, format!("{uri}/demo/jobs/{JOB_ID}"));
    }
}

#[tokio::test]
async fn location_for_another_job_or_of_another_shape_is_ignored() {
    for location in [
        "/demo/jobs/some-other-job".to_owned(),
        format!("/demo/jobs/{JOB_ID}?x=1"),
        format!("/demo/jobs/../jobs/{JOB_ID}"),
        format!("/demo/bots/b/jobs/{JOB_ID}"),
        "https://api.c-bot.pro.evil.example/demo/jobs/x".to_owned(),
    ] {
        let (reference, uri) = job_reference_with_location(|_, _| location.clone()).await;
        assert_eq!(reference, format!("{uri}/demo/jobs/{JOB_ID}"), "{location}");
    }
}

#[tokio::test]
async fn job_reference_url_field_in_the_body_is_used() {
    let server = MockServer::start().await;
    let mut body = job_body();
    body["job_reference_endpoint"] = json!(format!("{}/demo2/jobs/{JOB_ID}", server.uri()));
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let started = execute(&client).await.unwrap();
    assert_eq!(started.job_reference.public_id().as_str(), "demo2");
}

#[tokio::test]
async fn execute_answer_without_a_valid_job_id_is_outcome_unknown() {
    for body in [
        json!({"code": 201, "status": 2}),
        json!({"code": 201, "status": 2, "job_id": "../../x"}),
    ] {
        let (server, client) =
            server_answering_execute(ResponseTemplate::new(201).set_body_json(body)).await;
        assert_eq!(
            execute(&client).await.unwrap_err(),
            CloudBotError::OutcomeUnknown { cause: Cause::Body }
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn unknown_status_values_and_extra_fields_are_kept_not_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/demo/jobs/{JOB_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 200, "job_id": JOB_ID, "bot_id": "b", "status": 5, "future": {"a": 1},
            "output": {"File": {"type": "files", "files": [{"ref": "jobs/x/files/y",
                       "meta": {"name": "0001.jpg", "size": 603956, "timestamp": 1513657350000u64}}]}},
            "cast_url": "https://cast.example/x"})))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let j = client
        .refer_job(&call(&credentials(), T), &job(&client, "demo", JOB_ID))
        .await
        .unwrap();
    assert_eq!(j.status, JobStatus::Unknown(5));
    assert_eq!(j.status.label(), "unknown");
    let output: Value = serde_json::from_str(j.output.unwrap().get()).unwrap();
    assert_eq!(output["File"]["files"][0]["meta"]["size"], 603956);
    assert_eq!(j.cast_url.as_deref(), Some("https://cast.example/x"));
}

#[tokio::test]
async fn oversized_success_body_is_capped() {
    let server = MockServer::start().await;
    let huge = format!(
        "{{\"bots\": [], \"pad\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(huge))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let public_id = PublicId::parse("demo", "public_id").unwrap();
    let err = client
        .list_bots(&call(&credentials(), T), &public_id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudBotError::InvalidResponse { status: 200, .. }),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn list_bots_lists_ids_it_cannot_address_without_an_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/demo/bots"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"code": 200, "bots": [
            {"id": "good_bot", "name": "Good", "description": "d", "icon": "data:..."},
            {"id": "../evil", "name": "Evil"}]})),
        )
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let public_id = PublicId::parse("demo", "public_id").unwrap();
    let bots = client
        .list_bots(&call(&credentials(), T), &public_id)
        .await
        .unwrap();
    assert_eq!(bots.len(), 2, "never dropped");
    assert_eq!(bots[0].0.id, "good_bot");
    assert_eq!(
        bots[0].1.as_ref().unwrap().url(),
        format!("{}/demo/bots/good_bot/jobs", server.uri())
    );
    assert_eq!(bots[1].0.id, "../evil");
    assert_eq!(bots[1].1, Err(EndpointProblem::IdCharset));
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_understood() {
    let server = MockServer::start().await;
    let later = httpdate_in(Duration::from_secs(120));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", later.as_str()))
        .mount(&server)
        .await;
    let client = client_for(&server.uri());
    let err = client
        .refer_job(&call(&credentials(), T), &job(&client, "demo", JOB_ID))
        .await
        .unwrap_err();
    let CloudBotError::RateLimited {
        retry_after: Some(after),
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(after > Duration::from_secs(100) && after <= Duration::from_secs(120));
    // Beyond the deadline: not waited for, not retried.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_credentials_are_refused_before_sending() {
    let server = MockServer::start().await;
    let client = client_for(&server.uri());
    let bad = Credentials::new("token with space".into(), "s".into());
    let err = client
        .refer_job(&call(&bad, T), &job(&client, "demo", JOB_ID))
        .await
        .unwrap_err();
    assert_eq!(err, CloudBotError::InvalidCredentials);
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// An HTTP date `d` from now.
fn httpdate_in(d: Duration) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + d)
}
