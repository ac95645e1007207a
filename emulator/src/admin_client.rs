//! A typed client of the admin API (`/__emulator/...`) over HTTP, for an emulator running in
//! another process: the benchmark harness and the tests that start the `cloudbot-emulator`
//! binary use it, so the admin routes and their JSON shapes are written down once, here and in
//! [`crate::admin`]. An in-process emulator offers the same views without HTTP on
//! [`crate::Emulator`]; both return the same record types.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::fault::FaultRule;
use crate::state::{CallbackAttempt, JobRecord, RequestRecord, Stats, SubscriptionRecord};

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The HTTP client could not be built, or the request got no answer.
    #[error("admin {route}: no answer")]
    Transport {
        /// `METHOD /__emulator/...`.
        route: String,
        /// The transport error (without the URL).
        #[source]
        source: reqwest::Error,
    },
    /// The emulator answered with an error status.
    #[error("admin {route}: HTTP {status}: {message}")]
    Status {
        /// `METHOD /__emulator/...`.
        route: String,
        /// The HTTP status.
        status: u16,
        /// The emulator's `message`.
        message: String,
    },
    /// The answer was not the documented JSON shape.
    #[error("admin {route}: unexpected answer")]
    Decode {
        /// `METHOD /__emulator/...`.
        route: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

/// The admin API of the emulator at one base URL.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base_url: String,
}

#[derive(Deserialize)]
struct Requests {
    requests: Vec<RequestRecord>,
}

#[derive(Deserialize)]
struct Jobs {
    jobs: Vec<JobRecord>,
}

#[derive(Deserialize)]
struct Callbacks {
    callbacks: Vec<CallbackAttempt>,
}

#[derive(Deserialize)]
struct Faults {
    faults: Vec<FaultRule>,
}

#[derive(Deserialize)]
struct Latency {
    latency_ms: u64,
}

#[derive(Deserialize)]
struct Subscriptions {
    subscriptions: Vec<SubscriptionRecord>,
}

#[derive(Deserialize)]
struct Started {
    job_id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

impl AdminClient {
    /// A client of the emulator at `base_url` (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn new(base_url: impl Into<String>) -> Result<AdminClient, AdminError> {
        // The emulator is always local: never go through an environment proxy.
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|source| AdminError::Transport {
                route: "client".into(),
                source,
            })?;
        Ok(AdminClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        })
    }

    /// The emulator's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, AdminError> {
        let route = format!("{method} /__emulator/{path}");
        let mut request = self
            .http
            .request(method, format!("{}/__emulator/{path}", self.base_url));
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let transport = |source: reqwest::Error| AdminError::Transport {
            route: route.clone(),
            source: source.without_url(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(AdminError::Status {
                route,
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| AdminError::Decode { route, source })
    }

    /// Counters (`GET /__emulator/stats`).
    pub async fn stats(&self) -> Result<Stats, AdminError> {
        self.call(Method::GET, "stats", None).await
    }

    /// API requests in the order they were answered (`GET /__emulator/requests`).
    pub async fn requests(&self) -> Result<Vec<RequestRecord>, AdminError> {
        let r: Requests = self.call(Method::GET, "requests", None).await?;
        Ok(r.requests)
    }

    /// All jobs, in creation order (`GET /__emulator/jobs`).
    pub async fn jobs(&self) -> Result<Vec<JobRecord>, AdminError> {
        let j: Jobs = self.call(Method::GET, "jobs", None).await?;
        Ok(j.jobs)
    }

    /// One job (`GET /__emulator/jobs/{job_id}`); `None` when the emulator does not know it.
    pub async fn job(&self, job_id: &str) -> Result<Option<JobRecord>, AdminError> {
        match self
            .call(Method::GET, &format!("jobs/{job_id}"), None)
            .await
        {
            Ok(job) => Ok(Some(job)),
            Err(AdminError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Callback attempts, in order (`GET /__emulator/callbacks`).
    pub async fn callbacks(&self) -> Result<Vec<CallbackAttempt>, AdminError> {
        let c: Callbacks = self.call(Method::GET, "callbacks", None).await?;
        Ok(c.callbacks)
    }

    /// Active fault rules with their remaining counts (`GET /__emulator/faults`).
    pub async fn faults(&self) -> Result<Vec<FaultRule>, AdminError> {
        let f: Faults = self.call(Method::GET, "faults", None).await?;
        Ok(f.faults)
    }

    /// Adds fault rules after the active ones (`POST /__emulator/faults`); an invalid rule is
    /// refused with the emulator's message and nothing is added.
    pub async fn add_faults(
        &self,
        rules: impl IntoIterator<Item = FaultRule>,
    ) -> Result<Vec<FaultRule>, AdminError> {
        let rules: Vec<FaultRule> = rules.into_iter().collect();
        let f: Faults = self
            .call(Method::POST, "faults", Some(json!(rules)))
            .await?;
        Ok(f.faults)
    }

    /// Removes every fault rule (`DELETE /__emulator/faults`).
    pub async fn clear_faults(&self) -> Result<(), AdminError> {
        let _: Faults = self.call(Method::DELETE, "faults", None).await?;
        Ok(())
    }

    /// Fixed latency added to every API answer (`GET /__emulator/latency`).
    pub async fn latency(&self) -> Result<Duration, AdminError> {
        let l: Latency = self.call(Method::GET, "latency", None).await?;
        Ok(Duration::from_millis(l.latency_ms))
    }

    /// Sets the fixed latency added to every API answer (`PUT /__emulator/latency`).
    pub async fn set_latency(&self, latency: Duration) -> Result<(), AdminError> {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let _: Latency = self
            .call(Method::PUT, "latency", Some(json!({ "latency_ms": ms })))
            .await?;
        Ok(())
    }

    /// Replaces `old_access_token` with a new pair keeping its permissions
    /// (`POST /__emulator/tokens/rotate`).
    pub async fn rotate_token(
        &self,
        old_access_token: &str,
        new_access_token: &str,
        new_secret_key: &str,
    ) -> Result<(), AdminError> {
        let body = json!({
            "access_token": old_access_token,
            "new_access_token": new_access_token,
            "new_secret_key": new_secret_key,
        });
        let _: Value = self.call(Method::POST, "tokens/rotate", Some(body)).await?;
        Ok(())
    }

    /// "BOT done" subscriptions (`GET /__emulator/subscriptions`).
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>, AdminError> {
        let s: Subscriptions = self.call(Method::GET, "subscriptions", None).await?;
        Ok(s.subscriptions)
    }

    /// Starts a job outside the API, as Cloud BOT's console would
    /// (`POST /__emulator/bots/{public_id}/{bot_id}/run`); returns its job id.
    pub async fn run_from_console(
        &self,
        public_id: &str,
        bot_id: &str,
        input: Option<serde_json::Map<String, Value>>,
    ) -> Result<String, AdminError> {
        let job: Started = self
            .call(
                Method::POST,
                &format!("bots/{public_id}/{bot_id}/run"),
                Some(json!({ "input": input })),
            )
            .await?;
        Ok(job.job_id)
    }

    /// Pads the output of every job that succeeds from now on with a `padding` value of
    /// `bytes` characters (`PUT /__emulator/output-padding`).
    pub async fn set_output_padding(&self, bytes: u64) -> Result<(), AdminError> {
        let _: Value = self
            .call(
                Method::PUT,
                "output-padding",
                Some(json!({ "padding_bytes": bytes })),
            )
            .await?;
        Ok(())
    }

    /// Switches "hold until callback acknowledged" mode (`PUT /__emulator/callback-hold`).
    pub async fn set_hold_for_callback(&self, enabled: bool) -> Result<(), AdminError> {
        let _: Value = self
            .call(
                Method::PUT,
                "callback-hold",
                Some(json!({ "enabled": enabled })),
            )
            .await?;
        Ok(())
    }

    /// The outcomes of the next jobs to end, in order (`PUT /__emulator/outcomes`).
    pub async fn script_outcomes(&self, outcomes: &[crate::Outcome]) -> Result<(), AdminError> {
        let _: Value = self
            .call(
                Method::PUT,
                "outcomes",
                Some(json!({ "outcomes": outcomes })),
            )
            .await?;
        Ok(())
    }

    /// Back to the seed (`POST /__emulator/reset`).
    pub async fn reset(&self) -> Result<(), AdminError> {
        let _: Value = self.call(Method::POST, "reset", None).await?;
        Ok(())
    }
}
