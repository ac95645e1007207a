//! The lean DynamoDB call path (issue 24): `PutItem`, `UpdateItem` and `GetItem` written as
//! awsJson1.0 (`table::wire`), signed with a cached SigV4 key (`table::sigv4`) and sent on the
//! SDK client's own pooled HTTPS connector, with the SDK's standard retry rules, instead of
//! through the SDK's per-call orchestrator (≈ 200 µs of CPU per call outside transmit; the
//! decision and its figures: docs/benchmarks.md, "A lean DynamoDB call path").
//!
//! What the lean path reuses rather than re-implements is *learned* from one real SDK call of
//! the same store (the init's warm-up read in the function): an interceptor on that call reads
//! the request the SDK resolved and signed and keeps
//! - the endpoint URL (the SDK's endpoint rules: region, FIPS, dual-stack, account-based
//!   endpoints, `AWS_ENDPOINT_URL(_DYNAMODB)`), and the signing region and service of its
//!   `Authorization` header;
//! - the HTTP connector the SDK used (the same settings, so the same keep-alive pool);
//! - the retry and timeout configuration the SDK applied.
//!
//! Until a call was learned (and for an input the lean path does not write) the SDK sends it, so
//! nothing is ever sent without the SDK's own resolution of where and how. Credentials come from
//! the client's credentials provider, cached until a minute before they expire (15 minutes when
//! they carry no expiry, as the SDK's identity cache does).
//!
//! Retries, as the SDK's standard mode classifies them (`aws-runtime`'s `AwsErrorCodeClassifier`,
//! `aws-smithy-runtime`'s `HttpStatusCodeClassifier` and `TransientErrorClassifier`): the
//! throttling codes of [`THROTTLING_ERRORS`], the transient codes `RequestTimeout` and
//! `RequestTimeoutException`, HTTP 500/502/503/504, an attempt that timed out, an answer that
//! could not be read, and a connection that failed or broke (I/O, connect timeout). Same maximum
//! attempts, same exponential backoff with full jitter (a throttling error backs off from the
//! configured initial backoff, others from the retry spec's non-throttling one), same per-attempt
//! and per-operation timeouts. Not re-implemented: the standard mode's retry quota (a token
//! bucket that stops retries after many failures in a row; each call here makes at most the
//! configured attempts and is bounded by the invocation's deadline), clock-skew correction and
//! `x-amz-retry-after` (DynamoDB sends neither hint). A conditional write retried after a lost
//! answer meets its own write as a failed condition, exactly as on the SDK path.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::auth::AuthSchemeId;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::{ResolveIdentity, SharedIdentityResolver};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::GetIdentityResolver;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::retry::{ErrorKind, RetryConfig, RetryMode};
use aws_smithy_types::timeout::TimeoutConfig;

use super::sigv4::{Post, Signer, Signing};
use super::wire::{Operation, ServiceFault};

/// The SDK's throttling error codes (`aws_runtime::retries::classifiers::THROTTLING_ERRORS`).
pub(crate) const THROTTLING_ERRORS: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// The SDK's transient error codes (`aws_runtime::retries::classifiers::TRANSIENT_ERRORS`).
pub(crate) const TRANSIENT_ERRORS: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// The HTTP statuses the SDK retries (`HttpStatusCodeClassifier`'s default).
pub(crate) const TRANSIENT_STATUSES: &[u16] = &[500, 502, 503, 504];

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The SigV4 auth scheme (`aws_runtime::auth::sigv4::SCHEME_ID`).
const SIGV4: AuthSchemeId = AuthSchemeId::new("sigv4");

/// A lean-path failure that is not the service's answer (names what, never a body or a secret).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Fault(&'static str);

/// Where and how the learned SDK call went.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    uri: String,
    host: String,
    path: String,
    region: String,
    service: String,
    connector: SharedHttpConnector,
    /// The SigV4 identity resolver of the learned call (the client's credentials provider) and
    /// the runtime components it is called with.
    identity: SharedIdentityResolver,
    components: RuntimeComponents,
    attempt_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
    retry: RetryConfig,
}

/// `(host as signed, path)` of an absolute URL; `None` for anything else (a query, no scheme).
fn host_and_path(uri: &str) -> Option<(String, String)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || path.contains('?') || authority.contains('@') {
        return None;
    }
    // The signed host leaves out the scheme's default port, as the SDK's signer does.
    let host = match (scheme, authority.rsplit_once(':')) {
        ("https", Some((h, "443"))) | ("http", Some((h, "80"))) => h,
        _ => authority,
    };
    Some((host.to_owned(), path.to_owned()))
}

/// `(region, service)` of a SigV4 `Authorization` header.
fn scope_of(authorization: &str) -> Option<(String, String)> {
    let credential = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")?
        .split(", ")
        .find_map(|part| part.strip_prefix("Credential="))?;
    let mut parts = credential.rsplit('/');
    let (terminator, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (terminator == "aws4_request").then(|| (region.to_owned(), service.to_owned()))
}

impl Route {
    /// The route of a request the SDK is about to transmit; `None` when it is not one the lean
    /// path can repeat (not SigV4-signed, not standard retries, no HTTP client).
    fn learn(request: &HttpRequest, rc: &RuntimeComponents, cfg: &ConfigBag) -> Option<Self> {
        let uri = request.uri().to_owned();
        let (host, path) = host_and_path(&uri)?;
        let (region, service) = scope_of(request.headers().get("authorization")?)?;
        let retry = cfg.load::<RetryConfig>()?.clone();
        if retry.mode() != RetryMode::Standard {
            return None;
        }
        let timeouts = cfg.load::<TimeoutConfig>()?;
        let mut settings = HttpConnectorSettings::builder();
        settings.set_connect_timeout(timeouts.connect_timeout());
        settings.set_read_timeout(timeouts.read_timeout());
        // The same settings as the SDK's own call: the HTTP client hands out the same connector,
        // so both paths share one keep-alive pool.
        let connector = rc.http_client()?.http_connector(&settings.build(), rc);
        let identity = rc.identity_resolver(SIGV4)?;
        Some(Self {
            uri,
            host,
            path,
            region,
            service,
            connector,
            identity,
            components: rc.clone(),
            attempt_timeout: timeouts.operation_attempt_timeout(),
            operation_timeout: timeouts.operation_timeout(),
            retry,
        })
    }
}

/// Credentials and when to ask the provider again.
struct CachedCredentials {
    credentials: Credentials,
    refresh_at: SystemTime,
}

/// The lean path of one store: what was learned, the credentials and the signing key.
pub(crate) struct Lean {
    route: OnceLock<Route>,
    credentials: Mutex<Option<CachedCredentials>>,
    signer: Signer,
}

impl std::fmt::Debug for Lean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials are secrets: only whether a route was learned is shown.
        f.debug_struct("Lean")
            .field("learned", &self.route.get().is_some())
            .finish_non_exhaustive()
    }
}

/// How long credentials without an expiry are kept (the SDK identity cache's default).
const NO_EXPIRY_KEEP: Duration = Duration::from_secs(15 * 60);
/// How long before their expiry credentials are fetched again.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

impl Lean {
    pub(crate) fn new() -> Self {
        Self {
            route: OnceLock::new(),
            credentials: Mutex::new(None),
            signer: Signer::default(),
        }
    }

    /// The learned route, once a call was learned.
    pub(crate) fn route(&self) -> Option<&Route> {
        self.route.get()
    }

    /// The interceptor that learns the route from an SDK call.
    pub(crate) fn learner(self: &Arc<Self>) -> Learn {
        Learn(Arc::clone(self))
    }

    async fn credentials(&self, route: &Route) -> Result<Credentials, BoxError> {
        let now = SystemTime::now();
        if let Some(cached) = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && now < cached.refresh_at
        {
            return Ok(cached.credentials.clone());
        }
        let identity = route
            .identity
            .resolve_identity(&route.components, &ConfigBag::base())
            .await?;
        let credentials = identity
            .data::<Credentials>()
            .ok_or(Fault("the identity is not AWS credentials"))?
            .clone();
        let refresh_at = match identity.expiration().or(credentials.expiry()) {
            Some(expiry) => expiry.checked_sub(EXPIRY_MARGIN).unwrap_or(now),
            None => now + NO_EXPIRY_KEEP,
        };
        *self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(CachedCredentials {
            credentials: credentials.clone(),
            refresh_at,
        });
        Ok(credentials)
    }

    /// Sends one operation with `body`, retrying what the SDK's standard mode retries.
    pub(crate) async fn send<O: Operation>(
        &self,
        route: &Route,
        body: Vec<u8>,
    ) -> Result<O::Output, SdkError<O::Error, HttpResponse>>
    where
        O::Error: ProvideErrorMetadata,
    {
        let attempts = async {
            let mut made = 0;
            loop {
                made += 1;
                let result = self.attempt::<O>(route, body.clone()).await;
                let kind = match &result {
                    Ok(_) => return result,
                    Err(err) => retry_kind(err),
                };
                match kind {
                    Some(kind) if made < route.retry.max_attempts() => {
                        tokio::time::sleep(backoff(&route.retry, kind, made)).await;
                    }
                    _ => return result,
                }
            }
        };
        match route.operation_timeout {
            Some(bound) => match tokio::time::timeout(bound, attempts).await {
                Ok(result) => result,
                Err(_) => Err(SdkError::timeout_error(Fault("operation timed out"))),
            },
            None => attempts.await,
        }
    }

    async fn attempt<O: Operation>(
        &self,
        route: &Route,
        body: Vec<u8>,
    ) -> Result<O::Output, SdkError<O::Error, HttpResponse>> {
        let credentials = self
            .credentials(route)
            .await
            .map_err(SdkError::construction_failure)?;
        let target = format!("DynamoDB_20120810.{}", O::NAME);
        let signed = self.signer.sign(
            &Signing {
                access_key_id: credentials.access_key_id(),
                secret_access_key: credentials.secret_access_key(),
                session_token: credentials.session_token(),
                region: &route.region,
                service: &route.service,
            },
            SystemTime::now(),
            &Post {
                host: &route.host,
                path: &route.path,
                content_type: CONTENT_TYPE,
                target: &target,
                body: &body,
            },
        );
        let mut request = HttpRequest::new(SdkBody::from(body));
        let built = (|| {
            request.set_method("POST").ok()?;
            request.set_uri(route.uri.as_str()).ok()?;
            let headers = request.headers_mut();
            headers.insert("content-type", CONTENT_TYPE);
            headers.insert("host", route.host.clone());
            headers.insert("x-amz-target", target);
            headers.insert("x-amz-date", signed.x_amz_date);
            headers.insert("authorization", signed.authorization);
            if let Some(token) = credentials.session_token() {
                headers.insert("x-amz-security-token", token.to_owned());
            }
            Some(())
        })();
        if built.is_none() {
            return Err(SdkError::construction_failure(Fault(
                "the request could not be built",
            )));
        }
        let exchange = async {
            let mut response = route
                .connector
                .call(request)
                .await
                .map_err(SdkError::dispatch_failure)?;
            let read = ByteStream::new(response.take_body()).collect().await;
            let bytes = match read {
                Ok(read) => read.into_bytes(),
                Err(err) => return Err(SdkError::response_error(err, response)),
            };
            *response.body_mut() = SdkBody::from(bytes.clone());
            if response.status().is_success() {
                let parsed = serde_json::from_slice(&bytes)
                    .map_err(|_| "the answer is not JSON")
                    .and_then(|json| O::output(&json));
                return parsed.map_err(|why| SdkError::response_error(Fault(why), response));
            }
            let fault = ServiceFault::parse(response.headers().get("x-amzn-errortype"), &bytes);
            Err(SdkError::service_error(O::error(&fault), response))
        };
        match route.attempt_timeout {
            Some(bound) => match tokio::time::timeout(bound, exchange).await {
                Ok(result) => result,
                Err(_) => Err(SdkError::timeout_error(Fault("attempt timed out"))),
            },
            None => exchange.await,
        }
    }
}

/// Whether (and as what) the SDK's standard mode retries `err`; `None`: not retried.
pub(crate) fn retry_kind<E: ProvideErrorMetadata + StdError + 'static>(
    err: &SdkError<E, HttpResponse>,
) -> Option<ErrorKind> {
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code();
            if code.is_some_and(|c| THROTTLING_ERRORS.contains(&c)) {
                Some(ErrorKind::ThrottlingError)
            } else if code.is_some_and(|c| TRANSIENT_ERRORS.contains(&c))
                || TRANSIENT_STATUSES.contains(&ctx.raw().status().as_u16())
            {
                Some(ErrorKind::TransientError)
            } else {
                None
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Some(ErrorKind::TransientError),
        SdkError::DispatchFailure(failure) => {
            if failure.is_timeout() || failure.is_io() {
                Some(ErrorKind::TransientError)
            } else {
                failure.as_other()
            }
        }
        _ => None,
    }
}

/// The delay before the attempt after `made` attempts: the SDK standard mode's exponential
/// backoff (`initial × 2^(made−1)`, at most the maximum) times a random factor in `[0, 1)`.
pub(crate) fn backoff(retry: &RetryConfig, kind: ErrorKind, made: u32) -> Duration {
    let initial = if kind == ErrorKind::ThrottlingError {
        retry.initial_backoff()
    } else {
        retry.retry_spec().map_or(retry.initial_backoff(), |s| {
            s.non_throttling_initial_backoff()
        })
    };
    let exponential = 2_u32
        .checked_pow(made.saturating_sub(1))
        .and_then(|p| initial.checked_mul(p))
        .map_or(retry.max_backoff(), |d| d.min(retry.max_backoff()));
    let base = if retry.use_static_exponential_base() {
        1.0
    } else {
        fastrand::f64()
    };
    exponential.mul_f64(base)
}

/// The interceptor of a learning SDK call: keeps the route of the first request it sees.
#[derive(Debug)]
pub(crate) struct Learn(Arc<Lean>);

impl Intercept for Learn {
    fn name(&self) -> &'static str {
        "LeanDynamoDbLearn"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.route.get().is_none()
            && let Some(route) = Route::learn(context.request(), rc, cfg)
        {
            let _ = self.0.route.set(route);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;

    fn service(status: u16, body: &str) -> SdkError<PutItemError, HttpResponse> {
        let fault = ServiceFault::parse(None, body.as_bytes());
        SdkError::service_error(
            <super::super::wire::Put as Operation>::error(&fault),
            HttpResponse::new(
                StatusCode::try_from(status).unwrap(),
                SdkBody::from(body.to_owned()),
            ),
        )
    }

    fn code(c: &str) -> String {
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{c}"}}"#)
    }

    #[test]
    fn what_the_sdk_retries_is_retried_and_nothing_else() {
        let retried = [
            (
                400,
                code("ProvisionedThroughputExceededException"),
                ErrorKind::ThrottlingError,
            ),
            (400, code("ThrottlingException"), ErrorKind::ThrottlingError),
            (
                400,
                code("RequestLimitExceeded"),
                ErrorKind::ThrottlingError,
            ),
            (
                400,
                code("RequestTimeoutException"),
                ErrorKind::TransientError,
            ),
            (500, code("InternalServerError"), ErrorKind::TransientError),
            (503, code("ServiceUnavailable"), ErrorKind::TransientError),
            (502, "<html>".to_owned(), ErrorKind::TransientError),
            (504, String::new(), ErrorKind::TransientError),
        ];
        for (status, body, kind) in retried {
            assert_eq!(
                retry_kind(&service(status, &body)),
                Some(kind),
                "{status} {body}"
            );
        }
        for (status, body) in [
            (400, code("ConditionalCheckFailedException")),
            (400, code("ResourceNotFoundException")),
            (400, code("ValidationException")),
            (400, code("AccessDeniedException")),
            (400, code("UnrecognizedClientException")),
            (413, String::new()),
            (501, String::new()),
        ] {
            assert_eq!(retry_kind(&service(status, &body)), None, "{status} {body}");
        }
        let e = |f| SdkError::<PutItemError, HttpResponse>::dispatch_failure(f);
        assert_eq!(
            retry_kind(&e(ConnectorError::io(Box::new(Fault("reset"))))),
            Some(ErrorKind::TransientError)
        );
        assert_eq!(
            retry_kind(&e(ConnectorError::timeout(Box::new(Fault("connect"))))),
            Some(ErrorKind::TransientError)
        );
        assert_eq!(
            retry_kind(&e(ConnectorError::user(Box::new(Fault("bad"))))),
            None
        );
        assert_eq!(
            retry_kind(&SdkError::<PutItemError, HttpResponse>::timeout_error(
                Fault("t")
            )),
            Some(ErrorKind::TransientError)
        );
        assert_eq!(
            retry_kind(&SdkError::<PutItemError, HttpResponse>::construction_failure(Fault("c"))),
            None
        );
    }

    #[test]
    fn the_retried_codes_are_the_sdks_own() {
        use aws_runtime::retries::classifiers as sdk;
        assert_eq!(THROTTLING_ERRORS, sdk::THROTTLING_ERRORS);
        assert_eq!(TRANSIENT_ERRORS, sdk::TRANSIENT_ERRORS);
    }

    #[test]
    fn backoff_is_the_standard_modes() {
        let retry = RetryConfig::standard()
            .with_use_static_exponential_base(true)
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(300));
        let at = |kind, made| backoff(&retry, kind, made);
        assert_eq!(
            at(ErrorKind::ThrottlingError, 1),
            Duration::from_millis(100)
        );
        assert_eq!(
            at(ErrorKind::ThrottlingError, 2),
            Duration::from_millis(200)
        );
        assert_eq!(
            at(ErrorKind::ThrottlingError, 3),
            Duration::from_millis(300)
        );
        assert_eq!(
            at(ErrorKind::ThrottlingError, 99),
            Duration::from_millis(300)
        );
        let jittered = RetryConfig::standard().with_initial_backoff(Duration::from_secs(1));
        for _ in 0..100 {
            assert!(backoff(&jittered, ErrorKind::TransientError, 1) < Duration::from_secs(1));
        }
    }

    #[test]
    fn urls_and_scopes_are_read_as_the_sdk_wrote_them() {
        assert_eq!(
            host_and_path("https://dynamodb.us-east-1.amazonaws.com"),
            Some(("dynamodb.us-east-1.amazonaws.com".into(), "/".into()))
        );
        assert_eq!(
            host_and_path("https://h.example:443/"),
            Some(("h.example".into(), "/".into()))
        );
        assert_eq!(
            host_and_path("http://127.0.0.1:5000/"),
            Some(("127.0.0.1:5000".into(), "/".into()))
        );
        assert_eq!(host_and_path("https://h/?x=1"), None);
        assert_eq!(host_and_path("h/"), None);
        assert_eq!(
            scope_of(
                "AWS4-HMAC-SHA256 Credential=AKID/20261208/ap-northeast-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=ab"
            ),
            Some(("ap-northeast-1".into(), "dynamodb".into()))
        );
        assert_eq!(scope_of("Bearer x"), None);
    }
}
