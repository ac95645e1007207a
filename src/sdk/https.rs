//! The SDK's HTTPS connector on a rustls configuration built from parsed trust anchors: the
//! compiled-in roots go from DER straight into a `RootCertStore`, once per process and shared
//! with the Cloud BOT client (`crate::tls_roots`), instead of being encoded as PEM for the SDK's
//! `TlsContext` (the only form it accepts) and decoded back by the SDK for every connector
//! (docs/benchmarks.md, "Levers", levers 13 and 16).
//!
//! What the SDK's own connector does around the request is kept: hyper 1 client with a
//! keep-alive pool, the connect timeout and read timeout from the SDK's settings, and the same
//! classification of failures into [`ConnectorError`] kinds, which is what the SDK's retry
//! strategy reads (I/O and timeouts are transient; user errors are not). One connector per
//! distinct settings, cached, as the SDK's client does.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type Https = hyper_rustls::HttpsConnector<TcpConnector>;

/// A connector's connect and read timeouts: the cache key of [`RustlsHttpClient`].
type Timeouts = (Option<Duration>, Option<Duration>);

/// The SDK's HTTP client: hands the SDK one [`RustlsConnector`] per distinct connect/read
/// timeout, all on one rustls configuration.
#[derive(Debug)]
pub(super) struct RustlsHttpClient {
    tls: Arc<rustls::ClientConfig>,
    pool_idle_timeout: Duration,
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl RustlsHttpClient {
    pub(super) fn new(tls: rustls::ClientConfig, pool_idle_timeout: Duration) -> Self {
        Self {
            tls: Arc::new(tls),
            pool_idle_timeout,
            connectors: Mutex::new(HashMap::new()),
        }
    }
}

impl HttpClient for RustlsHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key: Timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connectors
            .entry(key)
            .or_insert_with(|| {
                SharedHttpConnector::new(RustlsConnector::new(
                    Arc::clone(&self.tls),
                    self.pool_idle_timeout,
                    key.0,
                    key.1,
                ))
            })
            .clone()
    }

    // `validate_base_client_config` keeps the trait's no-op default: the SDK's own client
    // builds and drops a connector there (lever 8 in docs/benchmarks.md).

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        // The SDK's user agent metadata, as its own hyper client reports it.
        Some(ConnectorMetadata::new("hyper", Some("1.x".into())))
    }
}

/// One pooled hyper client with fixed timeouts.
#[derive(Debug, Clone)]
struct RustlsConnector {
    client: Client<Https, SdkBody>,
    read_timeout: Option<Duration>,
}

impl RustlsConnector {
    fn new(
        tls: Arc<rustls::ClientConfig>,
        pool_idle_timeout: Duration,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        // As the SDK's connector: small requests go out without waiting for ACKs (Nagle).
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(https);
        Self {
            client,
            read_timeout,
        }
    }
}

impl HttpConnector for RustlsConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(bound) => match tokio::time::timeout(bound, response).await {
                    Ok(response) => response,
                    Err(elapsed) => return Err(ConnectorError::timeout(elapsed.into())),
                },
                None => response.await,
            };
            match response {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|err| ConnectorError::other(err.into(), None)),
                Err(err) => Err(classify(err)),
            }
        })
    }
}

/// The SDK connector's classification (`aws-smithy-http-client`, `downcast_error`): a failed
/// connection (DNS, TCP, TLS, connect timeout) or a connection closed under the request is I/O
/// (transient: retried by the SDK's standard retry); a message cut short is transient; a
/// request hyper refused is a user error (not retried); anything else is left to the SDK.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let is_connect = err.is_connect();
    let hyper_error = find_source::<hyper::Error>(&err).map(|e| {
        (
            e.is_timeout(),
            e.is_user(),
            e.is_closed() || e.is_canceled() || find_source::<std::io::Error>(e).is_some(),
            e.is_incomplete_message(),
        )
    });
    let has_io = find_source::<std::io::Error>(&err).is_some();
    let err: BoxError = Box::new(err);
    match hyper_error {
        Some((true, _, _, _)) => ConnectorError::timeout(err),
        Some((_, true, _, _)) => ConnectorError::user(err),
        Some((_, _, true, _)) => ConnectorError::io(err),
        Some((_, _, _, true)) => ConnectorError::other(err, Some(ErrorKind::TransientError)),
        Some(_) => ConnectorError::other(err, None),
        None if is_connect || has_io => ConnectorError::io(err),
        None => ConnectorError::other(err, None),
    }
}

fn find_source<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}
