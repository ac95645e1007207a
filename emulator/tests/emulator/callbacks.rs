//! Callback delivery: the job is POSTed when it ends; non-2xx answers and connection errors
//! are retried up to `callback_tries` attempts, `callback_interval` apart, each recorded.

use std::time::Duration;

use chrono::DateTime;
use serde_json::json;

use crate::support::{Api, Receiver, eventually, start};

#[tokio::test]
async fn callback_posts_the_final_job_once_on_2xx() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![200]).await;
    let a = api
        .execute(
            "echo_bot",
            json!({"input": {"message": "cb"}, "callback_endpoint": rx.url, "callback_tries": 3}),
        )
        .await;
    let id = a.body["job_id"].as_str().unwrap().to_string();
    assert!(eventually(Duration::from_secs(5), || !rx.bodies().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 1, "delivered once");
    let (ct, job) = &bodies[0];
    assert_eq!(ct, "application/json");
    assert_eq!(job["job_id"], id.as_str());
    assert_eq!(job["status"], 0);
    assert_eq!(job["code"], 201);
    assert_eq!(job["bot_id"], "echo_bot");
    assert_eq!(job["output"]["echo"], "cb");
    let attempts = emu.callbacks();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].attempt, attempts[0].status), (1, Some(200)));
    assert_eq!(attempts[0].job_id, id);
    assert!(
        attempts[0].url.ends_with("/callback?token=***"),
        "query values redacted: {}",
        attempts[0].url
    );
}

#[tokio::test]
async fn non_2xx_callbacks_are_retried_at_the_interval_until_success() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![500, 503, 200]).await;
    api.execute(
        "error_bot",
        json!({"callback_endpoint": rx.url, "callback_tries": 5}),
    )
    .await;
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempts = emu.callbacks();
    let statuses: Vec<_> = attempts.iter().map(|a| (a.attempt, a.status)).collect();
    assert_eq!(
        statuses,
        [(1, Some(500)), (2, Some(503)), (3, Some(200))],
        "stops after the 2xx"
    );
    let t0 = DateTime::parse_from_rfc3339(&attempts[0].at).unwrap();
    let t1 = DateTime::parse_from_rfc3339(&attempts[1].at).unwrap();
    assert!(
        (t1 - t0).num_milliseconds() >= 100,
        "seed interval 100 ms honoured"
    );
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies
            .iter()
            .all(|(_, b)| b["status"] == 1 && b["message"].as_str().unwrap().contains("Step 3"))
    );
    assert_eq!(emu.stats().callback_attempts, 3);
}

#[tokio::test]
async fn callbacks_stop_after_callback_tries_attempts() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![500]).await;
    api.execute(
        "echo_bot",
        json!({"callback_endpoint": rx.url, "callback_tries": 2}),
    )
    .await;
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 2).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(emu.callbacks().len(), 2);
    assert_eq!(rx.bodies().len(), 2);
}

#[tokio::test]
async fn unreachable_callback_endpoint_records_connect_errors() {
    let emu = start().await;
    let api = Api::new(&emu);
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/cb");
    api.execute(
        "echo_bot",
        json!({"callback_endpoint": url, "callback_tries": 2}),
    )
    .await;
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 2).await);
    let attempts = emu.callbacks();
    assert!(
        attempts
            .iter()
            .all(|a| a.status.is_none() && a.error.as_deref() == Some("connect")),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn suspended_job_is_reported_to_its_callback() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![200]).await;
    let a = api
        .execute("slow_bot", json!({"callback_endpoint": rx.url}))
        .await;
    let id = a.body["job_id"].as_str().unwrap();
    api.delete(&format!("/demo/jobs/{id}")).await;
    assert!(eventually(Duration::from_secs(2), || rx.bodies().len() == 1).await);
    assert_eq!(rx.bodies()[0].1["status"], 1);
    assert!(eventually(Duration::from_secs(2), || emu.callbacks().len() == 1).await);
    assert_eq!(emu.callbacks()[0].attempt, 1);
}

#[tokio::test]
async fn jobs_without_callback_endpoint_send_nothing() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api.execute("echo_bot", json!({"timeout": 3000})).await;
    assert_eq!(a.body["status"], 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(emu.callbacks().is_empty());
}
