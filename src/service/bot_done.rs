//! Cloud BOT's "BOT done" webhook for a subscribed BOT (`POST
//! …/callbacks/bot-done/{public_id}/{bot_id}/{token}`): how a run started outside AWS (Cloud BOT's
//! console, its own schedules, kintone, Zapier) reaches the run ledger and the job-finished
//! events. Story, answers and limits: docs/events.md, "Runs started outside AWS".
//!
//! The webhook is unsigned, so it is a signal to look, never the result:
//! 1. nothing to record without the run ledger; a contract without a secret here is ignored
//!    with nothing read;
//! 2. the path token is compared with the one the contract's (cached) secret key gives the BOT
//!    (`crate::bot_done`): a random or stale POST costs no Cloud BOT call;
//! 3. the job the body names is re-read with `refer_job` on the configured API base, under the
//!    path's contract (a URL in the body is never followed): a job that does not exist or is
//!    another BOT's is ignored, one that does not read as ended yet is answered
//!    `Callback.NotReady` so Cloud BOT delivers it again later;
//! 4. the end goes to the ledger's conditional end write (`Service::learned_outside`): the one
//!    learner that records it counts usage and puts the event, so a run of ours that another
//!    path already recorded, or a second delivery of the same end, adds and announces nothing.
//!
//! Every ignored delivery gets the same answer, 200 `ignored` (Cloud BOT must not retry it, and
//! the answer tells a prober nothing); the reason is logged, never the token.

use super::{Scope, Service, answer, upstream, with_refresh};
use crate::bot_done::BotDone;
use crate::callback::CallbackError;
use crate::cloudbot::CloudBotError;
use crate::error::Failure;
use crate::ledger::Learned;
use crate::metrics::Invocation;
use crate::trigger::Answer;

/// Why a delivery was ignored (logged; never in the answer).
#[derive(Debug, Clone, Copy)]
enum Ignored {
    NoLedger,
    UnknownContract,
    Token,
    OtherBot,
    NoSuchJob,
}

impl Ignored {
    fn reason(self) -> &'static str {
        match self {
            Ignored::NoLedger => "no run ledger is configured, so nothing would record the run",
            Ignored::UnknownContract => "this function has no secret for the contract",
            Ignored::Token => {
                "the path token is not the one this contract's secret key gives the BOT (a \
                 forged URL, or a subscription made before the secret key was rotated: \
                 run `cloudbot subscribe` again)"
            }
            Ignored::OtherBot => "the job is not a job of the subscribed BOT",
            Ignored::NoSuchJob => "Cloud BOT has no such job",
        }
    }
}

fn ignored(why: Ignored) -> Result<Answer, Failure> {
    tracing::warn!(reason = why.reason(), "BOT-done delivery ignored");
    answer::bot_done("ignored")
}

impl Service {
    /// Receives a BOT-done delivery (steps in the module header).
    pub(super) async fn receive_bot_done(
        &self,
        done: &BotDone,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        if self.ledger.is_none() {
            return ignored(Ignored::NoLedger);
        }
        let public_id = done.bot.public_id();
        if self.credentials.provider(public_id).is_err() {
            return ignored(Ignored::UnknownContract);
        }
        let fetched = self.credentials.get(public_id, scope.deadline).await?;
        if !done.token_matches(&fetched.credentials) {
            return ignored(Ignored::Token);
        }
        let bot_id = done.bot.bot_id().as_str();
        if done.body_bot_id.as_deref().is_some_and(|b| b != bot_id) {
            return ignored(Ignored::OtherBot);
        }
        record.set_job(done.job.job_id().as_str());
        let read = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, &done.job),
            |_| (Some(200), None)
        ));
        let found = match read {
            Err(Failure::CloudBot(CloudBotError::NotFound)) => {
                return ignored(Ignored::NoSuchJob);
            }
            other => other?,
        };
        if found.bot_id != bot_id {
            return ignored(Ignored::OtherBot);
        }
        if !found.status.is_final() {
            tracing::info!(
                status = found.status.label(),
                "BOT-done delivery for a job that does not read as ended yet: Cloud BOT is \
                 asked to deliver it again"
            );
            return Err(CallbackError::NotReady.into());
        }
        match self
            .learned_outside(&done.job, &found, scope.deadline, record)
            .await
        {
            Learned::EndRecorded => {
                tracing::info!(status = found.status.label(), "BOT-done: run end recorded");
                answer::bot_done("recorded")
            }
            Learned::AlreadyEnded | Learned::Noted => {
                tracing::info!("BOT-done: the run's end was recorded before: nothing to do");
                answer::bot_done("already_recorded")
            }
            Learned::Off => ignored(Ignored::NoLedger),
            // Logged and counted by `learned`; Cloud BOT delivers it again.
            Learned::Failed => {
                Err(CallbackError::Unavailable("the run ledger could not be written".into()).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::fakes::{MemoryBus, MemoryLedger};
    use super::super::testing::{run_request, secret, service};
    use super::*;
    use crate::bot_done::{parse, path_token};
    use crate::cloudbot::{ApiBase, BotId, Credentials, PublicId};
    use crate::credentials::StandIn;
    use crate::job_events::JobEvents;
    use crate::ledger::Ledger;
    use crate::request::{Operation, Request};

    async fn cloud_bot(job_id: &str, bot_id: &str, status: i64) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/demo/jobs/{job_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "job_id": job_id, "bot_id": bot_id, "status": status,
                "start_time": "2026-12-07T09:00:00Z", "elapsed_time": 4, "message": "done",
                "output": {"secret_output": "not-for-the-event"}
            })))
            .mount(&server)
            .await;
        server
    }

    fn wired(server: &MockServer) -> (Service, MemoryLedger, MemoryBus) {
        let (runs, bus) = (MemoryLedger::default(), MemoryBus::default());
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[])
            .with_ledger(Some(Ledger::new(runs.clone(), Duration::from_secs(86_400))))
            .with_job_events(Some(JobEvents::new(bus.clone())));
        (service, runs, bus)
    }

    /// The token the demo secret (`sec-1`) gives `demo/<bot>`.
    fn token(bot: &str) -> String {
        path_token(
            &Credentials::new("tok-1".into(), "sec-1".into()),
            &PublicId::parse("demo", "p").unwrap(),
            &BotId::parse(bot, "b").unwrap(),
        )
    }

    fn delivery(server: &MockServer, bot: &str, token: &str, body: Value) -> Request {
        let base = ApiBase::parse(&server.uri()).unwrap();
        let body = serde_json::to_vec(&body).unwrap();
        Request {
            operation: Operation::BotDone(parse(&base, "demo", bot, token, &body).unwrap()),
            language: crate::cloudbot::Language::Ja,
        }
    }

    #[tokio::test]
    async fn an_outside_run_is_re_read_recorded_and_announced_once() {
        let server = cloud_bot("j1", "b1", 0).await;
        let (service, runs, bus) = wired(&server);
        // The body's status and URLs are not believed: only the job id is taken.
        let request = delivery(
            &server,
            "b1",
            &token("b1"),
            json!({"code": 201, "job_id": "j1", "bot_id": "b1", "status": 1,
                   "job_reference_endpoint": "https://evil.example/demo/jobs/j1"}),
        );
        let (status, body) = run_request(&service, &request).await.unwrap();
        assert_eq!(
            (status, body),
            (
                200,
                json!({"operation": "bot_done", "delivery": "recorded"})
            )
        );
        // Cloud BOT's second delivery of the same end.
        let (_, body) = run_request(&service, &request).await.unwrap();
        assert_eq!(body["delivery"], "already_recorded");
        let writes = runs.writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(writes[0].trigger_if_unset, Some("outside"));
        assert_eq!(writes[0].end.as_ref().unwrap().status, "succeeded");
        let events = bus.events();
        assert_eq!(events.len(), 1);
        let detail: Value = serde_json::from_str(&events[0].detail).unwrap();
        assert_eq!(
            (&detail["trigger"], &detail["bot"], &detail["status"]),
            (&json!("outside"), &json!("demo/b1"), &json!("succeeded"))
        );
        assert!(!events[0].detail.contains("not-for-the-event"));
        assert!(!events[0].detail.contains(&token("b1")));
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_forged_token_costs_no_call_and_records_nothing() {
        let server = cloud_bot("j1", "b1", 0).await;
        let (service, runs, bus) = wired(&server);
        for (bot, token) in [
            ("b1", "A".repeat(43)),
            ("b1", "short".to_owned()),
            // Another BOT's token.
            ("b1", token("b2")),
        ] {
            let request = delivery(&server, bot, &token, json!({"job_id": "j1"}));
            let (status, body) = run_request(&service, &request).await.unwrap();
            assert_eq!((status, &body["delivery"]), (200, &json!("ignored")));
        }
        assert!(server.received_requests().await.unwrap().is_empty());
        assert!(runs.writes().is_empty());
        assert!(bus.events().is_empty());
    }

    #[tokio::test]
    async fn a_job_that_does_not_exist_or_is_another_bots_is_ignored() {
        let server = cloud_bot("j1", "b2", 0).await;
        let (service, runs, bus) = wired(&server);
        // No such job: Cloud BOT answers 404.
        let missing = delivery(&server, "b1", &token("b1"), json!({"job_id": "nope"}));
        let (_, body) = run_request(&service, &missing).await.unwrap();
        assert_eq!(body["delivery"], "ignored");
        // j1 is b2's job: a b1 subscription cannot record it.
        let other = delivery(&server, "b1", &token("b1"), json!({"job_id": "j1"}));
        let (_, body) = run_request(&service, &other).await.unwrap();
        assert_eq!(body["delivery"], "ignored");
        // The body names another BOT than the path: ignored before any call.
        let calls = server.received_requests().await.unwrap().len();
        let mismatch = delivery(
            &server,
            "b1",
            &token("b1"),
            json!({"job_id": "j1", "bot_id": "b2"}),
        );
        let (_, body) = run_request(&service, &mismatch).await.unwrap();
        assert_eq!(body["delivery"], "ignored");
        assert_eq!(server.received_requests().await.unwrap().len(), calls);
        assert!(runs.writes().is_empty());
        assert!(bus.events().is_empty());
    }

    #[tokio::test]
    async fn a_job_still_executing_is_delivered_again_later() {
        let server = cloud_bot("j1", "b1", 2).await;
        let (service, runs, _) = wired(&server);
        let request = delivery(&server, "b1", &token("b1"), json!({"job_id": "j1"}));
        let err = run_request(&service, &request).await.unwrap_err();
        assert!(
            matches!(err, Failure::Callback(CallbackError::NotReady)),
            "{err:?}"
        );
        assert!(runs.writes().is_empty());
    }

    #[tokio::test]
    async fn without_a_ledger_nothing_is_read() {
        let server = cloud_bot("j1", "b1", 0).await;
        let source = StandIn::holding(&secret(1), "v1");
        let service = service(&server.uri(), source.clone(), &[]);
        let request = delivery(&server, "b1", &token("b1"), json!({"job_id": "j1"}));
        let (_, body) = run_request(&service, &request).await.unwrap();
        assert_eq!(body["delivery"], "ignored");
        assert_eq!(source.reads(), 0);
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}
