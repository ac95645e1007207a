//! The open runs of the ledger (docs/orphans.md): the runs whose end is not recorded yet, found
//! without a scan. Two sparse indexes hold them: `by_execution` (a run whose start named a Step
//! Functions execution, for the status-change path) and `open_runs` (every run started and not
//! ended, for the sweep). The start writes `open`, the end's write removes it; a run that
//! another path ended before its start's write came (a race) keeps a stale `open` until a sweep
//! closes it ([`OpenRunStore::close`]).

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

/// The open-run queries of a ledger table.
pub trait OpenRunStore: Send + Sync + Debug {
    /// The runs the execution `arn` started whose end is not recorded (index `by_execution`).
    fn of_execution<'a>(&'a self, arn: &'a str) -> StoreFuture<'a, Vec<OpenRun>>;

    /// At most `limit` open runs, the oldest first (index `open_runs`).
    fn oldest<'a>(&'a self, limit: usize) -> StoreFuture<'a, Vec<OpenRun>>;

    /// Removes `open` from `run`, if its end is recorded (a stale mark).
    fn close<'a>(&'a self, run: &'a str) -> StoreFuture<'a, ()>;
}
