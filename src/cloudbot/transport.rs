//! The HTTP clients under [`super::CloudBotClient`]: one TLS configuration (the compiled-in
//! roots parsed once, one TLS session cache) and two connection pools on it. The reads' pool
//! keeps idle connections for the pool idle time; the execute POST's pool only for the short
//! execute reuse window, so the execute is never written into a connection that sat idle long
//! enough to have been dropped silently on the way (why: docs/client.md, "Idle connections and
//! frozen sandboxes"). During init, [`Transport::warm_up`] prepares the first request's
//! connection while Lambda does not throttle the CPU: by default one TLS handshake with the API
//! host, closed without a request, whose session the first request resumes; on request a `HEAD`
//! that leaves an open connection in the execute pool (docs/client.md, "API warm-up during
//! init").

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::base::ApiBase;
use super::error::CloudBotError;
use super::retry::Safety;

/// The two pooled clients of one [`super::CloudBotClient`], and the TLS configuration they
/// share (its session store included).
#[derive(Debug)]
pub(crate) struct Transport {
    reads: reqwest::Client,
    execute: reqwest::Client,
    execute_reuse_window: Duration,
    tls: Arc<rustls::ClientConfig>,
}

/// What init does to prepare the first request's connection (`CLOUDBOT_API_WARMUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiWarmUp {
    /// One TLS handshake with the API host, closed without a request: the first request's
    /// handshake resumes its session. Nothing reaches the API.
    Tls,
    /// `HEAD /` on the API base through the execute pool, without credentials: the first
    /// execute (within the execute reuse window) goes out on that open connection, with no
    /// connect and no handshake. [I] Cloud BOT does not document an answer to it; any status
    /// will do, and the request starts nothing.
    Head,
    /// Nothing during init.
    Off,
}

impl ApiWarmUp {
    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiWarmUp::Tls => "tls",
            ApiWarmUp::Head => "head",
            ApiWarmUp::Off => "off",
        }
    }
}

impl std::str::FromStr for ApiWarmUp {
    type Err = ();
    fn from_str(raw: &str) -> Result<Self, ()> {
        [ApiWarmUp::Tls, ApiWarmUp::Head, ApiWarmUp::Off]
            .into_iter()
            .find(|mode| mode.as_str() == raw)
            .ok_or(())
    }
}

/// How [`Transport::warm_up`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarmUp {
    /// `tls`: the handshake completed (the server certificate verified) and the connection was
    /// closed after the server's session tickets; the first request's handshake can resume it.
    Handshaken,
    /// `head`: the server answered with this status; the connection stays in the execute pool
    /// when the server keeps it open.
    Answered(u16),
    /// Not attempted, and why (turned off, plain-http base, a proxy in the environment, ...).
    Skipped(&'static str),
    /// The bound ran out first; the first request connects on its own.
    TimedOut,
    /// The connection, the handshake or the request failed; the first request tries again on
    /// its own.
    Failed(String),
}

/// Environment variables through which reqwest would send https requests via a proxy; the
/// warm-up connects directly, so with any of them set it would set up a session the pools never
/// use (and may be refused on the way).
const PROXY_VARIABLES: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

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
            execute: http_client(settings, tls.clone(), settings.execute_reuse_window)?,
            execute_reuse_window: settings.execute_reuse_window,
            tls: Arc::new(tls),
        })
    }

    /// Prepares the first request's connection to `base` as `mode` says, within `bound`.
    pub(crate) async fn warm_up(&self, base: &ApiBase, mode: ApiWarmUp, bound: Duration) -> WarmUp {
        if bound.is_zero() {
            return WarmUp::Skipped("turned off (timeout 0)");
        }
        match mode {
            ApiWarmUp::Off => WarmUp::Skipped("turned off"),
            ApiWarmUp::Tls => self.warm_up_tls(base, bound).await,
            ApiWarmUp::Head => self.warm_up_head(base, bound).await,
        }
    }

    /// `HEAD /` through the execute pool. No credentials: they are added per operation in
    /// `client.rs`, never to the client itself.
    async fn warm_up_head(&self, base: &ApiBase, bound: Duration) -> WarmUp {
        if self.execute_reuse_window.is_zero() {
            return WarmUp::Skipped(
                "the execute reuse window is 0, so no connection would be kept for the execute",
            );
        }
        let url = base.join("/");
        match tokio::time::timeout(bound, self.execute.head(&url).send()).await {
            Ok(Ok(answer)) => WarmUp::Answered(answer.status().as_u16()),
            Ok(Err(e)) => WarmUp::Failed(format!("HEAD /: {e}")),
            Err(_) => WarmUp::TimedOut,
        }
    }

    /// One TLS handshake with `base`'s host, within `bound`, and no request. It does the first
    /// use of everything a handshake needs (the crypto provider's random generator, the key
    /// exchange, certificate parsing and verification against the roots) during init, where
    /// Lambda does not throttle the CPU, and leaves a session in the store the pools share.
    /// No HTTP is sent: nothing reaches the API and no credentials are involved.
    async fn warm_up_tls(&self, base: &ApiBase, bound: Duration) -> WarmUp {
        if base.is_http() {
            return WarmUp::Skipped("the API base is plain http");
        }
        if proxy_configured(|name| std::env::var_os(name)) {
            return WarmUp::Skipped("an https proxy is configured in the environment");
        }
        let deadline = tokio::time::Instant::now() + bound;
        let mut tls = match tokio::time::timeout_at(deadline, self.handshake(base)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(failed)) => return WarmUp::Failed(failed),
            Err(_) => return WarmUp::TimedOut,
        };
        // A TLS 1.3 server sends its session tickets just after the handshake. Sending our
        // close_notify and reading until the server closes takes them in (rustls stores them
        // in the shared session store) without ever writing a request. How the server ends the
        // connection (close_notify, a bare FIN, a reset, nothing before the bound) does not
        // change the outcome any more.
        let _ = tokio::time::timeout_at(deadline, async {
            if tls.shutdown().await.is_ok() {
                let mut sink = [0u8; 512];
                while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        })
        .await;
        WarmUp::Handshaken
    }

    /// TCP connect and a full TLS handshake with `base`'s host.
    async fn handshake(
        &self,
        base: &ApiBase,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let host = base.connect_host();
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| "the API host is not a valid TLS server name".to_owned())?;
        let tcp = tokio::net::TcpStream::connect((host, base.port()))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    }

    /// The client a request of this safety class goes through.
    pub(crate) fn for_request(&self, safety: Safety) -> &reqwest::Client {
        match safety {
            Safety::Idempotent => &self.reads,
            Safety::ExecuteOnce => &self.execute,
        }
    }
}

/// Whether `var` names an https proxy reqwest would use (any [`PROXY_VARIABLES`] set, non-empty).
fn proxy_configured(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    PROXY_VARIABLES
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.is_empty()))
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
    let roots = crate::tls_roots::trusted_roots(test_only_extra_roots).map_err(|_| {
        CloudBotError::Internal {
            detail: "the test-only extra CA is not valid PEM",
        }
    })?;
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

    fn transport() -> Transport {
        transport_for(&ApiBase::default())
    }

    /// A transport built for `base` (an `http://` base allows plain-text requests).
    fn transport_for(base: &ApiBase) -> Transport {
        Transport::new(&TransportSettings {
            base,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(3),
            user_agent: "test",
            test_only_extra_roots: None,
            pool_idle_timeout: Duration::from_secs(30),
            execute_reuse_window: Duration::from_secs(1),
        })
        .unwrap()
    }

    /// A loopback port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn the_tls_warm_up_gives_up_at_its_bound_on_a_server_that_never_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = ApiBase::parse(&format!("https://{}", listener.local_addr().unwrap())).unwrap();
        // Accepts and holds the connection without a byte of TLS.
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let started = std::time::Instant::now();
        let outcome = transport()
            .warm_up(&base, ApiWarmUp::Tls, Duration::from_millis(200))
            .await;
        assert_eq!(outcome, WarmUp::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        held.abort();
    }

    #[tokio::test]
    async fn the_tls_warm_up_reports_a_refused_connection_and_skips_what_it_cannot_use() {
        let port = closed_port();
        let base = ApiBase::parse(&format!("https://127.0.0.1:{port}")).unwrap();
        let t = transport();
        match t
            .warm_up(&base, ApiWarmUp::Tls, Duration::from_secs(2))
            .await
        {
            WarmUp::Failed(why) => assert!(why.starts_with("connect: "), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            t.warm_up(&base, ApiWarmUp::Tls, Duration::ZERO).await,
            WarmUp::Skipped(_)
        ));
        let http = ApiBase::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        assert_eq!(
            t.warm_up(&http, ApiWarmUp::Tls, Duration::from_secs(2))
                .await,
            WarmUp::Skipped("the API base is plain http")
        );
    }

    #[tokio::test]
    async fn the_head_warm_up_needs_an_execute_reuse_window_and_reports_failures() {
        let port = closed_port();
        let base = ApiBase::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        match transport_for(&base)
            .warm_up(&base, ApiWarmUp::Head, Duration::from_secs(2))
            .await
        {
            WarmUp::Failed(why) => assert!(why.starts_with("HEAD /: "), "{why}"),
            other => panic!("{other:?}"),
        }
        let mut no_reuse = transport_for(&base);
        no_reuse.execute_reuse_window = Duration::ZERO;
        assert!(matches!(
            no_reuse
                .warm_up(&base, ApiWarmUp::Head, Duration::from_secs(2))
                .await,
            WarmUp::Skipped(_)
        ));
        assert!(matches!(
            transport()
                .warm_up(&base, ApiWarmUp::Off, Duration::from_secs(2))
                .await,
            WarmUp::Skipped("turned off")
        ));
    }

    #[tokio::test]
    async fn the_head_warm_up_sends_a_bare_head_without_credentials() {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = ApiBase::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = BufReader::new(socket);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                socket.read_line(&mut line).await.unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            socket
                .get_mut()
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            head
        });
        let outcome = transport_for(&base)
            .warm_up(&base, ApiWarmUp::Head, Duration::from_secs(5))
            .await;
        assert_eq!(outcome, WarmUp::Answered(404));
        let head = server.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("head / http/1.1\r\n"), "{head}");
        for header in ["access-token", "secret-key", "authorization", "cookie"] {
            assert!(!head.contains(header), "{header} in {head}");
        }
    }

    #[test]
    fn warm_up_modes_parse_from_their_names_only() {
        for mode in [ApiWarmUp::Tls, ApiWarmUp::Head, ApiWarmUp::Off] {
            assert_eq!(mode.as_str().parse::<ApiWarmUp>(), Ok(mode));
        }
        for bad in ["", "TLS", "get", "on"] {
            assert!(bad.parse::<ApiWarmUp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_proxy_in_the_environment_is_recognised_by_its_variable_names() {
        let only = |set: &'static str, value: &'static str| {
            move |name: &str| (name == set).then(|| std::ffi::OsString::from(value))
        };
        assert!(!proxy_configured(|_| None));
        for name in PROXY_VARIABLES {
            assert!(proxy_configured(only(name, "http://proxy:3128")), "{name}");
            assert!(!proxy_configured(only(name, "")), "{name} empty");
        }
        assert!(!proxy_configured(only("HTTP_PROXY", "http://proxy:3128")));
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
