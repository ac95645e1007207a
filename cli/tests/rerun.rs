//! `cloudbot rerun RUN` end to end: a run recorded by the function's own ledger (moto DynamoDB,
//! the table as template.yaml declares it), started again through a direct invoke (the Lambda
//! stand-in in front of the real handler) against the emulator: a new job with the recorded
//! input under a new key, linked to the old run; nothing sent without confirmation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cloudbot_emulator::{Emulator, EmulatorOptions, Seed};
use cloudbot_trigger::ledger::{Ledger, LedgerTable};
use serde_json::{Value, json};
use support::lambda::{LambdaStandIn, invoke_handler};
use support::ledger::create_ledger_table;
use support::moto::Moto;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_starts_a_recorded_run_again_under_a_new_key_after_confirmation() {
    let moto = Moto::start();
    create_ledger_table(&moto, "runs");
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config());
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
    secrets
        .create_secret()
        .name("cloudbot/demo")
        .secret_string(r#"{"access_token":"demo-access-token","secret_key":"demo-secret-key"}"#)
        .send()
        .await
        .unwrap();
    let emulator = Emulator::start_with(EmulatorOptions::new(Seed::demo_with_durations(
        300, 300, 3_000,
    )))
    .await
    .unwrap();
    let base = emulator.base_url();
    let vars = std::collections::HashMap::from([
        ("CLOUDBOT_SECRET_ID", "cloudbot/demo".to_owned()),
        ("CLOUDBOT_API_BASE", base.clone()),
    ]);
    let config = cloudbot_trigger::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let service = cloudbot_trigger::service::Service::new(config, secrets)
        .unwrap()
        .with_ledger(Some(Ledger::new(
            LedgerTable::new(dynamodb, "runs".into()),
            Duration::from_secs(86_400),
        )));
    let service = Arc::new(service);

    // The run to start again: an execute with an input, recorded by the function's ledger.
    let first = invoke_handler(
        &service,
        json!({"public_id": "demo", "bot_id": "echo_bot", "input": {"message": "again please"}}),
    )
    .await
    .unwrap();
    let first_job = first["job_id"].as_str().unwrap().to_owned();

    let lambda = LambdaStandIn::start(Arc::clone(&service)).await;
    let rerun = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudbot"));
        for var in [
            "CLOUDBOT_SECRET_ID",
            "CLOUDBOT_ACCESS_TOKEN",
            "CLOUDBOT_SECRET_KEY",
        ] {
            cmd.env_remove(var);
        }
        moto.point(&mut cmd)
            .env("CLOUDBOT_API_BASE", &base)
            .env("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint)
            .env("CLOUDBOT_FUNCTION", "cloudbot-trigger-live")
            .env("CLOUDBOT_RUN_LEDGER_TABLE", "runs")
            .stdin(Stdio::null())
            .arg("rerun")
            .arg(format!("demo/{first_job}"))
            .args(extra);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };

    // No terminal and no --yes: nothing is sent.
    let out = rerun(&[]).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("NEW run"),
        "{}",
        text(&out.stdout)
    );
    assert!(lambda.invocations.lock().unwrap().is_empty());
    assert_eq!(emulator.jobs().len(), 1);

    let out = rerun(&["--yes", "--json"]).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer = json_of(&out);
    let key = answer["idempotency_key"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("request:cli-rerun:demo/{first_job}@"))
            && key.ends_with("#attempt-2"),
        "{answer}"
    );
    let jobs = emulator.jobs();
    assert_eq!(jobs.len(), 2, "exactly one new job");
    let second = jobs.iter().find(|j| j.job_id != first_job).unwrap();
    assert!(
        answer["job_reference_endpoint"]
            .as_str()
            .unwrap()
            .ends_with(&second.job_id)
    );
    let sent = lambda.invocations.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].1["request"]["input"],
        json!({"message": "again please"}),
        "the recorded input"
    );
    assert_eq!(
        sent[0].1["attempt"],
        json!({"number": 2, "previous_job": format!("{base}/demo/jobs/{first_job}")})
    );

    // The new run names the old one in the ledger.
    let show = moto
        .point(&mut Command::new(env!("CARGO_BIN_EXE_cloudbot")))
        .env("CLOUDBOT_RUN_LEDGER_TABLE", "runs")
        .args(["runs", "show", &format!("demo/{}", second.job_id), "--json"])
        .output()
        .unwrap();
    let shown = json_of(&show);
    assert_eq!(shown["attempt"], 2, "{shown}");
    assert_eq!(shown["previous_run"], format!("demo/{first_job}"));
}
