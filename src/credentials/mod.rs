//! Cloud BOT credentials from AWS Secrets Manager: one SDK call, a TTL cache, decoding, and two
//! narrow errors.
//!
//! The secret is a SecretString holding `{"access_token": "...", "secret_key": "..."}`. It is
//! fetched on first use and reused for the TTL. All fetches go through one `tokio::sync::Mutex`,
//! so concurrent invocations in one sandbox wait for the fetch in flight instead of starting their
//! own (single flight). [`CredentialsProvider::refresh`] lets the caller replace credentials the
//! Cloud BOT API just rejected (HTTP 401: the secret may have rotated) without every concurrent
//! caller re-fetching again.
//!
//! Stale while error: when the TTL has run out and Secrets Manager fails transiently (throttled,
//! unreachable, timing out, 5xx), the cached credentials are served for at most `max_stale`
//! longer, with a warning; every use asks Secrets Manager first, so fresh values are picked up
//! as soon as it answers. Never once Cloud BOT has answered 401 to them, and never on a
//! definite answer (access denied, secret missing, malformed secret).
//!
//! Prefetch: [`CredentialsProvider::prefetch`] runs the same fetch during init, where Lambda does
//! not throttle the CPU yet, with a bounded wait; its value enters the cache like any other
//! (its TTL counts from that fetch). Given up or failed, it leaves the cache as it was, and the
//! first invocation fetches as it always did.
//!
//! Where the secret comes from is a [`SecretSource`] (`source`): Secrets Manager in the function
//! and the CLI, a stand-in in unit tests, so the rules here are tested without AWS.

mod contracts;
mod source;

pub use contracts::ContractCredentials;

#[cfg(test)]
pub(crate) use source::StandIn;
pub use source::{SecretFuture, SecretSource, SecretValue, SecretsManager, SourceError};

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::cloudbot::{Credentials, check_value};

/// Reading the credentials failed. `Display` never contains secret values.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Secrets Manager could not be reached or refused the call (retryable).
    #[error("could not read the Cloud BOT secret from Secrets Manager: {0}")]
    Unavailable(String),
    /// The secret exists but does not hold usable credentials (fix the secret).
    #[error("the Cloud BOT secret is malformed: {0}")]
    Invalid(String),
    /// The function is configured with one secret per contract and none for this one: nothing
    /// was read or sent.
    #[error(
        "no Cloud BOT secret is configured for contract `{0}` (CLOUDBOT_CONTRACT_SECRETS): \
         this function does not serve it"
    )]
    UnknownContract(crate::cloudbot::PublicId),
}

/// Credentials handed out by the provider, tagged with the fetch they came from.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The credentials (their `Debug` prints `***`).
    pub credentials: Arc<Credentials>,
    /// Increments on every successful fetch in this sandbox; used by [`CredentialsProvider::refresh`].
    pub generation: u64,
    /// Secrets Manager version id of the secret value, when known.
    version_id: Option<String>,
    /// The contract whose secret they were read from (`None`: the one secret of every
    /// contract), so a refresh after a 401 re-reads that secret only.
    contract: Option<crate::cloudbot::PublicId>,
}

/// What [`CredentialsProvider::refresh`] found.
#[derive(Debug)]
pub enum Refreshed {
    /// Newer credentials than the rejected ones: retry with them.
    New(Fetched),
    /// Secrets Manager still holds the rejected secret version: retrying cannot help.
    Unchanged,
}

#[derive(Debug)]
struct Cached {
    fetched: Fetched,
    fetched_at: Instant,
    /// Cloud BOT answered 401 to these credentials: never serve them stale.
    rejected: bool,
}

/// A failed fetch, with whether trying again later may succeed.
#[derive(Debug)]
struct FetchError {
    error: CredentialsError,
    transient: bool,
}

impl From<CredentialsError> for FetchError {
    fn from(error: CredentialsError) -> Self {
        FetchError {
            error,
            transient: false,
        }
    }
}

/// Whether cached credentials `age` old may be used after a failed fetch (the stale-while-error
/// rule in one place).
fn may_serve_stale(
    age: Duration,
    ttl: Duration,
    max_stale: Duration,
    rejected: bool,
    transient: bool,
) -> bool {
    transient && !rejected && age < ttl.saturating_add(max_stale)
}

/// How [`CredentialsProvider::prefetch`] ended.
#[derive(Debug)]
pub enum Prefetch {
    /// Fetched and cached: the first invocation uses them.
    Cached,
    /// Secrets Manager did not answer within the bound; the fetch was abandoned.
    TimedOut,
    /// The fetch failed (the reason never holds a secret value).
    Failed(CredentialsError),
    /// Not attempted: with a TTL of 0 every invocation fetches anyway.
    Skipped,
}

/// Secrets Manager backed, TTL-cached, single-flight credentials source. Build once per sandbox.
#[derive(Debug)]
pub struct CredentialsProvider {
    source: Box<dyn SecretSource>,
    ttl: Duration,
    max_stale: Duration,
    cache: Mutex<Option<Cached>>,
    /// Secrets Manager reads attempted and not yet reported (successful or not), for the
    /// metrics.
    unreported_fetches: AtomicU32,
    /// The contract this secret serves alone (`None`: every contract).
    contract: Option<crate::cloudbot::PublicId>,
}

impl CredentialsProvider {
    /// A provider reading `secret_id` with `client`, caching values for `ttl`, never serving
    /// them stale (see [`CredentialsProvider::with_max_stale`]).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String, ttl: Duration) -> Self {
        Self::with_source(SecretsManager::new(client, secret_id), ttl)
    }

    /// A provider reading `source`, caching values for `ttl`.
    pub fn with_source(source: impl SecretSource + 'static, ttl: Duration) -> Self {
        Self {
            source: Box::new(source),
            ttl,
            max_stale: Duration::ZERO,
            cache: Mutex::new(None),
            unreported_fetches: AtomicU32::new(0),
            contract: None,
        }
    }

    /// The provider of the secret of `contract` alone (its credentials say so).
    pub fn for_contract(mut self, contract: crate::cloudbot::PublicId) -> Self {
        self.contract = Some(contract);
        self
    }

    /// Serve cached credentials up to `max_stale` past their TTL while Secrets Manager fails
    /// transiently (module docs).
    pub fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Cached credentials, fetched first when absent or older than the TTL. Gives up at `deadline`.
    pub async fn get(&self, deadline: Instant) -> Result<Fetched, CredentialsError> {
        tokio::time::timeout_at(deadline, async {
            // Holding the lock across the fetch is the single flight: others wait, then hit the cache.
            let mut cache = self.cache.lock().await;
            if let Some(cached) = cache.as_ref()
                && cached.fetched_at.elapsed() < self.ttl
            {
                return Ok(cached.fetched.clone());
            }
            let generation = cache.as_ref().map_or(0, |c| c.fetched.generation) + 1;
            let failed = match self.fetch_by(generation, deadline).await {
                Ok(fetched) => {
                    *cache = Some(Cached {
                        fetched: fetched.clone(),
                        fetched_at: Instant::now(),
                        rejected: false,
                    });
                    return Ok(fetched);
                }
                Err(failed) => failed,
            };
            match cache.as_ref() {
                Some(cached)
                    if may_serve_stale(
                        cached.fetched_at.elapsed(),
                        self.ttl,
                        self.max_stale,
                        cached.rejected,
                        failed.transient,
                    ) =>
                {
                    let stale_for = cached.fetched_at.elapsed().saturating_sub(self.ttl);
                    tracing::warn!(
                        stale_for_ms = u64::try_from(stale_for.as_millis()).unwrap_or(u64::MAX),
                        max_stale_ms = u64::try_from(self.max_stale.as_millis()).unwrap_or(u64::MAX),
                        error = %failed.error,
                        "Secrets Manager is unavailable: using the cached Cloud BOT credentials past their TTL"
                    );
                    Ok(cached.fetched.clone())
                }
                _ => Err(failed.error),
            }
        })
        .await
        .map_err(|_| timed_out())?
    }

    /// Fetches the credentials ahead of the first invocation through [`CredentialsProvider::get`],
    /// waiting at most `bound`. Abandoned at the bound, so an init never waits longer on
    /// Secrets Manager; a failure leaves the cache empty and the first invocation fetches.
    pub async fn prefetch(&self, bound: Duration) -> Prefetch {
        if self.ttl.is_zero() {
            return Prefetch::Skipped;
        }
        let deadline = Instant::now() + bound;
        match self.get(deadline).await {
            Ok(_) => Prefetch::Cached,
            Err(_) if Instant::now() >= deadline => Prefetch::TimedOut,
            Err(error) => Prefetch::Failed(error),
        }
    }

    /// Secrets Manager reads attempted since the last call (the first call also counts the
    /// prefetch during init, which was made for the first invocation).
    pub fn take_fetch_count(&self) -> u32 {
        self.unreported_fetches.swap(0, Ordering::Relaxed)
    }

    /// Replaces credentials the API rejected. Fetches at most once however many callers report the
    /// same `rejected` credentials: later callers get what the first one fetched.
    pub async fn refresh(
        &self,
        rejected: &Fetched,
        deadline: Instant,
    ) -> Result<Refreshed, CredentialsError> {
        tokio::time::timeout_at(deadline, async {
            let mut cache = self.cache.lock().await;
            if let Some(cached) = cache.as_ref()
                && cached.fetched.generation != rejected.generation
            {
                return Ok(Refreshed::New(cached.fetched.clone()));
            }
            let fetched = match self.fetch_by(rejected.generation + 1, deadline).await {
                Ok(fetched) => fetched,
                Err(failed) => {
                    // Whatever happens next, these credentials are not to be served stale.
                    if let Some(cached) = cache.as_mut() {
                        cached.rejected = true;
                    }
                    return Err(failed.error);
                }
            };
            let unchanged =
                fetched.version_id.is_some() && fetched.version_id == rejected.version_id;
            *cache = Some(Cached {
                fetched: fetched.clone(),
                fetched_at: Instant::now(),
                rejected: unchanged,
            });
            Ok(if unchanged {
                Refreshed::Unchanged
            } else {
                Refreshed::New(fetched)
            })
        })
        .await
        .map_err(|_| timed_out())?
    }

    /// One fetch, given up at `deadline` (a transient failure: stale credentials may still do).
    async fn fetch_by(&self, generation: u64, deadline: Instant) -> Result<Fetched, FetchError> {
        match tokio::time::timeout_at(deadline, self.fetch(generation)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError {
                error: timed_out(),
                transient: true,
            }),
        }
    }

    async fn fetch(&self, generation: u64) -> Result<Fetched, FetchError> {
        self.unreported_fetches.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let value = self.source.read().await.map_err(|err| FetchError {
            error: CredentialsError::Unavailable(err.reason),
            transient: err.transient,
        })?;
        let secret = value.secret_string.as_deref().ok_or_else(|| {
            CredentialsError::Invalid(
                "it has no SecretString (binary secrets are not supported)".into(),
            )
        })?;
        let credentials = decode(secret)?;
        tracing::info!(
            generation,
            contract = self.contract.as_ref().map(|c| c.as_str()),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "fetched Cloud BOT credentials from Secrets Manager"
        );
        Ok(Fetched {
            credentials: Arc::new(credentials),
            generation,
            version_id: value.version_id,
            contract: self.contract.clone(),
        })
    }
}

fn timed_out() -> CredentialsError {
    CredentialsError::Unavailable("timed out before the invocation deadline".into())
}

/// Decodes the SecretString. Errors name the key at fault, never a value (serde's own messages can
/// quote values, so they are not passed on).
pub fn decode(secret: &str) -> Result<Credentials, CredentialsError> {
    let value: serde_json::Value = serde_json::from_str(secret).map_err(|_| {
        CredentialsError::Invalid(
            "SecretString is not JSON; expected {\"access_token\": \"...\", \"secret_key\": \"...\"}".into(),
        )
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| CredentialsError::Invalid("SecretString is not a JSON object".into()))?;
    let field = |key: &str| -> Result<String, CredentialsError> {
        match object.get(key) {
            None => Err(CredentialsError::Invalid(format!("key `{key}` is missing"))),
            Some(serde_json::Value::String(s)) => {
                let value = s.trim();
                check_value(value).map_err(|problem| {
                    CredentialsError::Invalid(format!("key `{key}` {problem}"))
                })?;
                Ok(value.to_owned())
            }
            Some(_) => Err(CredentialsError::Invalid(format!(
                "key `{key}` is not a string"
            ))),
        }
    };
    Ok(Credentials::new(
        field("access_token")?,
        field("secret_key")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::source::StandIn;
    use super::*;

    const ONE: &str = r#"{"access_token":"tok-1","secret_key":"sec-1"}"#;
    const TWO: &str = r#"{"access_token":"tok-2","secret_key":"sec-2"}"#;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_rotated_secret_is_fetched_once_for_every_caller_of_the_rejected_credentials() {
        let source = StandIn::holding(ONE, "v1");
        let provider = CredentialsProvider::with_source(source.clone(), Duration::from_secs(300));
        let first = provider.get(later()).await.unwrap();
        assert_eq!(
            provider.get(later()).await.unwrap().generation,
            first.generation
        );
        source.set(TWO, "v2");
        let Refreshed::New(fresh) = provider.refresh(&first, later()).await.unwrap() else {
            panic!("a rotated secret is new");
        };
        // A second caller reporting the same rejected credentials gets them without a read.
        let Refreshed::New(again) = provider.refresh(&first, later()).await.unwrap() else {
            panic!("the fetched credentials are handed on");
        };
        assert_eq!(again.generation, fresh.generation);
        assert_eq!(source.reads(), 2);
        assert_eq!(provider.take_fetch_count(), 2);
    }

    #[tokio::test]
    async fn an_unchanged_version_after_a_401_is_not_retried_nor_served_stale() {
        let source = StandIn::holding(ONE, "v1");
        let provider = CredentialsProvider::with_source(source.clone(), Duration::ZERO)
            .with_max_stale(Duration::from_secs(900));
        let first = provider.get(later()).await.unwrap();
        assert!(matches!(
            provider.refresh(&first, later()).await.unwrap(),
            Refreshed::Unchanged
        ));
        source.fail("ThrottlingException", true);
        assert!(matches!(
            provider.get(later()).await,
            Err(CredentialsError::Unavailable(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_past_the_ttl_serves_the_cached_credentials_until_the_bound() {
        let source = StandIn::holding(ONE, "v1");
        let provider = CredentialsProvider::with_source(source.clone(), Duration::from_secs(300))
            .with_max_stale(Duration::from_secs(900));
        let first = provider.get(later()).await.unwrap();
        tokio::time::advance(Duration::from_secs(301)).await;
        source.fail("ThrottlingException", true);
        assert_eq!(
            provider.get(later()).await.unwrap().generation,
            first.generation
        );
        source.fail("AccessDeniedException", false);
        assert!(
            provider.get(later()).await.is_err(),
            "a definite answer is never covered"
        );
        source.fail("ThrottlingException", true);
        tokio::time::advance(Duration::from_secs(900)).await;
        assert!(provider.get(later()).await.is_err(), "past the bound");
    }

    #[tokio::test]
    async fn a_binary_secret_is_invalid_and_the_message_names_no_value() {
        let source = StandIn::default();
        let provider = CredentialsProvider::with_source(source, Duration::from_secs(300));
        let err = provider.get(later()).await.unwrap_err();
        assert!(matches!(err, CredentialsError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("SecretString"), "{err}");
    }

    #[test]
    fn decode_names_the_missing_key_without_values() {
        let err = decode(r#"{"access_token":"tok-123"}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("secret_key"), "{text}");
        assert!(!text.contains("tok-123"), "{text}");
        assert!(matches!(err, CredentialsError::Invalid(_)));
    }

    #[test]
    fn decode_rejects_non_json_empty_and_wrong_types() {
        for (secret, needle) in [
            ("tok-123:sec-456", "not JSON"),
            ("[]", "not a JSON object"),
            (
                r#"{"access_token":"","secret_key":"sec-456"}"#,
                "access_token` is empty",
            ),
            (
                r#"{"access_token":5,"secret_key":"sec-456"}"#,
                "access_token` is not a string",
            ),
            (
                r#"{"access_token":"tok-123","secret_key":"sec 456"}"#,
                "secret_key` contains characters not allowed",
            ),
            (
                r#"{"access_token":"tök-123","secret_key":"sec-456"}"#,
                "access_token` contains characters not allowed",
            ),
        ] {
            let text = decode(secret).unwrap_err().to_string();
            assert!(text.contains(needle), "{secret}: {text}");
            assert!(
                !text.contains("sec-456") && !text.contains("tok-123") && !text.contains("sec 456"),
                "{text}"
            );
        }
    }

    #[test]
    fn stale_credentials_only_on_a_transient_failure_within_the_bound_and_never_after_a_401() {
        let s = Duration::from_secs;
        let (ttl, max_stale) = (s(300), s(900));
        // (age, rejected, transient, served stale)
        for (age, rejected, transient, served) in [
            (s(301), false, true, true),
            (s(1199), false, true, true),
            (s(1200), false, true, false),
            (s(5000), false, true, false),
            (s(301), true, true, false),
            (s(301), false, false, false),
        ] {
            assert_eq!(
                may_serve_stale(age, ttl, max_stale, rejected, transient),
                served,
                "{age:?} rejected={rejected} transient={transient}"
            );
        }
        assert!(!may_serve_stale(
            s(1),
            Duration::ZERO,
            Duration::ZERO,
            false,
            true
        ));
    }

    #[test]
    fn decode_accepts_a_well_formed_secret() {
        let creds =
            decode(r#"{"access_token":"tok","secret_key":"sec","note":"extra keys are fine"}"#)
                .unwrap();
        assert!(!format!("{creds:?}").contains("tok"));
    }
}
