//! `Service::watch_running`: a look at a job that is still running (issue 22). It says how
//! long the job has been running (`JobRunningSeconds`), and when that passes the run's maximum
//! run time it suspends the job through Cloud BOT, re-reads it, records the run's end as
//! `overrun` (`Service::learned_suspended`, the same conditional end write as every other path)
//! and fails the look with `Job.Overrun`. The maximum is the one the run's start recorded in
//! the run ledger, else the stack default. Why there and the rest: docs/overrun.md.
//!
//! Before the suspend is sent the run is marked as being suspended as `overrun`
//! (`Service::suspend_marked`): Cloud BOT's callback for the suspended job can be received and
//! recorded before this look's own end write, and the mark makes that `error` end `overrun`
//! too, so the record and its event tell why the job ended whichever write is first.

use std::time::SystemTime;

use super::{Scope, Service, upstream, with_refresh};
use crate::cloudbot::{CloudBotError, Job, JobEndpoint, JobStatus};
use crate::credentials::Fetched;
use crate::error::Failure;
use crate::ledger::OVERRUN;
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
        let after = match self
            .suspend_marked(job, OVERRUN, fetched, scope, record)
            .await
        {
            Ok(after) => after,
            Err(Failure::CloudBot(CloudBotError::Forbidden)) => {
                return Err(OverrunError::SuspendForbidden { running_s, max_s }.into());
            }
            Err(other) => return Err(other),
        };
        record.set_overrun();
        self.learned_suspended(job, &after, OVERRUN, scope.deadline, record)
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

    /// [`Self::suspend_and_reread`], with the run marked as being suspended as `status` first
    /// (module header): the mark is written before the `DELETE`, and taken away again when
    /// Cloud BOT provably did not suspend the job (`overrun::suspend_not_done`). A mark that
    /// cannot be written is logged and the job suspended anyway: stopping a job that bills is
    /// worth more than the name of its end (docs/overrun.md, "A callback during the suspend").
    pub(super) async fn suspend_marked(
        &self,
        job: &JobEndpoint,
        status: &'static str,
        fetched: &Fetched,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Job, Failure> {
        let Some(ledger) = &self.ledger else {
            return self.suspend_and_reread(job, fetched, scope, record).await;
        };
        if let Err(error) = ledger.mark_suspending(job, status, scope.deadline).await {
            tracing::warn!(
                job_id = job.job_id().as_str(),
                error = %error,
                "could not mark the run as being suspended: suspending it anyway (a callback \
                 recorded before this look's end write would record it as error)"
            );
        }
        let suspended = self.suspend_and_reread(job, fetched, scope, record).await;
        if let Err(failure) = &suspended {
            let not_done = match failure {
                Failure::CloudBot(error) => overrun::suspend_not_done(error),
                // Credentials or the deadline: nothing was sent.
                _ => true,
            };
            if not_done && let Err(error) = ledger.unmark_suspending(job, scope.deadline).await {
                tracing::warn!(
                    job_id = job.job_id().as_str(),
                    error = %error,
                    "could not take away the suspend mark of a run Cloud BOT did not suspend"
                );
            }
        }
        suspended
    }

    /// Suspends the job at `job` through Cloud BOT (`DELETE`) and re-reads it: the job as it
    /// reads after the suspend (the suspend's own answer when the re-read fails: Cloud BOT
    /// accepted the suspend either way). Shared with the orphan paths (src/service/orphans.rs).
    pub(super) async fn suspend_and_reread(
        &self,
        job: &JobEndpoint,
        fetched: &Fetched,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Job, Failure> {
        let suspended = with_refresh!(self, fetched, scope, |call| upstream(
            record,
            self.client.suspend_job(&call, job),
            |_| (Some(200), None)
        ))?;
        Ok(with_refresh!(self, fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, job),
            |_| (Some(200), None)
        ))
        .unwrap_or(suspended))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::MockServer;

    use super::super::fakes::{MemoryLedger, suspendable_job, suspends};
    use super::super::testing::{run, secret, service};
    use crate::cloudbot::CloudBotError;
    use crate::credentials::StandIn;
    use crate::error::Failure;
    use crate::ledger::Ledger;
    use crate::overrun::OverrunError;
    use std::sync::Arc;

    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};

    use super::super::fakes::{Marks, suspendable_job_seen};

    /// Cloud BOT with job j1 executing for `elapsed` seconds until suspended (the DELETE
    /// answers status 1, a later GET too), the DELETE answered with `suspend_status`.
    async fn cloud_bot(elapsed: Option<i64>, suspend_status: u16) -> MockServer {
        let running = json!({"code": 200, "job_id": "j1", "bot_id": "b1", "status": 2,
                             "elapsed_time": elapsed, "message": "The BOT is executing"});
        let suspended = json!({"code": 200, "job_id": "j1", "bot_id": "b1", "status": 1,
                               "elapsed_time": elapsed, "message": "The job was suspended"});
        suspendable_job(running, suspended, suspend_status).await
    }

    /// [`cloud_bot`], its `DELETE` keeping in `seen` the suspend marks `runs` held when it came.
    async fn cloud_bot_seen(
        elapsed: Option<i64>,
        suspend_status: u16,
        runs: &MemoryLedger,
        seen: Marks,
    ) -> MockServer {
        let running = json!({"code": 200, "job_id": "j1", "bot_id": "b1", "status": 2,
                             "elapsed_time": elapsed, "message": "The BOT is executing"});
        let suspended = json!({"code": 200, "job_id": "j1", "bot_id": "b1", "status": 1,
                               "elapsed_time": elapsed, "message": "The job was suspended"});
        suspendable_job_seen(
            running,
            suspended,
            suspend_status,
            runs.marks_handle(),
            seen,
        )
        .await
    }

    fn refer() -> serde_json::Value {
        json!({"operation": "refer_job", "public_id": "demo", "job_id": "j1"})
    }

    #[tokio::test]
    async fn the_runs_recorded_maximum_wins_over_a_longer_default_and_ends_the_run_overrun() {
        let runs = MemoryLedger::with_max_run_s(Some(60));
        let seen = Marks::default();
        let server = cloud_bot_seen(Some(90), 200, &runs, Arc::clone(&seen)).await;
        let service = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "3600")],
        )
        .with_ledger(Some(Ledger::new(runs.clone(), Duration::from_secs(60))));
        let err = run(&service, refer()).await.unwrap_err();
        let Failure::Overrun(OverrunError::Overrun {
            running_s,
            max_s,
            status,
            ..
        }) = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*running_s, *max_s, *status), (90, 60, "error"));
        assert_eq!(err.kind().name, "Job.Overrun");
        assert_eq!(suspends(&server).await, 1);
        let writes = runs.writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        let end = writes[0].end.clone().unwrap();
        assert_eq!(end.status, "overrun");
        assert_eq!(end.message.as_deref(), Some("The job was suspended"));
        // Marked before the suspend was sent (a callback recorded in between ends the run
        // `overrun` too: tests/it/ledger.rs), and the mark stays.
        assert_eq!(*seen.lock().unwrap(), [Some("overrun")]);
        assert_eq!(runs.marks(), [Some("overrun")]);
    }

    /// The metrics record (EMF) of one `refer_job` through `service`, and whether it failed.
    async fn look_recorded(service: &super::super::Service) -> (serde_json::Value, bool) {
        use crate::request::parse_map;
        let serde_json::Value::Object(map) = refer() else {
            unreachable!()
        };
        let request = parse_map(map, &service.config.requests).unwrap();
        let scope = super::super::Scope {
            language: request.language,
            deadline: tokio::time::Instant::now() + Duration::from_secs(10),
            retry_budget: Duration::from_secs(1),
            trigger: crate::trigger::Trigger::Direct,
        };
        let mut record = service.metrics.start("direct", "test");
        let failed = service
            .run(&request, scope, "test", &mut record)
            .await
            .is_err();
        let emf = service
            .metrics
            .render(&record, Duration::ZERO, std::time::SystemTime::now());
        (serde_json::from_str(&emf).unwrap(), failed)
    }

    #[tokio::test]
    async fn every_look_at_a_running_job_says_how_long_it_has_run() {
        // Within its maximum: measured only.
        let server = cloud_bot(Some(90), 200).await;
        let within = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "3600")],
        );
        let (emf, failed) = look_recorded(&within).await;
        assert!(!failed);
        assert_eq!(emf["JobRunningSeconds"], 90, "{emf}");
        assert!(emf.get("JobOverruns").is_none(), "{emf}");
        assert_eq!(emf["JobId"], "j1", "{emf}");
        // Past it: measured, suspended and counted; the look at the ended job measures nothing.
        let server = cloud_bot(Some(90), 200).await;
        let past = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "60")],
        );
        let (emf, failed) = look_recorded(&past).await;
        assert!(failed);
        assert_eq!(
            (&emf["JobRunningSeconds"], &emf["JobOverruns"]),
            (&90.into(), &1.into())
        );
        let (emf, failed) = look_recorded(&past).await;
        assert!(!failed);
        assert!(emf.get("JobRunningSeconds").is_none(), "{emf}");
    }

    #[tokio::test]
    async fn within_the_maximum_or_without_one_the_job_is_only_read() {
        for (max, default) in [(Some(120), "30"), (None, "0"), (None, "")] {
            let server = cloud_bot(Some(90), 200).await;
            let vars: &[(&str, &str)] = &[("CLOUDBOT_MAX_RUN_SECONDS", default)];
            let service =
                service(&server.uri(), StandIn::holding(&secret(1), "v1"), vars).with_ledger(Some(
                    Ledger::new(MemoryLedger::with_max_run_s(max), Duration::from_secs(60)),
                ));
            let (_, body) = run(&service, refer()).await.unwrap();
            assert_eq!(body["status"], "executing");
            assert_eq!(suspends(&server).await, 0, "{max:?} {default}");
        }
    }

    #[tokio::test]
    async fn an_unreadable_ledger_or_an_unmeasurable_job_is_never_suspended_on_a_guess() {
        // The run's own maximum cannot be read: the default is not applied in its place.
        let server = cloud_bot(Some(90), 200).await;
        let unreadable = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "10")],
        )
        .with_ledger(Some(Ledger::new(
            MemoryLedger::max_unreadable(),
            Duration::from_secs(60),
        )));
        run(&unreadable, refer()).await.unwrap();
        assert_eq!(suspends(&server).await, 0);
        // Cloud BOT tells neither the elapsed time nor the start.
        let server = cloud_bot(None, 200).await;
        let unmeasurable = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "1")],
        );
        run(&unmeasurable, refer()).await.unwrap();
        assert_eq!(suspends(&server).await, 0);
    }

    #[tokio::test]
    async fn a_refused_suspend_names_the_permission_and_records_no_end() {
        let runs = MemoryLedger::default();
        let seen = Marks::default();
        let server = cloud_bot_seen(Some(90), 403, &runs, Arc::clone(&seen)).await;
        let service = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "60")],
        )
        .with_ledger(Some(Ledger::new(runs.clone(), Duration::from_secs(60))));
        let err = run(&service, refer()).await.unwrap_err();
        assert_eq!(err.kind().name, "Job.SuspendForbidden");
        assert!(err.to_string().contains("Suspend permission"), "{err}");
        assert!(runs.writes().is_empty());
        // The job runs on: the mark set before the suspend is taken away, so its own end is
        // recorded as what it reads.
        assert_eq!(*seen.lock().unwrap(), [Some("overrun")]);
        assert_eq!(runs.marks(), [Some("overrun"), None]);
    }

    #[tokio::test]
    async fn a_suspend_that_may_have_reached_cloud_bot_keeps_the_mark() {
        // No usable answer to the DELETE: the job may be suspended, and then reads `error`.
        let runs = MemoryLedger::default();
        let server = cloud_bot_seen(Some(90), 200, &runs, Marks::default()).await;
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "job_id": "j1", "bot_id": "b1", "status": 2,
                "elapsed_time": 90, "message": "The BOT is executing"})))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/demo/jobs/j1"))
            .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
            .mount(&server)
            .await;
        let service = service(
            &server.uri(),
            StandIn::holding(&secret(1), "v1"),
            &[("CLOUDBOT_MAX_RUN_SECONDS", "60")],
        )
        .with_ledger(Some(Ledger::new(runs.clone(), Duration::from_secs(60))));
        let err = run(&service, refer()).await.unwrap_err();
        assert!(
            matches!(
                err,
                Failure::CloudBot(CloudBotError::InvalidResponse { .. })
            ),
            "{err:?}"
        );
        assert_eq!(runs.marks(), [Some("overrun")]);
        assert!(runs.writes().is_empty());
    }
}
