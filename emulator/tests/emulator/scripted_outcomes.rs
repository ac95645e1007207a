//! Scripted outcomes (`PUT /__emulator/outcomes`): the next jobs to end take them in order
//! before their BOT's own outcome, so a test can make a BOT fail, then succeed.

use std::time::Duration;

use cloudbot_emulator::Outcome;
use serde_json::json;

use crate::support::{Api, admin, eventually, start};

async fn ended_status(emu: &cloudbot_emulator::Emulator, api: &Api) -> i64 {
    let id = api.execute("echo_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        eventually(Duration::from_secs(10), || emu
            .jobs()
            .iter()
            .any(|j| j.job_id == id && j.status != 2))
        .await
    );
    api.get(&format!("/demo/jobs/{id}")).await.body["status"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn the_next_jobs_take_the_scripted_outcomes_then_their_bots() {
    let emu = start().await;
    let api = Api::new(&emu);
    admin(&emu)
        .script_outcomes(&[Outcome::Error, Outcome::Error])
        .await
        .unwrap();
    assert_eq!(ended_status(&emu, &api).await, 1);
    assert_eq!(ended_status(&emu, &api).await, 1);
    assert_eq!(ended_status(&emu, &api).await, 0, "echo_bot's own outcome");

    admin(&emu)
        .script_outcomes(&[Outcome::Error])
        .await
        .unwrap();
    admin(&emu).reset().await.unwrap();
    assert_eq!(
        ended_status(&emu, &api).await,
        0,
        "a reset forgets the script"
    );
}
