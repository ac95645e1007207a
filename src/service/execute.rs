//! Starting a BOT: `execute`.
//!
//! An execute with an idempotency key runs inside a claim ([`crate::idempotency`]): validated
//! first, credentials read second, the key claimed third, then the POST, then the claim
//! finished by how the POST ended (completed, released, or unknown). A duplicate gets the
//! recorded answer as a replay and sends nothing.
//!
//! An execute with a task token (the callback-driven state machine) also registers a callback
//! ([`crate::callback`]) after the claim and before the POST, and sends its URL as
//! `callback_endpoint`; the job is recorded on the callback once the POST answered, and a
//! replay moves the retried task's new token into that record.
//!
//! A started job is written to the run ledger ([`crate::ledger`], through `Service::learned`)
//! with who started it, concurrently with the claim's completion; a replay writes nothing.
//!
//! A managed schedule's tick ([`crate::schedule`]) is decided before anything else: a skip
//! answers the decision, a late delivery is refused, and a run's key is its nominal occurrence's.

use std::borrow::Cow;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    DEADLINE_MARGIN, ExactlyOnce, Scope, Service, answer, lambda_deadline, upstream, with_refresh,
};
use crate::callback::{Callbacks, Registered, TaskToken};
use crate::cloudbot::{ExecuteRequest, Started};
use crate::credentials::Fetched;
use crate::error::{Classified, Failure};
use crate::idempotency::{Begin, Claim, Fingerprint, Finish, Pending, RecordKey, finish_of};
use crate::ledger::{KeptInput, Origin, RunKey};
use crate::metrics::Invocation;
use crate::request::{Execute, RequestError};
use crate::schedule::Decided;
use crate::trigger::Answer;

/// When the caller asks Cloud BOT to wait for the job (`timeout`), the wait is shortened so the
/// answer arrives this long before our own deadline or the client's request timeout ([I]: the
/// API's behaviour past `timeout` is undocumented; with this margin the usual answer is a job
/// still `executing`, never a connection we abandon after a job started).
const WAIT_HEADROOM: Duration = Duration::from_secs(2);

impl Service {
    /// Starts the BOT of `execute`: deduplicated when it has a key and the table is configured.
    pub(super) async fn execute(
        &self,
        execute: &Execute,
        scope: Scope,
        request_id: &str,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        if execute.default_bot {
            tracing::info!("no BOT in the request: running the configured default BOT");
        }
        // A managed schedule's tick is decided first: a skip or a refusal sends nothing and
        // reads no secret; a run is keyed on its nominal occurrence (docs/schedules.md).
        let nominal_key;
        let mut key = execute.idempotency_key.as_ref();
        if let Some(tick) = &execute.schedule {
            match self.decide(tick, scope, record).await? {
                Decided::Skipped(skipped) => return answer::skipped(&skipped),
                Decided::Run { key: nominal, .. } => {
                    nominal_key = nominal;
                    key = Some(&nominal_key);
                }
            }
        }
        let task = self.task_of(execute)?;
        let fetched = self
            .credentials
            .get(execute.bot.public_id(), scope.deadline)
            .await?;
        let origin = |key| {
            let name = execute
                .schedule
                .as_ref()
                .map(|t| t.definition.name.as_str());
            let mut origin = Origin::of(scope.trigger, key, task.is_some(), name, request_id)
                .with_execution(execute.execution.as_deref());
            // The request's own maximum, else its managed schedule's (docs/overrun.md).
            origin.max_run_s = execute.max_run.map(|max| max.as_secs()).or_else(|| {
                let tick = execute.schedule.as_ref()?;
                tick.definition.policies.max_run_seconds.map(u64::from)
            });
            origin.keep_running = execute.keep_running;
            origin.caller = execute.caller.clone();
            origin.input = KeptInput::of(execute.body.input.as_ref());
            if let Some(attempt) = &execute.attempt {
                origin.attempt = Some(attempt.number);
                origin.previous_run = attempt
                    .previous_job
                    .as_ref()
                    .map(|job| RunKey::of_job(job).as_str().to_owned());
            }
            origin
        };
        let Some(key) = key else {
            tracing::info!("execute without an idempotency key: not deduplicated");
            self.within_budget(execute, scope.deadline).await?;
            let (result, started) = split(self.post(execute, None, &fetched, scope, record).await);
            let past =
                self.past_maximum_at_start(started.as_ref(), execute, origin(None).max_run_s);
            self.started(started, origin(None), scope, record).await;
            let result = self.overrun_at_start(result, past, scope, record).await;
            self.announce_refused(&result, execute, origin(None), scope, record)
                .await;
            return result;
        };
        let Some(exactly_once) = &self.exactly_once else {
            tracing::warn!(idempotency_key = %key, "no idempotency table is configured: the key is ignored and duplicates are not detected");
            self.within_budget(execute, scope.deadline).await?;
            let (result, started) = split(self.post(execute, None, &fetched, scope, record).await);
            let past =
                self.past_maximum_at_start(started.as_ref(), execute, origin(Some(key)).max_run_s);
            self.started(started, origin(Some(key)), scope, record)
                .await;
            let result = self.overrun_at_start(result, past, scope, record).await;
            self.announce_refused(&result, execute, origin(Some(key)), scope, record)
                .await;
            return result;
        };
        let fingerprint = Fingerprint::of_execute(&execute.bot, &execute.body);
        let pending = Pending {
            key,
            fingerprint: &fingerprint,
            bot_endpoint: execute.bot.url(),
            request_id,
            in_flight_until: lambda_deadline(scope.deadline),
        };
        let begun = match exactly_once
            .idempotency
            .begin(pending, scope.deadline)
            .await?
        {
            // An earlier delivery's outcome is unknown: Cloud BOT's job list may prove it.
            Begin::Unknown(unsettled) => {
                self.reconcile(
                    &exactly_once.idempotency,
                    unsettled,
                    pending,
                    execute,
                    &fetched,
                    origin(Some(key)),
                    scope,
                    record,
                )
                .await?
            }
            begun => begun,
        };
        let claim = match begun {
            Begin::Claimed(claim) => claim,
            Begin::Unknown(unsettled) => return Err(unsettled.into_error(None).into()),
            Begin::Replay(replayed) => {
                record.set_replay();
                if let Some(task) = task {
                    task.callbacks.renew(key, task.token, scope.deadline).await;
                }
                return answer::replay(replayed);
            }
        };
        // Asked after the claim, so a replay still answers past the stop level; a refusal
        // sent nothing and releases the key (docs/usage.md, "Budget").
        if let Err(refused) = self.within_budget(execute, scope.deadline).await {
            let refused = Err(Failure::from(refused));
            finish(exactly_once, &claim, &refused, scope.deadline).await;
            return refused;
        }
        let (result, started) = split(match task {
            None => self.post(execute, None, &fetched, scope, record).await,
            Some(task) => {
                self.post_for_task(execute, key, task, &fetched, scope, record)
                    .await
            }
        });
        // Independent writes at once: the ledger and a managed schedule's state record add no
        // wall time to a keyed execute.
        let job = match &result {
            Ok(Answer {
                location: Some(job),
                ..
            }) => Some(job),
            _ => None,
        };
        let status = started.as_ref().map(|started| started.job.status);
        let past =
            self.past_maximum_at_start(started.as_ref(), execute, origin(Some(key)).max_run_s);
        tokio::join!(
            finish(exactly_once, &claim, &result, scope.deadline),
            self.started(started, origin(Some(key)), scope, record),
            async {
                if let Some(job) = job {
                    self.note_started(key, job, scope).await;
                }
            }
        );
        // A job that ended within the execute's wait (`timeout`): its end is learnt here, for
        // a managed schedule's failure breaker (after `note_started`: the same record).
        if let (Some(job), Some(status)) = (job, status) {
            self.note_ended(key, job, status, scope, record).await;
        }
        // Still executing past its maximum after the wait: suspended (docs/overrun.md).
        let result = self.overrun_at_start(result, past, scope, record).await;
        self.announce_refused(&result, execute, origin(Some(key)), scope, record)
            .await;
        result
    }

    /// Writes a job the POST started to the run ledger (nothing when none was started).
    async fn started(
        &self,
        started: Option<Started>,
        origin: Origin,
        scope: Scope,
        record: &mut Invocation,
    ) {
        if let Some(started) = started {
            // The same share of the answering margin as the claim's completion.
            let deadline = scope.deadline + DEADLINE_MARGIN / 2;
            self.learned(
                &started.job_reference,
                &started.job,
                Some(origin),
                deadline,
                record,
            )
            .await;
        }
    }

    /// The waiting task of an execute with a task token (`None` without one). A token needs
    /// the callback side, and with it the idempotency table.
    fn task_of<'a>(&'a self, execute: &'a Execute) -> Result<Option<Task<'a>>, RequestError> {
        let Some(token) = &execute.task_token else {
            return Ok(None);
        };
        let callbacks = self
            .exactly_once
            .as_ref()
            .and_then(|exactly_once| exactly_once.callbacks.as_ref())
            .ok_or_else(|| {
                RequestError::field(
                    "task_token",
                    "callback-driven runs are not configured (CLOUDBOT_CALLBACK_BASE_URL and \
                     CLOUDBOT_IDEMPOTENCY_TABLE)",
                )
            })?;
        Ok(Some(Task { callbacks, token }))
    }

    /// Registers the task's callback, POSTs with its URL, and records the started job on it.
    /// A callback that cannot be registered releases the claim: nothing was sent.
    async fn post_for_task(
        &self,
        execute: &Execute,
        key: &RecordKey,
        task: Task<'_>,
        fetched: &Fetched,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Posted, Failure> {
        let registered = task
            .callbacks
            .register(key, task.token, scope.deadline)
            .await?;
        let result = self
            .post(execute, Some(&registered), fetched, scope, record)
            .await;
        if let Ok(Posted {
            answer: Answer {
                location: Some(job),
                ..
            },
            ..
        }) = &result
        {
            task.callbacks
                .job_started(&registered, job, scope.deadline + DEADLINE_MARGIN / 2)
                .await;
        }
        result
    }

    /// The execute POST (with our callback endpoint when `registered`), re-reading the secret
    /// once after a 401.
    async fn post(
        &self,
        execute: &Execute,
        registered: Option<&Registered>,
        fetched: &Fetched,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Posted, Failure> {
        // The body is made per attempt: the wait it asks for depends on the time left.
        let started = with_refresh!(self, fetched, scope, |call| upstream(
            record,
            self.client.execute(
                &call,
                &execute.bot,
                &self.body_to_send(&execute.body, registered, scope.deadline)
            ),
            |s| (Some(s.http_status), Some(s.job.job_id.as_str()))
        ))?;
        record.set_run_started(&started.job.job_id);
        let answer = answer::started(&started.job, &started.job_reference)?;
        Ok(Posted { answer, started })
    }

    /// The body as sent: with our callback endpoint (and the configured number of attempts)
    /// when a callback is registered, and the requested wait shortened to fit the invocation.
    /// The fingerprint was taken without the callback, so a retry with a new callback id is the
    /// same request. Borrowed unchanged in the usual case: the body can hold up to 4 MB of input.
    fn body_to_send<'a>(
        &self,
        body: &'a ExecuteRequest,
        registered: Option<&Registered>,
        deadline: Instant,
    ) -> Cow<'a, ExecuteRequest> {
        let mut body = Cow::Borrowed(body);
        if let Some(registered) = registered {
            let body = body.to_mut();
            body.callback_endpoint = Some(registered.url.clone());
            body.callback_tries = Some(self.config.requests.default_callback_tries);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Some(shortened) =
            bounded_wait(&body, remaining.min(self.config.client.request_timeout))
        {
            body.to_mut().timeout_ms = Some(shortened);
        }
        body
    }
}

/// An execute POST that started a job: the answer, and the job for the run ledger.
struct Posted {
    answer: Answer,
    started: Started,
}

/// The answer of a POST, and the job it started if any.
fn split(posted: Result<Posted, Failure>) -> (Result<Answer, Failure>, Option<Started>) {
    match posted {
        Ok(Posted { answer, started }) => (Ok(answer), Some(started)),
        Err(failure) => (Err(failure), None),
    }
}

/// A Step Functions task waiting for the job's end: its token and the callback side that
/// tells it.
#[derive(Clone, Copy)]
struct Task<'a> {
    callbacks: &'a Callbacks,
    token: &'a TaskToken,
}

/// The shortened wait (ms) when a requested synchronous wait (`timeout`) would not end
/// [`WAIT_HEADROOM`] before `available` runs out, so Cloud BOT answers before we must.
fn bounded_wait(body: &ExecuteRequest, available: Duration) -> Option<u64> {
    let requested = body.timeout_ms.filter(|ms| *ms > 0)?;
    let budget = available.saturating_sub(WAIT_HEADROOM);
    let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
    if budget_ms >= requested {
        return None;
    }
    tracing::info!(
        requested_ms = requested,
        sent_ms = budget_ms,
        "shortened the execute wait to fit the invocation"
    );
    Some(budget_ms)
}

/// Finishes the claim of an execute by how it ended.
async fn finish(
    exactly_once: &ExactlyOnce,
    claim: &Claim,
    result: &Result<Answer, Failure>,
    deadline: Instant,
) {
    let idempotency = &exactly_once.idempotency;
    // The POST is capped at `deadline`; the record write may use part of the margin kept for
    // answering, so that a finished call is recorded rather than left to turn "unknown".
    let deadline = deadline + DEADLINE_MARGIN / 2;
    let (finish, detail) = match result {
        Ok(answer) => {
            let location = answer.location.as_deref().unwrap_or_default();
            idempotency
                .complete(claim, &answer.body, location, deadline)
                .await;
            return;
        }
        Err(Failure::CloudBot(err)) => (finish_of(err), format!("{}: {err}", err.kind().name)),
        // The secret could not be re-read after a 401: nothing was started.
        Err(Failure::Credentials(_)) => (Finish::Release, "credentials unavailable".to_owned()),
        // Registering the task's callback failed before the POST: nothing was sent.
        Err(Failure::Callback(_)) => (Finish::Release, "callback not registered".to_owned()),
        // The budget refused before the POST: nothing was sent.
        Err(Failure::Budget(_)) => (Finish::Release, "budget exhausted".to_owned()),
        // After the POST (e.g. the result could not be encoded): a job may exist.
        Err(other) => (Finish::Unknown, format!("{}: {other}", other.error_type())),
    };
    idempotency
        .finish_failed(claim, finish, &detail, deadline)
        .await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::MockServer;

    use super::super::testing::{run_request, secret, service};
    use super::*;
    use crate::callback::fake::token;
    use crate::credentials::StandIn;
    use crate::request::parse_map;

    #[tokio::test]
    async fn a_task_token_without_callback_runs_is_refused_before_anything_is_read_or_sent() {
        let server = MockServer::start().await;
        let source = StandIn::holding(&secret(1), "v1");
        let service = service(&server.uri(), source.clone(), &[]);
        let serde_json::Value::Object(map) =
            json!({"public_id": "demo", "bot_id": "b1", "idempotency_key": "k"})
        else {
            unreachable!()
        };
        let mut request = parse_map(map, &service.config.requests).unwrap();
        request.operation.execute_mut().unwrap().task_token = Some(token("t1"));
        let err = run_request(&service, &request).await.unwrap_err();
        assert!(
            matches!(&err, Failure::Request(RequestError::Field { field, .. }) if field == "task_token"),
            "{err:?}"
        );
        assert_eq!(source.reads(), 0);
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    fn body(timeout_ms: Option<u64>) -> ExecuteRequest {
        ExecuteRequest {
            timeout_ms,
            ..ExecuteRequest::default()
        }
    }

    #[test]
    fn a_wait_that_fits_is_sent_as_asked() {
        let ten_s = Duration::from_secs(10);
        assert_eq!(bounded_wait(&body(None), ten_s), None);
        assert_eq!(bounded_wait(&body(Some(0)), ten_s), None);
        assert_eq!(bounded_wait(&body(Some(8_000)), ten_s), None);
    }

    #[test]
    fn a_wait_that_does_not_fit_ends_the_headroom_before_the_limit() {
        assert_eq!(
            bounded_wait(&body(Some(8_001)), Duration::from_secs(10)),
            Some(8_000)
        );
        assert_eq!(
            bounded_wait(&body(Some(120_000)), Duration::from_secs(1)),
            Some(0)
        );
    }
}
