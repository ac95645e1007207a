//! Response bodies: JSON answers, and the damaged bodies faults need (a body that yields an
//! error after its first part makes hyper abort the connection mid-body: a truncated transfer).
//! Shared by the API and admin handlers, so neither depends on the server that calls them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use serde_json::Value;

/// Long enough for hyper to flush the head and the first part before the body errors.
const TRUNCATION_PAUSE: Duration = Duration::from_millis(50);

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

pub(crate) fn json_response(
    status: StatusCode,
    body: Bytes,
    retry_after: Option<u64>,
) -> Response<EmuBody> {
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

/// A JSON response whose body stops halfway: the head announces the full `content-length`,
/// the first half is sent, then the connection is aborted.
pub(crate) fn truncated_response(status: StatusCode, bytes: Bytes) -> Response<EmuBody> {
    let half = bytes.slice(..bytes.len() / 2);
    let mut resp = Response::new(EmuBody::Truncated {
        first: Some(half),
        pause: Box::pin(tokio::time::sleep(TRUNCATION_PAUSE)),
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
