//! A counting Step Functions stand-in on 127.0.0.1 for the callback receiver: it answers the
//! awsJson1.0 `SendTaskSuccess` / `SendTaskFailure` calls with `{}` (the task accepted) and
//! counts them, so a benchmark can drive a callback run to its end through the real bootstrap.
//! Any other operation is counted apart and refused. Plain HTTP or HTTPS with a test CA, like
//! the other stand-ins; the function's SDK is pointed here with `AWS_ENDPOINT_URL_SFN`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Error;
use crate::server::{Connections, spawn_http_server};

#[derive(Default)]
struct State {
    told: AtomicU64,
    other: AtomicU64,
}

/// The stand-in. Dropping it stops the server.
pub struct StepFunctionsEndpoint {
    addr: SocketAddr,
    https: bool,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for StepFunctionsEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StepFunctionsEndpoint {
    /// Serves at once; HTTPS with a certificate of `tls` when given.
    pub async fn start(tls: Option<&cloudbot_emulator::TestCa>) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let server = spawn_http_server(
            listener,
            state.clone(),
            handle,
            None,
            tls.map(cloudbot_emulator::TestCa::acceptor),
            Arc::new(Connections::default()),
        );
        Ok(Self {
            addr,
            https: tls.is_some(),
            state,
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), for `AWS_ENDPOINT_URL_SFN`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Tasks told (`SendTaskSuccess` + `SendTaskFailure`) so far.
    pub fn tasks_told(&self) -> u64 {
        self.state.told.load(Ordering::Relaxed)
    }

    /// Other calls so far (should stay 0).
    pub fn other(&self) -> u64 {
        self.state.other.load(Ordering::Relaxed)
    }
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
    let _ = req.into_body().collect().await;
    let told = matches!(
        target.as_str(),
        "AWSStepFunctions.SendTaskSuccess" | "AWSStepFunctions.SendTaskFailure"
    );
    let mut resp = if told {
        state.told.fetch_add(1, Ordering::Relaxed);
        Response::new(Full::new(Bytes::from_static(b"{}")))
    } else {
        state.other.fetch_add(1, Ordering::Relaxed);
        let mut r = Response::new(Full::new(Bytes::from_static(
            br#"{"__type":"UnknownOperationException"}"#,
        )));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    };
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    Ok(resp)
}
