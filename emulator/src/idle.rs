//! Idle keep-alive connections, as servers and middleboxes end them: after a connection has
//! carried no bytes and no request for the idle timeout, it is closed with a FIN (what a server's
//! keep-alive timeout does) or silently forgotten (what a middlebox that drops its connection
//! state does: no FIN, no RST, and whatever the client sends later is never read or answered).
//!
//! Public so the benchmark's counting Secrets Manager endpoint ends idle connections the same
//! way as the emulator. How a client must cope with each case is in docs/client.md.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How an idle connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleClose {
    /// Close the socket: the client's kernel receives a FIN.
    Fin,
    /// Stop reading and answering but keep the socket open: no FIN, no RST, and bytes the
    /// client sends later are acknowledged by the kernel and never read.
    Silent,
}

impl IdleClose {
    /// The CLI / wire name (`fin`, `silent`).
    pub fn as_str(self) -> &'static str {
        match self {
            IdleClose::Fin => "fin",
            IdleClose::Silent => "silent",
        }
    }
}

impl std::str::FromStr for IdleClose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fin" => Ok(IdleClose::Fin),
            "silent" => Ok(IdleClose::Silent),
            other => Err(format!("expected fin or silent, got {other:?}")),
        }
    }
}

/// When and how idle connections end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    /// Time without a byte read or written and without a request in progress.
    pub timeout: Duration,
    /// What happens then.
    pub close: IdleClose,
}

/// What one connection has been doing: when it last moved a byte, and how many requests it
/// is serving right now. Updated by [`Tracked`] and [`Activity::begin`].
#[derive(Debug)]
pub struct Activity {
    last: Mutex<Instant>,
    in_flight: AtomicUsize,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            last: Mutex::new(Instant::now()),
            in_flight: AtomicUsize::new(0),
        }
    }
}

/// Marks a request in progress for as long as it lives.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

impl Activity {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request starts: the connection is not idle until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InFlight(Arc::clone(self))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }
}

/// An IO object that records every byte moved in an [`Activity`].
#[derive(Debug)]
pub struct Tracked<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO> Tracked<IO> {
    /// Wraps `io`, recording into `activity`.
    pub fn new(io: IO, activity: Arc<Activity>) -> Self {
        Tracked { io, activity }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Resolves once the connection has been idle for `timeout`.
async fn idle_for(activity: &Activity, timeout: Duration) {
    loop {
        let deadline = activity.last() + timeout;
        tokio::time::sleep_until(deadline).await;
        if !activity.busy() && activity.last() + timeout <= Instant::now() {
            return;
        }
        if activity.busy() {
            // A request in progress moves bytes when it ends (the guard touches on drop), so
            // checking again one timeout later is enough.
            tokio::time::sleep(timeout).await;
        }
    }
}

/// Drives `connection` (a hyper connection future over a [`Tracked`] IO sharing `activity`)
/// until it ends, or until it has been idle as long as `policy` allows. Then `on_idle` runs and
/// the connection ends as the policy says: dropped (its socket closes with a FIN), or kept
/// unpolled with its socket open until the runtime shuts down (this future never resolves).
/// Returns the connection's own result when it ended by itself.
pub async fn drive<F: Future>(
    connection: F,
    activity: Arc<Activity>,
    policy: Option<IdlePolicy>,
    on_idle: impl FnOnce(IdleClose),
) -> Option<F::Output> {
    let Some(policy) = policy else {
        return Some(connection.await);
    };
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        out = connection.as_mut() => Some(out),
        () = idle_for(&activity, policy.timeout) => {
            on_idle(policy.close);
            if policy.close == IdleClose::Silent {
                // Holding the unpolled connection keeps its socket open and unread.
                std::future::pending::<()>().await;
            }
            None
        }
    }
}
