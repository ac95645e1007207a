//! Validating an execute: the BOT (`bot_endpoint`, `public_id` + `bot_id`, or the configured
//! default), the input, the callback endpoint and its attempts, the synchronous wait, and the
//! size of the body that would be sent.

use serde_json::{Map, Value};

use super::{
    Execute, MAX_TIMEOUT_MS, Operation, Priority, RequestError, kind_of, str_field, uint_field,
};
use crate::cloudbot::{BotEndpoint, BotId, ExecuteRequest, MAX_REQUEST_BODY, PublicId};
use crate::config::{MAX_CALLBACK_TRIES, Requests};
use crate::idempotency::RecordKey;

/// `execute`, of `bot` when a route named it.
pub(super) fn parse_execute(
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
        schedule: None,
        max_run: max_run(map)?,
        priority: Priority::of_field(map.get("priority"))?,
        keep_running: crate::orphans::keep_running(map)?,
        rerun: map
            .get(crate::rerun::FIELD)
            .map(crate::rerun::Policy::parse)
            .transpose()?,
        attempt: None,
        execution: None,
        caller: None,
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

/// `max_run_seconds`: 1 to [`crate::overrun::MAX_RUN_SECONDS_LIMIT`] (docs/overrun.md).
fn max_run(map: &Map<String, Value>) -> Result<Option<std::time::Duration>, RequestError> {
    use crate::overrun::{FIELD, MAX_RUN_SECONDS_LIMIT};
    let Some(v) = map.get(FIELD) else {
        return Ok(None);
    };
    let seconds = uint_field(v, FIELD)?;
    if !(1..=MAX_RUN_SECONDS_LIMIT).contains(&seconds) {
        return Err(RequestError::field(
            FIELD,
            format!("must be between 1 and {MAX_RUN_SECONDS_LIMIT} seconds"),
        ));
    }
    Ok(Some(std::time::Duration::from_secs(seconds)))
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
