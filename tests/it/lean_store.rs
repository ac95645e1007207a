//! The lean DynamoDB call path (`cloudbot_trigger::table`, issue 24) against a scripted HTTP
//! stand-in on 127.0.0.1: what the SDK's standard mode retries is retried (throttling, 5xx, a
//! broken connection) with a fresh signature per attempt, up to the client's attempts; a failed
//! condition or another client error is answered at once with the old item; every request
//! carries the awsJson1.0 target and a SigV4 authorization. moto-backed behaviour of the
//! adapters on the lean path: `store.rs`, `ledger.rs`.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use cloudbot_trigger::idempotency::{ClaimWrite, Fingerprint, NewClaim, RecordKey, State, Store};
use cloudbot_trigger::sdk::{StoreWarmUp, warm_up_dynamodb};
use cloudbot_trigger::table::{DynamoDbStore, KEY_ATTRIBUTE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scripted answer: `None` closes the connection without answering.
type Answer = Option<(u16, String)>;

/// A request as the stand-in saw it: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers requests in order from a script (then `200 {}`), recording each.
async fn stand_in(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (log, script) = (Arc::clone(&log), Arc::clone(&script));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let headers: Vec<(String, String)> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let length: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .map_or(0, |(_, v)| v.parse().unwrap());
                    while buf.len() < end + 4 + length {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                    buf.drain(..end + 4 + length);
                    log.lock().unwrap().push(Seen { headers, body });
                    let answer = script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or(Some((200, "{}".to_owned())));
                    let Some((status, body)) = answer else {
                        return; // closes the connection under the request
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A lean store on the stand-in (learned from the warm-up, the script's first answer), with
/// quick backoffs so the retries take milliseconds.
async fn lean_store(url: &str) -> DynamoDbStore {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("ap-northeast-1"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "secret",
            Some("tok".into()),
            None,
            "t",
        ))
        .endpoint_url(url)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(2)),
        )
        .build();
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t".to_owned());
    let warm = warm_up_dynamodb(&store, KEY_ATTRIBUTE, Duration::from_secs(5)).await;
    assert_eq!(warm, StoreWarmUp::Answered);
    assert!(store.is_lean());
    store
}

fn fault(code: &str) -> String {
    format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"m"}}"#)
}

async fn claim(store: &DynamoDbStore) -> Result<ClaimWrite, String> {
    let key = RecordKey::request("lean").unwrap();
    let fp = Fingerprint::from_stored("ab".repeat(32));
    let now_ms = 1_800_000_000_000;
    store
        .claim(&NewClaim {
            key: &key,
            owner: "me",
            fingerprint: &fp,
            bot_endpoint: "https://api.c-bot.pro/demo/bots/echo_bot/jobs",
            request_id: "r",
            now_ms,
            in_flight_until_ms: now_ms + 1,
            expires_at_ms: now_ms + 2,
        })
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_a_new_signature_each() {
    let (url, seen) = stand_in(vec![
        Some((200, "{}".to_owned())), // the warm-up
        Some((400, fault("ProvisionedThroughputExceededException"))),
        Some((500, fault("InternalServerError"))),
        Some((200, "{}".to_owned())),
    ])
    .await;
    let store = lean_store(&url).await;
    assert_eq!(claim(&store).await, Ok(ClaimWrite::Won));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "the warm-up and three attempts of the claim");
    for attempt in &seen[1..] {
        assert_eq!(
            attempt.header("x-amz-target"),
            Some("DynamoDB_20120810.PutItem")
        );
        assert_eq!(
            attempt.header("content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(attempt.header("x-amz-security-token"), Some("tok"));
        let auth = attempt.header("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
                && auth.contains("/ap-northeast-1/dynamodb/aws4_request"),
            "{auth}"
        );
        assert!(attempt.body.contains(r#""ConditionExpression""#));
        assert!(
            attempt
                .body
                .contains(r#""ReturnValuesOnConditionCheckFailure":"ALL_OLD""#)
        );
    }
    assert_eq!(seen[1].body, seen[3].body, "the same request each attempt");
}

#[tokio::test]
async fn attempts_end_at_the_clients_maximum_with_the_last_error() {
    let (url, seen) = stand_in(vec![
        Some((200, "{}".to_owned())),
        Some((503, String::new())),
        None, // the connection closed under the request: I/O, retried
        Some((400, fault("ThrottlingException"))),
    ])
    .await;
    let store = lean_store(&url).await;
    assert_eq!(
        claim(&store).await,
        Err("DynamoDB PutItem failed: ThrottlingException".to_owned())
    );
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_failed_condition_is_answered_at_once_with_the_old_item() {
    let old = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"failed","Item":{"record_key":{"S":"request:lean"},"state":{"S":"completed"},"owner":{"S":"other"},"fingerprint":{"S":"ff"},"expires_at":{"N":"1800000086"},"in_flight_until":{"N":"1800000030000"}}}"#;
    let (url, seen) = stand_in(vec![
        Some((200, "{}".to_owned())),
        Some((400, old.to_owned())),
    ])
    .await;
    let store = lean_store(&url).await;
    match claim(&store).await {
        Ok(ClaimWrite::Taken(record)) => {
            assert_eq!(record.state, State::Completed);
            assert_eq!(record.owner, "other");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 2, "not retried");
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let (url, seen) = stand_in(vec![
        Some((200, "{}".to_owned())),
        Some((400, fault("ResourceNotFoundException"))),
    ])
    .await;
    let store = lean_store(&url).await;
    assert_eq!(
        claim(&store).await,
        Err("DynamoDB PutItem failed: ResourceNotFoundException".to_owned())
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}
