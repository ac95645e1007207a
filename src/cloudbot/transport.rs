//! The HTTP clients under [`super::CloudBotClient`]: one TLS configuration (the compiled-in
//! roots parsed once, one TLS session cache) and two connection pools on it. The reads' pool
//! keeps idle connections for the pool idle time; the execute POST's pool only for the short
//! execute reuse window, so the execute is never written into a connection that sat idle long
//! enough to have been dropped silently on the way (why: docs/client.md, "Idle connections and
//! frozen sandboxes").

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::endpoint::ApiBase;
use super::error::CloudBotError;
use super::retry::Safety;

/// The two pooled clients of one [`super::CloudBotClient`].
#[derive(Debug)]
pub(crate) struct Transport {
    reads: reqwest::Client,
    execute: reqwest::Client,
}

/// What both pools share, and how long each keeps an idle connection.
pub(crate) struct TransportSettings<'a> {
    pub base: &'a ApiBase,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub user_agent: &'a str,
    pub test_only_extra_roots: Option<&'a [u8]>,
    /// Idle time of the reads' pool.
    pub pool_idle_timeout: Duration,
    /// Idle time of the execute pool; zero keeps no idle execute connection at all.
    pub execute_reuse_window: Duration,
}

impl Transport {
    pub(crate) fn new(settings: &TransportSettings<'_>) -> Result<Self, CloudBotError> {
        let tls = tls_config(settings.test_only_extra_roots)?;
        Ok(Self {
            reads: http_client(settings, tls.clone(), settings.pool_idle_timeout)?,
            execute: http_client(settings, tls, settings.execute_reuse_window)?,
        })
    }

    /// The client a request of this safety class goes through.
    pub(crate) fn for_request(&self, safety: Safety) -> &reqwest::Client {
        match safety {
            Safety::Idempotent => &self.reads,
            Safety::ExecuteOnce => &self.execute,
        }
    }
}

/// The rustls configuration both pools use. Built here rather than by reqwest so that the two
/// clients share it: the Mozilla roots compiled into the binary are parsed into trust anchors
/// once, and clones of a `ClientConfig` share its session store, so an execute connection can
/// resume the TLS session a read connection established (and the other way round).
///
/// The compiled-in roots replace reqwest's default platform verifier, which reads and parses the
/// whole system CA store (/etc/ssl/certs) while the client is built (its cold-init cost is
/// measured in docs/benchmarks.md, "Levers"). api.c-bot.pro uses a public CA; the cost is that a
/// CA change needs a rebuild with a newer webpki-root-certs.
fn tls_config(test_only_extra_roots: Option<&[u8]>) -> Result<rustls::ClientConfig, CloudBotError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    if let Some(pem) = test_only_extra_roots {
        let invalid = || CloudBotError::Internal {
            detail: "the test-only extra CA is not valid PEM",
        };
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.map_err(|_| invalid())?)
                .map_err(|_| invalid())?;
            added += 1;
        }
        if added == 0 {
            return Err(invalid());
        }
    }
    // The process-wide default provider when one was installed, aws-lc-rs otherwise (what
    // reqwest itself would pick).
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| CloudBotError::Internal {
            detail: "the TLS configuration could not be built",
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only (HTTP/2 is not compiled in), as reqwest announces it for its own configs.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One pooled client: timeouts, no redirects, no retries of its own, `tls`, and idle
/// connections kept for `idle` (none at all when zero).
fn http_client(
    settings: &TransportSettings<'_>,
    tls: rustls::ClientConfig,
    idle: Duration,
) -> Result<reqwest::Client, CloudBotError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .pool_idle_timeout(idle)
        .user_agent(settings.user_agent)
        // Redirects would carry the access-token/secret-key headers to wherever the Location
        // points; the API does not use them.
        .redirect(reqwest::redirect::Policy::none())
        // Every re-send is decided in retry.rs, which never repeats an execute POST that may
        // have reached the server. reqwest's default policy would re-send on some HTTP/2
        // protocol NACKs; switching it off keeps that promise independent of HTTP/2 being
        // compiled out.
        .retry(transport_retry_policy())
        .tls_backend_preconfigured(tls);
    if idle.is_zero() {
        builder = builder.pool_max_idle_per_host(0);
    }
    if settings.base.is_http() {
        // Loopback http (local runs): never hand the plain-text credentials to a proxy
        // configured in the environment.
        builder = builder.no_proxy();
    } else {
        builder = builder.https_only(true);
    }
    builder.build().map_err(|_| CloudBotError::Internal {
        detail: "the HTTP client could not be built",
    })
}

/// The retry policy handed to reqwest: never re-send. See [`http_client`].
fn transport_retry_policy() -> reqwest::retry::Builder {
    reqwest::retry::never()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only observable trace of the policy: with HTTP/2 compiled out no request could provoke
    // a protocol-NACK retry, so the policy itself is what is checked. `never()` is the policy
    // whose classifier answers "success" for every outcome, with no retry budget.
    #[test]
    fn the_http_client_is_built_with_reqwest_retries_off() {
        let policy = format!("{:?}", transport_retry_policy());
        assert!(policy.contains("classifier: Never"), "{policy}");
        assert!(policy.contains("budget: None"), "{policy}");
    }

    #[test]
    fn the_tls_configuration_trusts_the_compiled_in_roots_and_checks_the_extra_ca() {
        assert!(tls_config(None).is_ok());
        for bad in [&b"not a certificate"[..], b""] {
            assert_eq!(
                tls_config(Some(bad)).unwrap_err(),
                CloudBotError::Internal {
                    detail: "the test-only extra CA is not valid PEM"
                }
            );
        }
    }
}
