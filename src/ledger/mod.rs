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
mod run;

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

pub use dynamodb::LedgerTable;
pub use run::{
    End, MAX_MESSAGE_CHARS, MONTH_OFFSET_HOURS, Observed, Origin, RunKey, RunWrite, month_of,
    seen_attribute,
};

use crate::cloudbot::{JobEndpoint, JobStatus};
use crate::table::{StoreError, StoreFuture};

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
    /// The last status learnt: `executing`, `succeeded` or `error`.
    pub const STATUS: &str = "status";
}

/// Names of the ledger table's global secondary indexes (template.yaml, the CLI).
pub mod index {
    /// Partition `bot` (`<public_id>/<bot_id>`), sort `started_at`.
    pub const BY_BOT: &str = "by_bot";
    /// Partition `month` (`YYYY-MM`, JST), sort `started_at`.
    pub const BY_MONTH: &str = "by_month";
    /// Partition `schedule` (name), sort `nominal_time` (RFC 3339); scheduled runs only.
    pub const BY_SCHEDULE: &str = "by_schedule";
}

/// How one write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written; `ended`: this write recorded the run's end.
    Noted {
        /// This write recorded the end.
        ended: bool,
        /// The run's `schedule` as the record holds it after an end's write (written by the
        /// start); `None` otherwise. The failure breaker counts the end for it.
        schedule: Option<String>,
        /// The run's `month` as the record holds it after an end's write (its start's month,
        /// whoever wrote it first); `None` otherwise. The end's BOT-seconds count for it.
        month: Option<String>,
    },
    /// The write carried an end and the run's end was already recorded: nothing changed.
    AlreadyEnded,
}

/// A ledger table.
pub trait LedgerStore: Send + Sync + Debug {
    /// Applies `write` (one request).
    fn write<'a>(&'a self, write: &'a RunWrite) -> StoreFuture<'a, Written>;
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
}

impl Ledger {
    /// A ledger on `store` keeping runs for `retention` after their start.
    pub fn new(store: impl LedgerStore + 'static, retention: Duration) -> Self {
        Self {
            store: Box::new(store),
            retention,
        }
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
        self.learned_for_schedule(job, observed, origin, deadline)
            .await
            .map(|(learned, _)| learned)
    }

    /// [`Self::learned`], with the run's schedule (as the record holds it) when this call
    /// recorded the end of a schedule's run: the end the failure breaker counts.
    pub async fn learned_for_schedule(
        &self,
        job: &JobEndpoint,
        observed: &Observed<'_>,
        origin: Option<Origin>,
        deadline: Instant,
    ) -> Result<(Learned, Option<String>), StoreError> {
        self.learned_run(job, observed, origin, deadline)
            .await
            .map(|recorded| (recorded.learned, recorded.schedule))
    }

    /// [`Self::learned_for_schedule`], with the recorded end's figures when this call recorded
    /// it: what the usage counter adds (docs/usage.md).
    pub async fn learned_run(
        &self,
        job: &JobEndpoint,
        observed: &Observed<'_>,
        origin: Option<Origin>,
        deadline: Instant,
    ) -> Result<Recorded, StoreError> {
        let recorded = |learned, schedule, end| Recorded {
            learned,
            schedule,
            end,
        };
        if origin.is_none() && observed.status == JobStatus::Executing {
            return Ok(recorded(Learned::Noted, None, None));
        }
        let started = origin.is_some();
        let mut write = RunWrite::of(job, observed, origin, now_ms(), self.retention.as_secs());
        let written = bounded(deadline, self.store.write(&write)).await?;
        match written {
            Written::Noted {
                ended: true,
                schedule,
                month,
            } => {
                let end = write.end.as_ref().map(|end| RecordedEnd {
                    month: month.unwrap_or_else(|| write.month.clone()),
                    elapsed_s: end.elapsed_s,
                    bot: write.bot.clone(),
                });
                Ok(recorded(Learned::EndRecorded, schedule, end))
            }
            Written::Noted { ended: false, .. } => Ok(recorded(Learned::Noted, None, None)),
            // A start whose job another path already ended: the start's attributes still
            // belong in the record (a second request, only in this race).
            Written::AlreadyEnded if started => {
                write.end = None;
                bounded(deadline, self.store.write(&write)).await?;
                Ok(recorded(Learned::AlreadyEnded, None, None))
            }
            Written::AlreadyEnded => Ok(recorded(Learned::AlreadyEnded, None, None)),
        }
    }
}

/// What one [`Ledger::learned_run`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// How the write went.
    pub learned: Learned,
    /// The run's schedule, when this call recorded the end of a schedule's run.
    pub schedule: Option<String>,
    /// The end this call recorded (exactly one call per run has it).
    pub end: Option<RecordedEnd>,
}

/// The figures of a recorded end that usage counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEnd {
    /// The run's month (`YYYY-MM`, JST) as the record holds it.
    pub month: String,
    /// The run's BOT-seconds (Cloud BOT's elapsed seconds, else the time since the start).
    pub elapsed_s: u64,
    /// `<public_id>/<bot_id>`, when known.
    pub bot: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs a store call within `deadline`.
async fn bounded<T>(
    deadline: Instant,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "no answer before the invocation's deadline".into(),
            ))
        })
}
