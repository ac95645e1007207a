//! Init-time work that would otherwise land on the first invocation, where Lambda throttles the
//! CPU (measured in docs/benchmarks.md, "Levers tried"), both at once: the secret is fetched
//! with a wait bounded by `CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS`, which also builds the Secrets
//! Manager client's connector and TLS configuration and opens its pooled connection; and the
//! Cloud BOT connection is prepared as `CLOUDBOT_API_WARMUP` says (a TLS session the first
//! request resumes, by default), bounded by `CLOUDBOT_API_WARMUP_TIMEOUT_MS`. Nothing here can
//! fail the init: whatever did not finish is done by the first invocation as before.

use std::time::Duration;

use tokio::time::Instant;

use super::Service;
use crate::cloudbot::{ApiWarmUp, WarmUp};
use crate::credentials::Prefetch;

impl Service {
    /// Runs the init-time work (module header); never fails.
    pub async fn prefetch(&self) {
        tokio::join!(self.prefetch_secret(), self.warm_up_api());
    }

    async fn warm_up_api(&self) {
        let mode = self.config.init.api_warmup;
        let bound = self.config.init.api_warmup_timeout;
        let started = Instant::now();
        let outcome = self.client.warm_up(mode, bound).await;
        log_warm_up(&outcome, mode, bound, started.elapsed());
    }

    async fn prefetch_secret(&self) {
        let bound = self.config.init.secret_prefetch_timeout;
        if bound.is_zero() {
            return;
        }
        let started = Instant::now();
        for (contract, prefetch) in self.credentials.prefetch(bound).await {
            let _contract = contract
                .map(|contract| tracing::info_span!("contract", public_id = %contract).entered());
            log_prefetch(&prefetch, bound, started.elapsed());
        }
    }
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn log_warm_up(outcome: &WarmUp, mode: ApiWarmUp, bound: Duration, elapsed: Duration) {
    match outcome {
        WarmUp::Handshaken => tracing::info!(
            elapsed_ms = ms(elapsed),
            "TLS session with the Cloud BOT API set up during init"
        ),
        WarmUp::Answered(status) => tracing::info!(
            elapsed_ms = ms(elapsed),
            status,
            "connection to the Cloud BOT API opened during init (HEAD /)"
        ),
        WarmUp::Skipped(why) => {
            tracing::debug!(
                mode = mode.as_str(),
                reason = why,
                "no warm-up of the Cloud BOT API connection"
            );
        }
        WarmUp::TimedOut => tracing::warn!(
            mode = mode.as_str(),
            timeout_ms = ms(bound),
            "the warm-up of the Cloud BOT API connection did not finish during init within \
             its timeout: the first request connects on its own"
        ),
        WarmUp::Failed(error) => tracing::warn!(
            mode = mode.as_str(),
            error = %error,
            elapsed_ms = ms(elapsed),
            "the warm-up of the Cloud BOT API connection failed during init: the first \
             request connects on its own"
        ),
    }
}

fn log_prefetch(prefetch: &Prefetch, bound: Duration, elapsed: Duration) {
    match prefetch {
        Prefetch::Cached => {
            tracing::info!(
                elapsed_ms = ms(elapsed),
                "Cloud BOT credentials fetched during init"
            );
        }
        Prefetch::TimedOut => tracing::warn!(
            timeout_ms = ms(bound),
            "Secrets Manager did not answer during init within the prefetch timeout: the \
             first invocation fetches the Cloud BOT credentials"
        ),
        Prefetch::Failed(error) => tracing::warn!(
            error = %error,
            elapsed_ms = ms(elapsed),
            "could not fetch the Cloud BOT credentials during init: the first invocation \
             tries again"
        ),
        Prefetch::Skipped => tracing::info!(
            "the secret TTL is 0: the credentials are fetched by every invocation, not \
             during init"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{secret, service};
    use crate::credentials::StandIn;

    /// No Cloud BOT here: the warm-up is turned off in these tests.
    const NOWHERE: &str = "http://127.0.0.1:9";
    const NO_WARM_UP: (&str, &str) = ("CLOUDBOT_API_WARMUP", "off");

    #[tokio::test]
    async fn the_secret_fetched_during_init_serves_the_first_invocation() {
        let source = StandIn::holding(&secret(1), "v1");
        let service = service(NOWHERE, source.clone(), &[NO_WARM_UP]);
        service.prefetch().await;
        assert_eq!(source.reads(), 1);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        service
            .credentials
            .get(&super::super::testing::demo(), deadline)
            .await
            .unwrap();
        assert_eq!(source.reads(), 1, "served from the cache");
        assert_eq!(service.credentials.take_fetch_count(), 1);
    }

    #[tokio::test]
    async fn a_bound_of_zero_fetches_nothing_during_init() {
        let source = StandIn::holding(&secret(1), "v1");
        let service = service(
            NOWHERE,
            source.clone(),
            &[NO_WARM_UP, ("CLOUDBOT_SECRET_PREFETCH_TIMEOUT_MS", "0")],
        );
        service.prefetch().await;
        assert_eq!(source.reads(), 0);
    }

    #[tokio::test]
    async fn a_failed_prefetch_leaves_the_fetch_to_the_first_invocation() {
        let source = StandIn::holding(&secret(1), "v1");
        source.fail("ThrottlingException", true);
        let service = service(NOWHERE, source.clone(), &[NO_WARM_UP]);
        service.prefetch().await;
        source.set(&secret(1), "v1");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        service
            .credentials
            .get(&super::super::testing::demo(), deadline)
            .await
            .unwrap();
        assert_eq!(source.reads(), 2);
    }
}
