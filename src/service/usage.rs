//! Usage and budget on the service's paths (docs/usage.md): an execute asks the budget before
//! anything is sent (`within_budget`), and the one learner that recorded a run's end counts its
//! BOT-seconds (`count_usage`): the `BotSeconds` metric always, the contract's monthly counter
//! and `BudgetUsedPercent` when a budget is configured. Counting never fails the invocation.

use tokio::time::Instant;

use super::Service;
use crate::cloudbot::JobEndpoint;
use crate::ledger::EndedRun;
use crate::metrics::Invocation;
use crate::request::Execute;
use crate::table::now_ms;
use crate::usage::{BudgetError, Usage};

impl Service {
    /// The service with the usage counter and budget (`None`: no budget, no counter).
    pub fn with_usage(mut self, usage: Option<Usage>) -> Self {
        self.usage = usage;
        self
    }

    /// Refuses a `normal` execute when its contract's month is at the budget's stop level
    /// (nothing is sent then); `Ok` without a budget.
    pub(super) async fn within_budget(
        &self,
        execute: &Execute,
        deadline: Instant,
    ) -> Result<(), BudgetError> {
        let Some(usage) = &self.usage else {
            return Ok(());
        };
        usage
            .check(
                execute.bot.public_id().as_str(),
                execute.priority,
                now_ms(),
                deadline,
            )
            .await
            .map(drop)
    }

    /// Counts the end this invocation recorded for the job at `endpoint`.
    pub(super) async fn count_usage(
        &self,
        endpoint: &JobEndpoint,
        ended: &EndedRun,
        deadline: Instant,
        record: &mut Invocation,
    ) {
        let contract = endpoint.public_id().as_str();
        let mut used_percent = None;
        if let Some(usage) = &self.usage {
            match usage
                .add(
                    contract,
                    &ended.month,
                    ended.end.elapsed_s,
                    now_ms(),
                    deadline,
                )
                .await
            {
                Ok(total) => used_percent = Some(usage.budget().used_percent(total)),
                Err(error) => {
                    record.add_ledger_write_failure();
                    tracing::error!(
                        job_id = endpoint.job_id().as_str(),
                        error = %error,
                        "could not add the run's BOT-seconds to the usage counter: the budget \
                         under-counts this month by them (docs/usage.md)"
                    );
                }
            }
        }
        record.set_usage(
            contract,
            ended.bot.as_deref(),
            ended.end.elapsed_s,
            used_percent,
        );
    }
}
