//! Integration tests of the Lambda handler (decoding, credentials, upstream faults), run
//! in-process: `Service::handle` with a constructed `LambdaEvent`, against the in-process Cloud
//! BOT emulator and a real Secrets Manager (moto).
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests;
// they may unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod bad_input;
mod bot_done;
mod callback_route;
mod contracts;
mod credentials;
mod dead_letter;
mod docs;
mod events;
mod exactly_once;
mod faults;
mod ledger;
mod logs;
mod orphans;
mod overrun;
mod overrun_paths;
mod payloads;
mod prefetch;
mod queue;
mod reconcile;
mod schedules;
mod state_machines;
mod store_calls;
mod usage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudbot_emulator::Emulator;
use cloudbot_trigger::admission::{Admission, SlotTable, Visibility};
use cloudbot_trigger::config::Config;
use cloudbot_trigger::idempotency::Idempotency;
use cloudbot_trigger::ledger::{Ledger, LedgerTable};
use cloudbot_trigger::payload::Payload;
use cloudbot_trigger::schedule::state::ScheduleStates;
use cloudbot_trigger::service::Service;
use cloudbot_trigger::table::DynamoDbStore;
use cloudbot_trigger::usage::{Usage, UsageTable};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::support::moto::{CallCounter, OperationLog, Outage, moto, secret_json, serial_moto};

/// The placeholder job id in `events/*refer-job*.json`; tests substitute a job just created.
pub const JOB_ID_PLACEHOLDER: &str = "00000000-0000-0000-0000-000000000000";
/// The API base written in `events/*.json`; tests substitute the emulator's.
pub const EVENTS_API_BASE: &str = "http://127.0.0.1:8787";

/// An emulator, a secret in moto and a `Service` wired to both.
pub struct Harness {
    /// The in-process Cloud BOT emulator the function calls.
    pub emulator: Emulator,
    /// The function's shared state, as built at cold start.
    pub service: Service,
    /// ARN of the Cloud BOT secret in moto.
    pub secret_id: String,
    /// `GetSecretValue` calls made by the service.
    pub secret_reads: CallCounter,
    /// The idempotency table in moto, when the set-up has one.
    pub table: Option<String>,
    /// The DynamoDB operations the service sent.
    pub store_calls: OperationLog,
    /// Switches Secrets Manager's answers to the service to errors.
    pub secret_outage: Outage,
    /// The run ledger table in moto, when the set-up has one.
    pub ledger_table: Option<String>,
    /// The DynamoDB operations the service sent to the run ledger.
    pub ledger_calls: OperationLog,
}

/// Which idempotency store the function gets.
pub enum Store {
    /// A fresh table in moto (the deployed configuration).
    Table,
    /// No table configured (duplicates are not detected).
    None,
    /// A table on a port where nothing listens (the store is down).
    Unreachable,
}

/// Options for [`Harness::start_with`].
pub struct Setup {
    /// The SecretString stored for the function.
    pub secret: String,
    /// Environment entries added to (or replacing) the defaults.
    pub env: Vec<(&'static str, String)>,
    /// The idempotency store.
    pub store: Store,
    /// Where the function's Secrets Manager client goes instead of moto (a stand-in's URL; its
    /// secret id then belongs in `env`).
    pub secrets_endpoint: Option<String>,
    /// The run ledger (`Store::None` by default: most tests are about other things).
    pub ledger: Store,
    /// The job-finished events' bus (`None`: no events are put).
    pub events: Option<cloudbot_trigger::job_events::JobEvents>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            secret: secret_json("demo-access-token", "demo-secret-key"),
            env: Vec::new(),
            store: Store::Table,
            secrets_endpoint: None,
            ledger: Store::None,
            events: None,
        }
    }
}

impl Harness {
    /// The default set-up: demo credentials, default BOT echo_bot.
    pub async fn start() -> Harness {
        Harness::start_with(Setup::default()).await
    }

    /// A fresh emulator, a fresh secret and a `Service` configured for them plus `setup`.
    pub async fn start_with(setup: Setup) -> Harness {
        // Short runs so tests can wait for jobs to finish.
        let emulator = crate::support::emulator().await;
        let moto = moto();
        let secret_id = moto.create_secret("cloudbot-demo", &setup.secret).await;
        let base = emulator.base_url();
        let mut env: HashMap<&str, String> = HashMap::from([
            ("CLOUDBOT_SECRET_ID", secret_id.clone()),
            ("CLOUDBOT_API_BASE", base.clone()),
            (
                "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
                format!("{base}/demo/bots/echo_bot/jobs"),
            ),
            ("CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK", "true".to_owned()),
            ("CLOUDBOT_REQUEST_TIMEOUT_MS", "5000".to_owned()),
        ]);
        // The table lives on the moto that serves one request at a time: moto's threaded server
        // checks a condition and writes in separate steps, so concurrent claims could both
        // succeed there, which DynamoDB never allows (`serial_moto`).
        let table_moto = serial_moto();
        let table = match setup.store {
            Store::Table => Some(table_moto.create_idempotency_table("idempotency").await),
            Store::Unreachable => Some("unreachable".to_owned()),
            Store::None => None,
        };
        if let Some(table) = &table {
            env.insert("CLOUDBOT_IDEMPOTENCY_TABLE", table.clone());
        }
        let ledger_table = match setup.ledger {
            Store::Table => Some(table_moto.create_ledger_table("ledger").await),
            Store::Unreachable => Some("unreachable".to_owned()),
            Store::None => None,
        };
        if let Some(table) = &ledger_table {
            env.insert("CLOUDBOT_RUN_LEDGER_TABLE", table.clone());
        }
        for (k, v) in setup.env {
            env.insert(k, v);
        }
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
        let (client, secret_reads, secret_outage) = match &setup.secrets_endpoint {
            Some(url) => moto.faulty_client_at(url),
            None => moto.faulty_client(),
        };
        let (dynamodb, store_calls) = match setup.store {
            Store::Unreachable => moto.recording_dynamodb_at(&closed_port_url()),
            _ => table_moto.recording_dynamodb(),
        };
        // Wired as main.rs does.
        let idempotency = config.idempotency.as_ref().map(|table| {
            Idempotency::new(
                DynamoDbStore::new(dynamodb.clone(), table.table.clone()),
                table.expiry,
            )
            .with_reconcile_settle(table.reconcile_settle)
        });
        let schedule_states = config.idempotency.as_ref().map(|table| {
            ScheduleStates::new(DynamoDbStore::new(dynamodb.clone(), table.table.clone()))
        });
        let (ledger_client, ledger_calls) = match setup.ledger {
            Store::Unreachable => moto.recording_dynamodb_at(&closed_port_url()),
            _ => table_moto.recording_dynamodb(),
        };
        let usage = match (&config.budget, &config.ledger) {
            (Some(budget), Some(ledger)) => Some(
                Usage::new(
                    UsageTable::new(ledger_client.clone(), ledger.table.clone()),
                    budget.budget,
                    ledger.retention,
                )
                .with_cache_ttl(budget.cache_ttl),
            ),
            _ => None,
        };
        // The slots live in the ledger table; no SQS client: a waiting message's delay is the
        // test's to play (it delivers the batch again itself).
        let admission = match (&config.admission, &config.ledger) {
            (Some(caps), Some(ledger)) => Some(Admission::new(
                SlotTable::new(ledger_client.clone(), ledger.table.clone()),
                caps.clone(),
            )),
            _ => None,
        };
        let ledger = config.ledger.as_ref().map(|ledger| {
            let table = LedgerTable::new(ledger_client, ledger.table.clone());
            Ledger::new(table.clone(), ledger.retention).with_open_runs(table)
        });
        // The dead-letter move (docs/queue.md) goes to moto's SQS when a test names a queue.
        let visibility = config
            .run_dead_letter_queue_url
            .as_ref()
            .map(|_| Visibility::new(&moto.sdk_config()));
        let service = Service::new(config, client)
            .expect("service")
            .with_idempotency(idempotency)
            .with_schedule_states(schedule_states)
            .with_ledger(ledger)
            .with_usage(usage)
            .with_admission(admission, visibility);
        let service = match setup.events {
            Some(events) => service.with_job_events(Some(events)),
            None => service,
        };
        Harness {
            emulator,
            service,
            secret_id,
            secret_reads,
            table: if matches!(setup.store, Store::Table) {
                table
            } else {
                None
            },
            store_calls,
            secret_outage,
            ledger_table: if matches!(setup.ledger, Store::Table) {
                ledger_table
            } else {
                None
            },
            ledger_calls,
        }
    }

    /// Invokes the handler with a 30 s deadline.
    pub async fn invoke(&self, event: Value) -> Result<Value, Diagnostic> {
        self.invoke_with_deadline(event, Duration::from_secs(30))
            .await
    }

    /// Invokes the handler with `remaining` time before the Lambda deadline.
    pub async fn invoke_with_deadline(
        &self,
        event: Value,
        remaining: Duration,
    ) -> Result<Value, Diagnostic> {
        // Deserialized as the runtime does it (a payload always deserializes).
        let payload: Payload = serde_json::from_value(event).unwrap();
        self.invoke_payload(payload, remaining).await
    }

    /// Invokes the handler with the payload bytes as Lambda delivers them, deserialized the way
    /// `lambda_runtime` does it (serde_path_to_error over serde_json, into the handler's type).
    pub async fn invoke_bytes(&self, bytes: &[u8]) -> Result<Value, Diagnostic> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let payload: Payload = serde_path_to_error::deserialize(&mut de).unwrap();
        self.invoke_payload(payload, Duration::from_secs(30)).await
    }

    async fn invoke_payload(
        &self,
        payload: Payload,
        remaining: Duration,
    ) -> Result<Value, Diagnostic> {
        let mut context = Context::default();
        context.request_id = format!("test-{}", fastrand::u64(..));
        context.deadline = (SystemTime::now() + remaining)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        // Boxed: a test awaits many invocations, and a debug build gives each awaited future
        // its own stack slot in the test's frame (the default test thread has 2 MiB).
        Box::pin(self.service.handle(LambdaEvent::new(payload, context)))
            .await
            .map(|raw| serde_json::from_str(raw.get()).unwrap())
    }

    /// A sample event from `events/`, with the API base and job id placeholders substituted.
    pub fn event(&self, name: &str, job_id: Option<&str>) -> Value {
        let text = std::fs::read_to_string(events_dir().join(name)).expect("read event");
        let text = text.replace(EVENTS_API_BASE, &self.emulator.base_url());
        let text = match job_id {
            Some(id) => text.replace(JOB_ID_PLACEHOLDER, id),
            None => text,
        };
        serde_json::from_str(&text).expect("event JSON")
    }

    /// Starts an echo_bot job directly through the handler; returns its job id.
    pub async fn start_job(&self) -> String {
        let ok = self
            .invoke(serde_json::json!({"public_id": "demo", "bot_id": "echo_bot"}))
            .await
            .expect("execute");
        ok["job_id"].as_str().unwrap().to_owned()
    }

    /// Rotate the demo token as an operator would: Cloud BOT now rejects the old pair (401) and
    /// the secret gets a new version holding the new one.
    pub async fn rotate(&self, new_token: &str, new_secret: &str) {
        self.emulator
            .rotate_token("demo-access-token", new_token, new_secret)
            .unwrap();
        moto()
            .put_secret(&self.secret_id, &secret_json(new_token, new_secret))
            .await;
    }

    /// Run `n` invocations of `event` at the same time; each must succeed.
    pub async fn invoke_concurrently(self: &Arc<Self>, n: usize, event: Value) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (h, event) = (Arc::clone(self), event.clone());
            tasks.spawn(async move { h.invoke(event).await });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap().expect("concurrent invocation");
        }
    }

    /// Number of API requests that reached the emulator.
    pub fn upstream_requests(&self) -> usize {
        self.emulator.requests().len()
    }
}

/// `http://127.0.0.1:PORT` where nothing listens.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    format!("http://127.0.0.1:{port}")
}

/// The repository's `events/` samples.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// Parses an API Gateway response's body.
pub fn http_body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().expect("body string")).expect("body JSON")
}

/// A header of an API Gateway response.
pub fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"][name].as_str()
}
