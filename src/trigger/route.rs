//! Building the request of an API Gateway event: the route from method and path, path
//! parameters and the `language` query parameter merged into the JSON body, then the one request
//! parser every trigger uses.
//!
//! Routes match on the trailing path segments, so stage and base-path prefixes do not matter:
//! `POST …/bots/{public_id}/{bot_id}/jobs` (execute), `GET …/jobs/{public_id}/{job_id}`
//! (refer_job), `GET …/bots/{public_id}` (list_bots), `POST …/callbacks/{id}` (Cloud BOT's
//! callback, served by the unauthenticated callback API; its body is never read: the receiver
//! trusts only the id and re-reads the job, docs/state-machines.md), and `POST` on any other
//! path with a full request object as body (docs/contract.md). An execute's idempotency key is the
//! `Idempotency-Key` header (never a body field, so one request cannot carry two keys).

use base64::Engine;
use serde_json::{Map, Value};

use super::http::{HttpRequest, MAX_HTTP_BODY_BYTES};
use crate::callback::CallbackId;
use crate::config::Config;
use crate::idempotency::{self, KeyProblem, RecordKey};
use crate::payload;
use crate::request::{self, Operation, OperationKind, Request, RequestError};

/// Where an API Gateway request goes.
#[derive(Debug)]
enum Route<'a> {
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
    Callback {
        id: &'a str,
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
    match method {
        "POST" => match (tail(4), tail(2)) {
            (Some(["bots", public_id, bot_id, "jobs"]), _) => {
                Some(Route::Execute { public_id, bot_id })
            }
            (_, Some(["callbacks", id])) => Some(Route::Callback { id }),
            _ => Some(Route::Body),
        },
        "GET" => {
            if let Some(["jobs", public_id, job_id]) = tail(3) {
                Some(Route::ReferJob { public_id, job_id })
            } else if let Some(["bots", public_id]) = tail(2) {
                Some(Route::ListBots { public_id })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The validated request of an API Gateway event.
pub(super) fn build(http: &HttpRequest<'_>, config: &Config) -> Result<Request, RequestError> {
    // The path is never repeated (it may carry a callback id); the method is caller-controlled:
    // keep it short.
    let no_route = || RequestError::NoRoute {
        method: http.method.chars().take(16).collect(),
    };
    let route = route(http.method, http.path).ok_or_else(no_route)?;
    if let Route::Callback { id } = route {
        // A malformed id is a callback for no record (`Callback.NotFound`, as docs/contract.md
        // promises), found without a table read or an upstream call. The body (Cloud BOT's copy
        // of the job, possibly megabytes of output) is not decoded at all.
        return Ok(Request {
            operation: Operation::Callback {
                id: CallbackId::parse(id),
            },
            language: config.language,
            idempotency_key: None,
            task_token: None,
        });
    }
    let mut map = body(http.body, http.base64)?;
    check_body_fits_route(&route, &map, http.body)?;
    let mut from_path = |field: &'static str, value: Value| -> Result<(), RequestError> {
        if map.contains_key(field) {
            return Err(RequestError::field(
                field,
                "is given both in the path and in the body",
            ));
        }
        map.insert(field.to_owned(), value);
        Ok(())
    };
    let operation = |kind: OperationKind| Value::from(kind.name());
    match route {
        Route::Execute { public_id, bot_id } => {
            from_path("operation", operation(OperationKind::Execute))?;
            from_path("public_id", public_id.into())?;
            from_path("bot_id", bot_id.into())?;
        }
        Route::ReferJob { public_id, job_id } => {
            from_path("operation", operation(OperationKind::ReferJob))?;
            from_path("public_id", public_id.into())?;
            from_path("job_id", job_id.into())?;
        }
        Route::ListBots { public_id } => {
            from_path("operation", operation(OperationKind::ListBots))?;
            from_path("public_id", public_id.into())?;
        }
        // Returned above.
        Route::Callback { .. } | Route::Body => {}
    }
    for (key, value) in http.query.iter() {
        if key != "language" {
            return Err(RequestError::field(
                format!("?{key}"),
                "unknown query parameter (only `language` is accepted)",
            ));
        }
        from_path("language", value.into())?;
    }
    if map.contains_key("idempotency_key") {
        return Err(RequestError::field(
            "idempotency_key",
            "send the key as the Idempotency-Key header",
        ));
    }
    let mut request = request::parse_map(map, config)?;
    // Reads are idempotent by nature: the header only matters for execute.
    if request.operation.kind() == OperationKind::Execute
        && let Some(value) = http.idempotency_key
    {
        let key = value
            .to_str()
            .map_err(|_| KeyProblem::HeaderSyntax)
            .and_then(idempotency::parse_header)
            .and_then(|raw| RecordKey::http(&raw))
            .map_err(|p| RequestError::field("Idempotency-Key", format!("(header) {p}")))?;
        request.idempotency_key = Some(key);
    }
    Ok(request)
}

/// GET routes take no body, the body route needs one, and the execute route names its BOT in
/// the path only.
fn check_body_fits_route(
    route: &Route<'_>,
    map: &Map<String, Value>,
    raw: Option<&str>,
) -> Result<(), RequestError> {
    match route {
        Route::ReferJob { .. } | Route::ListBots { .. } if !map.is_empty() => Err(
            RequestError::Malformed("a GET request must not have a body".into()),
        ),
        Route::Body if raw.is_none_or(|b| b.trim().is_empty()) => {
            Err(RequestError::Malformed("the request body is empty".into()))
        }
        Route::Execute { .. } if map.contains_key("bot_endpoint") => Err(RequestError::field(
            "bot_endpoint",
            "conflicts with the BOT in the path",
        )),
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
            Some(Route::Execute {
                public_id: "demo",
                bot_id: "echo_bot"
            })
        ));
        assert!(matches!(
            route("GET", "/jobs/demo/abc"),
            Some(Route::ReferJob {
                public_id: "demo",
                job_id: "abc"
            })
        ));
        assert!(matches!(
            route("GET", "/stage/bots/demo"),
            Some(Route::ListBots { public_id: "demo" })
        ));
        assert!(matches!(route("POST", "/run"), Some(Route::Body)));
        assert!(matches!(
            route("POST", "/prod/callbacks/abc"),
            Some(Route::Callback { id: "abc" })
        ));
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
