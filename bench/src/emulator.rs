//! The Cloud BOT emulator as the benchmark's upstream: started as its own process (the
//! `cloudbot-emulator` binary, demo seed) so its work is not scheduled on the harness's runtime,
//! and driven through its documented admin API (`/__emulator/...`).
//!
//! Connections the function opens are counted from the request log (distinct connection ids of
//! non-admin requests), because the harness's own admin calls also reach the same listener and
//! would otherwise inflate `stats.connections_accepted`; the raw stats figure is reported too.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::BenchError;

/// Demo-seed credentials (documented in the emulator's README section; not a real secret).
pub const DEMO_ACCESS_TOKEN: &str = "demo-access-token";
/// Demo-seed secret key paired with [`DEMO_ACCESS_TOKEN`].
pub const DEMO_SECRET_KEY: &str = "demo-secret-key";
/// Contract of the demo seed.
pub const DEMO_PUBLIC_ID: &str = "demo";
/// BOT every benchmark invocation executes.
pub const BENCH_BOT: &str = "echo_bot";

/// A running emulator process. Dropping it kills the process.
pub struct EmulatorProcess {
    child: Child,
    base_url: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// The counters of `GET /__emulator/stats`.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Stats {
    /// TCP connections accepted since start/reset (includes the harness's admin connections).
    pub connections_accepted: u64,
    /// Connections open now.
    #[serde(default)]
    pub connections_open: u64,
    /// Requests served.
    #[serde(default)]
    pub requests: u64,
    /// Jobs created by execute.
    pub jobs_created: u64,
}

impl EmulatorProcess {
    /// Starts `bin --port 0` (demo seed) and waits for its "listening on" line.
    pub async fn spawn(bin: &Path, log: &Path) -> Result<Self, BenchError> {
        let err = std::fs::File::create(log)?;
        let mut child = Command::new(bin)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::msg(format!("cannot start {}: {e}", bin.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::msg("emulator stdout not captured"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .map_err(|_| BenchError::msg("emulator did not report its address within 20 s"))??
            .ok_or_else(|| BenchError::msg("emulator exited before listening"))?;
        let base_url = line
            .strip_prefix("cloudbot-emulator listening on ")
            .ok_or_else(|| BenchError::msg(format!("unexpected emulator banner: {line}")))?
            .trim()
            .to_owned();
        // Keep draining stdout so the emulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            child,
            base_url,
            http,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The BOT execution endpoint of [`BENCH_BOT`] (`{base}/{public_id}/bots/{bot_id}/jobs`).
    pub fn bot_endpoint(&self) -> String {
        format!("{}/{DEMO_PUBLIC_ID}/bots/{BENCH_BOT}/jobs", self.base_url)
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BenchError> {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = Request::builder()
            .method(method.clone())
            .uri(format!("{}/__emulator/{path}", self.base_url))
            .header("content-type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| BenchError::msg(format!("admin request: {e}")))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| BenchError::msg(format!("admin {method} {path}: {e}")))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| BenchError::msg(format!("admin {path} body: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(BenchError::msg(format!(
                "admin {method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// `POST /__emulator/reset`: forget jobs, requests, faults and counters.
    pub async fn reset(&self) -> Result<(), BenchError> {
        self.admin(Method::POST, "reset", None).await.map(drop)
    }

    /// `PUT /__emulator/latency`: fixed latency added to every API response.
    pub async fn set_latency(&self, latency: Duration) -> Result<(), BenchError> {
        let body = serde_json::json!({ "latency_ms": latency.as_millis() as u64 });
        self.admin(Method::PUT, "latency", Some(body))
            .await
            .map(drop)
    }

    /// `POST /__emulator/faults` with the given rules.
    pub async fn set_faults(&self, rules: Value) -> Result<(), BenchError> {
        self.admin(Method::POST, "faults", Some(rules))
            .await
            .map(drop)
    }

    /// `GET /__emulator/stats`.
    pub async fn stats(&self) -> Result<Stats, BenchError> {
        let v = self.admin(Method::GET, "stats", None).await?;
        Ok(serde_json::from_value(v)?)
    }

    /// Distinct connections that carried Cloud BOT API (non-admin) requests since the last
    /// reset, from `GET /__emulator/requests`.
    pub async fn api_connections(&self) -> Result<u64, BenchError> {
        let v = self.admin(Method::GET, "requests", None).await?;
        let list = v
            .as_array()
            .or_else(|| v.get("requests").and_then(Value::as_array))
            .ok_or_else(|| BenchError::msg("GET /__emulator/requests: not a list"))?;
        let ids: HashSet<String> = list
            .iter()
            .filter(|r| {
                !r.get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .starts_with("/__emulator")
            })
            .filter_map(|r| {
                r.get("connection_id")
                    .or_else(|| r.get("connection"))
                    .map(Value::to_string)
            })
            .collect();
        Ok(ids.len() as u64)
    }

    /// Job ids the emulator holds (`GET /__emulator/jobs`).
    pub async fn job_ids(&self) -> Result<Vec<String>, BenchError> {
        let v = self.admin(Method::GET, "jobs", None).await?;
        let list = v
            .as_array()
            .or_else(|| v.get("jobs").and_then(Value::as_array))
            .ok_or_else(|| BenchError::msg("GET /__emulator/jobs: not a list"))?;
        Ok(list
            .iter()
            .filter_map(|j| j.get("job_id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// Times `n` execute calls made directly with a keep-alive hyper client (no function in
    /// between): the upstream as the leanest possible client sees it.
    pub async fn direct_execute(&self, n: usize) -> Result<Vec<Duration>, BenchError> {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let body = Bytes::from(serde_json::json!({ "input": { "message": "bench" } }).to_string());
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let req = Request::builder()
                .method(Method::POST)
                .uri(self.bot_endpoint())
                .header("content-type", "application/json")
                .header("content-language", "en")
                .header("access-token", DEMO_ACCESS_TOKEN)
                .header("secret-key", DEMO_SECRET_KEY)
                .body(Full::new(body.clone()))
                .map_err(|e| BenchError::msg(format!("execute request: {e}")))?;
            let start = Instant::now();
            let resp = client
                .request(req)
                .await
                .map_err(|e| BenchError::msg(format!("direct execute: {e}")))?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            samples.push(start.elapsed());
            if !status.is_success() {
                return Err(BenchError::msg(format!("direct execute: HTTP {status}")));
            }
        }
        Ok(samples)
    }

    /// Kills the emulator.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
