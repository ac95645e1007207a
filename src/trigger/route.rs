//! Building the request of an API Gateway event: the route from method and path, path
//! parameters and the `language` query parameter merged into the JSON body, then the one request
//! parser every trigger uses.
//!
//! Routes match on the trailing path segments, so stage and base-path prefixes do not matter:
//! `POST …/bots/{public_id}/{bot_id}/jobs` (execute), `GET …/jobs/{public_id}/{job_id}`
//! (refer_job), `GET …/bots/{public_id}` (list_bots), `POST …/callbacks/{id}` (Cloud BOT's
//! callback, served by the unauthenticated callback API; its body is never read: the receiver
//! trusts only the id and re-reads the job, docs/state-machines.md), `POST
//! …/callbacks/bot-done/{public_id}/{bot_id}/{token}` (Cloud BOT's "BOT done" webhook on the same
//! API: only the job id is read from its body, `crate::bot_done`), and `POST` on any other
//! path with a full request object as body (docs/contract.md). An execute's idempotency key is the
//! `Idempotency-Key` header (never a body field, so one request cannot carry two keys).

use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;
use serde_json::{Map, Value};

use crate::callback::CallbackId;
use crate::cloudbot::{BotEndpoint, BotId, JobEndpoint, JobId, MAX_REQUEST_BODY, PublicId};
use crate::config::Requests;
use crate::idempotency::{self, KeyProblem, RecordKey};
use crate::payload;
use crate::request::{self, Operation, Request, RequestError, Routed};

/// Largest API Gateway body accepted, checked before decoding: the largest execute body plus
/// room for the request's other fields.
pub const MAX_HTTP_BODY_BYTES: usize = MAX_REQUEST_BODY + 64 * 1024;

/// What both API Gateway payload versions carry that the request is built from.
pub(super) struct HttpRequest<'a> {
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) query: &'a QueryMap,
    pub(super) body: Option<&'a str>,
    pub(super) base64: bool,
    /// The `Idempotency-Key` header (docs/exactly-once.md).
    pub(super) idempotency_key: Option<&'a HeaderValue>,
    /// The ARN of the IAM principal that signed the request, as API Gateway's IAM authorizer
    /// verified it (`requestContext.identity.userArn`, payload 1.0;
    /// `requestContext.authorizer.iam.userArn`, 2.0): who started a run (docs/ledger.md).
    pub(super) caller: Option<&'a str>,
}

/// Longest caller ARN kept (characters): an IAM ARN is at most 2048; a role session's is far
/// shorter. Anything longer is cut, not refused: the caller was authorized already.
pub(super) const MAX_CALLER_CHARS: usize = 2048;

/// Where an API Gateway request goes.
#[derive(Debug)]
enum Route<'a> {
    /// Cloud BOT's callback for the job of a callback-driven task.
    Callback { id: &'a str },
    /// Cloud BOT's "BOT done" webhook of a subscribed BOT.
    BotDone {
        public_id: &'a str,
        bot_id: &'a str,
        token: &'a str,
    },
    /// A request of ours.
    Request(RequestRoute<'a>),
}

/// The routes of requests: the operation and its target in the path, or a whole request object
/// as the body.
#[derive(Debug)]
enum RequestRoute<'a> {
    Execute {
        public_id: &'a str,
        bot_id: &'a str,
    },
    ReferJob {
        public_id: &'a str,
        job_id: &'a str,
    },
    ListBots {
        public_id: &'a str,
    },
    /// The body is a whole request object.
    Body,
}

fn route<'a>(method: &str, path: &'a str) -> Option<Route<'a>> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let tail = |n: usize| {
        segments
            .len()
            .checked_sub(n)
            .map(|start| &segments[start..])
    };
    let request = match method {
        "POST" => match (tail(4), tail(2)) {
            _ if let Some(
                [
                    "callbacks",
                    crate::bot_done::PATH_SEGMENT,
                    public_id,
                    bot_id,
                    token,
                ],
            ) = tail(5) =>
            {
                return Some(Route::BotDone {
                    public_id,
                    bot_id,
                    token,
                });
            }
            (Some(["bots", public_id, bot_id, "jobs"]), _) => {
                RequestRoute::Execute { public_id, bot_id }
            }
            (_, Some(["callbacks", id])) => return Some(Route::Callback { id }),
            _ => RequestRoute::Body,
        },
        "GET" => {
            if let Some(["jobs", public_id, job_id]) = tail(3) {
                RequestRoute::ReferJob { public_id, job_id }
            } else if let Some(["bots", public_id]) = tail(2) {
                RequestRoute::ListBots { public_id }
            } else {
                return None;
            }
        }
        _ => return None,
    };
    Some(Route::Request(request))
}

/// The validated request of an API Gateway event.
pub(super) fn build(http: &HttpRequest<'_>, config: &Requests) -> Result<Request, RequestError> {
    // The path is never repeated (it may carry a callback id); the method is caller-controlled:
    // keep it short.
    let no_route = || RequestError::NoRoute {
        method: http.method.chars().take(16).collect(),
    };
    let route = match route(http.method, http.path).ok_or_else(no_route)? {
        Route::Callback { id } => return callback(id, config),
        Route::BotDone {
            public_id,
            bot_id,
            token,
        } => return bot_done(http, public_id, bot_id, token, config),
        Route::Request(route) => route,
    };
    let map = body(http.body, http.base64)?;
    check_body_fits_route(&route, &map, http.body)?;
    let routed = routed(&route, &map, config)?;
    let language = query_language(http.query, &map)?;
    if map.contains_key("idempotency_key") {
        return Err(RequestError::field(
            "idempotency_key",
            "send the key as the Idempotency-Key header",
        ));
    }
    let mut request = match routed {
        Some(routed) => request::parse_routed(map, routed, language, config)?,
        None => request::parse_map_with_language(map, language, config)?,
    };
    // Reads are idempotent by nature: the header only matters for execute.
    if let Some(execute) = request.operation.execute_mut()
        && let Some(value) = http.idempotency_key
    {
        let key = value
            .to_str()
            .map_err(|_| KeyProblem::HeaderSyntax)
            .and_then(idempotency::parse_header)
            .and_then(|raw| RecordKey::http(&raw))
            .map_err(|p| RequestError::field("Idempotency-Key", format!("(header) {p}")))?;
        execute.idempotency_key = Some(key);
    }
    if let Some(execute) = request.operation.execute_mut() {
        execute.caller = http
            .caller
            .filter(|arn| !arn.is_empty())
            .map(|arn| arn.chars().take(MAX_CALLER_CHARS).collect());
    }
    Ok(request)
}

/// The callback route's request: the id, checked for shape only. A malformed id is a callback
/// for no record (`Callback.NotFound`, as docs/contract.md promises), found without a table
/// read or an upstream call. The body (Cloud BOT's copy of the job, possibly megabytes of
/// output) is not decoded at all.
fn callback(id: &str, config: &Requests) -> Result<Request, RequestError> {
    Ok(Request {
        operation: Operation::Callback {
            id: CallbackId::parse(id),
        },
        language: config.language,
    })
}

/// The BOT-done route's request: the BOT from the path (ids checked strictly), the token
/// (checked for shape only; compared by the flow) and the job id from the body. Only `job_id`
/// and `bot_id` are taken from the body; the rest (the output) is skipped, whatever its size.
fn bot_done(
    http: &HttpRequest<'_>,
    public_id: &str,
    bot_id: &str,
    token: &str,
    config: &Requests,
) -> Result<Request, RequestError> {
    let raw = http.body.unwrap_or_default();
    let bytes = if http.base64 {
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| RequestError::Malformed("the request body is not valid base64".into()))?
    } else {
        raw.as_bytes().to_vec()
    };
    let done = crate::bot_done::parse(&config.api_base, public_id, bot_id, token, &bytes)
        .map_err(|e| RequestError::field(e.field, e.reason))?;
    Ok(Request {
        operation: Operation::BotDone(done),
        language: config.language,
    })
}

/// The operation and target a route fixed in the path, typed (`None` for the body route). A
/// field the path gives must not be in the body too.
fn routed(
    route: &RequestRoute<'_>,
    map: &Map<String, Value>,
    config: &Requests,
) -> Result<Option<Routed>, RequestError> {
    let in_path = |fields: &[&str]| match fields.iter().find(|f| map.contains_key(**f)) {
        Some(field) => Err(RequestError::field(
            *field,
            "is given both in the path and in the body",
        )),
        None => Ok(()),
    };
    let base = &config.api_base;
    let public_id = |raw: &str| PublicId::parse(raw, "public_id");
    Ok(Some(match *route {
        RequestRoute::Execute {
            public_id: p,
            bot_id,
        } => {
            in_path(&["operation", "public_id", "bot_id"])?;
            let public_id = public_id(p)?;
            Routed::Execute(BotEndpoint::new(
                base,
                public_id,
                BotId::parse(bot_id, "bot_id")?,
            ))
        }
        RequestRoute::ReferJob {
            public_id: p,
            job_id,
        } => {
            in_path(&["operation", "public_id", "job_id"])?;
            let public_id = public_id(p)?;
            Routed::ReferJob(JobEndpoint::new(
                base,
                public_id,
                JobId::parse(job_id, "job_id")?,
            ))
        }
        RequestRoute::ListBots { public_id: p } => {
            in_path(&["operation", "public_id"])?;
            Routed::ListBots(public_id(p)?)
        }
        RequestRoute::Body => return Ok(None),
    }))
}

/// The `language` query parameter (the only one accepted), which the body must not give too.
fn query_language<'a>(
    query: &'a QueryMap,
    map: &Map<String, Value>,
) -> Result<Option<&'a str>, RequestError> {
    let mut language = None;
    for (key, value) in query.iter() {
        if key != "language" {
            return Err(RequestError::field(
                format!("?{key}"),
                "unknown query parameter (only `language` is accepted)",
            ));
        }
        if map.contains_key("language") || language.is_some() {
            return Err(RequestError::field(
                "language",
                "is given both in the path and in the body",
            ));
        }
        language = Some(value);
    }
    Ok(language)
}

/// GET routes take no body, the body route needs one, and the execute route names its BOT in
/// the path only.
fn check_body_fits_route(
    route: &RequestRoute<'_>,
    map: &Map<String, Value>,
    raw: Option<&str>,
) -> Result<(), RequestError> {
    match route {
        RequestRoute::ReferJob { .. } | RequestRoute::ListBots { .. } if !map.is_empty() => Err(
            RequestError::Malformed("a GET request must not have a body".into()),
        ),
        RequestRoute::Body if raw.is_none_or(|b| b.trim().is_empty()) => {
            Err(RequestError::Malformed("the request body is empty".into()))
        }
        RequestRoute::Execute { .. } if map.contains_key("bot_endpoint") => Err(
            RequestError::field("bot_endpoint", "conflicts with the BOT in the path"),
        ),
        _ => Ok(()),
    }
}

/// Checks the size before decoding anything, then base64-decodes and parses the body.
fn body(body: Option<&str>, base64: bool) -> Result<Map<String, Value>, RequestError> {
    let Some(body) = body else {
        return Ok(Map::new());
    };
    // base64 grows the body by 4/3: compare the decoded size the text can hold.
    let decoded_len = if base64 {
        body.len() / 4 * 3
    } else {
        body.len()
    };
    if decoded_len > MAX_HTTP_BODY_BYTES {
        return Err(RequestError::TooLarge {
            what: "the request body",
            size: decoded_len,
            limit: MAX_HTTP_BODY_BYTES,
        });
    }
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| RequestError::Malformed("the request body is not valid base64".into()))?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| RequestError::Malformed("the request body is not UTF-8 text".into()))?;
    match payload::parse(text, "the request body")? {
        Value::Object(map) => Ok(map),
        other => Err(RequestError::Malformed(format!(
            "the request body must be a JSON object, not {}",
            request::kind_of(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_on_trailing_segments_whatever_the_prefix() {
        assert!(matches!(
            route("POST", "/prod/v1/bots/demo/echo_bot/jobs"),
            Some(Route::Request(RequestRoute::Execute {
                public_id: "demo",
                bot_id: "echo_bot"
            }))
        ));
        assert!(matches!(
            route("GET", "/jobs/demo/abc"),
            Some(Route::Request(RequestRoute::ReferJob {
                public_id: "demo",
                job_id: "abc"
            }))
        ));
        assert!(matches!(
            route("GET", "/stage/bots/demo"),
            Some(Route::Request(RequestRoute::ListBots { public_id: "demo" }))
        ));
        assert!(matches!(
            route("POST", "/run"),
            Some(Route::Request(RequestRoute::Body))
        ));
        assert!(matches!(
            route("POST", "/prod/callbacks/abc"),
            Some(Route::Callback { id: "abc" })
        ));
        assert!(matches!(
            route("POST", "/prod/callbacks/bot-done/demo/echo_bot/tok"),
            Some(Route::BotDone {
                public_id: "demo",
                bot_id: "echo_bot",
                token: "tok"
            })
        ));
        assert!(route("GET", "/callbacks/bot-done/demo/echo_bot/tok").is_none());
        assert!(route("GET", "/callbacks/abc").is_none());
        assert!(route("GET", "/run").is_none());
        assert!(route("PUT", "/bots/demo/echo_bot/jobs").is_none());
    }

    #[test]
    fn base64_size_is_checked_before_decoding() {
        let huge = "A".repeat((MAX_HTTP_BODY_BYTES + 10) * 4 / 3);
        assert!(matches!(
            body(Some(&huge), true),
            Err(RequestError::TooLarge { .. })
        ));
        assert!(matches!(
            body(Some("%%%"), true),
            Err(RequestError::Malformed(_))
        ));
        assert!(body(Some("  "), false).unwrap().is_empty());
    }
}
