//! The HTTP server: accept loop on 127.0.0.1 (connection ids and counters), hyper HTTP/1.1
//! with keep-alive, fault application around the API handler, and response bodies (including
//! the damaged ones faults need).
//!
//! How faults reach the wire with hyper 1: returning `Err` from the service makes hyper drop the
//! connection without writing a response; the connection's socket is then closed with
//! SO_LINGER 0, i.e. a TCP RST (`ConnIo`). A body that yields an error after its first frame
//! makes hyper abort the connection mid-body (truncation). Both are verified by tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::{Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::api::{self, Reply};
use crate::fault::{self, Fault, FaultKind};
use crate::state::{RequestRecord, State, rfc3339_millis};

/// Response body: whole bytes, or bytes followed by an error (truncated transfer).
pub(crate) enum EmuBody {
    Full(Option<Bytes>),
    /// The first part, then a short pause (so hyper flushes the head and that part to the
    /// socket; an immediate error would discard them unsent), then an error.
    Truncated {
        first: Option<Bytes>,
        pause: Pin<Box<tokio::time::Sleep>>,
    },
}

/// Error yielded by a truncated body; makes hyper abort the connection.
#[derive(Debug, thiserror::Error)]
#[error("response body truncated on purpose (fault injection)")]
pub(crate) struct Truncated;

impl Body for EmuBody {
    type Data = Bytes;
    type Error = Truncated;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Truncated>>> {
        let this = self.get_mut();
        match this {
            EmuBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            EmuBody::Truncated { first, pause } => match first.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => match pause.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Truncated))),
                    Poll::Pending => Poll::Pending,
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, EmuBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            EmuBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            EmuBody::Full(None) => SizeHint::with_exact(0),
            EmuBody::Truncated { .. } => SizeHint::default(),
        }
    }
}

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
            let io = TokioIo::new(ConnIo {
                stream,
                rst: Arc::clone(&rst),
            });
            let svc = service_fn(move |req| {
                let state = Arc::clone(&state);
                let rst = Arc::clone(&rst);
                async move { handle(state, conn_id, rst, req).await }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, svc)
                .await
            {
                tracing::debug!(conn_id, error = %e, "connection ended with an error");
            }
        });
    }
}

fn json_response(status: StatusCode, body: Bytes, retry_after: Option<u64>) -> Response<EmuBody> {
    let mut resp = Response::new(EmuBody::Full(Some(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(s) = retry_after {
        h.insert(header::RETRY_AFTER, header::HeaderValue::from(s));
    }
    resp
}

/// Serializes a JSON answer (`Value` serialization cannot fail).
pub(crate) fn reply_response(status: StatusCode, body: &Value) -> Response<EmuBody> {
    json_response(status, Bytes::from(body.to_string()), None)
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
        };
    let fault = match fault::from_headers(req.headers()) {
        Ok(Some(f)) => Some(f),
        Ok(None) => state.take_fault(method.as_str(), &path),
        Err(message) => {
            let reply = api::error(StatusCode::BAD_REQUEST, message);
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
    )
    .await;
    let extra = fault
        .filter(|f| f.kind == FaultKind::Latency)
        .map(|f| f.latency)
        .unwrap_or_default();
    delay(fixed + extra).await;
    let status = reply.status;
    let job_id = reply.job_id.clone();
    let Some(Fault { kind: k, .. }) = fault else {
        state.record_request(record(Some(status.as_u16()), job_id, None));
        return Ok(reply_response(status, &reply.body));
    };
    let text = reply.body.to_string();
    let resp = match k {
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
        FaultKind::TruncatedBody => {
            let bytes = Bytes::from(text);
            let half = bytes.slice(..bytes.len() / 2);
            let mut resp = Response::new(EmuBody::Truncated {
                first: Some(half),
                pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
            });
            *resp.status_mut() = status;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_LENGTH,
                header::HeaderValue::from(bytes.len()),
            );
            resp
        }
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
    Ok(resp)
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
