//! The Cloud BOT HTTP client, built once at cold start on the pools of `transport.rs`: the operations
//! (list contracts, list BOTs, execute, refer job, suspend job, list jobs), header handling,
//! capped body reading, and the mapping of HTTP answers and transport failures to
//! [`CloudBotError`]. Which failures are retried is decided in `retry.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::time::Instant;

use super::credentials::Credentials;
use super::endpoint::{ApiBase, BotEndpoint, BotId, JobEndpoint, JobId, PublicId};
use super::error::{Cause, CloudBotError, sanitize_message};
use super::model::{
    Bot, BotList, Contract, ContractList, ErrorBody, ExecuteBody, ExecuteRequest, Job, JobList,
    JobQuery, Language, Started,
};
use super::retry::{self, AttemptEnd, MIN_ATTEMPT_TIME, Safety};
use super::transport::{ApiWarmUp, Transport, TransportSettings, WarmUpOutcome};

/// Largest request body the service accepts ([D]: 4 MB); bigger bodies are refused locally, and
/// the request parser checks the execute input against it before any call.
pub const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// Default timeout for establishing a connection (TCP + TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3_000);

/// Default timeout of one attempt. Below API Gateway's 30 s integration timeout, so an HTTP
/// caller gets our answer rather than API Gateway's.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(25_000);

/// Largest response body read (1 MiB). A job with its output is far smaller; anything bigger is
/// treated as an invalid answer instead of being buffered.
const MAX_RESPONSE_BODY: usize = 1024 * 1024;

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

/// Per-call context: who calls, in which language, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Access token + secret key.
    pub credentials: &'a Credentials,
    /// `content-language` of server messages.
    pub language: Language,
    /// No attempt starts, and no retry wait ends, after this instant (the Lambda's remaining
    /// time minus a safety margin).
    pub deadline: Instant,
    /// Most time the call may spend waiting between attempts, all waits together (backoff and
    /// `Retry-After`); a retry that would need more ends the call with the last error instead.
    /// [`Duration::MAX`] leaves only the deadline to bound it.
    pub retry_budget: Duration,
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

/// One logical request (retried as a whole).
struct Op<'a> {
    method: Method,
    /// Path template for logs, e.g. `/{public_id}/jobs/{job_id}`.
    template: &'static str,
    url: &'a str,
    body: Option<Vec<u8>>,
    safety: Safety,
}

/// A reply (any status) with its body read within the cap.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// How one attempt ended.
enum AttemptResult {
    /// The server answered and the body was read (any status).
    Answered(Reply),
    /// The server answered with a success status but the body was cut off.
    BodyCut { status: u16 },
    /// The server answered but the body exceeded [`MAX_RESPONSE_BODY`].
    BodyTooLarge { status: u16 },
    /// No answer.
    Failed(AttemptEnd),
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
    pub async fn warm_up(&self, mode: ApiWarmUp, bound: Duration) -> WarmUpOutcome {
        self.inner
            .transport
            .warm_up(&self.inner.base, mode, bound)
            .await
    }

    /// `GET /{public_id}/bots`: the contract's API-published BOTs, each with its BOT execution
    /// endpoint `{base}/{public_id}/bots/{bot_id}/jobs` [I]. BOTs whose id falls outside the
    /// accepted id charset are left out (they could not be executed through a validated
    /// endpoint) and counted in a warning.
    pub async fn list_bots(
        &self,
        call: &Call<'_>,
        public_id: &PublicId,
    ) -> Result<Vec<(Bot, BotEndpoint)>, CloudBotError> {
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
                },
            )
            .await?;
        let list: BotList =
            serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
                status: answer.status,
                detail: "body is not a BOT list",
            })?;
        let mut skipped = 0usize;
        let mut bots = Vec::with_capacity(list.bots.len());
        for bot in list.bots {
            match BotId::parse(&bot.id, "bots[].id") {
                Ok(bot_id) => {
                    let endpoint = BotEndpoint::new(&self.inner.base, public_id.clone(), bot_id);
                    bots.push((bot, endpoint));
                }
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                skipped,
                "BOTs with ids outside the accepted charset left out"
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
                },
            )
            .await?;
        // From here on the server has answered "success": a job exists. Anything we cannot
        // read means the caller does not learn about it, hence OutcomeUnknown, never a retry.
        let unusable = CloudBotError::OutcomeUnknown { cause: Cause::Body };
        let job: Job = serde_json::from_slice(&answer.body).map_err(|_| unusable.clone())?;
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

    /// `GET /{public_id}/jobs/{job_id}`: the job's current state (with `output` once finished).
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
                },
            )
            .await?;
        serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
            status: answer.status,
            detail: "body is not a job object",
        })
    }

    /// The job reference endpoint the server announced, if any. [I] The API documents none; we
    /// look at a `Location` header first, then at the body fields `job_reference_endpoint`,
    /// `job_url`, `url`. A candidate is used only when it parses as a job endpoint on the
    /// configured base (credentials never follow a URL elsewhere) and names the job id the body
    /// reports; its public id may differ (the server knows where the job lives). A relative
    /// `Location` (`/demo/jobs/...`) is resolved against the base.
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

    /// Run `op` with retries per `retry.rs`; `Ok` only for a 2xx answer whose body was read.
    async fn exchange(&self, call: &Call<'_>, op: Op<'_>) -> Result<Reply, CloudBotError> {
        let headers = request_headers(call)?;
        let mut attempt: u32 = 0;
        let mut last_error = None;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            let now = Instant::now();
            let time_left = call.deadline.saturating_duration_since(now);
            if time_left < MIN_ATTEMPT_TIME {
                // After a failed attempt, its error says more than "no time left".
                return Err(last_error.unwrap_or(CloudBotError::DeadlineExceeded));
            }
            let attempt_timeout = self.inner.request_timeout.min(time_left);
            let outcome = self.attempt(&op, &headers, attempt_timeout).await;
            let latency_ms = u64::try_from(now.elapsed().as_millis()).unwrap_or(u64::MAX);
            let (status, end, error) = match outcome {
                AttemptResult::Answered(answer) if (200..300).contains(&answer.status) => {
                    tracing::debug!(
                        method = %op.method,
                        path = op.template,
                        status = answer.status,
                        attempt,
                        latency_ms,
                        "cloud bot call succeeded"
                    );
                    return Ok(answer);
                }
                AttemptResult::Answered(answer) => {
                    let retry_after = answer
                        .headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                    let end = AttemptEnd::Status {
                        status: answer.status,
                        retry_after,
                    };
                    let error = status_error(call, &op, &answer, retry_after);
                    (Some(answer.status), end, error)
                }
                AttemptResult::BodyCut { status } => {
                    let error = match op.safety {
                        Safety::ExecuteOnce => CloudBotError::OutcomeUnknown { cause: Cause::Body },
                        Safety::Idempotent => CloudBotError::Unavailable {
                            cause: Cause::Transport,
                            retry_after: None,
                        },
                    };
                    (Some(status), AttemptEnd::Transport, error)
                }
                AttemptResult::BodyTooLarge { status } => {
                    let error = match op.safety {
                        Safety::ExecuteOnce => CloudBotError::OutcomeUnknown { cause: Cause::Body },
                        Safety::Idempotent => CloudBotError::InvalidResponse {
                            status,
                            detail: "body exceeds the size limit",
                        },
                    };
                    // Not transient: do not ask for the same oversized answer again.
                    tracing::debug!(
                        method = %op.method,
                        path = op.template,
                        status,
                        attempt,
                        latency_ms,
                        "cloud bot answer too large"
                    );
                    return Err(error);
                }
                AttemptResult::Failed(end) => (None, end, transport_error(op.safety, end)),
            };
            tracing::debug!(
                method = %op.method,
                path = op.template,
                status,
                attempt,
                latency_ms,
                error = error.name(),
                "cloud bot call failed"
            );
            let time_left = call.deadline.saturating_duration_since(Instant::now());
            let budget_left = call.retry_budget.saturating_sub(waited);
            match retry::retry_wait(op.safety, end, attempt, time_left, budget_left) {
                Some(wait) => {
                    last_error = Some(error);
                    waited += wait;
                    tokio::time::sleep(wait).await;
                }
                None => return Err(error),
            }
        }
    }

    /// One attempt: send, then read the body with the size cap, all within `timeout`.
    async fn attempt(&self, op: &Op<'_>, headers: &HeaderMap, timeout: Duration) -> AttemptResult {
        let mut request = self
            .inner
            .transport
            .for_request(op.safety)
            .request(op.method.clone(), op.url)
            .headers(headers.clone())
            .timeout(timeout);
        if let Some(body) = &op.body {
            request = request.body(body.clone());
        }
        let exchange = async {
            let mut response = match request.send().await {
                Ok(r) => r,
                Err(e) => return AttemptResult::Failed(classify(e)),
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let success = response.status().is_success();
            if response
                .content_length()
                .is_some_and(|n| n > MAX_RESPONSE_BODY as u64)
            {
                return if success {
                    AttemptResult::BodyTooLarge { status }
                } else {
                    // The status is what matters for an error answer; its body is optional.
                    AttemptResult::Answered(Reply {
                        status,
                        headers,
                        body: Vec::new(),
                    })
                };
            }
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                            if success {
                                return AttemptResult::BodyTooLarge { status };
                            }
                            body.clear();
                            break;
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let e = e.without_url();
                        tracing::debug!(error = %e, "cloud bot answer body cut off");
                        if success {
                            return AttemptResult::BodyCut { status };
                        }
                        body.clear();
                        break;
                    }
                }
            }
            AttemptResult::Answered(Reply {
                status,
                headers,
                body,
            })
        };
        // reqwest's own timeout covers the same span; this one also bounds the body reads
        // independently of reqwest's internals, so the deadline holds whatever happens.
        match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => AttemptResult::Failed(AttemptEnd::Timeout),
        }
    }
}

/// The headers of every call. Credentials go into sensitive header values here and nowhere else.
fn request_headers(call: &Call<'_>) -> Result<HeaderMap, CloudBotError> {
    let (token, secret) = call
        .credentials
        .header_values()
        .ok_or(CloudBotError::InvalidCredentials)?;
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(call.language.as_str()),
    );
    headers.insert(HeaderName::from_static("access-token"), token);
    headers.insert(HeaderName::from_static("secret-key"), secret);
    Ok(headers)
}

/// Reduce a transport error to what the retry policy needs. The error itself is dropped (after
/// `without_url`, only its kind is logged).
fn classify(e: reqwest::Error) -> AttemptEnd {
    let e = e.without_url();
    tracing::debug!(error = %e, "cloud bot transport error");
    if e.is_connect() {
        // Connector failures (DNS, TCP connect, TLS handshake, connect timeout) happen before
        // any byte of the request is written.
        AttemptEnd::ConnectFailed
    } else if e.is_timeout() {
        AttemptEnd::Timeout
    } else {
        AttemptEnd::Transport
    }
}

/// The error for a failed attempt that got no answer.
fn transport_error(safety: Safety, end: AttemptEnd) -> CloudBotError {
    let cause = match end {
        AttemptEnd::ConnectFailed => {
            return CloudBotError::Unavailable {
                cause: Cause::Connect,
                retry_after: None,
            };
        }
        AttemptEnd::Timeout => Cause::Timeout,
        AttemptEnd::Transport | AttemptEnd::Status { .. } => Cause::Transport,
    };
    match safety {
        Safety::ExecuteOnce => CloudBotError::OutcomeUnknown { cause },
        Safety::Idempotent => CloudBotError::Unavailable {
            cause,
            retry_after: None,
        },
    }
}

/// The error for a non-success answer.
fn status_error(
    call: &Call<'_>,
    op: &Op<'_>,
    answer: &Reply,
    retry_after: Option<Duration>,
) -> CloudBotError {
    let message = || server_message(call.credentials, &answer.body);
    match answer.status {
        400 => CloudBotError::BadRequest { message: message() },
        401 => CloudBotError::Unauthorized,
        403 => CloudBotError::Forbidden,
        404 => CloudBotError::NotFound,
        413 => CloudBotError::PayloadTooLarge {
            size: op.body.as_ref().map_or(0, Vec::len),
        },
        415 => CloudBotError::UnsupportedMediaType,
        422 => CloudBotError::Unprocessable { message: message() },
        429 => CloudBotError::RateLimited { retry_after },
        s @ 500..=599 => match op.safety {
            // A 503 that names a retry time is a refusal before any work started.
            Safety::ExecuteOnce if !(s == 503 && retry_after.is_some()) => {
                CloudBotError::OutcomeUnknown {
                    cause: Cause::Status(s),
                }
            }
            // The server's Retry-After travels with the error: when the call ends on it (past
            // the deadline or the caller's retry budget), the caller learns when to come back.
            _ => CloudBotError::Unavailable {
                cause: Cause::Status(s),
                retry_after,
            },
        },
        _ => CloudBotError::UnexpectedStatus {
            status: answer.status,
        },
    }
}

/// The `message` of an error body `{"code":..,"message":..}`, scrubbed of the credentials and
/// truncated; `None` when the body is not such an object.
fn server_message(credentials: &Credentials, body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let text = match parsed.message? {
        serde_json::Value::String(s) => s,
        _ => return None,
    };
    let cleaned = sanitize_message(&credentials.scrub(&text));
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod status_error_tests {
    use super::*;

    fn error_for(safety: Safety, status: u16, retry_after: Option<u64>) -> CloudBotError {
        let credentials = Credentials::new("token".into(), "secret".into());
        let call = Call {
            credentials: &credentials,
            language: Language::En,
            deadline: Instant::now(),
            retry_budget: Duration::ZERO,
        };
        let op = Op {
            method: Method::POST,
            template: "/{public_id}/bots/{bot_id}/jobs",
            url: "http://127.0.0.1:1/demo/bots/echo_bot/jobs",
            body: None,
            safety,
        };
        let answer = Reply {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
        };
        status_error(&call, &op, &answer, retry_after.map(Duration::from_secs))
    }

    /// The documented provably-not-started case keeps the server's Retry-After, so a caller the
    /// call ends for (deadline, retry budget) learns when to come back.
    #[test]
    fn execute_503_with_retry_after_is_unavailable_and_keeps_it() {
        let err = error_for(Safety::ExecuteOnce, 503, Some(30));
        assert_eq!(
            err,
            CloudBotError::Unavailable {
                cause: Cause::Status(503),
                retry_after: Some(Duration::from_secs(30)),
            }
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    }

    /// Any other 5xx on execute may have started a job: no Retry-After invites a retry.
    #[test]
    fn execute_5xx_that_may_have_started_a_job_carries_no_retry_after() {
        for (status, retry_after) in [(503, None), (500, Some(30)), (502, Some(30)), (504, None)] {
            let err = error_for(Safety::ExecuteOnce, status, retry_after);
            assert_eq!(
                err,
                CloudBotError::OutcomeUnknown {
                    cause: Cause::Status(status)
                },
                "{status}"
            );
            assert_eq!(err.retry_after(), None, "{status}");
        }
    }

    #[test]
    fn reads_keep_the_retry_after_of_any_5xx() {
        for status in [500, 502, 503, 504] {
            assert_eq!(
                error_for(Safety::Idempotent, status, Some(5)),
                CloudBotError::Unavailable {
                    cause: Cause::Status(status),
                    retry_after: Some(Duration::from_secs(5)),
                },
                "{status}"
            );
            assert_eq!(
                error_for(Safety::Idempotent, status, None).retry_after(),
                None,
                "{status}"
            );
        }
        assert_eq!(
            error_for(Safety::Idempotent, 429, Some(7)).retry_after(),
            Some(Duration::from_secs(7))
        );
    }
}
