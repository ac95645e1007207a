//! The reads: `refer_job` (one job) and `list_bots` (the API-published BOTs of a contract).
//! Reads are idempotent by nature: they never touch the idempotency store. What `refer_job`
//! learns goes to the run ledger (`Service::learned`).

use super::{Scope, Service, answer, upstream, with_refresh};
use crate::cloudbot::{JobEndpoint, PublicId};
use crate::error::Failure;
use crate::metrics::Invocation;
use crate::trigger::Answer;

impl Service {
    /// `refer_job`: the job at `job`.
    pub(super) async fn refer_job(
        &self,
        job: &JobEndpoint,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let fetched = self
            .credentials
            .get(job.public_id(), scope.deadline)
            .await?;
        record.set_job(job.job_id().as_str());
        let found = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, job),
            |_| (Some(200), None)
        ))?;
        // A running job is measured, and suspended past its maximum run time.
        let found = self
            .watch_running(job, found, &fetched, scope, record)
            .await?;
        // The state machines' polling loops learn a job's end here.
        self.learned(job, &found, None, scope.deadline, record)
            .await;
        answer::found(&found, job)
    }

    /// `list_bots`: the BOTs of `public_id` published via the API.
    pub(super) async fn list_bots(
        &self,
        public_id: &PublicId,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let fetched = self.credentials.get(public_id, scope.deadline).await?;
        let bots = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.list_bots(&call, public_id),
            |_| (Some(200), None)
        ))?;
        answer::bots(public_id, &bots)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::testing::{run, secret, service};
    use crate::credentials::StandIn;
    use crate::error::Failure;

    /// Cloud BOT answering `GET /demo/jobs/j1` with 401 to `tok-1` and the job to `tok-2`.
    async fn cloud_bot() -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .and(header("access-token", "tok-1"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/demo/jobs/j1"))
            .and(header("access-token", "tok-2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "job_id": "j1", "bot_id": "b1", "status": 0, "output": {"a": 1}
            })))
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn a_read_rejected_with_401_is_made_once_more_with_the_rotated_secret() {
        let server = cloud_bot().await;
        let source = StandIn::holding(&secret(1), "v1");
        let service = service(&server.uri(), source.clone(), &[]);
        let job = json!({"operation": "refer_job", "public_id": "demo", "job_id": "j1"});
        // Cached first, then rotated behind the cache's back.
        service
            .credentials
            .get(
                &super::super::testing::demo(),
                tokio::time::Instant::now() + std::time::Duration::from_secs(5),
            )
            .await
            .unwrap();
        source.set(&secret(2), "v2");
        let (status, body) = run(&service, job).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            (body["job_id"].as_str(), body["status"].as_str()),
            (Some("j1"), Some("succeeded"))
        );
        assert_eq!(body["output"], json!({"a": 1}));
        assert_eq!(source.reads(), 2);
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_401_to_an_unchanged_secret_stands_after_one_re_read() {
        let server = cloud_bot().await;
        let source = StandIn::holding(&secret(1), "v1");
        let service = service(&server.uri(), source.clone(), &[]);
        let job = json!({"operation": "refer_job", "public_id": "demo", "job_id": "j1"});
        let err = run(&service, job).await.unwrap_err();
        assert!(
            matches!(
                err,
                Failure::CloudBot(crate::cloudbot::CloudBotError::Unauthorized)
            ),
            "{err:?}"
        );
        assert_eq!(source.reads(), 2, "one read, one re-read");
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "not sent again"
        );
    }

    #[tokio::test]
    async fn list_bots_answers_each_bot_with_its_execution_endpoint() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/bots"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "bots": [{"id": "b1", "name": "Echo"}]
            })))
            .mount(&server)
            .await;
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[]);
        let (status, body) = run(
            &service,
            json!({"operation": "list_bots", "public_id": "demo"}),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["bots"][0]["bot_id"], "b1");
        assert_eq!(
            body["bots"][0]["bot_endpoint"],
            format!("{}/demo/bots/b1/jobs", server.uri())
        );
    }

    #[tokio::test]
    async fn list_bots_lists_every_id_and_hostile_ones_without_an_endpoint() {
        // (id Cloud BOT lists, its endpoint path or None when no endpoint can carry it).
        let table: &[(&str, Option<&str>)] = &[
            ("get_items", Some("/demo/bots/get_items/jobs")),
            ("echo.v2~beta", Some("/demo/bots/echo.v2~beta/jobs")),
            ("...", Some("/demo/bots/.../jobs")),
            (".", None),
            ("..", None),
            ("../other", None),
            ("a/b", None),
            ("a%2Fb", None),
            ("%2e%2e", None),
            ("a?x=1", None),
            ("a#frag", None),
            ("a@evil.example", None),
            ("evil.example:443", None),
            ("a b", None),
            ("a\\b", None),
            ("請求書", None),
            ("botа", None), // Cyrillic a
            ("", None),
        ];
        let listed: Vec<_> = table.iter().map(|(id, _)| json!({"id": id})).collect();
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/demo/bots"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"code": 200, "bots": listed})),
            )
            .mount(&server)
            .await;
        let service = service(&server.uri(), StandIn::holding(&secret(1), "v1"), &[]);
        let (status, body) = run(
            &service,
            json!({"operation": "list_bots", "public_id": "demo"}),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        let bots = body["bots"].as_array().unwrap();
        assert_eq!(bots.len(), table.len(), "every BOT is listed");
        for ((id, expected), bot) in table.iter().zip(bots) {
            assert_eq!(bot["bot_id"], *id);
            match expected {
                Some(p) => {
                    assert_eq!(
                        bot["bot_endpoint"],
                        format!("{}{p}", server.uri()),
                        "{id:?}"
                    );
                    assert!(bot.get("warning").is_none(), "{id:?}");
                }
                None => {
                    assert_eq!(bot["bot_endpoint"], serde_json::Value::Null, "{id:?}");
                    let warning = bot["warning"].as_str().unwrap();
                    assert!(warning.starts_with("The BOT id "), "{id:?}: {warning}");
                    // The warning names the problem, never the id (it is in `bot_id`).
                    assert!(id.len() < 3 || !warning.contains(id), "{id:?}: {warning}");
                }
            }
        }
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}
