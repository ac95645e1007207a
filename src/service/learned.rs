//! `Service::learned`: the one function every path that learns a job's state calls (the execute
//! answer, `refer_job` and so the state machines' polling loops, the callback receiver), and the
//! only writer of the run ledger (docs/ledger.md). It never fails the invocation: a failed
//! write is logged without secrets, counted in `LedgerWriteFailures`, and the caller answers as
//! it would have.

use tokio::time::Instant;

use super::Service;
use crate::cloudbot::{Job, JobEndpoint};
use crate::ledger::{Learned, Observed, Origin};
use crate::metrics::Invocation;

impl Service {
    /// Records what was learned about the job at `endpoint` (`found`, as Cloud BOT answered),
    /// with `origin` when this is the execute that started it. Returns whether this call
    /// recorded the run's end: of concurrent learners of one end (a callback and a poll),
    /// exactly one gets [`Learned::EndRecorded`].
    pub(super) async fn learned(
        &self,
        endpoint: &JobEndpoint,
        found: &Job,
        origin: Option<Origin>,
        deadline: Instant,
        record: &mut Invocation,
    ) -> Learned {
        let Some(ledger) = &self.ledger else {
            return Learned::Off;
        };
        let observed = Observed {
            status: found.status,
            bot_id: &found.bot_id,
            start_time: found.start_time.as_deref(),
            elapsed_s: found.elapsed_time,
            message: found.message.as_deref(),
        };
        match ledger.learned(endpoint, &observed, origin, deadline).await {
            Ok(learned) => {
                tracing::debug!(
                    job_id = endpoint.job_id().as_str(),
                    status = found.status.label(),
                    learned = ?learned,
                    "run ledger updated"
                );
                learned
            }
            Err(error) => {
                record.add_ledger_write_failure();
                // The error is an error code or a fixed text (crate::table::unavailable).
                tracing::error!(
                    job_id = endpoint.job_id().as_str(),
                    status = found.status.label(),
                    error = %error,
                    "could not write the run ledger: the run goes on, its record is incomplete"
                );
                Learned::Failed
            }
        }
    }
}
