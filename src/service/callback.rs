//! Cloud BOT's callback at a job's end, received and told to the waiting Step Functions task
//! (the callback route, `POST …/callbacks/{id}`; flow, costs and risks:
//! docs/state-machines.md).
//!
//! The receiver trusts nothing in the callback but the id (the route never decodes the body):
//! 1. find the record by the id's hash ([`Callbacks::find`]): unknown, malformed or expired is
//!    `Callback.NotFound` with nothing else called; a record settled before, or being settled
//!    by another delivery right now, is answered at once;
//! 2. wait for the job the execute records after its POST (a BOT can finish before the
//!    execute's own bookkeeping), else `Callback.NotReady`;
//! 3. read the job with `refer_job` on the *stored* endpoint, re-reading it a few times while it
//!    still reads as executing;
//! 4. tell the task ([`Callbacks::settle`]): of concurrent deliveries only the one that claims
//!    the record calls Step Functions.
//!
//! Settled, already settled, being settled by another delivery and closed tasks are all
//! answered 2xx: every other answer makes Cloud BOT retry, and retry time is billed as BOT
//! minutes. A job still executing after the re-reads leaves the task to its timeout and the
//! polling fallback (202).

use std::time::Duration;

use tokio::time::Instant;

use super::{Scope, Service, answer, upstream, with_refresh};
use crate::callback::{
    CallbackError, CallbackId, CallbackRecord, Callbacks, Delivery, task_outcome,
};
use crate::cloudbot::{Job, JobEndpoint};
use crate::error::Failure;
use crate::metrics::Invocation;
use crate::request::{Operation, OperationKind};
use crate::telemetry;
use crate::trigger::Answer;

/// A callback whose job is not recorded yet (a BOT faster than the execute's own bookkeeping)
/// re-reads the record this many times, this far apart, before answering `Callback.NotReady`.
const JOB_RECORD_READS: u32 = 5;
const JOB_RECORD_WAIT: Duration = Duration::from_millis(200);

/// A callback whose job still reads as executing ([I]: Cloud BOT may call before its own job
/// reads as finished) re-reads the job this many times, this far apart, then leaves the task
/// to its timeout and the polling fallback.
const JOB_REREADS: u32 = 3;
const JOB_REREAD_WAIT: Duration = Duration::from_secs(1);

impl Service {
    /// Receives the callback `id` (steps in the module header).
    pub(super) async fn receive_callback(
        &self,
        id: &CallbackId,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
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
        let endpoint = recorded_job(callbacks, id, stored, scope.deadline).await?;
        let job = JobEndpoint::parse(
            &self.config.requests.api_base,
            &endpoint,
            "job_reference_endpoint",
        )
        .map_err(|_| Failure::Internal("a stored job reference endpoint is invalid"))?;
        telemetry::record_target(&Operation::ReferJob { job: job.clone() });
        record.set_job(job.job_id().as_str());
        let found = self.final_job(&job, scope, record).await?;
        let result = answer::job_result(OperationKind::ReferJob, &found, &job)?;
        let outcome = task_outcome(
            found.status,
            result.get(),
            found.message.as_deref(),
            job.url(),
        );
        let delivery = callbacks.settle(id, &outcome, scope.deadline).await?;
        log_delivery(delivery, &found);
        answer::delivered(delivery)
    }

    /// The job, re-read while it still reads as executing (at most [`JOB_REREADS`] times).
    async fn final_job(
        &self,
        job: &JobEndpoint,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Job, Failure> {
        let fetched = self.credentials.get(scope.deadline).await?;
        let mut rereads = 0;
        loop {
            let found = with_refresh!(self, &fetched, scope, |call| upstream(
                record,
                self.client.refer_job(&call, job),
                |_| (Some(200), None)
            ))?;
            if found.status.is_final()
                || rereads >= JOB_REREADS
                || Instant::now() + JOB_REREAD_WAIT >= scope.deadline
            {
                return Ok(found);
            }
            rereads += 1;
            tokio::time::sleep(JOB_REREAD_WAIT).await;
        }
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
}
