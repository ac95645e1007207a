//! The HTTP server loop every stand-in shares (the Runtime API, the Secrets Manager and DynamoDB
//! stand-ins): HTTP/1.1 keep-alive, optional TLS, an idle timeout that ends connections the way
//! the emulator does, and counters of accepted and idle-closed connections.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cloudbot_emulator::idle::{self, Activity, IdlePolicy, Tracked};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Connection counters of one stand-in server.
#[derive(Debug, Default)]
pub struct Connections {
    accepted: AtomicU64,
    idle_closed: AtomicU64,
}

impl Connections {
    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections ended by the idle timeout so far.
    pub fn idle_closed(&self) -> u64 {
        self.idle_closed.load(Ordering::Relaxed)
    }

    /// Sets both counters back to 0.
    pub fn reset(&self) {
        self.accepted.store(0, Ordering::Relaxed);
        self.idle_closed.store(0, Ordering::Relaxed);
    }
}

/// Serves `handle` (HTTP/1.1, keep-alive) on every connection `listener` accepts, each on its own
/// task, until the returned task is aborted. Idle connections end as `idle` says (never when
/// `None`), the same way the emulator ends them; with `tls`, it serves HTTPS. Shared by the
/// stand-ins.
pub(crate) fn spawn_http_server<S, H, F>(
    listener: TcpListener,
    state: Arc<S>,
    handle: H,
    idle: Option<IdlePolicy>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<Connections>,
) -> JoinHandle<()>
where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Requests and answers are tiny and answered at once: Nagle would only add delay.
            let _ = stream.set_nodelay(true);
            connections.accepted.fetch_add(1, Ordering::Relaxed);
            let state = state.clone();
            let connections = connections.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_one(stream, state, handle, idle, connections).await,
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            serve_one(stream, state, handle, idle, connections).await;
                        }
                    }
                }
            });
        }
    })
}

/// One connection of [`spawn_http_server`], plain or TLS.
async fn serve_one<IO, S, H, F>(
    io: IO,
    state: Arc<S>,
    handle: H,
    idle: Option<IdlePolicy>,
    connections: Arc<Connections>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Tracked::new(io, activity.clone()));
    let svc_activity = activity.clone();
    let service = hyper::service::service_fn(move |req| {
        let in_flight = svc_activity.begin();
        let answer = handle(state.clone(), req);
        async move {
            let answer = answer.await;
            drop(in_flight);
            answer
        }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let on_idle = |_| {
        connections.idle_closed.fetch_add(1, Ordering::Relaxed);
    };
    let _ = idle::drive(connection, activity, idle, on_idle).await;
}
