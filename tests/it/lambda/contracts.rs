//! Several contracts in one function (docs/deploy.md, "Several contracts"): two contracts in
//! the emulator with their own tokens, each served with its own secret (interleaved and
//! concurrent), the rotation of one leaving the other alone, and a contract with no secret
//! refused with nothing read or sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudbot_emulator::{Emulator, Permission, Seed, TokenSeed};
use cloudbot_trigger::config::Config;
use cloudbot_trigger::payload::Payload;
use cloudbot_trigger::service::Service;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

use crate::support::moto::{CallCounter, moto, secret_json};
use crate::support::{ECHO_MS, ERROR_MS, SLOW_MS};

/// The seed's `tokens`: the demo token (contract `demo`) first, the sales token (contract
/// `sales`) appended; the emulator's request log names them by these positions.
const DEMO_TOKEN: usize = 0;
const SALES_TOKEN: usize = 2;

/// The demo seed plus a contract `sales` (the demo BOTs) whose own token may use only it, and
/// a contract `other` no token of the function's serves.
fn two_contract_seed() -> Seed {
    let mut seed = Seed::demo_with_durations(ECHO_MS, ERROR_MS, SLOW_MS);
    for public_id in ["sales", "other"] {
        let mut contract = seed.contracts[0].clone();
        contract.public_id = public_id.to_owned();
        seed.contracts.push(contract);
    }
    assert_eq!(seed.tokens[DEMO_TOKEN].contracts, ["demo"]);
    seed.tokens.push(TokenSeed {
        access_token: "sales-access-token".into(),
        secret_key: "sales-secret-key".into(),
        permissions: vec![Permission::Refer, Permission::Execute, Permission::Suspend],
        contracts: vec!["sales".into()],
    });
    assert_eq!(seed.tokens.len(), SALES_TOKEN + 1);
    seed.validate().expect("seed");
    seed
}

/// The emulator, the per-contract secrets in moto (named `…/demo` and `…/sales`) and a
/// service configured with `CLOUDBOT_CONTRACT_SECRETS`.
struct Contracts {
    emulator: Emulator,
    service: Service,
    /// The secret ARN of each contract.
    secrets: HashMap<&'static str, String>,
    /// `GetSecretValue` calls of the service, every secret together.
    secret_reads: CallCounter,
}

impl Contracts {
    async fn start() -> Contracts {
        let emulator = Emulator::start(two_contract_seed())
            .await
            .expect("emulator");
        let moto = moto();
        let unique = format!("contracts-{}-{}", std::process::id(), fastrand::u64(..));
        let mut secrets = HashMap::new();
        for (public_id, token, key) in [
            ("demo", "demo-access-token", "demo-secret-key"),
            ("sales", "sales-access-token", "sales-secret-key"),
        ] {
            let created = moto
                .client()
                .create_secret()
                .name(format!("{unique}/{public_id}"))
                .secret_string(secret_json(token, key))
                .send()
                .await
                .expect("create_secret");
            secrets.insert(public_id, created.arn().expect("arn").to_owned());
        }
        let env = HashMap::from([
            (
                "CLOUDBOT_CONTRACT_SECRETS",
                format!("{},{}", secrets["demo"], secrets["sales"]),
            ),
            ("CLOUDBOT_API_BASE", emulator.base_url()),
            ("CLOUDBOT_REQUEST_TIMEOUT_MS", "5000".to_owned()),
        ]);
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
        let (client, secret_reads) = moto.counting_client();
        let service = Service::new(config, client).expect("service");
        Contracts {
            emulator,
            service,
            secrets,
            secret_reads,
        }
    }

    async fn invoke(&self, event: Value) -> Result<Value, Diagnostic> {
        let payload: Payload = serde_json::from_value(event).unwrap();
        let mut context = Context::default();
        context.request_id = format!("test-{}", fastrand::u64(..));
        context.deadline = (SystemTime::now() + Duration::from_secs(30))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        self.service
            .handle(LambdaEvent::new(payload, context))
            .await
            .map(|raw| serde_json::from_str(raw.get()).unwrap())
    }

    /// Every request the emulator saw carried the token of the contract in its path.
    fn assert_each_token_only_on_its_contract(&self) {
        let requests = self.emulator.requests();
        assert!(!requests.is_empty());
        for r in requests {
            let expected = if r.path.starts_with("/demo/") {
                DEMO_TOKEN
            } else if r.path.starts_with("/sales/") {
                SALES_TOKEN
            } else {
                panic!("a request outside both contracts: {} {}", r.method, r.path);
            };
            assert_eq!(r.token, Some(expected), "{} {}", r.method, r.path);
        }
    }
}

fn execute(public_id: &str) -> Value {
    json!({"public_id": public_id, "bot_id": "echo_bot", "input": {"message": public_id}})
}

fn jobs_of(emulator: &Emulator, public_id: &str) -> usize {
    let prefix = format!("/{public_id}/bots/");
    emulator
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with(&prefix) && r.status == Some(201))
        .count()
}

#[tokio::test]
async fn interleaved_executes_use_each_contracts_own_secret() {
    let c = Contracts::start().await;
    for public_id in ["demo", "sales", "sales", "demo", "sales"] {
        let ok = c.invoke(execute(public_id)).await.expect("execute");
        assert_eq!(ok["status"], "executing", "{public_id}");
        let job = ok["job_reference_endpoint"].as_str().unwrap();
        assert!(job.contains(&format!("/{public_id}/jobs/")), "{job}");
    }
    let bots = c
        .invoke(json!({"operation": "list_bots", "public_id": "sales"}))
        .await
        .expect("list_bots of sales");
    assert!(
        bots["bots"][0]["bot_endpoint"]
            .as_str()
            .unwrap()
            .contains("/sales/bots/")
    );
    assert_eq!(
        (jobs_of(&c.emulator, "demo"), jobs_of(&c.emulator, "sales")),
        (2, 3)
    );
    assert_eq!(
        c.secret_reads.get(),
        2,
        "each secret read once, then cached"
    );
    c.assert_each_token_only_on_its_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_executes_of_two_contracts_never_mix_their_tokens() {
    let c = Arc::new(Contracts::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let (c, public_id) = (Arc::clone(&c), if n % 2 == 0 { "demo" } else { "sales" });
        tasks.spawn(async move { c.invoke(execute(public_id)).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().expect("execute")["status"], "executing");
    }
    assert_eq!(
        (jobs_of(&c.emulator, "demo"), jobs_of(&c.emulator, "sales")),
        (8, 8)
    );
    assert_eq!(
        c.secret_reads.get(),
        2,
        "one read per contract (single flight each)"
    );
    c.assert_each_token_only_on_its_contract();
}

#[tokio::test]
async fn the_rotation_of_one_contracts_secret_leaves_the_other_alone() {
    let c = Contracts::start().await;
    c.invoke(execute("demo")).await.expect("demo");
    c.invoke(execute("sales")).await.expect("sales");
    assert_eq!(c.secret_reads.get(), 2);
    // sales rotates: Cloud BOT rejects its old pair, its secret gets a new version.
    c.emulator
        .rotate_token(
            "sales-access-token",
            "sales-rotated-token",
            "sales-rotated-key",
        )
        .unwrap();
    moto()
        .put_secret(
            &c.secrets["sales"],
            &secret_json("sales-rotated-token", "sales-rotated-key"),
        )
        .await;
    let ok = c
        .invoke(execute("sales"))
        .await
        .expect("sales after rotation");
    assert_eq!(ok["status"], "executing");
    assert_eq!(c.secret_reads.get(), 3, "only the sales secret re-read");
    // demo still uses its cached credentials, without a 401 or a read.
    c.invoke(execute("demo"))
        .await
        .expect("demo after sales' rotation");
    assert_eq!(c.secret_reads.get(), 3);
    let rejected: Vec<_> = c
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.status == Some(401))
        .map(|r| r.path)
        .collect();
    assert_eq!(rejected, ["/sales/bots/echo_bot/jobs"]);
    assert_eq!(
        (jobs_of(&c.emulator, "demo"), jobs_of(&c.emulator, "sales")),
        (2, 2)
    );
    c.assert_each_token_only_on_its_contract();
}

#[tokio::test]
async fn a_contract_without_a_secret_is_refused_with_nothing_read_or_sent() {
    let c = Contracts::start().await;
    for event in [
        execute("other"),
        json!({"operation": "list_bots", "public_id": "other"}),
        json!({"operation": "refer_job", "public_id": "other", "job_id": "j1"}),
    ] {
        let err = c.invoke(event.clone()).await.unwrap_err();
        assert_eq!(err.error_type, "Credentials.UnknownContract", "{event}");
        assert!(
            err.error_message.contains("contract `other`"),
            "{}",
            err.error_message
        );
    }
    assert!(c.emulator.requests().is_empty(), "nothing sent");
    assert_eq!(c.secret_reads.get(), 0, "nothing read");
}
