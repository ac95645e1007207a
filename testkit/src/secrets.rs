//! A tiny counting Secrets Manager endpoint on 127.0.0.1 that speaks the awsJson1.1
//! `GetSecretValue` shape, so a test or the benchmark can count how often the function fetches its secret.
//!
//! Chosen over moto behind a counting proxy: no Python process competing for the 2 cores during
//! timing, no extra hop in the first-invocation figure, and the count is exact. The AWS SDK is
//! pointed here with `AWS_ENDPOINT_URL_SECRETS_MANAGER`; request signatures are not checked
//! (the function is given dummy credentials).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use cloudbot_emulator::{IdlePolicy, TestCa};

use crate::Error;
use crate::server::{Connections, spawn_http_server};

struct State {
    secret_id: String,
    secret_string: String,
    get_secret_value: AtomicU64,
    other: AtomicU64,
    /// How long each `GetSecretValue` answer is held back, in microseconds.
    delay_us: AtomicU64,
}

/// The counting endpoint. Dropping it stops the server.
pub struct SecretsEndpoint {
    addr: SocketAddr,
    https: bool,
    state: Arc<State>,
    connections: Arc<Connections>,
    server: JoinHandle<()>,
}

impl Drop for SecretsEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SecretsEndpoint {
    /// Serves one secret: `secret_id` (name) whose SecretString is `secret_string`.
    pub async fn start(secret_id: &str, secret_string: &str) -> Result<Self, Error> {
        Self::start_with(secret_id, secret_string, None, None).await
    }

    /// [`SecretsEndpoint::start`], ending idle keep-alive connections as `idle` says (like an
    /// AWS endpoint or a NAT gateway on the way to it), and serving HTTPS with a certificate of
    /// `tls` when given (as the real endpoint does).
    pub async fn start_with(
        secret_id: &str,
        secret_string: &str,
        idle: Option<IdlePolicy>,
        tls: Option<&TestCa>,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            secret_id: secret_id.to_owned(),
            secret_string: secret_string.to_owned(),
            get_secret_value: AtomicU64::new(0),
            other: AtomicU64::new(0),
            delay_us: AtomicU64::new(0),
        });
        let connections = Arc::new(Connections::default());
        let server = spawn_http_server(
            listener,
            state.clone(),
            handle,
            idle,
            tls.map(TestCa::acceptor),
            connections.clone(),
        );
        Ok(Self {
            addr,
            https: tls.is_some(),
            state,
            connections,
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), for `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// GetSecretValue calls answered so far.
    pub fn get_secret_value_calls(&self) -> u64 {
        self.state.get_secret_value.load(Ordering::Relaxed)
    }

    /// Requests for any other operation (should stay 0).
    pub fn other_calls(&self) -> u64 {
        self.state.other.load(Ordering::Relaxed)
    }

    /// Its connection counters.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Holds every later `GetSecretValue` answer back for `delay` (a slow Secrets Manager); the
    /// call is counted when it arrives.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.state.delay_us.store(us, Ordering::Relaxed);
    }

    /// Sets the call and connection counters back to 0.
    pub fn reset(&self) {
        self.connections.reset();
        self.state.get_secret_value.store(0, Ordering::Relaxed);
        self.state.other.store(0, Ordering::Relaxed);
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    h.insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static("00000000-0000-4000-8000-000000000000"),
    );
    resp
}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    json(status, body)
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(aws_error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "bad body",
            ));
        }
    };
    if target != "secretsmanager.GetSecretValue" {
        state.other.fetch_add(1, Ordering::Relaxed);
        return Ok(aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "only GetSecretValue is served by this stand-in",
        ));
    }
    state.get_secret_value.fetch_add(1, Ordering::Relaxed);
    let delay = Duration::from_micros(state.delay_us.load(Ordering::Relaxed));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let secret_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("SecretId")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let arn = format!(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:{}-AbCdEf",
        state.secret_id
    );
    if secret_id != state.secret_id && secret_id != arn {
        return Ok(aws_error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ));
    }
    let body = serde_json::json!({
        "ARN": arn,
        "Name": state.secret_id,
        "VersionId": "00000000-0000-4000-8000-000000000001",
        "SecretString": state.secret_string,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_700_000_000.0,
    })
    .to_string();
    Ok(json(StatusCode::OK, body))
}
