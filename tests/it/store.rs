//! The DynamoDB adapter of the idempotency store against moto: the conditional claim returns the
//! winning record, expiry is compared by the condition itself (moto, like DynamoDB's best-effort
//! TTL, never deletes the item), and updates apply only to the owner's record in the expected
//! state. The callback records' settle claim on the same table: won once, a lapsed lease taken
//! over, and concurrent deliveries making exactly one Step Functions call.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_trigger::callback::{
    CallbackId, CallbackState, CallbackStore, Callbacks, Delivery, Lease, NewCallback, SettleClaim,
    SettleClaimWrite, SettleFuture, Settled, TaskOutcome, TaskSettler, TaskToken, Turn, turn,
};
use cloudbot_trigger::cloudbot::{ApiBase, BotEndpoint, ExecuteRequest};
use cloudbot_trigger::idempotency::{
    ClaimWrite, Expected, Fingerprint, NewClaim, RecordKey, State, Store, Update, UpdateWrite,
};
use cloudbot_trigger::sdk::{StoreWarmUp, warm_up_dynamodb};
use cloudbot_trigger::table::{DynamoDbStore, KEY_ATTRIBUTE};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::support::moto::{moto, serial_moto};

const NOW: u64 = 1_800_000_000_000;

fn fingerprint() -> Fingerprint {
    let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
    let bot =
        BotEndpoint::parse(&base, "https://api.c-bot.pro/demo/bots/echo_bot/jobs", "b").unwrap();
    Fingerprint::of_execute(&bot, &ExecuteRequest::default())
}

fn claim<'a>(key: &'a RecordKey, owner: &'a str, fp: &'a Fingerprint, now_ms: u64) -> NewClaim<'a> {
    NewClaim {
        key,
        owner,
        fingerprint: fp,
        bot_endpoint: "https://api.c-bot.pro/demo/bots/echo_bot/jobs",
        request_id: "req-1",
        now_ms,
        in_flight_until_ms: now_ms + 30_000,
        expires_at_ms: now_ms + 86_400_000,
    }
}

/// A store on a new table, its calls on the lean path from the first (learned from the init's
/// warm-up read, as in the function).
async fn store() -> (DynamoDbStore, String) {
    let table = moto().create_idempotency_table("store").await;
    (
        lean(DynamoDbStore::new(moto().dynamodb(), table.clone())).await,
        table,
    )
}

async fn lean(store: DynamoDbStore) -> DynamoDbStore {
    let warm = warm_up_dynamodb(&store, KEY_ATTRIBUTE, Duration::from_secs(5)).await;
    assert_eq!(warm, StoreWarmUp::Answered);
    assert!(store.is_lean(), "the warm-up's call was learned");
    store
}

#[tokio::test]
async fn a_lost_claim_returns_the_winning_record_without_a_read() {
    let (store, _) = store().await;
    let key = RecordKey::request("race").unwrap();
    let fp = fingerprint();
    assert_eq!(
        store.claim(&claim(&key, "first", &fp, NOW)).await.unwrap(),
        ClaimWrite::Won
    );
    let ClaimWrite::Taken(winner) = store.claim(&claim(&key, "second", &fp, NOW)).await.unwrap()
    else {
        panic!("the second claim must lose");
    };
    assert_eq!(
        (winner.state, winner.owner.as_str()),
        (State::InProgress, "first")
    );
    assert_eq!(winner.fingerprint, fp);
    assert_eq!(winner.in_flight_until_ms, NOW + 30_000);
    assert_eq!(winner.expires_at_ms, NOW + 86_400_000);
}

#[tokio::test]
async fn an_expired_record_is_claimed_again_though_the_item_is_still_there() {
    let (store, table) = store().await;
    let key = RecordKey::request("old").unwrap();
    let fp = fingerprint();
    store
        .claim(&claim(&key, "yesterday", &fp, NOW))
        .await
        .unwrap();
    // A day and a second later: moto (like DynamoDB's TTL, for a while) still holds the item.
    let later = NOW + 86_401_000;
    assert_eq!(moto().items(&table).await.len(), 1);
    assert_eq!(
        store
            .claim(&claim(&key, "today", &fp, later))
            .await
            .unwrap(),
        ClaimWrite::Won
    );
    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(record.owner, "today");
}

#[tokio::test]
async fn updates_apply_only_to_the_owners_record_in_the_expected_state() {
    let (store, _) = store().await;
    let key = RecordKey::request("settle").unwrap();
    let fp = fingerprint();
    store.claim(&claim(&key, "me", &fp, NOW)).await.unwrap();
    let complete = Update::Complete {
        result: r#"{"job_id":"j"}"#,
        job_reference_endpoint: "https://api.c-bot.pro/demo/jobs/j",
    };
    let not_mine = Expected {
        owner: "someone",
        state: State::InProgress,
    };
    let UpdateWrite::Changed(Some(now)) =
        store.update(&key, not_mine, &complete, NOW).await.unwrap()
    else {
        panic!("another owner's update must not apply");
    };
    assert_eq!(now.owner, "me");
    let mine = Expected {
        owner: "me",
        state: State::InProgress,
    };
    assert_eq!(
        store.update(&key, mine, &complete, NOW).await.unwrap(),
        UpdateWrite::Written
    );
    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(record.state, State::Completed);
    assert_eq!(record.result.as_deref(), Some(r#"{"job_id":"j"}"#));
    // Settled once: a second settlement of the same claim does not apply.
    assert!(matches!(
        store
            .update(&key, mine, &Update::Release, NOW)
            .await
            .unwrap(),
        UpdateWrite::Changed(Some(_))
    ));
    let absent = RecordKey::request("absent").unwrap();
    assert_eq!(
        store
            .update(&absent, mine, &Update::Release, NOW)
            .await
            .unwrap(),
        UpdateWrite::Changed(None)
    );
}

#[tokio::test]
async fn a_released_key_is_free_and_a_malformed_record_is_an_error_not_a_guess() {
    let (store, table) = store().await;
    let key = RecordKey::request("free").unwrap();
    let fp = fingerprint();
    store.claim(&claim(&key, "first", &fp, NOW)).await.unwrap();
    let first = Expected {
        owner: "first",
        state: State::InProgress,
    };
    store
        .update(&key, first, &Update::Release, NOW)
        .await
        .unwrap();
    assert_eq!(
        store.claim(&claim(&key, "second", &fp, NOW)).await.unwrap(),
        ClaimWrite::Won
    );

    let broken = RecordKey::request("broken").unwrap();
    moto()
        .dynamodb()
        .put_item()
        .table_name(&table)
        .set_item(Some(HashMap::from([
            (
                "record_key".to_owned(),
                AttributeValue::S(broken.as_str().to_owned()),
            ),
            ("state".to_owned(), AttributeValue::S("in_progress".into())),
            (
                "expires_at".to_owned(),
                AttributeValue::N("9999999999".into()),
            ),
        ])))
        .send()
        .await
        .unwrap();
    assert!(store.claim(&claim(&broken, "x", &fp, NOW)).await.is_err());
}

// ------------------------------------------------------------------------------------------------
// Callback records (src/callback/): the settle claim on the same table.

fn settle_claim<'a>(hash: &'a str, owner: &'a str, now_ms: u64) -> SettleClaim<'a> {
    SettleClaim {
        hash,
        owner,
        now_ms,
        lease_until_ms: now_ms + 10_000,
    }
}

#[tokio::test]
async fn a_settle_claim_is_won_once_and_a_lapsed_lease_is_taken_over() {
    let (store, _) = store().await;
    let token = TaskToken::parse("token-1").unwrap();
    let hash = "a".repeat(64);
    let new = NewCallback {
        hash: &hash,
        task_key: "request:settle-claim",
        task_token: &token,
        now_ms: NOW,
        expires_at_ms: NOW + 86_400_000,
    };
    store.create(&new).await.unwrap();

    let SettleClaimWrite::Won(claimed) = store
        .claim_settlement(&settle_claim(&hash, "first", NOW))
        .await
        .unwrap()
    else {
        panic!("the first claim of a waiting record must win");
    };
    assert_eq!(claimed.state, CallbackState::Settling);
    assert_eq!(
        claimed.task_token, token,
        "the claim returns the token to tell"
    );
    assert_eq!(
        claimed.lease,
        Some(Lease {
            owner: "first".into(),
            until_ms: NOW + 10_000
        })
    );
    // A second delivery within the lease loses and gets the holder's record back.
    let SettleClaimWrite::Lost(Some(held)) = store
        .claim_settlement(&settle_claim(&hash, "second", NOW + 9_999))
        .await
        .unwrap()
    else {
        panic!("a claim within the lease must lose");
    };
    assert_eq!(
        turn(&held, Some("second"), NOW + 9_999),
        Turn::HeldElsewhere
    );
    // Releasing is the holder's alone.
    store
        .release_settlement(&hash, "second", NOW + 9_999)
        .await
        .unwrap();
    assert_eq!(
        store.read(&hash).await.unwrap().unwrap().state,
        CallbackState::Settling
    );
    // The holder died: at the lease's end the next delivery takes the record over.
    let SettleClaimWrite::Won(taken) = store
        .claim_settlement(&settle_claim(&hash, "second", NOW + 10_000))
        .await
        .unwrap()
    else {
        panic!("a lapsed lease must be taken over");
    };
    assert_eq!(taken.lease.unwrap().owner, "second");
    store
        .mark_settled(&hash, "succeeded", NOW + 10_001)
        .await
        .unwrap();
    let SettleClaimWrite::Lost(Some(settled)) = store
        .claim_settlement(&settle_claim(&hash, "third", NOW + 60_000))
        .await
        .unwrap()
    else {
        panic!("a settled record is never claimed again");
    };
    assert_eq!(turn(&settled, Some("third"), NOW + 60_000), Turn::Settled);
    // Gone records and expired ones are not claimed.
    assert_eq!(
        store
            .claim_settlement(&settle_claim(&"b".repeat(64), "x", NOW))
            .await
            .unwrap(),
        SettleClaimWrite::Lost(None)
    );
}

#[tokio::test]
async fn a_released_claim_is_waiting_again() {
    let (store, _) = store().await;
    let token = TaskToken::parse("token-1").unwrap();
    let hash = "c".repeat(64);
    store
        .create(&NewCallback {
            hash: &hash,
            task_key: "request:release",
            task_token: &token,
            now_ms: NOW,
            expires_at_ms: NOW + 86_400_000,
        })
        .await
        .unwrap();
    store
        .claim_settlement(&settle_claim(&hash, "first", NOW))
        .await
        .unwrap();
    store
        .release_settlement(&hash, "first", NOW + 1)
        .await
        .unwrap();
    let record = store.read(&hash).await.unwrap().unwrap();
    assert_eq!(turn(&record, None, NOW + 2), Turn::Free);
    assert!(matches!(
        store
            .claim_settlement(&settle_claim(&hash, "second", NOW + 2))
            .await
            .unwrap(),
        SettleClaimWrite::Won(_)
    ));
}

/// Step Functions whose first call is held open until the test lets it go, counting calls.
#[derive(Debug, Default)]
struct Gate {
    calls: AtomicUsize,
    entered: Notify,
    release: Notify,
}

#[derive(Debug, Clone, Default)]
struct GatedStepFunctions(Arc<Gate>);

impl GatedStepFunctions {
    fn call(&self) -> SettleFuture<'_> {
        Box::pin(async move {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            self.0.entered.notify_one();
            self.0.release.notified().await;
            Ok(Settled::Accepted)
        })
    }
}

impl TaskSettler for GatedStepFunctions {
    fn succeed<'a>(&'a self, _: &'a TaskToken, _: &'a str) -> SettleFuture<'a> {
        self.call()
    }
    fn fail<'a>(&'a self, _: &'a TaskToken, _: &'a str, _: &'a str) -> SettleFuture<'a> {
        self.call()
    }
}

#[tokio::test]
async fn concurrent_deliveries_of_one_callback_make_one_step_functions_call() {
    const DELIVERIES: usize = 8;
    // Atomic conditional writes, as DynamoDB's (see `serial_moto`).
    let table = serial_moto().create_idempotency_table("concurrent").await;
    let store = lean(DynamoDbStore::new(serial_moto().dynamodb(), table)).await;
    let sfn = GatedStepFunctions::default();
    let base = url::Url::parse("https://cb.example/callbacks").unwrap();
    let callbacks = Arc::new(Callbacks::new(
        store.clone(),
        sfn.clone(),
        &base,
        Duration::from_secs(3600),
    ));
    let deadline = || Instant::now() + Duration::from_secs(30);
    let key = RecordKey::request("concurrent").unwrap();
    let registered = callbacks
        .register(&key, &TaskToken::parse("the-task").unwrap(), deadline())
        .await
        .unwrap();
    callbacks
        .job_started(&registered, "https://api.c-bot.pro/demo/jobs/j", deadline())
        .await;
    let id = CallbackId::parse(registered.url.rsplit('/').next().unwrap()).unwrap();

    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..DELIVERIES {
        let (callbacks, id) = (callbacks.clone(), id.clone());
        deliveries.spawn(async move {
            callbacks
                .settle(&id, &TaskOutcome::Succeed("{}".into()), deadline())
                .await
        });
    }
    // One delivery is inside Step Functions now and stays there until released: every other
    // one must answer meanwhile, as a duplicate, without a call of its own.
    sfn.0.entered.notified().await;
    let mut answers = Vec::new();
    for _ in 1..DELIVERIES {
        let answer = tokio::time::timeout(Duration::from_secs(10), deliveries.join_next())
            .await
            .expect("a second delivery waits for Step Functions: it is not a duplicate");
        answers.push(answer.unwrap().unwrap());
    }
    assert_eq!(sfn.0.calls.load(Ordering::SeqCst), 1);
    assert!(
        answers.iter().all(|a| *a == Ok(Delivery::BeingSettled)),
        "{answers:?}"
    );
    sfn.0.release.notify_one();
    let last = deliveries.join_next().await.unwrap().unwrap();
    assert_eq!(last, Ok(Delivery::Settled));
    // Settled: a later delivery is answered without reading the job or calling anything.
    let record = callbacks.find(&id, deadline()).await.unwrap();
    assert_eq!(record.state, CallbackState::Settled);
    assert_eq!(
        callbacks.answered_without_reading(&record),
        Some(Delivery::AlreadySettled("settled"))
    );
    assert_eq!(sfn.0.calls.load(Ordering::SeqCst), 1);
}
