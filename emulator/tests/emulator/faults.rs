//! Fault injection through the `x-emulator-fault` header and admin rules, and exactly which
//! faults create a job.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use cloudbot_emulator::{FaultKind, FaultRule, OVERSIZED_PADDING};
use serde_json::{Value, json};

use crate::support::{Api, raw, start};

const EXECUTE: &str = "/demo/bots/echo_bot/jobs";

fn created_jobs(emu: &cloudbot_emulator::Emulator) -> u64 {
    emu.stats().jobs_created
}

#[tokio::test]
async fn status_faults_answer_without_creating_a_job() {
    let emu = start().await;
    let api = Api::new(&emu);
    let send = |status: &'static str, retry: Option<&'static str>| {
        let mut rb = api
            .request(reqwest::Method::POST, EXECUTE)
            .header("x-emulator-fault", "status")
            .header("x-emulator-status", status)
            .body("{}");
        if let Some(r) = retry {
            rb = rb.header("x-emulator-retry-after", r);
        }
        api.send(rb)
    };
    let a = send("429", None).await;
    assert_eq!(a.status, 429);
    assert_eq!(
        a.headers["retry-after"], "1",
        "429 always carries Retry-After"
    );
    let a = send("503", Some("7")).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers["retry-after"], "7");
    let a = send("503", None).await;
    assert!(a.headers.get("retry-after").is_none());
    let a = send("500", None).await;
    assert_eq!(a.status, 500);
    assert_eq!(created_jobs(&emu), 0);
    let log = emu.requests();
    assert_eq!(log.len(), 4);
    assert!(
        log.iter()
            .all(|r| r.fault == Some(FaultKind::Status) && r.job_id.is_none())
    );
    assert_eq!(log[0].status, Some(429));
}

#[tokio::test]
async fn reset_before_closes_with_a_tcp_reset_and_creates_no_job() {
    let emu = start().await;
    let r = raw(
        emu.addr(),
        "POST",
        EXECUTE,
        "x-emulator-fault: reset_before\r\n",
        "{}",
    )
    .await;
    assert!(r.bytes.is_empty(), "no answer at all: {}", r.text());
    assert_eq!(r.error, Some(ErrorKind::ConnectionReset));
    assert_eq!(created_jobs(&emu), 0);
    let log = emu.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].status, log[0].job_id.as_deref(), log[0].fault),
        (None, None, Some(FaultKind::ResetBefore))
    );
    // A client sees a transport error, not a response.
    let api = Api::new(&emu);
    let err = api
        .request(reqwest::Method::POST, EXECUTE)
        .header("x-emulator-fault", "reset_before")
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status());
    assert_eq!(created_jobs(&emu), 0);
}

#[tokio::test]
async fn reset_after_creates_exactly_one_job_then_resets() {
    let emu = start().await;
    let r = raw(
        emu.addr(),
        "POST",
        EXECUTE,
        "x-emulator-fault: reset_after\r\n",
        "{}",
    )
    .await;
    assert!(r.bytes.is_empty(), "no answer at all: {}", r.text());
    assert_eq!(r.error, Some(ErrorKind::ConnectionReset));
    assert_eq!(created_jobs(&emu), 1);
    let log = emu.requests();
    assert_eq!(log[0].status, None);
    assert_eq!(
        log[0].job_id.as_deref(),
        Some(emu.jobs()[0].job_id.as_str())
    );
}

#[tokio::test]
async fn malformed_json_keeps_the_status_and_creates_the_job() {
    let emu = start().await;
    let r = raw(
        emu.addr(),
        "POST",
        EXECUTE,
        "x-emulator-fault: malformed_json\r\n",
        "{}",
    )
    .await;
    assert!(r.text().starts_with("HTTP/1.1 201"), "{}", r.text());
    assert!(serde_json::from_slice::<Value>(r.body()).is_err());
    assert_eq!(
        r.content_length(),
        Some(r.body().len()),
        "complete, just not JSON"
    );
    assert_eq!(created_jobs(&emu), 1);
    let r = raw(
        emu.addr(),
        "GET",
        "/demo/bots",
        "x-emulator-fault: malformed_json\r\n",
        "",
    )
    .await;
    assert!(r.text().starts_with("HTTP/1.1 200"));
    assert!(serde_json::from_slice::<Value>(r.body()).is_err());
}

#[tokio::test]
async fn truncated_body_announces_more_than_it_sends_and_creates_the_job() {
    let emu = start().await;
    let r = raw(
        emu.addr(),
        "POST",
        EXECUTE,
        "x-emulator-fault: truncated_body\r\n",
        "{}",
    )
    .await;
    assert!(r.text().starts_with("HTTP/1.1 201"), "{}", r.text());
    let declared = r.content_length().unwrap();
    assert!(
        r.body().len() < declared,
        "{} of {declared} bytes",
        r.body().len()
    );
    assert!(!r.body().is_empty());
    assert_eq!(created_jobs(&emu), 1);
    // reqwest reports an error while reading the body.
    let api = Api::new(&emu);
    let resp = api
        .request(reqwest::Method::GET, "/demo/bots")
        .header("x-emulator-fault", "truncated_body")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
}

#[tokio::test]
async fn oversized_body_is_valid_json_over_2_mib_and_creates_the_job() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api
        .send(
            api.request(reqwest::Method::POST, EXECUTE)
                .header("x-emulator-fault", "oversized_body")
                .body("{}"),
        )
        .await;
    assert_eq!(a.status, 201);
    assert!(a.body["padding"].as_str().unwrap().len() >= OVERSIZED_PADDING);
    assert!(
        a.headers["content-length"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 2 * 1024 * 1024
    );
    assert_eq!(a.body["status"], 2);
    assert_eq!(created_jobs(&emu), 1);
}

#[tokio::test]
async fn latency_fault_delays_the_answer_after_creating_the_job() {
    let emu = start().await;
    let api = Api::new(&emu);
    let t = Instant::now();
    let a = api
        .send(
            api.request(reqwest::Method::POST, EXECUTE)
                .header("x-emulator-fault", "latency")
                .header("x-emulator-latency-ms", "300")
                .body("{}"),
        )
        .await;
    assert_eq!(a.status, 201);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // A client that gives up before the answer still started a job.
    let err = api
        .request(reqwest::Method::POST, EXECUTE)
        .header("x-emulator-fault", "latency")
        .header("x-emulator-latency-ms", "2000")
        .timeout(Duration::from_millis(200))
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(created_jobs(&emu), 2);
}

#[tokio::test]
async fn admin_rules_match_method_and_path_and_count_down() {
    let emu = start().await;
    let api = Api::new(&emu);
    emu.add_faults([FaultRule::new(FaultKind::Status)
        .status(503)
        .retry_after(2)
        .method("POST")
        .path_prefix("/demo/bots")
        .times(2)])
        .unwrap();
    assert_eq!(
        api.get("/demo/bots").await.status,
        200,
        "GET does not match"
    );
    assert_eq!(api.execute("echo_bot", json!({})).await.status, 503);
    assert_eq!(emu.faults()[0].count, Some(1), "remaining count is visible");
    assert_eq!(api.execute("echo_bot", json!({})).await.status, 503);
    assert!(emu.faults().is_empty(), "spent rules disappear");
    assert_eq!(api.execute("echo_bot", json!({})).await.status, 201);
    assert_eq!(created_jobs(&emu), 1);

    emu.set_faults([FaultRule::new(FaultKind::Status).status(500)])
        .unwrap();
    assert_eq!(api.get("/demo/bots").await.status, 500);
    assert_eq!(
        api.get("/services/contracts").await.status,
        500,
        "forever until cleared"
    );
    emu.clear_faults();
    assert_eq!(api.get("/demo/bots").await.status, 200);
    assert!(
        emu.add_faults([FaultRule::new(FaultKind::Status).status(200)])
            .is_err()
    );
    assert!(
        emu.add_faults([FaultRule::new(FaultKind::Latency).times(0)])
            .is_err()
    );
    // An invalid replacement list leaves the active rules in place.
    emu.set_faults([FaultRule::new(FaultKind::Status).status(503)])
        .unwrap();
    assert!(
        emu.set_faults([FaultRule::new(FaultKind::Status).status(200)])
            .is_err()
    );
    assert_eq!(emu.faults().len(), 1);
    assert_eq!(emu.faults()[0].status, Some(503));
}

#[tokio::test]
async fn admin_fault_endpoints_accept_a_rule_list_and_clear() {
    let emu = start().await;
    let api = Api::new(&emu);
    let admin = format!("{}/__emulator/faults", emu.base_url());
    let rules = json!([
        {"fault": "reset_before", "method": "POST", "path_prefix": "/demo/bots", "count": 1},
        {"fault": "status", "status": 429, "count": 1}
    ]);
    let resp = api
        .http
        .post(&admin)
        .body(rules.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let listed: Value = resp.json().await.unwrap();
    assert_eq!(listed["faults"].as_array().unwrap().len(), 2);
    assert!(
        api.request(reqwest::Method::POST, EXECUTE)
            .body("{}")
            .send()
            .await
            .is_err()
    );
    let a = api.get("/demo/bots").await;
    assert_eq!(a.status, 429);
    assert_eq!(api.get("/demo/bots").await.status, 200);
    assert_eq!(created_jobs(&emu), 0);

    let one = json!({"fault": "status", "status": 503});
    assert_eq!(
        api.http
            .post(&admin)
            .body(one.to_string())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(api.get("/demo/bots").await.status, 503);
    assert_eq!(api.http.delete(&admin).send().await.unwrap().status(), 200);
    assert_eq!(api.get("/demo/bots").await.status, 200);
    let bad = api
        .http
        .post(&admin)
        .body(r#"{"fault": "rest_before"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("rest_before"));
}

#[tokio::test]
async fn unknown_fault_header_answers_400() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api
        .send(
            api.request(reqwest::Method::GET, "/demo/bots")
                .header("x-emulator-fault", "explode"),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.body["message"].as_str().unwrap().contains("explode"));
}

#[tokio::test]
async fn header_fault_overrides_rules_and_leaves_them_counted() {
    let emu = start().await;
    let api = Api::new(&emu);
    emu.add_faults([FaultRule::new(FaultKind::Status).status(500).times(1)])
        .unwrap();
    let a = api
        .send(
            api.request(reqwest::Method::GET, "/demo/bots")
                .header("x-emulator-fault", "latency")
                .header("x-emulator-latency-ms", "1"),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(emu.faults().len(), 1);
    assert_eq!(api.get("/demo/bots").await.status, 500);
}
