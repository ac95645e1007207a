//! Job-finished events put on the stack's bus (`crate::job_events`, docs/events.md): a run's
//! end by the one learner that recorded it in the ledger (`Service::learned`), and an execute
//! Cloud BOT refused (provably no job) by the execute. Never fails the invocation: a failed put
//! is logged without secrets (the run, the detail type, the error code) and counted in
//! `EventPublishFailures`, and the caller answers as it would have.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::{DEADLINE_MARGIN, Scope, Service};
use crate::cloudbot::CloudBotError;
use crate::error::Failure;
use crate::idempotency::{Finish, finish_of};
use crate::job_events::detail_time;
use crate::job_events::{Ended, Event, JobEvents, NotStarted};
use crate::ledger::{EndedRun, Origin};
use crate::metrics::Invocation;
use crate::request::Execute;
use crate::trigger::Answer;

impl Service {
    /// Announces `ended`, whose end this invocation recorded.
    pub(super) async fn announce_end(
        &self,
        ended: &EndedRun,
        deadline: Instant,
        record: &mut Invocation,
    ) {
        if let Some(events) = &self.events {
            let event = Ended::of(ended).event();
            put(events, &event, ended.run.as_str(), deadline, record).await;
        }
    }

    /// Announces the execute `result` when Cloud BOT refused it: an answer that provably
    /// started no job (a 4xx; not a fault of ours, not a 5xx or a lost connection, which the
    /// caller retries and which may not even have reached Cloud BOT).
    pub(super) async fn announce_refused(
        &self,
        result: &Result<Answer, Failure>,
        execute: &Execute,
        origin: Origin,
        scope: Scope,
        record: &mut Invocation,
    ) {
        let (Some(events), Err(failure)) = (&self.events, result) else {
            return;
        };
        if !refused_by_cloud_bot(failure) {
            return;
        }
        let bot = &execute.bot;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let detail = NotStarted {
            bot: format!("{}/{}", bot.public_id().as_str(), bot.bot_id().as_str()),
            bot_endpoint: bot.url(),
            status: "not_started",
            error_type: failure.kind().name,
            message: failure.to_string(),
            refused_at: detail_time(now_ms),
            trigger: origin.trigger,
            schedule: origin.schedule.as_deref(),
            nominal_time: origin.nominal_time.as_deref(),
        };
        // The same share of the answering margin as the ledger's write of a start.
        let deadline = scope.deadline + DEADLINE_MARGIN / 2;
        put(events, &detail.event(), bot.url(), deadline, record).await;
    }
}

/// Cloud BOT answered the execute and refused it: no job exists, and the key (if any) was
/// released (`finish_of`).
fn refused_by_cloud_bot(failure: &Failure) -> bool {
    let Failure::CloudBot(err) = failure else {
        return false;
    };
    matches!(
        err,
        CloudBotError::Unauthorized
            | CloudBotError::Forbidden
            | CloudBotError::NotFound
            | CloudBotError::BadRequest { .. }
            | CloudBotError::PayloadTooLarge { .. }
            | CloudBotError::UnsupportedMediaType
            | CloudBotError::Unprocessable { .. }
            | CloudBotError::RateLimited { .. }
    ) && matches!(finish_of(err), Finish::Release)
}

/// Puts `event` about `subject` (a run's key or a BOT endpoint, never a token).
async fn put(
    events: &JobEvents,
    event: &Event,
    subject: &str,
    deadline: Instant,
    record: &mut Invocation,
) {
    match events.publish(event, deadline).await {
        Ok(()) => tracing::info!(
            subject,
            detail_type = event.detail_type.name(),
            "job-finished event put"
        ),
        Err(error) => {
            record.add_event_publish_failure();
            tracing::error!(
                subject,
                detail_type = event.detail_type.name(),
                error = %error,
                "could not put the job-finished event: the run goes on, this event is lost"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::fakes::{MemoryBus, MemoryLedger, waiting_callback};
    use super::super::testing::{Untouched, run, run_request, secret, service};
    use super::*;
    use crate::callback::fake::setup;
    use crate::credentials::StandIn;
    use crate::idempotency::Idempotency;
    use crate::job_events::DetailType;
    use crate::ledger::Ledger;
    use crate::request::Request;
    use crate::trigger::Trigger;

    const ENDED_JOB: &str = r#"{"code": 200, "job_id": "j1", "bot_id": "b1", "status": 0,
        "start_time": "2026-12-07T09:00:00Z", "message": "done", "elapsed_time": 7,
        "output": {"secret_output": "not-for-the-event"}}"#;

    async fn cloud_bot() -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(ENDED_JOB.as_bytes().to_vec(), "application/json"),
            )
            .mount(&server)
            .await;
        server
    }

    /// A service with a callback waiting for job j1 (token `task-token-t1`), the in-memory
    /// ledger and `bus`; the callback request and its raw id.
    async fn with_waiting_callback(
        server: &MockServer,
        bus: &MemoryBus,
    ) -> (Service, Request, String) {
        let (callbacks, shared) = setup();
        let (callback, raw_id) =
            waiting_callback(&callbacks, &shared, server, "task-token-t1").await;
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[])
            .with_idempotency(Some(Idempotency::new(
                Untouched,
                Duration::from_secs(86_400),
            )))
            .with_callbacks(Some(callbacks))
            .with_ledger(Some(Ledger::new(
                MemoryLedger::default(),
                Duration::from_secs(86_400),
            )))
            .with_job_events(Some(JobEvents::new(bus.clone())));
        (service, callback, raw_id)
    }

    fn refer_j1() -> Value {
        json!({"operation": "refer_job", "public_id": "demo", "job_id": "j1"})
    }

    #[tokio::test]
    async fn a_callback_and_a_poll_learning_one_end_at_once_put_one_event() {
        let server = cloud_bot().await;
        let bus = MemoryBus::default();
        let (service, callback, raw_id) = with_waiting_callback(&server, &bus).await;
        let (by_callback, by_poll, by_second_poll) = tokio::join!(
            run_request(&service, &callback),
            run(&service, refer_j1()),
            run(&service, refer_j1()),
        );
        assert_eq!(by_callback.unwrap().0, 200);
        assert_eq!(by_poll.unwrap().0, 200);
        assert_eq!(by_second_poll.unwrap().0, 200);
        // Cloud BOT's retry of the callback and a later poll: nothing new.
        run_request(&service, &callback).await.unwrap();
        run(&service, refer_j1()).await.unwrap();

        let details = bus.details();
        assert_eq!(details.len(), 1, "{details:?}");
        let (detail_type, detail) = &details[0];
        assert_eq!(*detail_type, DetailType::Succeeded);
        assert_eq!(detail["run"], "demo/j1");
        assert_eq!(detail["bot"], "demo/b1");
        assert_eq!(detail["status"], "succeeded");
        assert_eq!(detail["started_at"], "2026-12-07T09:00:00Z");
        assert_eq!(
            (detail["elapsed_s"].clone(), detail["message"].clone()),
            (json!(7), json!("done"))
        );
        assert_eq!(
            detail["job_endpoint"],
            format!("{}/demo/jobs/j1", server.uri())
        );
        let text = format!("{:?}", bus.events());
        for secret in [
            "task-token-t1",
            raw_id.as_str(),
            "tok-1",
            "sec-1",
            "not-for-the-event",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[tokio::test]
    async fn a_bus_that_refuses_is_counted_and_the_answer_goes_out_as_before() {
        let server = cloud_bot().await;
        let bus = MemoryBus::refusing();
        let (service, _, _) = with_waiting_callback(&server, &bus).await;
        let request = crate::request::parse_map(
            refer_j1().as_object().unwrap().clone(),
            &service.config.requests,
        )
        .unwrap();
        let scope = Scope {
            language: request.language,
            deadline: Instant::now() + Duration::from_secs(10),
            retry_budget: Duration::from_secs(1),
            trigger: Trigger::Direct,
        };
        let mut record = service.metrics.start("direct", "test");
        let answer = service
            .run(&request, scope, "test", &mut record)
            .await
            .unwrap();
        assert_eq!(answer.http_status, 200);
        let emf: Value = serde_json::from_str(&service.metrics.render(
            &record,
            Duration::from_millis(1),
            SystemTime::now(),
        ))
        .unwrap();
        assert_eq!(emf["EventPublishFailures"], 1, "{emf}");
        assert_eq!(emf["Failures"], 0, "{emf}");
    }

    #[tokio::test]
    async fn an_execute_cloud_bot_refuses_is_announced_as_failed_to_start_and_a_5xx_is_not() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/demo/bots/missing/jobs"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                "code": 404, "message": "BOT not found"
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/demo/bots/down/jobs"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let bus = MemoryBus::default();
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[])
            .with_ledger(Some(Ledger::new(
                MemoryLedger::default(),
                Duration::from_secs(86_400),
            )))
            .with_job_events(Some(JobEvents::new(bus.clone())));
        let err = run(&service, json!({"public_id": "demo", "bot_id": "missing"}))
            .await
            .unwrap_err();
        let error_type = err.kind().name;
        run(&service, json!({"public_id": "demo", "bot_id": "down"}))
            .await
            .unwrap_err();

        let details = bus.details();
        assert_eq!(details.len(), 1, "{details:?}");
        let (detail_type, detail) = &details[0];
        assert_eq!(*detail_type, DetailType::FailedToStart);
        assert_eq!(detail["bot"], "demo/missing");
        assert_eq!(detail["status"], "not_started");
        assert_eq!(detail["error_type"], error_type);
        assert_eq!(detail["trigger"], "direct");
        assert!(!detail.to_string().contains("tok-1"), "{detail}");
    }
}
