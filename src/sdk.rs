//! The AWS SDK set-up of a sandbox: one shared configuration and HTTPS client, and the clients
//! built from it once at cold start (Secrets Manager; DynamoDB when an idempotency table is
//! configured; Step Functions when callback-driven runs are; EventBridge when job-finished events
//! are).
//!
//! Standard AWS settings (region, credentials, `AWS_ENDPOINT_URL` for local runs and tests) come
//! from the environment as usual; what is ours is the HTTPS client underneath, tuned for a fast
//! cold start (measured in docs/benchmarks.md, "Levers").

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::SharedHttpClient;
use std::sync::Arc;

mod https;
mod warm_up;

pub use warm_up::{StoreWarmUp, WARM_UP_KEY, warm_up_dynamodb};

/// The sandbox's SDK configuration from the standard AWS environment, on our HTTPS client.
/// Idle connections are kept for `pool_idle_timeout` (the function's setting for every
/// upstream); `test_only_extra_roots` (PEM) is trusted besides the compiled-in roots, for tests
/// against local HTTPS stand-ins only.
pub async fn aws_config(
    pool_idle_timeout: Duration,
    test_only_extra_roots: Option<&[u8]>,
) -> Result<SdkConfig, SdkSetupError> {
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client(pool_idle_timeout, test_only_extra_roots)?)
        .load()
        .await)
}

/// The Secrets Manager client, with a per-attempt timeout: an attempt written into a pooled
/// connection that was dropped silently on the way (no FIN, no RST, for example while the
/// sandbox was frozen) gets no answer, and without this timeout would wait for the invocation's
/// deadline. Abandoned, the attempt is retried by the SDK's standard retry (timeouts are
/// transient errors there) on a new connection: `GetSecretValue` is a read, safe to repeat. The
/// attempt timeout leaves room for a cold first attempt (connector, TLS handshake, signing) at
/// the lowest memory size; figures in docs/client.md, "Idle connections and frozen sandboxes".
pub fn secrets_manager_client(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .build();
    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// The DynamoDB client of the idempotency store, with short timeouts: DynamoDB answers in
/// milliseconds, and every call happens inside an invocation that must leave time for the
/// Cloud BOT call (the store is also bounded by the invocation's deadline).
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(dynamodb_config(sdk).build())
}

/// The configuration [`dynamodb_client`] builds its client from (public so the store's CPU
/// micro-benchmark, `bench/src/bin/store-cpu.rs`, measures exactly this configuration).
///
/// Stalled-stream protection is off for this client: it wraps every request and response body
/// in a throughput monitor (≈ 35–40 µs of CPU per call, about a tenth of a store call, measured
/// side by side in docs/benchmarks.md, "Where the keyed execute's CPU goes"), and protects
/// nothing here: DynamoDB's bodies are a few hundred bytes and every attempt is already bounded
/// by the 2 s attempt timeout, well inside the protection's 5 s grace period. A stalled attempt
/// still ends as a timeout, which the SDK's standard retry treats as transient, as before.
pub fn dynamodb_config(sdk: &SdkConfig) -> aws_sdk_dynamodb::config::Builder {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .stalled_stream_protection(
            aws_sdk_dynamodb::config::StalledStreamProtectionConfig::disabled(),
        )
}

/// The Step Functions client of the callback receiver (`SendTaskSuccess` / `SendTaskFailure`),
/// with short timeouts for the same reason as DynamoDB's: the callback answer waits on it.
pub fn step_functions_client(sdk: &SdkConfig) -> aws_sdk_sfn::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build();
    let config = aws_sdk_sfn::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

/// The EventBridge client of the job-finished events (`PutEvents`), with short timeouts: a
/// put happens inside an invocation, after the run's end was recorded, and must not hold the
/// answer (the publisher is also bounded by the invocation's deadline).
pub fn eventbridge_client(sdk: &SdkConfig) -> aws_sdk_eventbridge::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    let config = aws_sdk_eventbridge::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// The SDK clients' HTTPS client ([`https::RustlsHttpClient`]): rustls with aws-lc (the
/// crypto provider the SDK's own client uses), trusting the Mozilla roots compiled into the
/// binary as parsed trust anchors ([`crate::tls_roots`], the same set as the Cloud BOT client)
/// instead of the system CA store (its effect on cold init: docs/benchmarks.md, "Levers").
/// HTTP/1.1 only (the connector builder announces it over ALPN), as the SDK clients here need.
fn https_client(
    pool_idle_timeout: Duration,
    test_only_extra_roots: Option<&[u8]>,
) -> Result<SharedHttpClient, SdkSetupError> {
    let roots = crate::tls_roots::trusted_roots(test_only_extra_roots)
        .map_err(|_| SdkSetupError("the test-only extra CA is not valid PEM"))?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| SdkSetupError("the TLS configuration could not be built"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(SharedHttpClient::new(https::RustlsHttpClient::new(
        tls,
        pool_idle_timeout,
    )))
}

/// The SDK's HTTPS client could not be set up (names what, never a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SdkSetupError(&'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_https_client_builds_from_the_compiled_in_roots() {
        assert!(https_client(Duration::from_secs(30), None).is_ok());
    }

    #[test]
    fn an_invalid_extra_ca_is_named() {
        let err = https_client(Duration::from_secs(30), Some(b"no certificate")).unwrap_err();
        assert_eq!(err.to_string(), "the test-only extra CA is not valid PEM");
    }
}
