//! A counting DynamoDB stand-in on 127.0.0.1 for the idempotency store: it answers the awsJson1.0
//! `PutItem` / `UpdateItem` / `GetItem` calls the function makes, each after a fixed delay, and
//! counts them by operation. Stateless by default: every claim is won and every update applies,
//! so each benchmarked execute walks the happy path (claim, POST, complete) and the figure is
//! the store's cost on that path, with the store's own latency fixed like the emulator's.
//! [`DynamoDbEndpoint::start_keeping`] makes it keep items instead, for a whole run (reads that
//! return what was written, conditions evaluated: `dynamodb_items.rs`), and count per table.
//!
//! Chosen over moto for the same reasons as the Secrets Manager endpoint (`secrets.rs`): no
//! Python process on the 2 cores during timing, exact counts, a latency that is a constant.
//! Optionally HTTPS (a test CA, as the CPU model's other upstreams) and optionally closing every
//! connection after its answer (`Connection: close`), so a benchmark can weigh what connection
//! reuse is worth to the function's store calls.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Error;
use crate::dynamodb_items::Tables;

struct State {
    latency: Duration,
    close: bool,
    /// Kept items (`start_keeping`); `None`: stateless.
    tables: Option<Tables>,
    /// Calls per table, kept items only.
    per_table: Mutex<BTreeMap<String, StoreCalls>>,
    /// Calls refused as not served or invalid (kept items only; a failed condition is not one).
    refused: AtomicU64,
    put_item: AtomicU64,
    update_item: AtomicU64,
    get_item: AtomicU64,
    other: AtomicU64,
}

/// Calls the stand-in answered, by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCalls {
    /// Claims.
    pub put_item: u64,
    /// Settlements.
    pub update_item: u64,
    /// Reads (only the operator's resolve reads).
    pub get_item: u64,
    /// Anything else (should stay 0).
    pub other: u64,
}

/// The stand-in. Dropping it stops the server.
pub struct DynamoDbEndpoint {
    addr: SocketAddr,
    https: bool,
    connections: Arc<crate::server::Connections>,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for DynamoDbEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl DynamoDbEndpoint {
    /// Serves every call after `latency`, plain HTTP, keeping connections open.
    pub async fn start(latency: Duration) -> Result<Self, Error> {
        Self::start_with(latency, None, false).await
    }

    /// Serves every call after `latency`; HTTPS with a certificate of `tls` when given; with
    /// `close`, every answer carries `Connection: close` and its connection ends after it.
    pub async fn start_with(
        latency: Duration,
        tls: Option<&cloudbot_emulator::TestCa>,
        close: bool,
    ) -> Result<Self, Error> {
        Self::serve(latency, tls, close, None).await
    }

    /// Keeps the items of `tables` (`(name, partition key attribute)`), evaluating every
    /// condition and update as DynamoDB does (`dynamodb_items.rs`), every call after `latency`,
    /// keeping connections; HTTPS with `tls`. Counts per table too ([`Self::calls_of`]).
    pub async fn start_keeping(
        latency: Duration,
        tls: Option<&cloudbot_emulator::TestCa>,
        tables: &[(&str, &str)],
    ) -> Result<Self, Error> {
        Self::serve(
            latency,
            tls,
            false,
            Some(Tables::new(tables.iter().copied())),
        )
        .await
    }

    async fn serve(
        latency: Duration,
        tls: Option<&cloudbot_emulator::TestCa>,
        close: bool,
        tables: Option<Tables>,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            latency,
            close,
            tables,
            per_table: Mutex::default(),
            refused: AtomicU64::new(0),
            put_item: AtomicU64::new(0),
            update_item: AtomicU64::new(0),
            get_item: AtomicU64::new(0),
            other: AtomicU64::new(0),
        });
        // No idle policy: a store keeps connections as long as the client does (unless `close`).
        let connections = Arc::new(crate::server::Connections::default());
        let server = crate::server::spawn_http_server(
            listener,
            state.clone(),
            handle,
            None,
            tls.map(cloudbot_emulator::TestCa::acceptor),
            connections.clone(),
        );
        Ok(Self {
            addr,
            https: tls.is_some(),
            connections,
            state,
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), for `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The fixed latency of every answer.
    pub fn latency(&self) -> Duration {
        self.state.latency
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.connections.accepted()
    }

    /// Calls answered so far.
    pub fn calls(&self) -> StoreCalls {
        StoreCalls {
            put_item: self.state.put_item.load(Ordering::Relaxed),
            update_item: self.state.update_item.load(Ordering::Relaxed),
            get_item: self.state.get_item.load(Ordering::Relaxed),
            other: self.state.other.load(Ordering::Relaxed),
        }
    }

    /// Calls answered so far on `table` (kept items only; a stateless stand-in counts no table).
    pub fn calls_of(&self, table: &str) -> StoreCalls {
        let per_table = self
            .state
            .per_table
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        per_table.get(table).copied().unwrap_or_default()
    }

    /// Calls refused so far because the stand-in does not serve them or they are invalid
    /// (kept items only; a failed condition is an answer, not a refusal). A harness that sees
    /// one cannot trust its counts: the function may have carried on past a failed write.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::Relaxed)
    }

    /// `n` PutItem round trips from a plain keep-alive hyper client: the stand-in as the leanest
    /// client sees it (its fixed latency plus its own handling), the baseline of the store's
    /// share in the function's figure.
    pub async fn direct_calls(&self, n: usize) -> Result<Vec<Duration>, Error> {
        use hyper_util::client::legacy::Client;
        use hyper_util::client::legacy::connect::HttpConnector;
        use hyper_util::rt::TokioExecutor;
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let body = Bytes::from_static(br#"{"TableName":"bench","Item":{}}"#);
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let req = Request::builder()
                .method(hyper::Method::POST)
                .uri(self.url())
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", "DynamoDB_20120810.PutItem")
                .body(Full::new(body.clone()))
                .map_err(|e| Error::msg(format!("direct PutItem request: {e}")))?;
            let start = std::time::Instant::now();
            let resp = client
                .request(req)
                .await
                .map_err(|e| Error::msg(format!("direct PutItem: {e}")))?;
            let _ = resp.into_body().collect().await;
            samples.push(start.elapsed());
        }
        self.reset();
        Ok(samples)
    }

    /// Sets every counter back to 0.
    pub fn reset(&self) {
        for counter in [
            &self.state.put_item,
            &self.state.update_item,
            &self.state.get_item,
            &self.state.other,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.state
            .per_table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
    // Read the whole request like a server would before answering.
    let request = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (counter, body) = match target.as_str() {
        "DynamoDB_20120810.PutItem" => (&state.put_item, "{}"),
        "DynamoDB_20120810.UpdateItem" => (&state.update_item, "{}"),
        "DynamoDB_20120810.GetItem" => (&state.get_item, "{}"),
        _ => (&state.other, r#"{"__type":"UnknownOperationException"}"#),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let (refused, body) = match &state.tables {
        None => (std::ptr::eq(counter, &state.other), body.to_owned()),
        Some(tables) => keep(&state, tables, &target, &request),
    };
    tokio::time::sleep(state.latency).await;
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    if refused {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    h.insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static("00000000-0000-4000-8000-000000000000"),
    );
    if state.close {
        // hyper's server ends the connection once this answer is written.
        h.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    Ok(resp)
}

/// One call on kept items: counted under its table, answered from [`Tables`]. Returns whether
/// it was refused (HTTP 400) and the body.
fn keep(state: &State, tables: &Tables, target: &str, request: &[u8]) -> (bool, String) {
    let operation = target.strip_prefix("DynamoDB_20120810.").unwrap_or(target);
    let body: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
    let table = body
        .get("TableName")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    {
        let mut per_table = state.per_table.lock().unwrap_or_else(|e| e.into_inner());
        let calls = per_table.entry(table).or_default();
        match operation {
            "PutItem" => calls.put_item += 1,
            "UpdateItem" => calls.update_item += 1,
            "GetItem" => calls.get_item += 1,
            _ => calls.other += 1,
        }
    }
    match tables.call(operation, &body) {
        Ok(answer) => (false, answer.to_string()),
        Err(refusal) => {
            if refusal.kind != "ConditionalCheckFailedException" {
                state.refused.fetch_add(1, Ordering::Relaxed);
            }
            (true, refusal.body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two calls of one keep-alive client: one connection when the stand-in keeps it, two when
    /// it closes each after its answer.
    #[tokio::test]
    async fn the_close_mode_ends_every_connection_after_its_answer() {
        for (close, expected) in [(false, 1), (true, 2)] {
            let store = DynamoDbEndpoint::start_with(Duration::ZERO, None, close)
                .await
                .unwrap();
            let calls = store.direct_calls(2).await.unwrap();
            assert_eq!(calls.len(), 2);
            assert_eq!(store.connections_accepted(), expected, "close = {close}");
        }
    }

    /// Over HTTP: a kept item is read back, a failed condition is a 400 the SDK can parse, and
    /// the calls are counted under their table.
    #[tokio::test]
    async fn a_keeping_stand_in_answers_from_its_items_and_counts_per_table() {
        let store = DynamoDbEndpoint::start_keeping(Duration::ZERO, None, &[("t", "k")])
            .await
            .unwrap();
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::TokioExecutor;
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let call = |op: &str, body: serde_json::Value| {
            let req = Request::builder()
                .method(hyper::Method::POST)
                .uri(store.url())
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let client = client.clone();
            async move {
                let resp = client.request(req).await.unwrap();
                let status = resp.status().as_u16();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        let put = serde_json::json!({
            "TableName": "t",
            "Item": {"k": {"S": "a"}, "v": {"N": "1"}},
            "ConditionExpression": "attribute_not_exists(k)",
        });
        assert_eq!(call("PutItem", put.clone()).await.0, 200);
        let (status, text) = call("PutItem", put).await;
        assert_eq!(status, 400);
        assert!(text.contains("#ConditionalCheckFailedException"), "{text}");
        let got = call(
            "GetItem",
            serde_json::json!({"TableName": "t", "Key": {"k": {"S": "a"}}}),
        )
        .await;
        assert_eq!(got.0, 200);
        let got: serde_json::Value = serde_json::from_str(&got.1).unwrap();
        assert_eq!(got["Item"]["v"]["N"], "1");
        assert_eq!(
            store.calls_of("t"),
            StoreCalls {
                put_item: 2,
                get_item: 1,
                ..StoreCalls::default()
            }
        );
        assert_eq!(store.calls_of("other"), StoreCalls::default());
        assert_eq!(store.refused(), 0, "a failed condition is not a refusal");
        let (status, _) = call("Query", serde_json::json!({"TableName": "t"})).await;
        assert_eq!(status, 400);
        assert_eq!(store.refused(), 1);
    }
}
