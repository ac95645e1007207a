//! Each emulator fault mode: reads (GET, DELETE) are retried and succeed; the execute POST is
//! never repeated once it may have reached the server (exactly one POST, at most one job), and
//! is retried only when the server provably started nothing (503/429 with Retry-After, or no
//! connection at all).
//!
//! The fault modes are two tables (reads, execute), one row per behaviour; the rows of a table
//! run concurrently, each against its own emulator.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudbot_emulator::{Emulator, EmulatorOptions, FaultKind, FaultRule, Seed};
use cloudbot_trigger::cloudbot::{
    Call, Cause, CloudBotError, Credentials, ExecuteRequest, Started,
};
use cloudbot_trigger::error::Classified;
use lambda_runtime::tracing::subscriber::layer::{Context, SubscriberExt};
use lambda_runtime::tracing::subscriber::{Layer, Registry};
use tokio::task::JoinSet;

use crate::support::logs::set_scoped;
use crate::support::{
    ECHO_MS, ERROR_MS, SLOW_MS, bot, call, client_for, client_with_timeout, credentials, demo,
    emulator, eventually, execute_demo, execute_echo, requests_to,
};

const T: Duration = Duration::from_secs(10);

/// Per-attempt request timeout of the clients in the tables unless a row says otherwise.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Request timeout and deadline of a row's setup calls (not under test).
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How a row's call must end.
enum Expect {
    Succeeds,
    Fails {
        /// The error, or the errors that are equally right (timing decides between them).
        one_of: Vec<CloudBotError>,
        /// Its stable name.
        name: &'static str,
        /// Whether a caller may repeat the call.
        retryable: bool,
        /// The upstream HTTP status it reports.
        upstream_status: Option<u16>,
    },
}

fn fails(error: CloudBotError, retryable: bool, upstream_status: Option<u16>) -> Expect {
    Expect::Fails {
        name: error.kind().name,
        one_of: vec![error],
        retryable,
        upstream_status,
    }
}

/// One row: faults armed, one call, what it must return and what the emulator must have seen.
struct Case {
    name: &'static str,
    faults: Vec<FaultRule>,
    within: Duration,
    /// The call's retry budget (all waits together).
    retry_budget: Duration,
    request_timeout: Duration,
    expect: Expect,
    took_at_least: Duration,
    took_under: Duration,
    /// Requests of the call's kind in the emulator's log (GET job / POST execute).
    requests: Option<usize>,
    /// API requests that arrived in all, counted after a pause (for calls the client gave up on).
    arrived: Option<u64>,
    /// Jobs that exist once things settle.
    jobs: Option<usize>,
}

impl Case {
    fn new(
        name: &'static str,
        faults: Vec<FaultRule>,
        expect: Expect,
        requests: Option<usize>,
    ) -> Self {
        Case {
            name,
            faults,
            within: T,
            retry_budget: Duration::MAX,
            request_timeout: REQUEST_TIMEOUT,
            expect,
            took_at_least: Duration::ZERO,
            took_under: T,
            requests,
            arrived: None,
            jobs: None,
        }
    }
    fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }
    fn retry_budget(mut self, d: Duration) -> Self {
        self.retry_budget = d;
        self
    }
    fn call<'a>(&self, credentials: &'a Credentials) -> Call<'a> {
        Call {
            retry_budget: self.retry_budget,
            ..call(credentials, self.within)
        }
    }
    fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }
    fn took_at_least(mut self, d: Duration) -> Self {
        self.took_at_least = d;
        self
    }
    fn took_under(mut self, d: Duration) -> Self {
        self.took_under = d;
        self
    }
    fn arrived(mut self, n: u64) -> Self {
        self.arrived = Some(n);
        self
    }
    fn jobs(mut self, n: usize) -> Self {
        self.jobs = Some(n);
        self
    }

    /// Check everything the row promises about the call that returned `result` after `took`.
    async fn check<T: std::fmt::Debug>(
        &self,
        result: &Result<T, CloudBotError>,
        took: Duration,
        requests: usize,
        emu: &Emulator,
    ) {
        let name = self.name;
        match (&self.expect, result) {
            (Expect::Succeeds, Ok(_)) => {}
            (
                Expect::Fails {
                    one_of,
                    name: error_name,
                    retryable,
                    upstream_status,
                },
                Err(err),
            ) => {
                assert!(one_of.contains(err), "{name}: {err:?}");
                assert_eq!(err.kind().name, *error_name, "{name}");
                assert_eq!(err.kind().retryable, *retryable, "{name}: {err:?}");
                assert_eq!(err.upstream_status(), *upstream_status, "{name}: {err:?}");
            }
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
        assert!(took >= self.took_at_least, "{name}: took {took:?}");
        assert!(took < self.took_under, "{name}: took {took:?}");
        if let Some(n) = self.requests {
            assert_eq!(requests, n, "{name}: requests");
        }
        if let Some(n) = self.arrived {
            requests_settle(emu, n).await;
        }
        if let Some(n) = self.jobs {
            jobs_settle(emu, n).await;
        }
    }
}

/// Run every row concurrently; fail (after all have run) naming the rows that failed.
async fn run_table<F, Fut>(cases: Vec<Case>, run: F)
where
    F: Fn(Case) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut rows = JoinSet::new();
    let mut names = Vec::new();
    for case in cases {
        let name = case.name;
        let id = rows.spawn(run(case)).id();
        names.push((id, name));
    }
    let mut failed = Vec::new();
    while let Some(done) = rows.join_next_with_id().await {
        if let Err(e) = done {
            let row = names.iter().find(|(id, _)| *id == e.id()).map(|(_, n)| *n);
            failed.push(row.unwrap_or("?"));
        }
    }
    assert!(
        failed.is_empty(),
        "failed rows (see their panics): {failed:?}"
    );
}

fn get_rule(fault: FaultKind) -> FaultRule {
    FaultRule::new(fault).method("GET").times(1)
}

fn post_rule(fault: FaultKind) -> FaultRule {
    FaultRule::new(fault)
        .method("POST")
        .path_prefix("/demo/bots/")
        .times(1)
}

/// Refer a job started before the row's faults are armed.
async fn run_read(case: Case) {
    let emu = emulator().await;
    let client = client_with_timeout(&emu.base_url(), case.request_timeout);
    let creds = credentials();
    // The job is started by a client of its own with a generous timeout: the setup is not what
    // the row tests, and on a loaded machine it must not fail the row.
    let setup = client_with_timeout(&emu.base_url(), SETUP_TIMEOUT);
    let started = execute_demo(
        &setup,
        &creds,
        "echo_bot",
        &ExecuteRequest::default(),
        SETUP_TIMEOUT,
    )
    .await
    .unwrap();
    emu.set_faults(case.faults.clone()).unwrap();
    let t0 = Instant::now();
    let result = client
        .refer_job(&case.call(&creds), &started.job_reference)
        .await;
    let took = t0.elapsed();
    let gets = requests_to(&emu, "GET", "/demo/jobs/").len();
    case.check(&result, took, gets, &emu).await;
}

#[tokio::test]
async fn reads_are_retried_on_transient_faults_and_give_up_on_the_rest() {
    use FaultKind::*;
    let status = |s| get_rule(Status).status(s);
    let cases = vec![
        Case::new(
            "get_is_retried_after_503_and_succeeds",
            vec![status(503)],
            Expect::Succeeds,
            Some(2),
        ),
        Case::new(
            "get_is_retried_after_500_502_504",
            vec![status(500), status(502), status(504)],
            Expect::Succeeds,
            Some(4),
        ),
        Case::new(
            "get_gives_up_after_the_attempt_limit",
            vec![FaultRule::new(Status).status(500).method("GET")],
            fails(
                CloudBotError::Unavailable {
                    cause: Cause::Status(500),
                    retry_after: None,
                },
                true,
                Some(500),
            ),
            Some(4),
        ),
        // Ended by the retry budget (an API Gateway caller's), not by the deadline: at once,
        // after one request, and the error keeps the server's Retry-After for the caller.
        Case::new(
            "get_503_with_retry_after_beyond_the_retry_budget_keeps_it",
            vec![
                FaultRule::new(Status)
                    .status(503)
                    .retry_after(7)
                    .method("GET"),
            ],
            fails(
                CloudBotError::Unavailable {
                    cause: Cause::Status(503),
                    retry_after: Some(Duration::from_secs(7)),
                },
                true,
                Some(503),
            ),
            Some(1),
        )
        .retry_budget(Duration::from_secs(2))
        .took_under(Duration::from_secs(2)),
        Case::new(
            "get_honours_retry_after_on_429",
            vec![status(429).retry_after(1)],
            Expect::Succeeds,
            Some(2),
        )
        .took_at_least(Duration::from_millis(900)),
        Case::new(
            "get_is_rate_limited_when_retry_after_exceeds_the_deadline",
            vec![
                FaultRule::new(Status)
                    .status(429)
                    .retry_after(30)
                    .method("GET"),
            ],
            fails(
                CloudBotError::RateLimited {
                    retry_after: Some(Duration::from_secs(30)),
                },
                true,
                Some(429),
            ),
            Some(1),
        )
        .within(Duration::from_secs(3))
        .took_under(Duration::from_secs(2)),
        Case::new(
            "get_is_retried_after_a_reset_before_the_answer",
            vec![get_rule(ResetBefore)],
            Expect::Succeeds,
            Some(2),
        ),
        Case::new(
            "get_is_retried_after_a_reset_after_processing",
            vec![get_rule(ResetAfter)],
            Expect::Succeeds,
            Some(2),
        ),
        Case::new(
            "get_is_retried_after_a_truncated_body",
            vec![get_rule(TruncatedBody)],
            Expect::Succeeds,
            Some(2),
        ),
        Case::new(
            "get_with_latency_within_the_timeout_succeeds_once",
            vec![get_rule(Latency).latency_ms(300)],
            Expect::Succeeds,
            Some(1),
        )
        .took_at_least(Duration::from_millis(250)),
        Case::new(
            "malformed_json_on_a_read_is_an_invalid_response_not_retried",
            vec![get_rule(MalformedJson)],
            fails(
                CloudBotError::InvalidResponse {
                    status: 200,
                    detail: "body is not a job object",
                },
                false,
                Some(200),
            ),
            Some(1),
        ),
        Case::new(
            "oversized_body_on_a_read_is_capped_and_invalid",
            vec![get_rule(OversizedBody)],
            fails(
                CloudBotError::InvalidResponse {
                    status: 200,
                    detail: "body exceeds the size limit",
                },
                false,
                Some(200),
            ),
            Some(1),
        ),
    ];
    run_table(cases, run_read).await;
}

#[tokio::test]
async fn list_bots_is_retried_after_502() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    emu.set_faults([get_rule(FaultKind::Status).status(502)])
        .unwrap();
    let bots = client
        .list_bots(&call(&credentials(), T), &demo())
        .await
        .unwrap();
    assert!(!bots.is_empty());
    assert_eq!(requests_to(&emu, "GET", "/demo/bots").len(), 2);
}

#[tokio::test]
async fn suspend_is_retried_like_a_read() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    let creds = credentials();
    let started = execute_demo(&client, &creds, "slow_bot", &ExecuteRequest::default(), T)
        .await
        .unwrap();
    emu.set_faults([FaultRule::new(FaultKind::Status)
        .status(503)
        .method("DELETE")
        .times(1)])
        .unwrap();
    let job = client
        .suspend_job(&call(&creds, T), &started.job_reference)
        .await
        .unwrap();
    assert_eq!(job.job_id, started.job.job_id);
    assert_eq!(requests_to(&emu, "DELETE", "/demo/jobs/").len(), 2);
}

/// Checks that the emulator received exactly `n` API requests in all (counted on arrival: a
/// request the client gave up on is not in the request log, whose entries are written with
/// the answer).
pub(super) async fn requests_settle(emu: &Emulator, n: u64) {
    // Waits for the arrivals (on a loaded machine the last one may come late), then checks for a
    // short while that no further one follows: a re-send would come right after the first.
    let arrived = eventually(Duration::from_secs(5), || {
        (emu.stats().requests >= n).then_some(())
    })
    .await;
    assert!(
        arrived.is_some(),
        "expected {n} requests, have {}",
        emu.stats().requests
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(emu.stats().requests, n);
}

/// Waits until the emulator has created `n` jobs (a fault may answer before the job is stored).
async fn jobs_settle(emu: &Emulator, n: usize) {
    let settled = eventually(Duration::from_secs(5), || {
        (emu.jobs().len() == n).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "expected {n} jobs, have {}",
        emu.jobs().len()
    );
    // And no more appear.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emu.jobs().len(), n);
}

/// Execute echo_bot with the row's faults armed; a success must be the one job that exists.
async fn run_execute(case: Case) {
    let emu = emulator().await;
    let client = client_with_timeout(&emu.base_url(), case.request_timeout);
    emu.set_faults(case.faults.clone()).unwrap();
    let creds = credentials();
    let echo_bot = bot(&client, "demo", "echo_bot");
    let t0 = Instant::now();
    let result = client
        .execute(&case.call(&creds), &echo_bot, &ExecuteRequest::default())
        .await;
    let took = t0.elapsed();
    let posts = requests_to(&emu, "POST", "/demo/bots/").len();
    case.check(&result, took, posts, &emu).await;
    if let Ok(started) = result {
        assert_eq!(emu.jobs()[0].job_id, started.job.job_id, "{}", case.name);
    }
}

fn outcome_unknown(cause: Cause, upstream_status: Option<u16>) -> Expect {
    fails(
        CloudBotError::OutcomeUnknown { cause },
        false,
        upstream_status,
    )
}

#[tokio::test]
async fn execute_is_never_repeated_once_it_may_have_reached_the_server() {
    use FaultKind::*;
    let cases = vec![
        Case::new(
            "execute_is_not_retried_after_a_reset_after_the_job_was_created",
            vec![post_rule(ResetAfter)],
            outcome_unknown(Cause::Transport, None),
            Some(1),
        )
        .jobs(1),
        // From the client's side a reset before any answer is indistinguishable from one after
        // the job was created: only connect errors prove nothing was sent.
        Case::new(
            "execute_is_not_retried_after_a_reset_before_the_answer",
            vec![post_rule(ResetBefore)],
            outcome_unknown(Cause::Transport, None),
            Some(1),
        )
        .jobs(0),
        Case::new(
            "execute_is_not_retried_after_500",
            vec![post_rule(Status).status(500)],
            outcome_unknown(Cause::Status(500), Some(500)),
            Some(1),
        ),
        Case::new(
            "execute_is_not_retried_after_503_without_retry_after",
            vec![post_rule(Status).status(503)],
            outcome_unknown(Cause::Status(503), Some(503)),
            Some(1),
        ),
        // The job exists although the caller never heard about it.
        Case::new(
            "execute_is_not_retried_after_a_timeout",
            vec![post_rule(Latency).latency_ms(20_000)],
            outcome_unknown(Cause::Timeout, None),
            None,
        )
        // Long enough for the POST to be written even when every row runs at once on one test
        // thread of a loaded machine (a shorter one has given up before sending); the answer
        // comes long after it.
        .request_timeout(Duration::from_secs(4))
        .took_under(Duration::from_secs(10))
        .arrived(1)
        .jobs(1),
        // Depending on when the close reaches the client, the cut shows up while reading the
        // head (Transport) or the body (Body): a job may exist either way.
        Case::new(
            "execute_is_not_retried_after_a_truncated_body",
            vec![post_rule(TruncatedBody)],
            Expect::Fails {
                one_of: vec![
                    CloudBotError::OutcomeUnknown { cause: Cause::Body },
                    CloudBotError::OutcomeUnknown {
                        cause: Cause::Transport,
                    },
                ],
                name: "CloudBot.OutcomeUnknown",
                retryable: false,
                upstream_status: None,
            },
            Some(1),
        )
        .jobs(1),
        Case::new(
            "execute_with_malformed_json_answer_is_outcome_unknown",
            vec![post_rule(MalformedJson)],
            outcome_unknown(Cause::Body, None),
            Some(1),
        )
        .jobs(1),
        Case::new(
            "execute_with_oversized_answer_is_capped_and_outcome_unknown",
            vec![post_rule(OversizedBody)],
            outcome_unknown(Cause::Body, None),
            Some(1),
        )
        .jobs(1),
        Case::new(
            "execute_is_retried_after_503_with_retry_after",
            vec![post_rule(Status).status(503).retry_after(1)],
            Expect::Succeeds,
            Some(2),
        )
        .took_at_least(Duration::from_millis(900))
        .jobs(1),
        Case::new(
            "execute_is_retried_after_429_with_retry_after",
            vec![post_rule(Status).status(429).retry_after(1)],
            Expect::Succeeds,
            Some(2),
        )
        .jobs(1),
        // The server refused before starting anything: safe for the caller to retry later.
        Case::new(
            "execute_503_with_retry_after_beyond_the_deadline_is_unavailable",
            vec![post_rule(Status).status(503).retry_after(30)],
            fails(
                CloudBotError::Unavailable {
                    cause: Cause::Status(503),
                    retry_after: Some(Duration::from_secs(30)),
                },
                true,
                Some(503),
            ),
            Some(1),
        )
        .within(Duration::from_secs(3))
        .jobs(0),
        // The same refusal ended by the retry budget, with the whole deadline still ahead: one
        // POST, no job, and the server's Retry-After kept for the caller.
        Case::new(
            "execute_503_with_retry_after_beyond_the_retry_budget_keeps_it",
            vec![post_rule(Status).status(503).retry_after(7)],
            fails(
                CloudBotError::Unavailable {
                    cause: Cause::Status(503),
                    retry_after: Some(Duration::from_secs(7)),
                },
                true,
                Some(503),
            ),
            Some(1),
        )
        .retry_budget(Duration::from_secs(2))
        .took_under(Duration::from_secs(2))
        .jobs(0),
        // A 500 with Retry-After may still have started a job: not retried, and no Retry-After
        // that would invite a retry.
        Case::new(
            "execute_500_with_retry_after_is_outcome_unknown_without_it",
            vec![post_rule(Status).status(500).retry_after(1)],
            outcome_unknown(Cause::Status(500), Some(500)),
            Some(1),
        ),
    ];
    run_table(cases, run_execute).await;
}

/// A free loopback port: bound, then released (nothing listens on it afterwards).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn execute_to_a_closed_port_is_unavailable_without_a_job() {
    let client = client_for(&format!("http://127.0.0.1:{}", free_port()));
    let t0 = Instant::now();
    let err = execute_echo(&client, T).await.unwrap_err();
    assert_eq!(
        err,
        CloudBotError::Unavailable {
            cause: Cause::Connect,
            retry_after: None,
        }
    );
    assert!(err.kind().retryable);
    assert!(t0.elapsed() < Duration::from_secs(5));
}

/// Starts the emulator on `port` from inside the client's first failure event, i.e. after the
/// first attempt was refused and before the retry: deterministic, whatever the backoff draws.
struct StartOnFirstFailure {
    port: u16,
    started: Arc<Mutex<Option<Emulator>>>,
}

impl<S: tracing::Subscriber> Layer<S> for StartOnFirstFailure {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        // The client's failure events carry an `error` field; the success event does not.
        if !meta.target().starts_with("cloudbot_trigger::cloudbot")
            || meta.fields().field("error").is_none()
        {
            return;
        }
        let mut started = self.started.lock().unwrap();
        if started.is_none() {
            let options =
                EmulatorOptions::new(Seed::demo_with_durations(ECHO_MS, ERROR_MS, SLOW_MS))
                    .port(self.port);
            // Binds before returning: the retry's connect finds the listener.
            *started = Some(Emulator::start_blocking(options).unwrap());
        }
    }
}

// current_thread runtime: the client's events are emitted on this thread, where the layer is.
#[tokio::test]
async fn execute_is_retried_after_a_connect_error_and_starts_exactly_one_job() {
    let port = free_port();
    let started = Arc::new(Mutex::new(None));
    let _hook = set_scoped(Registry::default().with(StartOnFirstFailure {
        port,
        started: started.clone(),
    }));
    let client = client_for(&format!("http://127.0.0.1:{port}"));
    let job: Started = execute_echo(&client, T).await.unwrap();
    let emu = started
        .lock()
        .unwrap()
        .take()
        .expect("the first attempt was refused");
    // Nothing reached the server before it listened: one POST, one connection, one job.
    let stats = emu.stats();
    assert_eq!(stats.requests, 1, "{stats:?}");
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(requests_to(&emu, "POST", "/demo/bots/").len(), 1);
    jobs_settle(&emu, 1).await;
    assert_eq!(emu.jobs()[0].job_id, job.job.job_id);
}
