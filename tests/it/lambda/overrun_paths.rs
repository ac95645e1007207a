//! The maximum run time on every path besides a poll (issue 22, docs/overrun.md "Where the
//! maximum is enforced"), through the handler against the emulator (slow_bot runs 3 s) and
//! moto's tables: every trigger records the run's maximum in the ledger; a synchronous execute
//! answered with its job past its maximum suspends it (the emulator records the DELETE) and
//! fails `Job.Overrun`, a duplicate replays and starts nothing; a callback that finds its job
//! executing past its maximum suspends it and fails the task `Job.Overrun`; a callback for a
//! run a poll already ended overrun re-opens nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudbot_trigger::callback::{Callbacks, SettleFuture, Settled, TaskSettler, TaskToken};
use cloudbot_trigger::table::DynamoDbStore;
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

use super::{Harness, Setup, Store, http_body};
use crate::support::moto::serial_moto;
use crate::support::requests_to;

/// What the function told Step Functions: (`success`|`failure`, error, output or cause).
#[derive(Debug, Clone, Default)]
struct Told(Arc<Mutex<Vec<(String, String, String)>>>);

impl Told {
    fn all(&self) -> Vec<(String, String, String)> {
        self.0.lock().unwrap().clone()
    }
}

impl TaskSettler for Told {
    fn succeed<'a>(&'a self, _: &'a TaskToken, output: &'a str) -> SettleFuture<'a> {
        let entry = ("success".to_owned(), String::new(), output.to_owned());
        self.0.lock().unwrap().push(entry);
        Box::pin(async { Ok(Settled::Accepted) })
    }

    fn fail<'a>(&'a self, _: &'a TaskToken, error: &'a str, cause: &'a str) -> SettleFuture<'a> {
        let entry = ("failure".to_owned(), error.to_owned(), cause.to_owned());
        self.0.lock().unwrap().push(entry);
        Box::pin(async { Ok(Settled::Accepted) })
    }
}

/// A harness with the run ledger and `env`.
async fn harness(env: Vec<(&'static str, String)>) -> Harness {
    Harness::start_with(Setup {
        ledger: Store::Table,
        env,
        ..Setup::default()
    })
    .await
}

/// `h` with the callback side wired as main.rs does, Step Functions replaced by `told`. The
/// callback base is a closed port: the emulator's own deliveries fail, and each test delivers
/// the callback itself when it means to.
fn with_callbacks(h: Harness, told: &Told) -> Harness {
    let base = url::Url::parse("http://127.0.0.1:9/callbacks").unwrap();
    let table = h.table.clone().expect("an idempotency table");
    let callbacks = Callbacks::new(
        DynamoDbStore::new(serial_moto().dynamodb(), table),
        told.clone(),
        &base,
        Duration::from_secs(86_400),
    );
    Harness {
        service: h.service.with_callbacks(Some(callbacks)),
        ..h
    }
}

/// The ledger's items, each as attribute -> string or number text.
async fn runs(h: &Harness) -> Vec<std::collections::BTreeMap<String, String>> {
    let table = h.ledger_table.as_deref().expect("a ledger");
    serial_moto()
        .items(table)
        .await
        .iter()
        .map(|item| {
            item.iter()
                .filter_map(|(k, v)| {
                    Some((k.clone(), v.as_s().or_else(|_| v.as_n()).ok()?.clone()))
                })
                .collect()
        })
        .collect()
}

fn refer(job_id: &str) -> Value {
    json!({"operation": "refer_job", "public_id": "demo", "job_id": job_id})
}

fn deletes(h: &Harness) -> usize {
    requests_to(&h.emulator, "DELETE", "/demo/jobs/").len()
}

/// The job ids the emulator created, in order.
fn job_ids(h: &Harness) -> Vec<String> {
    h.emulator.jobs().into_iter().map(|j| j.job_id).collect()
}

#[tokio::test]
async fn every_trigger_records_the_runs_maximum_in_the_ledger() {
    let h = harness(Vec::new()).await;
    let with_max = |mut request: Value, max: u64| {
        request["max_run_seconds"] = json!(max);
        request
    };
    // One execute per trigger, each with its own maximum (the trigger's name in the record
    // says which).
    let direct = with_max(json!({"public_id": "demo", "bot_id": "echo_bot"}), 11);
    let mut api_v1 = h.event("apigw-v1-execute.json", None);
    let body: Value = serde_json::from_str(api_v1["body"].as_str().unwrap()).unwrap();
    api_v1["body"] = json!(with_max(body, 12).to_string());
    let mut eventbridge = h.event("eventbridge-custom.json", None);
    eventbridge["detail"] = with_max(eventbridge["detail"].clone(), 13);
    let mut scheduler = h.event("scheduler-envelope.json", None);
    scheduler["request"] = with_max(scheduler["request"].clone(), 14);
    let queue = json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "AQEBm-1",
        "body": with_max(json!({"public_id": "demo", "bot_id": "echo_bot"}), 15).to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1"},
        "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:app-runs-normal",
        "awsRegion": "us-east-1"}]});
    // A managed schedule's tick: the definition's policies.max_run_seconds (no request one).
    let endpoint = format!("{}/demo/bots/echo_bot/jobs", h.emulator.base_url());
    let definition = json!({"name": "policy-max", "at": "09:00", "recurrence": "daily",
        "bot_endpoint": endpoint, "policies": {"max_run_seconds": 16}});
    let schedule = cloudbot_calendar::Schedule::from_value(definition).unwrap();
    let mut managed = cloudbot_calendar::wire::target_input(&schedule);
    managed["schedule"]["schedule_arn"] =
        json!("arn:aws:scheduler:us-east-1:123456789012:schedule/cloudbot-trigger/policy-max");
    managed["schedule"]["scheduled_time"] = json!("2026-11-24T00:00:00Z");
    managed["schedule"]["backfill"] = json!(true);
    for event in [direct, api_v1, eventbridge, scheduler, queue, managed] {
        let answer = h.invoke(event.clone()).await.expect("started");
        assert!(
            answer
                .get("batchItemFailures")
                .is_none_or(|f| f == &json!([])),
            "{answer}"
        );
    }
    let mut recorded: Vec<(String, String)> = runs(&h)
        .await
        .into_iter()
        .map(|run| {
            let schedule = run
                .get("schedule")
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            (
                format!(
                    "{}{schedule}",
                    run.get("trigger").cloned().unwrap_or_default()
                ),
                run.get("max_run_s").cloned().unwrap_or_default(),
            )
        })
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        [
            ("api", "12"),
            ("direct", "11"),
            ("eventbridge", "13"),
            ("queue", "15"),
            ("scheduler cloudbot-nightly", "14"),
            ("scheduler policy-max", "16"),
        ]
        .map(|(t, m)| (t.to_owned(), m.to_owned())),
    );
}

#[tokio::test]
async fn a_synchronous_execute_answered_past_its_maximum_suspends_the_job_and_fails_overrun() {
    let h = harness(Vec::new()).await;
    // Cloud BOT waits 2.5 s of slow_bot's 3 s: the answer reads executing for 2 s.
    let request = json!({"public_id": "demo", "bot_id": "slow_bot", "timeout": 2500,
                         "max_run_seconds": 1, "idempotency_key": "sync-overrun"});
    let err: Diagnostic = h.invoke(request.clone()).await.unwrap_err();
    assert_eq!(err.error_type, "Job.Overrun", "{}", err.error_message);
    assert!(
        err.error_message.contains("maximum of 1 s"),
        "{}",
        err.error_message
    );
    let ids = job_ids(&h);
    assert_eq!(ids.len(), 1);
    let job = h.emulator.job(&ids[0]).unwrap();
    assert!(job.suspended, "the emulator recorded the suspend: {job:?}");
    assert_eq!(h.emulator.stats().jobs_suspended, 1);
    let runs = runs(&h).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["end_status"], "overrun");
    assert_eq!(runs[0]["max_run_s"], "1");
    // A duplicate delivery replays the start and sends nothing: no second job, no suspend.
    let replay = h.invoke(request).await.unwrap();
    assert_eq!(replay["job_id"], ids[0].as_str());
    assert_eq!(job_ids(&h).len(), 1);
    assert_eq!(deletes(&h), 1);
}

#[tokio::test]
async fn a_synchronous_execute_within_its_maximum_is_only_answered() {
    let h = harness(vec![("CLOUDBOT_MAX_RUN_SECONDS", "1".to_owned())]).await;
    // Past the stack default, within the request's own maximum.
    let answer = h
        .invoke(
            json!({"public_id": "demo", "bot_id": "slow_bot", "timeout": 2500,
                       "max_run_seconds": 60}),
        )
        .await
        .unwrap();
    assert_eq!(answer["status"], "executing");
    assert_eq!(deletes(&h), 0);
    assert!(!runs(&h).await[0].contains_key("end_status"));
}

/// The execute a callback-driven state machine sends for slow_bot (max 1 s), keyed `key`.
fn callback_driven(key: &str) -> Value {
    json!({"idempotency_key": key, "task_token": format!("token-of-{key}"),
           "request": {"public_id": "demo", "bot_id": "slow_bot", "max_run_seconds": 1}})
}

/// The callback id the function gave the job (the emulator's record of its callback URL).
fn callback_path(h: &Harness, job_id: &str) -> String {
    let url = h
        .emulator
        .job(job_id)
        .unwrap()
        .callback_endpoint
        .expect("a callback");
    let id = url.rsplit('/').next().unwrap().to_owned();
    format!("/callbacks/{id}")
}

/// Cloud BOT's POST of a callback to the callback route (API Gateway HTTP API).
fn callback_event(h: &Harness, path: &str) -> Value {
    let mut event = h.event("apigw-v2-execute.json", None);
    event["routeKey"] = json!("ANY /{proxy+}");
    event["pathParameters"] = json!({"proxy": path.trim_start_matches('/')});
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!("POST");
    event["requestContext"]["http"]["path"] = json!(path);
    event["body"] = json!(r#"{"status": 0}"#);
    event["isBase64Encoded"] = json!(false);
    event
}

/// Waits until the slow_bot job the emulator created last has run 2 s (Cloud BOT's
/// `elapsed_time` 2, past a maximum of 1 s), well before its end at 3 s. The emulator's record
/// of the execute POST says when it started; waiting for time to pass is the point.
async fn past_one_second(h: &Harness) {
    let posts = requests_to(&h.emulator, "POST", "/demo/bots/slow_bot/jobs");
    let received: jiff::Timestamp = posts
        .last()
        .expect("the execute")
        .received_at
        .parse()
        .unwrap();
    let at = received + jiff::SignedDuration::from_millis(2050);
    let wait = at.duration_since(jiff::Timestamp::now());
    if let Ok(wait) = Duration::try_from(wait) {
        tokio::time::sleep(wait).await;
    }
}

#[tokio::test]
async fn a_callback_finding_its_job_executing_past_its_maximum_suspends_it_and_fails_the_task() {
    let told = Told::default();
    let h = with_callbacks(harness(Vec::new()).await, &told);
    let started = h.invoke(callback_driven("cb-overrun")).await.unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    let path = callback_path(&h, &job_id);
    // Cloud BOT calls while the job still reads executing (a callback before the end, or
    // the hold mode's real job): past its maximum by then.
    past_one_second(&h).await;
    let answer = h.invoke(callback_event(&h, &path)).await.unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(http_body(&answer)["delivery"], "settled");

    let job = h.emulator.job(&job_id).unwrap();
    assert!(job.suspended, "the emulator recorded the suspend: {job:?}");
    assert_eq!(h.emulator.stats().jobs_suspended, 1);
    let told = told.all();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (told[0].0.as_str(), told[0].1.as_str()),
        ("failure", "Job.Overrun")
    );
    assert!(told[0].2.contains("maximum of 1 s"), "{told:?}");
    let runs = runs(&h).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["end_status"], "overrun");
    // Neither the task token nor the callback id is in the run's record.
    let record = format!("{runs:?}");
    let id = path.rsplit('/').next().unwrap();
    for secret in ["token-of-cb-overrun", id] {
        assert!(!record.contains(secret), "{secret} in {record}");
    }
    // Cloud BOT's callback of the suspended job: answered from the record, nothing else.
    let again = h.invoke(callback_event(&h, &path)).await.unwrap();
    assert_eq!(http_body(&again)["delivery"], "already_settled");
    assert_eq!(deletes(&h), 1);
}

#[tokio::test]
async fn a_callback_for_a_run_a_poll_ended_overrun_reopens_nothing() {
    let told = Told::default();
    let h = with_callbacks(harness(Vec::new()).await, &told);
    let started = h.invoke(callback_driven("cb-after-poll")).await.unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    let path = callback_path(&h, &job_id);
    past_one_second(&h).await;
    // The workflow's polling fallback (or any look) suspends it first.
    let err = h.invoke(refer(&job_id)).await.unwrap_err();
    assert_eq!(err.error_type, "Job.Overrun", "{}", err.error_message);
    let before = runs(&h).await;
    assert_eq!(before[0]["end_status"], "overrun");

    // Then Cloud BOT delivers the suspended job's callback.
    let answer = h.invoke(callback_event(&h, &path)).await.unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let after = runs(&h).await;
    assert_eq!(after, before, "the overrun record is left as it was");
    assert_eq!(deletes(&h), 1, "no second suspend");
    assert_eq!(h.emulator.stats().jobs_suspended, 1);
    assert_eq!(told.all().len(), 1);
}

#[test]
fn the_table_of_where_the_maximum_is_enforced_names_every_caller_of_the_look() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/overrun.md")).unwrap();
    let start = doc
        .find("| path | code | when it looks |")
        .expect("the table in docs/overrun.md");
    let mut documented: Vec<String> = doc[start..]
        .lines()
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .filter_map(|row| row.split('|').nth(2))
        .map(|code| code.trim().trim_matches('`').to_owned())
        .collect();
    documented.sort();
    documented.dedup();
    let mut callers = Vec::new();
    for entry in std::fs::read_dir(root.join("src/service")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains(".watch_running(") {
            let name = path.file_name().unwrap().to_string_lossy();
            callers.push(format!("src/service/{name}"));
        }
    }
    callers.sort();
    assert!(!callers.is_empty());
    assert_eq!(
        documented, callers,
        "docs/overrun.md, \"Where the maximum is enforced\""
    );
}
