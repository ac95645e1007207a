//! `Service::watch_running`: a look at a job that is still running (issue 22). It says how
//! long the job has been running (`JobRunningSeconds`), and when that passes the run's maximum
//! run time it suspends the job through Cloud BOT, re-reads it, records the run's end as
//! `overrun` (`Service::learned_overrun`, the same conditional end write as every other path)
//! and fails the look with `Job.Overrun`. The maximum is the one the run's start recorded in
//! the run ledger, else the stack default. Why there and the rest: docs/overrun.md.

use std::time::SystemTime;

use super::{Scope, Service, upstream, with_refresh};
use crate::cloudbot::{CloudBotError, Job, JobEndpoint, JobStatus};
use crate::credentials::Fetched;
use crate::error::Failure;
use crate::metrics::Invocation;
use crate::overrun::{self, OverrunError};

impl Service {
    /// Looks at `found`, the job at `job` as just read with `fetched` credentials: a job not
    /// executing is handed back as it is; a running one is measured and, past its maximum,
    /// suspended (module header). `Ok` hands the job back for the caller's answer.
    pub(super) async fn watch_running(
        &self,
        job: &JobEndpoint,
        found: Job,
        fetched: &Fetched,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Job, Failure> {
        if found.status != JobStatus::Executing {
            return Ok(found);
        }
        // Nothing is guessed: a job that tells neither its elapsed time nor its start is
        // neither measured nor suspended.
        let Some(running) = overrun::running_for(&found, SystemTime::now()) else {
            return Ok(found);
        };
        record.set_job_running(running);
        let recorded = match &self.ledger {
            None => None,
            Some(ledger) => match ledger.max_run(job, scope.deadline).await {
                Ok(max) => max,
                Err(error) => {
                    // The run's own maximum is unknown, and it may be longer than the
                    // default: a run still wanted is never suspended on a guess. The next
                    // look tries again.
                    tracing::warn!(
                        job_id = job.job_id().as_str(),
                        error = %error,
                        "could not read the run's maximum run time from the run ledger: \
                         not enforced on this look"
                    );
                    return Ok(found);
                }
            },
        };
        let Some((max, source)) = overrun::maximum(recorded, self.config.max_run) else {
            return Ok(found);
        };
        if !overrun::overran(running, max) {
            return Ok(found);
        }
        let (running_s, max_s) = (running.as_secs(), max.as_secs());
        tracing::warn!(
            job_id = job.job_id().as_str(),
            running_s,
            max_s,
            max_from = source.label(),
            "the job is past its maximum run time: suspending it"
        );
        let suspended = match with_refresh!(self, fetched, scope, |call| upstream(
            record,
            self.client.suspend_job(&call, job),
            |_| (Some(200), None)
        )) {
            Ok(suspended) => suspended,
            Err(Failure::CloudBot(CloudBotError::Forbidden)) => {
                return Err(OverrunError::SuspendForbidden { running_s, max_s }.into());
            }
            Err(other) => return Err(other),
        };
        // The suspend's own answer stands in when the re-read fails: Cloud BOT accepted the
        // suspend either way.
        let after = with_refresh!(self, fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, job),
            |_| (Some(200), None)
        ))
        .unwrap_or(suspended);
        record.set_overrun();
        self.learned_overrun(job, &after, scope.deadline, record)
            .await;
        tracing::warn!(
            job_id = job.job_id().as_str(),
            status = after.status.label(),
            "suspended the job past its maximum run time: the run ended as overrun"
        );
        Err(OverrunError::Overrun {
            running_s,
            max_s,
            max_from: source,
            status: after.status.label(),
        }
        .into())
    }
}
