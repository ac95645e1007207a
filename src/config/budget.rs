//! The budget's variables (docs/usage.md, "Budget"): `CLOUDBOT_BUDGET_MONTHLY_SECONDS` (the
//! contract's monthly allowance of BOT execution seconds; unset or 0: no budget) and
//! `CLOUDBOT_BUDGET_STOP_PERCENT` (1 to 100, default 100), and how long a sandbox trusts the
//! counter it read, `CLOUDBOT_BUDGET_CACHE_SECONDS` (0 to 300, default 30). The counter lives in
//! the run ledger table, so a budget needs `CLOUDBOT_RUN_LEDGER_TABLE`.

use std::time::Duration;

use super::LedgerConfig;
use super::env::{ConfigError, Env};
use crate::usage::Budget;

const ALLOWANCE: &str = "CLOUDBOT_BUDGET_MONTHLY_SECONDS";
const STOP: &str = "CLOUDBOT_BUDGET_STOP_PERCENT";
const CACHE: &str = "CLOUDBOT_BUDGET_CACHE_SECONDS";

/// The budget and how its counter is read (docs/usage.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// The allowance and the stop level.
    pub budget: Budget,
    /// How long a sandbox trusts the counter it read.
    pub cache_ttl: Duration,
}

/// The budget, `None` when no allowance is set.
pub(super) fn budget(
    env: &Env<impl Fn(&str) -> Option<String>>,
    ledger: Option<&LedgerConfig>,
) -> Result<Option<BudgetConfig>, ConfigError> {
    // A month has at most 2,678,400 seconds; an allowance is far below u32.
    let allowance_s = env.u64(ALLOWANCE, 0, 0, u64::from(u32::MAX))?;
    let stop_percent = env.u32(STOP, 100, 1, 100)?;
    let cache_s = env.u64(CACHE, crate::usage::CACHE_TTL.as_secs(), 0, 300)?;
    if allowance_s == 0 {
        return Ok(None);
    }
    if ledger.is_none() {
        return Err(ConfigError::new(
            ALLOWANCE,
            "needs CLOUDBOT_RUN_LEDGER_TABLE: the month's usage is counted in the run ledger table",
        ));
    }
    Ok(Some(BudgetConfig {
        budget: Budget {
            allowance_s,
            stop_percent: u8::try_from(stop_percent).unwrap_or(100),
        },
        cache_ttl: Duration::from_secs(cache_s),
    }))
}
