//! The run ledger (issue 22): one record per BOT run, kept about 13 months, written when the job
//! starts and updated by every path that learns its state (the execute answer, `refer_job`, the
//! callback receiver), all through `Service::learned`. Where it lives and why, the item shape,
//! keys, indexes, retention, what is never in it and the costs: docs/ledger.md.
//!
//! Optional like the idempotency table: without `CLOUDBOT_RUN_LEDGER_TABLE` nothing is written.
//! A ledger write never fails or repeats a run: a failed write is logged, counted
//! (`LedgerWriteFailures`) and the answer goes out as it would have.
//!
//! - `run`: the run's key, origin, what was learned, and the one write it becomes (pure).
//! - `dynamodb`: the adapter (one `UpdateItem` per write), the only code here with SDK types.

mod dynamodb;
mod ended;
mod input;
mod open;
mod run;

use std::fmt::Debug;
use std::time::Duration;

use tokio::time::Instant;

pub use dynamodb::LedgerTable;
pub use ended::{EndedRun, RecordedStart};
pub use input::{KeptInput, MAX_INPUT_BYTES};
pub use open::{OpenRun, OpenRunStore};
pub use run::{
    End, MAX_MESSAGE_CHARS, MONTH_OFFSET_HOURS, ORPHANED, OUTSIDE, OVERRUN, Observed, Origin,
    RunKey, RunWrite, execution_of_key, month_of, seen_attribute,
};

use crate::cloudbot::{JobEndpoint, JobStatus};
use crate::table::{StoreError, StoreFuture};
use crate::table::{bounded, now_ms};

/// Default retention of a run (days): 400, so a month can be compared with the same month a
/// year before (docs/ledger.md, "Retention").
pub const DEFAULT_RETENTION_DAYS: u64 = 400;

/// Names of the ledger item's attributes that readers query or show (docs/ledger.md, "Item
/// shape"): the one home for the writer (`dynamodb.rs`), `cloudbot runs` and `cloudbot schedules
/// backfill`.
pub mod attribute {
    /// The partition key: `<public_id>/<job_id>`.
    pub const RUN: &str = "run";
    /// The job reference endpoint.
    pub const JOB_ENDPOINT: &str = "job_endpoint";
    /// `<public_id>/<bot_id>` (index `by_bot`).
    pub const BOT: &str = "bot";
    /// Epoch ms of the start (sort key of `by_bot` and `by_month`).
    pub const STARTED_AT: &str = "started_at";
    /// `YYYY-MM` of the start in JST (index `by_month`).
    pub const MONTH: &str = "month";
    /// The schedule's name, for a scheduled run (index `by_schedule`).
    pub const SCHEDULE: &str = "schedule";
    /// The nominal occurrence, RFC 3339 (sort key of `by_schedule`).
    pub const NOMINAL_TIME: &str = "nominal_time";
    /// The last status learnt: `executing`, `succeeded` or `error` (`overrun` at an
    /// overrun's end).
    pub const STATUS: &str = "status";
    /// Who signed the API Gateway request that started the run (an IAM principal's ARN).
    pub const CALLER: &str = "caller";
    /// The run's maximum run time in seconds, when its request set one (docs/overrun.md).
    pub const MAX_RUN_S: &str = "max_run_s";
    /// The Step Functions execution ARN, when the key named one (index `by_execution`).
    pub const EXECUTION: &str = "execution";
    /// Present (a constant) while the run is open: set by the start, removed by the end
    /// (partition of index `open_runs`; docs/orphans.md).
    pub const OPEN: &str = "open";
    /// With `open`: `<execution ARN>#<run>`, or `-#<run>` for a run no execution started (sort
    /// key of index `open_runs`: an execution's open runs are one key prefix).
    pub const OPEN_KEY: &str = "open_key";
    /// The request asked to keep the job running when its workflow ends (docs/orphans.md).
    pub const KEEP_RUNNING: &str = "keep_running";
    /// When the end was learned (epoch ms); present exactly when the end is recorded.
    pub const ENDED_AT: &str = "ended_at";
    /// Set just before this product suspends the run's job, to the end status the suspend
    /// means (`overrun`): an `error` end learned by any path is recorded as that status
    /// (docs/overrun.md, "A callback during the suspend").
    pub const SUSPENDING: &str = "suspending";
}

/// Names of the ledger table's global secondary indexes (template.yaml, the CLI).
pub mod index {
    /// Partition `bot` (`<public_id>/<bot_id>`), sort `started_at`.
    pub const BY_BOT: &str = "by_bot";
    /// Partition `month` (`YYYY-MM`, JST), sort `started_at`.
    pub const BY_MONTH: &str = "by_month";
    /// Partition `schedule` (name), sort `nominal_time` (RFC 3339); scheduled runs only.
    pub const BY_SCHEDULE: &str = "by_schedule";
    /// Partition `open` (a constant), sort `open_key` (`<execution>#<run>`); runs not ended
    /// yet, an execution's under one prefix (docs/orphans.md).
    pub const OPEN_RUNS: &str = "open_runs";
}

/// How one write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written; `ended`: this write recorded the run's end.
    Noted {
        /// This write recorded the end.
        ended: bool,
        /// Who started the run, as the record holds it after an end's write (written by the
        /// start; empty otherwise): the failure breaker counts the end for its `schedule`, the
        /// job-finished event tells all of it.
        recorded: RecordedStart,
    },
    /// The write carried an end and the run's end was already recorded: nothing changed.
    AlreadyEnded,
}

/// A ledger table.
pub trait LedgerStore: Send + Sync + Debug {
    /// Applies `write` (one request).
    fn write<'a>(&'a self, write: &'a RunWrite) -> StoreFuture<'a, Written>;

    /// The maximum run time (seconds) the start of `run` recorded, if any (one read;
    /// docs/overrun.md).
    fn max_run_s<'a>(&'a self, run: &'a RunKey) -> StoreFuture<'a, Option<u64>>;

    /// Marks the open run `run` as being suspended as `Some(status)`, or takes the mark away
    /// (`None`, a suspend Cloud BOT refused): one request, changing nothing when the run has no
    /// record or its end is recorded (docs/overrun.md, "A callback during the suspend").
    ///
    /// The default is a store that keeps no mark (the test doubles of paths that never
    /// suspend): it says so, and the caller suspends without one.
    fn mark_suspending<'a>(
        &'a self,
        run: &'a RunKey,
        status: Option<&'static str>,
    ) -> StoreFuture<'a, ()> {
        let _ = (run, status);
        Box::pin(async {
            Err(StoreError::Unavailable(
                "this store keeps no suspend mark".into(),
            ))
        })
    }
}

/// What `Service::learned` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// This call recorded the run's end (exactly one call per run does).
    EndRecorded,
    /// Recorded (a start or a status change), or nothing new to write.
    Noted,
    /// The end was recorded before (by another path or delivery).
    AlreadyEnded,
    /// No ledger is configured.
    Off,
    /// The write failed (logged, counted); the run goes on.
    Failed,
}

impl Learned {
    /// True when this call recorded the run's end (the job-finished events hang off it).
    pub fn recorded_end(self) -> bool {
        self == Learned::EndRecorded
    }
}

/// The ledger: a table and the retention. Built once per sandbox.
#[derive(Debug)]
pub struct Ledger {
    store: Box<dyn LedgerStore>,
    retention: Duration,
    /// The open-run queries (docs/orphans.md); `None`: the orphan paths have nothing to read.
    open: Option<Box<dyn OpenRunStore>>,
}

impl Ledger {
    /// A ledger on `store` keeping runs for `retention` after their start.
    pub fn new(store: impl LedgerStore + 'static, retention: Duration) -> Self {
        Self {
            store: Box::new(store),
            retention,
            open: None,
        }
    }

    /// The ledger whose open runs `open` finds (the orphan paths; docs/orphans.md).
    pub fn with_open_runs(mut self, open: impl OpenRunStore + 'static) -> Self {
        self.open = Some(Box::new(open));
        self
    }

    /// The open-run queries, when configured.
    pub fn open_runs(&self) -> Option<&dyn OpenRunStore> {
        self.open.as_deref()
    }

    /// Records the end of a run whose job this product suspended: the end is `status`
    /// ([`OVERRUN`], or [`ORPHANED`] when its workflow ended: docs/orphans.md) whatever the
    /// re-read job says, the same conditional end write as any other.
    pub async fn suspended_end(
        &self,
        job: &JobEndpoint,
        observed: &Observed<'_>,
        status: &'static str,
        deadline: Instant,
    ) -> Result<(Learned, Option<EndedRun>), StoreError> {
        let write = RunWrite::suspended(job, observed, status, now_ms(), self.retention.as_secs());
        self.apply(write, deadline).await
    }

    /// Records what was learned about `job` (by the execute that started it when `origin`),
    /// within `deadline`. One request at most; none for a job seen still executing by a path
    /// that did not start it (the start recorded that, and a polling loop would otherwise
    /// write on every poll).
    pub async fn learned(
        &self,
        job: &JobEndpoint,
        observed: &Observed<'_>,
        origin: Option<Origin>,
        deadline: Instant,
    ) -> Result<Learned, StoreError> {
        self.learned_end(job, observed, origin, deadline)
            .await
            .map(|(learned, _)| learned)
    }

    /// [`Self::learned`], with the ended run when this call recorded its end (`Some` exactly
    /// with [`Learned::EndRecorded`]): the end the failure breaker counts for its schedule and
    /// the job-finished event announces.
    pub async fn learned_end(
        &self,
        job: &JobEndpoint,
        observed: &Observed<'_>,
        origin: Option<Origin>,
        deadline: Instant,
    ) -> Result<(Learned, Option<EndedRun>), StoreError> {
        if origin.is_none() && observed.status == JobStatus::Executing {
            return Ok((Learned::Noted, None));
        }
        let write = RunWrite::of(job, observed, origin, now_ms(), self.retention.as_secs());
        self.apply(write, deadline).await
    }

    /// Records a run learned from Cloud BOT's "BOT done" webhook: like [`Self::learned_end`]
    /// without an origin, and its `trigger` is [`OUTSIDE`] unless a start of ours wrote one.
    pub async fn outside_end(
        &self,
        job: &JobEndpoint,
        observed: &Observed<'_>,
        deadline: Instant,
    ) -> Result<(Learned, Option<EndedRun>), StoreError> {
        let mut write = RunWrite::of(job, observed, None, now_ms(), self.retention.as_secs());
        write.trigger_if_unset = Some(OUTSIDE);
        self.apply(write, deadline).await
    }

    /// Marks the open run of `job` as being suspended as `status` ([`OVERRUN`]), before the
    /// suspend is sent: an `error` end that any path learns from then on (Cloud BOT's callback
    /// for the suspended job, a poll) is recorded as `status`, so whichever learner's
    /// conditional end write comes first records the truth (docs/overrun.md).
    pub async fn mark_suspending(
        &self,
        job: &JobEndpoint,
        status: &'static str,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let run = RunKey::of_job(job);
        bounded(deadline, self.store.mark_suspending(&run, Some(status))).await
    }

    /// Takes away the mark of [`Self::mark_suspending`]: Cloud BOT refused the suspend, the job
    /// runs on, and its own end is recorded as what it reads.
    pub async fn unmark_suspending(
        &self,
        job: &JobEndpoint,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let run = RunKey::of_job(job);
        bounded(deadline, self.store.mark_suspending(&run, None)).await
    }

    /// The maximum run time the start of the run of `job` recorded (docs/overrun.md).
    pub async fn max_run(
        &self,
        job: &JobEndpoint,
        deadline: Instant,
    ) -> Result<Option<Duration>, StoreError> {
        let run = RunKey::of_job(job);
        let seconds = bounded(deadline, self.store.max_run_s(&run)).await?;
        Ok(seconds.map(Duration::from_secs))
    }

    /// Applies one write of a run (the end's condition decides who recorded it).
    async fn apply(
        &self,
        mut write: RunWrite,
        deadline: Instant,
    ) -> Result<(Learned, Option<EndedRun>), StoreError> {
        let started = write.origin.is_some();
        let written = bounded(deadline, self.store.write(&write)).await?;
        match written {
            Written::Noted {
                ended: true,
                recorded,
            } => Ok((Learned::EndRecorded, EndedRun::of(&write, &recorded))),
            Written::Noted { ended: false, .. } => Ok((Learned::Noted, None)),
            // A start whose job another path already ended: the start's attributes still
            // belong in the record (a second request, only in this race).
            Written::AlreadyEnded if started => {
                write.end = None;
                bounded(deadline, self.store.write(&write)).await?;
                Ok((Learned::AlreadyEnded, None))
            }
            Written::AlreadyEnded => Ok((Learned::AlreadyEnded, None)),
        }
    }
}
