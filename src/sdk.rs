//! The AWS SDK set-up of a sandbox: one shared configuration and HTTPS client, and the clients
//! built from it once at cold start (Secrets Manager; DynamoDB when an idempotency table is
//! configured; Step Functions when callback-driven runs are).
//!
//! Standard AWS settings (region, credentials, `AWS_ENDPOINT_URL` for local runs and tests) come
//! from the environment as usual; what is ours is the HTTPS client underneath, tuned for a fast
//! cold start (measured in docs/benchmarks.md, "Levers").

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::SharedHttpClient;
use aws_smithy_http_client::{HttpClientError, tls};
use base64::Engine as _;

/// The sandbox's SDK configuration from the standard AWS environment, on our HTTPS client.
/// Idle connections are kept for `pool_idle_timeout` (the function's setting for every
/// upstream); `test_only_extra_roots` (PEM) is trusted besides the compiled-in roots, for tests
/// against local HTTPS stand-ins only.
pub async fn aws_config(
    pool_idle_timeout: Duration,
    test_only_extra_roots: Option<&[u8]>,
) -> Result<SdkConfig, HttpClientError> {
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
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
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

/// The Secrets Manager SDK's HTTPS client: the SDK's default (rustls + aws-lc), trusting the
/// Mozilla roots compiled into the binary (the same set as the Cloud BOT client) instead of
/// reading and parsing the system CA store at start-up (its effect on cold init is measured in
/// docs/benchmarks.md, "Levers"). The SDK takes custom roots only as PEM, hence the encoding.
fn https_client(
    pool_idle_timeout: Duration,
    test_only_extra_roots: Option<&[u8]>,
) -> Result<SharedHttpClient, HttpClientError> {
    let mut pem = String::with_capacity(300 * 1024);
    for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        // base64 output is ASCII, so every 64-byte chunk is valid UTF-8.
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let mut pem = pem.into_bytes();
    if let Some(extra) = test_only_extra_roots {
        pem.push(b'\n');
        pem.extend_from_slice(extra);
    }
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    let tls_context = tls::TlsContext::builder().with_trust_store(trust).build()?;
    let https = aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(pool_idle_timeout)
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(tls_context)
        .build_https();
    Ok(SharedHttpClient::new(NoThrowawayConnector(https)))
}

/// The SDK HTTPS client minus one wasted step at start-up. The SDK's client validates itself
/// while `aws_config` loads and when the Secrets Manager client is built, each time by creating
/// a whole connector (rustls config with every trust anchor parsed from PEM) and dropping it:
/// that pre-loads the *system* CA store, which this client does not use. The connector actually
/// used is created and cached on the first request either way, so skipping the throwaway ones
/// shortens cold init and leaves the first invocation unchanged (figures in
/// docs/benchmarks.md, "Levers").
#[derive(Debug)]
struct NoThrowawayConnector(SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for NoThrowawayConnector {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_sdk_secretsmanager::config::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    // `validate_base_client_config` keeps the trait's no-op default on purpose (see above).

    fn validate_final_config(
        &self,
        components: &aws_sdk_secretsmanager::config::RuntimeComponents,
        cfg: &aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        // Keeps the SDK's user agent metadata ("hyper/1.x") as it was.
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_https_client_builds_from_the_compiled_in_roots() {
        assert!(https_client(Duration::from_secs(30), None).is_ok());
    }
}
