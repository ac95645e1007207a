//! The budget's rules as pure values: the stop level, whether an execute of a given priority
//! may run with the month's BOT-seconds used so far, and the share of the allowance. No I/O;
//! table-tested below. Why and how: docs/usage.md, "Budget".

use crate::request::Priority;

/// The monthly allowance and the stop level (`CLOUDBOT_BUDGET_MONTHLY_SECONDS`,
/// `CLOUDBOT_BUDGET_STOP_PERCENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The contract's monthly allowance of BOT execution seconds (more than 0).
    pub allowance_s: u64,
    /// Percent of the allowance past which a `normal` execute is refused (1 to 100).
    pub stop_percent: u8,
}

/// What the budget says about one execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Under the stop level: run.
    Run,
    /// At or past the stop level, but `high` priority: run (said in the log).
    RunPastStop,
    /// At or past the stop level and `normal` priority: refuse before anything is sent.
    Refuse,
}

impl Budget {
    /// The stop level in BOT-seconds (rounded down, so the stop is never later than asked).
    pub fn stop_s(&self) -> u64 {
        let stop = u128::from(self.allowance_s) * u128::from(self.stop_percent) / 100;
        u64::try_from(stop).unwrap_or(u64::MAX)
    }

    /// The decision for an execute of `priority` with `used_s` BOT-seconds counted this month.
    pub fn decide(&self, used_s: u64, priority: Priority) -> Decision {
        match (used_s >= self.stop_s(), priority) {
            (false, _) => Decision::Run,
            (true, Priority::High) => Decision::RunPastStop,
            (true, Priority::Normal) => Decision::Refuse,
        }
    }

    /// `used_s` as a percentage of the allowance (may exceed 100).
    pub fn used_percent(&self, used_s: u64) -> f64 {
        // Seconds of a month fit an f64 exactly.
        used_s as f64 * 100.0 / self.allowance_s.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normal_run_is_refused_from_the_stop_level_on_and_a_high_one_never() {
        let budget = Budget {
            allowance_s: 36_000,
            stop_percent: 90,
        };
        assert_eq!(budget.stop_s(), 32_400);
        for (used, priority, expected) in [
            (0, Priority::Normal, Decision::Run),
            (32_399, Priority::Normal, Decision::Run),
            (32_400, Priority::Normal, Decision::Refuse),
            (40_000, Priority::Normal, Decision::Refuse),
            (32_399, Priority::High, Decision::Run),
            (32_400, Priority::High, Decision::RunPastStop),
            (u64::MAX, Priority::High, Decision::RunPastStop),
        ] {
            assert_eq!(
                budget.decide(used, priority),
                expected,
                "{used} {priority:?}"
            );
        }
    }

    #[test]
    fn the_stop_level_rounds_down_and_the_share_can_pass_100() {
        let budget = Budget {
            allowance_s: 999,
            stop_percent: 50,
        };
        assert_eq!(budget.stop_s(), 499);
        let full = Budget {
            allowance_s: u64::MAX,
            stop_percent: 100,
        };
        assert_eq!(full.stop_s(), u64::MAX);
        assert!((budget.used_percent(1998) - 200.0).abs() < 1e-9);
    }
}
