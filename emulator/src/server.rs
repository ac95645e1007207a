//! The HTTP server: accept loop on 127.0.0.1 (connection ids and counters), hyper HTTP/1.1
//! with keep-alive (ended after an idle timeout when configured, see [`crate::idle`]), and
//! fault application around the API handler; admin requests go to
//! [`crate::admin`], response bodies are built by [`crate::body`].
//!
//! How faults reach the wire with hyper 1: returning `Err` from the service makes hyper drop the
//! connection without writing a response; the connection's socket is then closed with
//! SO_LINGER 0, i.e. a TCP RST (`ConnIo`). A body that yields an error after its first frame
//! makes hyper abort the connection mid-body (truncation, see [`crate::body`]). Both are
//! verified by tests.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::api;
use crate::body::{EmuBody, json_response, reply_response, truncated_response};
use crate::fault::{self, Fault, FaultKind};
use crate::idle::{self, Activity, IdleClose, Tracked};
use crate::reply::{self, Reply};
use crate::state::{RequestRecord, State, rfc3339_millis};

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection reset on purpose (fault injection)")]
pub(crate) struct Reset;

/// The accepted socket; when `rst` is set it is closed with a TCP reset instead of a FIN.
struct ConnIo {
    stream: TcpStream,
    rst: Arc<AtomicBool>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.rst.load(Ordering::Acquire) {
            // Linger 0 turns close() into an RST: what clients see when a server or proxy dies.
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Decrements the open-connections gauge however the connection task ends.
struct OpenGuard(Arc<State>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until `shutdown` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually EMFILE under extreme load: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn_id = next_id;
        state
            .counters
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        state
            .counters
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(Arc::clone(&state));
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _guard = guard;
            let rst = Arc::new(AtomicBool::new(false));
            let io = ConnIo {
                stream,
                rst: Arc::clone(&rst),
            };
            match state.tls.clone() {
                None => connection(io, state, conn_id, rst).await,
                Some(tls) => match tls.accept(io).await {
                    Ok(io) => {
                        let c = &state.counters;
                        c.tls_handshakes.fetch_add(1, Ordering::Relaxed);
                        if io.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                            c.tls_handshakes_resumed.fetch_add(1, Ordering::Relaxed);
                        }
                        connection(io, state, conn_id, rst).await
                    }
                    Err(e) => tracing::debug!(conn_id, error = %e, "TLS handshake failed"),
                },
            }
        });
    }
}

/// Serves one accepted connection (plain or TLS) until it ends or its idle time runs out.
async fn connection<IO>(io: IO, state: Arc<State>, conn_id: u64, rst: Arc<AtomicBool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Tracked::new(io, Arc::clone(&activity)));
    let svc_state = Arc::clone(&state);
    let svc_activity = Arc::clone(&activity);
    let svc = service_fn(move |req| {
        let state = Arc::clone(&svc_state);
        let rst = Arc::clone(&rst);
        let in_flight = svc_activity.begin();
        async move {
            let reply = handle(state, conn_id, rst, req).await;
            drop(in_flight);
            reply
        }
    });
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc);
    let on_idle = |close: IdleClose| {
        state
            .counters
            .connections_idle_closed
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(conn_id, close = close.as_str(), "idle connection ended");
    };
    if let Some(Err(e)) = idle::drive(connection, activity, state.idle, on_idle).await {
        tracing::debug!(conn_id, error = %e, "connection ended with an error");
    }
}

async fn handle(
    state: Arc<State>,
    conn_id: u64,
    rst: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Result<Response<EmuBody>, Reset> {
    let path = req.uri().path().to_string();
    if path == "/__emulator" || path.starts_with("/__emulator/") {
        return Ok(crate::admin::handle(&state, req).await);
    }
    let received_at = rfc3339_millis(Utc::now());
    let seq = state.counters.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let method = req.method().clone();
    let token = req
        .headers()
        .get("access-token")
        .and_then(|value| value.to_str().ok())
        .and_then(|presented| {
            let current = crate::state::lock(&state.tokens)
                .get(presented)
                .map(|t| t.seed_index);
            current.or_else(|| {
                crate::state::lock(&state.retired_tokens)
                    .get(presented)
                    .copied()
            })
        });
    let record =
        |status: Option<u16>, job_id: Option<String>, fault: Option<FaultKind>| RequestRecord {
            seq,
            connection_id: conn_id,
            method: method.to_string(),
            path: path.clone(),
            status,
            job_id,
            fault,
            received_at: received_at.clone(),
            token,
        };
    let fault = match fault::from_headers(req.headers()) {
        Ok(Some(f)) => Some(f),
        Ok(None) => state.take_fault(method.as_str(), &path),
        Err(message) => {
            let reply = reply::error(StatusCode::BAD_REQUEST, message);
            state.record_request(record(Some(400), None, None));
            return Ok(reply_response(reply.status, &reply.body));
        }
    };
    let kind = fault.map(|f| f.kind);
    let fixed = Duration::from_millis(state.latency_ms.load(Ordering::Relaxed));

    if let Some(f) = fault {
        match f.kind {
            FaultKind::ResetBefore => {
                state.record_request(record(None, None, kind));
                rst.store(true, Ordering::Release);
                return Err(Reset);
            }
            FaultKind::Status => {
                delay(fixed).await;
                let status =
                    StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let body = serde_json::json!({
                    "code": status.as_u16(),
                    "message": format!("emulated {} ({})", status.as_u16(), status.canonical_reason().unwrap_or("error")),
                });
                state.record_request(record(Some(status.as_u16()), None, kind));
                return Ok(json_response(
                    status,
                    Bytes::from(body.to_string()),
                    f.retry_after,
                ));
            }
            _ => {}
        }
    }

    let (parts, body) = req.into_parts();
    let reply: Reply = api::handle(
        &state,
        &parts.method,
        &path,
        parts.uri.query(),
        &parts.headers,
        body,
        seq,
    )
    .await;
    let extra = fault
        .filter(|f| f.kind == FaultKind::Latency)
        .map(|f| f.latency)
        .unwrap_or_default();
    delay(fixed + extra).await;
    let status = reply.status;
    let job_id = reply.job_id.clone();
    let location = reply.location.clone();
    let Some(Fault {
        kind: k,
        status: fault_status,
        retry_after,
        ..
    }) = fault
    else {
        state.record_request(record(Some(status.as_u16()), job_id, None));
        return Ok(with_location(reply_response(status, &reply.body), location));
    };
    let text = reply.body.to_string();
    let resp = match k {
        FaultKind::StatusAfter => {
            let replaced =
                StatusCode::from_u16(fault_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let body = serde_json::json!({
                "code": replaced.as_u16(),
                "message": format!("emulated {} after processing", replaced.as_u16()),
            });
            state.record_request(record(Some(replaced.as_u16()), job_id, kind));
            return Ok(json_response(
                replaced,
                Bytes::from(body.to_string()),
                retry_after,
            ));
        }
        FaultKind::ResetAfter => {
            state.record_request(record(None, job_id, kind));
            rst.store(true, Ordering::Release);
            return Err(Reset);
        }
        FaultKind::MalformedJson => {
            // Half of the real answer: unbalanced braces, never valid JSON.
            let cut = floor_char_boundary(&text, text.len() / 2);
            json_response(
                status,
                Bytes::from(format!("{}<<not json", &text[..cut])),
                None,
            )
        }
        FaultKind::TruncatedBody => truncated_response(status, Bytes::from(text)),
        FaultKind::OversizedBody => {
            let mut body = reply.body;
            if let Value::Object(m) = &mut body {
                m.insert(
                    "padding".into(),
                    Value::String("x".repeat(OVERSIZED_PADDING)),
                );
            }
            reply_response(status, &body)
        }
        FaultKind::Latency | FaultKind::Status | FaultKind::ResetBefore => {
            reply_response(status, &reply.body)
        }
    };
    state.record_request(record(Some(status.as_u16()), job_id, kind));
    Ok(with_location(resp, location))
}

fn with_location(mut resp: Response<EmuBody>, location: Option<String>) -> Response<EmuBody> {
    if let Some(v) = location.and_then(|l| http::HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

/// Padding added by `oversized_body`: 2 MiB, well over the 1 MiB cap clients should apply.
pub const OVERSIZED_PADDING: usize = 2 * 1024 * 1024;

async fn delay(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
