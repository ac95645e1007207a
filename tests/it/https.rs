//! The bootstrap process against HTTPS upstreams, as on AWS: the emulator and the Secrets
//! Manager stand-in serve TLS with a test CA. The function trusts that CA only through its
//! test-only switch (`CLOUDBOT_TEST_ONLY_EXTRA_CA_FILE`), says so at cold start, and without the
//! switch refuses the stand-ins: the compiled-in roots stay the default. The TLS warm-up of init
//! makes one handshake and no request, and the first execute resumes its session; the opt-in
//! `head` warm-up leaves the connection the first execute goes out on.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests;
// they may unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudbot_emulator::{Emulator, EmulatorOptions, Seed, TestCa};
use cloudbot_testkit::function::{demo_secret, execute_event, function_env, job_id_of};
use cloudbot_testkit::sandbox::Sandbox;
use cloudbot_testkit::secrets::SecretsEndpoint;
use cloudbot_trigger::config::TEST_ONLY_EXTRA_CA_VAR;

use crate::support::{ECHO_MS, ERROR_MS, SLOW_MS};

const SECRET_ID: &str = "cloudbot/https";
const INVOKE_TIMEOUT: Duration = Duration::from_secs(20);

struct Https {
    emulator: Emulator,
    secrets: SecretsEndpoint,
    sandbox: Sandbox,
    bot_endpoint: String,
    dir: PathBuf,
}

impl Https {
    /// HTTPS upstreams with one test CA; the function trusts it when `trust` is set.
    async fn start(name: &str, trust: bool) -> Https {
        Self::start_with(name, trust, &[]).await
    }

    /// As [`Https::start`], with more environment for the function.
    async fn start_with(name: &str, trust: bool, extra_env: &[(&str, &str)]) -> Https {
        let ca = TestCa::generate().unwrap();
        let options = EmulatorOptions::new(Seed::demo_with_durations(ECHO_MS, ERROR_MS, SLOW_MS))
            .tls(ca.clone());
        let emulator = Emulator::start_with(options).await.unwrap();
        let secrets = SecretsEndpoint::start_with(SECRET_ID, &demo_secret(), None, Some(&ca))
            .await
            .unwrap();
        let dir =
            std::env::temp_dir().join(format!("cloudbot-https-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.ca_pem()).unwrap();
        let bot_endpoint = format!("{}/demo/bots/echo_bot/jobs", emulator.base_url());
        let mut env = function_env(&emulator.base_url(), &bot_endpoint, &secrets.url());
        env.retain(|(k, _)| k != "CLOUDBOT_SECRET_ID");
        env.push(("CLOUDBOT_SECRET_ID".into(), SECRET_ID.into()));
        if trust {
            env.push((
                TEST_ONLY_EXTRA_CA_VAR.into(),
                ca_file.to_string_lossy().into_owned(),
            ));
        }
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let bootstrap = Path::new(env!("CARGO_BIN_EXE_cloudbot-trigger"));
        let mut sandbox = Sandbox::spawn(bootstrap, &env, &dir.join("function.log"))
            .await
            .unwrap();
        sandbox.cold_init().await.unwrap();
        if trust {
            assert_eq!(
                secrets.get_secret_value_calls(),
                1,
                "the secret is fetched during init"
            );
        }
        Https {
            emulator,
            secrets,
            sandbox,
            bot_endpoint,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("function.log")).unwrap_or_default()
    }

    /// Fails with the whole log unless it has `line` in it.
    fn assert_logged(&self, line: &str) {
        let log = self.log();
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }

    async fn stop(self) {
        self.sandbox.stop().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn with_the_test_only_switch_the_function_speaks_tls_to_both_upstreams() {
    let f = Https::start("trusted", true).await;
    for n in 0..2 {
        let out = f
            .sandbox
            .api
            .invoke(execute_event(&f.bot_endpoint, n), INVOKE_TIMEOUT)
            .await
            .unwrap();
        match &out.result {
            Ok(body) => {
                job_id_of(body).unwrap();
            }
            Err(e) => panic!("{}: {}\n{}", e.error_type, e.body, f.log()),
        }
    }
    assert_eq!(f.emulator.stats().jobs_created, 2);
    assert_eq!(f.secrets.get_secret_value_calls(), 1);
    let log = f.log();
    // Fetched during init (before the first poll), and reported with the first invocation.
    assert!(
        log.contains("Cloud BOT credentials fetched during init"),
        "{log}"
    );
    let fetches: Vec<u64> = log
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\":"))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["SecretFetches"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(fetches, [1, 0], "SecretFetches per invocation");
    assert!(
        log.contains("TEST ONLY") && log.contains(TEST_ONLY_EXTRA_CA_VAR),
        "the switch is announced at cold start:\n{log}"
    );
    f.stop().await;
}

#[tokio::test]
async fn without_the_switch_the_test_ca_is_not_trusted() {
    let f = Https::start("untrusted", false).await;
    let out = f
        .sandbox
        .api
        .invoke(execute_event(&f.bot_endpoint, 0), INVOKE_TIMEOUT)
        .await
        .unwrap();
    let error = out
        .result
        .expect_err("the stand-ins' certificates are refused");
    assert!(!error.error_type.is_empty(), "{error:?}");
    assert_eq!(f.emulator.stats().jobs_created, 0);
    assert_eq!(
        f.secrets.get_secret_value_calls(),
        0,
        "no request got through the handshake"
    );
    assert!(!f.log().contains("TEST ONLY"));
    // The refused warm-up is logged, and init went on.
    f.assert_logged("the warm-up of the Cloud BOT API connection failed during init");
    assert_eq!(f.emulator.stats().tls_handshakes, 0);
    f.stop().await;
}

async fn first_execute(f: &Https) {
    let out = f
        .sandbox
        .api
        .invoke(execute_event(&f.bot_endpoint, 0), INVOKE_TIMEOUT)
        .await
        .unwrap();
    if let Err(e) = &out.result {
        panic!("{}: {}\n{}", e.error_type, e.body, f.log());
    }
}

#[tokio::test]
async fn the_tls_warm_up_of_init_sends_no_request_and_the_first_execute_resumes_its_session() {
    let f = Https::start("warm-up", true).await;
    let after_init = f.emulator.stats();
    assert_eq!(
        (after_init.tls_handshakes, after_init.requests),
        (1, 0),
        "one full handshake during init, and not one request: {after_init:?}"
    );
    assert_eq!(after_init.tls_handshakes_resumed, 0);
    first_execute(&f).await;
    let after = f.emulator.stats();
    assert_eq!(
        (after.tls_handshakes, after.tls_handshakes_resumed),
        (2, 1),
        "the first execute's handshake resumed the warm-up's session: {after:?}"
    );
    assert_eq!((after.requests, after.jobs_created), (1, 1));
    f.assert_logged("TLS session with the Cloud BOT API set up during init");
    f.stop().await;
}

#[tokio::test]
async fn the_head_warm_up_leaves_the_connection_the_first_execute_goes_out_on() {
    let f = Https::start_with("warm-up-head", true, &[("CLOUDBOT_API_WARMUP", "head")]).await;
    let after_init = f.emulator.stats();
    assert_eq!(
        (
            after_init.tls_handshakes,
            after_init.requests,
            after_init.jobs_created
        ),
        (1, 1, 0),
        "{after_init:?}"
    );
    first_execute(&f).await;
    let after = f.emulator.stats();
    assert_eq!(
        (
            after.tls_handshakes,
            after.connections_accepted,
            after.jobs_created
        ),
        (1, 1, 1),
        "the execute used the connection opened during init: {after:?}"
    );
    let requests = f.emulator.requests();
    let shape: Vec<(&str, &str, u64)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.connection_id))
        .collect();
    assert_eq!(
        shape,
        [("HEAD", "/", 1), ("POST", "/demo/bots/echo_bot/jobs", 1)]
    );
    f.assert_logged("connection to the Cloud BOT API opened during init (HEAD /)");
    f.stop().await;
}

#[tokio::test]
async fn with_the_warm_up_off_the_first_execute_makes_the_whole_handshake() {
    let f = Https::start_with("warm-up-off", true, &[("CLOUDBOT_API_WARMUP", "off")]).await;
    assert_eq!(f.emulator.stats().tls_handshakes, 0);
    first_execute(&f).await;
    let after = f.emulator.stats();
    assert_eq!(
        (after.tls_handshakes, after.tls_handshakes_resumed),
        (1, 0),
        "{after:?}"
    );
    assert_eq!(after.jobs_created, 1);
    f.stop().await;
}
