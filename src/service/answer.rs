//! The answer shapes of docs/contract.md: [`JobResult`] (execute, refer_job, a replay),
//! [`ListBotsResult`], [`ResolveResult`] and the callback route's answer, each built into the
//! [`Answer`] the trigger encodes. The one producer of every result field, `"replay"` included:
//! a fresh result says `false`, [`replay`] turns a recorded one into `true`.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::callback::Delivery;
use crate::cloudbot::{Bot, BotEndpoint, EndpointProblem, Job, JobEndpoint, PublicId};
use crate::error::Failure;
use crate::idempotency::{RecordKey, Replayed, State};
use crate::request::OperationKind;
use crate::schedule::Skipped;
use crate::trigger::Answer;

/// `output_note` of a result whose output was left out (docs/contract.md, "Oversized outputs").
pub(crate) const OUTPUT_NOTE: &str = "The job's output exceeds the response size the function \
reads from Cloud BOT (docs/client.md), so it is left out (the status and the other fields are complete). Fetch it from Cloud \
BOT directly: GET the job_reference_endpoint with an access token that has the Refer permission.";

/// Job result of `execute` and `refer_job` (stable snake_case contract; see docs/contract.md).
#[derive(Serialize)]
struct JobResult<'a> {
    operation: &'static str,
    job_id: &'a str,
    job_reference_endpoint: &'a str,
    public_id: &'a str,
    bot_id: &'a str,
    bot_name: Option<&'a str>,
    status: &'static str,
    status_code: i64,
    response_code: Option<i64>,
    start_time: Option<&'a str>,
    elapsed_time: Option<i64>,
    message: Option<&'a str>,
    output: Option<&'a RawValue>,
    /// True when Cloud BOT's answer exceeded the client's response cap and was read without its
    /// output (`output` is then `null`); `output_note` then says how to fetch it.
    output_omitted: bool,
    output_note: Option<&'static str>,
    cast_url: Option<&'a str>,
    /// True when this is a duplicate's answer recorded by the first request (docs/exactly-once.md).
    /// A result built here is fresh; [`replay`] marks a recorded one.
    replay: bool,
}

/// `resolve_idempotency`'s result.
#[derive(Serialize)]
struct ResolveResult<'a> {
    operation: &'static str,
    record_key: &'a str,
    state: &'static str,
    job_reference_endpoint: Option<&'a str>,
}

/// `list_bots`' result.
#[derive(Serialize)]
struct ListBotsResult<'a> {
    operation: &'static str,
    public_id: &'a str,
    bots: Vec<BotResult<'a>>,
}

#[derive(Serialize)]
struct BotResult<'a> {
    bot_id: &'a str,
    name: Option<&'a str>,
    description: Option<&'a str>,
    /// `null` for a BOT whose id no endpoint can carry (then `warning` says why).
    bot_endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// The `warning` of a BOT listed without an endpoint (docs/client.md, "Endpoint rules").
fn unaddressable(problem: EndpointProblem) -> String {
    format!(
        "The BOT id {problem}, so this function cannot address it (no bot_endpoint); run it \
         from Cloud BOT's console or give it an id of letters, digits and ._~-"
    )
}

/// The callback route's answer body (never names the id or the token).
#[derive(Serialize)]
struct CallbackResult {
    operation: &'static str,
    delivery: &'static str,
}

/// The result JSON of `job` at `reference`, as `operation` answers it.
pub(super) fn job_result(
    operation: OperationKind,
    job: &Job,
    reference: &JobEndpoint,
) -> Result<Box<RawValue>, Failure> {
    to_raw(&JobResult {
        operation: operation.name(),
        job_id: &job.job_id,
        job_reference_endpoint: reference.url(),
        public_id: reference.public_id().as_str(),
        bot_id: &job.bot_id,
        bot_name: job.bot_name.as_deref(),
        status: job.status.label(),
        status_code: job.status.code(),
        response_code: job.code,
        start_time: job.start_time.as_deref(),
        elapsed_time: job.elapsed_time,
        message: job.message.as_deref(),
        output: job.output.as_deref(),
        output_omitted: job.output_omitted,
        output_note: job.output_omitted.then_some(OUTPUT_NOTE),
        cast_url: job.cast_url.as_deref(),
        replay: false,
    })
}

/// The answer of an execute that started `job`: 202 with the job's `Location`.
pub(super) fn started(job: &Job, reference: &JobEndpoint) -> Result<Answer, Failure> {
    Ok(Answer {
        body: job_result(OperationKind::Execute, job, reference)?,
        http_status: 202,
        location: Some(reference.url().to_owned()),
    })
}

/// A duplicate execute's answer: the first request's result with `"replay": true`, 202 with the
/// same `Location`.
pub(super) fn replay(replayed: Replayed) -> Result<Answer, Failure> {
    let Replayed {
        mut result,
        job_reference_endpoint,
    } = replayed;
    result.insert("replay".into(), Value::Bool(true));
    Ok(Answer {
        body: to_raw(&result)?,
        http_status: 202,
        location: job_reference_endpoint,
    })
}

/// `refer_job`'s answer.
pub(super) fn found(job: &Job, reference: &JobEndpoint) -> Result<Answer, Failure> {
    ok(job_result(OperationKind::ReferJob, job, reference)?)
}

/// `list_bots`' answer.
pub(super) fn bots(
    public_id: &PublicId,
    bots: &[(Bot, Result<BotEndpoint, EndpointProblem>)],
) -> Result<Answer, Failure> {
    ok(to_raw(&ListBotsResult {
        operation: OperationKind::ListBots.name(),
        public_id: public_id.as_str(),
        bots: bots
            .iter()
            .map(|(bot, endpoint)| BotResult {
                bot_id: &bot.id,
                name: bot.name.as_deref(),
                description: bot.description.as_deref(),
                bot_endpoint: endpoint.as_ref().ok().map(BotEndpoint::url),
                warning: endpoint.as_ref().err().map(|p| unaddressable(*p)),
            })
            .collect(),
    })?)
}

/// `resolve_idempotency`'s answer: the record's new state.
pub(super) fn resolved(
    key: &RecordKey,
    state: State,
    job: Option<&JobEndpoint>,
) -> Result<Answer, Failure> {
    ok(to_raw(&ResolveResult {
        operation: OperationKind::ResolveIdempotency.name(),
        record_key: key.as_str(),
        state: state.as_str(),
        job_reference_endpoint: job.map(JobEndpoint::url),
    })?)
}

/// The callback route's answer: always 200 (every 2xx stops Cloud BOT's retries, and every
/// delivery that gets here has nothing left to do), naming what was done.
pub(super) fn delivered(delivery: Delivery) -> Result<Answer, Failure> {
    ok(to_raw(&CallbackResult {
        operation: OperationKind::Callback.name(),
        delivery: delivery.name(),
    })?)
}

/// The BOT-done route's answer: `delivery` is `recorded`, `already_recorded` or `ignored`
/// (docs/events.md, "Runs started outside AWS"); never why a delivery was ignored.
pub(super) fn bot_done(delivery: &'static str) -> Result<Answer, Failure> {
    ok(to_raw(&CallbackResult {
        operation: OperationKind::BotDone.name(),
        delivery,
    })?)
}

/// A managed schedule's tick that sends nothing: the decision and why (docs/schedules.md).
pub(super) fn skipped(skipped: &Skipped) -> Result<Answer, Failure> {
    ok(to_raw(skipped)?)
}

/// A managed schedule's tick that runs, decided for a state machine (`schedule_tick`).
pub(super) fn decided<T: Serialize>(decision: &T) -> Result<Answer, Failure> {
    ok(to_raw(decision)?)
}

fn ok(body: Box<RawValue>) -> Result<Answer, Failure> {
    Ok(Answer {
        body,
        http_status: 200,
        location: None,
    })
}

fn to_raw<T: Serialize>(value: &T) -> Result<Box<RawValue>, Failure> {
    // Serializing these plain structs cannot fail in practice; if it ever does, report it rather
    // than panicking.
    serde_json::value::to_raw_value(value)
        .map_err(|_| Failure::Internal("the result could not be encoded"))
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::cloudbot::{ApiBase, BotId, JobId};

    /// A recorded result as the map [`replay`] marks.
    fn recorded(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn reference() -> JobEndpoint {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        let public_id = PublicId::parse("demo", "public_id").unwrap();
        JobEndpoint::new(&base, public_id, JobId::parse("j1", "job_id").unwrap())
    }

    fn job() -> Job {
        serde_json::from_value(json!({
            "job_id": "j1", "bot_id": "b1", "status": 0,
            "message": "The BOT is executing", "output": {"echo": 1}
        }))
        .unwrap()
    }

    fn body(answer: &Answer) -> Value {
        serde_json::from_str(answer.body.get()).unwrap()
    }

    #[test]
    fn a_started_job_answers_202_with_its_location_and_is_no_replay() {
        let answer = started(&job(), &reference()).unwrap();
        assert_eq!(answer.http_status, 202);
        assert_eq!(answer.location.as_deref(), Some(reference().url()));
        let body = body(&answer);
        assert_eq!(body["operation"], "execute");
        assert_eq!(body["job_id"], "j1");
        assert_eq!(body["public_id"], "demo");
        assert_eq!(body["job_reference_endpoint"], reference().url());
        assert_eq!(body["output"], json!({"echo": 1}));
        assert_eq!(body["replay"], false);
    }

    #[test]
    fn the_job_result_has_every_contract_field_in_order() {
        let answer = found(&job(), &reference()).unwrap();
        assert_eq!(answer.http_status, 200);
        let raw = answer.body.get();
        let at = |key: &str| raw.find(&format!("\"{key}\":")).expect(key);
        let keys = [
            "operation",
            "job_id",
            "job_reference_endpoint",
            "public_id",
            "bot_id",
            "bot_name",
            "status",
            "status_code",
            "response_code",
            "start_time",
            "elapsed_time",
            "message",
            "output",
            "output_omitted",
            "output_note",
            "cast_url",
            "replay",
        ];
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{raw}");
        assert_eq!(body(&answer).as_object().unwrap().len(), keys.len());
        assert_eq!(body(&answer)["operation"], "refer_job");
        assert_eq!(body(&answer)["output_omitted"], false);
        assert_eq!(body(&answer)["output_note"], Value::Null);
    }

    #[test]
    fn an_omitted_output_is_said_with_how_to_fetch_it() {
        let mut job = job();
        job.output = None;
        job.output_omitted = true;
        let body = body(&found(&job, &reference()).unwrap());
        assert_eq!(body["status"], "succeeded");
        assert_eq!(body["output"], Value::Null);
        assert_eq!(body["output_omitted"], true);
        let note = body["output_note"].as_str().unwrap();
        assert!(
            note.contains("job_reference_endpoint") && note.contains("Refer"),
            "{note}"
        );
    }

    #[test]
    fn a_replay_is_the_recorded_result_marked_with_its_location() {
        let answer = replay(Replayed {
            result: recorded(r#"{"job_id":"j","replay":false}"#),
            job_reference_endpoint: Some("https://x/demo/jobs/j".into()),
        })
        .unwrap();
        assert_eq!(answer.body.get(), r#"{"job_id":"j","replay":true}"#);
        assert_eq!(answer.http_status, 202);
        assert_eq!(answer.location.as_deref(), Some("https://x/demo/jobs/j"));
    }

    #[test]
    fn every_callback_delivery_answers_200_and_names_nothing_secret() {
        let signalled = delivered(Delivery::Signalled).unwrap();
        assert_eq!(signalled.http_status, 200);
        assert_eq!(
            signalled.body.get(),
            r#"{"operation":"callback","delivery":"signalled"}"#
        );
        for delivery in [
            Delivery::Settled,
            Delivery::AlreadySettled("x"),
            Delivery::BeingSettled,
        ] {
            assert_eq!(delivered(delivery).unwrap().http_status, 200);
        }
    }

    #[test]
    fn a_resolution_names_the_key_state_and_job() {
        let key = RecordKey::request("k").unwrap();
        let answer = resolved(&key, State::Completed, Some(&reference())).unwrap();
        assert_eq!(
            body(&answer),
            json!({"operation": "resolve_idempotency", "record_key": "request:k",
                   "state": "completed", "job_reference_endpoint": reference().url()})
        );
        let released = resolved(&key, State::Released, None).unwrap();
        assert_eq!(body(&released)["job_reference_endpoint"], Value::Null);
    }

    #[test]
    fn a_bot_list_names_each_bot_and_its_endpoint() {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        let public_id = PublicId::parse("demo", "public_id").unwrap();
        let bot: Bot = serde_json::from_value(json!({"id": "b1", "name": "Echo"})).unwrap();
        let endpoint = BotEndpoint::new(
            &base,
            public_id.clone(),
            BotId::parse("b1", "bot_id").unwrap(),
        );
        let odd: Bot = serde_json::from_value(json!({"id": "a/b"})).unwrap();
        let answer = bots(
            &public_id,
            &[
                (bot, Ok(endpoint.clone())),
                (odd, Err(EndpointProblem::IdCharset)),
            ],
        )
        .unwrap();
        assert_eq!(
            body(&answer),
            json!({"operation": "list_bots", "public_id": "demo", "bots": [
                {"bot_id": "b1", "name": "Echo", "description": null,
                 "bot_endpoint": endpoint.url()},
                {"bot_id": "a/b", "name": null, "description": null, "bot_endpoint": null,
                 "warning": "The BOT id contains characters outside [A-Za-z0-9._~-], so this \
                 function cannot address it (no bot_endpoint); run it from Cloud BOT's console \
                 or give it an id of letters, digits and ._~-"}]})
        );
    }
}
