//! The Cloud BOT HTTP client, built once at cold start on the pools of `transport.rs`: its
//! settings and the operations (list contracts, list BOTs, execute, refer job, suspend job, list
//! jobs), each one request sent and retried by `exchange.rs`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header;
use serde::Deserialize;

use super::base::{ApiBase, EndpointProblem};
use super::endpoint::{BotEndpoint, BotId, JobEndpoint, JobId, PublicId};
use super::error::{Cause, CloudBotError};
use super::exchange::{self, Call, Op, Reply};
use super::model::{
    Bot, BotList, Contract, ContractList, ExecuteBody, ExecuteRequest, Job, JobList, JobQuery,
    Started,
};
use super::retry::Safety;
use super::transport::{ApiWarmUp, Transport, TransportSettings, WarmUp};

/// Largest request body the service accepts ([D]: 4 MB); bigger bodies are refused locally, and
/// the request parser checks the execute input against it before any call.
pub const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// Default timeout for establishing a connection (TCP + TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3_000);

/// Default timeout of one attempt. Below API Gateway's 30 s integration timeout, so an HTTP
/// caller gets our answer rather than API Gateway's.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(25_000);

/// How long an idle keep-alive connection stays in the reads' pool by default: a warm Lambda
/// reuses it across invocations, and a read written into a connection that died meanwhile is
/// retried safely.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle connection stays in the execute POST's own pool by default: back-to-back
/// executes of a burst share one connection, while an execute after a longer gap (a sandbox
/// frozen between sporadic events) always goes on a fresh one, because nothing can tell a
/// connection dropped silently on the way from a live one, and an execute written into it
/// could only end as an unknown outcome. Why this value: docs/client.md, "Idle connections and
/// frozen sandboxes".
pub const DEFAULT_EXECUTE_REUSE_WINDOW: Duration = Duration::from_secs(1);

/// Settings for [`CloudBotClient::new`].
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The only origin requests (and credentials) go to.
    pub base: ApiBase,
    /// Timeout for establishing a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Timeout for one attempt (send + whole answer); always capped by the call's deadline.
    pub request_timeout: Duration,
    /// How long an idle connection stays in the reads' pool for reuse.
    pub pool_idle_timeout: Duration,
    /// How long an idle connection stays in the execute POST's pool for reuse (zero: never).
    pub execute_reuse_window: Duration,
    /// PEM certificates trusted besides the compiled-in roots: tests against local HTTPS
    /// stand-ins only (`Config::test_only_extra_ca`). `None` in any deployment.
    pub test_only_extra_roots: Option<Vec<u8>>,
    /// `user-agent` header.
    pub user_agent: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            base: ApiBase::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            execute_reuse_window: DEFAULT_EXECUTE_REUSE_WINDOW,
            test_only_extra_roots: None,
            user_agent: default_user_agent(),
        }
    }
}

/// `cloudbot-trigger/<crate version>`.
fn default_user_agent() -> String {
    format!("cloudbot-trigger/{}", env!("CARGO_PKG_VERSION"))
}

/// Client for the Cloud BOT REST API. Build it once (cold start) and clone it freely: clones
/// share the connection pool.
#[derive(Debug, Clone)]
pub struct CloudBotClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    base: ApiBase,
    request_timeout: Duration,
}

impl CloudBotClient {
    /// Build the client (rustls, timeouts, no redirects; a keep-alive pool for the reads and one
    /// for the execute POST, see `transport.rs`). Call once per process.
    pub fn new(settings: ClientSettings) -> Result<Self, CloudBotError> {
        let transport = Transport::new(&TransportSettings {
            base: &settings.base,
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            user_agent: &settings.user_agent,
            test_only_extra_roots: settings.test_only_extra_roots.as_deref(),
            pool_idle_timeout: settings.pool_idle_timeout,
            execute_reuse_window: settings.execute_reuse_window,
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                base: settings.base,
                request_timeout: settings.request_timeout,
            }),
        })
    }

    /// The configured API base.
    pub fn base(&self) -> &ApiBase {
        &self.inner.base
    }

    /// Prepares the first request's connection during init as `mode` says, within `bound` (see
    /// `transport.rs`). Never fails the caller: the outcome says what happened.
    pub async fn warm_up(&self, mode: ApiWarmUp, bound: Duration) -> WarmUp {
        self.inner
            .transport
            .warm_up(&self.inner.base, mode, bound)
            .await
    }

    /// `GET /{public_id}/bots`: every API-published BOT of the contract, each with its BOT
    /// execution endpoint `{base}/{public_id}/bots/{bot_id}/jobs` [I], or, for a BOT whose id
    /// falls outside the accepted id set (docs/client.md, "Endpoint rules"), why no endpoint can be built
    /// for it: such a BOT is listed, never dropped, and counted in a warning.
    pub async fn list_bots(
        &self,
        call: &Call<'_>,
        public_id: &PublicId,
    ) -> Result<Vec<(Bot, Result<BotEndpoint, EndpointProblem>)>, CloudBotError> {
        let url = self
            .inner
            .base
            .join(&format!("/{}/bots", public_id.as_str()));
        let answer = self
            .exchange(
                call,
                Op {
                    method: Method::GET,
                    template: "/{public_id}/bots",
                    url: &url,
                    body: None,
                    safety: Safety::Idempotent,
                    job_answer: false,
                },
            )
            .await?;
        let list: BotList =
            serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
                status: answer.status,
                detail: "body is not a BOT list",
            })?;
        let bots: Vec<_> = list
            .bots
            .into_iter()
            .map(|bot| {
                let endpoint = BotId::parse(&bot.id, "bots[].id")
                    .map(|id| BotEndpoint::new(&self.inner.base, public_id.clone(), id))
                    .map_err(|e| e.reason);
                (bot, endpoint)
            })
            .collect();
        let unaddressable = bots.iter().filter(|(_, e)| e.is_err()).count();
        if unaddressable > 0 {
            tracing::warn!(
                unaddressable,
                "BOTs listed without an execution endpoint: their ids fall outside the accepted id set"
            );
        }
        Ok(bots)
    }

    /// `GET /services/contracts?properties=name,plan`: the contracts these credentials can see
    /// (Refer permission). Contracts whose public id falls outside the accepted id charset are
    /// left out (no validated endpoint could name them) and counted in a warning.
    pub async fn list_contracts(
        &self,
        call: &Call<'_>,
    ) -> Result<Vec<(Contract, PublicId)>, CloudBotError> {
        let url = self
            .inner
            .base
            .join("/services/contracts?properties=name,plan");
        let answer = self
            .exchange(
                call,
                Op {
                    method: Method::GET,
                    template: "/services/contracts",
                    url: &url,
                    body: None,
                    safety: Safety::Idempotent,
                    job_answer: false,
                },
            )
            .await?;
        let list: ContractList =
            serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
                status: answer.status,
                detail: "body is not a contract list",
            })?;
        let total = list.contracts.len();
        let contracts: Vec<_> = list
            .contracts
            .into_iter()
            .filter_map(|c| {
                let id = PublicId::parse(&c.public_id, "contracts[].public_id").ok()?;
                Some((c, id))
            })
            .collect();
        if contracts.len() < total {
            tracing::warn!(
                skipped = total - contracts.len(),
                "contracts with public ids outside the accepted charset left out"
            );
        }
        Ok(contracts)
    }

    /// `GET /{public_id}/bots/{bot_id}/jobs`: the BOT's jobs, newest first, filtered by `query`
    /// (../shared §3.6). Each job comes with its job reference endpoint; jobs whose id falls
    /// outside the accepted charset are left out and counted in a warning.
    pub async fn list_jobs(
        &self,
        call: &Call<'_>,
        bot: &BotEndpoint,
        query: &JobQuery,
    ) -> Result<Vec<(Job, JobEndpoint)>, CloudBotError> {
        let mut url = format!("{}?sort_order=desc", bot.url());
        if let Some(limit) = query.limit {
            url.push_str(&format!("&limit={limit}"));
        }
        if let Some(since) = query.started_since {
            // RFC 3339 in UTC (`2026-01-31T09:00:00Z`): only digits, `-`, `:`, `T` and `Z`, all
            // valid in a query string as they are.
            url.push_str(&format!(
                "&datetime_from={}",
                humantime::format_rfc3339_seconds(since)
            ));
        }
        if !query.statuses.is_empty() {
            let codes: Vec<String> = query
                .statuses
                .iter()
                .map(|s| s.code().to_string())
                .collect();
            url.push_str(&format!("&statuses={}", codes.join(",")));
        }
        let answer = self
            .exchange(
                call,
                Op {
                    method: Method::GET,
                    template: "/{public_id}/bots/{bot_id}/jobs",
                    url: &url,
                    body: None,
                    safety: Safety::Idempotent,
                    job_answer: false,
                },
            )
            .await?;
        let list: JobList =
            serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
                status: answer.status,
                detail: "body is not a job list",
            })?;
        let total = list.jobs.len();
        let jobs: Vec<_> = list
            .jobs
            .into_iter()
            .filter_map(|job| {
                let id = JobId::parse(&job.job_id, "jobs[].job_id").ok()?;
                let endpoint = JobEndpoint::new(&self.inner.base, bot.public_id().clone(), id);
                Some((job, endpoint))
            })
            .collect();
        if jobs.len() < total {
            tracing::warn!(
                skipped = total - jobs.len(),
                "jobs with ids outside the accepted charset left out"
            );
        }
        Ok(jobs)
    }

    /// `POST /{public_id}/bots/{bot_id}/jobs`: start the BOT.
    ///
    /// Never retried once the request may have reached the server (see `retry.rs`); such
    /// failures come back as [`CloudBotError::OutcomeUnknown`]. A body over 4 MB is refused
    /// with [`CloudBotError::PayloadTooLarge`] before anything is sent.
    pub async fn execute(
        &self,
        call: &Call<'_>,
        bot: &BotEndpoint,
        req: &ExecuteRequest,
    ) -> Result<Started, CloudBotError> {
        let body =
            serde_json::to_vec(&ExecuteBody::from(req)).map_err(|_| CloudBotError::Internal {
                detail: "the execute request could not be encoded",
            })?;
        if body.len() > MAX_REQUEST_BODY {
            return Err(CloudBotError::PayloadTooLarge { size: body.len() });
        }
        let answer = self
            .exchange(
                call,
                Op {
                    method: Method::POST,
                    template: "/{public_id}/bots/{bot_id}/jobs",
                    url: bot.url(),
                    body: Some(body),
                    safety: Safety::ExecuteOnce,
                    job_answer: true,
                },
            )
            .await?;
        // From here on the server has answered "success": a job exists. Anything we cannot
        // read means the caller does not learn about it, hence OutcomeUnknown, never a retry.
        let unusable = CloudBotError::OutcomeUnknown { cause: Cause::Body };
        let mut job: Job = serde_json::from_slice(&answer.body).map_err(|_| unusable.clone())?;
        job.output_omitted = answer.output_dropped;
        let job_id = JobId::parse(&job.job_id, "job_id").map_err(|_| unusable.clone())?;
        let job_reference = self
            .server_job_reference(&answer, &job_id)
            .unwrap_or_else(|| JobEndpoint::new(&self.inner.base, bot.public_id().clone(), job_id));
        Ok(Started {
            job,
            job_reference,
            http_status: answer.status,
        })
    }

    /// `GET /{public_id}/jobs/{job_id}`: the job's current state (with `output` once finished;
    /// an answer over the response cap comes without it, `Job::output_omitted` set).
    pub async fn refer_job(
        &self,
        call: &Call<'_>,
        job: &JobEndpoint,
    ) -> Result<Job, CloudBotError> {
        self.job_call(call, job, Method::GET).await
    }

    /// `DELETE /{public_id}/jobs/{job_id}`: suspend the job. Idempotent, so retried like a read.
    pub async fn suspend_job(
        &self,
        call: &Call<'_>,
        job: &JobEndpoint,
    ) -> Result<Job, CloudBotError> {
        self.job_call(call, job, Method::DELETE).await
    }

    async fn job_call(
        &self,
        call: &Call<'_>,
        job: &JobEndpoint,
        method: Method,
    ) -> Result<Job, CloudBotError> {
        let answer = self
            .exchange(
                call,
                Op {
                    method,
                    template: "/{public_id}/jobs/{job_id}",
                    url: job.url(),
                    body: None,
                    safety: Safety::Idempotent,
                    job_answer: true,
                },
            )
            .await?;
        let mut job: Job =
            serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
                status: answer.status,
                detail: "body is not a job object",
            })?;
        job.output_omitted = answer.output_dropped;
        Ok(job)
    }

    /// The job reference endpoint the server announced, if any. [I] The API documents none; we
    /// look at a `Location` header first, then at the body fields `job_reference_endpoint`,
    /// `job_url`, `url`. A candidate is used only when it parses as a job endpoint on the
    /// configured base (credentials never follow a URL elsewhere) and names the job id the body
    /// reports; its public id may differ (the server knows where the job lives). A relative
    /// `Location` (`/demo/jobs/...`) is resolved against the base.
    /// Sends `op` on this client's pools, retried per `retry.rs`.
    pub(super) async fn exchange(
        &self,
        call: &Call<'_>,
        op: Op<'_>,
    ) -> Result<Reply, CloudBotError> {
        exchange::exchange(&self.inner.transport, self.inner.request_timeout, call, op).await
    }

    fn server_job_reference(&self, answer: &Reply, job_id: &JobId) -> Option<JobEndpoint> {
        #[derive(Deserialize)]
        struct UrlFields {
            job_reference_endpoint: Option<serde_json::Value>,
            job_url: Option<serde_json::Value>,
            url: Option<serde_json::Value>,
        }
        let base = &self.inner.base;
        let matches = |e: &JobEndpoint| e.job_id() == job_id;
        let location = answer
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|loc| {
                let absolute = if loc.starts_with('/') {
                    base.join(loc)
                } else {
                    loc.to_owned()
                };
                JobEndpoint::parse(base, &absolute, "location").ok()
            })
            .filter(matches);
        if location.is_some() {
            return location;
        }
        let fields: UrlFields = serde_json::from_slice(&answer.body).ok()?;
        [fields.job_reference_endpoint, fields.job_url, fields.url]
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .filter_map(|s| JobEndpoint::parse(base, &s, "job_reference_endpoint").ok())
            .find(matches)
    }
}
