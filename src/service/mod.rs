//! The business step: one invocation from event to answer, one file per flow.
//!
//! [`Service`] is built once per sandbox (configuration, Cloud BOT client, credentials provider,
//! the optional idempotency and callback sides) and borrowed by every invocation.
//! [`Service::handle`] decodes the event ([`crate::trigger`]), [`Service::run`] sends the
//! operation to its flow with one `match`, and the answer is encoded per trigger.
//!
//! - `init`: the work of init (secret prefetch, Cloud BOT connection warm-up).
//! - `execute`: starting a BOT, inside an idempotency claim, with a callback for a waiting task.
//! - `reads`: `refer_job` and `list_bots` (reads never touch the store).
//! - `callback`: Cloud BOT's callback at a job's end, received and told to the waiting task.
//! - `bot_done`: Cloud BOT's "BOT done" webhook: a run started outside AWS re-read and learned.
//! - `learned`: the one place a learned job state goes to the run ledger.
//! - `announce`: a job's end (or an execute Cloud BOT refused) put on the events bus.
//! - `overrun`: a look at a running job: how long it has run, and its suspension past its
//!   maximum run time.
//! - `resolve`: the operator's way out of an idempotency record whose outcome is unknown.
//! - `tick`: a managed schedule's tick decided (before an execute, or alone for a state
//!   machine's DecideTick state).
//! - `breaker`: a managed schedule's job end counted by its failure breaker.
//! - `usage`: the budget asked before an execute sends; a recorded end's BOT-seconds counted.
//! - `answer`: the answer shapes of docs/contract.md.
//! - `queue`: the run queue's SQS batches, each message's fate (docs/queue.md).
//! - `admit`: admission control, a capped contract's slot taken before a queued execute and
//!   freed by its end; `sweep`: the schedule's sweep of slots whose run ended without word.
//! - `orphans`: the jobs of workflows that failed, timed out or were stopped, suspended: on
//!   Step Functions' status-change event and by the periodic sweep (docs/orphans.md).
//!
//! Every Cloud BOT call goes through `with_refresh!`: on a 401 the secret is re-read
//! once and the call made once more. The secret may have rotated since it was cached, and a 401
//! proves no job was started, so repeating even `execute` is safe.

mod admit;
mod announce;
mod answer;
mod bot_done;
mod breaker;
mod callback;
mod dead_letter;
mod execute;
#[cfg(test)]
mod fakes;
mod init;
mod learned;
mod orphans;
mod overrun;
mod overrun_paths;
mod queue;
mod reads;
mod reconcile;
mod rerun;
mod resolve;
mod sweep;
mod tick;
mod usage;

use std::time::{Duration, SystemTime};

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::value::RawValue;
use tokio::time::Instant;
use tracing::Instrument;

use crate::callback::Callbacks;
use crate::cloudbot::{Call, CloudBotClient, CloudBotError, Credentials, Language};
use crate::config::{Config, SecretIds};
use crate::credentials::{ContractCredentials, CredentialsProvider, Fetched, Refreshed};
use crate::error::Failure;
use crate::idempotency::Idempotency;
use crate::job_events::JobEvents;
use crate::ledger::Ledger;
use crate::metrics::{Invocation, Metrics};
use crate::payload::Payload;
use crate::request::{Operation, Request};
use crate::schedule::state::ScheduleStates;
use crate::telemetry;
use crate::trigger::{self, Answer, Trigger};

/// Time kept back from the Lambda deadline to encode and post the answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Shared state of the function: built once at cold start.
#[derive(Debug)]
pub struct Service {
    config: Config,
    client: CloudBotClient,
    /// The credentials of each contract (one secret for all, or one each).
    credentials: ContractCredentials,
    metrics: Metrics,
    exactly_once: Option<ExactlyOnce>,
    ledger: Option<Ledger>,
    events: Option<JobEvents>,
    /// The usage counter and budget (docs/usage.md); `None` without a budget.
    usage: Option<crate::usage::Usage>,
    /// Admission control of the run queue (docs/queue.md); `None`: uncapped.
    admission: Option<crate::admission::Admission>,
    /// The run queue's SQS client: puts a message waiting for a slot back with its delay, and
    /// moves one that will never succeed to the dead-letter queue (docs/queue.md).
    visibility: Option<crate::admission::Visibility>,
    /// Step Functions executions' statuses, for the sweep (docs/orphans.md).
    executions: Option<Box<dyn crate::orphans::ExecutionReader>>,
}

/// The idempotency store, and the callback side that needs it (a retried task finds its
/// callback record by the idempotency key).
#[derive(Debug)]
struct ExactlyOnce {
    idempotency: Idempotency,
    callbacks: Option<Callbacks>,
    /// Managed schedules' state records (docs/schedules.md, "The schedule state record").
    schedules: Option<ScheduleStates>,
}

/// What every Cloud BOT call of one invocation shares.
#[derive(Debug, Clone, Copy)]
struct Scope {
    /// Language of Cloud BOT messages.
    language: Language,
    /// The invocation's working deadline (the Lambda deadline minus [`DEADLINE_MARGIN`]).
    deadline: Instant,
    /// How long one call may wait between attempts (per trigger).
    retry_budget: Duration,
    /// What delivered the invocation (the run ledger's origin of a run).
    trigger: Trigger,
}

impl Scope {
    /// The per-call context of a call made with `credentials`.
    fn call<'a>(&self, credentials: &'a Credentials) -> Call<'a> {
        Call {
            credentials,
            language: self.language,
            deadline: self.deadline,
            retry_budget: self.retry_budget,
        }
    }
}

/// Awaits the Cloud BOT call `$call` (an expression of `$c`, the per-call context) made with
/// `$fetched` credentials; after a 401, re-reads the secret once ([`Service::refreshed`]) and
/// makes the call once more with newer credentials. Evaluates to `Result<_, Failure>`. A macro,
/// not a function taking an async closure: the invocation future must stay `Send`, which
/// async closures over borrowed arguments do not yet let the compiler prove.
macro_rules! with_refresh {
    ($service:expr, $fetched:expr, $scope:expr, |$c:ident| $call:expr) => {{
        let $c = $scope.call(&$fetched.credentials);
        match $call.await {
            Err($crate::cloudbot::CloudBotError::Unauthorized) => {
                match $service.refreshed($fetched, $scope.deadline).await {
                    Ok(Some(fresh)) => {
                        let $c = $scope.call(&fresh.credentials);
                        $call.await.map_err($crate::error::Failure::from)
                    }
                    Ok(None) => Err($crate::cloudbot::CloudBotError::Unauthorized.into()),
                    Err(failure) => Err(failure),
                }
            }
            other => other.map_err($crate::error::Failure::from),
        }
    }};
}
use with_refresh;

impl Service {
    /// Builds the service from validated configuration and a Secrets Manager client.
    pub fn new(
        config: Config,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, CloudBotError> {
        if let Some(ca) = &config.test_only_extra_ca {
            tracing::warn!(
                variable = crate::config::TEST_ONLY_EXTRA_CA_VAR,
                path = %ca.path,
                "TEST ONLY: trusting an extra CA besides the compiled-in roots for Cloud BOT and \
                 Secrets Manager; never set this variable in a deployment"
            );
        }
        let credentials = contract_credentials(&config.secret, &secrets);
        Self::with_contract_credentials(config, credentials)
    }

    /// Builds the service from validated configuration and a credentials provider over any
    /// secret source.
    pub fn with_credentials(
        config: Config,
        credentials: CredentialsProvider,
    ) -> Result<Self, CloudBotError> {
        Self::with_contract_credentials(config, ContractCredentials::shared(credentials))
    }

    /// Builds the service from validated configuration and the credentials of each contract.
    pub fn with_contract_credentials(
        config: Config,
        credentials: ContractCredentials,
    ) -> Result<Self, CloudBotError> {
        let client = CloudBotClient::new(config.client_settings())?;
        let metrics = Metrics::new(config.metrics_namespace.clone());
        Ok(Self {
            config,
            client,
            credentials,
            metrics,
            exactly_once: None,
            ledger: None,
            events: None,
            usage: None,
            admission: None,
            visibility: None,
            executions: None,
        })
    }

    /// The service with an idempotency store (`None`: duplicates are not detected).
    pub fn with_idempotency(mut self, idempotency: Option<Idempotency>) -> Self {
        self.exactly_once = idempotency.map(|idempotency| ExactlyOnce {
            idempotency,
            callbacks: None,
            schedules: None,
        });
        self
    }

    /// The service with managed schedules' state records (`None`: not written). They live in
    /// the idempotency table, so call [`Self::with_idempotency`] first.
    pub fn with_schedule_states(mut self, schedules: Option<ScheduleStates>) -> Self {
        if let Some(exactly_once) = &mut self.exactly_once {
            exactly_once.schedules = schedules;
        }
        self
    }

    /// The schedule state records, when the table is configured.
    fn schedule_states(&self) -> Option<&ScheduleStates> {
        self.exactly_once.as_ref()?.schedules.as_ref()
    }

    /// The service with callback-driven runs (`None`: a task token is refused). They need the
    /// idempotency store, so call [`Self::with_idempotency`] first; without one they are left
    /// off (the configuration never sets a callback base without the table).
    pub fn with_callbacks(mut self, callbacks: Option<Callbacks>) -> Self {
        match (&mut self.exactly_once, callbacks) {
            (Some(exactly_once), callbacks) => exactly_once.callbacks = callbacks,
            (None, Some(_)) => {
                tracing::warn!("callback-driven runs need the idempotency table: left off");
            }
            (None, None) => {}
        }
        self
    }

    /// The service with the run ledger (`None`: no ledger is kept; said once here, at cold
    /// start).
    pub fn with_ledger(mut self, ledger: Option<Ledger>) -> Self {
        if ledger.is_none() {
            tracing::info!(
                "CLOUDBOT_RUN_LEDGER_TABLE is not set: no run ledger is kept (docs/ledger.md)"
            );
        }
        self.ledger = ledger;
        self
    }

    /// The service with job-finished events (`None`: none are put; said once here, at cold
    /// start). A job's end is announced by the learner that recorded it in the ledger, so call
    /// [`Self::with_ledger`] first.
    pub fn with_job_events(mut self, events: Option<JobEvents>) -> Self {
        if events.is_none() {
            tracing::info!(
                "CLOUDBOT_EVENT_BUS_NAME is not set: no job-finished events are put \
                 (docs/events.md)"
            );
        } else if self.ledger.is_none() {
            tracing::warn!(
                "job ends are announced only with the run ledger (CLOUDBOT_RUN_LEDGER_TABLE), \
                 whose conditional write decides who announces: only refused executes are"
            );
        }
        self.events = events;
        self
    }

    /// Handles one Lambda invocation of any trigger.
    pub async fn handle(&self, event: LambdaEvent<Payload>) -> Result<Box<RawValue>, Diagnostic> {
        let started = Instant::now();
        let (payload, context) = event.into_parts();
        let deadline = invocation_deadline(&context, started);
        let decoded = match payload.parse() {
            // The run queue's batch is many requests, not one (src/service/queue.rs).
            Ok(event) if trigger::is_sqs_event(&event) => {
                return Box::pin(self.handle_queue(event, &context.request_id, deadline)).await;
            }
            // The admission slots' sweep (src/service/sweep.rs).
            Ok(event) if sweep::is_sweep_event(&event) => {
                return Box::pin(self.handle_sweep(&context.request_id, deadline)).await;
            }
            Ok(event) => trigger::decode(event, &self.config.requests),
            Err(err) => trigger::Decoded {
                trigger: Trigger::Direct,
                request: Err(err),
            },
        };
        let span = telemetry::invocation_span(&context.request_id, decoded.trigger.name());
        let mut record = self
            .metrics
            .start(decoded.trigger.name(), &context.request_id);
        async move {
            let result = match decoded.request {
                Ok(request) => {
                    record.set_operation(request.operation.kind().name());
                    let scope = Scope {
                        language: request.language,
                        deadline,
                        retry_budget: decoded.trigger.retry_budget(),
                        trigger: decoded.trigger,
                    };
                    self.run(&request, scope, &context.request_id, &mut record)
                        .await
                }
                Err(err) => Err(Failure::Request(err)),
            };
            if let Err(failure) = &result {
                record.set_failed(failure.kind().name);
            }
            // Lambda runs one invocation per sandbox at a time, so the reads since the last
            // report are this invocation's (the first one's include the prefetch of init).
            record.add_secret_fetches(self.credentials.take_fetch_count());
            let elapsed = started.elapsed();
            telemetry::finish(&result, elapsed);
            self.metrics.emit(&record, elapsed);
            trigger::encode(decoded.trigger, result)
        }
        .instrument(span)
        .await
    }

    /// Sends a validated request to its flow. `request_id` is the Lambda request id (kept in an
    /// idempotency record for operators).
    async fn run(
        &self,
        request: &Request,
        scope: Scope,
        request_id: &str,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        telemetry::record_target(&request.operation);
        // A contract this function has no secret for is refused before anything is read.
        if let Some(contract) = request.contract() {
            self.credentials.provider(contract)?;
        }
        // The flows other than execute and refer_job (the hot paths) are boxed: `run`'s future
        // is as large as its largest arm, and it sits inside every invocation's future.
        match &request.operation {
            Operation::Execute(execute) => self.execute(execute, scope, request_id, record).await,
            Operation::ReferJob { job } => self.refer_job(job, scope, record).await,
            Operation::ListBots { public_id } => {
                Box::pin(self.list_bots(public_id, scope, record)).await
            }
            Operation::ResolveIdempotency { key, resolution } => {
                Box::pin(self.resolve(key, resolution, scope)).await
            }
            Operation::Callback { id } => {
                Box::pin(self.receive_callback(id.as_ref(), scope, record)).await
            }
            Operation::BotDone(done) => Box::pin(self.receive_bot_done(done, scope, record)).await,
            Operation::ScheduleTick(execute) => {
                Box::pin(self.schedule_tick(execute, scope, record)).await
            }
            Operation::ExecutionEnded(change) => {
                Box::pin(self.execution_ended(change, scope, record)).await
            }
            Operation::Sweep => Box::pin(self.sweep(scope, record)).await,
            Operation::DecideRerun(execute, failed) => rerun::decide_rerun(execute, failed),
        }
    }

    /// The credentials to make a call once more with after Cloud BOT answered 401 to
    /// `rejected`: the secret is re-read once (`None`: it has not changed, the 401 stands).
    async fn refreshed(
        &self,
        rejected: &Fetched,
        deadline: Instant,
    ) -> Result<Option<Fetched>, Failure> {
        tracing::info!("Cloud BOT answered 401: re-reading the secret once (it may have rotated)");
        match self.credentials.refresh(rejected, deadline).await? {
            Refreshed::New(fresh) => Ok(Some(fresh)),
            Refreshed::Unchanged => {
                tracing::info!("the secret has not changed since it was read: not retrying");
                Ok(None)
            }
        }
    }
}

/// The credentials providers the configuration names: one secret for every contract, or one
/// per contract, each cached and refreshed on its own.
fn contract_credentials(
    secret: &crate::config::SecretConfig,
    client: &aws_sdk_secretsmanager::Client,
) -> ContractCredentials {
    let provider = |id: &str| {
        CredentialsProvider::new(client.clone(), id.to_owned(), secret.ttl)
            .with_max_stale(secret.max_stale)
    };
    match &secret.id {
        SecretIds::Shared(id) => ContractCredentials::shared(provider(id)),
        SecretIds::PerContract(ids) => ContractCredentials::per_contract(
            ids.iter()
                .map(|(contract, id)| (contract.clone(), provider(id))),
        ),
    }
}

/// Times one Cloud BOT call into the invocation's record and its span (`ok`: the status and job
/// id a success reports).
async fn upstream<T>(
    record: &mut Invocation,
    call: impl Future<Output = Result<T, CloudBotError>>,
    ok: impl Fn(&T) -> (Option<u16>, Option<&str>),
) -> Result<T, CloudBotError> {
    let started = Instant::now();
    let result = call.await;
    record.add_upstream(started.elapsed());
    match &result {
        Ok(value) => {
            let (status, job_id) = ok(value);
            telemetry::record_upstream(status, job_id);
        }
        Err(err) => telemetry::record_upstream(err.upstream_status(), None),
    }
    result
}

/// The invocation's deadline minus [`DEADLINE_MARGIN`], as a monotonic instant.
///
/// Lambda sends the deadline as epoch milliseconds. A value that cannot be one (before
/// 2001-09-09, i.e. below 10^12) is read as the remaining time in milliseconds: `cargo lambda
/// watch` 1.9 sends the function timeout (600000) there. A missing deadline (0) gets the Lambda
/// maximum of 15 minutes.
fn invocation_deadline(context: &Context, now: Instant) -> Instant {
    const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;
    const LAMBDA_MAX: Duration = Duration::from_secs(900);
    let remaining = match context.deadline {
        0 => LAMBDA_MAX,
        ms if ms < EPOCH_MS_FLOOR => Duration::from_millis(ms).min(LAMBDA_MAX),
        _ => context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    now + remaining.saturating_sub(DEADLINE_MARGIN)
}

/// The Lambda deadline itself (the end of an owner's in-flight window), from the working
/// deadline that keeps [`DEADLINE_MARGIN`] back.
fn lambda_deadline(deadline: Instant) -> SystemTime {
    SystemTime::now() + deadline.saturating_duration_since(Instant::now()) + DEADLINE_MARGIN
}

/// A service for the flows' unit tests: Cloud BOT at `api_base` (a local stand-in), the secret
/// from `source`, cached for five minutes, no idempotency table.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::credentials::SecretSource;
    use crate::request::parse_map;

    /// The contract the flows' unit tests name.
    pub(crate) fn demo() -> crate::cloudbot::PublicId {
        crate::cloudbot::PublicId::parse("demo", "public_id").unwrap()
    }

    /// A well-formed secret holding the access token `tok-<n>`.
    pub(crate) fn secret(n: u32) -> String {
        format!(r#"{{"access_token":"tok-{n}","secret_key":"sec-{n}"}}"#)
    }

    pub(crate) fn service(
        api_base: &str,
        source: impl SecretSource + 'static,
        vars: &[(&str, &str)],
    ) -> Service {
        let vars: Vec<(String, String)> =
            [("CLOUDBOT_SECRET_ID", "s"), ("CLOUDBOT_API_BASE", api_base)]
                .iter()
                .chain(vars)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        let config = Config::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap();
        let credentials = CredentialsProvider::with_source(source, config.secret.ttl);
        Service::with_credentials(config, credentials).unwrap()
    }

    /// The idempotency store of a callback's flow, which a callback never writes (reads fail).
    #[derive(Debug)]
    pub(crate) struct Untouched;

    impl crate::idempotency::Store for Untouched {
        fn claim<'a>(
            &'a self,
            _: &'a crate::idempotency::NewClaim<'a>,
        ) -> crate::table::StoreFuture<'a, crate::idempotency::ClaimWrite> {
            unreachable!("a callback claims no idempotency key")
        }
        fn update<'a>(
            &'a self,
            _: &'a crate::idempotency::RecordKey,
            _: crate::idempotency::Expected<'a>,
            _: &'a crate::idempotency::Update<'a>,
            _: u64,
        ) -> crate::table::StoreFuture<'a, crate::idempotency::UpdateWrite> {
            unreachable!("a callback writes no idempotency record")
        }
        fn get<'a>(
            &'a self,
            _: &'a crate::idempotency::RecordKey,
        ) -> crate::table::StoreFuture<'a, Option<crate::idempotency::Record>> {
            Box::pin(async { Err(crate::table::StoreError::Unavailable("untouched".into())) })
        }
    }

    /// Runs the request object `json` with a ten-second deadline; the answer's status and body.
    pub(crate) async fn run(
        service: &Service,
        json: serde_json::Value,
    ) -> Result<(u16, serde_json::Value), Failure> {
        let serde_json::Value::Object(map) = json else {
            panic!("a request is an object");
        };
        run_request(service, &parse_map(map, &service.config.requests).unwrap()).await
    }

    /// Runs `request` with a ten-second deadline; the answer's status and body.
    pub(crate) async fn run_request(
        service: &Service,
        request: &Request,
    ) -> Result<(u16, serde_json::Value), Failure> {
        let scope = Scope {
            language: request.language,
            deadline: Instant::now() + Duration::from_secs(10),
            retry_budget: Duration::from_secs(1),
            trigger: Trigger::Direct,
        };
        let mut record = service.metrics.start("direct", "test");
        let answer = service.run(request, scope, "test", &mut record).await?;
        Ok((
            answer.http_status,
            serde_json::from_str(answer.body.get()).unwrap(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn context(deadline: u64) -> Context {
        let mut context = Context::default();
        context.deadline = deadline;
        context
    }

    fn remaining(deadline: u64, now: Instant) -> Duration {
        invocation_deadline(&context(deadline), now) - now
    }

    #[test]
    fn the_deadline_keeps_the_margin_back_from_each_way_lambda_can_send_it() {
        let now = Instant::now();
        // No deadline: the Lambda maximum.
        assert_eq!(
            remaining(0, now),
            Duration::from_secs(900) - DEADLINE_MARGIN
        );
        // cargo lambda watch: the remaining time in milliseconds, capped at the maximum.
        assert_eq!(
            remaining(600_000, now),
            Duration::from_secs(600) - DEADLINE_MARGIN
        );
        assert_eq!(
            remaining(3_600_000, now),
            Duration::from_secs(900) - DEADLINE_MARGIN
        );
        // Epoch milliseconds: about ten seconds from now.
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = remaining(epoch_ms + 10_000, now);
        assert!(
            left <= Duration::from_secs(10) - DEADLINE_MARGIN,
            "{left:?}"
        );
        assert!(left > Duration::from_secs(8), "{left:?}");
        // Already past: nothing left.
        assert_eq!(remaining(epoch_ms - 10_000, now), Duration::ZERO);
    }

    #[test]
    fn the_lambda_deadline_gives_the_margin_back() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let end = lambda_deadline(deadline);
        let left = end.duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(5), "{left:?}");
        assert!(left <= Duration::from_secs(5) + DEADLINE_MARGIN, "{left:?}");
    }
}
