//! Runs started outside AWS (docs/events.md, "Runs started outside AWS"): a BOT subscribed to
//! the emulator's "BOT done" webhook, a job started from the emulator's console ends, the
//! delivery reaches the handler on the callback API's bot-done route, and the function re-reads
//! the job, records one ledger run (`trigger` `outside`, in moto) and puts one event (counted on
//! a stand-in bus). A second delivery of the same end puts nothing; a forged delivery (no such
//! job, a wrong token, another contract) records nothing; a run of ours is not counted twice.
//!
//! The webhook's receiver is a wiremock server standing in for API Gateway: it takes the
//! emulator's POST, and the test hands that request to the handler as the API Gateway event.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_trigger::bot_done::webhook_url;
use cloudbot_trigger::cloudbot::Credentials;
use cloudbot_trigger::job_events::JobEvents;

use crate::support::bus::Bus;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{Harness, Setup, Store, http_body};
use crate::support::moto::serial_moto;
use crate::support::{bot, call, client_for};

type Item = HashMap<String, AttributeValue>;

/// The harness (ledger in moto, `bus`), a webhook receiver, and echo_bot subscribed to it with
/// the URL `cloudbot subscribe` makes; the URL is returned.
async fn subscribed(bus: &Bus) -> (Harness, MockServer, String) {
    let h = Harness::start_with(Setup {
        ledger: Store::Table,
        events: Some(JobEvents::new(bus.clone())),
        ..Setup::default()
    })
    .await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/callbacks/bot-done/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let client = client_for(&h.emulator.base_url());
    let credentials = Credentials::new("demo-access-token".into(), "demo-secret-key".into());
    let echo = bot(&client, "demo", "echo_bot");
    let url = webhook_url(&format!("{}/callbacks", hook.uri()), &echo, &credentials);
    client
        .subscribe(&call(&credentials, Duration::from_secs(5)), &echo, &url)
        .await
        .unwrap();
    (h, hook, url)
}

/// The deliveries the receiver got, once there are `n`.
async fn deliveries(hook: &MockServer, n: usize) -> Vec<Request> {
    let mut got = Vec::new();
    for _ in 0..200 {
        got = hook.received_requests().await.unwrap();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} deliveries, expected {n}", got.len());
}

/// `request` (a delivery, or one shaped like it) as the callback API's event (HTTP API, v2).
fn event(h: &Harness, path: &str, body: &[u8]) -> Value {
    let mut event = h.event("apigw-v2-execute.json", None);
    event["routeKey"] = json!("POST /callbacks/bot-done/{public_id}/{bot_id}/{token}");
    event["rawPath"] = json!(path);
    event["pathParameters"] = Value::Null;
    event["rawQueryString"] = json!("");
    event["queryStringParameters"] = Value::Null;
    event["requestContext"]["http"]["method"] = json!("POST");
    event["requestContext"]["http"]["path"] = json!(path);
    event["headers"] = json!({"content-type": "application/json"});
    event["body"] = json!(String::from_utf8(body.to_vec()).unwrap());
    event["isBase64Encoded"] = json!(false);
    event
}

async fn deliver(h: &Harness, path: &str, body: &[u8]) -> (u64, Value) {
    let response = h.invoke(event(h, path, body)).await.unwrap();
    let status = response["statusCode"].as_u64().unwrap();
    (status, http_body(&response))
}

async fn runs(h: &Harness) -> Vec<Item> {
    serial_moto()
        .items(h.ledger_table.as_deref().expect("a ledger table"))
        .await
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[tokio::test]
async fn a_console_run_of_a_subscribed_bot_is_recorded_and_announced_once() {
    let bus = Bus::default();
    let (h, hook, url) = subscribed(&bus).await;
    let job_id = h
        .emulator
        .run_from_console("demo", "echo_bot", None)
        .unwrap();
    let delivered = deliveries(&hook, 1).await;
    let path = delivered[0].url.path().to_owned();
    assert!(url.ends_with(&path), "the subscribed URL was called");
    let body = delivered[0].body.clone();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["job_id"],
        job_id.as_str()
    );

    let before = h.upstream_requests();
    let (status, answer) = deliver(&h, &path, &body).await;
    assert_eq!(
        (status, answer),
        (
            200,
            json!({"operation": "bot_done", "delivery": "recorded"})
        )
    );
    assert_eq!(h.upstream_requests(), before + 1, "one re-read of the job");
    let items = runs(&h).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let run = &items[0];
    assert_eq!(text(run, "run"), Some(format!("demo/{job_id}").as_str()));
    assert_eq!(text(run, "trigger"), Some("outside"));
    assert_eq!(text(run, "bot"), Some("demo/echo_bot"));
    assert_eq!(text(run, "end_status"), Some("succeeded"));
    let events = bus.details();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["trigger"], "outside");
    assert_eq!(events[0]["run"], format!("demo/{job_id}"));
    assert_eq!(events[0]["status"], "succeeded");

    // The same end delivered again (Cloud BOT's retry): nothing more.
    let (status, answer) = deliver(&h, &path, &body).await;
    assert_eq!(
        (status, &answer["delivery"]),
        (200, &json!("already_recorded"))
    );
    assert_eq!(runs(&h).await.len(), 1);
    assert_eq!(bus.details().len(), 1, "one event per end");
    // Nothing of the token in the ledger or the event.
    let token = path.rsplit('/').next().unwrap();
    assert!(!format!("{:?}{:?}", runs(&h).await, bus.details()).contains(token));
}

#[tokio::test]
async fn forged_deliveries_record_nothing() {
    let bus = Bus::default();
    let (h, hook, _) = subscribed(&bus).await;
    h.emulator
        .run_from_console("demo", "echo_bot", None)
        .unwrap();
    let path = deliveries(&hook, 1).await[0].url.path().to_owned();
    let token = path.rsplit('/').next().unwrap();
    let before = h.upstream_requests();
    let no_such_job = json!({"job_id": "00000000-0000-0000-0000-000000000000"}).to_string();
    // A job that does not exist, with the right token: one read (404), nothing recorded.
    let (status, answer) = deliver(&h, &path, no_such_job.as_bytes()).await;
    assert_eq!((status, &answer["delivery"]), (200, &json!("ignored")));
    assert_eq!(h.upstream_requests(), before + 1);
    // A wrong token, another BOT's path, another contract: no Cloud BOT call at all.
    for forged in [
        format!("/callbacks/bot-done/demo/echo_bot/{}", "A".repeat(43)),
        format!("/callbacks/bot-done/demo/error_bot/{token}"),
        format!("/callbacks/bot-done/other/echo_bot/{token}"),
    ] {
        let (status, answer) = deliver(&h, &forged, no_such_job.as_bytes()).await;
        assert_eq!(
            (status, &answer["delivery"]),
            (200, &json!("ignored")),
            "{forged}"
        );
    }
    assert_eq!(h.upstream_requests(), before + 1);
    // Not a job id: refused by name, nothing read.
    let (status, answer) = deliver(&h, &path, br#"{"job_id": "../demo"}"#).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("job_id"),
        "{answer}"
    );
    assert_eq!(h.upstream_requests(), before + 1);
    assert!(runs(&h).await.is_empty());
    assert!(bus.details().is_empty());
}

#[tokio::test]
async fn a_run_of_ours_is_not_counted_twice() {
    let bus = Bus::default();
    let (h, hook, _) = subscribed(&bus).await;
    let job_id = h.start_job().await;
    let delivered = deliveries(&hook, 1).await;
    // Our own poll learns the end first (the delivery came after the job ended).
    let refer = json!({"operation": "refer_job", "public_id": "demo", "job_id": job_id});
    let job = h.invoke(refer).await.unwrap();
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(bus.details().len(), 1);
    let (status, answer) = deliver(&h, delivered[0].url.path(), &delivered[0].body).await;
    assert_eq!(
        (status, &answer["delivery"]),
        (200, &json!("already_recorded"))
    );
    let items = runs(&h).await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(&items[0], "trigger"),
        Some("direct"),
        "ours, not outside"
    );
    assert_eq!(bus.details().len(), 1);
}

// current_thread runtime: the thread-local capture sees every event of the handler.
#[tokio::test]
async fn the_path_token_is_never_in_a_log_line_at_any_level() {
    let captured = crate::support::logs::capture_function_logs("trace");
    let bus = Bus::default();
    let (h, hook, _) = subscribed(&bus).await;
    h.emulator
        .run_from_console("demo", "echo_bot", None)
        .unwrap();
    let delivered = deliveries(&hook, 1).await;
    let path = delivered[0].url.path().to_owned();
    let token = path.rsplit('/').next().unwrap().to_owned();
    let (_, answer) = deliver(&h, &path, &delivered[0].body).await;
    assert_eq!(answer["delivery"], "recorded");
    let forged = path.replace("/echo_bot/", "/error_bot/");
    let (_, answer) = deliver(&h, &forged, &delivered[0].body).await;
    assert_eq!(answer["delivery"], "ignored");
    let logs = captured.text();
    assert!(logs.contains("BOT-done delivery ignored"), "{logs}");
    assert!(!logs.contains(&token), "the token is in the logs:\n{logs}");
    assert!(!logs.contains("demo-secret-key"));
}
