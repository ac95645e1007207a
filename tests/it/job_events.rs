//! The job-finished events' EventBridge adapter against moto's EventBridge: an event put on the
//! stack-shaped bus reaches a rule's SQS target once, with the documented envelope (source,
//! detail type, detail), and a put the bus refuses is an error that names the code and carries
//! none of the detail. The queue is read over SQS's JSON protocol (no SQS SDK in the workspace).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cloudbot_trigger::cloudbot::{ApiBase, JobEndpoint, JobStatus};
use cloudbot_trigger::job_events::{DetailType, Ended, EventBridgeBus, JobEvents, SOURCE};
use cloudbot_trigger::ledger::{EndedRun, Observed, RecordedStart, RunWrite};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::moto::moto;

fn eventbridge() -> aws_sdk_eventbridge::Client {
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .endpoint_url(moto().endpoint())
        .build();
    aws_sdk_eventbridge::Client::from_conf(conf)
}

/// One SQS JSON-protocol call to moto.
async fn sqs(action: &str, body: Value) -> Value {
    let answer = reqwest::Client::new()
        .post(moto().endpoint())
        .header("x-amz-target", format!("AmazonSQS.{action}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/sqs/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{action}: {}",
        answer.status()
    );
    serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
}

/// A bus with a rule sending every `cloudbot-trigger` event to a new queue: (bus, queue URL).
async fn bus_with_queue() -> (String, String) {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let (bus, queue) = (format!("jobs-{n}"), format!("job-events-{n}"));
    let client = eventbridge();
    client.create_event_bus().name(&bus).send().await.unwrap();
    let url = sqs("CreateQueue", json!({"QueueName": queue})).await["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let rule = format!("to-{queue}");
    client
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(json!({"source": [SOURCE]}).to_string())
        .send()
        .await
        .unwrap();
    client
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(format!("arn:aws:sqs:us-east-1:123456789012:{queue}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (bus, url)
}

async fn received(queue_url: &str) -> Vec<Value> {
    let answer = sqs(
        "ReceiveMessage",
        json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10}),
    )
    .await;
    answer["Messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| serde_json::from_str(m["Body"].as_str().unwrap()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

fn ended_run() -> EndedRun {
    let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
    let job = JobEndpoint::parse(&base, "https://api.c-bot.pro/demo/jobs/j-7", "j").unwrap();
    let observed = Observed {
        status: JobStatus::Error,
        bot_id: "error_bot",
        start_time: Some("2026-12-07T09:00:00Z"),
        elapsed_s: Some(5),
        message: Some("the BOT failed"),
        output_omitted: false,
    };
    let write = RunWrite::of(&job, &observed, None, 1_796_633_000_000, 100);
    EndedRun::of(&write, &RecordedStart::default()).unwrap()
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn an_event_put_on_the_bus_reaches_a_rule_once_with_the_documented_envelope() {
    let (bus, queue) = bus_with_queue().await;
    let events = JobEvents::new(EventBridgeBus::new(eventbridge(), bus));
    let run = ended_run();
    events
        .publish(&Ended::of(&run).event(), deadline())
        .await
        .unwrap();

    let messages = received(&queue).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let event = &messages[0];
    assert_eq!(event["source"], SOURCE);
    assert_eq!(event["detail-type"], DetailType::Failed.name());
    assert_eq!(event["detail"]["run"], "demo/j-7");
    assert_eq!(event["detail"]["bot"], "demo/error_bot");
    assert_eq!(event["detail"]["status"], "error");
    assert_eq!(event["detail"]["started_at"], "2026-12-07T09:00:00Z");
    assert_eq!(event["detail"]["message"], "the BOT failed");
    assert!(received(&queue).await.is_empty(), "one event, one message");
}

#[tokio::test]
async fn a_put_on_a_missing_bus_fails_with_a_code_and_no_detail() {
    let events = JobEvents::new(EventBridgeBus::new(eventbridge(), "no-such-bus".to_owned()));
    let run = ended_run();
    let err = events
        .publish(&Ended::of(&run).event(), deadline())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("EventBridge PutEvents"), "{err}");
    assert!(
        !err.contains("the BOT failed") && !err.contains("j-7"),
        "{err}"
    );
}
