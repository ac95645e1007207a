//! A minimal Lambda Runtime API (2018-06-01) server, one per sandbox, so its caller controls
//! when an event is handed out and sees the exact moment the bootstrap first polls.
//!
//! Implements the documented routes a custom runtime uses:
//! `GET /2018-06-01/runtime/invocation/next`, `POST .../invocation/{id}/response`,
//! `POST .../invocation/{id}/error` and `POST /2018-06-01/runtime/init/error`.
//! Anything else answers 404, which makes a runtime that calls an unknown route fail loudly.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::Error;

const PREFIX: &str = "/2018-06-01/runtime";
/// The deadline handed to the function with each event (what a 30 s Lambda timeout gives).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The ARN the function is told it has.
pub const FUNCTION_ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:cloudbot-trigger-bench";

/// What the bootstrap answered for one invocation.
#[derive(Debug)]
pub struct Outcome {
    /// When the GET /next answer carrying the event was handed to the connection.
    pub handed_out: Instant,
    /// When the response (or error) POST arrived, body read.
    pub received: Instant,
    /// `Ok(body)` for `/response`, `Err(report)` for `/error`.
    pub result: Result<Bytes, ErrorReport>,
}

impl Outcome {
    /// Time from handing out the event to receiving the answer.
    pub fn elapsed(&self) -> Duration {
        self.received.saturating_duration_since(self.handed_out)
    }
}

/// A function error as the runtime reported it.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// The `errorType` field of the body (or the `Lambda-Runtime-Function-Error-Type` header).
    pub error_type: String,
    /// The raw error body.
    pub body: String,
}

struct Pending {
    request_id: String,
    payload: Bytes,
    reply: oneshot::Sender<Outcome>,
}

struct Inflight {
    handed_out: Instant,
    reply: oneshot::Sender<Outcome>,
}

struct State {
    queue: Mutex<mpsc::UnboundedReceiver<Pending>>,
    inflight: std::sync::Mutex<HashMap<String, Inflight>>,
    first_next: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<ErrorReport>>,
    polls: watch::Sender<u64>,
    handed_out: watch::Sender<u64>,
}

/// One sandbox's Runtime API endpoint on 127.0.0.1 (ephemeral port). Dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    queue_tx: mpsc::UnboundedSender<Pending>,
    next_id: AtomicU64,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Binds 127.0.0.1:0 and starts serving.
    pub async fn start() -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            queue: Mutex::new(queue_rx),
            inflight: std::sync::Mutex::new(HashMap::new()),
            first_next: watch::channel(None).0,
            init_error: watch::channel(None).0,
            polls: watch::channel(0).0,
            handed_out: watch::channel(0).0,
        });
        let server = crate::server::spawn_http_server(
            listener,
            state.clone(),
            handle,
            None,
            None,
            Default::default(),
        );
        Ok(Self {
            addr,
            state,
            queue_tx,
            next_id: AtomicU64::new(1),
            server,
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API` (`127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Resolves with the instant of the first `GET /next`, or with the init error the runtime
    /// posted instead. Never resolves if the process never polls: race it against a timeout.
    pub async fn first_poll(&self) -> Result<Instant, ErrorReport> {
        let mut next = self.state.first_next.subscribe();
        let mut init = self.state.init_error.subscribe();
        loop {
            if let Some(at) = *next.borrow_and_update() {
                return Ok(at);
            }
            if let Some(err) = init.borrow_and_update().clone() {
                return Err(err);
            }
            tokio::select! {
                r = next.changed() => { if r.is_err() { std::future::pending::<()>().await } }
                r = init.changed() => { if r.is_err() { std::future::pending::<()>().await } }
            }
        }
    }

    /// How many `GET /next` polls arrived so far.
    pub fn polls(&self) -> u64 {
        *self.state.polls.borrow()
    }

    /// Waits until `n` `GET /next` polls have arrived in total: after its `n - 1`-th answer the
    /// bootstrap is parked waiting for the next event, where Lambda freezes it.
    pub async fn polled(&self, n: u64) {
        let mut rx = self.state.polls.subscribe();
        // The sender lives as long as `self`: `wait_for` only fails if it is dropped.
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    /// Waits until `n` events in total have been handed out to the bootstrap (its `GET /next`
    /// answered with them), e.g. to act on the sandbox while an event is in its hands.
    pub async fn handed_out(&self, n: u64) {
        let mut rx = self.state.handed_out.subscribe();
        // The sender lives as long as `self`: `wait_for` only fails if it is dropped.
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    /// Queues one event and waits for the function's answer (or `timeout`).
    pub async fn invoke(&self, payload: Bytes, timeout: Duration) -> Result<Outcome, Error> {
        self.submit(payload)?.answer(timeout).await
    }

    /// Queues one event without waiting: events queued back to back are handed out as fast as
    /// the bootstrap polls, which is how a throughput run keeps one sandbox busy.
    pub fn submit(&self, payload: Bytes) -> Result<Submitted, Error> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("00000000-0000-4000-8000-{n:012}");
        let (reply, answer) = oneshot::channel();
        self.queue_tx
            .send(Pending {
                request_id: request_id.clone(),
                payload,
                reply,
            })
            .map_err(|_| Error::msg("runtime API server stopped"))?;
        Ok(Submitted { request_id, answer })
    }
}

/// A queued event whose answer has not been awaited yet.
#[derive(Debug)]
pub struct Submitted {
    request_id: String,
    answer: oneshot::Receiver<Outcome>,
}

impl Submitted {
    /// Waits for the function's answer (or `timeout`).
    pub async fn answer(self, timeout: Duration) -> Result<Outcome, Error> {
        let request_id = self.request_id;
        match tokio::time::timeout(timeout, self.answer).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(Error::msg(format!("invocation {request_id} dropped"))),
            Err(_) => Err(Error::msg(format!(
                "invocation {request_id}: no answer within {timeout:?}"
            ))),
        }
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}

/// The answer to a route the Runtime API does not have.
fn unknown_route() -> Response<Full<Bytes>> {
    reply(
        StatusCode::NOT_FOUND,
        "{\"errorMessage\":\"unknown route\"}",
    )
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(unknown_route());
    };
    let method = req.method().clone();
    if method == Method::GET && rest == "/invocation/next" {
        return Ok(next(&state).await);
    }
    if method != Method::POST {
        return Ok(unknown_route());
    }
    let header_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                "{\"errorMessage\":\"bad body\"}",
            ));
        }
    };
    let received = Instant::now();
    if rest == "/init/error" {
        let report = error_report(header_type, &body);
        state.init_error.send_replace(Some(report));
        return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
    }
    let Some(tail) = rest.strip_prefix("/invocation/") else {
        return Ok(unknown_route());
    };
    let (id, result) = if let Some(id) = tail.strip_suffix("/response") {
        (id, Ok(body))
    } else if let Some(id) = tail.strip_suffix("/error") {
        (id, Err(error_report(header_type, &body)))
    } else {
        return Ok(unknown_route());
    };
    Ok(deliver(&state, id, received, result))
}

/// Hands the answer for invocation `id` to the caller waiting for it.
fn deliver(
    state: &State,
    id: &str,
    received: Instant,
    result: Result<Bytes, ErrorReport>,
) -> Response<Full<Bytes>> {
    let inflight = state.inflight.lock().ok().and_then(|mut m| m.remove(id));
    match inflight {
        Some(f) => {
            let _ = f.reply.send(Outcome {
                handed_out: f.handed_out,
                received,
                result,
            });
            reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
        }
        // A second answer for the same id, or an id never handed out: the runtime API says 400.
        None => reply(
            StatusCode::BAD_REQUEST,
            "{\"errorMessage\":\"unknown or already answered request id\",\"errorType\":\"InvalidRequestID\"}",
        ),
    }
}

async fn next(state: &State) -> Response<Full<Bytes>> {
    let now = Instant::now();
    state.polls.send_modify(|count| *count += 1);
    state.first_next.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(now);
            true
        } else {
            false
        }
    });
    let pending = {
        let mut queue = state.queue.lock().await;
        queue.recv().await
    };
    let Some(p) = pending else {
        return reply(StatusCode::GONE, "{\"errorMessage\":\"shutting down\"}");
    };
    let deadline = SystemTime::now()
        .checked_add(FUNCTION_TIMEOUT)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut resp = Response::new(Full::new(p.payload));
    let headers = resp.headers_mut();
    let pairs = [
        ("lambda-runtime-aws-request-id", p.request_id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            FUNCTION_ARN.to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    let handed_out = Instant::now();
    if let Ok(mut m) = state.inflight.lock() {
        m.insert(
            p.request_id,
            Inflight {
                handed_out,
                reply: p.reply,
            },
        );
    }
    state.handed_out.send_modify(|count| *count += 1);
    resp
}

fn error_report(header_type: Option<String>, body: &[u8]) -> ErrorReport {
    let text = String::from_utf8_lossy(body).into_owned();
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errorType")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        });
    ErrorReport {
        error_type: from_body
            .or(header_type)
            .unwrap_or_else(|| "Unknown".to_owned()),
        body: text,
    }
}
