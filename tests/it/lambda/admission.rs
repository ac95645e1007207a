//! Admission control (docs/queue.md, "Admission control"): run queue batches through the
//! handler with the slots in a real ledger table (moto) and slow BOTs in the emulator, which
//! counts the jobs of a contract executing at once. Each test plays SQS: a message reported
//! failed is delivered again, its receive count one higher.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudbot_emulator::{FaultKind, FaultRule};
use serde_json::{Value, json};

use super::{Harness, Setup, Store};
use crate::support::eventually;

const NORMAL: &str = "arn:aws:sqs:us-east-1:123456789012:app-runs-normal";
const HIGH: &str = "arn:aws:sqs:us-east-1:123456789012:app-runs-high";

async fn harness(cap: u32, reserved: u32) -> Harness {
    Harness::start_with(Setup {
        env: vec![
            ("CLOUDBOT_RUNNING_CAP", cap.to_string()),
            ("CLOUDBOT_HIGH_RESERVED_SLOTS", reserved.to_string()),
        ],
        ledger: Store::Table,
        ..Setup::default()
    })
    .await
}

/// One SQS record as Lambda delivers it.
fn record(id: &str, bot: &str, queue: &str, receive_count: u32) -> Value {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let body = json!({"public_id": "demo", "bot_id": bot, "input": {"message": id}});
    json!({
        "messageId": id, "receiptHandle": format!("AQEB{id}"), "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": (now_ms - 1000).to_string(), "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": now_ms.to_string()},
        "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": queue, "awsRegion": "us-east-1"
    })
}

/// Delivers `ids` (of `bot`, from `queue`) as one batch: the ids reported failed, sorted.
async fn deliver(h: &Harness, ids: &[String], bot: &str, queue: &str, receive: u32) -> Vec<String> {
    let records: Vec<Value> = ids
        .iter()
        .map(|id| record(id, bot, queue, receive))
        .collect();
    let answer = h.invoke(json!({ "Records": records })).await.unwrap();
    let mut failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .expect("a batch answer")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    failed.sort();
    failed
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Waits until no job of the demo contract executes.
async fn all_ended(h: &Harness) {
    eventually(Duration::from_secs(15), || {
        (h.emulator.running_jobs("demo") == 0).then_some(())
    })
    .await
    .expect("the jobs end");
}

async fn sweep(h: &Harness) -> Value {
    let answer = h.invoke(json!({"admission": "sweep"})).await.unwrap();
    answer["swept"][0].clone()
}

#[tokio::test]
async fn with_a_cap_of_3_no_more_than_3_jobs_run_and_the_sweep_frees_slots_whose_end_went_unheard()
{
    let h = harness(3, 0).await;
    let mut pending = ids("m", 8);
    let mut rounds = Vec::new();
    for receive in 1..=6 {
        let before = h.emulator.jobs().len();
        let failed = deliver(&h, &pending, "slow_bot", NORMAL, receive).await;
        assert!(h.emulator.running_jobs("demo") <= 3);
        rounds.push(h.emulator.jobs().len() - before);
        pending = failed;
        if pending.is_empty() {
            break;
        }
        // Nobody tells the function the jobs ended (no callback, no poll): the sweep finds out.
        all_ended(&h).await;
        let swept = sweep(&h).await;
        assert_eq!(swept["contract"], "demo");
        assert_eq!(swept["taken"], 3, "{swept}");
        assert_eq!(swept["released"], 3, "{swept}");
        assert_eq!(swept["unresolved"], 0, "{swept}");
    }
    // 3 at a time, each message started once.
    assert_eq!(rounds, [3, 3, 2]);
    assert_eq!(h.emulator.jobs().len(), 8);
    assert_eq!(h.emulator.peak_running_jobs("demo"), 3);
    // The sweep recorded the ends in the run ledger, like a poll: a second sweep has nothing
    // left but the last round's slots.
    all_ended(&h).await;
    let swept = sweep(&h).await;
    assert_eq!(
        (swept["taken"].clone(), swept["released"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(sweep(&h).await["taken"], 0);
}

#[tokio::test]
async fn a_slot_comes_back_when_a_poll_learns_the_end_or_the_execute_started_nothing() {
    let h = harness(1, 0).await;
    assert!(
        deliver(&h, &ids("a", 1), "echo_bot", NORMAL, 1)
            .await
            .is_empty()
    );
    let job = h.emulator.jobs()[0].job_id.clone();
    // The one slot is taken: the next message waits, nothing sent.
    assert_eq!(
        deliver(&h, &ids("b", 1), "echo_bot", NORMAL, 1).await,
        ["b-0"]
    );
    assert_eq!(h.emulator.jobs().len(), 1);
    all_ended(&h).await;
    // The state machine's poll learns the end: the slot is free again.
    h.invoke(json!({"operation": "refer_job", "public_id": "demo", "job_id": job}))
        .await
        .unwrap();
    assert!(
        deliver(&h, &ids("b", 1), "echo_bot", NORMAL, 2)
            .await
            .is_empty()
    );
    assert_eq!(h.emulator.jobs().len(), 2);

    // An execute refused with 503 and Retry-After started nothing: its slot is freed at once.
    all_ended(&h).await;
    let second = h.emulator.jobs()[1].job_id.clone();
    h.invoke(json!({"operation": "refer_job", "public_id": "demo", "job_id": second}))
        .await
        .unwrap();
    h.emulator
        .add_faults([FaultRule::new(FaultKind::Status)
            .status(503)
            .retry_after(5)
            .method("POST")
            .path_prefix("/demo/bots/slow_bot/jobs")])
        .unwrap();
    assert_eq!(
        deliver(&h, &ids("c", 1), "slow_bot", NORMAL, 1).await,
        ["c-0"]
    );
    assert!(
        deliver(&h, &ids("d", 1), "echo_bot", NORMAL, 1)
            .await
            .is_empty()
    );
    assert_eq!(h.emulator.jobs().len(), 3);
}

#[tokio::test]
async fn an_unknown_outcome_keeps_its_slot_and_the_sweep_says_so() {
    let h = harness(1, 0).await;
    h.emulator
        .add_faults([FaultRule::new(FaultKind::ResetAfter)
            .method("POST")
            .path_prefix("/demo/bots/error_bot/jobs")])
        .unwrap();
    // Kept (never redelivered), and its slot too: a job may be running.
    assert!(
        deliver(&h, &ids("u", 1), "error_bot", NORMAL, 1)
            .await
            .is_empty()
    );
    assert_eq!(
        deliver(&h, &ids("v", 1), "echo_bot", NORMAL, 1).await,
        ["v-0"]
    );
    let swept = sweep(&h).await;
    assert_eq!(
        (swept["taken"].clone(), swept["unresolved"].clone()),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn a_high_priority_message_starts_before_a_backlog_of_normal_ones() {
    let h = harness(3, 1).await;
    let backlog = ids("n", 5);
    // Normal may use 2 of the 3 slots.
    let waiting = deliver(&h, &backlog, "slow_bot", NORMAL, 1).await;
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    assert_eq!(h.emulator.jobs().len(), 2);
    // The backlog comes again: still waiting, the high lane's slot is not theirs.
    assert_eq!(deliver(&h, &waiting, "slow_bot", NORMAL, 2).await, waiting);
    // A high-priority message starts at once, before any of the backlog.
    assert!(
        deliver(&h, &ids("h", 1), "slow_bot", HIGH, 1)
            .await
            .is_empty()
    );
    assert_eq!(h.emulator.jobs().len(), 3);
    assert_eq!(h.emulator.running_jobs("demo"), 3);
    let last = h.emulator.jobs().last().unwrap().clone();
    assert_eq!(last.output, None);
    assert!(h.emulator.peak_running_jobs("demo") <= 3);
}

/// The put-back itself, against an SQS (moto's): a message made invisible for its delay is
/// not received again before it passes; the queue URL comes from the ARN the event carries.
#[tokio::test]
async fn a_waiting_message_is_made_invisible_for_its_delay() {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    use cloudbot_trigger::admission::Visibility;

    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "moto",
        )))
        .endpoint_url(crate::support::moto::moto().endpoint())
        .build();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("admission-{}-runs-normal", std::process::id());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    sqs.send_message()
        .queue_url(&url)
        .message_body("{}")
        .send()
        .await
        .unwrap();
    let receive = || async {
        sqs.receive_message()
            .queue_url(&url)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap()
            .messages()
            .to_vec()
    };
    // Received with no visibility timeout: visible again at once.
    let received = receive().await;
    assert_eq!(received.len(), 1);
    assert_eq!(receive().await.len(), 1, "visible again");
    let handle = receive().await[0].receipt_handle().unwrap().to_owned();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    Visibility::new(&sdk)
        .delay(&arn, &handle, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(receive().await.is_empty(), "put back for 60 s");
}
