//! Cloud BOT's callback at a job's end, received and told to the waiting Step Functions task
//! (the callback route, `POST …/callbacks/{id}`; flow, costs and risks:
//! docs/state-machines.md).
//!
//! The receiver trusts nothing in the callback but the id (the route never decodes the body):
//! 1. find the record by the id's hash ([`Callbacks::find`]): unknown, malformed (the route
//!    keeps no id then) or expired is `Callback.NotFound` with nothing else called; a record settled before, or being settled
//!    by another delivery right now, is answered at once;
//! 2. wait for the job the execute records after its POST (a BOT can finish before the
//!    execute's own bookkeeping), else `Callback.NotReady`;
//! 3. read the job once with `refer_job` on the *stored* endpoint; a job still executing past
//!    its maximum run time is suspended and the task told `Job.Overrun` (`watch_on_callback`,
//!    docs/overrun.md);
//! 4. a managed schedule's run: count the end for its failure breaker (`breaker`);
//! 5. tell the task ([`Callbacks::settle`]): of concurrent deliveries only the one that claims
//!    the record calls Step Functions; at the same time, record what was read in the run
//!    ledger (`Service::learned`). A job that does not read as ended yet is told as a *look
//!    signal*, which wakes the workflow into its short polling loop.
//!
//! Settled, signalled, already settled, being settled by another delivery and closed tasks are
//! all answered 200: every other answer makes Cloud BOT retry, and retry time is billed as BOT
//! minutes.
//!
//! Why one read and a signal, not re-reads here: [I] Cloud BOT counts callback-retry time in the
//! job's execution time, so its job may read executing until the callback is acknowledged
//! (the emulator's hold mode). Re-reading before answering could then never see the end, and
//! would only delay the acknowledgement the end waits for (billed seconds); the workflow's own
//! reads after the answer see it (docs/state-machines.md, "A callback while the job still reads
//! executing").

use std::time::Duration;

use tokio::time::Instant;

use super::{Scope, Service, answer, upstream, with_refresh};
use crate::callback::{
    CallbackError, CallbackId, CallbackRecord, Callbacks, Delivery, TaskOutcome, task_outcome,
};
use crate::cloudbot::{Job, JobEndpoint};
use crate::error::Failure;
use crate::idempotency::RecordKey;
use crate::metrics::Invocation;
use crate::request::{Operation, OperationKind};
use crate::telemetry;
use crate::trigger::Answer;

/// A callback whose job is not recorded yet (a BOT faster than the execute's own bookkeeping)
/// re-reads the record this many times, this far apart, before answering `Callback.NotReady`.
const JOB_RECORD_READS: u32 = 5;
const JOB_RECORD_WAIT: Duration = Duration::from_millis(200);

impl Service {
    /// Receives the callback `id` (steps in the module header).
    pub(super) async fn receive_callback(
        &self,
        id: Option<&CallbackId>,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        // A malformed id names no record: nothing to look up.
        let Some(id) = id else {
            return Err(CallbackError::NotFound.into());
        };
        let Some(callbacks) = self
            .exactly_once
            .as_ref()
            .and_then(|exactly_once| exactly_once.callbacks.as_ref())
        else {
            return Err(CallbackError::NotFound.into());
        };
        let stored = callbacks.find(id, scope.deadline).await?;
        if let Some(delivery) = callbacks.answered_without_reading(&stored) {
            tracing::info!(
                delivery = delivery.name(),
                "callback for a task settled or being settled: nothing to do"
            );
            return answer::delivered(delivery);
        }
        let task_key = RecordKey::parse(&stored.task_key).ok();
        let endpoint = recorded_job(callbacks, id, stored, scope.deadline).await?;
        let job = JobEndpoint::parse(
            &self.config.requests.api_base,
            &endpoint,
            "job_reference_endpoint",
        )
        .map_err(|_| Failure::Internal("a stored job reference endpoint is invalid"))?;
        telemetry::record_target(&Operation::ReferJob { job: job.clone() });
        record.set_job(job.job_id().as_str());
        let found = self.read_job(&job, scope, record).await?;
        // Still executing past its maximum: suspended like on any look (docs/overrun.md).
        let (found, overrun) = self.watch_on_callback(&job, found, scope, record).await;
        let outcome = match overrun {
            Some(overrun) => overrun,
            None => {
                let result = answer::job_result(OperationKind::ReferJob, &found, &job)?;
                task_outcome(
                    found.status,
                    result.get(),
                    found.message.as_deref(),
                    job.url(),
                )
            }
        };
        // A scheduled run's end (the task's key is ExecuteBot's) counts for its schedule's
        // failure breaker, whichever delivery settles the task (the count is once per job);
        // before the task is told, so an execution that has ended has its end counted.
        if let Some(key) = &task_key {
            self.note_ended(key, &endpoint, found.status, scope, record)
                .await;
        }
        // Independent writes at once: the task's settlement and the run ledger.
        // (An overrun's end was recorded by the suspend.)
        let recorded = matches!(outcome, TaskOutcome::Failure { .. });
        let (delivery, _) = tokio::join!(callbacks.settle(id, &outcome, scope.deadline), async {
            if !recorded {
                self.learned(&job, &found, None, scope.deadline, record)
                    .await;
            }
        });
        let delivery = delivery?;
        log_delivery(delivery, &found);
        answer::delivered(delivery)
    }

    /// The job as Cloud BOT reads it now (one `refer_job`, refreshed credentials on a 401).
    async fn read_job(
        &self,
        job: &JobEndpoint,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Job, Failure> {
        let fetched = self
            .credentials
            .get(job.public_id(), scope.deadline)
            .await?;
        with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, job),
            |_| (Some(200), None)
        ))
    }
}

/// The job reference endpoint of the callback's record, re-reading the record while the
/// execute has not recorded it yet (at most [`JOB_RECORD_READS`] reads).
async fn recorded_job(
    callbacks: &Callbacks,
    id: &CallbackId,
    mut stored: CallbackRecord,
    deadline: Instant,
) -> Result<String, CallbackError> {
    let mut reads = 1;
    loop {
        if let Some(endpoint) = stored.job_reference_endpoint {
            return Ok(endpoint);
        }
        if reads >= JOB_RECORD_READS || Instant::now() + JOB_RECORD_WAIT >= deadline {
            tracing::warn!("callback before its job was recorded: answered NotReady");
            return Err(CallbackError::NotReady);
        }
        tokio::time::sleep(JOB_RECORD_WAIT).await;
        reads += 1;
        stored = callbacks.find(id, deadline).await?;
    }
}

fn log_delivery(delivery: Delivery, found: &Job) {
    match delivery {
        Delivery::AlreadySettled(code) => {
            tracing::info!(
                closed_as = code,
                "callback for a task Step Functions had closed"
            );
        }
        Delivery::Signalled => tracing::info!(
            status = found.status.label(),
            "callback while the job does not read as ended yet: the task was told to look \
             (short polling loop)"
        ),
        Delivery::Settled => {
            tracing::info!(status = found.status.label(), "task settled by callback");
        }
        Delivery::BeingSettled => tracing::info!(
            "duplicate callback: another delivery is settling the task, nothing called"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::testing::{Untouched, run_request, secret, service};
    use super::*;
    use crate::callback::fake::{Shared, setup, token};
    use crate::credentials::StandIn;
    use crate::idempotency::{Idempotency, RecordKey};
    use crate::request::Request;

    fn callback(id: CallbackId) -> Request {
        Request {
            operation: Operation::Callback { id: Some(id) },
            language: crate::cloudbot::Language::Ja,
        }
    }

    /// A callback registered for the task `t1` (open in Step Functions), with its job recorded
    /// at `job` when given.
    async fn registered(callbacks: &Callbacks, shared: &Shared, job: Option<&str>) -> CallbackId {
        let deadline = Instant::now() + Duration::from_secs(5);
        let key = RecordKey::request("k").unwrap();
        let registered = callbacks
            .register(&key, &token("t1"), deadline)
            .await
            .unwrap();
        if let Some(job) = job {
            callbacks.job_started(&registered, job, deadline).await;
        }
        shared.open("t1");
        CallbackId::parse(registered.url.rsplit('/').next().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn without_callback_runs_every_callback_is_not_found_and_nothing_is_called() {
        let server = MockServer::start().await;
        let source = StandIn::holding(&secret(1), "v1");
        let service = service(&server.uri(), source.clone(), &[]);
        let err = run_request(&service, &callback(CallbackId::generate().unwrap()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Failure::Callback(CallbackError::NotFound)),
            "{err:?}"
        );
        assert_eq!(source.reads(), 0);
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_finished_job_is_read_from_the_stored_endpoint_and_told_to_the_task_once() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "job_id": "j1", "bot_id": "b1", "status": 0
            })))
            .mount(&server)
            .await;
        let (callbacks, shared) = setup();
        let job = format!("{}/demo/jobs/j1", server.uri());
        let id = registered(&callbacks, &shared, Some(&job)).await;
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[])
            .with_idempotency(Some(Idempotency::new(
                Untouched,
                Duration::from_secs(86_400),
            )))
            .with_callbacks(Some(callbacks));
        let (status, body) = run_request(&service, &callback(id.clone())).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"operation": "callback", "delivery": "settled"})
        );
        let calls = shared.0.1.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert!(
            calls[0].1.starts_with("success ") && calls[0].1.contains("\"j1\""),
            "{calls:?}"
        );
        // Cloud BOT's retry of the same callback changes nothing.
        let (status, body) = run_request(&service, &callback(id)).await.unwrap();
        assert_eq!(
            (status, &body["delivery"]),
            (200, &json!("already_settled"))
        );
        assert_eq!(shared.0.1.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_job_still_executing_is_read_once_and_the_task_told_to_look() {
        // Cloud BOT's job may read executing until its callback is acknowledged: the receiver
        // reads once, wakes the workflow with a look signal (never a result) and answers 200 at
        // once, so the acknowledgement the job's end waits for is not delayed.
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "job_id": "j1", "bot_id": "b1", "status": 2,
                "message": "running", "output": {"partial": "x"}
            })))
            .mount(&server)
            .await;
        let (callbacks, shared) = setup();
        let job = format!("{}/demo/jobs/j1", server.uri());
        let id = registered(&callbacks, &shared, Some(&job)).await;
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[])
            .with_idempotency(Some(Idempotency::new(
                Untouched,
                Duration::from_secs(86_400),
            )))
            .with_callbacks(Some(callbacks));
        let (status, body) = run_request(&service, &callback(id.clone())).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"operation": "callback", "delivery": "signalled"})
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        let calls = shared.0.1.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        let told = calls[0].1.strip_prefix("success ").unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(told).unwrap(),
            json!({"signal": "job_not_final", "status": "executing", "job_reference_endpoint": job})
        );
        // A later attempt of the same callback finds the task told: no read, no call.
        let (status, body) = run_request(&service, &callback(id)).await.unwrap();
        assert_eq!(
            (status, &body["delivery"]),
            (200, &json!("already_settled"))
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        assert_eq!(shared.0.1.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_callback_before_its_job_is_recorded_is_not_ready_after_a_few_reads() {
        let (callbacks, shared) = setup();
        let id = registered(&callbacks, &shared, None).await;
        let service = service(
            "http://127.0.0.1:9",
            StandIn::holding(&secret(1), "v1"),
            &[],
        )
        .with_idempotency(Some(Idempotency::new(
            Untouched,
            Duration::from_secs(86_400),
        )))
        .with_callbacks(Some(callbacks));
        let err = run_request(&service, &callback(id)).await.unwrap_err();
        assert!(
            matches!(err, Failure::Callback(CallbackError::NotReady)),
            "{err:?}"
        );
        assert!(shared.0.1.calls.lock().unwrap().is_empty());
    }
}
