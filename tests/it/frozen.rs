//! The function as Lambda runs it between invocations: the real bootstrap process, frozen with
//! the cgroup v1 `freezer` while its upstream ends the idle keep-alive connection, thawed with
//! the next event already waiting. The next execute must start exactly one job and must not end
//! as `CloudBot.OutcomeUnknown` because it was written into a dead connection; the same for the
//! Secrets Manager client's connection. Why each case is safe: docs/client.md, "Idle
//! connections and frozen sandboxes".
//!
//! Needs root and /sys/fs/cgroup/freezer: skipped with a message elsewhere, a failure under
//! CI=true. Every wait is on an event (the upstream reporting the close, the kernel reporting
//! the freeze), never a fixed sleep.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests;
// they may unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudbot_emulator::{Emulator, EmulatorOptions, IdleClose, IdlePolicy, Seed};
use cloudbot_testkit::cgroup::{self, Cgroup, Controller};
use cloudbot_testkit::function::{demo_secret, execute_event, function_env, job_id_of};
use cloudbot_testkit::runtime_api::Outcome;
use cloudbot_testkit::sandbox::Sandbox;
use cloudbot_testkit::secrets::SecretsEndpoint;
use cloudbot_trigger::cloudbot::DEFAULT_EXECUTE_REUSE_WINDOW;

use crate::support::{ECHO_MS, ERROR_MS, SLOW_MS, eventually};

const SECRET_ID: &str = "cloudbot/frozen";
/// The upstream's keep-alive timeout in most of these tests: shorter than the default execute
/// reuse window, so the connection the function holds is still inside it at the thaw.
const IDLE: Duration = Duration::from_millis(300);
/// An upstream idle timeout past the default execute reuse window: once the upstream has ended
/// the connection, the function's execute pool holds it longer than the window too (its idle
/// clock started when the answer was read, after the upstream's last write).
const IDLE_PAST_THE_WINDOW: Duration =
    DEFAULT_EXECUTE_REUSE_WINDOW.saturating_add(Duration::from_millis(500));
/// An execute reuse window far longer than [`IDLE`]: a misconfiguration, for the case that shows
/// what it costs.
const LONG_EXECUTE_REUSE_MS: &str = "60000";
const INVOKE_TIMEOUT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(10);

/// The freezer, or `None` (with a message) when this machine cannot freeze and CI is not set.
fn freezer() -> Option<Cgroup> {
    match cgroup::available(Controller::Freezer)
        .and_then(|()| Cgroup::create(Controller::Freezer).map_err(|e| e.to_string()))
    {
        Ok(group) => Some(group),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the frozen-sandbox tests must run in CI (root, cgroup v1 freezer): {why}")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED frozen-sandbox test: {why}. It needs root and the cgroup v1 freezer at \
                 /sys/fs/cgroup/freezer (scripts/test.sh runs it; under CI=true it fails instead)."
            );
            None
        }
    }
}

/// Where upstream connections end, how, and after how long idle.
#[derive(Clone, Copy)]
struct Upstreams {
    cloud_bot: Option<IdleClose>,
    secrets: Option<IdleClose>,
    idle: Duration,
}

/// A bootstrap process in its own freezer group, its emulator and Secrets Manager stand-in.
struct Frozen {
    emulator: Emulator,
    secrets: SecretsEndpoint,
    sandbox: Sandbox,
    freezer: Cgroup,
    bot_endpoint: String,
    events: u64,
    logs: PathBuf,
}

impl Frozen {
    async fn start(freezer: Cgroup, upstreams: Upstreams, env: &[(&str, &str)]) -> Frozen {
        let policy = |close: Option<IdleClose>| {
            close.map(|close| IdlePolicy {
                timeout: upstreams.idle,
                close,
            })
        };
        let mut options =
            EmulatorOptions::new(Seed::demo_with_durations(ECHO_MS, ERROR_MS, SLOW_MS));
        options.idle = policy(upstreams.cloud_bot);
        let emulator = Emulator::start_with(options).await.unwrap();
        let secrets =
            SecretsEndpoint::start_with(SECRET_ID, &demo_secret(), policy(upstreams.secrets), None)
                .await
                .unwrap();
        let bot_endpoint = format!("{}/demo/bots/echo_bot/jobs", emulator.base_url());
        let mut vars = function_env(&emulator.base_url(), &bot_endpoint, &secrets.url());
        for (k, v) in [("CLOUDBOT_SECRET_ID", SECRET_ID)].iter().chain(env) {
            vars.retain(|(name, _)| name != k);
            vars.push(((*k).to_owned(), (*v).to_owned()));
        }
        let logs = std::env::temp_dir().join(format!(
            "cloudbot-frozen-{}-{}",
            std::process::id(),
            freezer.path().file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&logs).unwrap();
        let bootstrap = Path::new(env!("CARGO_BIN_EXE_cloudbot-trigger"));
        let mut sandbox = Sandbox::spawn(bootstrap, &vars, &logs.join("function.log"))
            .await
            .unwrap();
        freezer.add(sandbox.pid().unwrap()).unwrap();
        sandbox.cold_init().await.unwrap();
        Frozen {
            emulator,
            secrets,
            sandbox,
            freezer,
            bot_endpoint,
            events: 0,
            logs,
        }
    }

    /// Invokes an execute and returns the job id, failing with the function's log otherwise.
    async fn execute(&mut self) -> String {
        let outcome = self.invoke(false).await;
        self.job_of(&outcome)
    }

    /// Freezes the process once it is parked in `GET /next` after its last answer, where
    /// Lambda freezes a sandbox.
    async fn freeze(&self) {
        let parked = self.sandbox.api.polled(self.events + 1);
        tokio::time::timeout(WAIT, parked)
            .await
            .expect("the bootstrap polls for the next event");
        self.freezer.freeze().unwrap();
    }

    /// Queues an execute while the process is frozen, thaws it once the event is in its hands
    /// (as Lambda does), and returns the answer.
    async fn execute_after_thaw(&mut self) -> Outcome {
        self.invoke(true).await
    }

    async fn invoke(&mut self, thaw: bool) -> Outcome {
        self.events += 1;
        let event = execute_event(&self.bot_endpoint, self.events as usize);
        let api = &self.sandbox.api;
        let freezer = &self.freezer;
        let n = self.events;
        let (outcome, ()) = tokio::join!(api.invoke(event, INVOKE_TIMEOUT), async {
            if thaw {
                // Thawed in any case: a process left frozen would outlive the test.
                let handed_out = tokio::time::timeout(WAIT, api.handed_out(n)).await;
                freezer.thaw().unwrap();
                handed_out.expect("the waiting GET /next receives the event");
            }
        });
        outcome.unwrap()
    }

    fn job_of(&self, outcome: &Outcome) -> String {
        match &outcome.result {
            Ok(body) => job_id_of(body).unwrap(),
            Err(e) => panic!(
                "function error {}: {}\nlog:\n{}",
                e.error_type,
                e.body,
                self.sandbox.log_tail()
            ),
        }
    }

    /// POST requests the emulator saw on the execute path.
    fn executes_seen(&self) -> usize {
        self.emulator
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/jobs"))
            .count()
    }

    async fn stop(self) {
        self.sandbox.stop().await.unwrap();
        drop(self.freezer);
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

/// Waits until the emulator has ended the idle connection (while the function is frozen).
async fn emulator_ended_the_idle_connection(f: &Frozen) {
    assert!(
        eventually(WAIT, || (f.emulator.stats().connections_idle_closed == 1)
            .then_some(()))
        .await
        .is_some(),
        "the emulator ended the idle connection"
    );
}

/// Two executes with a freeze between them during which the emulator ends the connection as
/// `close` says after `idle`; the second must start exactly one job on a new connection.
async fn execute_after_a_freeze(close: IdleClose, idle: Duration, env: &[(&str, &str)]) {
    let Some(freezer) = freezer() else { return };
    let upstreams = Upstreams {
        cloud_bot: Some(close),
        secrets: None,
        idle,
    };
    let mut f = Frozen::start(freezer, upstreams, env).await;
    let first = f.execute().await;
    f.freeze().await;
    emulator_ended_the_idle_connection(&f).await;
    if close == IdleClose::Fin {
        assert!(
            eventually(WAIT, || (f.emulator.stats().connections_open == 0)
                .then_some(()))
            .await
            .is_some(),
            "the emulator closed its socket"
        );
    }
    let second = f.execute_after_thaw().await;
    let second = f.job_of(&second);
    assert_ne!(first, second);
    let stats = f.emulator.stats();
    assert_eq!(stats.jobs_created, 2, "exactly one job per execute");
    assert_eq!(f.executes_seen(), 2, "the second execute was sent once");
    assert_eq!(
        stats.connections_accepted, 2,
        "the second went on a new connection"
    );
    f.stop().await;
}

/// Default settings, the connection still inside the execute reuse window at the thaw: hyper
/// sees the FIN before it writes and the request goes on a new connection.
#[tokio::test]
async fn execute_after_a_freeze_past_a_fin_close_starts_exactly_one_job() {
    execute_after_a_freeze(IdleClose::Fin, IDLE, &[]).await;
}

/// Even with an execute reuse window far longer than the server's keep-alive timeout, a FIN is
/// seen before anything is written: the window is not what saves this case.
#[tokio::test]
async fn execute_after_a_freeze_past_a_fin_close_inside_a_long_reuse_window_starts_one_job() {
    let env = [("CLOUDBOT_EXECUTE_REUSE_MS", LONG_EXECUTE_REUSE_MS)];
    execute_after_a_freeze(IdleClose::Fin, IDLE, &env).await;
}

/// Default settings: the freeze outlasts the execute reuse window, so the execute pool discards
/// the silently dropped connection at checkout and the execute goes on a fresh one.
#[tokio::test]
async fn execute_after_a_freeze_past_a_silent_drop_starts_exactly_one_job() {
    execute_after_a_freeze(IdleClose::Silent, IDLE_PAST_THE_WINDOW, &[]).await;
}

/// What the window guards against: configured longer than the server's idle timeout, the pool
/// still trusts the silently dropped connection, the request goes into a socket nobody reads,
/// and the invocation ends `CloudBot.OutcomeUnknown`, never re-sent.
#[tokio::test]
async fn a_silent_drop_inside_a_long_execute_reuse_window_is_reported_unknown_and_never_resent() {
    let Some(freezer) = freezer() else { return };
    let upstreams = Upstreams {
        cloud_bot: Some(IdleClose::Silent),
        secrets: None,
        idle: IDLE,
    };
    let env = [
        ("CLOUDBOT_EXECUTE_REUSE_MS", LONG_EXECUTE_REUSE_MS),
        ("CLOUDBOT_REQUEST_TIMEOUT_MS", "1000"),
    ];
    let mut f = Frozen::start(freezer, upstreams, &env).await;
    f.execute().await;
    f.freeze().await;
    emulator_ended_the_idle_connection(&f).await;
    let second = f.execute_after_thaw().await;
    let error = second.result.expect_err("no answer can come");
    assert_eq!(
        error.error_type, "CloudBot.OutcomeUnknown",
        "{}",
        error.body
    );
    assert_eq!(
        f.emulator.stats().jobs_created,
        1,
        "nothing was read, nothing was resent"
    );
    assert_eq!(f.executes_seen(), 1);
    f.stop().await;
}

/// Waits until the Secrets Manager stand-in has ended the idle connection.
async fn secrets_ended_the_idle_connection(f: &Frozen) {
    assert!(
        eventually(WAIT, || (f.secrets.connections().idle_closed() == 1)
            .then_some(()))
        .await
        .is_some(),
        "the stand-in ended the idle connection"
    );
}

/// Default settings but a secret TTL of 0, so every invocation asks Secrets Manager and the
/// second one needs the connection the stand-in ended during the freeze. The fetch must succeed
/// on a new connection: at once after a FIN, after the SDK's per-attempt timeout and one
/// retry after a silent drop.
async fn credentials_after_a_freeze(close: IdleClose) {
    let Some(freezer) = freezer() else { return };
    let upstreams = Upstreams {
        cloud_bot: None,
        secrets: Some(close),
        idle: IDLE,
    };
    let env = [("CLOUDBOT_SECRET_TTL_SECONDS", "0")];
    let mut f = Frozen::start(freezer, upstreams, &env).await;
    f.execute().await;
    assert_eq!(f.secrets.get_secret_value_calls(), 1);
    f.freeze().await;
    secrets_ended_the_idle_connection(&f).await;
    let second = f.execute_after_thaw().await;
    f.job_of(&second);
    // A request written into the silently dropped connection is never read, so it is not
    // counted: two calls answered, the second on a new connection.
    assert_eq!(f.secrets.get_secret_value_calls(), 2);
    assert_eq!(
        f.secrets.connections().accepted(),
        2,
        "the fetch went on a new connection"
    );
    assert_eq!(f.emulator.stats().jobs_created, 2);
    f.stop().await;
}

#[tokio::test]
async fn credentials_after_a_freeze_past_a_fin_close_of_secrets_manager() {
    credentials_after_a_freeze(IdleClose::Fin).await;
}

#[tokio::test]
async fn credentials_after_a_freeze_past_a_silent_drop_of_secrets_manager() {
    credentials_after_a_freeze(IdleClose::Silent).await;
}
