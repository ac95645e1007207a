//! The open runs of the ledger (docs/orphans.md): the runs whose end is not recorded yet, found
//! without a scan. One sparse index holds them, `open_runs`: partition `open` (a constant), sort
//! `open_key` = `<execution ARN>#<run>` (`-#<run>` without an execution), so the status-change
//! path reads one execution's open runs as a key prefix and the sweep reads them all. One index,
//! not two, because CloudFormation adds one global secondary index per table update. The start
//! writes both attributes, the end's write removes them; a run that another path ended before
//! its start's write came (a race) keeps a stale mark until a sweep closes it
//! ([`OpenRunStore::close`]).

use std::fmt::Debug;

use crate::table::StoreFuture;

/// One open run as an index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRun {
    /// The run's key (`<public_id>/<job_id>`).
    pub run: String,
    /// The job reference endpoint (re-parsed against the API base before any call).
    pub job_endpoint: String,
    /// The Step Functions execution that started it, when its key named one.
    pub execution: Option<String>,
    /// Its request asked to keep the job running when the workflow ends.
    pub keep_running: bool,
    /// Its end is recorded after all (a stale `open`: the sweep closes it).
    pub ended: bool,
    /// The start (epoch ms).
    pub started_at_ms: u64,
}

/// `open_key` of a run: `<execution>#<run>`, or `-#<run>` (an execution name has no `#`).
pub fn open_key(execution: Option<&str>, run: &str) -> String {
    format!("{}#{run}", execution.unwrap_or("-"))
}

/// The open-run queries of a ledger table.
pub trait OpenRunStore: Send + Sync + Debug {
    /// The runs the execution `arn` started whose end is not recorded (index `open_runs`, the
    /// prefix `<arn>#`).
    fn of_execution<'a>(&'a self, arn: &'a str) -> StoreFuture<'a, Vec<OpenRun>>;

    /// At most `limit` open runs, in `open_key` order (index `open_runs`).
    fn first<'a>(&'a self, limit: usize) -> StoreFuture<'a, Vec<OpenRun>>;

    /// Removes `open` from `run`, if its end is recorded (a stale mark).
    fn close<'a>(&'a self, run: &'a str) -> StoreFuture<'a, ()>;
}
