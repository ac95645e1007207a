//! One reader per configuration group: which variables it reads, their defaults and bounds, and
//! the checks across variables (callbacks need the idempotency table, whose records must outlive
//! the callback wait). Every variable the function reads is named here.

use super::env::{ConfigError, Env};
use super::{
    CALLBACK_EXPIRY_MARGIN, CallbackConfig, ClientConfig, DEFAULT_API_WARMUP,
    DEFAULT_API_WARMUP_TIMEOUT, DEFAULT_CALLBACK_TIMEOUT, DEFAULT_CALLBACK_TRIES,
    DEFAULT_IDEMPOTENCY_EXPIRY, DEFAULT_SECRET_MAX_STALE, DEFAULT_SECRET_PREFETCH_TIMEOUT,
    DEFAULT_SECRET_TTL, IdempotencyConfig, InitConfig, LedgerConfig, MAX_API_WARMUP_TIMEOUT_MS,
    MAX_CALLBACK_TRIES, MAX_SECRET_PREFETCH_TIMEOUT_MS, Requests, SecretConfig, SecretIds,
    TEST_ONLY_EXTRA_CA_VAR, TestOnlyExtraCa,
};
use crate::cloudbot::{
    ApiBase, ApiWarmUp, BotEndpoint, DEFAULT_CONNECT_TIMEOUT, DEFAULT_EXECUTE_REUSE_WINDOW,
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, Language, PublicId,
};

/// Where requests go and what runs when a request names no target: the API base, the default
/// BOT (under that base) and the default contract (given, or the default BOT's); the language,
/// the default callback attempts and whether plain-http loopback callbacks are allowed.
pub(super) fn requests(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Requests, ConfigError> {
    let api_base = match env.get("CLOUDBOT_API_BASE") {
        Some(raw) => ApiBase::parse(&raw)
            .map_err(|e| ConfigError::new("CLOUDBOT_API_BASE", e.to_string()))?,
        None => ApiBase::default(),
    };
    let default_bot = env
        .get("CLOUDBOT_DEFAULT_BOT_ENDPOINT")
        .map(|raw| {
            BotEndpoint::parse(&api_base, &raw, "CLOUDBOT_DEFAULT_BOT_ENDPOINT").map_err(|e| {
                ConfigError::new(
                    "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
                    format!("{e} (must be a BOT execution endpoint under CLOUDBOT_API_BASE)"),
                )
            })
        })
        .transpose()?;
    let default_public_id = match env.get("CLOUDBOT_DEFAULT_PUBLIC_ID") {
        Some(raw) => Some(
            PublicId::parse(&raw, "CLOUDBOT_DEFAULT_PUBLIC_ID")
                .map_err(|e| ConfigError::new("CLOUDBOT_DEFAULT_PUBLIC_ID", e.to_string()))?,
        ),
        None => default_bot.as_ref().map(|bot| bot.public_id().clone()),
    };
    let language = match env.get("CLOUDBOT_LANGUAGE") {
        Some(raw) => raw
            .parse::<Language>()
            .map_err(|_| ConfigError::new("CLOUDBOT_LANGUAGE", "must be `ja` or `en`"))?,
        None => Language::Ja,
    };
    Ok(Requests {
        api_base,
        default_bot,
        default_public_id,
        language,
        default_callback_tries: env.u32(
            "CLOUDBOT_DEFAULT_CALLBACK_TRIES",
            DEFAULT_CALLBACK_TRIES,
            1,
            MAX_CALLBACK_TRIES,
        )?,
        allow_http_loopback_callback: env.flag("CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK")?,
    })
}

/// The secret's cache: TTL and how long past it a transient failure may be ridden out.
pub(super) fn secret(
    env: &Env<impl Fn(&str) -> Option<String>>,
    id: SecretIds,
) -> Result<SecretConfig, ConfigError> {
    Ok(SecretConfig {
        id,
        ttl: env.seconds("CLOUDBOT_SECRET_TTL_SECONDS", DEFAULT_SECRET_TTL, 0, 86_400)?,
        max_stale: env.seconds(
            "CLOUDBOT_SECRET_MAX_STALE_SECONDS",
            DEFAULT_SECRET_MAX_STALE,
            0,
            86_400,
        )?,
    })
}

/// The work of init: the secret prefetch and the Cloud BOT connection warm-up, each bounded.
pub(super) fn init(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<InitConfig, ConfigError> {
    Ok(InitConfig {
        secret_prefetch_timeout: env.ms_or_off(
            "CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS",
            DEFAULT_SECRET_PREFETCH_TIMEOUT,
            MAX_SECRET_PREFETCH_TIMEOUT_MS,
        )?,
        api_warmup: match env.get("CLOUDBOT_API_WARMUP") {
            Some(raw) => raw.parse::<ApiWarmUp>().map_err(|()| {
                ConfigError::new("CLOUDBOT_API_WARMUP", "must be `tls`, `head` or `off`")
            })?,
            None => DEFAULT_API_WARMUP,
        },
        api_warmup_timeout: env.ms_or_off(
            "CLOUDBOT_API_WARMUP_TIMEOUT_MS",
            DEFAULT_API_WARMUP_TIMEOUT,
            MAX_API_WARMUP_TIMEOUT_MS,
        )?,
    })
}

/// The Cloud BOT client's timeouts and connection reuse.
pub(super) fn client(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<ClientConfig, ConfigError> {
    Ok(ClientConfig {
        connect_timeout: env.ms(
            "CLOUDBOT_CONNECT_TIMEOUT_MS",
            DEFAULT_CONNECT_TIMEOUT,
            60_000,
        )?,
        request_timeout: env.ms(
            "CLOUDBOT_REQUEST_TIMEOUT_MS",
            DEFAULT_REQUEST_TIMEOUT,
            900_000,
        )?,
        pool_idle_timeout: env.ms(
            "CLOUDBOT_POOL_IDLE_TIMEOUT_MS",
            DEFAULT_POOL_IDLE_TIMEOUT,
            600_000,
        )?,
        execute_reuse_window: env.ms_or_off(
            "CLOUDBOT_EXECUTE_REUSE_MS",
            DEFAULT_EXECUTE_REUSE_WINDOW,
            600_000,
        )?,
    })
}

/// Callback-driven runs: the base URL and the callback wait, checked against the idempotency
/// table (it holds the callback records, which must outlive the wait and the polling fallback)
/// and the plain-http switch.
pub(super) fn callbacks(
    env: &Env<impl Fn(&str) -> Option<String>>,
    idempotency: Option<&IdempotencyConfig>,
    requests: &Requests,
) -> Result<Option<CallbackConfig>, ConfigError> {
    let base = callback_base(env)?;
    let timeout = env.seconds(CALLBACK_TIMEOUT, DEFAULT_CALLBACK_TIMEOUT, 120, 21_600)?;
    let Some(base) = base else {
        return Ok(None);
    };
    let Some(idempotency) = idempotency else {
        return Err(ConfigError::new(
            CALLBACK_BASE,
            "needs CLOUDBOT_IDEMPOTENCY_TABLE (the callback records live in that table)",
        ));
    };
    let needed = timeout + CALLBACK_EXPIRY_MARGIN;
    if idempotency.expiry <= needed {
        return Err(ConfigError::new(
            IDEMPOTENCY_EXPIRY,
            format!(
                "is {} s; with callbacks on it must exceed {CALLBACK_TIMEOUT} ({} s) by \
                 more than {} s, i.e. be at least {} s: the polling fallback after a \
                 callback timeout finds the job through the idempotency record \
                 (docs/state-machines.md)",
                idempotency.expiry.as_secs(),
                timeout.as_secs(),
                CALLBACK_EXPIRY_MARGIN.as_secs(),
                needed.as_secs() + 1,
            ),
        ));
    }
    if base.scheme() == "http" && !(requests.allow_http_loopback_callback && is_loopback(&base)) {
        return Err(ConfigError::new(
            CALLBACK_BASE,
            "plain http is allowed only for loopback hosts with \
             CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK=true",
        ));
    }
    Ok(Some(CallbackConfig { base, timeout }))
}

const CALLBACK_BASE: &str = "CLOUDBOT_CALLBACK_BASE_URL";
const CALLBACK_TIMEOUT: &str = "CLOUDBOT_CALLBACK_TIMEOUT_SECONDS";
const IDEMPOTENCY_EXPIRY: &str = "CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS";

/// `CLOUDBOT_CALLBACK_BASE_URL`: an absolute http(s) URL without user information, query or
/// fragment whose path ends with `/callbacks` (the route the function serves). Read at cold
/// start from a value the template builds from the callback API's id, so the function's
/// environment does not depend on a route to the function itself (no CloudFormation cycle).
fn callback_base(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<url::Url>, ConfigError> {
    let Some(raw) = env.get(CALLBACK_BASE) else {
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
pub(super) fn extra_ca(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<TestOnlyExtraCa>, ConfigError> {
    let Some(path) = env.get(TEST_ONLY_EXTRA_CA_VAR) else {
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

/// `CLOUDBOT_IDEMPOTENCY_TABLE` (name or ARN), `CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS` and
/// `CLOUDBOT_RECONCILE_SETTLE_SECONDS` (docs/exactly-once.md, "Reconciling unknown outcomes"). The
/// expiry is at least 15 minutes, the longest Lambda invocation: a record must outlive its
/// owner's in-flight window, or a claim whose owner died would be taken as free.
pub(super) fn idempotency(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<IdempotencyConfig>, ConfigError> {
    const TABLE: &str = "CLOUDBOT_IDEMPOTENCY_TABLE";
    let expiry = env.seconds(
        IDEMPOTENCY_EXPIRY,
        DEFAULT_IDEMPOTENCY_EXPIRY,
        900,
        30 * 86_400,
    )?;
    // The job list's lag is not published: 1 s suits the emulator, an hour is past any lag.
    let reconcile_settle = env.seconds(
        "CLOUDBOT_RECONCILE_SETTLE_SECONDS",
        crate::idempotency::DEFAULT_RECONCILE_SETTLE,
        1,
        3600,
    )?;
    let Some(table) = table_name(env, TABLE)? else {
        return Ok(None);
    };
    Ok(Some(IdempotencyConfig {
        table,
        expiry,
        reconcile_settle,
    }))
}

/// `CLOUDBOT_RUN_LEDGER_TABLE` (name or ARN) and `CLOUDBOT_RUN_LEDGER_RETENTION_DAYS` (1 to
/// 3650; docs/ledger.md, "Retention").
pub(super) fn ledger(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<LedgerConfig>, ConfigError> {
    const TABLE: &str = "CLOUDBOT_RUN_LEDGER_TABLE";
    const RETENTION: &str = "CLOUDBOT_RUN_LEDGER_RETENTION_DAYS";
    let days = match env.get(RETENTION) {
        None => crate::ledger::DEFAULT_RETENTION_DAYS,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| {
                ConfigError::new(RETENTION, "must be a whole number of days from 1 to 3650")
            })?,
    };
    let Some(table) = table_name(env, TABLE)? else {
        return Ok(None);
    };
    Ok(Some(LedgerConfig {
        table,
        retention: std::time::Duration::from_secs(days * 86_400),
    }))
}

/// `CLOUDBOT_MAX_RUN_SECONDS`: the stack default maximum run time, 0 (or unset) for none, at
/// most [`crate::overrun::MAX_RUN_SECONDS_LIMIT`] (docs/overrun.md).
pub(super) fn max_run(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<std::time::Duration>, ConfigError> {
    let seconds = env.u64(
        "CLOUDBOT_MAX_RUN_SECONDS",
        0,
        0,
        crate::overrun::MAX_RUN_SECONDS_LIMIT,
    )?;
    Ok((seconds > 0).then(|| std::time::Duration::from_secs(seconds)))
}

/// A DynamoDB table name or ARN from `var` (`None` when unset).
fn table_name(
    env: &Env<impl Fn(&str) -> Option<String>>,
    var: &'static str,
) -> Result<Option<String>, ConfigError> {
    let Some(table) = env.get(var) else {
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
            var,
            "must be a DynamoDB table name (3-255 characters: letters, digits, `_`, `-`, `.`) \
             or a table ARN",
        ));
    }
    Ok(Some(table))
}

/// `CLOUDBOT_METRICS_NAMESPACE`: CloudWatch's namespace rules (1 to 255 letters, digits, space
/// and `. - _ / # :`, not starting with `AWS/`, which is reserved), checked here because
/// CloudWatch drops the metrics of an invalid EMF namespace silently.
pub(super) fn metrics_namespace(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<String, ConfigError> {
    const VAR: &str = "CLOUDBOT_METRICS_NAMESPACE";
    let Some(raw) = env.get(VAR) else {
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

/// Messages of one run queue batch handled at once (docs/queue.md, "Concurrency end to end"):
/// 1 to 10, the largest batch the template's event source mappings deliver.
pub(super) fn queue_concurrency(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<usize, ConfigError> {
    const VAR: &str = "CLOUDBOT_QUEUE_CONCURRENCY";
    const DEFAULT: usize = 4;
    match env.get(VAR) {
        None => Ok(DEFAULT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| ConfigError::new(VAR, "must be a whole number from 1 to 10")),
    }
}

/// `CLOUDBOT_RUN_DEAD_LETTER_QUEUE_URL`: the run dead-letter queue's URL (what `SendMessage`
/// takes), checked here so a typo is said at cold start rather than at the first bad message.
pub(super) fn run_dead_letter_queue_url(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<String>, ConfigError> {
    const VAR: &str = "CLOUDBOT_RUN_DEAD_LETTER_QUEUE_URL";
    match env.get(VAR) {
        None => Ok(None),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(Some(url)),
        Some(_) => Err(ConfigError::new(VAR, "must be a queue URL (https://...)")),
    }
}
