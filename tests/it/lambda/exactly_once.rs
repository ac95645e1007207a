//! Exactly-once execute under duplicate delivery: the handler with a real idempotency table
//! (moto DynamoDB) and the emulator. Every test counts the jobs the emulator created.

use std::sync::Arc;
use std::time::Duration;

use cloudbot_emulator::{FaultKind, FaultRule};
use serde_json::{Value, json};

use super::{Harness, Setup, Store, header, http_body};
use tracing::level_filters::LevelFilter;

use crate::support::logs::capture_json;
use crate::support::{eventually, requests_to};

fn execute(key: &str, message: &str) -> Value {
    json!({
        "idempotency_key": key,
        "public_id": "demo",
        "bot_id": "echo_bot",
        "input": {"message": message}
    })
}

fn posts(h: &Harness) -> usize {
    requests_to(&h.emulator, "POST", "/demo/bots/").len()
}

fn jobs(h: &Harness) -> usize {
    h.emulator.jobs().len()
}

/// The stored state of every record of the harness's table.
async fn states(h: &Harness) -> Vec<String> {
    let table = h.table.as_deref().expect("a table");
    crate::support::moto::serial_moto()
        .items(table)
        .await
        .iter()
        .map(|item| item["state"].as_s().unwrap().clone())
        .collect()
}

fn on_execute(fault: FaultKind) -> FaultRule {
    FaultRule::new(fault)
        .method("POST")
        .path_prefix("/demo/bots/echo_bot/jobs")
}

#[tokio::test]
async fn the_same_request_twice_starts_one_job_and_the_second_is_a_replay() {
    let h = Harness::start().await;
    let first = h.invoke(execute("order-1", "hi")).await.unwrap();
    assert_eq!(first["replay"], false);
    assert_eq!(
        h.store_calls.operations(),
        ["PutItem", "UpdateItem"],
        "happy path: two writes, no read"
    );
    h.store_calls.clear();

    let second = h.invoke(execute("order-1", "hi")).await.unwrap();
    assert_eq!(second["replay"], true);
    assert_eq!(
        second["job_reference_endpoint"],
        first["job_reference_endpoint"]
    );
    assert_eq!(second["job_id"], first["job_id"]);
    assert_eq!(
        h.store_calls.operations(),
        ["PutItem"],
        "a lost claim costs no read"
    );
    assert_eq!((posts(&h), jobs(&h)), (1, 1));
}

#[tokio::test]
async fn twenty_concurrent_copies_start_one_job() {
    let h = Arc::new(Harness::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let h = Arc::clone(&h);
        tasks.spawn(async move { h.invoke(execute("burst", "once")).await });
    }
    let mut endpoints = Vec::new();
    let mut in_progress = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(ok) => endpoints.push(ok["job_reference_endpoint"].as_str().unwrap().to_owned()),
            Err(err) => {
                assert_eq!(err.error_type, "Idempotency.InProgress", "{err:?}");
                in_progress += 1;
            }
        }
    }
    assert_eq!(endpoints.len() + in_progress, 20);
    endpoints.dedup();
    assert_eq!(
        endpoints.len(),
        1,
        "every answer names the same job: {endpoints:?}"
    );
    assert_eq!((posts(&h), jobs(&h)), (1, 1));
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_nothing_is_sent() {
    let h = Harness::start().await;
    h.invoke(execute("k", "first")).await.unwrap();
    let err = h.invoke(execute("k", "second")).await.unwrap_err();
    assert_eq!(err.error_type, "Idempotency.KeyReused");
    assert!(err.error_message.contains("request:k"), "{err:?}");
    assert_eq!((posts(&h), jobs(&h)), (1, 1));
}

#[tokio::test]
async fn a_503_without_a_job_releases_the_key_and_the_retry_starts_one_job() {
    let h = Harness::start().await;
    // 503 with Retry-After: the client's four attempts all refused, provably no job.
    h.emulator
        .set_faults([on_execute(FaultKind::Status)
            .status(503)
            .retry_after(0)
            .times(4)])
        .unwrap();
    let err = h.invoke(execute("k503", "x")).await.unwrap_err();
    assert_eq!(err.error_type, "CloudBot.Unavailable", "{err:?}");
    assert_eq!(jobs(&h), 0);

    assert_eq!(states(&h).await, ["released"]);
    let ok = h.invoke(execute("k503", "x")).await.unwrap();
    assert_eq!(ok["replay"], false);
    assert_eq!((posts(&h), jobs(&h)), (5, 1));
}

#[tokio::test]
async fn an_ambiguous_execute_is_recorded_unknown_and_a_retry_sends_nothing() {
    let h = Harness::start().await;
    // The job is created, then the connection is reset: the outcome is unknown.
    h.emulator
        .set_faults([on_execute(FaultKind::ResetAfter).times(1)])
        .unwrap();
    let err = h.invoke(execute("kreset", "x")).await.unwrap_err();
    assert_eq!(err.error_type, "CloudBot.OutcomeUnknown");
    let again = h.invoke(execute("kreset", "x")).await.unwrap_err();
    assert_eq!(again.error_type, "CloudBot.OutcomeUnknown");
    assert!(
        again.error_message.contains("request:kreset")
            && again.error_message.contains("resolve_idempotency"),
        "{again:?}"
    );
    assert_eq!((posts(&h), jobs(&h)), (1, 1));
    assert_eq!(states(&h).await, ["unknown"]);
}

#[tokio::test]
async fn a_claim_whose_owner_died_becomes_unknown_never_free() {
    let h = Arc::new(Harness::start().await);
    // The job is created, then the answer hangs far longer than the owner lives.
    h.emulator
        .set_faults([on_execute(FaultKind::Latency).latency_ms(30_000).times(1)])
        .unwrap();
    let owner = {
        let h = Arc::clone(&h);
        // 1.5 s left: the owner's in-flight window ends 1.5 s from now.
        tokio::spawn(async move {
            h.invoke_with_deadline(execute("kdead", "x"), Duration::from_millis(1_500))
                .await
        })
    };
    eventually(Duration::from_secs(10), || (jobs(&h) == 1).then_some(()))
        .await
        .expect("the POST reached the emulator");
    // The sandbox dies (timeout, crash, OOM) while the request is out: nothing settles the claim.
    owner.abort();
    let window_ends = tokio::time::Instant::now() + Duration::from_millis(1_500);

    let during = h.invoke(execute("kdead", "x")).await.unwrap_err();
    assert_eq!(during.error_type, "Idempotency.InProgress", "{during:?}");

    tokio::time::sleep_until(window_ends).await;
    let after = h.invoke(execute("kdead", "x")).await.unwrap_err();
    assert_eq!(after.error_type, "CloudBot.OutcomeUnknown", "{after:?}");
    assert!(after.error_message.contains("did not finish"), "{after:?}");
    assert_eq!(jobs(&h), 1);
    assert_eq!(
        states(&h).await,
        ["in_progress"],
        "nobody rewrote the dead claim"
    );
    h.emulator.clear_faults();
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_fails_closed() {
    let h = Harness::start_with(Setup {
        store: Store::Unreachable,
        ..Setup::default()
    })
    .await;
    let err = h.invoke(execute("kdown", "x")).await.unwrap_err();
    assert_eq!(err.error_type, "Idempotency.Unavailable", "{err:?}");
    assert!(err.error_message.contains("nothing was sent"), "{err:?}");
    assert_eq!((posts(&h), jobs(&h)), (0, 0));
}

// current_thread runtime: the thread-local log capture sees the handler's events.
#[tokio::test]
async fn requests_without_a_key_and_reads_never_touch_the_store() {
    let h = Harness::start().await;
    let plain = json!({"public_id": "demo", "bot_id": "echo_bot"});
    let logs = capture_json(LevelFilter::INFO);
    let first = h.invoke(plain.clone()).await.unwrap();
    h.invoke(plain).await.unwrap();
    assert_eq!(jobs(&h), 2, "no key: not deduplicated");
    assert!(
        logs.text()
            .contains("execute without an idempotency key: not deduplicated"),
        "the undeduplicated case is visible in the logs"
    );
    h.invoke(json!({"operation": "refer_job", "job_reference_endpoint": first["job_reference_endpoint"]}))
        .await
        .unwrap();
    h.invoke(json!({"operation": "list_bots", "public_id": "demo"}))
        .await
        .unwrap();
    assert_eq!(h.store_calls.operations(), Vec::<String>::new());
}

#[tokio::test]
async fn without_a_table_a_key_is_ignored() {
    let h = Harness::start_with(Setup {
        store: Store::None,
        ..Setup::default()
    })
    .await;
    h.invoke(execute("k", "x")).await.unwrap();
    h.invoke(execute("k", "x")).await.unwrap();
    assert_eq!(jobs(&h), 2);
}

#[tokio::test]
async fn each_trigger_sample_delivered_twice_starts_one_job() {
    let h = Harness::start().await;
    for name in [
        "scheduled-rule.json",
        "scheduler-envelope.json",
        "eventbridge-custom.json",
    ] {
        let before = jobs(&h);
        let first = h.invoke(h.event(name, None)).await.unwrap();
        let second = h.invoke(h.event(name, None)).await.unwrap();
        assert_eq!(
            (&first["replay"], &second["replay"]),
            (&json!(false), &json!(true)),
            "{name}"
        );
        assert_eq!(first["job_id"], second["job_id"], "{name}");
        assert_eq!(jobs(&h), before + 1, "{name}");
    }
}

#[tokio::test]
async fn the_state_machine_envelope_keys_each_execution() {
    let h = Harness::start().await;
    let envelope = |key: &str| json!({"idempotency_key": key, "request": {"public_id": "demo", "bot_id": "echo_bot"}});
    let a = h
        .invoke(envelope(
            "arn:aws:states:us-east-1:123456789012:execution:run-bot:a#ExecuteBot",
        ))
        .await
        .unwrap();
    let retried = h
        .invoke(envelope(
            "arn:aws:states:us-east-1:123456789012:execution:run-bot:a#ExecuteBot",
        ))
        .await
        .unwrap();
    let b = h
        .invoke(envelope(
            "arn:aws:states:us-east-1:123456789012:execution:run-bot:b#ExecuteBot",
        ))
        .await
        .unwrap();
    assert_eq!(a["job_id"], retried["job_id"]);
    assert_ne!(a["job_id"], b["job_id"]);
    assert_eq!(jobs(&h), 2);
}

fn with_key(mut event: Value, key: &str) -> Value {
    event["headers"]["Idempotency-Key"] = key.into();
    event
}

#[tokio::test]
async fn api_gateway_keys_give_the_original_answer_409_while_running_and_422_when_reused() {
    let h = Arc::new(Harness::start().await);
    let event = h.event("apigw-v1-execute.json", None);

    // Structured-field string and bare token name the same key.
    let first = h
        .invoke(with_key(event.clone(), "\"pay-42\""))
        .await
        .unwrap();
    assert_eq!(first["statusCode"], 202);
    let again = h.invoke(with_key(event.clone(), "pay-42")).await.unwrap();
    assert_eq!(again["statusCode"], 202);
    assert_eq!(header(&again, "location"), header(&first, "location"));
    assert_eq!(http_body(&again)["replay"], true);
    assert_eq!(jobs(&h), 1);

    let mut other = with_key(event.clone(), "pay-42");
    other["body"] = json!({"input": {"message": "something else"}})
        .to_string()
        .into();
    let reused = h.invoke(other).await.unwrap();
    assert_eq!(reused["statusCode"], 422, "{reused}");
    assert_eq!(http_body(&reused)["error_type"], "Idempotency.KeyReused");

    // While the first request with a key runs, a duplicate gets 409 + Retry-After.
    h.emulator
        .set_faults([on_execute(FaultKind::Latency).latency_ms(1_500).times(1)])
        .unwrap();
    let slow = {
        let (h, event) = (Arc::clone(&h), with_key(event.clone(), "slow-1"));
        tokio::spawn(async move { h.invoke(event).await })
    };
    eventually(Duration::from_secs(10), || (jobs(&h) == 2).then_some(()))
        .await
        .expect("the slow POST reached the emulator");
    let busy = h.invoke(with_key(event.clone(), "slow-1")).await.unwrap();
    assert_eq!(busy["statusCode"], 409, "{busy}");
    assert!(header(&busy, "retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    assert_eq!(http_body(&busy)["error_type"], "Idempotency.InProgress");
    let done = slow.await.unwrap().unwrap();
    assert_eq!(done["statusCode"], 202);
    let after = h.invoke(with_key(event.clone(), "slow-1")).await.unwrap();
    assert_eq!(header(&after, "location"), header(&done, "location"));
    assert_eq!(jobs(&h), 2);

    let bad = h.invoke(with_key(event, "\"no spaces\"")).await.unwrap();
    assert_eq!(bad["statusCode"], 400);
    assert!(
        http_body(&bad)["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
}

#[tokio::test]
async fn an_operator_resolves_an_unknown_outcome_as_started_or_not_started() {
    let h = Harness::start().await;
    h.emulator
        .set_faults([on_execute(FaultKind::ResetAfter).times(2)])
        .unwrap();
    let mut found_job = None;
    for key in ["found", "lost"] {
        let err = h.invoke(execute(key, key)).await.unwrap_err();
        assert_eq!(err.error_type, "CloudBot.OutcomeUnknown");
        // The operator looks at the BOT's jobs and finds the one of `found`.
        found_job = found_job.or_else(|| h.emulator.jobs().pop());
    }
    let found_job = found_job.expect("the job of `found`");
    let job_url = format!("{}/demo/jobs/{}", h.emulator.base_url(), found_job.job_id);

    // Not from API Gateway or EventBridge, whatever the payload says.
    let mut via_http = h.event("apigw-v1-execute.json", None);
    via_http["path"] = "/run".into();
    via_http["body"] = json!({"operation": "resolve_idempotency", "record_key": "request:found",
        "resolution": "not_started"})
    .to_string()
    .into();
    let refused = h.invoke(via_http).await.unwrap();
    assert_eq!(refused["statusCode"], 400, "{refused}");

    let resolved = h
        .invoke(
            json!({"operation": "resolve_idempotency", "record_key": "request:found",
            "resolution": "started", "job_reference_endpoint": job_url}),
        )
        .await
        .unwrap();
    assert_eq!(resolved["state"], "completed", "{resolved}");
    let replay = h.invoke(execute("found", "found")).await.unwrap();
    assert_eq!(
        (&replay["job_id"], &replay["replay"]),
        (&json!(found_job.job_id), &json!(true))
    );

    let resolved = h
        .invoke(
            json!({"operation": "resolve_idempotency", "record_key": "request:lost",
            "resolution": "not_started"}),
        )
        .await
        .unwrap();
    assert_eq!(resolved["state"], "released");
    let rerun = h.invoke(execute("lost", "lost")).await.unwrap();
    assert_eq!(rerun["replay"], false);

    // A completed record is not resolved again.
    let again = h
        .invoke(
            json!({"operation": "resolve_idempotency", "record_key": "request:found",
            "resolution": "not_started"}),
        )
        .await
        .unwrap_err();
    assert_eq!(again.error_type, "InvalidRequest");
    assert!(again.error_message.contains("completed"), "{again:?}");
    assert_eq!(jobs(&h), 3);
}
