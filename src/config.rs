//! Function configuration: the only place that reads environment variables.
//!
//! `Config::from_env()` runs once at cold start; every value is parsed and validated there, so a
//! misconfigured function fails at start-up with an error naming the variable instead of failing
//! on its first invocation. Tests build a `Config` from a map with [`Config::from_lookup`] so they
//! never mutate the process environment.

use std::time::Duration;

use crate::cloudbot::{
    ApiBase, ApiWarmUp, BotEndpoint, DEFAULT_CONNECT_TIMEOUT, DEFAULT_EXECUTE_REUSE_WINDOW,
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, Language, PublicId,
};

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
}

/// Validated configuration of the function.
#[derive(Debug, Clone)]
pub struct Config {
    /// Secrets Manager secret name or ARN holding `{"access_token", "secret_key"}`.
    pub secret_id: String,
    /// The only origin credentials are sent to.
    pub api_base: ApiBase,
    /// BOT run when a request names none (for example an empty scheduled event).
    pub default_bot: Option<BotEndpoint>,
    /// Contract used by `list_bots` / `refer_job` / `bot_id` when the request names none.
    pub default_public_id: Option<PublicId>,
    /// Default `content-language` for Cloud BOT messages.
    pub language: Language,
    /// How long fetched credentials are reused before Secrets Manager is asked again.
    pub secret_ttl: Duration,
    /// How long past the TTL they may still be used while Secrets Manager fails transiently.
    pub secret_max_stale: Duration,
    /// How long init waits for the secret before leaving the fetch to the first invocation
    /// (`ZERO`: no fetch during init).
    pub secret_prefetch_timeout: Duration,
    /// How init prepares the Cloud BOT connection.
    pub api_warmup: ApiWarmUp,
    /// How long init waits for that (`ZERO`: no warm-up).
    pub api_warmup_timeout: Duration,
    /// `callback_tries` used when a request gives `callback_endpoint` alone.
    pub default_callback_tries: u32,
    /// Allow `http://` callback endpoints on loopback hosts (local runs only).
    pub allow_http_loopback_callback: bool,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Upstream request timeout (always capped by the invocation's remaining time).
    pub request_timeout: Duration,
    /// The idempotency table; `None` runs without deduplication (warned at cold start).
    pub idempotency: Option<IdempotencyConfig>,
    /// Public URL of the callback route (`…/callbacks`); `None`: no callback-driven runs
    /// (docs/state-machines.md). Needs the idempotency table, which holds the callback records.
    pub callback_base: Option<url::Url>,
    /// How long a callback-driven task waits for its callback before the polling fallback (the
    /// state machines' `CallbackTimeoutSeconds`); with callbacks on, the idempotency expiry must
    /// exceed it by [`CALLBACK_EXPIRY_MARGIN`].
    pub callback_timeout: Duration,
    /// How long an idle upstream connection (Cloud BOT reads and Secrets Manager) is kept for
    /// reuse.
    pub pool_idle_timeout: Duration,
    /// How long an idle connection is kept for the next execute POST (`0`: never reused); must
    /// stay below the shortest idle timeout on the way to Cloud BOT.
    pub execute_reuse_window: Duration,
    /// CloudWatch namespace of the EMF metrics (`CLOUDBOT_METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// Extra CA trusted by both upstream clients: tests only (`None` in any deployment).
    pub test_only_extra_ca: Option<TestOnlyExtraCa>,
}

/// A configuration variable is missing or invalid; `Display` names the variable, never its value
/// when the value could be sensitive.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

impl Config {
    /// Reads and validates the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads and validates the configuration from any name → value lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty variable counts as unset: CloudFormation and `--env-vars` make empty values easy.
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret_id = get("CLOUDBOT_SECRET_ID").ok_or_else(|| {
            ConfigError::new("CLOUDBOT_SECRET_ID", "is required (secret name or ARN)")
        })?;
        let targets = Targets::from_lookup(&get)?;
        Ok(Self {
            secret_id,
            api_base: targets.api_base,
            default_bot: targets.default_bot,
            default_public_id: targets.default_public_id,
            language: match get("CLOUDBOT_LANGUAGE") {
                Some(raw) => raw
                    .parse::<Language>()
                    .map_err(|_| ConfigError::new("CLOUDBOT_LANGUAGE", "must be `ja` or `en`"))?,
                None => Language::Ja,
            },
            secret_ttl: Duration::from_secs(parse_u64(
                &get,
                "CLOUDBOT_SECRET_TTL_SECONDS",
                DEFAULT_SECRET_TTL.as_secs(),
                0,
                86_400,
            )?),
            secret_max_stale: Duration::from_secs(parse_u64(
                &get,
                "CLOUDBOT_SECRET_MAX_STALE_SECONDS",
                DEFAULT_SECRET_MAX_STALE.as_secs(),
                0,
                86_400,
            )?),
            secret_prefetch_timeout: parse_ms_or_off(
                &get,
                "CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS",
                DEFAULT_SECRET_PREFETCH_TIMEOUT,
                MAX_SECRET_PREFETCH_TIMEOUT_MS,
            )?,
            api_warmup: match get("CLOUDBOT_API_WARMUP") {
                Some(raw) => raw.parse::<ApiWarmUp>().map_err(|()| {
                    ConfigError::new("CLOUDBOT_API_WARMUP", "must be `tls`, `head` or `off`")
                })?,
                None => DEFAULT_API_WARMUP,
            },
            api_warmup_timeout: parse_ms_or_off(
                &get,
                "CLOUDBOT_API_WARMUP_TIMEOUT_MS",
                DEFAULT_API_WARMUP_TIMEOUT,
                MAX_API_WARMUP_TIMEOUT_MS,
            )?,
            default_callback_tries: parse_u32(
                &get,
                "CLOUDBOT_DEFAULT_CALLBACK_TRIES",
                DEFAULT_CALLBACK_TRIES,
                1,
                MAX_CALLBACK_TRIES,
            )?,
            allow_http_loopback_callback: parse_flag(
                &get,
                "CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK",
            )?,
            connect_timeout: parse_ms(
                &get,
                "CLOUDBOT_CONNECT_TIMEOUT_MS",
                DEFAULT_CONNECT_TIMEOUT,
                60_000,
            )?,
            request_timeout: parse_ms(
                &get,
                "CLOUDBOT_REQUEST_TIMEOUT_MS",
                DEFAULT_REQUEST_TIMEOUT,
                900_000,
            )?,
            idempotency: idempotency(&get)?,
            callback_base: callback_base(&get)?,
            callback_timeout: Duration::from_secs(parse_u64(
                &get,
                CALLBACK_TIMEOUT,
                DEFAULT_CALLBACK_TIMEOUT.as_secs(),
                120,
                21_600,
            )?),
            pool_idle_timeout: parse_ms(
                &get,
                "CLOUDBOT_POOL_IDLE_TIMEOUT_MS",
                DEFAULT_POOL_IDLE_TIMEOUT,
                600_000,
            )?,
            execute_reuse_window: parse_ms_or_off(
                &get,
                "CLOUDBOT_EXECUTE_REUSE_MS",
                DEFAULT_EXECUTE_REUSE_WINDOW,
                600_000,
            )?,
            metrics_namespace: parse_namespace(&get)?,
            test_only_extra_ca: parse_extra_ca(&get)?,
        })
        .and_then(Config::check_callbacks)
    }

    fn check_callbacks(self) -> Result<Self, ConfigError> {
        if let Some(base) = &self.callback_base {
            let Some(idempotency) = &self.idempotency else {
                return Err(ConfigError::new(
                    CALLBACK_BASE,
                    "needs CLOUDBOT_IDEMPOTENCY_TABLE (the callback records live in that table)",
                ));
            };
            let needed = self.callback_timeout + CALLBACK_EXPIRY_MARGIN;
            if idempotency.expiry <= needed {
                return Err(ConfigError::new(
                    IDEMPOTENCY_EXPIRY,
                    format!(
                        "is {} s; with callbacks on it must exceed {CALLBACK_TIMEOUT} ({} s) by                          more than {} s, i.e. be at least {} s: the polling fallback after a                          callback timeout finds the job through the idempotency record                          (docs/state-machines.md)",
                        idempotency.expiry.as_secs(),
                        self.callback_timeout.as_secs(),
                        CALLBACK_EXPIRY_MARGIN.as_secs(),
                        needed.as_secs() + 1,
                    ),
                ));
            }
            if base.scheme() == "http" && !(self.allow_http_loopback_callback && is_loopback(base))
            {
                return Err(ConfigError::new(
                    CALLBACK_BASE,
                    "plain http is allowed only for loopback hosts with \
                     CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK=true",
                ));
            }
        }
        Ok(self)
    }
}

const CALLBACK_BASE: &str = "CLOUDBOT_CALLBACK_BASE_URL";
const CALLBACK_TIMEOUT: &str = "CLOUDBOT_CALLBACK_TIMEOUT_SECONDS";
const IDEMPOTENCY_EXPIRY: &str = "CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS";

/// `CLOUDBOT_CALLBACK_BASE_URL`: an absolute http(s) URL without user information, query or
/// fragment whose path ends with `/callbacks` (the route the function serves). Read at cold
/// start from a value the template builds from the callback API's id, so the function's
/// environment does not depend on a route to the function itself (no CloudFormation cycle).
fn callback_base(get: &impl Fn(&str) -> Option<String>) -> Result<Option<url::Url>, ConfigError> {
    let Some(raw) = get(CALLBACK_BASE) else {
        return Ok(None);
    };
    let url = url::Url::parse(&raw)
        .map_err(|_| ConfigError::new(CALLBACK_BASE, "is not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(ConfigError::new(CALLBACK_BASE, "must be an https URL"));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(ConfigError::new(
            CALLBACK_BASE,
            "must not carry user information, a query or a fragment",
        ));
    }
    if !url.path().trim_end_matches('/').ends_with("/callbacks") {
        return Err(ConfigError::new(
            CALLBACK_BASE,
            "must end with /callbacks (the callback route)",
        ));
    }
    Ok(Some(url))
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// [`TEST_ONLY_EXTRA_CA_VAR`]: the file must hold at least one PEM certificate.
fn parse_extra_ca(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TestOnlyExtraCa>, ConfigError> {
    let Some(path) = get(TEST_ONLY_EXTRA_CA_VAR) else {
        return Ok(None);
    };
    let pem = std::fs::read(&path).map_err(|e| {
        ConfigError::new(TEST_ONLY_EXTRA_CA_VAR, format!("cannot read {path}: {e}"))
    })?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError::new(
            TEST_ONLY_EXTRA_CA_VAR,
            format!("{path} holds no PEM certificate"),
        ));
    }
    Ok(Some(TestOnlyExtraCa { path, pem }))
}

/// `CLOUDBOT_IDEMPOTENCY_TABLE` (name or ARN) and `CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS`. The
/// expiry is at least 15 minutes, the longest Lambda invocation: a record must outlive its
/// owner's in-flight window, or a claim whose owner died would be taken as free.
fn idempotency(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<IdempotencyConfig>, ConfigError> {
    const TABLE: &str = "CLOUDBOT_IDEMPOTENCY_TABLE";
    let expiry = Duration::from_secs(parse_u64(
        get,
        IDEMPOTENCY_EXPIRY,
        DEFAULT_IDEMPOTENCY_EXPIRY.as_secs(),
        900,
        30 * 86_400,
    )?);
    let Some(table) = get(TABLE) else {
        return Ok(None);
    };
    let name_ok = |name: &str| {
        (3..=255).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let valid = match table.strip_prefix("arn:") {
        Some(_) => table
            .rsplit_once(":table/")
            .is_some_and(|(_, name)| name_ok(name)),
        None => name_ok(&table),
    };
    if !valid {
        return Err(ConfigError::new(
            TABLE,
            "must be a DynamoDB table name (3-255 characters: letters, digits, `_`, `-`, `.`) \
             or a table ARN",
        ));
    }
    Ok(Some(IdempotencyConfig { table, expiry }))
}

/// `CLOUDBOT_METRICS_NAMESPACE`: CloudWatch's namespace rules (1 to 255 letters, digits, space
/// and `. - _ / # :`, not starting with `AWS/`, which is reserved), checked here because
/// CloudWatch drops the metrics of an invalid EMF namespace silently.
fn parse_namespace(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    const VAR: &str = "CLOUDBOT_METRICS_NAMESPACE";
    let Some(raw) = get(VAR) else {
        return Ok(crate::metrics::DEFAULT_NAMESPACE.to_owned());
    };
    if raw.len() > 255
        || !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/#: ".contains(&b))
    {
        return Err(ConfigError::new(
            VAR,
            "must be at most 255 characters of letters, digits and . - _ / # : or space",
        ));
    }
    if raw.starts_with("AWS/") {
        return Err(ConfigError::new(
            VAR,
            "must not start with `AWS/` (reserved)",
        ));
    }
    Ok(raw)
}

/// Where requests go and what runs when a request names no target: the API base, the default
/// BOT (under that base) and the default contract (given, or the default BOT's).
struct Targets {
    api_base: ApiBase,
    default_bot: Option<BotEndpoint>,
    default_public_id: Option<PublicId>,
}

impl Targets {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let api_base = match get("CLOUDBOT_API_BASE") {
            Some(raw) => ApiBase::parse(&raw)
                .map_err(|e| ConfigError::new("CLOUDBOT_API_BASE", e.to_string()))?,
            None => ApiBase::default(),
        };
        let default_bot = get("CLOUDBOT_DEFAULT_BOT_ENDPOINT")
            .map(|raw| {
                BotEndpoint::parse(&api_base, &raw, "CLOUDBOT_DEFAULT_BOT_ENDPOINT").map_err(|e| {
                    ConfigError::new(
                        "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
                        format!("{e} (must be a BOT execution endpoint under CLOUDBOT_API_BASE)"),
                    )
                })
            })
            .transpose()?;
        let default_public_id = match get("CLOUDBOT_DEFAULT_PUBLIC_ID") {
            Some(raw) => Some(
                PublicId::parse(&raw, "CLOUDBOT_DEFAULT_PUBLIC_ID")
                    .map_err(|e| ConfigError::new("CLOUDBOT_DEFAULT_PUBLIC_ID", e.to_string()))?,
            ),
            None => default_bot.as_ref().map(|bot| bot.public_id().clone()),
        };
        Ok(Self {
            api_base,
            default_bot,
            default_public_id,
        })
    }
}

fn parse_flag(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<bool, ConfigError> {
    match get(var).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ConfigError::new(var, "must be `true` or `false`")),
    }
}

fn parse_ms(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
    max_ms: u64,
) -> Result<Duration, ConfigError> {
    parse_ms_between(get, var, default, 1, max_ms)
}

/// Like [`parse_ms`], with `0` allowed (it turns the setting off).
fn parse_ms_or_off(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
    max_ms: u64,
) -> Result<Duration, ConfigError> {
    parse_ms_between(get, var, default, 0, max_ms)
}

fn parse_ms_between(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
    min_ms: u64,
    max_ms: u64,
) -> Result<Duration, ConfigError> {
    let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
    parse_u64(get, var, default_ms, min_ms, max_ms).map(Duration::from_millis)
}

fn parse_u32(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let value = parse_u64(get, var, default.into(), min.into(), max.into())?;
    u32::try_from(value).map_err(|_| ConfigError::new(var, "out of range"))
}

fn parse_u64(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    let value: u64 = raw.parse().map_err(|_| {
        ConfigError::new(
            var,
            format!("must be a whole number between {min} and {max}"),
        )
    })?;
    if !(min..=max).contains(&value) {
        return Err(ConfigError::new(
            var,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(cfg.secret_ttl, Duration::from_secs(300));
        assert_eq!(cfg.default_callback_tries, 3);
        assert_eq!(cfg.secret_ttl, DEFAULT_SECRET_TTL);
        assert_eq!(cfg.secret_max_stale, Duration::from_secs(900));
        assert_eq!(cfg.secret_prefetch_timeout, DEFAULT_SECRET_PREFETCH_TIMEOUT);
        assert_eq!(cfg.api_warmup, ApiWarmUp::Tls);
        assert_eq!(cfg.api_warmup_timeout, Duration::from_millis(500));
        assert_eq!(cfg.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(cfg.pool_idle_timeout, DEFAULT_POOL_IDLE_TIMEOUT);
        assert_eq!(cfg.execute_reuse_window, Duration::from_millis(1000));
        assert!(!cfg.allow_http_loopback_callback);
        assert!(cfg.default_bot.is_none());
        assert!(cfg.default_public_id.is_none());
        assert_eq!(cfg.connect_timeout, Duration::from_millis(3000));
        assert_eq!(cfg.request_timeout, Duration::from_millis(25000));
        assert!(cfg.callback_base.is_none());
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
            ok.callback_base.unwrap().as_str(),
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
        assert_eq!(ok.callback_timeout, DEFAULT_CALLBACK_TIMEOUT);
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
        assert_eq!(cfg.default_public_id.unwrap().as_str(), "demo");
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
        assert_eq!(cfg.execute_reuse_window, Duration::ZERO);
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
                    expiry: Duration::from_secs(3600)
                })
            );
        }
    }
}
