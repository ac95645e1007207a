//! DynamoDB calls per run, start to end, on both follow paths (issue 22's "Figures"; the
//! expected calls are one list, `cloudbot_testkit::run_calls`, which the benchmark counts too
//! and BENCHMARKS.md shows). The default deployment's stores (idempotency table and run ledger,
//! against moto) and a keyed run of echo_bot: polled with `refer_job` until it ends, or started
//! with a task token and ended by its callback. Exact and in order, per kind of item: a new
//! call on a run's path fails here until that list says it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cloudbot_testkit::run_calls::{CALLBACK, POLLED, StepCalls};
use cloudbot_trigger::callback::{Callbacks, SettleFuture, Settled, TaskSettler, TaskToken};
use cloudbot_trigger::table::DynamoDbStore;
use serde_json::{Value, json};

use super::{Harness, Setup, Store, http_body};
use crate::support::eventually;
use crate::support::moto::{OperationLog, serial_moto};

/// Step Functions, counting the tasks told (the path's one call outside DynamoDB).
#[derive(Debug, Clone, Default)]
struct CountingTasks(Arc<AtomicUsize>);

impl CountingTasks {
    fn told(&self) -> SettleFuture<'_> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Settled::Accepted) })
    }
}

impl TaskSettler for CountingTasks {
    fn succeed<'a>(&'a self, _: &'a TaskToken, _: &'a str) -> SettleFuture<'a> {
        self.told()
    }
    fn fail<'a>(&'a self, _: &'a TaskToken, _: &'a str, _: &'a str) -> SettleFuture<'a> {
        self.told()
    }
}

impl Harness {
    /// The harness with the callback side wired as main.rs wires it (on the idempotency table),
    /// its store calls logged apart.
    async fn with_callbacks(self, tasks: CountingTasks) -> (Self, OperationLog) {
        let table = self.table.clone().expect("an idempotency table");
        let (client, calls) = serial_moto().recording_dynamodb();
        let base = url::Url::parse("http://127.0.0.1:9/callbacks").unwrap();
        let callbacks = Callbacks::new(
            DynamoDbStore::new(client, table),
            tasks,
            &base,
            Duration::from_secs(86_400),
        );
        let h = Harness {
            service: self.service.with_callbacks(Some(callbacks)),
            ..self
        };
        (h, calls)
    }
}

async fn start(env: Vec<(&'static str, String)>) -> Harness {
    Harness::start_with(Setup {
        ledger: Store::Table,
        env,
        ..Setup::default()
    })
    .await
}

fn bot(h: &Harness, name: &str) -> String {
    format!("{}/demo/bots/{name}/jobs", h.emulator.base_url())
}

async fn job_ended(h: &Harness, job_id: &str) {
    eventually(Duration::from_secs(10), || {
        h.emulator.job(job_id).filter(|j| j.status != 2).map(drop)
    })
    .await
    .expect("the job ends");
}

/// The calls so far, then forgotten.
#[derive(Debug, PartialEq, Eq)]
struct Calls {
    /// Idempotency records (the claim and its completion).
    records: Vec<&'static str>,
    /// Callback records and pointers (on the same table).
    callbacks: Vec<&'static str>,
    /// The run ledger.
    ledger: Vec<&'static str>,
}

impl From<&StepCalls> for Calls {
    fn from(step: &StepCalls) -> Self {
        Calls {
            records: step.records.to_vec(),
            callbacks: step.callbacks.to_vec(),
            ledger: step.ledger.to_vec(),
        }
    }
}

fn take(h: &Harness, callbacks: Option<&OperationLog>) -> Calls {
    fn drain(log: &OperationLog) -> Vec<&'static str> {
        let ops = log
            .operations()
            .iter()
            .map(|op| match op.as_str() {
                "PutItem" => "PutItem",
                "UpdateItem" => "UpdateItem",
                "GetItem" => "GetItem",
                _ => "other",
            })
            .collect();
        log.clear();
        ops
    }
    Calls {
        records: drain(&h.store_calls),
        callbacks: callbacks.map(drain).unwrap_or_default(),
        ledger: drain(&h.ledger_calls),
    }
}

#[tokio::test]
async fn a_polled_run_costs_three_writes_to_start_a_read_per_poll_and_one_write_to_end() {
    let h = start(Vec::new()).await;
    take(&h, None);
    let started = h
        .invoke(json!({
            "operation": "execute",
            "idempotency_key": "calls-polled",
            // Runs long enough (3 s here) for a poll to find it executing.
            "bot_endpoint": bot(&h, "slow_bot"),
            "input": {"message": "calls"},
        }))
        .await
        .unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    assert_eq!(take(&h, None), Calls::from(&POLLED.start));
    let endpoint = started["job_reference_endpoint"].as_str().unwrap();
    let executing = h
        .invoke(json!({"operation": "refer_job", "job_reference_endpoint": endpoint}))
        .await
        .unwrap();
    assert_eq!(executing["status"], "executing");
    let each_poll = POLLED.each_poll.as_ref().expect("a polled run polls");
    assert_eq!(take(&h, None), Calls::from(each_poll));
    job_ended(&h, &job_id).await;
    let ended = h
        .invoke(json!({"operation": "refer_job", "job_reference_endpoint": endpoint}))
        .await
        .unwrap();
    assert_ne!(ended["status"], "executing");
    assert_eq!(take(&h, None), Calls::from(&POLLED.end));
}

#[tokio::test]
async fn a_callback_run_costs_its_registration_and_a_settled_end() {
    let h = start(vec![(
        "CLOUDBOT_CALLBACK_BASE_URL",
        "http://127.0.0.1:9/callbacks".to_owned(),
    )])
    .await;
    let tasks = CountingTasks::default();
    let (h, callback_calls) = h.with_callbacks(tasks.clone()).await;
    take(&h, Some(&callback_calls));
    let started = h
        .invoke(json!({
            "idempotency_key": "calls-callback",
            "task_token": "calls-task-token",
            "request": {"operation": "execute", "bot_endpoint": bot(&h, "echo_bot")},
        }))
        .await
        .unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    let start_calls = take(&h, Some(&callback_calls));
    job_ended(&h, &job_id).await;
    let callback = h.emulator.job(&job_id).unwrap().callback_endpoint.unwrap();
    let id = callback.rsplit('/').next().unwrap();
    let mut delivery: Value = h.event("apigw-v2-execute.json", None);
    let path = format!("/callbacks/{id}");
    delivery["routeKey"] = json!("ANY /{proxy+}");
    delivery["pathParameters"] = json!({"proxy": path.trim_start_matches('/')});
    delivery["rawPath"] = json!(path);
    delivery["requestContext"]["http"]["method"] = json!("POST");
    delivery["requestContext"]["http"]["path"] = json!(path);
    delivery["body"] = json!(json!({"job_id": job_id, "status": 0}).to_string());
    delivery["isBase64Encoded"] = json!(false);
    let answer = h.invoke(delivery).await.unwrap();
    assert_eq!(answer["statusCode"], 200, "{}", http_body(&answer));
    assert_eq!(tasks.0.load(Ordering::SeqCst), 1);
    let end_calls = take(&h, Some(&callback_calls));
    assert_eq!(start_calls, Calls::from(&CALLBACK.start));
    assert_eq!(end_calls, Calls::from(&CALLBACK.end));
}
