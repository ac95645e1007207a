//! The orphan paths (issue 22): a BOT job left running by a Step Functions execution that
//! failed, timed out or was stopped is suspended. `execution_ended` reacts to Step Functions'
//! status-change event (the open runs of that execution: a key prefix of the index
//! `open_runs`); `sweep`, run on a schedule because those events are best effort, looks at the
//! open runs (the same index), asks Step Functions how their execution ended, suspends the
//! orphaned ones and learns the end of every other job that ended without word, so the ledger
//! closes. Both go
//! through the same marked suspend + re-read as the maximum run time (`suspend_marked`: a
//! callback recorded during the suspend records `orphaned`, not `error`) and the same
//! conditional end write (`learned_suspended`, end status `orphaned`): a run is ended, and
//! its job-finished event put, once. A run whose request said `keep_running` is never
//! suspended. The rules are `crate::orphans`; why and the limits: docs/orphans.md.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{Scope, Service, answer, upstream, with_refresh};
use crate::cloudbot::{CloudBotError, JobEndpoint, JobStatus};
use crate::error::Failure;
use crate::error::kind::ORPHANS_UNAVAILABLE;
use crate::ledger::{Learned, ORPHANED, OpenRun, OpenRunStore};
use crate::metrics::Invocation;
use crate::orphans::{
    ExecutionReader, ExecutionStatus, OrphanError, SWEEP_MAX_RUNS, StatusChange, Verdict,
};
use crate::overrun::OverrunError;
use crate::table::bounded;
use crate::trigger::Answer;

/// Time either path keeps back from its deadline before it settles one more run: one look is a
/// Cloud BOT read, a suspend and a re-read at most, each bounded by the client's timeouts.
const SWEEP_RESERVE: Duration = Duration::from_secs(5);

/// What became of one open run (the answer lists them; docs/orphans.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Fate {
    /// Its job was suspended and the run recorded as ended `orphaned` by this call.
    Suspended,
    /// Its job had ended already: the end was learned (or another path had recorded it).
    Ended,
    /// Its job still runs and its run is still wanted (execution running or succeeded, or no
    /// execution): only looked at.
    Running,
    /// Its request said `keep_running`: left running.
    KeptRunning,
    /// The look suspended it past its maximum run time (docs/overrun.md).
    Overrun,
    /// Its end was recorded before: the stale `open` mark removed.
    Closed,
    /// Not settled by this call (the error is named); the next sweep looks again.
    Failed,
}

/// One run's line of the answer.
#[derive(Debug, Serialize)]
struct Settled {
    run: String,
    fate: Fate,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

/// The answer of both paths.
#[derive(Debug, Serialize)]
struct Summary {
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_status: Option<&'static str>,
    runs: Vec<Settled>,
    /// The sweep stopped before its deadline with open runs left (the next one goes on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stopped_early: bool,
}

impl Service {
    /// The service with the reader of Step Functions executions the sweep asks (`None`: the
    /// sweep only learns ended jobs' ends and suspends nothing).
    pub fn with_executions(mut self, executions: Option<impl ExecutionReader + 'static>) -> Self {
        self.executions = executions.map(|e| Box::new(e) as Box<dyn ExecutionReader>);
        self
    }

    /// Step Functions' "Execution Status Change": the open runs of an execution that failed,
    /// timed out or was stopped are suspended (module header).
    pub(super) async fn execution_ended(
        &self,
        change: &StatusChange,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let mut summary = Summary {
            execution: Some(change.execution_arn.clone()),
            execution_status: Some(change.status.label()),
            runs: Vec::new(),
            stopped_early: false,
        };
        if change.status.orphans_its_jobs() {
            let runs = bounded(
                scope.deadline,
                self.open_run_store()?.of_execution(&change.execution_arn),
            )
            .await
            .map_err(|e| unavailable("read the execution's open runs from the run ledger", &e))?;
            for run in runs {
                // A Map's many runs may not all fit in one invocation: the sweep settles the rest.
                if out_of_time(scope) {
                    summary.stopped_early = true;
                    break;
                }
                let settled = self.settle(&run, Some(change.status), scope, record).await;
                summary.runs.push(settled);
            }
        }
        answer::decided(&summary)
    }

    /// The periodic sweep: at most `SWEEP_MAX_RUNS` open runs, each settled (module header),
    /// within the invocation's deadline.
    pub(super) async fn sweep(
        &self,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let store = self.open_run_store()?;
        let runs = bounded(scope.deadline, store.first(SWEEP_MAX_RUNS))
            .await
            .map_err(|e| unavailable("read the open runs from the run ledger", &e))?;
        let mut summary = Summary {
            execution: None,
            execution_status: None,
            runs: Vec::new(),
            stopped_early: false,
        };
        for run in runs {
            if out_of_time(scope) {
                summary.stopped_early = true;
                break;
            }
            if run.ended {
                let (fate, error) = match bounded(scope.deadline, store.close(&run.run)).await {
                    Ok(()) => (Fate::Closed, None),
                    Err(_) => (Fate::Failed, Some(ORPHANS_UNAVAILABLE.name)),
                };
                summary.runs.push(Settled {
                    run: run.run.clone(),
                    fate,
                    error,
                });
                continue;
            }
            // Only a run that could be suspended needs its execution's status.
            let status = match (&run.execution, &self.executions, run.keep_running) {
                (Some(arn), Some(executions), false) => {
                    match bounded(scope.deadline, executions.status(arn)).await {
                        Ok(status) => status,
                        Err(error) => {
                            tracing::warn!(
                                run = run.run.as_str(),
                                error = %error,
                                "could not read the run's execution: not settled by this sweep"
                            );
                            summary.runs.push(Settled {
                                run: run.run.clone(),
                                fate: Fate::Failed,
                                error: Some(ORPHANS_UNAVAILABLE.name),
                            });
                            continue;
                        }
                    }
                }
                _ => None,
            };
            summary
                .runs
                .push(self.settle(&run, status, scope, record).await);
        }
        tracing::info!(
            runs = summary.runs.len(),
            stopped_early = summary.stopped_early,
            "swept the open runs"
        );
        answer::decided(&summary)
    }

    /// The open-run queries, or the error that says they are not configured.
    fn open_run_store(&self) -> Result<&dyn OpenRunStore, Failure> {
        self.ledger
            .as_ref()
            .and_then(|ledger| ledger.open_runs())
            .ok_or_else(|| {
                OrphanError::Unavailable {
                    what: "find open runs",
                    error: "no run ledger is configured (CLOUDBOT_RUN_LEDGER_TABLE)".to_owned(),
                }
                .into()
            })
    }

    /// Settles one open run whose execution reads `execution` (`None`: unknown or none).
    async fn settle(
        &self,
        run: &OpenRun,
        execution: Option<ExecutionStatus>,
        scope: Scope,
        record: &mut Invocation,
    ) -> Settled {
        let (fate, error) = match self.settle_run(run, execution, scope, record).await {
            Ok(fate) => (fate, None),
            Err(failure) => {
                let kind = failure.kind().name;
                // The error's text names no secret (the error table's rule); the run is named
                // by its key, never by an input.
                tracing::warn!(
                    run = run.run.as_str(),
                    error = kind,
                    "could not settle an open run: the next sweep looks again"
                );
                (Fate::Failed, Some(kind))
            }
        };
        Settled {
            run: run.run.clone(),
            fate,
            error,
        }
    }

    async fn settle_run(
        &self,
        run: &OpenRun,
        execution: Option<ExecutionStatus>,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Fate, Failure> {
        let job = JobEndpoint::parse(
            &self.config.requests.api_base,
            &run.job_endpoint,
            "job_endpoint",
        )
        .map_err(|_| {
            Failure::Internal("the run's job endpoint is not on the configured Cloud BOT host")
        })?;
        let verdict = crate::orphans::verdict(execution, run.keep_running);
        let fetched = self
            .credentials
            .get(job.public_id(), scope.deadline)
            .await?;
        record.set_job(job.job_id().as_str());
        let found = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, &job),
            |_| (Some(200), None)
        ))?;
        if found.status != JobStatus::Executing {
            // It ended on its own, without word: that end, not a suspension, is the run's.
            self.learned(&job, &found, None, scope.deadline, record)
                .await;
            return Ok(Fate::Ended);
        }
        if verdict != Verdict::Suspend {
            // Still wanted: a look like any other, its maximum run time enforced.
            return match self
                .watch_running(&job, found, &fetched, scope, record)
                .await
            {
                Ok(_) if verdict == Verdict::KeepRunning => Ok(Fate::KeptRunning),
                Ok(_) => Ok(Fate::Running),
                Err(Failure::Overrun(OverrunError::Overrun { .. })) => Ok(Fate::Overrun),
                Err(other) => Err(other),
            };
        }
        tracing::warn!(
            run = run.run.as_str(),
            execution_status = execution.map(ExecutionStatus::label),
            "the workflow of a running job failed, timed out or was stopped: suspending the job"
        );
        let after = self
            .suspend_marked(&job, ORPHANED, &fetched, scope, record)
            .await
            .map_err(|failure| match failure {
                Failure::CloudBot(CloudBotError::Forbidden) => {
                    Failure::Orphan(OrphanError::SuspendForbidden)
                }
                other => other,
            })?;
        let learned = self
            .learned_suspended(&job, &after, ORPHANED, scope.deadline, record)
            .await;
        Ok(match learned {
            // Another path recorded the job's end first (it ended as it was suspended).
            Learned::AlreadyEnded => Fate::Ended,
            _ => Fate::Suspended,
        })
    }
}

/// Too little of the invocation is left to settle one more run.
fn out_of_time(scope: Scope) -> bool {
    scope.deadline.saturating_duration_since(Instant::now()) < SWEEP_RESERVE
}

/// The orphan paths' error for a store that could not be read.
fn unavailable(what: &'static str, error: &crate::table::StoreError) -> Failure {
    OrphanError::Unavailable {
        what,
        error: error.to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::json;
    use wiremock::MockServer;

    use super::super::fakes::{MemoryLedger, suspendable_job, suspends};
    use super::super::testing::{secret, service};
    use super::*;
    use crate::credentials::StandIn;
    use crate::ledger::{Ledger, LedgerStore, RunKey, RunWrite, Written};
    use crate::request::{Operation, Request};
    use crate::table::StoreFuture;

    /// A ledger of open runs: the queries answer from `open`, closed marks are kept, and the
    /// writes go to the in-memory ledger.
    #[derive(Debug, Clone, Default)]
    struct Runs {
        ledger: MemoryLedger,
        open: Arc<Mutex<Vec<OpenRun>>>,
        closed: Arc<Mutex<Vec<String>>>,
    }

    impl Runs {
        /// The ledger holding `run` as its one open run.
        fn holding(run: OpenRun) -> Self {
            let runs = Self::default();
            runs.open.lock().unwrap().push(run);
            runs
        }
    }

    impl LedgerStore for Runs {
        fn write<'a>(&'a self, write: &'a RunWrite) -> StoreFuture<'a, Written> {
            self.ledger.write(write)
        }

        fn max_run_s<'a>(&'a self, run: &'a RunKey) -> StoreFuture<'a, Option<u64>> {
            self.ledger.max_run_s(run)
        }

        fn mark_suspending<'a>(
            &'a self,
            run: &'a RunKey,
            status: Option<&'static str>,
        ) -> StoreFuture<'a, ()> {
            self.ledger.mark_suspending(run, status)
        }
    }

    impl OpenRunStore for Runs {
        fn of_execution<'a>(&'a self, arn: &'a str) -> StoreFuture<'a, Vec<OpenRun>> {
            let runs = self.open.lock().unwrap().clone();
            Box::pin(async move {
                Ok(runs
                    .into_iter()
                    .filter(|r| r.execution.as_deref() == Some(arn) && !r.ended)
                    .collect())
            })
        }

        fn first<'a>(&'a self, limit: usize) -> StoreFuture<'a, Vec<OpenRun>> {
            let runs = self.open.lock().unwrap().clone();
            Box::pin(async move { Ok(runs.into_iter().take(limit).collect()) })
        }

        fn close<'a>(&'a self, run: &'a str) -> StoreFuture<'a, ()> {
            self.closed.lock().unwrap().push(run.to_owned());
            Box::pin(async { Ok(()) })
        }
    }

    /// Step Functions answering one status for every execution.
    #[derive(Debug)]
    struct Executions(Option<ExecutionStatus>);

    impl ExecutionReader for Executions {
        fn status<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<ExecutionStatus>> {
            let status = self.0;
            Box::pin(async move { Ok(status) })
        }
    }

    const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:RunBot-x:e1";

    fn open_run(server: &MockServer, keep_running: bool, ended: bool) -> OpenRun {
        OpenRun {
            run: "demo/j1".into(),
            job_endpoint: format!("{}/demo/jobs/j1", server.uri()),
            execution: Some(EXECUTION.into()),
            keep_running,
            ended,
            started_at_ms: 1,
        }
    }

    /// Cloud BOT with job j1 reading `status` until a DELETE suspends it (status 1 after).
    async fn cloud_bot(status: u8) -> MockServer {
        let job = |status: u8, message: &str| {
            json!({"code": 200, "job_id": "j1", "bot_id": "b1", "status": status,
                   "elapsed_time": 30, "message": message})
        };
        suspendable_job(job(status, "running"), job(1, "The job was suspended"), 200).await
    }

    /// Cloud BOT's job j1 reading `status` (see `cloud_bot`), and a ledger holding its run as
    /// the one open run (`keep_running`, `ended` as [`open_run`] takes them).
    async fn one_open_run(status: u8, keep_running: bool, ended: bool) -> (MockServer, Runs) {
        let server = cloud_bot(status).await;
        let runs = Runs::holding(open_run(&server, keep_running, ended));
        (server, runs)
    }

    async fn handle(
        server: &MockServer,
        runs: &Runs,
        executions: Option<ExecutionStatus>,
        operation: Operation,
    ) -> serde_json::Value {
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[])
            .with_ledger(Some(
                Ledger::new(runs.clone(), Duration::from_secs(60)).with_open_runs(runs.clone()),
            ))
            .with_executions(Some(Executions(executions)));
        let request = Request {
            operation,
            language: crate::cloudbot::Language::Ja,
        };
        let (_, body) = super::super::testing::run_request(&service, &request)
            .await
            .unwrap();
        body
    }

    /// The periodic sweep, Step Functions reading `status` for every execution.
    async fn sweep(server: &MockServer, runs: &Runs, status: ExecutionStatus) -> serde_json::Value {
        handle(server, runs, Some(status), Operation::Sweep).await
    }

    fn stopped(status: ExecutionStatus) -> Operation {
        Operation::ExecutionEnded(StatusChange {
            execution_arn: EXECUTION.into(),
            state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:RunBot-x".into(),
            status,
        })
    }

    #[tokio::test]
    async fn a_stopped_execution_gets_its_running_job_suspended_and_the_run_ended_orphaned() {
        let (server, runs) = one_open_run(2, false, false).await;
        let body = handle(&server, &runs, None, stopped(ExecutionStatus::Aborted)).await;
        assert_eq!(body["runs"][0]["fate"], "suspended", "{body}");
        assert_eq!(suspends(&server).await, 1);
        // Marked before the suspend: a callback recorded meanwhile records `orphaned` too.
        assert_eq!(runs.ledger.marks(), [Some("orphaned")]);
        let writes = runs.ledger.writes();
        let end = writes[0].end.clone().expect("the end");
        assert_eq!(end.status, "orphaned");
        assert_eq!(end.message.as_deref(), Some("The job was suspended"));
    }

    #[tokio::test]
    async fn keep_running_a_succeeded_execution_or_an_ended_job_is_never_suspended() {
        // keep_running: looked at, left running.
        let (server, runs) = one_open_run(2, true, false).await;
        let body = handle(&server, &runs, None, stopped(ExecutionStatus::Failed)).await;
        assert_eq!(body["runs"][0]["fate"], "kept_running", "{body}");
        assert_eq!(suspends(&server).await, 0);
        // A succeeded execution (fire and forget): not even looked up.
        let (server, runs) = one_open_run(2, false, false).await;
        let body = handle(&server, &runs, None, stopped(ExecutionStatus::Succeeded)).await;
        assert_eq!(body["runs"], json!([]), "{body}");
        assert!(server.received_requests().await.unwrap().is_empty());
        // The job ended on its own: its own end is recorded, nothing suspended.
        let (server, runs) = one_open_run(0, false, false).await;
        let body = handle(&server, &runs, None, stopped(ExecutionStatus::TimedOut)).await;
        assert_eq!(body["runs"][0]["fate"], "ended", "{body}");
        assert_eq!(suspends(&server).await, 0);
        let end = runs.ledger.writes()[0].end.clone().unwrap();
        assert_eq!(end.status, "succeeded");
    }

    #[tokio::test]
    async fn the_sweep_suspends_an_orphan_closes_a_stale_mark_and_leaves_a_wanted_run() {
        // The execution was stopped (its event withheld): the sweep suspends the job.
        let (server, runs) = one_open_run(2, false, false).await;
        let body = sweep(&server, &runs, ExecutionStatus::Aborted).await;
        assert_eq!(body["runs"][0]["fate"], "suspended", "{body}");
        assert_eq!(suspends(&server).await, 1);
        // Its execution still runs: only looked at.
        let (server, runs) = one_open_run(2, false, false).await;
        let body = sweep(&server, &runs, ExecutionStatus::Running).await;
        assert_eq!(body["runs"][0]["fate"], "running", "{body}");
        assert_eq!(suspends(&server).await, 0);
        assert!(runs.ledger.writes().is_empty());
        // A run whose end was recorded after all: its mark is removed, Cloud BOT not asked.
        let (server, runs) = one_open_run(2, false, true).await;
        let body = sweep(&server, &runs, ExecutionStatus::Aborted).await;
        assert_eq!(body["runs"][0]["fate"], "closed", "{body}");
        assert_eq!(runs.closed.lock().unwrap().as_slice(), ["demo/j1"]);
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn without_a_ledger_the_paths_say_so() {
        let server = cloud_bot(2).await;
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[]);
        let request = Request {
            operation: Operation::Sweep,
            language: crate::cloudbot::Language::Ja,
        };
        let err = super::super::testing::run_request(&service, &request)
            .await
            .unwrap_err();
        assert_eq!(err.kind().name, "Orphans.Unavailable");
    }
}
