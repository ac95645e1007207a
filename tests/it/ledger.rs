//! The run ledger's adapter against moto (a table shaped like template.yaml's RunLedgerTable,
//! on the moto that serves one request at a time, as DynamoDB's conditions are atomic): the
//! end of a run is recorded by exactly one of many concurrent learners, a start that arrives
//! after the end keeps both, a callback recorded between an overrun's suspend and the
//! suspender's own write records `overrun` (the suspend mark), and runs are found by BOT, month
//! and schedule occurrence with a Query, never a Scan.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_trigger::cloudbot::{ApiBase, JobEndpoint, JobStatus};
use cloudbot_trigger::idempotency::RecordKey;
use cloudbot_trigger::ledger::{
    Learned, Ledger, LedgerTable, OVERRUN, Observed, Origin, index, month_of,
};
use cloudbot_trigger::sdk::{StoreWarmUp, warm_up_dynamodb};
use cloudbot_trigger::table::DynamoDbStore;
use cloudbot_trigger::trigger::Trigger;
use tokio::time::Instant;

use crate::support::moto::serial_moto;

async fn ledger() -> (Arc<Ledger>, String) {
    let table = serial_moto().create_ledger_table("ledger-store").await;
    // Lean from the first write: the store learned its call path from one read, as the
    // function's ledger learns it from the init's warm-up of the idempotency table.
    let store = DynamoDbStore::new(serial_moto().dynamodb(), table.clone());
    let warm = warm_up_dynamodb(&store, "run", Duration::from_secs(5)).await;
    assert!(warm == StoreWarmUp::Answered && store.is_lean());
    let ledger = Ledger::new(LedgerTable::on(store), Duration::from_secs(400 * 86_400));
    (Arc::new(ledger), table)
}

fn job(job_id: &str) -> JobEndpoint {
    let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
    JobEndpoint::parse(
        &base,
        &format!("https://api.c-bot.pro/demo/jobs/{job_id}"),
        "j",
    )
    .unwrap()
}

fn observed(status: JobStatus, bot_id: &'static str) -> Observed<'static> {
    Observed {
        status,
        bot_id,
        start_time: None,
        elapsed_s: Some(3),
        message: Some("finished"),
        output_omitted: false,
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn of_concurrent_learners_of_one_end_exactly_one_records_it() {
    let (ledger, table) = ledger().await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let ledger = Arc::clone(&ledger);
        // A callback and polls at once, some seeing success, one the job's start.
        tasks.spawn(async move {
            let origin = (n == 0).then(|| Origin::of(Trigger::Direct, None, true, None, "req"));
            let status = if n == 0 {
                JobStatus::Executing
            } else {
                JobStatus::Succeeded
            };
            ledger
                .learned(
                    &job("race"),
                    &observed(status, "echo_bot"),
                    origin,
                    deadline(),
                )
                .await
                .unwrap()
        });
    }
    let mut learned = Vec::new();
    while let Some(result) = tasks.join_next().await {
        learned.push(result.unwrap());
    }
    let ends = learned.iter().filter(|l| l.recorded_end()).count();
    assert_eq!(ends, 1, "{learned:?}");
    assert_eq!(
        learned
            .iter()
            .filter(|l| **l == Learned::AlreadyEnded)
            .count(),
        6,
        "{learned:?}"
    );
    let items = serial_moto().items(&table).await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["status"].as_s().unwrap(), "succeeded");
    assert_eq!(
        item["trigger"].as_s().unwrap(),
        "step_functions",
        "the start is kept"
    );
    assert!(item.contains_key("seen_executing") && item.contains_key("seen_succeeded"));
}

#[tokio::test]
async fn a_start_written_after_the_end_keeps_the_end_and_adds_the_origin() {
    let (ledger, table) = ledger().await;
    let end = ledger
        .learned(
            &job("late"),
            &observed(JobStatus::Error, ""),
            None,
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(end, Learned::EndRecorded);
    // The execute's answer already said the job had ended (a synchronous wait).
    let origin = Origin::of(Trigger::ApiGatewayHttp, None, false, None, "req");
    let start = ledger
        .learned(
            &job("late"),
            &observed(JobStatus::Error, "error_bot"),
            Some(origin),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(start, Learned::AlreadyEnded);
    let item = &serial_moto().items(&table).await[0];
    assert_eq!(item["end_status"].as_s().unwrap(), "error");
    assert_eq!(item["trigger"].as_s().unwrap(), "api");
    assert_eq!(item["bot"].as_s().unwrap(), "demo/error_bot");
}

async fn query(table: &str, index: &str, key: &str, value: &str) -> Vec<String> {
    let found = serial_moto()
        .dynamodb()
        .query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("#k = :v")
        .expression_attribute_names("#k", key)
        .expression_attribute_values(":v", AttributeValue::S(value.to_owned()))
        .send()
        .await
        .unwrap();
    found
        .items()
        .iter()
        .map(|item| item["run"].as_s().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn runs_are_found_by_bot_month_and_schedule_occurrence_without_a_scan() {
    let (ledger, table) = ledger().await;
    let arn = "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/default/nightly";
    let key = RecordKey::schedule(arn, "2026-12-07T00:00:00Z").unwrap();
    let scheduled = Origin::of(Trigger::Scheduler, Some(&key), false, None, "r1");
    let direct = Origin::of(Trigger::Direct, None, false, None, "r2");
    for (id, bot, origin) in [("a", "echo_bot", scheduled), ("b", "error_bot", direct)] {
        ledger
            .learned(
                &job(id),
                &observed(JobStatus::Executing, bot),
                Some(origin),
                deadline(),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        query(&table, index::BY_BOT, "bot", "demo/echo_bot").await,
        ["demo/a"]
    );
    let month = month_of(u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap());
    let mut in_month = query(&table, index::BY_MONTH, "month", &month).await;
    in_month.sort();
    assert_eq!(in_month, ["demo/a", "demo/b"]);
    assert_eq!(
        query(&table, index::BY_SCHEDULE, "schedule", "nightly").await,
        ["demo/a"]
    );
}

/// The job as Cloud BOT reads it after a suspend.
fn suspended() -> Observed<'static> {
    Observed {
        message: Some("The job was suspended"),
        ..observed(JobStatus::Error, "slow_bot")
    }
}

async fn started(ledger: &Ledger, id: &str) {
    let origin = Origin::of(Trigger::Direct, None, true, None, "req");
    let start = ledger
        .learned(
            &job(id),
            &observed(JobStatus::Executing, "slow_bot"),
            Some(origin),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(start, Learned::Noted);
}

#[tokio::test]
async fn a_callback_recorded_between_the_suspend_and_the_overruns_own_write_records_overrun() {
    let (ledger, table) = ledger().await;
    started(&ledger, "race").await;
    // The look marks the run, then sends the DELETE (src/service/overrun.rs).
    ledger
        .mark_suspending(&job("race"), OVERRUN, deadline())
        .await
        .unwrap();
    // Cloud BOT's callback for the suspended job is received first: it reads `error`.
    let (learned, ended) = ledger
        .learned_end(&job("race"), &suspended(), None, deadline())
        .await
        .unwrap();
    assert_eq!(learned, Learned::EndRecorded);
    // Its event and usage count tell the truth: the run overran.
    let ended = ended.unwrap();
    assert_eq!(ended.end.status, OVERRUN);
    assert_eq!(ended.trigger.as_deref(), Some("step_functions"));
    // The look's own end write comes second and changes nothing.
    let (learned, ended) = ledger
        .suspended_end(&job("race"), &suspended(), OVERRUN, deadline())
        .await
        .unwrap();
    assert_eq!((learned, ended), (Learned::AlreadyEnded, None));
    let item = &serial_moto().items(&table).await[0];
    assert_eq!(item["status"].as_s().unwrap(), "overrun");
    assert_eq!(item["end_status"].as_s().unwrap(), "overrun");
    assert_eq!(item["message"].as_s().unwrap(), "The job was suspended");
    assert!(item.contains_key("seen_error") && !item.contains_key("open"));
}

#[tokio::test]
async fn the_mark_changes_only_an_error_end_of_an_open_run_and_a_refused_suspend_removes_it() {
    let (ledger, table) = ledger().await;
    // Cloud BOT refused the suspend (a token without Suspend): the mark is taken away, and
    // the job's own failure later is an `error`.
    started(&ledger, "refused").await;
    ledger
        .mark_suspending(&job("refused"), OVERRUN, deadline())
        .await
        .unwrap();
    ledger
        .unmark_suspending(&job("refused"), deadline())
        .await
        .unwrap();
    let (_, ended) = ledger
        .learned_end(
            &job("refused"),
            &observed(JobStatus::Error, "slow_bot"),
            None,
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(ended.unwrap().end.status, "error");
    // The job succeeded before the suspend reached it: it succeeded.
    started(&ledger, "finished").await;
    ledger
        .mark_suspending(&job("finished"), OVERRUN, deadline())
        .await
        .unwrap();
    let (_, ended) = ledger
        .learned_end(
            &job("finished"),
            &observed(JobStatus::Succeeded, "slow_bot"),
            None,
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(ended.unwrap().end.status, "succeeded");
    // A run whose end is recorded keeps it, and a job without a record gets no stray item.
    ledger
        .mark_suspending(&job("refused"), OVERRUN, deadline())
        .await
        .unwrap();
    ledger
        .mark_suspending(&job("unrecorded"), OVERRUN, deadline())
        .await
        .unwrap();
    let mut items = serial_moto().items(&table).await;
    items.sort_by_key(|item| item["run"].as_s().unwrap().clone());
    let runs: Vec<&str> = items
        .iter()
        .map(|i| i["run"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(runs, ["demo/finished", "demo/refused"]);
    let status = |i: usize| items[i]["end_status"].as_s().unwrap().as_str();
    assert_eq!((status(0), status(1)), ("succeeded", "error"));
    assert!(!items[1].contains_key("suspending"), "{:?}", items[1]);
}
