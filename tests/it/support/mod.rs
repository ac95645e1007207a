//! Helpers shared by the integration tests: the in-process emulator with short job durations,
//! the demo seed's credentials, a client pointed at a local base, and call contexts.
// Shared by the client and lambda tests: not every test module uses every helper.
#![allow(dead_code)]
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests;
// they may unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// A job-finished events bus in memory.
pub mod bus;
/// Capturing tracing output.
pub mod logs;
/// A real Secrets Manager (moto).
pub mod moto;

use std::time::Duration;

use cloudbot_emulator::{
    DEMO_ACCESS_TOKEN, DEMO_REFER_SECRET, DEMO_REFER_TOKEN, DEMO_SECRET_KEY, Emulator,
    RequestRecord, Seed,
};
use cloudbot_trigger::cloudbot::{
    ApiBase, BotEndpoint, BotId, Call, ClientSettings, CloudBotClient, CloudBotError, Credentials,
    ExecuteRequest, JobEndpoint, JobId, Language, PublicId, Started,
};
use tokio::time::Instant;

/// Demo seed token with Refer, Execute and Suspend.
pub const ACCESS_TOKEN: &str = DEMO_ACCESS_TOKEN;
/// Secret of [`ACCESS_TOKEN`].
pub const SECRET_KEY: &str = DEMO_SECRET_KEY;
/// Demo seed token with Refer only.
pub const REFER_TOKEN: &str = DEMO_REFER_TOKEN;
/// Secret of [`REFER_TOKEN`].
pub const REFER_SECRET: &str = DEMO_REFER_SECRET;

// Job durations of the test emulator: echo_bot and error_bot end quickly, slow_bot runs long
// enough to be suspended.
/// echo_bot's run time in the test emulator (ms).
pub const ECHO_MS: u64 = 300;
/// error_bot's run time in the test emulator (ms).
pub const ERROR_MS: u64 = 300;
/// slow_bot's run time in the test emulator (ms).
pub const SLOW_MS: u64 = 3_000;

/// The full-permission demo credentials.
pub fn credentials() -> Credentials {
    Credentials::new(ACCESS_TOKEN.to_owned(), SECRET_KEY.to_owned())
}

/// The refer-only demo credentials.
pub fn refer_credentials() -> Credentials {
    Credentials::new(REFER_TOKEN.to_owned(), REFER_SECRET.to_owned())
}

/// An in-process emulator with the demo seed and short job durations (stopped on drop).
pub async fn emulator() -> Emulator {
    Emulator::start(Seed::demo_with_durations(ECHO_MS, ERROR_MS, SLOW_MS))
        .await
        .expect("start emulator")
}

/// A client for a local base (`http://127.0.0.1:PORT`) with test-friendly timeouts.
pub fn client_for(base_url: &str) -> CloudBotClient {
    client_with_timeout(base_url, Duration::from_secs(5))
}

/// A client for a local base with the given per-attempt request timeout.
pub fn client_with_timeout(base_url: &str, request_timeout: Duration) -> CloudBotClient {
    CloudBotClient::new(ClientSettings {
        base: ApiBase::parse(base_url).expect("local base"),
        connect_timeout: Duration::from_secs(1),
        request_timeout,
        ..ClientSettings::default()
    })
    .expect("client")
}

/// A call context in English with `within` left before the deadline.
pub fn call(credentials: &Credentials, within: Duration) -> Call<'_> {
    Call {
        credentials,
        language: Language::En,
        deadline: Instant::now() + within,
        retry_budget: Duration::MAX,
    }
}

/// The BOT execution endpoint of `bot_id` in contract `public_id` on the client's base.
pub fn bot(client: &CloudBotClient, public_id: &str, bot_id: &str) -> BotEndpoint {
    BotEndpoint::new(
        client.base(),
        PublicId::parse(public_id, "public_id").unwrap(),
        BotId::parse(bot_id, "bot_id").unwrap(),
    )
}

/// Execute `bot_id` of the demo contract with `credentials`, `within` left before the deadline.
pub async fn execute_demo(
    client: &CloudBotClient,
    credentials: &Credentials,
    bot_id: &str,
    request: &ExecuteRequest,
    within: Duration,
) -> Result<Started, CloudBotError> {
    client
        .execute(
            &call(credentials, within),
            &bot(client, "demo", bot_id),
            request,
        )
        .await
}

/// Execute echo_bot of the demo contract, no input, full-permission credentials, `within` left
/// before the deadline.
pub async fn execute_echo(
    client: &CloudBotClient,
    within: Duration,
) -> Result<Started, CloudBotError> {
    execute_demo(
        client,
        &credentials(),
        "echo_bot",
        &ExecuteRequest::default(),
        within,
    )
    .await
}

/// An execute request with echo_bot's input `{"message": text}`.
pub fn message(text: &str) -> ExecuteRequest {
    let mut input = serde_json::Map::new();
    input.insert("message".into(), text.into());
    ExecuteRequest {
        input: Some(input),
        ..ExecuteRequest::default()
    }
}

/// An execute request the emulator refuses with 422: `callback_tries` 0 is below the minimum.
pub fn unprocessable() -> ExecuteRequest {
    ExecuteRequest {
        callback_endpoint: Some("https://callback.example/hook".into()),
        callback_tries: Some(0),
        ..ExecuteRequest::default()
    }
}

/// The demo contract's public id.
pub fn demo() -> PublicId {
    PublicId::parse("demo", "public_id").unwrap()
}

/// The job reference endpoint of `job_id` in contract `public_id` on the client's base.
pub fn job(client: &CloudBotClient, public_id: &str, job_id: &str) -> JobEndpoint {
    JobEndpoint::new(
        client.base(),
        PublicId::parse(public_id, "public_id").unwrap(),
        JobId::parse(job_id, "job_id").unwrap(),
    )
}

/// API requests the emulator saw with this method whose path starts with `prefix`.
pub fn requests_to(emulator: &Emulator, method: &str, prefix: &str) -> Vec<RequestRecord> {
    emulator
        .requests()
        .into_iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(prefix))
        .collect()
}

/// Poll `check` every 50 ms until it returns `Some` or `limit` passes.
/// Moves tokio's clock (what the function's TTLs are measured on) forward by `by` without
/// waiting, then lets it run on in real time. For a current-thread test runtime only.
pub async fn advance_clock(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

pub async fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
