//! The Cloud BOT emulator as an upstream process: started as its own process (the
//! `cloudbot-emulator` binary, demo seed) so its work is not scheduled on the caller's runtime,
//! and driven through its admin API with the emulator crate's [`AdminClient`].
//!
//! Connections the function opens are counted from the request log (distinct connection ids of
//! API requests), because the caller's own admin calls also reach the same listener and
//! would otherwise inflate `stats.connections_accepted`; the raw stats figure is reported too.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudbot_emulator::{AdminClient, DEMO_ACCESS_TOKEN, DEMO_PUBLIC_ID, DEMO_SECRET_KEY};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Error;

/// The demo seed's BOT that every execute of the benchmark and the arm64 smoke run starts.
pub const ECHO_BOT: &str = "echo_bot";

/// A running emulator process. Dropping it kills the process.
pub struct EmulatorProcess {
    child: Child,
    base_url: String,
    admin: AdminClient,
}

impl EmulatorProcess {
    /// Starts `bin --port 0` (demo seed) and waits for its "listening on" line.
    pub async fn spawn(bin: &Path, log: &Path) -> Result<Self, Error> {
        let err = std::fs::File::create(log)?;
        let mut child = Command::new(bin)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::msg(format!("cannot start {}: {e}", bin.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::msg("emulator stdout not captured"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .map_err(|_| Error::msg("emulator did not report its address within 20 s"))??
            .ok_or_else(|| Error::msg("emulator exited before listening"))?;
        let base_url = line
            .strip_prefix("cloudbot-emulator listening on ")
            .ok_or_else(|| Error::msg(format!("unexpected emulator banner: {line}")))?
            .trim()
            .to_owned();
        // Keep draining stdout so the emulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let admin = AdminClient::new(base_url.clone())?;
        Ok(Self {
            child,
            base_url,
            admin,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The BOT execution endpoint of [`ECHO_BOT`] (`{base}/{public_id}/bots/{bot_id}/jobs`).
    pub fn bot_endpoint(&self) -> String {
        format!("{}/{DEMO_PUBLIC_ID}/bots/{ECHO_BOT}/jobs", self.base_url)
    }

    /// The emulator's admin API.
    pub fn admin(&self) -> &AdminClient {
        &self.admin
    }

    /// Distinct connections that carried Cloud BOT API requests since the last reset (the
    /// request log holds API requests only, so the caller's admin connections do not count).
    pub async fn api_connections(&self) -> Result<u64, Error> {
        let requests = self.admin.requests().await?;
        let ids: HashSet<u64> = requests.iter().map(|r| r.connection_id).collect();
        Ok(ids.len() as u64)
    }

    /// Job ids the emulator holds.
    pub async fn job_ids(&self) -> Result<Vec<String>, Error> {
        let jobs = self.admin.jobs().await?;
        Ok(jobs.into_iter().map(|j| j.job_id).collect())
    }

    /// Times `n` execute calls made directly with a keep-alive hyper client (no function in
    /// between): the upstream as the leanest possible client sees it.
    pub async fn direct_execute(&self, n: usize) -> Result<Vec<Duration>, Error> {
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
                .map_err(|e| Error::msg(format!("execute request: {e}")))?;
            let start = Instant::now();
            let resp = client
                .request(req)
                .await
                .map_err(|e| Error::msg(format!("direct execute: {e}")))?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            samples.push(start.elapsed());
            if !status.is_success() {
                return Err(Error::msg(format!("direct execute: HTTP {status}")));
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
