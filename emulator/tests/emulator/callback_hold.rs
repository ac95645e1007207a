//! "Hold until callback acknowledged" mode: Cloud BOT counts callback-retry time in a job's
//! execution time, so the real job may read executing while its callback is being delivered.
//! Off by default (the job reads its final status as soon as the BOT ends); on (option, admin
//! API or CLI flag) the job reads executing until a 2xx acknowledges its callback, or until
//! every attempt failed.

use std::time::Duration;

use cloudbot_emulator::EmulatorOptions;
use serde_json::{Value, json};

use crate::support::{Api, Receiver, admin, eventually, start, start_with, test_seed};

async fn read(api: &Api, id: &str) -> Value {
    api.get(&format!("/demo/jobs/{id}")).await.body
}

async fn execute_with_callback(api: &Api, url: &str, tries: u32) -> String {
    api.execute(
        "echo_bot",
        json!({"input": {"message": "held"}, "callback_endpoint": url, "callback_tries": tries}),
    )
    .await
    .body["job_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn by_default_a_job_reads_ended_while_its_callback_is_still_retried() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![500, 500, 200]).await;
    let id = execute_with_callback(&api, &rx.url, 3).await;
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 1).await);
    let job = read(&api, &id).await;
    assert_eq!(
        job["status"], 0,
        "ended although the callback failed: {job}"
    );
    assert_eq!(job["output"]["echo"], "held");
    assert!(!emu.job(&id).unwrap().held_for_callback);
}

/// Hold mode from the start, attempts 400 ms apart (room to read between them on a busy host).
async fn start_holding() -> cloudbot_emulator::Emulator {
    start_with(
        EmulatorOptions::new(test_seed())
            .hold_for_callback(true)
            .callback_interval(Duration::from_millis(400)),
    )
    .await
}

#[tokio::test]
async fn held_job_reads_executing_until_its_callback_is_acknowledged() {
    let emu = start_holding().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![500, 500, 200]).await;
    let id = execute_with_callback(&api, &rx.url, 3).await;
    // The BOT ends after 300 ms; attempts follow 400 ms apart.
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 1).await);
    let during = read(&api, &id).await;
    assert_eq!(during["status"], 2, "executing while delivering: {during}");
    assert_eq!(during["message"], "The BOT is executing");
    assert!(during.get("output").is_none());
    let listed = api.get("/demo/bots/echo_bot/jobs?statuses=2").await.body["jobs"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "listed as executing");
    let record = emu.job(&id).unwrap();
    assert!(record.held_for_callback);
    assert_eq!(record.status, 0, "the admin view shows the real end");
    // The callback itself carries the final job.
    assert_eq!(rx.bodies()[0].1["status"], 0);

    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 3).await);
    assert!(
        eventually(Duration::from_secs(2), || !emu
            .job(&id)
            .unwrap()
            .held_for_callback)
        .await
    );
    let after = read(&api, &id).await;
    assert_eq!(after["status"], 0, "{after}");
    assert_eq!(after["output"]["echo"], "held");
    let record = emu.job(&id).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(record.end_time.as_deref().unwrap()).unwrap();
    let last = emu.callbacks().last().unwrap().at.clone();
    let last = chrono::DateTime::parse_from_rfc3339(&last).unwrap();
    assert!(end >= last, "the end includes the delivery: {end} < {last}");
}

#[tokio::test]
async fn held_job_is_released_when_every_attempt_failed_and_sync_execute_waits_for_it() {
    let emu = start_holding().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![503]).await;
    let id = execute_with_callback(&api, &rx.url, 2).await;
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 2).await);
    assert!(
        eventually(Duration::from_secs(2), || !emu
            .job(&id)
            .unwrap()
            .held_for_callback)
        .await
    );
    assert_eq!(read(&api, &id).await["status"], 0, "given up: ended");

    // A synchronous execute waits until the job reads ended, i.e. after the acknowledgement.
    let ok = Receiver::start(vec![500, 200]).await;
    let a = api
        .execute(
            "echo_bot",
            json!({"timeout": 5000, "callback_endpoint": ok.url, "callback_tries": 2}),
        )
        .await;
    assert_eq!((a.status, a.body["status"].as_i64()), (200, Some(0)));
    assert_eq!(
        ok.bodies().len(),
        2,
        "answered after the second (acknowledged) attempt"
    );
}

#[tokio::test]
async fn hold_mode_is_switched_by_the_admin_api_and_jobs_without_callback_are_not_held() {
    let emu =
        start_with(EmulatorOptions::new(test_seed()).callback_interval(Duration::from_millis(400)))
            .await;
    let api = Api::new(&emu);
    admin(&emu).set_hold_for_callback(true).await.unwrap();
    let plain = api.execute("echo_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.wait_job(&plain).await["status"],
        0,
        "no callback, no hold"
    );
    let rx = Receiver::start(vec![500, 500, 200]).await;
    let id = execute_with_callback(&api, &rx.url, 3).await;
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 1).await);
    assert_eq!(read(&api, &id).await["status"], 2);
    // A suspend during the hold finds the BOT already ended ([I]): unchanged, still held.
    assert_eq!(
        api.delete(&format!("/demo/jobs/{id}")).await.body["status"],
        2
    );
    assert!(!emu.job(&id).unwrap().suspended);
    emu.reset();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let v: Value = http
        .get(format!("{}/__emulator/callback-hold", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["enabled"], false, "reset restores the start mode");
}
