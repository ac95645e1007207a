//! The business step: one invocation from event to answer.
//!
//! [`Service`] is built once per sandbox (configuration, Cloud BOT client, credentials provider)
//! and borrowed by every invocation. [`Service::handle`] decodes the event ([`crate::trigger`]),
//! runs the operation with credentials from Secrets Manager, and encodes the answer per trigger.
//! On an upstream 401 it re-reads the secret once and retries once: the secret may have rotated
//! since it was cached, and a 401 proves no job was started, so repeating even `execute` is safe.
//!
//! An execute with an idempotency key runs inside a claim ([`crate::idempotency`]): validated
//! first, credentials read second, the key claimed third, then the POST, then the record settled.
//! `refer_job` and `list_bots` are reads and never touch the store.
//!
//! An execute with a task token (the callback-driven state machine) also registers a callback
//! ([`crate::callback`]) after the claim and before the POST, and sends its URL as
//! `callback_endpoint`; a replay moves the retried task's new token into that record. Cloud
//! BOT's callback is received here too: record, `refer_job` on the stored endpoint, settle.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::Instant;
use tracing::Instrument;

use crate::callback::{CallbackError, CallbackId, Callbacks, Delivery, task_outcome};
use crate::cloudbot::{
    Call, ClientSettings, CloudBotClient, CloudBotError, ExecuteRequest, Job, JobEndpoint,
    Language, WarmUpOutcome,
};
use crate::config::Config;
use crate::credentials::{CredentialsProvider, Lease, Prefetch, Refreshed};
use crate::error::Failure;
use crate::idempotency::{
    Begin, Claim, Fingerprint, Idempotency, IdempotencyError, Pending, RecordKey, Resolution,
    ResolveCheck, Settlement, Update,
};
use crate::metrics::{Invocation, Metrics};
use crate::payload::Payload;
use crate::request::{Operation, OperationKind, Request, RequestError};
use crate::telemetry;
use crate::trigger::{self, Answer};

/// Time kept back from the Lambda deadline to encode and post the answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// When the caller asks Cloud BOT to wait for the job (`timeout`), the wait is shortened so the
/// answer arrives this long before our own deadline or the client's request timeout ([I]: the
/// API's behaviour past `timeout` is undocumented; with this margin the usual answer is a job
/// still `executing`, never a connection we abandon after a job started).
const WAIT_HEADROOM: Duration = Duration::from_secs(2);

/// A callback whose job is not recorded yet (a BOT faster than the execute's own bookkeeping)
/// re-reads the record this many times, this far apart, before answering `Callback.NotReady`.
const JOB_RECORD_READS: u32 = 5;
const JOB_RECORD_WAIT: Duration = Duration::from_millis(200);

/// A callback whose job still reads as executing ([I]: Cloud BOT may call before its own job
/// reads as finished) re-reads the job this many times, this far apart, then leaves the task
/// to its timeout and the polling fallback.
const JOB_REREADS: u32 = 3;
const JOB_REREAD_WAIT: Duration = Duration::from_secs(1);

/// Shared state of the function: built once at cold start.
#[derive(Debug)]
pub struct Service {
    config: Config,
    client: CloudBotClient,
    credentials: CredentialsProvider,
    metrics: Metrics,
    idempotency: Option<Idempotency>,
    callbacks: Option<Callbacks>,
}

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
        let client = CloudBotClient::new(ClientSettings {
            base: config.api_base.clone(),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            pool_idle_timeout: config.pool_idle_timeout,
            execute_reuse_window: config.execute_reuse_window,
            test_only_extra_roots: config.test_only_extra_ca.as_ref().map(|ca| ca.pem.clone()),
            ..ClientSettings::default()
        })?;
        let credentials =
            CredentialsProvider::new(secrets, config.secret_id.clone(), config.secret_ttl)
                .with_max_stale(config.secret_max_stale);
        let metrics = Metrics::new(config.metrics_namespace.clone());
        Ok(Self {
            config,
            client,
            credentials,
            metrics,
            idempotency: None,
            callbacks: None,
        })
    }

    /// The service with callback-driven runs (`None`: a task token is refused).
    pub fn with_callbacks(mut self, callbacks: Option<Callbacks>) -> Self {
        self.callbacks = callbacks;
        self
    }

    /// The service with an idempotency store (`None`: duplicates are not detected).
    pub fn with_idempotency(mut self, idempotency: Option<Idempotency>) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Init-time work that would otherwise land on the first invocation, where Lambda throttles
    /// the CPU (measured in docs/benchmarks.md, "Levers tried"), both at once: the secret is
    /// fetched with a wait bounded by `CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS`, which also builds
    /// the Secrets Manager client's connector and TLS configuration and opens its pooled
    /// connection; and the Cloud BOT connection is prepared as `CLOUDBOT_API_WARMUP` says
    /// (a TLS session the first request resumes, by default), bounded by
    /// `CLOUDBOT_API_WARMUP_TIMEOUT_MS`. Nothing here can fail the init: whatever did not finish
    /// is done by the first invocation as before.
    pub async fn prefetch(&self) {
        tokio::join!(self.prefetch_secret(), self.warm_up_api());
    }

    async fn warm_up_api(&self) {
        let mode = self.config.api_warmup;
        let bound = self.config.api_warmup_timeout;
        let started = Instant::now();
        let elapsed_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match self.client.warm_up(mode, bound).await {
            WarmUpOutcome::Handshaken => tracing::info!(
                elapsed_ms = elapsed_ms(),
                "TLS session with the Cloud BOT API set up during init"
            ),
            WarmUpOutcome::Answered(status) => tracing::info!(
                elapsed_ms = elapsed_ms(),
                status,
                "connection to the Cloud BOT API opened during init (HEAD /)"
            ),
            WarmUpOutcome::Skipped(why) => {
                tracing::debug!(
                    mode = mode.as_str(),
                    reason = why,
                    "no warm-up of the Cloud BOT API connection"
                );
            }
            WarmUpOutcome::TimedOut => tracing::warn!(
                mode = mode.as_str(),
                timeout_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
                "the warm-up of the Cloud BOT API connection did not finish during init within \
                 its timeout: the first request connects on its own"
            ),
            WarmUpOutcome::Failed(error) => tracing::warn!(
                mode = mode.as_str(),
                error = %error,
                elapsed_ms = elapsed_ms(),
                "the warm-up of the Cloud BOT API connection failed during init: the first \
                 request connects on its own"
            ),
        }
    }

    async fn prefetch_secret(&self) {
        let bound = self.config.secret_prefetch_timeout;
        if bound.is_zero() {
            return;
        }
        let started = Instant::now();
        let elapsed_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match self.credentials.prefetch(bound).await {
            Prefetch::Cached => {
                tracing::info!(
                    elapsed_ms = elapsed_ms(),
                    "Cloud BOT credentials fetched during init"
                );
            }
            Prefetch::TimedOut => tracing::warn!(
                timeout_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
                "Secrets Manager did not answer during init within the prefetch timeout: the \
                 first invocation fetches the Cloud BOT credentials"
            ),
            Prefetch::Failed(error) => tracing::warn!(
                error = %error,
                elapsed_ms = elapsed_ms(),
                "could not fetch the Cloud BOT credentials during init: the first invocation \
                 tries again"
            ),
            Prefetch::Skipped => tracing::info!(
                "the secret TTL is 0: the credentials are fetched by every invocation, not \
                 during init"
            ),
        }
    }

    /// Handles one Lambda invocation of any trigger.
    pub async fn handle(&self, event: LambdaEvent<Payload>) -> Result<Box<RawValue>, Diagnostic> {
        let started = Instant::now();
        let (payload, context) = event.into_parts();
        let deadline = invocation_deadline(&context, started);
        let decoded = trigger::decode_payload(&payload, &self.config);
        let span = telemetry::invocation_span(&context.request_id, decoded.trigger.name());
        let mut record = self
            .metrics
            .start(decoded.trigger.name(), &context.request_id);
        async move {
            let result = match decoded.request {
                Ok(request) => {
                    record.set_operation(request.operation.kind().name());
                    let budget = decoded.trigger.retry_budget();
                    self.run(&request, deadline, budget, &context.request_id, &mut record)
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

    /// Runs a validated request; gives up at `deadline`, and waits between Cloud BOT attempts
    /// for at most `retry_budget` per call. `request_id` is the Lambda request id (kept in an
    /// idempotency record for operators).
    async fn run(
        &self,
        request: &Request,
        deadline: Instant,
        retry_budget: Duration,
        request_id: &str,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        telemetry::record_target(&request.operation);
        if let Operation::Callback { id } = &request.operation {
            return self
                .receive_callback(id.as_ref(), deadline, retry_budget, record)
                .await;
        }
        let Operation::Execute {
            bot,
            default_bot,
            body,
        } = &request.operation
        else {
            let lease = self.credentials.get(deadline).await?;
            return self
                .call_with_refresh(request, &lease, deadline, retry_budget, record)
                .await;
        };
        if *default_bot {
            tracing::info!("no BOT in the request: running the configured default BOT");
        }
        let callbacks = match (&request.task_token, &self.callbacks, &self.idempotency) {
            (None, _, _) => None,
            (Some(token), Some(callbacks), Some(_)) => Some((token, callbacks)),
            (Some(_), _, _) => {
                return Err(RequestError::field(
                    "task_token",
                    "callback-driven runs are not configured (CLOUDBOT_CALLBACK_BASE_URL and \
                     CLOUDBOT_IDEMPOTENCY_TABLE)",
                )
                .into());
            }
        };
        let lease = self.credentials.get(deadline).await?;
        let (key, idempotency) = match (&request.idempotency_key, &self.idempotency) {
            (Some(key), Some(idempotency)) => (key, idempotency),
            (Some(key), None) => {
                tracing::warn!(idempotency_key = %key, "no idempotency table is configured: the key is ignored and duplicates are not detected");
                return self
                    .call_with_refresh(request, &lease, deadline, retry_budget, record)
                    .await;
            }
            (None, _) => {
                tracing::info!("execute without an idempotency key: not deduplicated");
                return self
                    .call_with_refresh(request, &lease, deadline, retry_budget, record)
                    .await;
            }
        };
        let fingerprint = Fingerprint::of_execute(bot, body);
        let pending = Pending {
            key,
            fingerprint: &fingerprint,
            bot_endpoint: bot.url(),
            request_id,
            in_flight_until: lambda_deadline(deadline),
        };
        let claim = match idempotency.begin(pending, deadline).await? {
            Begin::Claimed(claim) => claim,
            Begin::Replay(replayed) => {
                record.set_replay();
                if let Some((token, callbacks)) = callbacks {
                    callbacks.renew(key, token, deadline).await;
                }
                return Ok(Answer {
                    body: replayed.body,
                    http_status: 202,
                    location: replayed.job_reference_endpoint,
                });
            }
        };
        let registered = match callbacks {
            None => None,
            Some((token, callbacks)) => match callbacks.register(key, token, deadline).await {
                Ok(registered) => Some((registered, callbacks)),
                Err(err) => {
                    idempotency
                        .settle_failure(
                            &claim,
                            Settlement::Release,
                            "callback not registered",
                            deadline,
                        )
                        .await;
                    return Err(err.into());
                }
            },
        };
        let with_callback;
        let sent = match &registered {
            Some((registered, _)) => {
                with_callback = self.with_callback_endpoint(request, &registered.url);
                &with_callback
            }
            None => request,
        };
        let result = self
            .call_with_refresh(sent, &lease, deadline, retry_budget, record)
            .await;
        if let (
            Some((registered, callbacks)),
            Ok(Answer {
                location: Some(job),
                ..
            }),
        ) = (&registered, &result)
        {
            callbacks
                .job_started(registered, job, deadline + DEADLINE_MARGIN / 2)
                .await;
        }
        settle(idempotency, &claim, &result, deadline).await;
        result
    }

    /// `request` with our callback endpoint (and the configured number of attempts). The
    /// fingerprint was taken without it, so a retry with a new callback id is the same request.
    fn with_callback_endpoint(&self, request: &Request, url: &str) -> Request {
        let mut sent = request.clone();
        if let Operation::Execute { body, .. } = &mut sent.operation {
            body.callback_endpoint = Some(url.to_owned());
            body.callback_tries = Some(self.config.default_callback_tries);
        }
        sent
    }

    /// Cloud BOT's callback: the record by the id's hash (unknown or expired: 404, nothing else
    /// called), then `refer_job` on the stored endpoint (the body is never trusted), then the
    /// task is told. Answers 2xx whenever nothing is left to do, because Cloud BOT retries
    /// every other answer and bills the retry time as BOT minutes.
    async fn receive_callback(
        &self,
        id: Option<&CallbackId>,
        deadline: Instant,
        retry_budget: Duration,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        // A malformed id names no record: nothing to look up.
        let (Some(id), Some(callbacks)) = (id, &self.callbacks) else {
            return Err(CallbackError::NotFound.into());
        };
        let mut stored = callbacks.find(id, deadline).await?;
        if let Some(delivery) = callbacks.answered_without_reading(&stored) {
            tracing::info!(
                delivery = delivery.name(),
                "callback for a task settled or being settled: nothing to do"
            );
            return callback_answer(delivery);
        }
        let mut reads = 1;
        let endpoint = loop {
            if let Some(endpoint) = &stored.job_reference_endpoint {
                break endpoint.clone();
            }
            if reads >= JOB_RECORD_READS || Instant::now() + JOB_RECORD_WAIT >= deadline {
                tracing::warn!("callback before its job was recorded: answered NotReady");
                return Err(CallbackError::NotReady.into());
            }
            tokio::time::sleep(JOB_RECORD_WAIT).await;
            reads += 1;
            stored = callbacks.find(id, deadline).await?;
        };
        let job = JobEndpoint::parse(&self.config.api_base, &endpoint, "job_reference_endpoint")
            .map_err(|_| Failure::Internal("a stored job reference endpoint is invalid"))?;
        telemetry::record_target(&Operation::ReferJob { job: job.clone() });
        record.set_job(job.job_id().as_str());
        let lease = self.credentials.get(deadline).await?;
        let mut rereads = 0;
        let found = loop {
            let found = self
                .refer_with_refresh(&job, &lease, deadline, retry_budget, record)
                .await?;
            if found.status.is_final()
                || rereads >= JOB_REREADS
                || Instant::now() + JOB_REREAD_WAIT >= deadline
            {
                break found;
            }
            rereads += 1;
            tokio::time::sleep(JOB_REREAD_WAIT).await;
        };
        let result = job_result(OperationKind::ReferJob, &found, &job, false)?;
        let outcome = task_outcome(
            found.status,
            result.get(),
            found.message.as_deref(),
            job.url(),
        );
        let delivery = callbacks.settle(id, &outcome, deadline).await?;
        match delivery {
            Delivery::AlreadySettled(code) => {
                tracing::info!(
                    closed_as = code,
                    "callback for a task Step Functions had closed"
                );
            }
            Delivery::LeftToFallback => tracing::warn!(
                status = found.status.label(),
                "callback while the job still reads as not finished: the task is left to its \
                 timeout and the polling fallback"
            ),
            Delivery::Settled => {
                tracing::info!(status = found.status.label(), "task settled by callback");
            }
            Delivery::BeingSettled => tracing::info!(
                "duplicate callback: another delivery is settling the task, nothing called"
            ),
        }
        callback_answer(delivery)
    }

    /// `refer_job`, re-reading the secret once after a 401 (as [`Self::call_with_refresh`]).
    async fn refer_with_refresh(
        &self,
        job: &JobEndpoint,
        lease: &Lease,
        deadline: Instant,
        retry_budget: Duration,
        record: &mut Invocation,
    ) -> Result<Job, Failure> {
        let language = self.config.language;
        let upstream = Instant::now();
        let result = self
            .client
            .refer_job(&call_of(lease, language, deadline, retry_budget), job)
            .await;
        record.add_upstream(upstream.elapsed());
        record_result(&result, |_| (Some(200), None));
        match result {
            Err(CloudBotError::Unauthorized) => {
                match self.credentials.refresh(lease, deadline).await? {
                    Refreshed::New(fresh) => {
                        let upstream = Instant::now();
                        let result = self
                            .client
                            .refer_job(&call_of(&fresh, language, deadline, retry_budget), job)
                            .await;
                        record.add_upstream(upstream.elapsed());
                        Ok(result?)
                    }
                    Refreshed::Unchanged => Err(CloudBotError::Unauthorized.into()),
                }
            }
            other => Ok(other?),
        }
    }

    /// [`Self::call`], re-reading the secret once after a 401.
    async fn call_with_refresh(
        &self,
        request: &Request,
        lease: &Lease,
        deadline: Instant,
        retry_budget: Duration,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        match self
            .call(request, lease, deadline, retry_budget, record)
            .await
        {
            Err(Failure::CloudBot(CloudBotError::Unauthorized)) => {
                tracing::info!(
                    "Cloud BOT answered 401: re-reading the secret once (it may have rotated)"
                );
                match self.credentials.refresh(lease, deadline).await? {
                    Refreshed::New(fresh) => {
                        self.call(request, &fresh, deadline, retry_budget, record)
                            .await
                    }
                    Refreshed::Unchanged => {
                        tracing::info!(
                            "the secret has not changed since it was read: not retrying"
                        );
                        Err(CloudBotError::Unauthorized.into())
                    }
                }
            }
            other => other,
        }
    }

    async fn call(
        &self,
        request: &Request,
        lease: &Lease,
        deadline: Instant,
        retry_budget: Duration,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let call = Call {
            credentials: &lease.credentials,
            language: request.language,
            deadline,
            retry_budget,
        };
        match &request.operation {
            Operation::Execute { bot, body, .. } => {
                let body = self.bounded_wait(body, deadline);
                let upstream = Instant::now();
                let result = self.client.execute(&call, bot, &body).await;
                record.add_upstream(upstream.elapsed());
                record_result(&result, |s| {
                    (Some(s.http_status), Some(s.job.job_id.as_str()))
                });
                let started = result?;
                record.set_run_started(&started.job.job_id);
                let body = job_result(
                    OperationKind::Execute,
                    &started.job,
                    &started.job_reference,
                    false,
                )?;
                Ok(Answer {
                    body,
                    http_status: 202,
                    location: Some(started.job_reference.url().to_owned()),
                })
            }
            Operation::ReferJob { job } => {
                record.set_job(job.job_id().as_str());
                let upstream = Instant::now();
                let result = self.client.refer_job(&call, job).await;
                record.add_upstream(upstream.elapsed());
                record_result(&result, |_| (Some(200), None));
                let found = result?;
                Ok(Answer {
                    body: job_result(OperationKind::ReferJob, &found, job, false)?,
                    http_status: 200,
                    location: None,
                })
            }
            Operation::ListBots { public_id } => {
                let upstream = Instant::now();
                let result = self.client.list_bots(&call, public_id).await;
                record.add_upstream(upstream.elapsed());
                record_result(&result, |_| (Some(200), None));
                let bots = result?;
                let body = ListBotsResult {
                    operation: OperationKind::ListBots.name(),
                    public_id: public_id.as_str(),
                    bots: bots
                        .iter()
                        .map(|(bot, endpoint)| BotResult {
                            bot_id: &bot.id,
                            name: bot.name.as_deref(),
                            description: bot.description.as_deref(),
                            bot_endpoint: endpoint.url(),
                        })
                        .collect(),
                };
                Ok(Answer {
                    body: to_raw(&body)?,
                    http_status: 200,
                    location: None,
                })
            }
            Operation::ResolveIdempotency {
                key,
                resolution,
                job,
            } => {
                self.resolve(&call, key, *resolution, job.as_ref(), deadline)
                    .await
            }
            // `run` hands callbacks to `receive_callback` before any call.
            Operation::Callback { .. } => {
                Err(Failure::Internal("a callback reached the call step"))
            }
        }
    }

    /// The operator's way out of an unknown record: mark it started with the job they found
    /// (checked with refer_job: it must exist and belong to the record's BOT), or not started.
    async fn resolve(
        &self,
        call: &Call<'_>,
        key: &RecordKey,
        resolution: Resolution,
        job: Option<&JobEndpoint>,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let idempotency = self.idempotency.as_ref().ok_or_else(|| {
            RequestError::field(
                "operation",
                "no idempotency table is configured (CLOUDBOT_IDEMPOTENCY_TABLE)",
            )
        })?;
        let (record, check) = idempotency.check_resolvable(key, deadline).await?;
        let record = match (check, record) {
            (ResolveCheck::Allowed, Some(record)) => record,
            (ResolveCheck::InFlight { retry_after }, _) => {
                return Err(IdempotencyError::InProgress {
                    key: key.clone(),
                    retry_after,
                }
                .into());
            }
            (ResolveCheck::Refused(reason), _) => {
                return Err(RequestError::field("record_key", reason).into());
            }
            (ResolveCheck::Allowed, None) => {
                return Err(RequestError::field("record_key", "no record with this key").into());
            }
        };
        let (update_result, job_url);
        let update = match (resolution, job) {
            (Resolution::Started, Some(job)) => {
                let found = self.client.refer_job(call, job).await?;
                let record_bot = record.bot_endpoint.as_deref().and_then(|url| {
                    crate::cloudbot::BotEndpoint::parse(&self.config.api_base, url, "bot_endpoint")
                        .ok()
                });
                if let Some(bot) = record_bot
                    && (bot.public_id() != job.public_id()
                        // An empty bot_id means Cloud BOT did not say: the contract must match.
                        || (!found.bot_id.is_empty() && bot.bot_id().as_str() != found.bot_id))
                {
                    return Err(RequestError::field(
                        "job_reference_endpoint",
                        format!(
                            "the job belongs to BOT `{}`, not to the record's BOT {}",
                            found.bot_id,
                            bot.url()
                        ),
                    )
                    .into());
                }
                update_result = job_result(OperationKind::Execute, &found, job, false)?;
                job_url = job.url().to_owned();
                Update::Complete {
                    result: update_result.get(),
                    job_reference_endpoint: &job_url,
                }
            }
            (Resolution::NotStarted, _) => Update::Release,
            // The request parser requires the job with `started`.
            (Resolution::Started, None) => {
                return Err(RequestError::field("job_reference_endpoint", "is required").into());
            }
        };
        if !idempotency
            .write_resolution(key, &record, &update, deadline)
            .await?
        {
            return Err(RequestError::field(
                "record_key",
                "the record changed while it was being resolved; look at it again",
            )
            .into());
        }
        tracing::warn!(idempotency_key = %key, state = update.state().as_str(), "idempotency record resolved by an operator");
        let body = ResolveResult {
            operation: OperationKind::ResolveIdempotency.name(),
            record_key: key.as_str(),
            state: update.state().as_str(),
            job_reference_endpoint: job.map(JobEndpoint::url),
        };
        Ok(Answer {
            body: to_raw(&body)?,
            http_status: 200,
            location: None,
        })
    }

    /// Shortens a requested synchronous wait (`timeout`) so Cloud BOT answers before we must.
    /// Borrowed unchanged in the usual case: the body can hold up to 4 MB of input.
    fn bounded_wait<'a>(
        &self,
        body: &'a ExecuteRequest,
        deadline: Instant,
    ) -> Cow<'a, ExecuteRequest> {
        let Some(requested) = body.timeout_ms.filter(|ms| *ms > 0) else {
            return Cow::Borrowed(body);
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let budget = remaining
            .min(self.config.request_timeout)
            .saturating_sub(WAIT_HEADROOM);
        let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        if budget_ms >= requested {
            return Cow::Borrowed(body);
        }
        tracing::info!(
            requested_ms = requested,
            sent_ms = budget_ms,
            "shortened the execute wait to fit the invocation"
        );
        let mut shortened = body.clone();
        shortened.timeout_ms = Some(budget_ms);
        Cow::Owned(shortened)
    }
}

/// The per-call context of a call made with `lease`.
fn call_of(
    lease: &Lease,
    language: Language,
    deadline: Instant,
    retry_budget: Duration,
) -> Call<'_> {
    Call {
        credentials: &lease.credentials,
        language,
        deadline,
        retry_budget,
    }
}

/// The callback route's answer (never names the id or the token).
fn callback_answer(delivery: Delivery) -> Result<Answer, Failure> {
    let body = to_raw(&serde_json::json!({
        "operation": OperationKind::Callback.name(),
        "delivery": delivery.name(),
    }))?;
    Ok(Answer {
        body,
        http_status: if delivery == Delivery::LeftToFallback {
            202
        } else {
            200
        },
        location: None,
    })
}

/// Settles the claim of an execute by how it ended.
async fn settle(
    idempotency: &Idempotency,
    claim: &Claim,
    result: &Result<Answer, Failure>,
    deadline: Instant,
) {
    // The POST is capped at `deadline`; the record write may use part of the margin kept for
    // answering, so that a finished call is recorded rather than left to turn "unknown".
    let deadline = deadline + DEADLINE_MARGIN / 2;
    match result {
        Ok(answer) => {
            let location = answer.location.as_deref().unwrap_or_default();
            idempotency
                .complete(claim, &answer.body, location, deadline)
                .await;
        }
        Err(Failure::CloudBot(err)) => {
            let detail = format!("{}: {err}", err.kind().name);
            idempotency
                .settle_failure(
                    claim,
                    crate::idempotency::settlement_of(err),
                    &detail,
                    deadline,
                )
                .await;
        }
        // The secret could not be re-read after a 401: nothing was started.
        Err(Failure::Credentials(_)) => {
            idempotency
                .settle_failure(
                    claim,
                    Settlement::Release,
                    "credentials unavailable",
                    deadline,
                )
                .await;
        }
        // After the POST (e.g. the result could not be encoded): a job may exist.
        Err(other) => {
            let detail = format!("{}: {other}", other.error_type());
            idempotency
                .settle_failure(claim, Settlement::Unknown, &detail, deadline)
                .await;
        }
    }
}

/// The Lambda deadline itself (the end of an owner's in-flight window), from the working
/// deadline that keeps [`DEADLINE_MARGIN`] back.
fn lambda_deadline(deadline: Instant) -> SystemTime {
    SystemTime::now() + deadline.saturating_duration_since(Instant::now()) + DEADLINE_MARGIN
}

fn record_result<T>(
    result: &Result<T, CloudBotError>,
    ok: impl Fn(&T) -> (Option<u16>, Option<&str>),
) {
    match result {
        Ok(value) => {
            let (status, job_id) = ok(value);
            telemetry::record_upstream(status, job_id);
        }
        Err(err) => telemetry::record_upstream(err.upstream_status(), None),
    }
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

/// Job result of `execute` and `refer_job` (stable snake_case contract; see docs/contract.md).
#[derive(Serialize)]
struct JobResult<'a> {
    operation: &'static str,
    job_id: &'a str,
    job_reference_endpoint: &'a str,
    public_id: &'a str,
    bot_id: &'a str,
    bot_name: Option<&'a str>,
    status: &'static str,
    status_code: i64,
    response_code: Option<i64>,
    start_time: Option<&'a str>,
    elapsed_time: Option<i64>,
    message: Option<&'a str>,
    output: Option<&'a RawValue>,
    cast_url: Option<&'a str>,
    /// True when this is a duplicate's answer recorded by the first request (docs/exactly-once.md).
    replay: bool,
}

#[derive(Serialize)]
struct ResolveResult<'a> {
    operation: &'static str,
    record_key: &'a str,
    state: &'static str,
    job_reference_endpoint: Option<&'a str>,
}

#[derive(Serialize)]
struct ListBotsResult<'a> {
    operation: &'static str,
    public_id: &'a str,
    bots: Vec<BotResult<'a>>,
}

#[derive(Serialize)]
struct BotResult<'a> {
    bot_id: &'a str,
    name: Option<&'a str>,
    description: Option<&'a str>,
    bot_endpoint: &'a str,
}

fn job_result(
    operation: OperationKind,
    job: &Job,
    reference: &JobEndpoint,
    replay: bool,
) -> Result<Box<RawValue>, Failure> {
    to_raw(&JobResult {
        operation: operation.name(),
        job_id: &job.job_id,
        job_reference_endpoint: reference.url(),
        public_id: reference.public_id().as_str(),
        bot_id: &job.bot_id,
        bot_name: job.bot_name.as_deref(),
        status: job.status.label(),
        status_code: job.status.code(),
        response_code: job.code,
        start_time: job.start_time.as_deref(),
        elapsed_time: job.elapsed_time,
        message: job.message.as_deref(),
        output: job.output.as_deref(),
        cast_url: job.cast_url.as_deref(),
        replay,
    })
}

fn to_raw<T: Serialize>(value: &T) -> Result<Box<RawValue>, Failure> {
    // Serializing these plain structs cannot fail in practice; if it ever does, report it rather
    // than panicking.
    serde_json::value::to_raw_value(value)
        .map_err(|_| Failure::Internal("the result could not be encoded"))
}
