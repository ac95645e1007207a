//! SQS events (the run queue, docs/queue.md): a batch of messages, each body one execute request
//! with the same strict validation as a direct invocation (bare, or in the `idempotency_key`
//! envelope). The idempotency key is the message id (the same in every delivery of one message)
//! unless the body names one. What the queue carries is runs: other operations, a task token or
//! a schedule envelope are refused by name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::Value;

use super::{Trigger, envelope, typed_error};
use crate::config::Requests;
use crate::idempotency::RecordKey;
use crate::request::{Operation, Request, RequestError};

/// The run queue's two lanes (docs/queue.md, "Lanes"): each is its own queue with its own event
/// source mapping, so a high-priority run never waits behind a normal backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// The queue whose name ends in `-high` (or `-high.fifo`).
    High,
    /// Every other queue.
    Normal,
}

impl Lane {
    /// The lane of the queue `arn` (`arn:aws:sqs:<region>:<account>:<name>`).
    pub fn of_queue_arn(arn: &str) -> Lane {
        let name = arn.rsplit(':').next().unwrap_or(arn);
        let name = name.strip_suffix(".fifo").unwrap_or(name);
        if name.ends_with("-high") {
            Lane::High
        } else {
            Lane::Normal
        }
    }

    /// Stable name (the metrics' `Lane` dimension, logs).
    pub fn name(self) -> &'static str {
        match self {
            Lane::High => "high",
            Lane::Normal => "normal",
        }
    }
}

/// One message of a batch, decoded.
#[derive(Debug)]
pub struct Queued {
    /// The SQS message id: the batch item to report, and the default idempotency key.
    pub message_id: String,
    /// The lane of the queue it came from.
    pub lane: Lane,
    /// When SQS received it (`SentTimestamp`), if given.
    pub sent_at: Option<SystemTime>,
    /// How often SQS has handed it out, this delivery included (`ApproximateReceiveCount`).
    pub receive_count: Option<u32>,
    /// The validated request, or why there is none.
    pub request: Result<Request, RequestError>,
    /// The body as sent: what the function moves to the dead-letter queue. Never logged.
    pub body: Option<String>,
    /// The queue it came from (`eventSourceARN`) and its receipt handle: what putting it back
    /// for later takes (admission control, docs/queue.md). Never logged.
    pub receipt: Option<(String, String)>,
}

/// True when `event` is an SQS event: a `Records` array whose first record came from SQS.
pub fn is_sqs_event(event: &Value) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|record| record.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

/// Decodes an event [`is_sqs_event`] recognized into its messages. A record without a message id
/// cannot be reported back, so an event holding one is refused as a whole (SQS then redelivers
/// the batch; it never sends such a record).
pub fn decode_batch(event: Value, config: &Requests) -> Result<Vec<Queued>, RequestError> {
    let event: SqsEvent =
        serde_json::from_value(event).map_err(|e| typed_error("an SQS event", &e))?;
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(i, message)| decode_message(i, message, config))
        .collect()
}

fn decode_message(
    index: usize,
    message: SqsMessage,
    config: &Requests,
) -> Result<Queued, RequestError> {
    let message_id = message
        .message_id
        .ok_or_else(|| RequestError::field(format!("Records[{index}].messageId"), "is required"))?;
    let lane = Lane::of_queue_arn(message.event_source_arn.as_deref().unwrap_or_default());
    let receipt = message
        .event_source_arn
        .clone()
        .zip(message.receipt_handle.clone());
    let attribute = |name: &str| message.attributes.get(name).map(String::as_str);
    let sent_at = attribute("SentTimestamp")
        .and_then(|ms| ms.parse().ok())
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    let receive_count = attribute("ApproximateReceiveCount").and_then(|n| n.parse().ok());
    let request = match &message.body {
        None => Err(RequestError::field("body", "is required (one request)")),
        Some(body) => crate::payload::parse(body, "the message body")
            .and_then(|body| decode_body(body, &message_id, config)),
    };
    Ok(Queued {
        message_id,
        lane,
        sent_at,
        receive_count,
        request,
        body: message.body,
        receipt,
    })
}

/// One message body as the function decodes it, before the message id is known: the same strict
/// validation a producer can run before sending (`cloudbot enqueue`). The key is the body's own
/// `idempotency_key`, or `None` (the function then keys it by the message id).
pub fn decode_message_body(body: &str, config: &Requests) -> Result<Request, RequestError> {
    crate::payload::parse(body, "the message body").and_then(|body| decode_unkeyed(body, config))
}

/// One message body: an execute request, keyed by the message id unless it names its own key.
fn decode_body(body: Value, message_id: &str, config: &Requests) -> Result<Request, RequestError> {
    let mut request = decode_unkeyed(body, config)?;
    if let Operation::Execute(execute) = &mut request.operation
        && execute.idempotency_key.is_none()
    {
        execute.idempotency_key = Some(
            RecordKey::message(message_id)
                .map_err(|p| RequestError::field("messageId", format!("(the key) {p}")))?,
        );
    }
    Ok(request)
}

fn decode_unkeyed(body: Value, config: &Requests) -> Result<Request, RequestError> {
    if !body.is_object() {
        return Err(RequestError::field(
            "body",
            format!(
                "must be a request object, not {}",
                crate::request::kind_of(&body)
            ),
        ));
    }
    let decoded = envelope::decode(body, config);
    if decoded.trigger != Trigger::Direct {
        return Err(RequestError::field(
            "schedule",
            "a schedule envelope is not a run queue message (send the plain request)",
        ));
    }
    let request = decoded.request?;
    let Operation::Execute(execute) = &request.operation else {
        return Err(RequestError::field(
            "operation",
            format!(
                "the run queue carries `execute` requests only, not `{}`",
                request.operation.kind().name()
            ),
        ));
    };
    if execute.task_token.is_some() {
        return Err(RequestError::field(
            "task_token",
            "a waiting task is not served through the run queue (invoke the function directly)",
        ));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::tests::config;
    use serde_json::json;

    fn record(id: &str, body: &str, queue: &str) -> Value {
        json!({
            "messageId": id, "receiptHandle": "rh", "body": body,
            "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1765100000000",
                "SenderId": "AIDA", "ApproximateFirstReceiveTimestamp": "1765100000100"},
            "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
            "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
            "awsRegion": "us-east-1"
        })
    }

    fn key(q: &Queued) -> Result<String, String> {
        match &q.request {
            Ok(r) => match &r.operation {
                Operation::Execute(e) => Ok(e.idempotency_key.as_ref().unwrap().to_string()),
                _ => Err("not an execute".into()),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn messages_are_keyed_by_their_id_unless_the_body_names_a_key() {
        let event = json!({"Records": [
            record("m-1", r#"{"bot_id": "b"}"#, "stack-runs-normal"),
            record("m-2", r#"{"idempotency_key": "k", "bot_id": "b"}"#, "stack-runs-high"),
            record("m-3", r#"{"idempotency_key": "e", "request": {"bot_id": "b"}}"#, "q"),
        ]});
        assert!(is_sqs_event(&event));
        let batch = decode_batch(event, &config()).unwrap();
        let keys: Vec<_> = batch.iter().map(key).collect();
        assert_eq!(
            keys,
            [
                Ok("sqs:m-1".to_owned()),
                Ok("request:k".to_owned()),
                Ok("request:e".to_owned())
            ]
        );
        let lanes: Vec<_> = batch.iter().map(|q| q.lane).collect();
        assert_eq!(lanes, [Lane::Normal, Lane::High, Lane::Normal]);
        assert_eq!(batch[0].receive_count, Some(2));
        assert_eq!(
            batch[0].sent_at,
            Some(UNIX_EPOCH + Duration::from_millis(1_765_100_000_000))
        );
    }

    #[test]
    fn bodies_that_are_not_one_execute_are_refused_by_name() {
        for (body, field) in [
            ("not json", "message body is not valid JSON"),
            ("[1]", "`body`"),
            (r#"{"bot_id": "b", "colour": 1}"#, "`colour`"),
            (
                r#"{"operation": "list_bots", "public_id": "demo"}"#,
                "`operation`",
            ),
            (
                r#"{"idempotency_key": "k", "task_token": "t", "request": {"bot_id": "b"}}"#,
                "`task_token`",
            ),
            (
                r#"{"schedule": {"schedule_arn": "a", "scheduled_time": "t"}, "request": {}}"#,
                "`schedule`",
            ),
            (
                r#"{"idempotency_key": "a b", "bot_id": "b"}"#,
                "`idempotency_key`",
            ),
        ] {
            let event = json!({"Records": [record("m", body, "q")]});
            let batch = decode_batch(event, &config()).unwrap();
            let err = key(&batch[0]).unwrap_err();
            assert!(err.contains(field), "{body}: {err}");
        }
    }

    #[test]
    fn a_body_checked_before_sending_is_decoded_as_the_function_decodes_it() {
        let execute = |body: &str| match decode_message_body(body, &config()) {
            Ok(Request {
                operation: Operation::Execute(e),
                ..
            }) => Ok((e.idempotency_key.map(|k| k.to_string()), e.priority.name())),
            Ok(_) => Err("not an execute".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(execute(r#"{"bot_id": "b"}"#), Ok((None, "normal")));
        assert_eq!(
            execute(r#"{"idempotency_key": "k", "request": {"bot_id": "b", "priority": "high"}}"#),
            Ok((Some("request:k".to_owned()), "high"))
        );
        let err = execute(r#"{"bot_id": "b", "priority": "urgent"}"#).unwrap_err();
        assert!(err.contains("`priority`"), "{err}");
        let err = execute(r#"{"operation": "list_bots", "public_id": "demo"}"#).unwrap_err();
        assert!(err.contains("`operation`"), "{err}");
    }

    #[test]
    fn only_sqs_records_are_sqs_events_and_a_record_without_id_is_refused() {
        assert!(!is_sqs_event(&json!({"Records": []})));
        assert!(!is_sqs_event(
            &json!({"Records": [{"eventSource": "aws:s3"}]})
        ));
        assert!(!is_sqs_event(&json!({"bot_id": "b"})));
        let mut no_id = record("m", "{}", "q");
        no_id.as_object_mut().unwrap().remove("messageId");
        let err = decode_batch(json!({"Records": [no_id]}), &config()).unwrap_err();
        assert!(err.to_string().contains("messageId"), "{err}");
    }

    #[test]
    fn the_lane_is_the_queue_name_suffix() {
        for (arn, lane) in [
            ("arn:aws:sqs:us-east-1:1:app-runs-high", Lane::High),
            ("arn:aws:sqs:us-east-1:1:app-runs-high.fifo", Lane::High),
            ("arn:aws:sqs:us-east-1:1:app-runs-normal", Lane::Normal),
            ("arn:aws:sqs:us-east-1:1:highway", Lane::Normal),
            ("", Lane::Normal),
        ] {
            assert_eq!(Lane::of_queue_arn(arn), lane, "{arn}");
        }
    }
}
