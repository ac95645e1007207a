//! Unknown outcomes reconciled from Cloud BOT's job list (docs/exactly-once.md, "Reconciling
//! unknown outcomes"): the handler with a real idempotency table (moto DynamoDB, with its index
//! `by_bot`) and the emulator. A duplicate delivery after a 503 without `Retry-After` ends with
//! exactly one job whether or not the 503 came after the job was created; an ambiguous window
//! stays unknown with its candidate jobs named. Every test counts the emulator's jobs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudbot_emulator::{FaultKind, FaultRule};
use serde_json::{Value, json};

use super::{Harness, Setup};
use crate::support::requests_to;

/// The settle time the tests run with: short, yet long enough that the "too early" check right
/// after the fault stays within it on a loaded machine.
const SETTLE_S: u64 = 5;

async fn harness() -> Harness {
    Harness::start_with(Setup {
        env: vec![("CLOUDBOT_RECONCILE_SETTLE_SECONDS", SETTLE_S.to_string())],
        ..Setup::default()
    })
    .await
}

fn execute(key: Option<&str>) -> Value {
    let mut request = json!({
        "public_id": "demo",
        "bot_id": "echo_bot",
        "input": {"message": "once"}
    });
    if let Some(key) = key {
        request["idempotency_key"] = json!(key);
    }
    request
}

fn posts(h: &Harness) -> usize {
    requests_to(&h.emulator, "POST", "/demo/bots/").len()
}

fn job_ids(h: &Harness) -> Vec<String> {
    h.emulator.jobs().into_iter().map(|j| j.job_id).collect()
}

/// A 503 without `Retry-After` on the next execute: `after` = the job is created first.
fn a_503(h: &Harness, after: bool) {
    let kind = if after {
        FaultKind::StatusAfter
    } else {
        FaultKind::Status
    };
    h.emulator
        .set_faults([FaultRule::new(kind)
            .status(503)
            .method("POST")
            .path_prefix("/demo/bots/echo_bot/jobs")
            .times(1)])
        .unwrap();
}

/// The stored record of `key` (`request:<key>`).
async fn stored(h: &Harness, key: &str) -> std::collections::HashMap<String, String> {
    let table = h.table.as_deref().expect("a table");
    let items = crate::support::moto::serial_moto().items(table).await;
    let item = items
        .iter()
        .find(|item| item["record_key"].as_s().unwrap() == &format!("request:{key}"))
        .expect("the record");
    item.iter()
        .filter_map(|(k, v)| {
            v.as_s()
                .or_else(|_| v.as_n())
                .ok()
                .map(|v| (k.clone(), v.clone()))
        })
        .collect()
}

/// Waits until the record of `key`'s settle time has passed: the window closes `SETTLE_S`
/// after the owner gave the request up (the record's `updated_at`).
async fn settled(h: &Harness, key: &str) {
    let gave_up_ms: u64 = stored(h, key).await["updated_at"].parse().unwrap();
    let at = UNIX_EPOCH + Duration::from_millis(gave_up_ms + SETTLE_S * 1000 + 50);
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}

#[tokio::test]
async fn a_503_before_any_job_is_proved_unstarted_and_the_duplicate_starts_exactly_one() {
    let h = harness().await;
    a_503(&h, false);
    let first = h.invoke(execute(Some("r-none"))).await.unwrap_err();
    assert_eq!(first.error_type, "CloudBot.OutcomeUnknown", "{first:?}");
    assert_eq!(stored(&h, "r-none").await["state"], "unknown");

    // Within the settle time the list proves nothing yet: nothing is sent, nothing changes.
    let early = h.invoke(execute(Some("r-none"))).await.unwrap_err();
    assert_eq!(early.error_type, "CloudBot.OutcomeUnknown", "{early:?}");
    assert!(
        early.error_message.contains("can settle it from"),
        "{early:?}"
    );
    assert_eq!((posts(&h), job_ids(&h).len()), (1, 0));

    settled(&h, "r-none").await;
    let ok = h.invoke(execute(Some("r-none"))).await.unwrap();
    assert_eq!(ok["replay"], false, "{ok}");
    assert_eq!((posts(&h), job_ids(&h).len()), (2, 1), "exactly one job");
    assert_eq!(stored(&h, "r-none").await["state"], "completed");

    let again = h.invoke(execute(Some("r-none"))).await.unwrap();
    assert_eq!(again["replay"], true);
    assert_eq!(again["job_id"], ok["job_id"]);
    assert_eq!((posts(&h), job_ids(&h).len()), (2, 1));
}

#[tokio::test]
async fn a_503_after_the_job_was_created_is_proved_started_and_replayed() {
    let h = harness().await;
    a_503(&h, true);
    let first = h.invoke(execute(Some("r-one"))).await.unwrap_err();
    assert_eq!(first.error_type, "CloudBot.OutcomeUnknown", "{first:?}");
    let jobs = job_ids(&h);
    assert_eq!(jobs.len(), 1, "the emulator created the job before its 503");

    settled(&h, "r-one").await;
    let replay = h.invoke(execute(Some("r-one"))).await.unwrap();
    assert_eq!(replay["replay"], true, "{replay}");
    assert_eq!(replay["job_id"], jobs[0].as_str());
    let record = stored(&h, "r-one").await;
    assert_eq!(record["state"], "completed");
    assert!(record["job_reference_endpoint"].ends_with(&jobs[0]));
    assert_eq!((posts(&h), job_ids(&h).len()), (1, 1), "never two");

    // The next duplicate replays the record without listing again.
    let lists_before = requests_to(&h.emulator, "GET", "/demo/bots/").len();
    let again = h.invoke(execute(Some("r-one"))).await.unwrap();
    assert_eq!(again["job_id"], jobs[0].as_str());
    assert_eq!(
        requests_to(&h.emulator, "GET", "/demo/bots/").len(),
        lists_before
    );
}

#[tokio::test]
async fn two_jobs_in_the_window_stay_unknown_with_both_named() {
    let h = harness().await;
    a_503(&h, true);
    let first = h.invoke(execute(Some("r-two"))).await.unwrap_err();
    assert_eq!(first.error_type, "CloudBot.OutcomeUnknown", "{first:?}");
    // Another start of the same BOT at the same moment that no claim of ours explains (a
    // console run, another stack: here a request without a key).
    h.invoke(execute(None)).await.unwrap();
    let jobs = job_ids(&h);
    assert_eq!(jobs.len(), 2);

    settled(&h, "r-two").await;
    let err = h.invoke(execute(Some("r-two"))).await.unwrap_err();
    assert_eq!(err.error_type, "CloudBot.OutcomeUnknown", "{err:?}");
    assert!(err.error_message.contains("candidate jobs"), "{err:?}");
    for job in &jobs {
        assert!(err.error_message.contains(job.as_str()), "{job}: {err:?}");
    }
    assert_eq!(stored(&h, "r-two").await["state"], "unknown");
    assert_eq!((posts(&h), job_ids(&h).len()), (2, 2), "nothing sent");
}

#[tokio::test]
async fn one_job_that_another_unknown_claim_may_have_started_stays_unknown() {
    let h = harness().await;
    // Two requests of ours on the same BOT, both unknown: one job exists, either may own it.
    a_503(&h, true);
    h.invoke(execute(Some("r-a"))).await.unwrap_err();
    a_503(&h, false);
    h.invoke(execute(Some("r-b"))).await.unwrap_err();
    let jobs = job_ids(&h);
    assert_eq!(jobs.len(), 1);

    settled(&h, "r-b").await;
    for (key, rival) in [("r-a", "request:r-b"), ("r-b", "request:r-a")] {
        let err = h.invoke(execute(Some(key))).await.unwrap_err();
        assert_eq!(err.error_type, "CloudBot.OutcomeUnknown", "{err:?}");
        assert!(
            err.error_message.contains(rival) && err.error_message.contains(&jobs[0]),
            "{key}: {err:?}"
        );
        assert_eq!(stored(&h, key).await["state"], "unknown");
    }
    assert_eq!((posts(&h), job_ids(&h).len()), (2, 1));
}
