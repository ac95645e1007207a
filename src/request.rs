//! The one logical request every trigger is decoded into, and its validation.
//!
//! Input is a JSON object (a Step Functions task input, an EventBridge `detail`, an API Gateway
//! body merged with its path parameters). Every key is matched against the known field names, so
//! an unknown field is rejected by name (the effect of serde's `deny_unknown_fields`, but with the
//! field named in every error, including wrong types, which serde's messages do not name). `null`
//! is rejected like a wrong type: a request must never silently lose a field and fall back to the
//! default BOT. Endpoints and ids are parsed by the client's endpoint module against the configured
//! API base, so credentials can only ever be sent to that origin.

use serde_json::{Map, Value};

use crate::callback::{CallbackId, TaskToken};
use crate::cloudbot::{
    BotEndpoint, BotId, ExecuteRequest, JobEndpoint, JobId, Language, MAX_REQUEST_BODY, PublicId,
};
use crate::config::{Config, MAX_CALLBACK_TRIES};
use crate::idempotency::{RecordKey, Resolution};

/// Largest `timeout` (ms) accepted ([I]: the API documents no maximum; the public sample code
/// uses 120000). The value actually sent is also capped by the invocation's remaining time.
pub const MAX_TIMEOUT_MS: u64 = 120_000;

/// The request is invalid; nothing was sent upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A field is unknown, missing, of the wrong type, out of range or conflicts with another.
    #[error("field `{field}`: {reason}")]
    Field {
        /// The field at fault (as named in the request).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The event or body is not a request at all (not JSON, not an object, unknown event shape).
    #[error("{0}")]
    Malformed(String),
    /// The body (or the execute payload it would produce) is larger than allowed.
    #[error("{what} is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// An API Gateway event for a method and path this function does not serve. The path is
    /// neither kept nor repeated: it may carry a secret callback id (a `GET /callbacks/<id>`).
    #[error("no route for {method} on this path")]
    NoRoute {
        /// HTTP method.
        method: String,
    },
}

impl RequestError {
    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        // An unknown field's name is caller-controlled: keep the message short.
        let field: String = field.into();
        let field = if field.chars().count() > 64 {
            field.chars().take(64).chain("…".chars()).collect()
        } else {
            field
        };
        Self::Field {
            field,
            reason: reason.into(),
        }
    }
}

/// The operations a request can name, parsed once from its `operation` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Start a BOT (the default when `operation` is absent).
    Execute,
    /// Read one job.
    ReferJob,
    /// List the API-published BOTs of a contract.
    ListBots,
    /// Operators only: settle an idempotency record whose outcome is unknown
    /// (docs/exactly-once.md). Accepted from direct invocations only.
    ResolveIdempotency,
    /// Cloud BOT's callback at a job's end (the callback route only; never parsed from a
    /// request's `operation` field, so it is not in [`OperationKind::ALL`]).
    Callback,
}

impl OperationKind {
    /// Every operation, in documentation order.
    pub const ALL: [OperationKind; 4] = [
        OperationKind::Execute,
        OperationKind::ReferJob,
        OperationKind::ListBots,
        OperationKind::ResolveIdempotency,
    ];

    /// The operations that call Cloud BOT for a BOT or job (every one but the operator's).
    const CLOUD_BOT: [OperationKind; 3] = [
        OperationKind::Execute,
        OperationKind::ReferJob,
        OperationKind::ListBots,
    ];

    /// Stable name as used in requests, results and logs.
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::Execute => "execute",
            OperationKind::ReferJob => "refer_job",
            OperationKind::ListBots => "list_bots",
            OperationKind::ResolveIdempotency => "resolve_idempotency",
            OperationKind::Callback => "callback",
        }
    }

    /// The operation named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// What to do, with every target already validated against the API base.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Start a BOT.
    Execute {
        /// The BOT execution endpoint.
        bot: BotEndpoint,
        /// True when the request named no BOT and the configured default is used.
        default_bot: bool,
        /// The execute body (input, callback, timeout).
        body: ExecuteRequest,
    },
    /// Read one job.
    ReferJob {
        /// The job reference endpoint.
        job: JobEndpoint,
    },
    /// List the API-published BOTs of a contract.
    ListBots {
        /// The contract.
        public_id: PublicId,
    },
    /// Settle an idempotency record whose outcome is unknown (operators, direct invoke only).
    ResolveIdempotency {
        /// The record's key, as shown in the error or log (`request:...`, `http:...`).
        key: RecordKey,
        /// What the operator found.
        resolution: Resolution,
        /// `started`: the job the operator found (checked with refer_job before it is recorded).
        job: Option<JobEndpoint>,
    },
    /// Cloud BOT's callback for the job of a callback-driven task (docs/state-machines.md).
    Callback {
        /// The id from the callback URL, checked for shape only; `None` when the path segment
        /// does not have an id's shape (answered `Callback.NotFound` like an unknown id, with
        /// no lookup).
        id: Option<CallbackId>,
    },
}

impl Operation {
    /// Which operation this is.
    pub fn kind(&self) -> OperationKind {
        match self {
            Operation::Execute { .. } => OperationKind::Execute,
            Operation::ReferJob { .. } => OperationKind::ReferJob,
            Operation::ListBots { .. } => OperationKind::ListBots,
            Operation::ResolveIdempotency { .. } => OperationKind::ResolveIdempotency,
            Operation::Callback { .. } => OperationKind::Callback,
        }
    }
}

/// A validated logical request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation and its target.
    pub operation: Operation,
    /// Language of Cloud BOT messages (request value or the configured default).
    pub language: Language,
    /// Execute only: the key that makes a repeated delivery start the BOT at most once
    /// (docs/exactly-once.md). `None`: not deduplicated.
    pub idempotency_key: Option<RecordKey>,
    /// Execute only: the token of a Step Functions task waiting for the job's end
    /// (`.waitForTaskToken`, the envelope's `task_token`); the job is started with our callback.
    pub task_token: Option<TaskToken>,
}

use OperationKind::{Execute, ListBots, ReferJob, ResolveIdempotency};

/// Every request field, with the operations that accept it (one list: the unknown-field message
/// and the per-operation check cannot drift apart).
const FIELDS: &[(&str, &[OperationKind])] = &[
    ("operation", &OperationKind::ALL),
    ("idempotency_key", &[Execute]),
    ("bot_endpoint", &[Execute]),
    ("public_id", &OperationKind::CLOUD_BOT),
    ("bot_id", &[Execute]),
    ("input", &[Execute]),
    ("callback_endpoint", &[Execute]),
    ("callback_tries", &[Execute]),
    ("timeout", &[Execute]),
    ("language", &OperationKind::ALL),
    ("job_reference_endpoint", &[ReferJob, ResolveIdempotency]),
    ("job_id", &[ReferJob]),
    ("record_key", &[ResolveIdempotency]),
    ("resolution", &[ResolveIdempotency]),
];

/// The operations that accept `field`; `None` for an unknown field.
fn operations_of(field: &str) -> Option<&'static [OperationKind]> {
    FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, ops)| *ops)
}

/// Validates a request given as a JSON object map.
pub fn parse_map(map: Map<String, Value>, config: &Config) -> Result<Request, RequestError> {
    check_keys(&map)?;
    let kind = operation_kind(&map)?;
    if let Some(key) = map
        .keys()
        .find(|k| !operations_of(k).is_some_and(|ops| ops.contains(&kind)))
    {
        return Err(RequestError::field(
            key.as_str(),
            format!("is not valid for operation `{}`", kind.name()),
        ));
    }
    let language = match map.get("language") {
        None => config.language,
        Some(v) => str_field(v, "language")?
            .parse::<Language>()
            .map_err(|_| RequestError::field("language", "must be `ja` or `en`"))?,
    };
    let operation = match kind {
        Execute => parse_execute(&map, config)?,
        ReferJob => parse_refer_job(&map, config)?,
        ListBots => Operation::ListBots {
            public_id: public_id_or_default(&map, config, ListBots)?,
        },
        ResolveIdempotency => parse_resolve(&map, config)?,
        // Not in OperationKind::ALL, so `operation_kind` never returns it.
        OperationKind::Callback => {
            return Err(RequestError::field(
                "operation",
                "`callback` is served on the callback route only",
            ));
        }
    };
    let idempotency_key = map
        .get("idempotency_key")
        .map(|v| {
            RecordKey::request(str_field(v, "idempotency_key")?)
                .map_err(|problem| RequestError::field("idempotency_key", problem.to_string()))
        })
        .transpose()?;
    Ok(Request {
        operation,
        language,
        idempotency_key,
        task_token: None,
    })
}

/// `resolve_idempotency`: `record_key`, `resolution` (`started` with `job_reference_endpoint`,
/// or `not_started`).
fn parse_resolve(map: &Map<String, Value>, config: &Config) -> Result<Operation, RequestError> {
    let key = match map.get("record_key") {
        Some(v) => RecordKey::parse(str_field(v, "record_key")?)
            .map_err(|problem| RequestError::field("record_key", problem.to_string()))?,
        None => {
            return Err(RequestError::field(
                "record_key",
                "is required for `resolve_idempotency`",
            ));
        }
    };
    let resolution = match map
        .get("resolution")
        .map(|v| str_field(v, "resolution"))
        .transpose()?
    {
        Some("started") => Resolution::Started,
        Some("not_started") => Resolution::NotStarted,
        _ => {
            return Err(RequestError::field(
                "resolution",
                "must be `started` (with `job_reference_endpoint`) or `not_started`",
            ));
        }
    };
    let job = map
        .get("job_reference_endpoint")
        .map(|v| {
            JobEndpoint::parse(
                &config.api_base,
                str_field(v, "job_reference_endpoint")?,
                "job_reference_endpoint",
            )
            .map_err(endpoint_error)
        })
        .transpose()?;
    match (resolution, &job) {
        (Resolution::Started, None) => Err(RequestError::field(
            "job_reference_endpoint",
            "is required with `resolution` `started` (the job you found in the BOT's job list)",
        )),
        (Resolution::NotStarted, Some(_)) => Err(RequestError::field(
            "job_reference_endpoint",
            "conflicts with `resolution` `not_started`",
        )),
        _ => Ok(Operation::ResolveIdempotency {
            key,
            resolution,
            job,
        }),
    }
}

/// Every key is a known field, and none is null.
fn check_keys(map: &Map<String, Value>) -> Result<(), RequestError> {
    if let Some(unknown) = map.keys().find(|k| operations_of(k).is_none()) {
        let known: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
        return Err(RequestError::field(
            unknown.as_str(),
            format!("unknown field; expected one of: {}", known.join(", ")),
        ));
    }
    if let Some((key, _)) = map.iter().find(|(_, v)| v.is_null()) {
        return Err(RequestError::field(
            key.as_str(),
            "must not be null (omit the field instead)",
        ));
    }
    Ok(())
}

fn operation_kind(map: &Map<String, Value>) -> Result<OperationKind, RequestError> {
    match map.get("operation") {
        None => Ok(Execute),
        Some(v) => OperationKind::parse(str_field(v, "operation")?).ok_or_else(|| {
            RequestError::field(
                "operation",
                "must be `execute`, `refer_job`, `list_bots` or `resolve_idempotency`",
            )
        }),
    }
}

fn parse_execute(map: &Map<String, Value>, config: &Config) -> Result<Operation, RequestError> {
    let (bot, default_bot) = bot_target(map, config)?;
    let callback_endpoint = map
        .get("callback_endpoint")
        .map(|v| callback_url(str_field(v, "callback_endpoint")?, config))
        .transpose()?;
    let callback_tries = callback_tries(map, callback_endpoint.is_some(), config)?;
    let body = ExecuteRequest {
        input: input(map)?,
        callback_endpoint,
        callback_tries,
        timeout_ms: timeout_ms(map)?,
    };
    check_body_size(&body)?;
    Ok(Operation::Execute {
        bot,
        default_bot,
        body,
    })
}

/// The BOT to run: `bot_endpoint`, or `public_id` (or its default) + `bot_id`, or the
/// configured default BOT; the flag is true for the default BOT.
fn bot_target(
    map: &Map<String, Value>,
    config: &Config,
) -> Result<(BotEndpoint, bool), RequestError> {
    const EITHER: &str =
        "conflicts with `bot_endpoint`; give either `bot_endpoint` or `public_id` + `bot_id`";
    let base = &config.api_base;
    match (
        map.get("bot_endpoint"),
        map.get("public_id"),
        map.get("bot_id"),
    ) {
        (Some(_), Some(_), _) => Err(RequestError::field("public_id", EITHER)),
        (Some(_), None, Some(_)) => Err(RequestError::field("bot_id", EITHER)),
        (Some(endpoint), None, None) => {
            let url = str_field(endpoint, "bot_endpoint")?;
            let bot = BotEndpoint::parse(base, url, "bot_endpoint").map_err(endpoint_error)?;
            Ok((bot, false))
        }
        (None, Some(_), None) => Err(RequestError::field(
            "bot_id",
            "is required when `public_id` is given",
        )),
        (None, public_id, Some(bot_id)) => {
            let public_id = match public_id {
                Some(v) => PublicId::parse(str_field(v, "public_id")?, "public_id")
                    .map_err(endpoint_error)?,
                None => config.default_public_id.clone().ok_or_else(|| {
                    RequestError::field(
                        "public_id",
                        "is required with `bot_id` (no CLOUDBOT_DEFAULT_PUBLIC_ID is configured)",
                    )
                })?,
            };
            let bot_id =
                BotId::parse(str_field(bot_id, "bot_id")?, "bot_id").map_err(endpoint_error)?;
            Ok((BotEndpoint::new(base, public_id, bot_id), false))
        }
        (None, None, None) => match &config.default_bot {
            Some(bot) => Ok((bot.clone(), true)),
            None => Err(RequestError::field(
                "bot_endpoint",
                "no BOT named: give `bot_endpoint` or `public_id` + `bot_id` \
                 (no CLOUDBOT_DEFAULT_BOT_ENDPOINT is configured)",
            )),
        },
    }
}

fn input(map: &Map<String, Value>) -> Result<Option<Map<String, Value>>, RequestError> {
    match map.get("input") {
        None => Ok(None),
        Some(Value::Object(input)) => Ok(Some(input.clone())),
        Some(other) => Err(RequestError::field(
            "input",
            format!(
                "must be an object keyed by data name, not {}",
                kind_of(other)
            ),
        )),
    }
}

fn callback_tries(
    map: &Map<String, Value>,
    has_callback: bool,
    config: &Config,
) -> Result<Option<u32>, RequestError> {
    match (map.get("callback_tries"), has_callback) {
        // [I] Rejected rather than ignored: tries without an endpoint is almost surely a mistake.
        (Some(_), false) => Err(RequestError::field(
            "callback_tries",
            "requires `callback_endpoint`",
        )),
        (Some(v), true) => {
            let tries = uint_field(v, "callback_tries")?;
            if !(1..=u64::from(MAX_CALLBACK_TRIES)).contains(&tries) {
                return Err(RequestError::field(
                    "callback_tries",
                    format!("must be between 1 and {MAX_CALLBACK_TRIES}"),
                ));
            }
            Ok(Some(u32::try_from(tries).unwrap_or(MAX_CALLBACK_TRIES)))
        }
        (None, true) => Ok(Some(config.default_callback_tries)),
        (None, false) => Ok(None),
    }
}

fn timeout_ms(map: &Map<String, Value>) -> Result<Option<u64>, RequestError> {
    let Some(v) = map.get("timeout") else {
        return Ok(None);
    };
    let ms = uint_field(v, "timeout")?;
    if ms > MAX_TIMEOUT_MS {
        return Err(RequestError::field(
            "timeout",
            format!("must be between 0 and {MAX_TIMEOUT_MS} milliseconds"),
        ));
    }
    Ok(Some(ms))
}

fn parse_refer_job(map: &Map<String, Value>, config: &Config) -> Result<Operation, RequestError> {
    let base = &config.api_base;
    let job = match (map.get("job_reference_endpoint"), map.get("job_id")) {
        (Some(_), Some(_)) => {
            return Err(RequestError::field(
                "job_id",
                "conflicts with `job_reference_endpoint`; give one of them",
            ));
        }
        (Some(endpoint), None) => {
            if map.contains_key("public_id") {
                return Err(RequestError::field(
                    "public_id",
                    "conflicts with `job_reference_endpoint`; give either it or `public_id` + `job_id`",
                ));
            }
            JobEndpoint::parse(
                base,
                str_field(endpoint, "job_reference_endpoint")?,
                "job_reference_endpoint",
            )
            .map_err(endpoint_error)?
        }
        (None, Some(job_id)) => {
            let public_id = public_id_or_default(map, config, ReferJob)?;
            let job_id =
                JobId::parse(str_field(job_id, "job_id")?, "job_id").map_err(endpoint_error)?;
            JobEndpoint::new(base, public_id, job_id)
        }
        (None, None) => {
            return Err(RequestError::field(
                "job_reference_endpoint",
                "is required for `refer_job` (or give `public_id` + `job_id`)",
            ));
        }
    };
    Ok(Operation::ReferJob { job })
}

fn public_id_or_default(
    map: &Map<String, Value>,
    config: &Config,
    op: OperationKind,
) -> Result<PublicId, RequestError> {
    match map.get("public_id") {
        Some(v) => PublicId::parse(str_field(v, "public_id")?, "public_id").map_err(endpoint_error),
        None => config.default_public_id.clone().ok_or_else(|| {
            RequestError::field(
                "public_id",
                format!(
                    "is required for `{}` (no CLOUDBOT_DEFAULT_PUBLIC_ID is configured)",
                    op.name()
                ),
            )
        }),
    }
}

/// The callback endpoint is where Cloud BOT posts the finished job (no credentials go there), so
/// any https host is allowed; plain http only when configured for local runs, and then only to
/// exactly `127.0.0.1`, `[::1]` or `localhost` in any spelling the URL standard normalizes to
/// them (`127.1`, `2130706433`, `LOCALHOST`). Other loopback addresses (`127.0.0.2`, …) are
/// refused: the switch is documented for those three hosts and no wider.
fn callback_url(raw: &str, config: &Config) -> Result<String, RequestError> {
    const FIELD: &str = "callback_endpoint";
    let url =
        url::Url::parse(raw).map_err(|_| RequestError::field(FIELD, "is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RequestError::field(
            FIELD,
            "must not contain user information",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if config.allow_http_loopback_callback && is_local_host(&url) => {}
        "http" if config.allow_http_loopback_callback => {
            return Err(RequestError::field(
                FIELD,
                "plain http is allowed only for 127.0.0.1, [::1] and localhost",
            ));
        }
        _ => return Err(RequestError::field(FIELD, "must be an https URL")),
    }
    if url.host().is_none() {
        return Err(RequestError::field(FIELD, "has no host"));
    }
    Ok(url.to_string())
}

/// True for the three hosts plain-http callbacks may use (after the URL parser's normalization).
fn is_local_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

fn check_body_size(body: &ExecuteRequest) -> Result<(), RequestError> {
    // Measure what goes on the wire: the input dominates; the other fields add well under 1 KiB.
    const OVERHEAD: usize = 1024;
    let input_len = match &body.input {
        Some(input) => serde_json::to_vec(input)
            .map(|v| v.len())
            .unwrap_or(usize::MAX),
        None => 0,
    };
    let size = input_len.saturating_add(OVERHEAD);
    if size > MAX_REQUEST_BODY {
        return Err(RequestError::TooLarge {
            what: "the execute request body (field `input`)",
            size: input_len,
            limit: MAX_REQUEST_BODY - OVERHEAD,
        });
    }
    Ok(())
}

fn endpoint_error(err: crate::cloudbot::EndpointError) -> RequestError {
    // The client's error names the field and the problem, never the rejected value.
    RequestError::field(err.field, err.reason.to_string())
}

fn str_field<'a>(value: &'a Value, field: &str) -> Result<&'a str, RequestError> {
    value.as_str().ok_or_else(|| {
        RequestError::field(field, format!("must be a string, not {}", kind_of(value)))
    })
}

fn uint_field(value: &Value, field: &str) -> Result<u64, RequestError> {
    value.as_u64().ok_or_else(|| {
        RequestError::field(
            field,
            format!(
                "must be a non-negative whole number, not {}",
                kind_of(value)
            ),
        )
    })
}

/// JSON type name for error messages (never the value: it may be user data).
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a whole number",
        Value::Number(n) if n.is_i64() => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
