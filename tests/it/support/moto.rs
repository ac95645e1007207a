//! A real Secrets Manager for the tests: one `moto_server` (pinned, from `.tools/venv-aws`) per
//! test binary, on a free loopback port, plus SDK clients pointed at it.
//!
//! The server starts on first use. Statics are never dropped, so moto is started under a small
//! `sh` watchdog that kills it by PID as soon as the test process is gone (normal exit, failure or
//! abort). Tests never touch the process environment: clients get the endpoint, region and dummy
//! credentials through their config builder. Each test uses its own secret name.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests;
// they may unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
};
use aws_sdk_secretsmanager::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_secretsmanager::error::BoxError;

/// A running moto server.
pub struct Moto {
    endpoint: String,
    /// The watchdog shell; it outlives the test process just long enough to kill moto.
    _watchdog: Child,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static SERIAL_MOTO: OnceLock<Moto> = OnceLock::new();

/// The shared moto server, started on first call.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(Moto::start)
}

/// The shared moto server that serves one request at a time (see [`Moto::start_serial`]).
pub fn serial_moto() -> &'static Moto {
    SERIAL_MOTO.get_or_init(Moto::start_serial)
}

/// moto's own server application under werkzeug without threads (the port is the last argument).
const SERIAL_SERVER: &str = "import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple('127.0.0.1', int(sys.argv[-1]), DomainDispatcherApplication(create_backend_app), threaded=False)
";

/// A pinned tool under `.tools/`; a missing one stops the test binary with one clear line.
fn tool(relative: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    if !bin.exists() {
        // A fresh clone has no .tools/ yet. Stop the whole test binary here with one clear
        // line rather than letting every test that needs Secrets Manager fail on its own.
        // Written to the stderr handle: libtest captures `eprintln!`, and exiting drops it.
        let _ = writeln!(
            std::io::stderr(),
            "\nerror: {} is missing. The tests need the project's pinned tools: run \
             `scripts/test.sh` (see README.md), which installs them into .tools/ \
             and runs every test; `cargo test` works on its own afterwards.\n",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

impl Moto {
    fn start() -> Moto {
        let bin = tool(".tools/venv-aws/bin/moto_server");
        Moto::start_with(&[
            bin.as_os_str(),
            "-H".as_ref(),
            "127.0.0.1".as_ref(),
            "-p".as_ref(),
        ])
    }

    /// A moto that serves one request at a time. DynamoDB applies each conditional write
    /// atomically; moto's threaded server checks a condition and writes in separate steps, so
    /// two concurrent conditional writes can both pass there. Tests of concurrent conditional
    /// writes use this one, which keeps the clients concurrent and the writes atomic.
    fn start_serial() -> Moto {
        let python = tool(".tools/venv-aws/bin/python");
        Moto::start_with(&[python.as_os_str(), "-c".as_ref(), SERIAL_SERVER.as_ref()])
    }

    /// Starts `command` with the port appended as its last argument.
    fn start_with(command: &[&std::ffi::OsStr]) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        // The watchdog: start moto, then wait for this test process to disappear and kill moto
        // by its PID (also on SIGTERM of the watchdog itself).
        let script = r#"
port=$1; parent=$2; shift 2
"$@" "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; exit 0' TERM INT EXIT
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
"#;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("moto-watchdog")
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: watchdog,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A Secrets Manager client for moto (dummy credentials, us-east-1).
    pub fn client(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::from_conf(self.config().build())
    }

    /// A Secrets Manager client that counts its `GetSecretValue` calls.
    pub fn counting_client(&self) -> (aws_sdk_secretsmanager::Client, CallCounter) {
        let (client, counter, _) = self.faulty_client();
        (client, counter)
    }

    /// A counting Secrets Manager client whose answers an [`Outage`] can replace.
    pub fn faulty_client(&self) -> (aws_sdk_secretsmanager::Client, CallCounter, Outage) {
        self.faulty_client_at(&self.endpoint)
    }

    /// [`Self::faulty_client`] for another endpoint (e.g. a slow Secrets Manager stand-in).
    pub fn faulty_client_at(
        &self,
        endpoint: &str,
    ) -> (aws_sdk_secretsmanager::Client, CallCounter, Outage) {
        let counter = CallCounter::default();
        let outage = Outage::default();
        let conf = self
            .config()
            .endpoint_url(endpoint)
            .interceptor(counter.clone())
            .interceptor(outage.clone())
            .build();
        (
            aws_sdk_secretsmanager::Client::from_conf(conf),
            counter,
            outage,
        )
    }

    fn config(&self) -> aws_sdk_secretsmanager::config::Builder {
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .endpoint_url(&self.endpoint)
    }

    /// Creates a secret with a unique name holding `value`; returns the name.
    pub async fn create_secret(&self, prefix: &str, value: &str) -> String {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        self.client()
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .expect("create_secret");
        name
    }

    /// Stores a new version of the secret (what a rotation does).
    pub async fn put_secret(&self, name: &str, value: &str) {
        self.client()
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .expect("put_secret_value");
    }
}

/// The demo credentials as a SecretString.
pub fn secret_json(access_token: &str, secret_key: &str) -> String {
    serde_json::json!({"access_token": access_token, "secret_key": secret_key}).to_string()
}

/// Counts `GetSecretValue` operations sent through one client.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicUsize>);

impl CallCounter {
    /// Operations seen so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// DynamoDB (moto serves it on the same port): the idempotency table of the tests. moto keeps the
/// TTL setting but never deletes an item, which is how the function must cope anyway.
impl Moto {
    /// The SDK configuration of a client of moto (dummy credentials, us-east-1): what the
    /// function's run queue SQS client is built from.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        use aws_sdk_sqs::config::{
            BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
        };
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "moto",
            )))
            .endpoint_url(self.endpoint())
            .build()
    }

    /// A DynamoDB client for moto (dummy credentials, us-east-1).
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(self.dynamodb_config().build())
    }

    /// A DynamoDB client that records the name of every operation it sends.
    pub fn recording_dynamodb(&self) -> (aws_sdk_dynamodb::Client, OperationLog) {
        self.recording_dynamodb_at(&self.endpoint)
    }

    /// [`Self::recording_dynamodb`] for another endpoint (e.g. one where nothing listens).
    pub fn recording_dynamodb_at(
        &self,
        endpoint: &str,
    ) -> (aws_sdk_dynamodb::Client, OperationLog) {
        let log = OperationLog::default();
        let conf = self
            .dynamodb_config()
            .endpoint_url(endpoint)
            .interceptor(log.clone())
            .build();
        (aws_sdk_dynamodb::Client::from_conf(conf), log)
    }

    fn dynamodb_config(&self) -> aws_sdk_dynamodb::config::Builder {
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .endpoint_url(&self.endpoint)
    }

    /// Creates a table shaped like template.yaml's IdempotencyTable (key `record_key`, the
    /// index `by_bot`, TTL on `expires_at`); returns its unique name.
    pub async fn create_idempotency_table(&self, prefix: &str) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
            Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
        };
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let client = self.dynamodb();
        client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("record_key")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("bot_endpoint")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("claimed_at")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("record_key")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by_bot")
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("bot_endpoint")
                            .key_type(KeyType::Hash)
                            .build()
                            .unwrap(),
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("claimed_at")
                            .key_type(KeyType::Range)
                            .build()
                            .unwrap(),
                    )
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::Include)
                            .non_key_attributes("state")
                            .non_key_attributes("in_flight_until")
                            .non_key_attributes("job_reference_endpoint")
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("create_table");
        client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("update_time_to_live");
        name
    }

    /// Creates a table shaped like template.yaml's RunLedgerTable (key `run`, the three GSIs,
    /// TTL on `expires_at`); returns its unique name.
    pub async fn create_ledger_table(&self, prefix: &str) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
            Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
        };
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .unwrap()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .unwrap()
        };
        let index = |name: &str, hash: &str, range: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key(range, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap()
        };
        let client = self.dynamodb();
        client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("run", ScalarAttributeType::S))
            .attribute_definitions(attribute("bot", ScalarAttributeType::S))
            .attribute_definitions(attribute("month", ScalarAttributeType::S))
            .attribute_definitions(attribute("started_at", ScalarAttributeType::N))
            .attribute_definitions(attribute("schedule", ScalarAttributeType::S))
            .attribute_definitions(attribute("nominal_time", ScalarAttributeType::S))
            .attribute_definitions(attribute("open", ScalarAttributeType::S))
            .attribute_definitions(attribute("open_key", ScalarAttributeType::S))
            .key_schema(key("run", KeyType::Hash))
            .global_secondary_indexes(index("by_bot", "bot", "started_at"))
            .global_secondary_indexes(index("by_month", "month", "started_at"))
            .global_secondary_indexes(index("by_schedule", "schedule", "nominal_time"))
            .global_secondary_indexes(index("open_runs", "open", "open_key"))
            .send()
            .await
            .expect("create_table");
        client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("update_time_to_live");
        name
    }

    /// Every item of `table` (a scan; tests only).
    pub async fn items(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.dynamodb()
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan")
            .items()
            .to_vec()
    }
}

/// The names of the operations a client sent, in order.
#[derive(Debug, Clone, Default)]
pub struct OperationLog(Arc<std::sync::Mutex<Vec<String>>>);

impl OperationLog {
    /// Operations so far (e.g. `["PutItem", "UpdateItem"]`).
    pub fn operations(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Forgets the operations so far.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{
            get_item::GetItemInput, put_item::PutItemInput, update_item::UpdateItemInput,
        };
        let input = context.input();
        let name = if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            "UpdateItem"
        } else if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else {
            "other"
        };
        self.0.lock().unwrap().push(name.to_owned());
        Ok(())
    }
}

/// What Secrets Manager answers while an [`Outage`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageKind {
    /// `ThrottlingException` (transient: the SDK retries it, then the function may use stale
    /// credentials).
    Throttling,
    /// `AccessDeniedException` (a definite answer: never masked).
    AccessDenied,
}

/// Replaces every Secrets Manager answer with an error while switched on: the request still
/// reaches moto, the client sees the error response instead, as from the real service.
#[derive(Debug, Clone, Default)]
pub struct Outage(Arc<std::sync::Mutex<Option<OutageKind>>>);

impl Outage {
    /// Answer every call with `kind` from now on (`None`: answer normally again).
    pub fn set(&self, kind: Option<OutageKind>) {
        *self.0.lock().unwrap() = kind;
    }
}

impl Intercept for Outage {
    fn name(&self) -> &'static str {
        "Outage"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(kind) = *self.0.lock().unwrap() else {
            return Ok(());
        };
        let (code, message) = match kind {
            OutageKind::Throttling => ("ThrottlingException", "Rate exceeded"),
            OutageKind::AccessDenied => ("AccessDeniedException", "not authorized"),
        };
        let response = context.response_mut();
        *response.status_mut() = 400u16.try_into().unwrap();
        response.headers_mut().insert("x-amzn-errortype", code);
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        *response.body_mut() = serde_json::json!({"__type": code, "message": message})
            .to_string()
            .into();
        Ok(())
    }
}
