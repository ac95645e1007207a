//! Maximum run time through the handler (issue 22, docs/overrun.md), against the emulator
//! (slow_bot runs 3 s) and moto's run ledger: a job looked at past its maximum is suspended
//! (the emulator records the DELETE), re-read, and the run ends `overrun` with `Job.Overrun`;
//! a token without the Suspend permission gets `Job.SuspendForbidden` and the job runs on; a
//! job within its maximum is only measured. A mixed set of runs (succeeded, failed, overrun)
//! puts one job-finished event per end, with the documented detail (docs/events.md), on a
//! stand-in bus.

use std::collections::BTreeMap;
use std::time::Duration;

use cloudbot_trigger::job_events::JobEvents;

use crate::support::bus::Bus;

use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

use super::{Harness, Setup, Store};
use crate::support::moto::{secret_json, serial_moto};
use crate::support::{credentials, execute_demo, requests_to};

fn refer(job_id: &str) -> Value {
    json!({"operation": "refer_job", "public_id": "demo", "job_id": job_id})
}

/// Looks at the job like a polling loop until a look fails (the overrun) or the job ends;
/// the failed look's error, else `None`.
async fn poll_until_failed(h: &Harness, job_id: &str) -> Option<Diagnostic> {
    for _ in 0..100 {
        match h.invoke(refer(job_id)).await {
            Err(err) => return Some(err),
            Ok(answer) if answer["status"] != "executing" => return None,
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// slow_bot started at the emulator without the function (for a token that may not execute).
async fn slow_job(h: &Harness) -> String {
    let client = crate::support::client_for(&h.emulator.base_url());
    execute_demo(
        &client,
        &credentials(),
        "slow_bot",
        &Default::default(),
        Duration::from_secs(5),
    )
    .await
    .expect("slow_bot starts")
    .job
    .job_id
}

#[tokio::test]
async fn a_job_past_its_requests_maximum_is_suspended_and_its_run_ends_overrun() {
    let h = Harness::start_with(Setup {
        ledger: Store::Table,
        ..Setup::default()
    })
    .await;
    let started = h
        .invoke(json!({"public_id": "demo", "bot_id": "slow_bot", "max_run_seconds": 1}))
        .await
        .unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();

    let err = poll_until_failed(&h, &job_id)
        .await
        .expect("a look past the maximum fails");
    assert_eq!(err.error_type, "Job.Overrun", "{}", err.error_message);
    assert!(
        err.error_message.contains("maximum of 1 s"),
        "{}",
        err.error_message
    );
    let job = h.emulator.job(&job_id).unwrap();
    assert!(job.suspended, "the emulator recorded the suspend: {job:?}");
    assert_eq!(h.emulator.stats().jobs_suspended, 1);
    assert_eq!(
        requests_to(&h.emulator, "DELETE", &format!("/demo/jobs/{job_id}")).len(),
        1
    );

    let items = serial_moto()
        .items(h.ledger_table.as_deref().unwrap())
        .await;
    assert_eq!(items.len(), 1);
    let run = &items[0];
    let text = |name: &str| run.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(text("end_status").as_deref(), Some("overrun"));
    assert_eq!(text("status").as_deref(), Some("overrun"));
    assert_eq!(
        run.get("max_run_s")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("1")
    );

    // A later look finds the suspended job and records no second end.
    let after = h.invoke(refer(&job_id)).await.unwrap();
    assert_eq!(after["status"], "error");
    assert_eq!(h.emulator.stats().jobs_suspended, 1);
}

#[tokio::test]
async fn a_token_without_suspend_gets_the_clear_error_and_the_job_runs_on() {
    let h = Harness::start_with(Setup {
        secret: secret_json("demo-refer-token", "demo-refer-secret"),
        env: vec![("CLOUDBOT_MAX_RUN_SECONDS", "1".to_owned())],
        ..Setup::default()
    })
    .await;
    let job_id = slow_job(&h).await;

    let err = poll_until_failed(&h, &job_id)
        .await
        .expect("a look past the stack default fails");
    assert_eq!(
        err.error_type, "Job.SuspendForbidden",
        "{}",
        err.error_message
    );
    assert!(
        err.error_message.contains("Suspend permission"),
        "{}",
        err.error_message
    );
    assert!(!h.emulator.job(&job_id).unwrap().suspended);
    assert_eq!(h.emulator.stats().jobs_suspended, 0);
}

#[tokio::test]
async fn a_job_within_its_maximum_is_only_looked_at() {
    let h = Harness::start_with(Setup {
        env: vec![("CLOUDBOT_MAX_RUN_SECONDS", "60".to_owned())],
        ..Setup::default()
    })
    .await;
    let job_id = slow_job(&h).await;
    assert!(poll_until_failed(&h, &job_id).await.is_none());
    let job = h.emulator.job(&job_id).unwrap();
    assert_eq!((job.status, job.suspended), (0, false));
    assert!(requests_to(&h.emulator, "DELETE", "/demo/jobs/").is_empty());
}

#[tokio::test]
async fn every_end_of_a_mixed_set_of_runs_is_announced_once_with_the_documented_detail() {
    let bus = Bus::default();
    let h = Harness::start_with(Setup {
        ledger: Store::Table,
        events: Some(JobEvents::new(bus.clone())),
        ..Setup::default()
    })
    .await;
    let mut jobs = BTreeMap::new();
    for (bot, max) in [
        ("echo_bot", None),
        ("error_bot", None),
        ("slow_bot", Some(1)),
    ] {
        let mut request = json!({"public_id": "demo", "bot_id": bot});
        if let Some(max) = max {
            request["max_run_seconds"] = json!(max);
        }
        let started = h.invoke(request).await.unwrap();
        jobs.insert(bot, started["job_id"].as_str().unwrap().to_owned());
    }
    for job_id in jobs.values() {
        poll_until_failed(&h, job_id).await;
        // Polls after the end (a loop's last look, a retry, the CLI) announce nothing more.
        for _ in 0..2 {
            let _ = h.invoke(refer(job_id)).await;
        }
    }
    let events = bus.events();
    assert_eq!(events.len(), 3, "one per end: {events:?}");
    let mut by_bot = BTreeMap::new();
    for event in &events {
        let detail: Value = serde_json::from_str(&event.detail).unwrap();
        let bot = detail["bot"].as_str().unwrap().to_owned();
        by_bot.insert(bot, (event.detail_type.name(), detail));
    }
    for (bot, detail_type, status) in [
        ("echo_bot", "BOT Job Succeeded", "succeeded"),
        ("error_bot", "BOT Job Failed", "error"),
        ("slow_bot", "BOT Job Overrun", "overrun"),
    ] {
        let job_id = &jobs[bot];
        let (name, detail) = &by_bot[&format!("demo/{bot}")];
        assert_eq!(*name, detail_type);
        let fields: Vec<&str> = detail
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // The fields of docs/events.md's table, in the order serde_json keeps (sorted).
        assert_eq!(
            fields,
            [
                "bot",
                "elapsed_s",
                "ended_at",
                "job_endpoint",
                "message",
                "nominal_time",
                "run",
                "schedule",
                "started_at",
                "status",
                "trigger"
            ],
            "{detail}"
        );
        assert_eq!(detail["status"], status, "{detail}");
        assert_eq!(detail["run"], format!("demo/{job_id}"));
        assert!(
            detail["job_endpoint"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/demo/jobs/{job_id}")),
            "{detail}"
        );
        assert_eq!(detail["trigger"], "direct");
        assert!(detail["elapsed_s"].is_u64() && detail["message"].is_string());
    }
}
