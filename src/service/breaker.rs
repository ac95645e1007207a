//! The failure breaker's counting (issue 21): where the function learns that a managed
//! schedule's job ended, the end is counted on the schedule's state record
//! ([`ScheduleStates::ended`](crate::schedule::state::ScheduleStates::ended): once per job,
//! the pause in the same write). Called by the execute (a job that ended within its wait) and
//! the callback receiver (the job read at Cloud BOT's callback), which know the run's key, and
//! by `learned` with the schedule the run ledger holds (so `refer_job`, RunBot's polling,
//! counts too). The tick's side, a paused schedule's tick skipped, is in `tick`.

use tokio::time::Instant;

use super::{DEADLINE_MARGIN, Scope, Service};
use crate::cloudbot::JobStatus;
use crate::idempotency::RecordKey;
use crate::metrics::Invocation;
use crate::schedule::state::{Counted, JobEnd, RunOf};

impl Service {
    /// `job` (its reference endpoint), run under `key`, was read in `status`: when the key is a
    /// managed schedule's run and the status an end, the end is counted; a trip of the breaker
    /// is counted in `SchedulePaused` and logged at WARN.
    ///
    /// Best effort: the job has ended whatever happens here, and the caller's answer (the
    /// execute's result, the task's settlement) must not wait on it. A write that fails is
    /// logged and that end is not counted (the breaker then trips one failure later, never
    /// earlier).
    pub(super) async fn note_ended(
        &self,
        key: &RecordKey,
        job: &str,
        status: JobStatus,
        scope: Scope,
        record: &mut Invocation,
    ) {
        let Some(run) = RunOf::of_key(key) else {
            return;
        };
        let deadline = scope.deadline + DEADLINE_MARGIN / 2;
        self.count_end(
            &run.schedule,
            Some(&run.nominal),
            job,
            status,
            deadline,
            record,
        )
        .await;
    }

    /// `job`, a run of `schedule` at the nominal occurrence `nominal` (when known), was read in
    /// `status`: counted when the status is an end and the schedule is managed (the rest as
    /// [`Self::note_ended`]).
    pub(super) async fn count_end(
        &self,
        schedule: &str,
        nominal: Option<&str>,
        job: &str,
        status: JobStatus,
        deadline: Instant,
        record: &mut Invocation,
    ) {
        let (Some(states), Some(end)) = (self.schedule_states(), JobEnd::of(status)) else {
            return;
        };
        match states.ended(schedule, nominal, job, end, deadline).await {
            Ok(Counted::Now {
                consecutive_failures,
                tripped: Some(reason),
            }) => {
                record.set_schedule_paused(schedule);
                tracing::warn!(
                    schedule,
                    consecutive_failures,
                    pause_reason = %reason,
                    "the failure breaker paused the schedule: its ticks send nothing until \
                     `cloudbot schedules resume`"
                );
            }
            Ok(Counted::Now {
                consecutive_failures,
                tripped: None,
            }) => tracing::info!(
                schedule,
                outcome = end.label(),
                consecutive_failures,
                "scheduled run's end counted"
            ),
            Ok(Counted::SameRun {
                consecutive_failures,
            }) => tracing::info!(
                schedule,
                consecutive_failures,
                "a re-run of a scheduled run counted failed before failed again: still one failed run"
            ),
            Ok(Counted::Already) => {
                tracing::info!(schedule, "scheduled run's end was counted before")
            }
            Ok(Counted::Unmanaged) => {}
            Err(err) => tracing::warn!(
                schedule,
                outcome = end.label(),
                error = %err,
                "the scheduled run's end was not counted on the schedule's state record"
            ),
        }
    }
}
