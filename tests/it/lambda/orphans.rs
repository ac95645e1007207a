//! Orphaned jobs through the handler (issue 22, docs/orphans.md), against the emulator (slow_bot
//! runs 3 s) and moto's run ledger: Step Functions' status-change event for a stopped execution
//! gets the job it started suspended (the emulator records the DELETE) and the run ended
//! `orphaned` once; `keep_running` leaves the job; the sweep records the end of a job nobody
//! followed and closes the run.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Harness, Setup, Store};
use crate::support::moto::serial_moto;
use crate::support::requests_to;

const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e1";

/// The event EventBridge delivers for `status` of [`EXECUTION`] (its shape as documented by
/// Step Functions; the input is there and never read).
fn status_change(status: &str) -> Value {
    json!({
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-07T12:00:00Z",
        "region": "us-east-1",
        "resources": [EXECUTION],
        "detail": {
            "executionArn": EXECUTION,
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:RunBot-x",
            "name": "e1",
            "status": status,
            "startDate": 1_796_640_000_000_u64,
            "stopDate": 1_796_640_001_000_u64,
            "input": "{\"input\":{\"note\":\"not read\"}}",
            "output": null
        }
    })
}

async fn ledger() -> Harness {
    Harness::start_with(Setup {
        ledger: Store::Table,
        ..Setup::default()
    })
    .await
}

/// Starts slow_bot as the state machines' ExecuteBot of [`EXECUTION`] would (its key names the
/// execution); its job id.
async fn start(h: &Harness, extra: Value) -> String {
    let mut request = json!({
        "public_id": "demo", "bot_id": "slow_bot",
        "idempotency_key": format!("{EXECUTION}#ExecuteBot"),
    });
    request
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let started = h.invoke(request).await.unwrap();
    started["job_id"].as_str().unwrap().to_owned()
}

async fn the_run(
    h: &Harness,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let items = serial_moto()
        .items(h.ledger_table.as_deref().unwrap())
        .await;
    assert_eq!(items.len(), 1, "{items:?}");
    items.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_stopped_execution_gets_its_running_job_suspended_once_and_the_run_ends_orphaned() {
    let h = ledger().await;
    let job_id = start(&h, json!({})).await;
    let run = the_run(&h).await;
    assert!(
        run.contains_key("open") && run.contains_key("open_key"),
        "{run:?}"
    );

    let answer = h.invoke(status_change("ABORTED")).await.unwrap();
    assert_eq!(answer["runs"][0]["fate"], "suspended", "{answer}");
    assert_eq!(answer["runs"][0]["run"], format!("demo/{job_id}"));
    let job = h.emulator.job(&job_id).unwrap();
    assert!(job.suspended, "the emulator recorded the suspend: {job:?}");

    let run = the_run(&h).await;
    let text = |name: &str| run.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(text("end_status").as_deref(), Some("orphaned"));
    assert_eq!(text("execution").as_deref(), Some(EXECUTION));
    assert!(
        !run.contains_key("open") && !run.contains_key("open_key"),
        "closed: {run:?}"
    );
    assert!(!format!("{run:?}").contains("not read"));

    // A second delivery finds no open run: nothing more is suspended or recorded.
    let again = h.invoke(status_change("ABORTED")).await.unwrap();
    assert_eq!(again["runs"], json!([]), "{again}");
    assert_eq!(h.emulator.stats().jobs_suspended, 1);
    assert_eq!(
        requests_to(&h.emulator, "DELETE", &format!("/demo/jobs/{job_id}")).len(),
        1
    );
}

/// RunBot's ExecuteBot for a run of the template's schedule: the key names the occurrence, not
/// the execution, which comes in the envelope's `execution`.
fn scheduled_execute(execution: &str) -> Value {
    json!({
        "idempotency_key": "schedule:arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly@2026-12-07T12:00:00Z#ExecuteBot",
        "execution": execution,
        "request": {"public_id": "demo", "bot_id": "slow_bot"},
    })
}

#[tokio::test]
async fn a_run_keyed_on_a_schedule_occurrence_is_suspended_when_its_execution_stops() {
    let h = ledger().await;
    let started = h.invoke(scheduled_execute(EXECUTION)).await.unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    let run = the_run(&h).await;
    let text = |run: &std::collections::HashMap<_, aws_sdk_dynamodb::types::AttributeValue>,
                name: &str| run.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(text(&run, "execution").as_deref(), Some(EXECUTION));
    assert_eq!(text(&run, "schedule").as_deref(), Some("nightly"));
    assert!(
        text(&run, "open_key").is_some_and(|k| k.starts_with(&format!("{EXECUTION}#"))),
        "{run:?}"
    );

    // Another execution of the same occurrence (a duplicate delivery) replays the job: the
    // execution is not part of the fingerprint, and the run keeps its first execution.
    let other = "arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e2";
    let again = h.invoke(scheduled_execute(other)).await.unwrap();
    assert_eq!(
        (&again["job_id"], &again["replay"]),
        (&json!(job_id), &json!(true))
    );
    assert_eq!(h.emulator.stats().jobs_created, 1);

    let answer = h.invoke(status_change("ABORTED")).await.unwrap();
    assert_eq!(answer["runs"][0]["fate"], "suspended", "{answer}");
    assert!(h.emulator.job(&job_id).unwrap().suspended);
    let run = the_run(&h).await;
    assert_eq!(text(&run, "end_status").as_deref(), Some("orphaned"));
}

#[tokio::test]
async fn an_execution_that_disagrees_with_the_key_is_refused_before_anything_is_sent() {
    let h = ledger().await;
    let mut event =
        scheduled_execute("arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e2");
    event["idempotency_key"] = json!(format!("{EXECUTION}#ExecuteBot"));
    let err = h.invoke(event).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidRequest");
    assert!(
        err.error_message.contains("`execution`"),
        "{}",
        err.error_message
    );
    assert!(requests_to(&h.emulator, "POST", "/demo/bots/").is_empty());
}

#[tokio::test]
async fn keep_running_leaves_the_job_and_a_succeeded_execution_is_not_even_looked_up() {
    let h = ledger().await;
    let job_id = start(&h, json!({"keep_running": true})).await;
    let run = the_run(&h).await;
    assert_eq!(
        run.get("keep_running").and_then(|v| v.as_bool().ok()),
        Some(&true)
    );

    let answer = h.invoke(status_change("FAILED")).await.unwrap();
    assert_eq!(answer["runs"][0]["fate"], "kept_running", "{answer}");
    let answer = h.invoke(status_change("SUCCEEDED")).await.unwrap();
    assert_eq!(answer["runs"], json!([]), "{answer}");
    assert!(!h.emulator.job(&job_id).unwrap().suspended);
    assert!(requests_to(&h.emulator, "DELETE", "/demo/jobs/").is_empty());
}

#[tokio::test]
async fn another_step_functions_event_is_refused_by_name() {
    let h = ledger().await;
    let mut event = status_change("ABORTED");
    event["detail-type"] = json!("Step Functions State Machine Status Change");
    let err = h.invoke(event).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidRequest");
    assert!(
        err.error_message.contains("detail-type"),
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn the_sweep_records_the_end_nobody_followed_and_closes_the_run() {
    let h = ledger().await;
    // echo_bot, no execution and no follower: the job ends at Cloud BOT unseen.
    let started = h
        .invoke(json!({"public_id": "demo", "bot_id": "echo_bot"}))
        .await
        .unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    // Waits on the emulator's own record of the job's end (no look through the function).
    for _ in 0..100 {
        if h.emulator.job(&job_id).unwrap().status != 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(the_run(&h).await.contains_key("open"));

    let answer = h.invoke(json!({"operation": "sweep"})).await.unwrap();
    assert_eq!(answer["runs"][0]["fate"], "ended", "{answer}");
    let run = the_run(&h).await;
    let text = |name: &str| run.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(text("end_status").as_deref(), Some("succeeded"));
    assert!(!run.contains_key("open"), "{run:?}");
    // Nothing open is left for the next sweep.
    let answer = h.invoke(json!({"operation": "sweep"})).await.unwrap();
    assert_eq!(answer["runs"], json!([]), "{answer}");
    assert!(requests_to(&h.emulator, "DELETE", "/demo/jobs/").is_empty());
}
