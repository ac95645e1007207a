//! Validating a request object: every key matched against the known fields (one table), then
//! each operation's fields parsed, endpoints and ids against the API base.

use serde_json::{Map, Value};

use super::{Operation, OperationKind, Request, RequestError, Resolution, str_field};
use crate::cloudbot::{BotEndpoint, JobEndpoint, JobId, Language, PublicId};
use crate::config::Requests;
use crate::idempotency::RecordKey;

use super::execute::parse_execute;
use OperationKind::{ListBots, ReferJob, ResolveIdempotency};
/// Short for the field table below.
const EXECUTE: OperationKind = OperationKind::Execute;

/// The operations a request object may name in `operation`: the documented ones and the
/// stack's sweep (docs/orphans.md).
const NAMED: &[OperationKind] = &[
    EXECUTE,
    ReferJob,
    ListBots,
    ResolveIdempotency,
    OperationKind::Sweep,
];

/// Every request field, with the operations that accept it (one list: the unknown-field message
/// and the per-operation check cannot drift apart).
const FIELDS: &[(&str, &[OperationKind])] = &[
    ("operation", NAMED),
    ("idempotency_key", &[EXECUTE]),
    ("bot_endpoint", &[EXECUTE]),
    ("public_id", &OperationKind::CLOUD_BOT),
    ("bot_id", &[EXECUTE]),
    ("input", &[EXECUTE]),
    ("callback_endpoint", &[EXECUTE]),
    ("callback_tries", &[EXECUTE]),
    ("timeout", &[EXECUTE]),
    (crate::overrun::FIELD, &[EXECUTE]),
    ("priority", &[EXECUTE]),
    (crate::orphans::KEEP_RUNNING_FIELD, &[EXECUTE]),
    (crate::rerun::FIELD, &[EXECUTE]),
    ("language", NAMED),
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
        // Not in OperationKind::ALL, so `operation_kind` never returns these.
        OperationKind::Callback => {
            return Err(RequestError::field(
                "operation",
                "`callback` is served on the callback route only",
            ));
        }
        OperationKind::BotDone => {
            return Err(RequestError::field(
                "operation",
                "`bot_done` is served on the callback route only",
            ));
        }
        OperationKind::ScheduleTick => {
            return Err(RequestError::field(
                "operation",
                "`schedule_tick` is named on a schedule envelope only, next to `schedule` and \
                 `request`",
            ));
        }
        OperationKind::ExecutionEnded => {
            return Err(RequestError::field(
                "operation",
                "`execution_ended` is Step Functions' own event (docs/orphans.md), never named",
            ));
        }
        OperationKind::Sweep => Operation::Sweep,
        OperationKind::DecideRerun => {
            return Err(RequestError::field(
                "operation",
                "`decide_rerun` is named on an envelope only, next to `request`",
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
        // The stack's sweep rule (docs/orphans.md): `operation` and `language` only.
        Some(Value::String(name)) if name == OperationKind::Sweep.name() => {
            Ok(OperationKind::Sweep)
        }
        Some(v) => OperationKind::parse(str_field(v, "operation")?).ok_or_else(|| {
            RequestError::field(
                "operation",
                "must be `execute`, `refer_job`, `list_bots` or `resolve_idempotency`",
            )
        }),
    }
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
