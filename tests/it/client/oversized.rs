//! Job answers over the client's 1 MiB response cap (emulator `PUT /__emulator/output-padding`):
//! the status is still read, without the output, and a synchronous execute is never turned into
//! an unknown outcome by its output's size.

use std::time::Duration;

use cloudbot_trigger::cloudbot::{ExecuteRequest, JobStatus};

use crate::support::{call, client_for, credentials, emulator, execute_demo, message};

const T: Duration = Duration::from_secs(10);
/// Past the 1 MiB cap (docs/client.md).
const PADDING: u64 = 2 * 1024 * 1024;

#[tokio::test]
async fn a_finished_job_with_an_oversized_output_is_read_without_it() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    emu.set_output_padding(PADDING);
    let started = execute_demo(&client, &creds, "echo_bot", &message("hello"), T)
        .await
        .unwrap();
    assert!(!started.job.output_omitted);
    let mut done = None;
    for _ in 0..100 {
        let j = client
            .refer_job(&call(&creds, T), &started.job_reference)
            .await
            .unwrap();
        if j.status.is_final() {
            done = Some(j);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = done.expect("job did not finish");
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.job_id, started.job.job_id);
    assert_eq!(done.bot_id, "echo_bot");
    assert!(done.output.is_none());
    assert!(done.output_omitted);
    // The emulator did hold the big output: it was dropped on our side, not absent.
    let recorded = emu.job(&done.job_id).unwrap().output.unwrap();
    assert!(recorded["padding"].as_str().unwrap().len() as u64 == PADDING);
    // The same job once the padding is off for new jobs is unchanged: the cap is per answer.
    emu.set_output_padding(0);
    let small = execute_demo(
        &client,
        &creds,
        "echo_bot",
        &ExecuteRequest {
            timeout_ms: Some(5_000),
            ..ExecuteRequest::default()
        },
        T,
    )
    .await
    .unwrap();
    assert!(small.job.output.is_some() && !small.job.output_omitted);
}

#[tokio::test]
async fn a_synchronous_execute_with_an_oversized_output_is_started_not_unknown() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_output_padding(PADDING);
    let started = execute_demo(
        &client,
        &credentials(),
        "echo_bot",
        &ExecuteRequest {
            timeout_ms: Some(5_000),
            ..ExecuteRequest::default()
        },
        T,
    )
    .await
    .unwrap();
    assert_eq!(started.job.status, JobStatus::Succeeded);
    assert!(started.job.output.is_none());
    assert!(started.job.output_omitted);
    assert_eq!(started.job_reference.job_id().as_str(), started.job.job_id);
    assert_eq!(emu.jobs().len(), 1, "one job, sent once");
}
