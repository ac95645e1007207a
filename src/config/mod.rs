//! Function configuration: the only place that reads environment variables.
//!
//! `Config::from_env()` runs once at cold start; every value is parsed and validated there, so a
//! misconfigured function fails at start-up with an error naming the variable instead of failing
//! on its first invocation. Tests build a `Config` from a map with [`Config::from_lookup`] so they
//! never mutate the process environment.
//!
//! [`Config`] is grouped by who takes it whole: [`Requests`] (request validation and defaults),
//! [`ClientConfig`] (the Cloud BOT client's connections), [`SecretConfig`] (the credentials
//! provider), [`InitConfig`] (the work of init), [`IdempotencyConfig`], [`CallbackConfig`], and
//! the test-only CA. Each group's reader is in `read` (with the variable names, their defaults
//! and bounds); `env` holds the typed parsers and [`ConfigError`].

mod admission;
mod budget;
mod contracts;
mod env;
mod event_bus;
mod read;

pub use budget::BudgetConfig;
pub use contracts::{SecretIds, contract_secrets};
pub use env::ConfigError;
pub use event_bus::EVENT_BUS_VAR;

use std::time::Duration;

use crate::cloudbot::{ApiBase, ApiWarmUp, BotEndpoint, ClientSettings, Language, PublicId};

/// Largest `callback_tries` the function accepts ([I]: the API documents no maximum; ten attempts
/// at Cloud BOT's >= 30 s retry interval already add five minutes of billed execution time).
pub const MAX_CALLBACK_TRIES: u32 = 10;

/// `callback_tries` used when a request gives `callback_endpoint` alone.
pub const DEFAULT_CALLBACK_TRIES: u32 = 3;

/// How long fetched credentials are reused by default.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);

/// How long past their TTL cached credentials may still be used by default while Secrets Manager
/// fails transiently: long enough to ride out a brief throttling or outage, short enough that a
/// revoked token is not used for long (a 401 ends it at once anyway).
pub const DEFAULT_SECRET_MAX_STALE: Duration = Duration::from_secs(900);

/// How long init waits for the secret by default before leaving the fetch to the first
/// invocation (`CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS`; why this value: docs/benchmarks.md,
/// "Levers tried").
pub const DEFAULT_SECRET_PREFETCH_TIMEOUT: Duration = Duration::from_millis(500);

/// Largest prefetch bound: Lambda ends an init that takes 10 s, and an init waiting seconds for
/// Secrets Manager is slower for the cold caller than a fetch in the first invocation.
const MAX_SECRET_PREFETCH_TIMEOUT_MS: u64 = 5_000;

/// How init prepares the Cloud BOT connection by default (`CLOUDBOT_API_WARMUP`): a TLS
/// handshake and no request. `head` is opt-in because it sends a request the user did not ask
/// for to a paid third-party API, [I] whose treatment of it is undocumented (figures of both:
/// docs/benchmarks.md, "Levers tried").
pub const DEFAULT_API_WARMUP: ApiWarmUp = ApiWarmUp::Tls;

/// How long init waits by default for that warm-up (`CLOUDBOT_API_WARMUP_TIMEOUT_MS`; it runs
/// beside the secret prefetch, so it adds nothing to init while it is the shorter of the two).
pub const DEFAULT_API_WARMUP_TIMEOUT: Duration = Duration::from_millis(500);

/// Largest warm-up bound, for the reason of [`MAX_SECRET_PREFETCH_TIMEOUT_MS`].
const MAX_API_WARMUP_TIMEOUT_MS: u64 = 5_000;

/// Names a PEM file whose CA certificates both upstream clients trust *in addition to* the
/// compiled-in roots. For tests against local HTTPS stand-ins only: the template cannot set it,
/// and the function logs a warning at cold start when it is set.
pub const TEST_ONLY_EXTRA_CA_VAR: &str = "CLOUDBOT_TEST_ONLY_EXTRA_CA_FILE";

/// An extra CA to trust (tests only, see [`TEST_ONLY_EXTRA_CA_VAR`]).
#[derive(Debug, Clone)]
pub struct TestOnlyExtraCa {
    /// The file it was read from (for the cold-start warning).
    pub path: String,
    /// Its PEM text.
    pub pem: Vec<u8>,
}

/// How long an idempotency record lives by default: a duplicate delivered later than this runs
/// again (asynchronous invocations are retried for up to 6 hours; API clients and state machines
/// retry within minutes).
pub const DEFAULT_IDEMPOTENCY_EXPIRY: Duration = Duration::from_secs(86_400);

/// How long a callback-driven task waits for its callback by default (the template's
/// `CallbackTimeoutSeconds`).
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(3600);

/// How much longer than the callback timeout an idempotency record must live when callbacks are
/// on: after the timeout, the polling fallback (RecoverJob) finds the job through the record, and
/// a record that expired first would let it start the BOT again. The bound is the longest
/// ExecuteBot retry schedule before the wait plus RecoverJob's after it (each 2700 s: every
/// allowed attempt at its 120 s task timeout plus its capped backoff);
/// `tests/it/lambda/state_machines.rs` computes it from the ASL files (docs/state-machines.md).
pub const CALLBACK_EXPIRY_MARGIN: Duration = Duration::from_secs(5400);

/// The idempotency table (docs/exactly-once.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// DynamoDB table name or ARN.
    pub table: String,
    /// How long a record lives after its claim.
    pub expiry: Duration,
    /// How long after an unknown outcome Cloud BOT's job list counts as proof
    /// (`CLOUDBOT_RECONCILE_SETTLE_SECONDS`, docs/exactly-once.md).
    pub reconcile_settle: Duration,
}

/// The run ledger table (docs/ledger.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// DynamoDB table name or ARN.
    pub table: String,
    /// How long a run is kept after its start (the TTL).
    pub retention: Duration,
}

/// What requests are validated against and filled in with.
#[derive(Debug, Clone)]
pub struct Requests {
    /// The only origin credentials are sent to: every endpoint in a request must be under it.
    pub api_base: ApiBase,
    /// BOT run when a request names none (for example an empty scheduled event).
    pub default_bot: Option<BotEndpoint>,
    /// Contract used by `list_bots` / `refer_job` / `bot_id` when the request names none.
    pub default_public_id: Option<PublicId>,
    /// Default `content-language` for Cloud BOT messages.
    pub language: Language,
    /// `callback_tries` used when a request gives `callback_endpoint` alone.
    pub default_callback_tries: u32,
    /// Allow `http://` callback endpoints on loopback hosts (local runs only).
    pub allow_http_loopback_callback: bool,
}

/// The Cloud BOT client's connections (the API base is [`Requests::api_base`]).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Upstream request timeout (always capped by the invocation's remaining time).
    pub request_timeout: Duration,
    /// How long an idle upstream connection (Cloud BOT reads and Secrets Manager) is kept for
    /// reuse.
    pub pool_idle_timeout: Duration,
    /// How long an idle connection is kept for the next execute POST (`0`: never reused); must
    /// stay below the shortest idle timeout on the way to Cloud BOT.
    pub execute_reuse_window: Duration,
}

/// The Cloud BOT secret and how long its value is reused.
#[derive(Debug, Clone)]
pub struct SecretConfig {
    /// The Secrets Manager secret(s) holding `{"access_token", "secret_key"}`: one for every
    /// contract, or one per contract (`contracts`).
    pub id: SecretIds,
    /// How long fetched credentials are reused before Secrets Manager is asked again.
    pub ttl: Duration,
    /// How long past the TTL they may still be used while Secrets Manager fails transiently.
    pub max_stale: Duration,
}

/// The work of init, ahead of the first invocation (docs/benchmarks.md, "Levers tried").
#[derive(Debug, Clone)]
pub struct InitConfig {
    /// How long init waits for the secret before leaving the fetch to the first invocation
    /// (`ZERO`: no fetch during init).
    pub secret_prefetch_timeout: Duration,
    /// How init prepares the Cloud BOT connection.
    pub api_warmup: ApiWarmUp,
    /// How long init waits for that (`ZERO`: no warm-up).
    pub api_warmup_timeout: Duration,
}

/// Callback-driven runs (docs/state-machines.md). They need the idempotency table, which holds
/// the callback records.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Public URL of the callback route (`…/callbacks`).
    pub base: url::Url,
    /// How long a callback-driven task waits for its callback before the polling fallback (the
    /// state machines' `CallbackTimeoutSeconds`); the idempotency expiry must exceed it by
    /// [`CALLBACK_EXPIRY_MARGIN`].
    pub timeout: Duration,
}

/// Validated configuration of the function.
#[derive(Debug, Clone)]
pub struct Config {
    /// Request validation and defaults.
    pub requests: Requests,
    /// The Cloud BOT client's connections.
    pub client: ClientConfig,
    /// The Cloud BOT secret.
    pub secret: SecretConfig,
    /// The work of init.
    pub init: InitConfig,
    /// The idempotency table; `None` runs without deduplication (warned at cold start).
    pub idempotency: Option<IdempotencyConfig>,
    /// Callback-driven runs; `None`: a task token is refused.
    pub callbacks: Option<CallbackConfig>,
    /// The run ledger; `None` keeps no ledger (said at cold start).
    pub ledger: Option<LedgerConfig>,
    /// The job-finished events' bus (name or ARN); `None` puts no events (docs/events.md).
    pub event_bus: Option<String>,
    /// The stack default maximum run time of a job (`CLOUDBOT_MAX_RUN_SECONDS`; `None`: no
    /// default; docs/overrun.md).
    pub max_run: Option<Duration>,
    /// The monthly BOT-seconds budget; `None`: no budget (docs/usage.md).
    pub budget: Option<BudgetConfig>,
    /// CloudWatch namespace of the EMF metrics (`CLOUDBOT_METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// Extra CA trusted by both upstream clients: tests only (`None` in any deployment).
    pub test_only_extra_ca: Option<TestOnlyExtraCa>,
    /// How many messages of one run queue batch run at once (`CLOUDBOT_QUEUE_CONCURRENCY`,
    /// docs/queue.md).
    pub queue_concurrency: usize,
    /// The caps on running BOT jobs of the run queue's runs; `None`: uncapped
    /// (docs/queue.md, "Admission control").
    pub admission: Option<crate::admission::Caps>,
    /// Where the function moves a run queue message that will never succeed
    /// (`CLOUDBOT_RUN_DEAD_LETTER_QUEUE_URL`); `None`: SQS moves it after `maxReceiveCount`
    /// (docs/queue.md, "What becomes of a message").
    pub run_dead_letter_queue_url: Option<String>,
}

impl Config {
    /// Reads and validates the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads and validates the configuration from any name → value lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = env::Env::new(lookup);
        let secret_id = contracts::secret_ids(&env)?;
        let requests = read::requests(&env)?;
        let secret = read::secret(&env, secret_id)?;
        let init = read::init(&env)?;
        let client = read::client(&env)?;
        let idempotency = read::idempotency(&env)?;
        let callbacks = read::callbacks(&env, idempotency.as_ref(), &requests)?;
        let ledger = read::ledger(&env)?;
        let caps = admission::admission(&env, ledger.as_ref())?;
        Ok(Self {
            requests,
            client,
            secret,
            init,
            idempotency,
            callbacks,
            event_bus: event_bus::event_bus(&env)?,
            max_run: read::max_run(&env)?,
            budget: budget::budget(&env, ledger.as_ref())?,
            ledger,
            metrics_namespace: read::metrics_namespace(&env)?,
            test_only_extra_ca: read::extra_ca(&env)?,
            queue_concurrency: read::queue_concurrency(&env)?,
            admission: caps,
            run_dead_letter_queue_url: read::run_dead_letter_queue_url(&env)?,
        })
    }

    /// The Cloud BOT client's settings: the API base, the connections, the test-only CA.
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            base: self.requests.api_base.clone(),
            connect_timeout: self.client.connect_timeout,
            request_timeout: self.client.request_timeout,
            pool_idle_timeout: self.client.pool_idle_timeout,
            execute_reuse_window: self.client.execute_reuse_window,
            test_only_extra_roots: self.test_only_extra_ca.as_ref().map(|ca| ca.pem.clone()),
            ..ClientSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cloudbot::{DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn secret_id_is_required_and_named() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.var, "CLOUDBOT_SECRET_ID");
        assert!(err.to_string().contains("CLOUDBOT_SECRET_ID"));
    }

    #[test]
    fn defaults_apply() {
        let cfg = config(&[("CLOUDBOT_SECRET_ID", "s")]).unwrap();
        assert_eq!(cfg.secret.ttl, Duration::from_secs(300));
        assert_eq!(cfg.requests.default_callback_tries, 3);
        assert_eq!(cfg.secret.ttl, DEFAULT_SECRET_TTL);
        assert_eq!(cfg.secret.max_stale, Duration::from_secs(900));
        assert_eq!(
            cfg.init.secret_prefetch_timeout,
            DEFAULT_SECRET_PREFETCH_TIMEOUT
        );
        assert_eq!(cfg.init.api_warmup, ApiWarmUp::Tls);
        assert_eq!(cfg.init.api_warmup_timeout, Duration::from_millis(500));
        assert_eq!(cfg.client.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(cfg.client.pool_idle_timeout, DEFAULT_POOL_IDLE_TIMEOUT);
        assert_eq!(cfg.client.execute_reuse_window, Duration::from_millis(1000));
        assert!(!cfg.requests.allow_http_loopback_callback);
        assert!(cfg.requests.default_bot.is_none());
        assert!(cfg.requests.default_public_id.is_none());
        assert_eq!(cfg.client.connect_timeout, Duration::from_millis(3000));
        assert_eq!(cfg.client.request_timeout, Duration::from_millis(25000));
        assert!(cfg.callbacks.is_none());
        assert_eq!(cfg.metrics_namespace, crate::metrics::DEFAULT_NAMESPACE);
    }

    #[test]
    fn the_callback_base_is_checked_at_cold_start() {
        let table = ("CLOUDBOT_IDEMPOTENCY_TABLE", "t-1");
        let ok = config(&[
            ("CLOUDBOT_SECRET_ID", "s"),
            table,
            (
                "CLOUDBOT_CALLBACK_BASE_URL",
                "https://abc.example/callbacks",
            ),
        ])
        .unwrap();
        assert_eq!(
            ok.callbacks.unwrap().base.as_str(),
            "https://abc.example/callbacks"
        );
        for (value, extra) in [
            ("https://abc.example/other", Some(table)),
            ("https://abc.example/callbacks?x=1", Some(table)),
            ("ftp://abc.example/callbacks", Some(table)),
            ("http://127.0.0.1:1/callbacks", Some(table)),
            ("https://abc.example/callbacks", None),
        ] {
            let mut vars = vec![
                ("CLOUDBOT_SECRET_ID", "s"),
                ("CLOUDBOT_CALLBACK_BASE_URL", value),
            ];
            vars.extend(extra);
            let err = config(&vars).unwrap_err();
            assert_eq!(err.var, "CLOUDBOT_CALLBACK_BASE_URL", "{value}");
        }
        let local = config(&[
            ("CLOUDBOT_SECRET_ID", "s"),
            table,
            ("CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK", "true"),
            ("CLOUDBOT_CALLBACK_BASE_URL", "http://127.0.0.1:1/callbacks"),
        ]);
        assert!(local.is_ok());
    }

    #[test]
    fn with_callbacks_the_idempotency_expiry_outlasts_the_callback_timeout_and_the_fallback() {
        let with = |expiry: &str, timeout: Option<&str>, base: bool| {
            let mut vars = vec![
                ("CLOUDBOT_SECRET_ID", "s"),
                ("CLOUDBOT_IDEMPOTENCY_TABLE", "t-1"),
                ("CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS", expiry),
            ];
            if base {
                vars.push((
                    "CLOUDBOT_CALLBACK_BASE_URL",
                    "https://abc.example/callbacks",
                ));
            }
            if let Some(timeout) = timeout {
                vars.push(("CLOUDBOT_CALLBACK_TIMEOUT_SECONDS", timeout));
            }
            config(&vars)
        };
        // The template's defaults (a day; an hour) and the tightest accepted pair.
        let ok = with("86400", None, true).unwrap();
        assert_eq!(ok.callbacks.unwrap().timeout, DEFAULT_CALLBACK_TIMEOUT);
        assert!(with("5521", Some("120"), true).is_ok());
        assert!(with("27001", Some("21600"), true).is_ok());
        for (expiry, timeout) in [
            ("5520", "120"),
            ("9000", "3600"),
            ("3600", "3600"),
            ("900", "7200"),
        ] {
            let err = with(expiry, Some(timeout), true).unwrap_err();
            assert_eq!(
                err.var, "CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS",
                "{expiry} {timeout}"
            );
            assert!(
                err.reason.contains("CLOUDBOT_CALLBACK_TIMEOUT_SECONDS")
                    && err.reason.contains(timeout),
                "{}",
                err.reason
            );
        }
        // Without callbacks there is no fallback to protect: the expiry's own minimum applies.
        assert!(with("900", Some("21600"), false).is_ok());
        for bad in ["119", "21601", "soon"] {
            let err = with("86400", Some(bad), true).unwrap_err();
            assert_eq!(err.var, "CLOUDBOT_CALLBACK_TIMEOUT_SECONDS", "{bad}");
        }
    }

    #[test]
    fn default_public_id_comes_from_default_bot() {
        let cfg = config(&[
            ("CLOUDBOT_SECRET_ID", "s"),
            ("CLOUDBOT_API_BASE", "http://127.0.0.1:8787"),
            (
                "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
                "http://127.0.0.1:8787/demo/bots/echo_bot/jobs",
            ),
        ])
        .unwrap();
        assert_eq!(cfg.requests.default_public_id.unwrap().as_str(), "demo");
    }

    #[test]
    fn default_bot_on_a_foreign_host_is_rejected() {
        let err = config(&[
            ("CLOUDBOT_SECRET_ID", "s"),
            (
                "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
                "https://evil.example/demo/bots/echo_bot/jobs",
            ),
        ])
        .unwrap_err();
        assert_eq!(err.var, "CLOUDBOT_DEFAULT_BOT_ENDPOINT");
    }

    #[test]
    fn bad_numbers_and_flags_name_the_variable() {
        for (var, value) in [
            ("CLOUDBOT_SECRET_TTL_SECONDS", "soon"),
            ("CLOUDBOT_SECRET_MAX_STALE_SECONDS", "86401"),
            ("CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS", "5001"),
            ("CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS", "-1"),
            ("CLOUDBOT_API_WARMUP_TIMEOUT_MS", "5001"),
            ("CLOUDBOT_API_WARMUP_TIMEOUT_MS", "soon"),
            ("CLOUDBOT_API_WARMUP", "get"),
            ("CLOUDBOT_API_WARMUP", "TLS"),
            ("CLOUDBOT_DEFAULT_CALLBACK_TRIES", "11"),
            ("CLOUDBOT_DEFAULT_CALLBACK_TRIES", "0"),
            ("CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK", "yes"),
            ("CLOUDBOT_LANGUAGE", "fr"),
            ("CLOUDBOT_CONNECT_TIMEOUT_MS", "0"),
            ("CLOUDBOT_POOL_IDLE_TIMEOUT_MS", "0"),
            ("CLOUDBOT_EXECUTE_REUSE_MS", "600001"),
            ("CLOUDBOT_EXECUTE_REUSE_MS", "-1"),
            (TEST_ONLY_EXTRA_CA_VAR, "/nonexistent/ca.pem"),
            (TEST_ONLY_EXTRA_CA_VAR, "Cargo.toml"),
            ("CLOUDBOT_METRICS_NAMESPACE", "AWS/Lambda"),
            ("CLOUDBOT_METRICS_NAMESPACE", "bad{namespace}"),
            ("CLOUDBOT_API_BASE", "ftp://x"),
            ("CLOUDBOT_IDEMPOTENCY_TABLE", "a b"),
            ("CLOUDBOT_IDEMPOTENCY_TABLE", "x"),
            (
                "CLOUDBOT_IDEMPOTENCY_TABLE",
                "arn:aws:dynamodb:us-east-1:1:stream/x",
            ),
            ("CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS", "60"),
            ("CLOUDBOT_RECONCILE_SETTLE_SECONDS", "0"),
            ("CLOUDBOT_RECONCILE_SETTLE_SECONDS", "3601"),
        ] {
            let err = config(&[("CLOUDBOT_SECRET_ID", "s"), (var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
        }
    }

    #[test]
    fn an_execute_reuse_window_of_zero_means_never_reused() {
        let cfg = config(&[
            ("CLOUDBOT_SECRET_ID", "s"),
            ("CLOUDBOT_EXECUTE_REUSE_MS", "0"),
        ])
        .unwrap();
        assert_eq!(cfg.client.execute_reuse_window, Duration::ZERO);
    }

    #[test]
    fn the_idempotency_table_is_optional() {
        let cfg = config(&[("CLOUDBOT_SECRET_ID", "s")]).unwrap();
        assert_eq!(cfg.idempotency, None);
        for table in [
            "cloudbot-idempotency",
            "arn:aws:dynamodb:us-east-1:123456789012:table/cloudbot-idempotency",
        ] {
            let cfg = config(&[
                ("CLOUDBOT_SECRET_ID", "s"),
                ("CLOUDBOT_IDEMPOTENCY_TABLE", table),
                ("CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS", "3600"),
            ])
            .unwrap();
            assert_eq!(
                cfg.idempotency,
                Some(IdempotencyConfig {
                    table: table.to_owned(),
                    expiry: Duration::from_secs(3600),
                    reconcile_settle: crate::idempotency::DEFAULT_RECONCILE_SETTLE,
                })
            );
        }
    }

    #[test]
    fn the_budget_is_off_unless_an_allowance_is_set_and_needs_the_ledger() {
        let ledger = ("CLOUDBOT_RUN_LEDGER_TABLE", "runs");
        let cfg = config(&[("CLOUDBOT_SECRET_ID", "s"), ledger]).unwrap();
        assert_eq!(cfg.budget, None);
        let cfg = config(&[
            ("CLOUDBOT_SECRET_ID", "s"),
            ledger,
            ("CLOUDBOT_BUDGET_MONTHLY_SECONDS", "36000"),
            ("CLOUDBOT_BUDGET_STOP_PERCENT", "90"),
        ])
        .unwrap();
        assert_eq!(
            cfg.budget,
            Some(BudgetConfig {
                budget: crate::usage::Budget {
                    allowance_s: 36_000,
                    stop_percent: 90
                },
                cache_ttl: Duration::from_secs(30),
            })
        );
        for (vars, var) in [
            (
                vec![("CLOUDBOT_BUDGET_MONTHLY_SECONDS", "60")],
                "CLOUDBOT_BUDGET_MONTHLY_SECONDS",
            ),
            (
                vec![ledger, ("CLOUDBOT_BUDGET_MONTHLY_SECONDS", "-1")],
                "CLOUDBOT_BUDGET_MONTHLY_SECONDS",
            ),
            (
                vec![ledger, ("CLOUDBOT_BUDGET_STOP_PERCENT", "101")],
                "CLOUDBOT_BUDGET_STOP_PERCENT",
            ),
            (
                vec![ledger, ("CLOUDBOT_BUDGET_STOP_PERCENT", "0")],
                "CLOUDBOT_BUDGET_STOP_PERCENT",
            ),
            (
                vec![ledger, ("CLOUDBOT_BUDGET_CACHE_SECONDS", "301")],
                "CLOUDBOT_BUDGET_CACHE_SECONDS",
            ),
        ] {
            let mut vars = vars;
            vars.push(("CLOUDBOT_SECRET_ID", "s"));
            assert_eq!(config(&vars).unwrap_err().var, var, "{vars:?}");
        }
    }

    #[test]
    fn the_run_ledger_is_optional_and_kept_400_days_unless_told() {
        let cfg = config(&[("CLOUDBOT_SECRET_ID", "s")]).unwrap();
        assert_eq!(cfg.ledger, None);
        let cfg = config(&[
            ("CLOUDBOT_SECRET_ID", "s"),
            ("CLOUDBOT_RUN_LEDGER_TABLE", "runs"),
        ])
        .unwrap();
        assert_eq!(
            cfg.ledger,
            Some(LedgerConfig {
                table: "runs".to_owned(),
                retention: Duration::from_secs(400 * 86_400)
            })
        );
        for (var, value) in [
            ("CLOUDBOT_RUN_LEDGER_TABLE", "a b"),
            ("CLOUDBOT_RUN_LEDGER_RETENTION_DAYS", "0"),
            ("CLOUDBOT_RUN_LEDGER_RETENTION_DAYS", "x"),
        ] {
            let err = config(&[
                ("CLOUDBOT_SECRET_ID", "s"),
                ("CLOUDBOT_RUN_LEDGER_TABLE", "runs"),
                (var, value),
            ])
            .unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }
}
