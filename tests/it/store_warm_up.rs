//! The DynamoDB warm-up of init (`sdk::warm_up_dynamodb`, what `main` runs beside the secret
//! prefetch): against moto it reads the key no record can have from the idempotency table and
//! writes nothing; a refused read is reported without failing; a zero bound sends nothing; and the
//! connection it opens is the one the first store call goes out on.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cloudbot_testkit::dynamodb::DynamoDbEndpoint;
use cloudbot_trigger::cloudbot::{ApiBase, BotEndpoint, ExecuteRequest};
use cloudbot_trigger::idempotency::{
    ClaimWrite, Expected, Fingerprint, NewClaim, RecordKey, State, Store, Update, UpdateWrite,
};
use cloudbot_trigger::sdk::{StoreWarmUp, warm_up_dynamodb};
use cloudbot_trigger::table::{DynamoDbStore, KEY_ATTRIBUTE};

use crate::support::moto::moto;

const BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_warm_up_reads_the_idempotency_table_and_writes_nothing() {
    let table = moto().create_idempotency_table("warm").await;
    let (client, log) = moto().recording_dynamodb();
    let outcome = warm_up_dynamodb(
        &DynamoDbStore::new(client, table.clone()),
        KEY_ATTRIBUTE,
        BOUND,
    )
    .await;
    assert_eq!(outcome, StoreWarmUp::Answered);
    assert_eq!(log.operations(), ["GetItem"]);
    assert!(moto().items(&table).await.is_empty());
}

#[tokio::test]
async fn a_refused_warm_up_names_the_error_and_nothing_else() {
    let (client, _) = moto().recording_dynamodb();
    let outcome = warm_up_dynamodb(
        &DynamoDbStore::new(client, "no-such-table".to_owned()),
        KEY_ATTRIBUTE,
        BOUND,
    )
    .await;
    assert_eq!(
        outcome,
        StoreWarmUp::Failed("DynamoDB GetItem failed: ResourceNotFoundException".to_owned())
    );
}

#[tokio::test]
async fn a_zero_bound_sends_nothing() {
    let (client, log) = moto().recording_dynamodb();
    let outcome = warm_up_dynamodb(
        &DynamoDbStore::new(client, "any".to_owned()),
        KEY_ATTRIBUTE,
        Duration::ZERO,
    )
    .await;
    assert_eq!(outcome, StoreWarmUp::Skipped);
    assert!(log.operations().is_empty());
}

#[tokio::test]
async fn a_store_that_does_not_answer_in_time_is_left_to_the_first_call() {
    let slow = DynamoDbEndpoint::start(Duration::from_secs(2))
        .await
        .unwrap();
    let (client, _) = moto().recording_dynamodb_at(&slow.url());
    let outcome = warm_up_dynamodb(
        &DynamoDbStore::new(client, "t".to_owned()),
        KEY_ATTRIBUTE,
        Duration::from_millis(50),
    )
    .await;
    assert_eq!(outcome, StoreWarmUp::TimedOut);
}

#[tokio::test]
async fn the_first_claim_and_completion_go_out_on_the_warm_up_connection() {
    let store = DynamoDbEndpoint::start(Duration::ZERO).await.unwrap();
    let (client, log) = moto().recording_dynamodb_at(&store.url());
    let records = DynamoDbStore::new(client, "t".to_owned());
    assert_eq!(
        warm_up_dynamodb(&records, KEY_ATTRIBUTE, BOUND).await,
        StoreWarmUp::Answered
    );
    assert_eq!(store.connections_accepted(), 1);

    let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
    let bot =
        BotEndpoint::parse(&base, "https://api.c-bot.pro/demo/bots/echo_bot/jobs", "b").unwrap();
    let fingerprint = Fingerprint::of_execute(&bot, &ExecuteRequest::default());
    let key = RecordKey::request("warm").unwrap();
    let now_ms = 1_800_000_000_000;
    let claim = NewClaim {
        key: &key,
        owner: "req-1",
        fingerprint: &fingerprint,
        bot_endpoint: bot.url(),
        request_id: "req-1",
        now_ms,
        in_flight_until_ms: now_ms + 30_000,
        expires_at_ms: now_ms + 86_400_000,
    };
    assert!(matches!(records.claim(&claim).await, Ok(ClaimWrite::Won)));
    let expected = Expected {
        owner: "req-1",
        state: State::InProgress,
    };
    let done = Update::Complete {
        result: "{}",
        job_reference_endpoint: "https://api.c-bot.pro/demo/jobs/j-1",
    };
    assert!(matches!(
        records.update(&key, expected, &done, now_ms).await,
        Ok(UpdateWrite::Written)
    ));
    assert_eq!(log.operations(), ["GetItem", "PutItem", "UpdateItem"]);
    assert_eq!(
        store.connections_accepted(),
        1,
        "the claim and the completion reused the warm-up's connection"
    );
}

#[tokio::test]
async fn on_the_lean_path_the_claim_and_completion_reuse_the_warm_up_connection_too() {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let store = DynamoDbEndpoint::start(Duration::ZERO).await.unwrap();
    // A client without interceptors of its own, as the function's: its store goes lean.
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "t"))
            .endpoint_url(store.url())
            .build(),
    );
    let records = DynamoDbStore::new(client, "t".to_owned());
    assert!(!records.is_lean(), "nothing learned before the first call");
    assert_eq!(
        warm_up_dynamodb(&records, KEY_ATTRIBUTE, BOUND).await,
        StoreWarmUp::Answered
    );
    assert!(records.is_lean(), "the warm-up's call was learned");
    let key = RecordKey::request("lean-warm").unwrap();
    let fingerprint = Fingerprint::from_stored("ab".repeat(32));
    let now_ms = 1_800_000_000_000;
    let claim = NewClaim {
        key: &key,
        owner: "req-1",
        fingerprint: &fingerprint,
        bot_endpoint: "https://api.c-bot.pro/demo/bots/echo_bot/jobs",
        request_id: "req-1",
        now_ms,
        in_flight_until_ms: now_ms + 30_000,
        expires_at_ms: now_ms + 86_400_000,
    };
    assert!(matches!(records.claim(&claim).await, Ok(ClaimWrite::Won)));
    let expected = Expected {
        owner: "req-1",
        state: State::InProgress,
    };
    let done = Update::Complete {
        result: "{}",
        job_reference_endpoint: "https://api.c-bot.pro/demo/jobs/j-1",
    };
    assert!(matches!(
        records.update(&key, expected, &done, now_ms).await,
        Ok(UpdateWrite::Written)
    ));
    let calls = store.calls();
    assert_eq!(
        (
            calls.get_item,
            calls.put_item,
            calls.update_item,
            calls.other
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(
        store.connections_accepted(),
        1,
        "the lean calls went out on the SDK connector's pooled connection"
    );
}
