//! The DynamoDB adapter of the idempotency store against moto: the conditional claim returns the
//! winning record, expiry is compared by the condition itself (moto, like DynamoDB's best-effort
//! TTL, never deletes the item), and updates apply only to the owner's record in the expected
//! state.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_trigger::cloudbot::{ApiBase, BotEndpoint, ExecuteRequest};
use cloudbot_trigger::idempotency::{
    ClaimOutcome, DynamoDbStore, Expected, Fingerprint, NewClaim, RecordKey, State, Store, Update,
    UpdateOutcome,
};

use crate::support::moto::moto;

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

async fn store() -> (DynamoDbStore, String) {
    let table = moto().create_idempotency_table("store").await;
    (DynamoDbStore::new(moto().dynamodb(), table.clone()), table)
}

#[tokio::test]
async fn a_lost_claim_returns_the_winning_record_without_a_read() {
    let (store, _) = store().await;
    let key = RecordKey::request("race").unwrap();
    let fp = fingerprint();
    assert_eq!(
        store.claim(&claim(&key, "first", &fp, NOW)).await.unwrap(),
        ClaimOutcome::Won
    );
    let ClaimOutcome::Taken(winner) = store.claim(&claim(&key, "second", &fp, NOW)).await.unwrap()
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
        ClaimOutcome::Won
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
    let UpdateOutcome::Changed(Some(now)) =
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
        UpdateOutcome::Written
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
        UpdateOutcome::Changed(Some(_))
    ));
    let absent = RecordKey::request("absent").unwrap();
    assert_eq!(
        store
            .update(&absent, mine, &Update::Release, NOW)
            .await
            .unwrap(),
        UpdateOutcome::Changed(None)
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
        ClaimOutcome::Won
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
