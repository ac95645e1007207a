//! BOT-seconds usage and the budget guard (issue 22, "Usage and budget"): design, figures and
//! limits in docs/usage.md.
//!
//! - `budget`: the stop rule as pure values (which execute may run with the month's usage).
//! - `counter`: the per-contract, per-month counter item in the run ledger table, added to by
//!   the one write that records a run's end (`ADD`, no read), read by an execute at most once
//!   per [`CACHE_TTL`] per sandbox; the DynamoDB adapter is the only code here with SDK types.
//! - `summary`: a month's runs summed per BOT, the share of the allowance and the month-end
//!   forecast (what `cloudbot usage` prints from the ledger's `by_month` index).
//!
//! The counter exists only when a budget is configured (`CLOUDBOT_BUDGET_MONTHLY_SECONDS`); the
//! `BotSeconds` metric and `cloudbot usage` need only the ledger.

mod budget;
mod counter;
mod summary;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub use budget::{Budget, Decision};
pub use counter::{COUNTER_PREFIX, CounterKey, UsageTable, attribute};
pub use summary::{BotUsage, Forecast, MonthUsage, RunFigures, month_bounds_ms};

use crate::request::Priority;
use crate::table::bounded;
use crate::table::{StoreError, StoreFuture};

/// How long an execute trusts the counter it read (or a sandbox's own add) unless
/// `CLOUDBOT_BUDGET_CACHE_SECONDS` says otherwise: one read per this long per sandbox and
/// contract, at most. Runs ending in other sandboxes meanwhile are not seen until it passes
/// (docs/usage.md, "How an execute knows the month's usage").
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// The usage counter's store.
pub trait UsageStore: Send + Sync + std::fmt::Debug {
    /// Adds `seconds` and one run to the counter `key` (created at 0 when absent, expiring at
    /// `expires_at_s`); the counter's seconds after the add.
    fn add<'a>(
        &'a self,
        key: &'a CounterKey,
        seconds: u64,
        expires_at_s: u64,
    ) -> StoreFuture<'a, u64>;

    /// The counter's seconds (0 when absent).
    fn read<'a>(&'a self, key: &'a CounterKey) -> StoreFuture<'a, u64>;
}

/// An execute refused by the budget; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The contract's month is at or past the stop level and the execute is `normal` priority.
    #[error(
        "the BOT-seconds budget of contract `{contract}` for {month} is at its stop level: \
         {used_s} s counted, stop at {stop_s} s ({stop_percent}% of {allowance_s} s); nothing \
         was sent. A request with `priority` `high` still runs"
    )]
    Exhausted {
        /// The contract (public id).
        contract: String,
        /// `YYYY-MM` (JST).
        month: String,
        /// BOT-seconds counted this month.
        used_s: u64,
        /// The stop level in seconds.
        stop_s: u64,
        /// The stop level in percent.
        stop_percent: u8,
        /// The monthly allowance in seconds.
        allowance_s: u64,
    },
}

/// What a sandbox knows of a counter.
#[derive(Debug, Clone, Copy)]
struct Known {
    used_s: u64,
    at: Instant,
}

/// The usage counter and the budget: built once per sandbox when a budget is configured.
#[derive(Debug)]
pub struct Usage {
    store: Box<dyn UsageStore>,
    budget: Budget,
    retention: Duration,
    cache_ttl: Duration,
    known: Mutex<HashMap<CounterKey, Known>>,
}

impl Usage {
    /// The counter on `store` for `budget`, trusted [`CACHE_TTL`] once read; counters expire
    /// `retention` after their last add.
    pub fn new(store: impl UsageStore + 'static, budget: Budget, retention: Duration) -> Self {
        Self {
            store: Box::new(store),
            budget,
            retention,
            cache_ttl: CACHE_TTL,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The same, trusting a counter read for `cache_ttl` (`CLOUDBOT_BUDGET_CACHE_SECONDS`).
    pub fn with_cache_ttl(mut self, cache_ttl: Duration) -> Self {
        self.cache_ttl = cache_ttl;
        self
    }

    /// The budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Adds a recorded end's `seconds` to `contract`'s counter of `month` within `deadline`;
    /// the month's seconds after the add.
    pub async fn add(
        &self,
        contract: &str,
        month: &str,
        seconds: u64,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<u64, StoreError> {
        let key = CounterKey::new(contract, month);
        let expires_at_s = (now_ms / 1000).saturating_add(self.retention.as_secs());
        let total = bounded(deadline, self.store.add(&key, seconds, expires_at_s)).await?;
        self.remember(key, total);
        Ok(total)
    }

    /// Whether an execute of `priority` for `contract` may run at `now_ms`: the month's counter
    /// as this sandbox knows it (read again when older than the cache's time to live). A counter that
    /// cannot be read lets the run go (with the last known figure when there is one): the
    /// budget is a guard short of Cloud BOT's own limit, not a reason to stop every BOT while
    /// DynamoDB is unreachable (docs/usage.md).
    pub async fn check(
        &self,
        contract: &str,
        priority: Priority,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<Decision, BudgetError> {
        let month = crate::ledger::month_of(now_ms);
        let key = CounterKey::new(contract, &month);
        let used_s = match self.fresh(&key) {
            Some(used_s) => Some(used_s),
            None => match bounded(deadline, self.store.read(&key)).await {
                Ok(used_s) => {
                    self.remember(key.clone(), used_s);
                    Some(used_s)
                }
                Err(error) => {
                    let last = self.last(&key);
                    tracing::warn!(
                        error = %error,
                        last_known_s = last,
                        "could not read the usage counter: the budget uses the last known figure, \
                         or lets the run go"
                    );
                    last
                }
            },
        };
        let Some(used_s) = used_s else {
            return Ok(Decision::Run);
        };
        match self.budget.decide(used_s, priority) {
            Decision::Refuse => Err(BudgetError::Exhausted {
                contract: contract.to_owned(),
                month,
                used_s,
                stop_s: self.budget.stop_s(),
                stop_percent: self.budget.stop_percent,
                allowance_s: self.budget.allowance_s,
            }),
            Decision::RunPastStop => {
                tracing::info!(
                    used_s,
                    stop_s = self.budget.stop_s(),
                    "past the budget's stop level: running because the request's priority is high"
                );
                Ok(Decision::RunPastStop)
            }
            Decision::Run => Ok(Decision::Run),
        }
    }

    fn remember(&self, key: CounterKey, used_s: u64) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(
                key,
                Known {
                    used_s,
                    at: Instant::now(),
                },
            );
        }
    }

    fn fresh(&self, key: &CounterKey) -> Option<u64> {
        let known = self.known.lock().ok()?;
        known
            .get(key)
            .filter(|k| k.at.elapsed() < self.cache_ttl)
            .map(|k| k.used_s)
    }

    fn last(&self, key: &CounterKey) -> Option<u64> {
        self.known.lock().ok()?.get(key).map(|k| k.used_s)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A counter in memory that counts its reads; `down` makes every call fail.
    #[derive(Debug, Clone, Default)]
    struct Memory {
        counters: Arc<Mutex<HashMap<CounterKey, u64>>>,
        reads: Arc<AtomicU32>,
        down: Arc<std::sync::atomic::AtomicBool>,
    }

    impl UsageStore for Memory {
        fn add<'a>(&'a self, key: &'a CounterKey, s: u64, _: u64) -> StoreFuture<'a, u64> {
            Box::pin(async move {
                if self.down.load(Ordering::Relaxed) {
                    return Err(StoreError::Unavailable("down".into()));
                }
                let mut c = self.counters.lock().unwrap();
                let total = c.entry(key.clone()).or_default();
                *total += s;
                Ok(*total)
            })
        }

        fn read<'a>(&'a self, key: &'a CounterKey) -> StoreFuture<'a, u64> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::Relaxed);
                if self.down.load(Ordering::Relaxed) {
                    return Err(StoreError::Unavailable("down".into()));
                }
                Ok(self.counters.lock().unwrap().get(key).copied().unwrap_or(0))
            })
        }
    }

    const NOW_MS: u64 = 1_796_050_800_000; // 2026-12-01T00:00 JST

    fn usage(store: &Memory) -> Usage {
        Usage::new(
            store.clone(),
            Budget {
                allowance_s: 100,
                stop_percent: 90,
            },
            Duration::from_secs(86_400),
        )
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test(start_paused = true)]
    async fn an_execute_reads_the_counter_once_per_ttl_and_sees_its_own_adds_at_once() {
        let store = Memory::default();
        let usage = usage(&store);
        let check = |p| usage.check("demo", p, NOW_MS, deadline());
        assert_eq!(check(Priority::Normal).await, Ok(Decision::Run));
        assert_eq!(check(Priority::Normal).await, Ok(Decision::Run));
        assert_eq!(store.reads.load(Ordering::Relaxed), 1, "cached");
        // This sandbox's own add is known at once, without a read.
        assert_eq!(
            usage.add("demo", "2026-12", 95, NOW_MS, deadline()).await,
            Ok(95)
        );
        let refused = check(Priority::Normal).await.unwrap_err();
        assert!(refused.to_string().contains("95 s counted, stop at 90 s"));
        assert_eq!(check(Priority::High).await, Ok(Decision::RunPastStop));
        assert_eq!(store.reads.load(Ordering::Relaxed), 1);
        // Another contract, and another month, are other counters.
        assert_eq!(
            usage
                .check("other", Priority::Normal, NOW_MS, deadline())
                .await,
            Ok(Decision::Run)
        );
        assert_eq!(
            usage
                .check("demo", Priority::Normal, NOW_MS - 1, deadline())
                .await,
            Ok(Decision::Run)
        );
        // Another sandbox's adds are seen once the cached figure is older than the TTL.
        store.counters.lock().unwrap().clear();
        assert!(check(Priority::Normal).await.is_err());
        tokio::time::advance(CACHE_TTL).await;
        assert_eq!(check(Priority::Normal).await, Ok(Decision::Run));
    }

    #[tokio::test(start_paused = true)]
    async fn a_counter_that_cannot_be_read_uses_the_last_figure_or_lets_the_run_go() {
        let store = Memory::default();
        let usage = usage(&store);
        store.down.store(true, Ordering::Relaxed);
        let check = |p| usage.check("demo", p, NOW_MS, deadline());
        assert_eq!(check(Priority::Normal).await, Ok(Decision::Run));
        store.down.store(false, Ordering::Relaxed);
        usage
            .add("demo", "2026-12", 90, NOW_MS, deadline())
            .await
            .unwrap();
        store.down.store(true, Ordering::Relaxed);
        tokio::time::advance(CACHE_TTL).await;
        assert!(check(Priority::Normal).await.is_err(), "the last figure");
    }
}
