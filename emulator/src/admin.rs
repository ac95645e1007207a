//! The admin API under `/__emulator/`: observe requests, jobs, callbacks, subscriptions and
//! counters; set faults, latency, output padding and the callback hold; start console runs;
//! rotate tokens; reset. It never requires or echoes credentials and is
//! not itself logged, counted or subject to faults.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::{EmuBody, reply_response};
use crate::fault::FaultRule;
use crate::lifecycle::{self, NewJob};
use crate::output::{InputProblem, effective_input};
use crate::state::{JobOrigin, Lang, State, lock};

/// Admin request bodies are small JSON documents.
const MAX_ADMIN_BODY: usize = 1024 * 1024;

fn ok(body: Value) -> Response<EmuBody> {
    reply_response(StatusCode::OK, &body)
}

fn err(status: StatusCode, message: &str) -> Response<EmuBody> {
    reply_response(
        status,
        &json!({"code": status.as_u16(), "message": message}),
    )
}

/// Reads a JSON body. `detailed` errors quote serde's message (which may echo values), so
/// it is off for bodies that carry credentials.
async fn read_json<T: for<'de> Deserialize<'de>>(
    body: Incoming,
    detailed: bool,
) -> Result<T, Response<EmuBody>> {
    let bytes = Limited::new(body, MAX_ADMIN_BODY)
        .collect()
        .await
        .map_err(|_| {
            err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "admin request body too large or unreadable",
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        let why = if detailed {
            e.to_string()
        } else {
            classify(&e)
        };
        err(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("invalid JSON body: {why}"),
        )
    })
}

fn classify(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

/// `POST /__emulator/faults` takes one rule or a list of rules.
fn parse_rules(v: Value) -> Result<Vec<FaultRule>, serde_json::Error> {
    match v {
        Value::Array(_) => serde_json::from_value(v),
        other => serde_json::from_value(other).map(|r| vec![r]),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Latency {
    latency_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputPadding {
    padding_bytes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackHold {
    enabled: bool,
}

/// The outcomes of the next jobs to end (`PUT /__emulator/outcomes`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedOutcomes {
    outcomes: Vec<crate::seed::Outcome>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConsoleRun {
    #[serde(default)]
    input: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    access_token: String,
    new_access_token: String,
    new_secret_key: String,
}

pub(crate) async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<EmuBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/');
    let method = parts.method;
    match (&method, path) {
        (&Method::GET, "/__emulator" | "/__emulator/stats") => ok(with_code(json!(state.stats()))),
        (&Method::GET, "/__emulator/requests") => {
            let list: Vec<_> = lock(&state.requests).iter().cloned().collect();
            ok(json!({"code": 200, "requests": list}))
        }
        (&Method::GET, "/__emulator/jobs") => ok(json!({"code": 200, "jobs": state.job_records()})),
        (&Method::GET, p) if p.starts_with("/__emulator/jobs/") => {
            let id = &p["/__emulator/jobs/".len()..];
            match state.job_record(id) {
                Some(j) => ok(with_code(json!(j))),
                None => err(StatusCode::NOT_FOUND, "no such job"),
            }
        }
        (&Method::GET, "/__emulator/callbacks") => {
            let list = lock(&state.callbacks).clone();
            ok(json!({"code": 200, "callbacks": list}))
        }
        (&Method::GET, "/__emulator/faults") => {
            ok(json!({"code": 200, "faults": lock(&state.faults).list()}))
        }
        (&Method::POST, "/__emulator/faults") => match read_json::<Value>(body, true).await {
            Ok(v) => {
                let rules = match parse_rules(v) {
                    Ok(r) => r,
                    Err(e) => {
                        return err(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            &format!("invalid fault rule: {e}"),
                        );
                    }
                };
                if let Some(m) = rules.iter().find_map(|r| r.validate().err()) {
                    return err(StatusCode::UNPROCESSABLE_ENTITY, &m);
                }
                state.add_faults(rules);
                ok(json!({"code": 200, "faults": lock(&state.faults).list()}))
            }
            Err(r) => r,
        },
        (&Method::DELETE, "/__emulator/faults") => {
            state.clear_faults();
            ok(json!({"code": 200, "faults": []}))
        }
        (&Method::GET, "/__emulator/latency") => {
            ok(json!({"code": 200, "latency_ms": state.latency_ms.load(Ordering::Relaxed)}))
        }
        (&Method::PUT, "/__emulator/latency") => match read_json::<Latency>(body, true).await {
            Ok(l) => {
                state.latency_ms.store(l.latency_ms, Ordering::Relaxed);
                ok(json!({"code": 200, "latency_ms": l.latency_ms}))
            }
            Err(r) => r,
        },
        (&Method::POST, "/__emulator/tokens/rotate") => {
            match read_json::<Rotate>(body, false).await {
                Ok(r) => {
                    if r.new_access_token.is_empty() || r.new_secret_key.is_empty() {
                        return err(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "new token and secret must not be empty",
                        );
                    }
                    if state.rotate_token(&r.access_token, &r.new_access_token, &r.new_secret_key) {
                        ok(json!({"code": 200, "rotated": true}))
                    } else {
                        err(StatusCode::NOT_FOUND, "unknown access token")
                    }
                }
                Err(r) => r,
            }
        }
        (&Method::GET, "/__emulator/subscriptions") => {
            ok(json!({"code": 200, "subscriptions": state.subscription_records()}))
        }
        (&Method::POST, p) if p.starts_with("/__emulator/bots/") && p.ends_with("/run") => {
            let ids = &p["/__emulator/bots/".len()..p.len() - "/run".len()];
            let Some((public_id, bot_id)) = ids.split_once('/') else {
                return err(StatusCode::NOT_FOUND, "unknown admin endpoint");
            };
            // An empty body means no input (the BOT's defaults).
            let Ok(collected) = Limited::new(body, MAX_ADMIN_BODY).collect().await else {
                return err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "admin request body too large or unreadable",
                );
            };
            let bytes = collected.to_bytes();
            let run = if bytes.iter().all(u8::is_ascii_whitespace) {
                ConsoleRun::default()
            } else {
                match serde_json::from_slice::<ConsoleRun>(&bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        return err(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            &format!("invalid JSON body: {e}"),
                        );
                    }
                }
            };
            match console_run(state, public_id, bot_id, run.input.as_ref()) {
                Ok(job) => reply_response(StatusCode::CREATED, &job),
                Err((status, m)) => err(status, &m),
            }
        }
        (&Method::GET, "/__emulator/output-padding") => ok(json!({
            "code": 200,
            "padding_bytes": state.output_padding.load(Ordering::Relaxed),
        })),
        (&Method::PUT, "/__emulator/output-padding") => {
            match read_json::<OutputPadding>(body, true).await {
                Ok(o) => {
                    state
                        .output_padding
                        .store(o.padding_bytes, Ordering::Relaxed);
                    ok(json!({"code": 200, "padding_bytes": o.padding_bytes}))
                }
                Err(r) => r,
            }
        }
        (&Method::GET, "/__emulator/callback-hold") => ok(json!({
            "code": 200,
            "enabled": state.hold_for_callback.load(Ordering::Relaxed),
        })),
        (&Method::PUT, "/__emulator/callback-hold") => {
            match read_json::<CallbackHold>(body, true).await {
                Ok(h) => {
                    state.hold_for_callback.store(h.enabled, Ordering::Relaxed);
                    ok(json!({"code": 200, "enabled": h.enabled}))
                }
                Err(r) => r,
            }
        }
        (&Method::GET, "/__emulator/outcomes") => ok(json!({
            "code": 200,
            "outcomes": state.scripted_outcomes(),
        })),
        (&Method::PUT, "/__emulator/outcomes") => {
            match read_json::<ScriptedOutcomes>(body, true).await {
                Ok(o) => {
                    state.script_outcomes(o.outcomes.clone());
                    ok(json!({"code": 200, "outcomes": o.outcomes}))
                }
                Err(r) => r,
            }
        }
        (&Method::POST, "/__emulator/reset") => {
            state.reset();
            ok(json!({"code": 200, "reset": true}))
        }
        _ => err(StatusCode::NOT_FOUND, "unknown admin endpoint"),
    }
}

/// Starts a job of a published BOT without the API, as Cloud BOT's console (or its own
/// schedules, kintone, Zapier) would: no request is logged, no callback endpoint; the BOT's
/// subscriptions are delivered when it ends. Answers the Job object (`code: 201`).
pub(crate) fn console_run(
    state: &Arc<State>,
    public_id: &str,
    bot_id: &str,
    input: Option<&serde_json::Map<String, Value>>,
) -> Result<Value, (StatusCode, String)> {
    let Some(bot) = state.bot(public_id, bot_id) else {
        return Err((StatusCode::NOT_FOUND, "no such published BOT".into()));
    };
    let input = effective_input(bot, input).map_err(|e| {
        let why = match e.problem {
            InputProblem::Unknown => "not an input of this BOT".to_string(),
            InputProblem::Shape(m) => m,
        };
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("input {:?}: {why}", e.key),
        )
    })?;
    let started = lifecycle::start(
        state,
        public_id,
        bot,
        NewJob {
            input,
            callback_endpoint: None,
            callback_tries: 1,
            language: Lang::En,
            origin: JobOrigin::Console,
        },
    );
    Ok(started.reply)
}

fn with_code(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("code".into(), json!(200));
    }
    v
}
