//! Usage and the budget through the handler, against moto (the ledger table as template.yaml
//! declares it) and the emulator (docs/usage.md): the month's BOT-seconds summed from the
//! ledger's `by_month` index and the usage counter equal the emulator's own elapsed times over
//! succeeded, failed and suspended runs; past the stop level a normal execute is refused with
//! nothing sent and its key released, a high-priority one runs.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_trigger::cloudbot::{ApiBase, JobEndpoint, JobStatus};
use cloudbot_trigger::ledger::{attribute, index, month_of};
use cloudbot_trigger::usage::{CounterKey, MonthUsage, RunFigures};
use serde_json::{Value, json};

use super::{Harness, Setup, Store};
use crate::support::moto::serial_moto;
use crate::support::{call, client_for, credentials, eventually, requests_to};

type Item = HashMap<String, AttributeValue>;

const T: Duration = Duration::from_secs(10);

async fn start(env: &[(&'static str, &str)]) -> Harness {
    Harness::start_with(Setup {
        ledger: Store::Table,
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        ..Setup::default()
    })
    .await
}

fn now_ms() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap()
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// The runs of `month` through the `by_month` index, as `cloudbot usage` reads them.
async fn month_runs(table: &str, month: &str) -> Vec<RunFigures> {
    let page = serial_moto()
        .dynamodb()
        .query()
        .table_name(table)
        .index_name(index::BY_MONTH)
        .key_condition_expression("#m = :m")
        .expression_attribute_names("#m", attribute::MONTH)
        .expression_attribute_values(":m", AttributeValue::S(month.to_owned()))
        .send()
        .await
        .unwrap();
    page.items()
        .iter()
        .map(|item| RunFigures {
            bot: item[attribute::BOT].as_s().unwrap().clone(),
            elapsed_s: item
                .contains_key("ended_at")
                .then(|| number(item, "elapsed_s").unwrap()),
        })
        .collect()
}

async fn counter(table: &str, month: &str) -> Option<Item> {
    serial_moto()
        .dynamodb()
        .get_item()
        .table_name(table)
        .key(
            attribute::RUN,
            AttributeValue::S(CounterKey::new("demo", month).as_str().to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
}

async fn set_counter(table: &str, month: &str, seconds: u64) {
    serial_moto()
        .dynamodb()
        .put_item()
        .table_name(table)
        .item(
            attribute::RUN,
            AttributeValue::S(CounterKey::new("demo", month).as_str().to_owned()),
        )
        .item("bot_seconds", AttributeValue::N(seconds.to_string()))
        .send()
        .await
        .unwrap();
}

fn execute(bot: &str) -> Value {
    json!({"public_id": "demo", "bot_id": bot})
}

#[tokio::test]
async fn usage_sums_equal_the_emulators_elapsed_times_over_succeeded_failed_and_suspended_runs() {
    // A budget far from its stop: every run goes, and the counter is kept.
    let h = start(&[("CLOUDBOT_BUDGET_MONTHLY_SECONDS", "1000000")]).await;
    let base = ApiBase::parse(&h.emulator.base_url()).unwrap();
    let mut jobs = Vec::new();
    for bot in ["echo_bot", "error_bot", "slow_bot", "slow_bot", "echo_bot"] {
        let answer = h.invoke(execute(bot)).await.unwrap();
        let url = answer["job_reference_endpoint"].as_str().unwrap();
        jobs.push((bot, JobEndpoint::parse(&base, url, "job").unwrap()));
    }
    // One slow run is suspended once it has run a second (an elapsed time that is not 0).
    let client = client_for(&h.emulator.base_url());
    let creds = credentials();
    let suspended = &jobs[3].1;
    let until = tokio::time::Instant::now() + T;
    while client
        .refer_job(&call(&creds, T), suspended)
        .await
        .unwrap()
        .elapsed_time
        < Some(1)
    {
        assert!(tokio::time::Instant::now() < until, "the slow job runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .suspend_job(&call(&creds, T), suspended)
        .await
        .unwrap();
    // Every job ends at the emulator; the function learns each end with refer_job.
    let mut expected: HashMap<String, u64> = HashMap::new();
    for (bot, job) in &jobs {
        let id = job.job_id().as_str().to_owned();
        eventually(T, || {
            h.emulator.job(&id).filter(|j| j.status != 2).map(drop)
        })
        .await
        .expect("the job ends");
        let learned = h
            .invoke(json!({"operation": "refer_job", "job_reference_endpoint": job.url()}))
            .await
            .unwrap();
        assert_ne!(learned["status"], "executing");
        // The emulator's own elapsed time, read apart from the function.
        let truth = client.refer_job(&call(&creds, T), job).await.unwrap();
        assert!(truth.status.is_final(), "{:?}", truth.status);
        *expected.entry(format!("demo/{bot}")).or_default() +=
            u64::try_from(truth.elapsed_time.unwrap()).unwrap();
    }
    assert!(
        h.emulator
            .job(suspended.job_id().as_str())
            .unwrap()
            .suspended
    );
    let error = client
        .refer_job(&call(&creds, T), &jobs[1].1)
        .await
        .unwrap();
    assert_eq!(error.status, JobStatus::Error);
    assert!(
        expected["demo/slow_bot"] >= 4,
        "3 s run + a suspended one: {expected:?}"
    );

    let table = h.ledger_table.as_deref().unwrap();
    let month = month_of(now_ms());
    let runs = month_runs(table, &month).await;
    let usage = MonthUsage::of(&month, &runs, Some(1_000_000), now_ms());
    let summed: HashMap<String, u64> = usage
        .bots
        .iter()
        .map(|b| (b.bot.clone(), b.seconds))
        .collect();
    assert_eq!(summed, expected);
    assert_eq!((usage.runs, usage.open), (5, 0));
    let total: u64 = expected.values().sum();
    assert_eq!(usage.seconds, total);
    // The counter an execute reads holds the same sum, each end added once.
    let item = counter(table, &month).await.expect("the counter");
    assert_eq!(number(&item, "bot_seconds"), Some(total));
    assert_eq!(number(&item, "runs"), Some(5));
    // A second look at an ended job adds nothing.
    h.invoke(json!({"operation": "refer_job", "job_reference_endpoint": jobs[2].1.url()}))
        .await
        .unwrap();
    let again = counter(table, &month).await.unwrap();
    assert_eq!(number(&again, "bot_seconds"), Some(total));
}

#[tokio::test]
async fn past_the_stop_level_a_normal_run_is_refused_unsent_and_runs_once_the_budget_allows() {
    // Stop at 50 of 100 s; the counter read on every execute, so the test can move it.
    let h = start(&[
        ("CLOUDBOT_BUDGET_MONTHLY_SECONDS", "100"),
        ("CLOUDBOT_BUDGET_STOP_PERCENT", "50"),
        ("CLOUDBOT_BUDGET_CACHE_SECONDS", "0"),
    ])
    .await;
    let table = h.ledger_table.clone().unwrap();
    let month = month_of(now_ms());
    set_counter(&table, &month, 60).await;
    let normal = json!({"idempotency_key": "nightly-7", "public_id": "demo", "bot_id": "echo_bot"});

    let err = h.invoke(normal.clone()).await.unwrap_err();
    assert_eq!(err.error_type, "Budget.Exhausted", "{err:?}");
    assert!(
        err.error_message.contains("60 s counted, stop at 50 s"),
        "{err:?}"
    );
    assert!(
        requests_to(&h.emulator, "POST", "/demo/bots/").is_empty(),
        "nothing sent"
    );
    // Provably not started: the key is free again, not unknown.
    let records = serial_moto().items(h.table.as_deref().unwrap()).await;
    let record = records
        .iter()
        .find(|r| r["record_key"].as_s().unwrap() == "request:nightly-7")
        .expect("the claim's record");
    assert_eq!(record["state"].as_s().unwrap(), "released");

    // High priority still runs.
    let mut high = execute("echo_bot");
    high["priority"] = json!("high");
    let answer = h.invoke(high).await.unwrap();
    assert!(answer["job_id"].is_string(), "{answer}");
    let posts = requests_to(&h.emulator, "POST", "/demo/bots/");
    assert_eq!(posts.len(), 1);

    // Once the budget allows (a raised allowance, or the next month), the same request runs
    // once: the second delivery is a replay.
    set_counter(&table, &month, 10).await;
    let first = h.invoke(normal.clone()).await.unwrap();
    assert!(first["job_id"].is_string(), "{first}");
    let replay = h.invoke(normal).await.unwrap();
    assert_eq!(replay["replay"], true);
    assert_eq!(replay["job_id"], first["job_id"]);
    assert_eq!(requests_to(&h.emulator, "POST", "/demo/bots/").len(), 2);
}

#[tokio::test]
async fn a_priority_that_is_not_high_or_normal_is_refused_by_name() {
    let h = start(&[]).await;
    for bad in [json!("urgent"), json!(1)] {
        let mut request = execute("echo_bot");
        request["priority"] = bad;
        let err = h.invoke(request).await.unwrap_err();
        assert_eq!(err.error_type, "InvalidRequest");
        assert!(err.error_message.contains("`priority`"), "{err:?}");
    }
    assert_eq!(h.upstream_requests(), 0);
}
