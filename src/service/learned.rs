//! `Service::learned`: the one function every path that learns a job's state calls (the execute
//! answer, `refer_job` and so the state machines' polling loops, the callback receiver), and the
//! only writer of the run ledger (docs/ledger.md). The end of a schedule's run it records is
//! counted for the schedule's failure breaker (`breaker`). It never fails the invocation: a failed
//! write is logged without secrets, counted in `LedgerWriteFailures`, and the caller answers as
//! it would have.

use tokio::time::Instant;

use super::Service;
use crate::cloudbot::{Job, JobEndpoint};
use crate::ledger::{Learned, Observed, Origin};
use crate::metrics::Invocation;

/// Which ledger write a learning becomes.
#[derive(Clone, Copy)]
enum Write {
    /// What a path learned (with the origin when it started the run).
    Learned,
    /// The end of a run this product suspended: [`OVERRUN`](crate::ledger::OVERRUN) past its maximum run time, or
    /// [`ORPHANED`](crate::ledger::ORPHANED) because its workflow ended.
    Suspended(&'static str),
    /// A run learned from the BOT-done webhook.
    Outside,
}

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
        self.learned_as(endpoint, found, origin, Write::Learned, deadline, record)
            .await
    }

    /// Records the end of a run whose job this product suspended (`found`: the job as re-read
    /// after the suspend): the same conditional end write, its status `status`, [`OVERRUN`](crate::ledger::OVERRUN)
    /// past its maximum run time (docs/overrun.md) or [`ORPHANED`](crate::ledger::ORPHANED) because its workflow
    /// failed, timed out or was stopped (docs/orphans.md).
    pub(super) async fn learned_suspended(
        &self,
        endpoint: &JobEndpoint,
        found: &Job,
        status: &'static str,
        deadline: Instant,
        record: &mut Invocation,
    ) -> Learned {
        self.learned_as(
            endpoint,
            found,
            None,
            Write::Suspended(status),
            deadline,
            record,
        )
        .await
    }

    /// Records a run learned from Cloud BOT's "BOT done" webhook (`service/bot_done.rs`): the
    /// same conditional end write, its `trigger` `outside` unless a start of ours wrote one.
    pub(super) async fn learned_outside(
        &self,
        endpoint: &JobEndpoint,
        found: &Job,
        deadline: Instant,
        record: &mut Invocation,
    ) -> Learned {
        self.learned_as(endpoint, found, None, Write::Outside, deadline, record)
            .await
    }

    async fn learned_as(
        &self,
        endpoint: &JobEndpoint,
        found: &Job,
        origin: Option<Origin>,
        write: Write,
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
            output_omitted: found.output_omitted,
        };
        let written = match write {
            Write::Suspended(status) => {
                ledger
                    .suspended_end(endpoint, &observed, status, deadline)
                    .await
            }
            Write::Outside => ledger.outside_end(endpoint, &observed, deadline).await,
            Write::Learned => {
                ledger
                    .learned_end(endpoint, &observed, origin, deadline)
                    .await
            }
        };
        match written {
            Ok((learned, ended)) => {
                tracing::debug!(
                    job_id = endpoint.job_id().as_str(),
                    status = found.status.label(),
                    learned = ?learned,
                    "run ledger updated"
                );
                // The one learner that recorded a schedule's run's end counts it for the
                // failure breaker: this is how RunBot's polling (refer_job, which knows no
                // key) is counted. Execute and the callback receiver have counted it already
                // from the key (`counted_job` makes this a no-op then).
                if let Some(ended) = ended.as_ref()
                    && let Some(schedule) = ended.schedule.as_deref()
                {
                    self.count_end(
                        schedule,
                        ended.nominal_time.as_deref(),
                        endpoint.url(),
                        found.status,
                        deadline,
                        record,
                    )
                    .await;
                }
                // The one learner that recorded the end counts its BOT-seconds (docs/usage.md)
                // and announces it (docs/events.md).
                if let Some(ended) = &ended {
                    self.count_usage(endpoint, ended, deadline, record).await;
                    self.announce_end(ended, deadline, record).await;
                    // Its admission slot is free again (docs/queue.md, "Admission control").
                    // Boxed: `learned` is inside every flow's future, kept small.
                    Box::pin(self.release_ended(ended, deadline)).await;
                }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::fakes::{MemoryLedger, waiting_callback};
    use super::super::testing::{Untouched, run, run_request, secret, service};
    use crate::callback::fake::setup;
    use crate::credentials::StandIn;
    use crate::idempotency::Idempotency;
    use crate::ledger::Ledger;

    #[tokio::test]
    async fn the_callback_receiver_records_the_end_once_and_nothing_secret() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "job_id": "j1", "bot_id": "b1", "status": 1,
                "message": "the BOT failed", "elapsed_time": 7,
                "output": {"secret_output": "not-for-the-ledger"}
            })))
            .mount(&server)
            .await;
        let (callbacks, shared) = setup();
        let (callback, raw_id) =
            waiting_callback(&callbacks, &shared, &server, "task-token-t1").await;
        let ledger = MemoryLedger::default();
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[])
            .with_idempotency(Some(Idempotency::new(
                Untouched,
                Duration::from_secs(86_400),
            )))
            .with_callbacks(Some(callbacks))
            .with_ledger(Some(Ledger::new(
                ledger.clone(),
                Duration::from_secs(86_400),
            )));
        let (status, _) = run_request(&service, &callback).await.unwrap();
        assert_eq!(status, 200);
        // Cloud BOT's retry: answered from the callback record, nothing learned again.
        run_request(&service, &callback).await.unwrap();

        let writes = ledger.writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        let end = writes[0].end.clone().expect("the end");
        assert_eq!((end.status, end.elapsed_s), ("error", 7));
        assert_eq!(end.message.as_deref(), Some("the BOT failed"));
        assert_eq!(writes[0].run.as_str(), "demo/j1");
        assert_eq!(writes[0].bot.as_deref(), Some("demo/b1"));
        let text = format!("{writes:?}");
        for secret in [
            "task-token-t1",
            raw_id.as_str(),
            "tok-1",
            "sec-1",
            "not-for-the-ledger",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[tokio::test]
    async fn a_finished_job_over_the_response_cap_is_answered_and_recorded_without_its_output() {
        // Past the client's 1 MiB cap (docs/client.md, "Oversized outputs").
        let big = "x".repeat(1_536 * 1024);
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "job_id": "j1", "bot_id": "b1", "status": 0,
                "elapsed_time": 5, "output": {"report": big}, "message": "done"
            })))
            .mount(&server)
            .await;
        let ledger = MemoryLedger::default();
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[]).with_ledger(
            Some(Ledger::new(ledger.clone(), Duration::from_secs(86_400))),
        );
        let (status, body) = run(
            &service,
            json!({"operation": "refer_job", "public_id": "demo", "job_id": "j1"}),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        // Finished, not an error: the status is read, the output is said to be left out.
        assert_eq!(body["status"], "succeeded");
        assert_eq!(body["output"], serde_json::Value::Null);
        assert_eq!(body["output_omitted"], true);
        assert!(
            body["output_note"]
                .as_str()
                .unwrap()
                .contains("job_reference_endpoint")
        );
        let writes = ledger.writes();
        let end = writes[0].end.clone().expect("the end");
        assert_eq!((end.status, end.output_omitted), ("succeeded", true));
    }
}
