//! The maximum run time on the paths that read a running job besides `refer_job` (issue 22): the
//! callback receiver (a callback that finds its job still executing) and a synchronous execute
//! (an execute with `timeout` that Cloud BOT answers with the job still executing). Both hand
//! the job to `Service::watch_running` (src/service/overrun.rs): the same measure, suspend,
//! re-read, conditional end write (`overrun`), event and `Job.Overrun`. Which path enforces
//! what, and what a caller then sees: docs/overrun.md, "Where the maximum is enforced".

use std::time::{Duration, SystemTime};

use super::{Scope, Service, upstream, with_refresh};
use crate::callback::TaskOutcome;
use crate::cloudbot::{Job, JobEndpoint, JobStatus, Started};
use crate::error::Failure;
use crate::metrics::Invocation;
use crate::overrun::{self, OverrunError};
use crate::request::Execute;
use crate::trigger::Answer;

/// A started job that may be past the maximum the execute knows for its run (see
/// [`Service::past_maximum_at_start`]): to be read again.
pub(super) struct PastMaximum {
    job: JobEndpoint,
}

impl Service {
    /// The callback receiver's look at `found`, the job its callback names, as just read. A job
    /// still executing past its maximum is suspended as on any look: the job as re-read is
    /// handed back with the task's outcome, `Job.Overrun` (the run's end is recorded by then).
    /// Every other case hands `found` back with no outcome of its own: a job within its
    /// maximum, and a job whose suspend failed (no Suspend permission, Cloud BOT unavailable),
    /// whose task is then told to look, so the workflow's own look meets the same error.
    pub(super) async fn watch_on_callback(
        &self,
        job: &JobEndpoint,
        found: Job,
        scope: Scope,
        record: &mut Invocation,
    ) -> (Job, Option<TaskOutcome>) {
        if found.status != JobStatus::Executing {
            return (found, None);
        }
        // The receiver's read got these credentials a moment ago: a cache hit.
        let fetched = match self.credentials.get(job.public_id(), scope.deadline).await {
            Ok(fetched) => fetched,
            Err(error) => {
                tracing::warn!(error = %error, "no credentials to measure the job: the task is told to look");
                return (found, None);
            }
        };
        match self
            .watch_running(job, found.clone(), &fetched, scope, record)
            .await
        {
            Ok(found) => (found, None),
            Err(overrun @ Failure::Overrun(OverrunError::Overrun { .. })) => {
                let outcome = TaskOutcome::failure(overrun.kind().name, &overrun.to_string());
                // The run ended failed (suspended), whatever the re-read still says.
                let mut after = found;
                after.status = JobStatus::Error;
                (after, Some(outcome))
            }
            Err(error) => {
                tracing::warn!(
                    job_id = job.job_id().as_str(),
                    error_type = error.kind().name,
                    "the job is past its maximum but was not suspended: the task is told to look"
                );
                (found, None)
            }
        }
    }

    /// The job a synchronous execute started, when it may have run past its maximum by the
    /// time Cloud BOT answered: the answer reads it executing, and either its running time or
    /// the wait the execute asked for (`timeout`, which the job ran through) is longer than
    /// `max_run_s` (the run's maximum as the execute knows it: the request's, else its
    /// managed schedule's), else the stack default. Only a look decides: Cloud BOT's answer
    /// after a wait may carry the job as it was at its start ([I], the emulator's), so the
    /// job is read again before anything is suspended. `None` for every other answer, the
    /// usual one (an execute without `timeout` answers a job that has just started).
    pub(super) fn past_maximum_at_start(
        &self,
        started: Option<&Started>,
        execute: &Execute,
        max_run_s: Option<u64>,
    ) -> Option<PastMaximum> {
        let started = started?;
        if started.job.status != JobStatus::Executing {
            return None;
        }
        let recorded = max_run_s.map(Duration::from_secs);
        let (max, _) = overrun::maximum(recorded, self.config.max_run)?;
        let running = overrun::running_for(&started.job, SystemTime::now()).unwrap_or_default();
        let waited = Duration::from_millis(execute.body.timeout_ms.unwrap_or(0));
        (overrun::overran(running, max) || overrun::overran(waited, max)).then(|| PastMaximum {
            job: started.job_reference.clone(),
        })
    }

    /// A synchronous execute's `result` once its start is recorded: a job
    /// [`Self::past_maximum_at_start`] named is read and looked at like a poll would
    /// (`watch_running`, which reads the maximum the start just recorded), and when it is
    /// suspended the execute fails with `Job.Overrun`. A read or a suspend that fails leaves
    /// the answer as it was: the job was started and runs on, and its caller keeps the job
    /// reference endpoint (the next look meets the same error).
    pub(super) async fn overrun_at_start(
        &self,
        result: Result<Answer, Failure>,
        past: Option<PastMaximum>,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let (Ok(_), Some(PastMaximum { job })) = (&result, past) else {
            return result;
        };
        let Ok(fetched) = self.credentials.get(job.public_id(), scope.deadline).await else {
            return result;
        };
        let read = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, &job),
            |_| (Some(200), None)
        ));
        let watched = match read {
            Ok(found) => {
                self.watch_running(&job, found, &fetched, scope, record)
                    .await
            }
            Err(error) => Err(error),
        };
        match watched {
            Err(overrun @ Failure::Overrun(OverrunError::Overrun { .. })) => Err(overrun),
            Err(error) => {
                tracing::warn!(
                    job_id = job.job_id().as_str(),
                    error_type = error.kind().name,
                    "the started job is past its maximum but was not suspended: answered as started"
                );
                result
            }
            Ok(_) => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio::time::Instant;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::fakes::{MemoryLedger, suspendable_job, suspends, waiting_callback};
    use super::super::testing::{Untouched, run, run_request, secret, service};
    use crate::callback::fake::{Shared, setup};
    use crate::credentials::StandIn;
    use crate::idempotency::Idempotency;
    use crate::ledger::Ledger;
    use crate::request::Request;

    fn running(elapsed: i64) -> serde_json::Value {
        json!({"code": 200, "job_id": "j1", "bot_id": "b1", "status": 2,
               "elapsed_time": elapsed, "message": "The BOT is executing"})
    }

    fn suspended(elapsed: i64) -> serde_json::Value {
        json!({"code": 200, "job_id": "j1", "bot_id": "b1", "status": 1,
               "elapsed_time": elapsed, "message": "The job was suspended"})
    }

    /// Cloud BOT with job j1 read as `first` once, then as suspended; the DELETE answered
    /// `suspend_status` (200: the suspended job).
    async fn cloud_bot(first: serde_json::Value, suspend_status: u16) -> MockServer {
        suspendable_job(first, suspended(90), suspend_status).await
    }

    /// The callback receiver of `server` with `runs` as its ledger, and what it told tasks.
    async fn receiver(
        server: &MockServer,
        runs: &MemoryLedger,
        default: &str,
    ) -> (super::Service, Shared, Request) {
        let (callbacks, shared) = setup();
        let (callback, _) = waiting_callback(&callbacks, &shared, server, "t1").await;
        let service = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", default)],
        )
        .with_idempotency(Some(Idempotency::new(
            Untouched,
            Duration::from_secs(86_400),
        )))
        .with_callbacks(Some(callbacks))
        .with_ledger(Some(Ledger::new(runs.clone(), Duration::from_secs(86_400))));
        (service, shared, callback)
    }

    fn told(shared: &Shared) -> Vec<String> {
        shared
            .0
            .1
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.1.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_callback_finding_its_job_executing_past_the_maximum_suspends_it_and_fails_the_task_overrun()
     {
        let server = cloud_bot(running(90), 200).await;
        let runs = MemoryLedger::with_max_run_s(Some(60));
        let (service, shared, callback) = receiver(&server, &runs, "").await;
        let (status, body) = run_request(&service, &callback).await.unwrap();
        assert_eq!((status, &body["delivery"]), (200, &json!("settled")));
        assert_eq!(suspends(&server).await, 1);
        let told = told(&shared);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].starts_with(
                "failure Job.Overrun the job ran 90 s, longer than its maximum of 60 s"
            ),
            "{told:?}"
        );
        // One end, the overrun's: the receiver writes nothing of its own after it.
        assert_eq!(runs.ends(), ["overrun"]);
        // Cloud BOT's callback of the suspended job: answered from the record, nothing read.
        let (status, body) = run_request(&service, &callback).await.unwrap();
        assert_eq!(
            (status, &body["delivery"]),
            (200, &json!("already_settled"))
        );
        assert_eq!(suspends(&server).await, 1);
        assert_eq!(runs.ends(), ["overrun"]);
    }

    #[tokio::test]
    async fn a_callback_finding_its_job_within_the_maximum_only_reads_it_and_tells_the_task_to_look()
     {
        let server = cloud_bot(running(30), 200).await;
        let runs = MemoryLedger::with_max_run_s(Some(60));
        let (service, shared, callback) = receiver(&server, &runs, "10").await;
        let (_, body) = run_request(&service, &callback).await.unwrap();
        assert_eq!(body["delivery"], "signalled");
        assert_eq!(suspends(&server).await, 0);
        assert!(told(&shared)[0].contains("job_not_final"));
        assert!(runs.ends().is_empty());
    }

    #[tokio::test]
    async fn a_refused_suspend_on_a_callback_tells_the_task_to_look_and_records_no_end() {
        let server = cloud_bot(running(90), 403).await;
        let runs = MemoryLedger::default();
        let (service, shared, callback) = receiver(&server, &runs, "60").await;
        let (status, body) = run_request(&service, &callback).await.unwrap();
        assert_eq!((status, &body["delivery"]), (200, &json!("signalled")));
        assert_eq!(suspends(&server).await, 1);
        assert!(told(&shared)[0].contains("job_not_final"));
        assert!(runs.ends().is_empty());
    }

    #[tokio::test]
    async fn a_callback_for_a_run_already_ended_overrun_does_not_reopen_it() {
        // A poll suspended the job and recorded the overrun; then Cloud BOT calls back.
        let server = cloud_bot(suspended(90), 200).await;
        let runs = MemoryLedger::with_max_run_s(Some(60));
        let refer = json!({"operation": "refer_job", "public_id": "demo", "job_id": "j1"});
        let (service, shared, callback) = receiver(&server, &runs, "").await;
        // The poll's look: the mock's first GET reads the suspended job, so record the overrun
        // the way the look does.
        let job = crate::cloudbot::JobEndpoint::parse(
            &service.config.requests.api_base,
            &format!("{}/demo/jobs/j1", server.uri()),
            "j",
        )
        .unwrap();
        let found: crate::cloudbot::Job = serde_json::from_value(suspended(90)).unwrap();
        let mut record = service.metrics.start("direct", "test");
        service
            .learned_suspended(
                &job,
                &found,
                crate::ledger::OVERRUN,
                Instant::now() + Duration::from_secs(5),
                &mut record,
            )
            .await;
        let (status, _) = run_request(&service, &callback).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(suspends(&server).await, 0);
        assert_eq!(runs.ends(), ["overrun"], "recorded once, never re-opened");
        assert_eq!(told(&shared).len(), 1);
        // A later look reads the ended job and writes nothing either.
        let (_, body) = run(&service, refer).await.unwrap();
        assert_eq!(body["status"], "error");
        assert_eq!(runs.ends(), ["overrun"]);
    }

    /// Cloud BOT answering the execute of b1 (after its wait) with j1 still running for
    /// `elapsed` seconds; the job then reads as suspended.
    async fn waited(elapsed: i64) -> MockServer {
        let server = cloud_bot(running(elapsed), 200).await;
        Mock::given(method("POST"))
            .and(path("/demo/bots/b1/jobs"))
            .respond_with(ResponseTemplate::new(200).set_body_json(running(elapsed)))
            .mount(&server)
            .await;
        server
    }

    fn execute(max: Option<u64>) -> serde_json::Value {
        let mut request = json!({"public_id": "demo", "bot_id": "b1", "timeout": 100_000});
        if let Some(max) = max {
            request["max_run_seconds"] = json!(max);
        }
        request
    }

    #[tokio::test]
    async fn a_synchronous_execute_answered_past_the_maximum_suspends_the_job_and_fails_overrun() {
        // The request's maximum, and (no request maximum) the stack default.
        for (max, default) in [(Some(60), "3600"), (None, "60")] {
            let server = waited(90).await;
            let runs = MemoryLedger::default();
            let service = service(
                &server.uri(),
                StandIn::holding(&secret(1), "v1"),
                &[("CLOUDBOT_MAX_RUN_SECONDS", default)],
            )
            .with_ledger(Some(Ledger::new(runs.clone(), Duration::from_secs(86_400))));
            let err = run(&service, execute(max)).await.unwrap_err();
            assert_eq!(err.kind().name, "Job.Overrun", "{max:?}: {err}");
            assert_eq!(suspends(&server).await, 1, "{max:?}");
            assert_eq!(runs.ends(), ["overrun"], "{max:?}");
            let start = runs.writes()[0].clone();
            assert_eq!(
                start.origin.and_then(|o| o.max_run_s),
                max,
                "the start first"
            );
        }
    }

    #[tokio::test]
    async fn a_synchronous_execute_within_its_maximum_or_unable_to_suspend_answers_the_started_job()
    {
        // Within the request's maximum, though past a shorter default: only the answer.
        let server = waited(90).await;
        let service = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "10")],
        )
        .with_ledger(Some(Ledger::new(
            MemoryLedger::default(),
            Duration::from_secs(86_400),
        )));
        let (_, body) = run(&service, execute(Some(120))).await.unwrap();
        assert_eq!(body["status"], "executing");
        assert_eq!(suspends(&server).await, 0);
        // Past it, but the suspend is refused: the started job is answered, its end not
        // recorded (the next look meets Job.SuspendForbidden).
        let server = cloud_bot(running(90), 403).await;
        Mock::given(method("POST"))
            .and(path("/demo/bots/b1/jobs"))
            .respond_with(ResponseTemplate::new(200).set_body_json(running(90)))
            .mount(&server)
            .await;
        let runs = MemoryLedger::default();
        let refused = super::super::testing::service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "60")],
        )
        .with_ledger(Some(Ledger::new(runs.clone(), Duration::from_secs(86_400))));
        let (_, body) = run(&refused, execute(None)).await.unwrap();
        assert_eq!(body["job_id"], "j1");
        assert_eq!(suspends(&server).await, 1);
        assert!(runs.ends().is_empty());
    }
}
