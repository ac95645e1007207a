//! The dead-letter move (docs/queue.md, "What becomes of a message"): a run queue message that
//! will never succeed goes to the run dead-letter queue (moto's SQS) after one delivery, with
//! its reason, and is not reported failed; when the move fails it stays reported failed.

use serde_json::json;

use super::{Harness, Setup};
use crate::support::moto::moto;

const NORMAL: &str = "arn:aws:sqs:us-east-1:123456789012:app-runs-normal";

/// A fresh queue on moto: its URL.
async fn queue(sqs: &aws_sdk_sqs::Client, suffix: &str) -> String {
    let name = format!("dead-letter-{}-{suffix}", std::process::id());
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

async fn harness(dead_letter_url: String) -> Harness {
    Harness::start_with(Setup {
        env: vec![("CLOUDBOT_RUN_DEAD_LETTER_QUEUE_URL", dead_letter_url)],
        ..Setup::default()
    })
    .await
}

/// A batch of one message with `body`, delivered for the first time: the ids reported failed.
async fn deliver(h: &Harness, id: &str, body: &str) -> Vec<String> {
    let record = json!({
        "messageId": id, "receiptHandle": format!("AQEB{id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": NORMAL, "awsRegion": "us-east-1"
    });
    let answer = h.invoke(json!({ "Records": [record] })).await.unwrap();
    answer["batchItemFailures"]
        .as_array()
        .expect("a batch answer")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

const INVALID: &str = r#"{"public_id": "demo", "bot_id": "echo_bot", "no_such_field": 1}"#;

#[tokio::test]
async fn an_invalid_message_is_moved_to_the_dead_letter_queue_with_its_reason_after_one_delivery() {
    let sqs = aws_sdk_sqs::Client::new(&moto().sdk_config());
    let url = queue(&sqs, "dlq").await;
    let h = harness(url.clone()).await;

    let failed = deliver(&h, "bad-1", INVALID).await;
    assert!(
        failed.is_empty(),
        "moved, so not reported failed: {failed:?}"
    );
    assert!(h.emulator.jobs().is_empty(), "nothing was sent upstream");

    let received = sqs
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let messages = received.messages();
    assert_eq!(messages.len(), 1, "one copy in the dead-letter queue");
    let moved = &messages[0];
    assert_eq!(moved.body(), Some(INVALID), "the original body");
    let attribute = |name: &str| -> String {
        moved.message_attributes().unwrap()[name]
            .string_value()
            .unwrap()
            .to_owned()
    };
    assert_eq!(attribute("ErrorType"), "InvalidRequest");
    assert!(
        attribute("ErrorMessage").contains("no_such_field"),
        "names the field: {}",
        attribute("ErrorMessage")
    );
    assert_eq!(attribute("SourceLane"), "normal");
    assert_eq!(attribute("SourceMessageId"), "bad-1");
}

#[tokio::test]
async fn a_message_whose_move_fails_stays_reported_failed() {
    // A queue that does not exist: SendMessage fails (QueueDoesNotExist).
    let missing = format!(
        "{}/123456789012/dead-letter-{}-missing",
        moto().endpoint().trim_end_matches('/'),
        std::process::id()
    );
    let h = harness(missing).await;
    let failed = deliver(&h, "bad-2", INVALID).await;
    assert_eq!(
        failed,
        vec!["bad-2".to_owned()],
        "SQS moves it after maxReceiveCount"
    );
}
