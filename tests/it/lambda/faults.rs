//! Upstream faults injected by the emulator: each maps to its documented errorType and API
//! Gateway status, and no invocation ever creates a job twice.

use std::time::Duration;

use cloudbot_emulator::{FaultKind, FaultRule};
use serde_json::{Value, json};

use super::{Harness, Setup, header, http_body};

fn execute() -> Value {
    json!({"public_id": "demo", "bot_id": "echo_bot", "input": {"message": "fault test"}})
}

fn status(code: u16) -> FaultRule {
    FaultRule::new(FaultKind::Status).status(code)
}

/// (case, fault rule, errorType, API Gateway status, retryable)
fn execute_cases() -> Vec<(&'static str, Option<FaultRule>, &'static str, u16, bool)> {
    vec![
        ("403", Some(status(403)), "CloudBot.Forbidden", 502, false),
        ("404", Some(status(404)), "CloudBot.NotFound", 404, false),
        (
            "413",
            Some(status(413)),
            "CloudBot.PayloadTooLarge",
            413,
            false,
        ),
        (
            "415",
            Some(status(415)),
            "CloudBot.UnsupportedMediaType",
            502,
            false,
        ),
        (
            "422",
            Some(status(422)),
            "CloudBot.Unprocessable",
            422,
            false,
        ),
        ("400", Some(status(400)), "CloudBot.BadRequest", 422, false),
        (
            "429",
            Some(status(429).retry_after(0)),
            "CloudBot.RateLimited",
            503,
            true,
        ),
        (
            "503 with Retry-After",
            Some(status(503).retry_after(0)),
            "CloudBot.Unavailable",
            503,
            true,
        ),
        (
            "500",
            Some(status(500)),
            "CloudBot.OutcomeUnknown",
            504,
            false,
        ),
        (
            "502",
            Some(status(502)),
            "CloudBot.OutcomeUnknown",
            504,
            false,
        ),
        (
            "reset before",
            Some(FaultRule::new(FaultKind::ResetBefore)),
            "CloudBot.OutcomeUnknown",
            504,
            false,
        ),
        (
            "reset after",
            Some(FaultRule::new(FaultKind::ResetAfter)),
            "CloudBot.OutcomeUnknown",
            504,
            false,
        ),
        (
            "malformed JSON",
            Some(FaultRule::new(FaultKind::MalformedJson)),
            "CloudBot.OutcomeUnknown",
            504,
            false,
        ),
        (
            "truncated body",
            Some(FaultRule::new(FaultKind::TruncatedBody)),
            "CloudBot.OutcomeUnknown",
            504,
            false,
        ),
        (
            "timeout",
            Some(FaultRule::new(FaultKind::Latency).latency_ms(3_000)),
            "CloudBot.OutcomeUnknown",
            504,
            false,
        ),
    ]
}

#[tokio::test]
async fn execute_faults_map_to_their_error_types_and_never_start_two_jobs() {
    let h = Harness::start_with(Setup {
        // Short request timeout so the latency fault becomes a timeout quickly.
        env: vec![("CLOUDBOT_REQUEST_TIMEOUT_MS", "1500".to_owned())],
        ..Setup::default()
    })
    .await;
    for (case, rule, error_type, http_status, retryable) in execute_cases() {
        // Direct invocation: a Lambda error with the stable errorType.
        h.emulator.reset();
        h.emulator.set_faults(rule.clone()).unwrap();
        let err = h.invoke(execute()).await.expect_err(case);
        assert_eq!(err.error_type, error_type, "{case}: {}", err.error_message);
        assert!(!err.error_message.contains("demo-secret-key"), "{case}");
        if case == "timeout" {
            // The emulator logs a delayed request only once it has answered, but counts it on
            // arrival: the one POST arrived and was not sent again.
            assert_eq!(
                h.emulator.stats().requests,
                1,
                "{case}: execute must not be repeated"
            );
        }
        let job_posts = h
            .emulator
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.job_id.is_some())
            .count();
        assert!(job_posts <= 1, "{case}: {job_posts} jobs created");
        if !retryable && case != "timeout" {
            let posts = h
                .emulator
                .requests()
                .iter()
                .filter(|r| r.method == "POST")
                .count();
            assert_eq!(posts, 1, "{case}: execute must not be repeated");
        }

        // The same fault through API Gateway: an HTTP problem response, never a function error.
        h.emulator.reset();
        h.emulator.set_faults(rule).unwrap();
        let response = h
            .invoke(h.event("apigw-v1-execute.json", None))
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(response["statusCode"], http_status, "{case}");
        assert_eq!(
            header(&response, "content-type"),
            Some("application/problem+json")
        );
        let problem = http_body(&response);
        assert_eq!(problem["error_type"], error_type, "{case}");
        assert_eq!(problem["retryable"], retryable, "{case}");
        assert!(h.emulator.stats().jobs_created <= 1, "{case}");
    }
}

#[tokio::test]
async fn rate_limited_answers_carry_retry_after() {
    let h = Harness::start().await;
    h.emulator.set_faults([status(429).retry_after(7)]).unwrap();
    let response = h
        .invoke(h.event("apigw-v2-list-bots.json", None))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 503);
    assert_eq!(header(&response, "retry-after"), Some("7"));
}

#[tokio::test]
async fn unpublished_bot_is_not_found() {
    let h = Harness::start().await;
    let err = h
        .invoke(json!({"public_id": "demo", "bot_id": "draft_bot"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "CloudBot.NotFound");
    assert_eq!(h.emulator.stats().jobs_created, 0);
}

#[tokio::test]
async fn read_faults_are_retried_then_reported() {
    let h = Harness::start_with(Setup {
        env: vec![("CLOUDBOT_REQUEST_TIMEOUT_MS", "1000".to_owned())],
        ..Setup::default()
    })
    .await;
    let job_id = h.start_job().await;
    let refer = json!({"operation": "refer_job", "public_id": "demo", "job_id": job_id});

    // A transient 503 on the read is retried by the client and succeeds.
    h.emulator.set_faults([status(503).times(1)]).unwrap();
    let ok = h.invoke(refer.clone()).await.unwrap();
    assert_eq!(ok["job_id"], job_id.as_str());

    for (case, rule, error_type) in [
        ("503 forever", status(503), "CloudBot.Unavailable"),
        (
            "reset",
            FaultRule::new(FaultKind::ResetBefore),
            "CloudBot.Unavailable",
        ),
        (
            "malformed JSON",
            FaultRule::new(FaultKind::MalformedJson),
            "CloudBot.InvalidResponse",
        ),
        (
            "timeout",
            FaultRule::new(FaultKind::Latency).latency_ms(5_000),
            "CloudBot.Unavailable",
        ),
        ("404", status(404), "CloudBot.NotFound"),
    ] {
        h.emulator.set_faults([rule]).unwrap();
        let err = h.invoke(refer.clone()).await.expect_err(case);
        assert_eq!(err.error_type, error_type, "{case}: {}", err.error_message);
    }
    h.emulator.clear_faults();
    assert_eq!(h.emulator.stats().jobs_created, 1);
}

#[tokio::test]
async fn unreachable_api_is_unavailable_and_retryable() {
    let h = Harness::start_with(Setup {
        env: vec![
            ("CLOUDBOT_API_BASE", "http://127.0.0.1:1".to_owned()),
            ("CLOUDBOT_DEFAULT_BOT_ENDPOINT", String::new()),
        ],
        ..Setup::default()
    })
    .await;
    let err = h.invoke(execute()).await.unwrap_err();
    assert_eq!(
        err.error_type, "CloudBot.Unavailable",
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn the_invocation_deadline_bounds_the_upstream_call() {
    let h = Harness::start().await;
    h.emulator
        .set_faults([FaultRule::new(FaultKind::Latency).latency_ms(10_000)])
        .unwrap();
    let started = std::time::Instant::now();
    let err = h
        .invoke_with_deadline(execute(), Duration::from_millis(2_000))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err.error_type, "CloudBot.OutcomeUnknown",
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn no_time_left_is_a_deadline_error_and_sends_nothing() {
    let h = Harness::start().await;
    h.invoke(execute()).await.unwrap(); // warm the credentials cache
    let before = h.upstream_requests();
    let err = h
        .invoke_with_deadline(execute(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(
        err.error_type, "Function.DeadlineExceeded",
        "{}",
        err.error_message
    );
    assert_eq!(h.upstream_requests(), before);
}

/// Cloud BOT API requests that reached the emulator (execute POSTs and reads alike).
fn api_requests(h: &Harness) -> usize {
    h.emulator
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/demo/"))
        .count()
}

/// The HTTP triggers' retry budget (docs/contract.md, "Retry budget per trigger"): a Retry-After
/// longer than it is answered at once with 503 and the server's Retry-After, after one request,
/// for execute and reads, REST and HTTP API alike.
#[tokio::test]
async fn http_triggers_answer_a_long_retry_after_at_once() {
    answer_a_long_retry_after_at_once(429, "CloudBot.RateLimited").await;
}

/// The same for a 503 with Retry-After: for execute the documented refusal that started no job
/// (`CloudBot.Unavailable`, retryable), which keeps the server's Retry-After like a 429 does.
#[tokio::test]
async fn http_triggers_answer_a_long_503_retry_after_at_once() {
    answer_a_long_retry_after_at_once(503, "CloudBot.Unavailable").await;
}

async fn answer_a_long_retry_after_at_once(upstream: u16, error_type: &str) {
    let h = Harness::start().await;
    for (sample, retry_after) in [
        ("apigw-v1-execute.json", 7),
        ("apigw-v2-execute.json", 3),
        ("apigw-v2-list-bots.json", 7),
        ("apigw-v1-list-bots.json", 3),
    ] {
        let before = api_requests(&h);
        h.emulator
            .set_faults([status(upstream).retry_after(retry_after)])
            .unwrap();
        let started = std::time::Instant::now();
        let response = h.invoke(h.event(sample, None)).await.unwrap();
        let took = started.elapsed();
        assert_eq!(response["statusCode"], 503, "{sample}: {response}");
        let retry_after = retry_after.to_string();
        assert_eq!(
            header(&response, "retry-after"),
            Some(retry_after.as_str()),
            "{sample}: {response}"
        );
        let problem = http_body(&response);
        assert_eq!(problem["error_type"], error_type, "{sample}");
        assert_eq!(problem["retryable"], true, "{sample}");
        assert!(
            took < Duration::from_secs(2),
            "{sample}: answered after {took:?}"
        );
        assert_eq!(
            api_requests(&h),
            before + 1,
            "{sample}: no retry beyond the budget"
        );
    }
    assert_eq!(h.emulator.stats().jobs_created, 0);
}

/// Step Functions and EventBridge get the Lambda error, as before: the error type their Retry
/// matches, and the server's Retry-After in the message only.
#[tokio::test]
async fn asynchronous_triggers_get_the_503_retry_after_as_a_lambda_error() {
    let h = Harness::start().await;
    // Beyond the 30 s deadline: these triggers have no budget of their own, the deadline ends it.
    h.emulator
        .set_faults([status(503).retry_after(600)])
        .unwrap();
    for sample in ["sfn-execute.json", "eventbridge-custom.json"] {
        let err = h.invoke(h.event(sample, None)).await.unwrap_err();
        assert_eq!(err.error_type, "CloudBot.Unavailable", "{sample}");
        assert!(
            err.error_message.contains("HTTP 503, retry after 600 s"),
            "{sample}: {err:?}"
        );
    }
    assert_eq!(h.emulator.stats().jobs_created, 0);
}

/// Within the budget the HTTP trigger still waits and retries.
#[tokio::test]
async fn http_triggers_retry_within_their_budget() {
    let h = Harness::start().await;
    h.emulator
        .set_faults([status(429).retry_after(1).times(1)])
        .unwrap();
    let started = std::time::Instant::now();
    let response = h
        .invoke(h.event("apigw-v1-execute.json", None))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 202, "{response}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(h.emulator.stats().jobs_created, 1);
}

/// Step Functions, EventBridge and direct invocations have no budget of their own: they wait for
/// a Retry-After that an HTTP caller would not get (only the deadline bounds the waits).
#[tokio::test]
async fn asynchronous_triggers_wait_for_a_retry_after_beyond_the_http_budget() {
    let h = Harness::start().await;
    for sample in ["sfn-execute.json", "eventbridge-custom.json"] {
        h.emulator
            .set_faults([status(429).retry_after(3).times(1)])
            .unwrap();
        let jobs = h.emulator.stats().jobs_created;
        let started = std::time::Instant::now();
        let ok = h.invoke(h.event(sample, None)).await.unwrap();
        assert_eq!(ok["operation"], "execute", "{sample}");
        assert!(started.elapsed() >= Duration::from_secs(3), "{sample}");
        assert_eq!(h.emulator.stats().jobs_created, jobs + 1, "{sample}");
    }
}
