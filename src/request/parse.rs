//! Validating a request object: every key matched against the known fields (one table), then
//! each operation's fields parsed, endpoints and ids against the API base.

use serde_json::{Map, Value};

use super::{
    Execute, MAX_TIMEOUT_MS, Operation, OperationKind, Request, RequestError, Resolution, kind_of,
};
use crate::cloudbot::{
    BotEndpoint, BotId, ExecuteRequest, JobEndpoint, JobId, Language, MAX_REQUEST_BODY, PublicId,
};
use crate::config::{MAX_CALLBACK_TRIES, Requests};
use crate::idempotency::RecordKey;

use OperationKind::{ListBots, ReferJob, ResolveIdempotency};
/// Short for the field table below.
const EXECUTE: OperationKind = OperationKind::Execute;

/// Every request field, with the operations that accept it (one list: the unknown-field message
/// and the per-operation check cannot drift apart).
const FIELDS: &[(&str, &[OperationKind])] = &[
    ("operation", &OperationKind::ALL),
    ("idempotency_key", &[EXECUTE]),
    ("bot_endpoint", &[EXECUTE]),
    ("public_id", &OperationKind::CLOUD_BOT),
    ("bot_id", &[EXECUTE]),
    ("input", &[EXECUTE]),
    ("callback_endpoint", &[EXECUTE]),
    ("callback_tries", &[EXECUTE]),
    ("timeout", &[EXECUTE]),
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

/// What an API Gateway route fixed in its path: the operation and its target, typed.
#[derive(Debug)]
pub enum Routed {
    /// `POST …/bots/{public_id}/{bot_id}/jobs`: execute this BOT.
    Execute(BotEndpoint),
    /// `GET …/jobs/{public_id}/{job_id}`: read this job.
    ReferJob(JobEndpoint),
    /// `GET …/bots/{public_id}`: list this contract's BOTs.
    ListBots(PublicId),
}

impl Routed {
    fn kind(&self) -> OperationKind {
        match self {
            Routed::Execute(_) => OperationKind::Execute,
            Routed::ReferJob(_) => ReferJob,
            Routed::ListBots(_) => ListBots,
        }
    }
}

/// Validates a request given as a JSON object map.
pub fn parse_map(map: Map<String, Value>, config: &Requests) -> Result<Request, RequestError> {
    parse(map, None, None, config)
}

/// Validates a request object whose language may come from elsewhere (API Gateway's `language`
/// query parameter; the map then has none).
pub fn parse_map_with_language(
    map: Map<String, Value>,
    language: Option<&str>,
    config: &Requests,
) -> Result<Request, RequestError> {
    parse(map, None, language, config)
}

/// Validates the body of a request whose operation and target a route fixed (`language`: the
/// query parameter, if any; the body then has no `language`).
pub fn parse_routed(
    map: Map<String, Value>,
    routed: Routed,
    language: Option<&str>,
    config: &Requests,
) -> Result<Request, RequestError> {
    parse(map, Some(routed), language, config)
}

fn parse(
    map: Map<String, Value>,
    routed: Option<Routed>,
    language: Option<&str>,
    config: &Requests,
) -> Result<Request, RequestError> {
    check_keys(&map)?;
    let kind = match &routed {
        Some(routed) => routed.kind(),
        None => operation_kind(&map)?,
    };
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
        Some(v) => Some(str_field(v, "language")?),
        None => language,
    };
    let language = match language {
        None => config.language,
        Some(raw) => raw
            .parse::<Language>()
            .map_err(|_| RequestError::field("language", "must be `ja` or `en`"))?,
    };
    let operation = match routed {
        Some(Routed::Execute(bot)) => parse_execute(&map, Some(bot), config)?,
        Some(Routed::ReferJob(job)) => Operation::ReferJob { job },
        Some(Routed::ListBots(public_id)) => Operation::ListBots { public_id },
        None => parse_operation(kind, &map, config)?,
    };
    Ok(Request {
        operation,
        language,
    })
}

/// The operation `kind` of a request object.
fn parse_operation(
    kind: OperationKind,
    map: &Map<String, Value>,
    config: &Requests,
) -> Result<Operation, RequestError> {
    Ok(match kind {
        OperationKind::Execute => parse_execute(map, None, config)?,
        ReferJob => parse_refer_job(map, config)?,
        ListBots => Operation::ListBots {
            public_id: public_id_or_default(map, config, ListBots)?,
        },
        ResolveIdempotency => parse_resolve(map, config)?,
        // Not in OperationKind::ALL, so `operation_kind` never returns it.
        OperationKind::Callback => {
            return Err(RequestError::field(
                "operation",
                "`callback` is served on the callback route only",
            ));
        }
    })
}

/// `resolve_idempotency`: `record_key`, `resolution` (`started` with `job_reference_endpoint`,
/// or `not_started`).
fn parse_resolve(map: &Map<String, Value>, config: &Requests) -> Result<Operation, RequestError> {
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
    let started = match map
        .get("resolution")
        .map(|v| str_field(v, "resolution"))
        .transpose()?
    {
        Some("started") => true,
        Some("not_started") => false,
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
            .map_err(RequestError::from)
        })
        .transpose()?;
    let resolution = match (started, job) {
        (true, Some(job)) => Resolution::Started(job),
        (true, None) => {
            return Err(RequestError::field(
                "job_reference_endpoint",
                "is required with `resolution` `started` (the job you found in the BOT's job list)",
            ));
        }
        (false, Some(_)) => {
            return Err(RequestError::field(
                "job_reference_endpoint",
                "conflicts with `resolution` `not_started`",
            ));
        }
        (false, None) => Resolution::NotStarted,
    };
    Ok(Operation::ResolveIdempotency { key, resolution })
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
        None => Ok(EXECUTE),
        Some(v) => OperationKind::parse(str_field(v, "operation")?).ok_or_else(|| {
            RequestError::field(
                "operation",
                "must be `execute`, `refer_job`, `list_bots` or `resolve_idempotency`",
            )
        }),
    }
}

/// `execute`, of `bot` when a route named it.
fn parse_execute(
    map: &Map<String, Value>,
    bot: Option<BotEndpoint>,
    config: &Requests,
) -> Result<Operation, RequestError> {
    let (bot, default_bot) = match bot {
        Some(bot) => (bot, false),
        None => bot_target(map, config)?,
    };
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
    let idempotency_key = map
        .get("idempotency_key")
        .map(|v| {
            RecordKey::request(str_field(v, "idempotency_key")?)
                .map_err(|problem| RequestError::field("idempotency_key", problem.to_string()))
        })
        .transpose()?;
    Ok(Operation::Execute(Execute {
        bot,
        default_bot,
        body,
        idempotency_key,
        task_token: None,
    }))
}

/// The BOT to run: `bot_endpoint`, or `public_id` (or its default) + `bot_id`, or the
/// configured default BOT; the flag is true for the default BOT.
fn bot_target(
    map: &Map<String, Value>,
    config: &Requests,
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
            let bot = BotEndpoint::parse(base, url, "bot_endpoint").map_err(RequestError::from)?;
            Ok((bot, false))
        }
        (None, Some(_), None) => Err(RequestError::field(
            "bot_id",
            "is required when `public_id` is given",
        )),
        (None, public_id, Some(bot_id)) => {
            let public_id = match public_id {
                Some(v) => PublicId::parse(str_field(v, "public_id")?, "public_id")
                    .map_err(RequestError::from)?,
                None => config.default_public_id.clone().ok_or_else(|| {
                    RequestError::field(
                        "public_id",
                        "is required with `bot_id` (no CLOUDBOT_DEFAULT_PUBLIC_ID is configured)",
                    )
                })?,
            };
            let bot_id =
                BotId::parse(str_field(bot_id, "bot_id")?, "bot_id").map_err(RequestError::from)?;
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
    config: &Requests,
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

fn parse_refer_job(map: &Map<String, Value>, config: &Requests) -> Result<Operation, RequestError> {
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
            .map_err(RequestError::from)?
        }
        (None, Some(job_id)) => {
            let public_id = public_id_or_default(map, config, ReferJob)?;
            let job_id =
                JobId::parse(str_field(job_id, "job_id")?, "job_id").map_err(RequestError::from)?;
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
    config: &Requests,
    op: OperationKind,
) -> Result<PublicId, RequestError> {
    match map.get("public_id") {
        Some(v) => {
            PublicId::parse(str_field(v, "public_id")?, "public_id").map_err(RequestError::from)
        }
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
fn callback_url(raw: &str, config: &Requests) -> Result<String, RequestError> {
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
