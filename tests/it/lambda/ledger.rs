//! The run ledger through the handler, against moto (a table shaped like template.yaml's
//! RunLedgerTable) and the emulator: a started job is one run, a replay adds none, a run the
//! HTTP API started names the IAM principal that signed it, `refer_job` records the end once, a ledger that cannot be written never fails or repeats a run, and no
//! item holds anything secret.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use super::{Harness, Setup, Store};
use crate::support::moto::serial_moto;
use crate::support::{eventually, requests_to};

type Item = HashMap<String, AttributeValue>;

async fn start(ledger: Store) -> Harness {
    Harness::start_with(Setup {
        ledger,
        ..Setup::default()
    })
    .await
}

async fn runs(h: &Harness) -> Vec<Item> {
    serial_moto()
        .items(h.ledger_table.as_deref().expect("a ledger table"))
        .await
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// Every string in `item`, nested ones included.
fn strings(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::L(list) => list.iter().for_each(|v| strings(v, out)),
        AttributeValue::M(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out);
        }),
        _ => {}
    }
}

/// Fails when any attribute name or value of any item contains one of `secrets`.
fn assert_nothing_secret(items: &[Item], secrets: &[&str]) {
    for item in items {
        let mut all = Vec::new();
        for (name, value) in item {
            all.push(name.clone());
            strings(value, &mut all);
        }
        for secret in secrets {
            assert!(
                all.iter().all(|s| !s.contains(secret)),
                "a ledger item holds {secret:?}: {item:?}"
            );
        }
    }
}

async fn job_ended(h: &Harness, job_id: &str) {
    eventually(Duration::from_secs(10), || {
        h.emulator.job(job_id).filter(|j| j.status != 2).map(drop)
    })
    .await
    .expect("the job ends");
}

fn refer(job_id: &str) -> Value {
    json!({"operation": "refer_job", "public_id": "demo", "job_id": job_id})
}

#[tokio::test]
async fn a_keyed_execute_writes_one_run_and_its_replay_writes_none() {
    let h = start(Store::Table).await;
    let request = json!({
        "idempotency_key": "order-7",
        "public_id": "demo",
        "bot_id": "echo_bot",
        "input": {"message": "input-value-kept-for-rerun"}
    });
    let first = h.invoke(request.clone()).await.unwrap();
    assert_eq!(
        h.ledger_calls.operations(),
        ["UpdateItem"],
        "one request per start"
    );
    let again = h.invoke(request).await.unwrap();
    assert_eq!(again["replay"], true);
    assert_eq!(
        h.ledger_calls.operations(),
        ["UpdateItem"],
        "a replay writes nothing"
    );

    let items = runs(&h).await;
    assert_eq!(items.len(), 1);
    let run = &items[0];
    let job_id = first["job_id"].as_str().unwrap();
    assert_eq!(text(run, "run"), Some(format!("demo/{job_id}").as_str()));
    assert_eq!(text(run, "bot"), Some("demo/echo_bot"));
    assert_eq!(text(run, "trigger"), Some("direct"));
    assert_eq!(text(run, "request_key"), Some("request:order-7"));
    assert_eq!(text(run, "status"), Some("executing"));
    assert_eq!(
        text(run, "job_endpoint"),
        first["job_reference_endpoint"].as_str()
    );
    let started = number(run, "started_at").unwrap();
    assert_eq!(number(run, "seen_executing"), Some(started));
    assert_eq!(
        text(run, "month"),
        Some(cloudbot_trigger::ledger::month_of(started).as_str())
    );
    // The TTL: 400 days after the start by default.
    assert_eq!(
        number(run, "expires_at"),
        Some(started / 1000 + 400 * 86_400)
    );
    assert!(run.get("ended_at").is_none());
    // The BOT input is kept (bounded) so `cloudbot rerun` can start the run again
    // (docs/ledger.md, "The input"); credentials never are.
    assert_eq!(
        text(run, "input"),
        Some(r#"{"message":"input-value-kept-for-rerun"}"#)
    );
    assert_nothing_secret(&items, &["demo-access-token", "demo-secret-key"]);
}

#[tokio::test]
async fn a_run_started_through_the_http_api_names_the_principal_that_signed_it() {
    let h = start(Store::Table).await;
    let arn = "arn:aws:sts::123456789012:assumed-role/Operators/alice";
    // The HTTP API's IAM authorizer puts the verified signer in the event (template.yaml:
    // AWS_IAM on every route but the callbacks').
    let mut event = h.event("apigw-v2-execute.json", None);
    event["requestContext"]["authorizer"] = json!({"iam": {
        "accessKey": "ASIAEXAMPLEACCESSKEY", "accountId": "123456789012",
        "callerId": "AROAEXAMPLE:alice", "principalOrgId": null,
        "userArn": arn, "userId": "AROAEXAMPLE:alice"}});
    let answer = h.invoke(event).await.unwrap();
    assert_eq!(answer["statusCode"], 202, "{answer}");
    let items = runs(&h).await;
    assert_eq!(items.len(), 1);
    assert_eq!(text(&items[0], "trigger"), Some("api"));
    assert_eq!(text(&items[0], "caller"), Some(arn));
    // Only the ARN: not the access key id the request was signed with.
    assert_nothing_secret(&items, &["ASIAEXAMPLEACCESSKEY", "caller-token-that-must"]);
    // A direct invoke names no caller.
    h.invoke(json!({"public_id": "demo", "bot_id": "echo_bot"}))
        .await
        .unwrap();
    let items = runs(&h).await;
    assert_eq!(items.iter().filter(|i| i.contains_key("caller")).count(), 1);
}

#[tokio::test]
async fn refer_job_records_the_end_once_with_its_history() {
    let h = start(Store::Table).await;
    let error = h
        .invoke(json!({"public_id": "demo", "bot_id": "error_bot"}))
        .await
        .unwrap();
    let job_id = error["job_id"].as_str().unwrap().to_owned();
    // Still executing: a poll that learns nothing new writes nothing (it reads the run's
    // maximum run time: docs/overrun.md).
    h.ledger_calls.clear();
    let executing = h.invoke(refer(&job_id)).await.unwrap();
    if executing["status"] == "executing" {
        let operations = h.ledger_calls.operations();
        assert!(
            operations.iter().all(|op| op == "GetItem"),
            "{operations:?}"
        );
    }
    job_ended(&h, &job_id).await;
    h.ledger_calls.clear();
    let ended = h.invoke(refer(&job_id)).await.unwrap();
    assert_eq!(ended["status"], "error");
    assert_eq!(h.ledger_calls.operations(), ["UpdateItem"]);
    let first = runs(&h).await.remove(0);
    assert_eq!(text(&first, "status"), Some("error"));
    assert_eq!(text(&first, "end_status"), Some("error"));
    assert_eq!(text(&first, "trigger"), Some("direct"), "the start is kept");
    let ended_at = number(&first, "ended_at").unwrap();
    assert_eq!(number(&first, "seen_error"), Some(ended_at));
    assert!(number(&first, "seen_executing").unwrap() <= ended_at);
    assert!(number(&first, "elapsed_s").is_some());
    assert!(text(&first, "message").is_some_and(|m| !m.is_empty()));

    // A second look at the ended job changes nothing.
    h.invoke(refer(&job_id)).await.unwrap();
    let second = runs(&h).await.remove(0);
    assert_eq!(first, second);
}

#[tokio::test]
async fn a_job_first_learned_by_a_poll_is_recorded_from_cloud_bots_answer() {
    // The execute ran without a ledger (another stack, or before the ledger existed).
    let h = start(Store::Table).await;
    let job_id = h.emulator_job().await;
    job_ended(&h, &job_id).await;
    h.invoke(refer(&job_id)).await.unwrap();
    let items = runs(&h).await;
    assert_eq!(items.len(), 1);
    let run = &items[0];
    assert_eq!(text(run, "bot"), Some("demo/echo_bot"));
    assert_eq!(text(run, "end_status"), Some("succeeded"));
    assert!(run.get("trigger").is_none(), "the origin is not known");
    assert!(number(run, "started_at").is_some() && text(run, "month").is_some());
}

#[tokio::test]
async fn a_ledger_that_cannot_be_written_never_fails_or_repeats_a_run() {
    let h = start(Store::Unreachable).await;
    let answer = h
        .invoke(json!({"idempotency_key": "k-down", "public_id": "demo", "bot_id": "echo_bot"}))
        .await
        .expect("the execute answers normally");
    assert_eq!(answer["replay"], false);
    assert_eq!(requests_to(&h.emulator, "POST", "/demo/bots/").len(), 1);
    assert!(
        !h.ledger_calls.operations().is_empty(),
        "the write was tried"
    );
    // The claim was completed all the same: the duplicate is a replay.
    let again = h
        .invoke(json!({"idempotency_key": "k-down", "public_id": "demo", "bot_id": "echo_bot"}))
        .await
        .unwrap();
    assert_eq!(again["replay"], true);
    assert_eq!(h.emulator.jobs().len(), 1);
    let job_id = answer["job_id"].as_str().unwrap();
    job_ended(&h, job_id).await;
    let ended = h.invoke(refer(job_id)).await.expect("refer_job answers");
    assert_eq!(ended["status"], "succeeded");
}

#[tokio::test]
async fn without_a_ledger_nothing_is_written() {
    let h = start(Store::None).await;
    h.invoke(json!({"public_id": "demo", "bot_id": "echo_bot"}))
        .await
        .unwrap();
    assert!(h.ledger_calls.operations().is_empty());
}

impl Harness {
    /// An echo_bot job started at the emulator without the function.
    async fn emulator_job(&self) -> String {
        let client = crate::support::client_for(&self.emulator.base_url());
        crate::support::execute_echo(&client, Duration::from_secs(5))
            .await
            .unwrap()
            .job
            .job_id
    }
}
