//! The list operations the operator CLI uses: contracts, and a BOT's jobs with their filters.

use std::time::{Duration, SystemTime};

use cloudbot_trigger::cloudbot::{CloudBotError, ExecuteRequest, JobQuery, JobStatus};

use crate::support::{
    bot, call, client_for, credentials, emulator, execute_demo, message, refer_credentials,
    requests_to,
};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn list_contracts_gives_the_contracts_the_token_can_see() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let contracts = client
        .list_contracts(&call(&credentials(), T))
        .await
        .unwrap();
    let demo = contracts
        .iter()
        .find(|(_, id)| id.as_str() == "demo")
        .expect("demo contract");
    assert_eq!(demo.0.name.as_deref(), Some("Demo Contract"));
    assert_eq!(demo.0.plan.as_deref(), Some("free"));
}

#[tokio::test]
async fn list_jobs_lists_newest_first_with_reference_endpoints_and_filters() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let mut started = Vec::new();
    for text in ["one", "two", "three"] {
        let s = execute_demo(&client, &creds, "echo_bot", &message(text), T)
            .await
            .unwrap();
        started.push(s.job_reference);
    }
    execute_demo(&client, &creds, "error_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap();
    let echo = bot(&client, "demo", "echo_bot");

    let all = client
        .list_jobs(&call(&creds, T), &echo, &JobQuery::default())
        .await
        .unwrap();
    let endpoints: Vec<_> = all.iter().map(|(_, e)| e.clone()).collect();
    let newest_first: Vec<_> = started.iter().rev().cloned().collect();
    assert_eq!(
        endpoints, newest_first,
        "only echo_bot's jobs, newest first"
    );
    assert!(all.iter().all(|(j, _)| j.bot_id == "echo_bot"));

    let limited = client
        .list_jobs(
            &call(&creds, T),
            &echo,
            &JobQuery {
                limit: Some(1),
                ..JobQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].1, started[2]);

    // A window that starts in the future holds none; one that starts an hour ago holds all.
    let window = |since: SystemTime| JobQuery {
        started_since: Some(since),
        ..JobQuery::default()
    };
    let future = window(SystemTime::now() + Duration::from_secs(3600));
    assert!(
        client
            .list_jobs(&call(&creds, T), &echo, &future)
            .await
            .unwrap()
            .is_empty()
    );
    let past = window(SystemTime::now() - Duration::from_secs(3600));
    assert_eq!(
        client
            .list_jobs(&call(&creds, T), &echo, &past)
            .await
            .unwrap()
            .len(),
        3
    );

    let executing = JobQuery {
        statuses: vec![JobStatus::Error],
        ..JobQuery::default()
    };
    assert!(
        client
            .list_jobs(&call(&creds, T), &echo, &executing)
            .await
            .unwrap()
            .is_empty()
    );
    // Every list call was a GET on the BOT's job list.
    assert_eq!(
        requests_to(&emu, "GET", "/demo/bots/echo_bot/jobs").len(),
        5
    );
}

#[tokio::test]
async fn list_jobs_needs_refer_and_a_known_bot() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let unknown = bot(&client, "demo", "no_such_bot");
    let err = client
        .list_jobs(&call(&credentials(), T), &unknown, &JobQuery::default())
        .await
        .unwrap_err();
    assert_eq!(err, CloudBotError::NotFound);
    // A refer-only token may list.
    let echo = bot(&client, "demo", "echo_bot");
    assert!(
        client
            .list_jobs(&call(&refer_credentials(), T), &echo, &JobQuery::default())
            .await
            .is_ok()
    );
}

/// Ids of RFC 3986's unreserved set beyond `[A-Za-z0-9_-]` (`.`, `~`), which the emulator issues
/// as Cloud BOT might: listed (never dropped), executable and referable through the endpoint the
/// list gives, with the host guard unchanged (docs/client.md, "Endpoint rules").
#[tokio::test]
async fn bots_with_dots_and_tildes_in_their_ids_are_listed_and_run() {
    use cloudbot_emulator::{Emulator, Seed};
    use cloudbot_trigger::cloudbot::PublicId;

    let mut seed = Seed::demo_with_durations(
        crate::support::ECHO_MS,
        crate::support::ERROR_MS,
        crate::support::SLOW_MS,
    );
    let contract = &mut seed.contracts[0];
    let mut odd = contract
        .bots
        .iter()
        .find(|b| b.id == "echo_bot")
        .unwrap()
        .clone();
    odd.id = "echo.v2~beta".into();
    contract.bots.push(odd);
    let emu = Emulator::start(seed).await.unwrap();
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let bots = client
        .list_bots(
            &call(&creds, T),
            &PublicId::parse("demo", "public_id").unwrap(),
        )
        .await
        .unwrap();
    let (_, endpoint) = bots
        .iter()
        .find(|(b, _)| b.id == "echo.v2~beta")
        .expect("the dotted BOT is listed");
    let endpoint = endpoint.as_ref().unwrap();
    assert_eq!(
        endpoint.url(),
        format!("{}/demo/bots/echo.v2~beta/jobs", emu.base_url())
    );
    let started = client
        .execute(&call(&creds, T), endpoint, &ExecuteRequest::default())
        .await
        .unwrap();
    assert_eq!(started.job.bot_id, "echo.v2~beta");
    let job = client
        .refer_job(&call(&creds, T), &started.job_reference)
        .await
        .unwrap();
    assert_eq!(job.job_id, started.job.job_id);
}
