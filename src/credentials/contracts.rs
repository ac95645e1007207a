//! The credentials of each contract: one [`CredentialsProvider`] for every contract (the
//! original single-secret configuration), or one per configured contract, each with its own
//! cache, TTL, single flight and refresh after a 401, so the rotation of one contract's secret
//! never disturbs another's. A contract with no secret of its own is refused before anything is
//! read ([`CredentialsError::UnknownContract`]). Which secret serves which contract:
//! [`crate::config::SecretIds`].

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{CredentialsError, CredentialsProvider, Fetched, Prefetch, Refreshed};
use crate::cloudbot::PublicId;

/// The credentials providers of a function, by contract. Build once per sandbox.
#[derive(Debug)]
pub struct ContractCredentials {
    providers: Providers,
}

#[derive(Debug)]
enum Providers {
    /// One secret serves every contract.
    Shared(CredentialsProvider),
    /// One secret per contract; others are refused.
    PerContract(HashMap<PublicId, CredentialsProvider>),
}

impl ContractCredentials {
    /// One provider for every contract a request names.
    pub fn shared(provider: CredentialsProvider) -> Self {
        Self {
            providers: Providers::Shared(provider),
        }
    }

    /// One provider per contract; a contract not among them is refused.
    pub fn per_contract(
        providers: impl IntoIterator<Item = (PublicId, CredentialsProvider)>,
    ) -> Self {
        Self {
            providers: Providers::PerContract(
                providers
                    .into_iter()
                    .map(|(contract, provider)| {
                        let provider = provider.for_contract(contract.clone());
                        (contract, provider)
                    })
                    .collect(),
            ),
        }
    }

    /// The provider of `contract`'s credentials, or the refusal naming it (nothing is read).
    pub fn provider(&self, contract: &PublicId) -> Result<&CredentialsProvider, CredentialsError> {
        match &self.providers {
            Providers::Shared(provider) => Ok(provider),
            Providers::PerContract(providers) => providers
                .get(contract)
                .ok_or_else(|| CredentialsError::UnknownContract(contract.clone())),
        }
    }

    /// `contract`'s credentials ([`CredentialsProvider::get`]).
    pub async fn get(
        &self,
        contract: &PublicId,
        deadline: Instant,
    ) -> Result<Fetched, CredentialsError> {
        self.provider(contract)?.get(deadline).await
    }

    /// Replaces credentials Cloud BOT rejected, re-reading only the secret they came from
    /// ([`CredentialsProvider::refresh`]).
    pub async fn refresh(
        &self,
        rejected: &Fetched,
        deadline: Instant,
    ) -> Result<Refreshed, CredentialsError> {
        let provider = match (&self.providers, &rejected.contract) {
            (Providers::Shared(provider), _) => provider,
            (Providers::PerContract(_), Some(contract)) => self.provider(contract)?,
            (Providers::PerContract(_), None) => {
                return Err(CredentialsError::Unavailable(
                    "credentials of no contract cannot be refreshed".into(),
                ));
            }
        };
        provider.refresh(rejected, deadline).await
    }

    /// Every secret fetched ahead of the first invocation, at the same time, each bounded by
    /// `bound` ([`CredentialsProvider::prefetch`]); how each ended, by contract (`None`: the
    /// one secret of every contract).
    pub async fn prefetch(&self, bound: Duration) -> Vec<(Option<&PublicId>, Prefetch)> {
        match &self.providers {
            Providers::Shared(provider) => vec![(None, provider.prefetch(bound).await)],
            Providers::PerContract(providers) => {
                futures_util::future::join_all(providers.iter().map(
                    |(contract, provider)| async move {
                        (Some(contract), provider.prefetch(bound).await)
                    },
                ))
                .await
            }
        }
    }

    /// Secrets Manager reads of every secret since the last call
    /// ([`CredentialsProvider::take_fetch_count`]).
    pub fn take_fetch_count(&self) -> u32 {
        match &self.providers {
            Providers::Shared(provider) => provider.take_fetch_count(),
            Providers::PerContract(providers) => {
                providers.values().map(|p| p.take_fetch_count()).sum()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::StandIn;
    use super::*;

    const A1: &str = r#"{"access_token":"tok-a1","secret_key":"sec-a1"}"#;
    const A2: &str = r#"{"access_token":"tok-a2","secret_key":"sec-a2"}"#;
    const B1: &str = r#"{"access_token":"tok-b1","secret_key":"sec-b1"}"#;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    fn id(raw: &str) -> PublicId {
        PublicId::parse(raw, "t").unwrap()
    }

    fn two_contracts() -> (ContractCredentials, StandIn, StandIn) {
        let (a, b) = (StandIn::holding(A1, "a1"), StandIn::holding(B1, "b1"));
        let ttl = Duration::from_secs(300);
        let credentials = ContractCredentials::per_contract([
            (id("a"), CredentialsProvider::with_source(a.clone(), ttl)),
            (id("b"), CredentialsProvider::with_source(b.clone(), ttl)),
        ]);
        (credentials, a, b)
    }

    #[tokio::test]
    async fn each_contract_reads_its_own_secret_and_a_refresh_re_reads_only_that_one() {
        let (credentials, a, b) = two_contracts();
        let from_a = credentials.get(&id("a"), later()).await.unwrap();
        let from_b = credentials.get(&id("b"), later()).await.unwrap();
        assert_eq!((a.reads(), b.reads()), (1, 1));
        assert_ne!(from_a.credentials, from_b.credentials);
        // a rotates; b's cache is untouched.
        a.set(A2, "a2");
        let Refreshed::New(fresh) = credentials.refresh(&from_a, later()).await.unwrap() else {
            panic!("a's secret rotated");
        };
        assert_eq!(fresh.contract, Some(id("a")));
        assert_eq!((a.reads(), b.reads()), (2, 1));
        let again_b = credentials.get(&id("b"), later()).await.unwrap();
        assert_eq!(again_b.generation, from_b.generation);
        assert_eq!(b.reads(), 1);
        assert_eq!(credentials.take_fetch_count(), 3);
    }

    #[tokio::test]
    async fn a_contract_without_a_secret_is_refused_by_name_and_nothing_is_read() {
        let (credentials, a, b) = two_contracts();
        let err = credentials.get(&id("c"), later()).await.unwrap_err();
        assert!(
            matches!(&err, CredentialsError::UnknownContract(c) if c == &id("c")),
            "{err:?}"
        );
        assert!(err.to_string().contains("contract `c`"), "{err}");
        assert_eq!((a.reads(), b.reads()), (0, 0));
    }

    #[tokio::test]
    async fn the_single_secret_serves_every_contract() {
        let source = StandIn::holding(A1, "a1");
        let credentials = ContractCredentials::shared(CredentialsProvider::with_source(
            source.clone(),
            Duration::from_secs(300),
        ));
        let one = credentials.get(&id("a"), later()).await.unwrap();
        let other = credentials.get(&id("anything"), later()).await.unwrap();
        assert_eq!(one.generation, other.generation);
        assert_eq!(one.contract, None);
        assert_eq!(source.reads(), 1);
    }

    #[tokio::test]
    async fn the_prefetch_reads_every_contracts_secret() {
        let (credentials, a, b) = two_contracts();
        let ended = credentials.prefetch(Duration::from_secs(1)).await;
        assert_eq!(ended.len(), 2);
        assert!(ended.iter().all(|(_, p)| matches!(p, Prefetch::Cached)));
        assert_eq!((a.reads(), b.reads()), (1, 1));
    }
}
