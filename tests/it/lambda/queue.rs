//! The run queue (docs/queue.md): SQS events through the handler with a real idempotency table
//! (moto) and the emulator. Every test counts the jobs the emulator created and reads the
//! `batchItemFailures` SQS would act on.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudbot_emulator::{FaultKind, FaultRule};
use serde_json::{Value, json};

use super::{Harness, Setup};
use crate::support::requests_to;

const NORMAL_QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:app-runs-normal";

/// One SQS record as Lambda delivers it (the fields of a real event).
fn record(id: &str, body: &Value, receive_count: u32) -> Value {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    json!({
        "messageId": id,
        "receiptHandle": format!("AQEB{id}"),
        "body": body.to_string(),
        "attributes": {
            "ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": (now_ms - 1500).to_string(),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms.to_string()
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": NORMAL_QUEUE,
        "awsRegion": "us-east-1"
    })
}

fn batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

fn run(bot: &str, message: &str) -> Value {
    json!({"public_id": "demo", "bot_id": bot, "input": {"message": message}})
}

/// The ids SQS is told failed, sorted.
fn failed(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .expect("a batch answer")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn jobs_of(h: &Harness, bot: &str) -> usize {
    h.emulator.jobs().iter().filter(|j| j.bot_id == bot).count()
}

fn posts(h: &Harness) -> usize {
    requests_to(&h.emulator, "POST", "/demo/bots/").len()
}

#[tokio::test]
async fn a_mixed_batch_reports_only_what_may_be_sent_again_and_a_second_delivery_starts_nothing() {
    let h = Harness::start().await;
    // slow_bot: 503 with Retry-After (provably nothing started); error_bot: the request is
    // processed and the connection reset (outcome unknown).
    h.emulator
        .add_faults([
            FaultRule::new(FaultKind::Status)
                .status(503)
                .retry_after(5)
                .method("POST")
                .path_prefix("/demo/bots/slow_bot/jobs"),
            FaultRule::new(FaultKind::ResetAfter)
                .method("POST")
                .path_prefix("/demo/bots/error_bot/jobs"),
        ])
        .unwrap();
    let event = batch(vec![
        record("m-ok-1", &run("echo_bot", "one"), 1),
        record("m-invalid", &json!({"bot_id": "echo_bot", "colour": 1}), 1),
        record("m-ok-2", &run("echo_bot", "two"), 1),
        record("m-503", &run("slow_bot", "three"), 1),
        record("m-reset", &run("error_bot", "four"), 1),
    ]);
    let answer = h.invoke(event.clone()).await.unwrap();
    // The invalid message goes on to the dead-letter queue, the 503 is delivered again, the
    // reset (a job may exist) is never reported failed.
    assert_eq!(failed(&answer), ["m-503", "m-invalid"]);
    assert_eq!(jobs_of(&h, "echo_bot"), 2, "one job per valid message");
    assert_eq!(jobs_of(&h, "slow_bot"), 0);
    assert_eq!(
        jobs_of(&h, "error_bot"),
        1,
        "the reset came after the job started"
    );
    let posts_before = posts(&h);

    // The same batch again (a lost delete, a visibility timeout that ran out): nothing new.
    let again = h.invoke(event).await.unwrap();
    assert_eq!(failed(&again), ["m-503", "m-invalid"]);
    assert_eq!(jobs_of(&h, "echo_bot"), 2, "replayed, not started again");
    assert_eq!(
        jobs_of(&h, "error_bot"),
        1,
        "an unknown outcome is never sent again"
    );
    assert_eq!(
        posts(&h) - posts_before,
        1,
        "only the 503's message was sent again"
    );
}

#[tokio::test]
async fn a_message_naming_its_own_key_is_deduplicated_on_it_across_messages() {
    let h = Harness::start().await;
    let mut body = run("echo_bot", "keyed");
    body["idempotency_key"] = json!("order-7");
    let answer = h
        .invoke(batch(vec![record("m-a", &body, 1)]))
        .await
        .unwrap();
    assert_eq!(failed(&answer), Vec::<String>::new());
    // A second message (another id) with the same key is a replay.
    let answer = h
        .invoke(batch(vec![record("m-b", &body, 1)]))
        .await
        .unwrap();
    assert_eq!(failed(&answer), Vec::<String>::new());
    assert_eq!(jobs_of(&h, "echo_bot"), 1);
}

/// A slow upstream and concurrency 1: the messages that would start too close to the deadline
/// are put back unsent, and the answer comes before the deadline.
#[tokio::test]
async fn every_message_has_its_fate_before_the_deadline_and_the_unstarted_are_put_back() {
    let h = Harness::start_with(Setup {
        env: vec![
            ("CLOUDBOT_QUEUE_CONCURRENCY", "1".to_owned()),
            ("CLOUDBOT_REQUEST_TIMEOUT_MS", "3000".to_owned()),
        ],
        ..Setup::default()
    })
    .await;
    h.emulator
        .add_faults([FaultRule::new(FaultKind::Latency)
            .latency_ms(1500)
            .method("POST")
            .path_prefix("/demo/bots/echo_bot/jobs")])
        .unwrap();
    let ids: Vec<String> = (0..5).map(|i| format!("m-{i}")).collect();
    let event = batch(
        ids.iter()
            .map(|id| record(id, &run("echo_bot", id), 1))
            .collect(),
    );
    let remaining = Duration::from_millis(6500);
    let started = std::time::Instant::now();
    let answer = h.invoke_with_deadline(event, remaining).await.unwrap();
    assert!(started.elapsed() < remaining, "{:?}", started.elapsed());
    let failed = failed(&answer);
    let jobs = jobs_of(&h, "echo_bot");
    // Each message either started its one job or was reported failed, never both, never none.
    assert_eq!(jobs + failed.len(), ids.len(), "{failed:?}");
    assert!(
        jobs >= 1 && !failed.is_empty(),
        "jobs {jobs}, failed {failed:?}"
    );
    assert_eq!(
        posts(&h),
        jobs,
        "nothing was sent for the messages put back"
    );
}

/// 150 messages through batches of ten with upstream faults (a 503 for a third of each batch) and a
/// duplicate delivery every few batches, redelivering what is reported failed until the queue
/// is empty: jobs created == messages, each message exactly one job.
#[tokio::test]
async fn many_messages_with_upstream_faults_give_one_job_each() {
    const MESSAGES: usize = 150;
    let h = Harness::start().await;
    let mut pending: Vec<(String, u32)> =
        (0..MESSAGES).map(|i| (format!("msg-{i:03}"), 0)).collect();
    let mut done: Vec<String> = Vec::new();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 100, "the queue does not drain: {pending:?}");
        let take = pending.len().min(10);
        let mut delivery: Vec<(String, u32)> = pending.drain(..take).collect();
        // Every third batch also carries a message already done (SQS delivers at least once).
        if rounds % 3 == 0
            && let Some(id) = done.get(rounds % done.len().max(1))
        {
            delivery.push((id.clone(), 2));
        }
        // A third of the batch's POSTs fail (three of ten), so the tail drains too.
        let faults = u32::try_from(delivery.len() / 3).unwrap();
        let rules = (faults > 0).then(|| {
            FaultRule::new(FaultKind::Status)
                .status(503)
                .retry_after(5)
                .method("POST")
                .path_prefix("/demo/bots/echo_bot/jobs")
                .times(faults)
        });
        h.emulator.set_faults(rules).unwrap();
        let event = batch(
            delivery
                .iter()
                .map(|(id, count)| record(id, &run("echo_bot", id), count + 1))
                .collect(),
        );
        let answer = h.invoke(event).await.unwrap();
        let failed: HashSet<String> = failed(&answer).into_iter().collect();
        for (id, count) in delivery {
            if failed.contains(&id) {
                pending.push((id, count + 1));
            } else if !done.contains(&id) {
                done.push(id);
            }
        }
    }
    assert_eq!(done.len(), MESSAGES, "none lost");
    assert_eq!(jobs_of(&h, "echo_bot"), MESSAGES, "none twice");
    // Each message's record holds its own job.
    let table = h.table.as_deref().unwrap();
    let items = crate::support::moto::serial_moto().items(table).await;
    let jobs: BTreeSet<String> = items
        .iter()
        .filter(|item| item["state"].as_s().unwrap() == "completed")
        .map(|item| item["job_reference_endpoint"].as_s().unwrap().clone())
        .collect();
    assert_eq!(jobs.len(), MESSAGES);
    assert!(rounds > MESSAGES / 10, "the faults sent messages back");
}

#[tokio::test]
async fn an_undecodable_sqs_event_fails_the_whole_batch_and_sends_nothing() {
    let h = Harness::start().await;
    let mut broken = record("m-1", &run("echo_bot", "x"), 1);
    broken["attributes"] = json!("not a map");
    let err = h.invoke(batch(vec![broken])).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidRequest");
    assert_eq!(posts(&h), 0);
}
