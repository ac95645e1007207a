//! The admission slots' sweep (docs/queue.md, "The sweep"): run by the template's schedule rule
//! (`AdmissionSweepRule`, input `{"admission": "sweep"}`), it looks at every taken slot of each
//! capped contract the function knows. A slot attached to a job has that job read
//! (`refer_job`): what is learned goes to the run ledger like any poll (a lost callback's end is
//! recorded here, and its slot freed by that end), and a job that has ended frees its slot even
//! when its end was recorded before. A slot the sweep cannot settle (the execute's outcome is
//! unknown, or its holder is gone without naming a job) is logged and counted for an operator.
//! Bounded (at most [`MAX_LOOKS`] job reads per run, within the deadline) and idempotent (every
//! release names the taker's token).

use std::time::Duration;

use serde_json::json;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::{Scope, Service, upstream, with_refresh};
use crate::admission::{Admission, Slot};
use crate::cloudbot::{CloudBotError, JobEndpoint, PublicId};
use crate::config::SecretIds;
use crate::error::Failure;
use crate::metrics::Invocation;
use crate::table::now_ms;
use crate::trigger::Trigger;

/// The job reads one sweep makes at most (the rest wait for the next run).
pub const MAX_LOOKS: usize = 50;

/// A slot without its job older than this has lost its holder: no invocation lives longer
/// (Lambda's 15-minute maximum), so it will never name one.
const HOLDER_GONE_AFTER: Duration = Duration::from_secs(900);

/// The event the schedule rule sends.
pub fn is_sweep_event(event: &serde_json::Value) -> bool {
    event.as_object().is_some_and(|map| {
        map.len() == 1 && map.get("admission").and_then(|v| v.as_str()) == Some("sweep")
    })
}

/// What the sweep did for one contract.
#[derive(Debug, Default)]
struct Swept {
    taken: u32,
    released: u32,
    unresolved: u32,
}

impl Service {
    /// Runs the sweep: its summary per contract as the answer.
    pub(super) async fn handle_sweep(
        &self,
        request_id: &str,
        deadline: Instant,
    ) -> Result<Box<RawValue>, lambda_runtime::Diagnostic> {
        let mut record = self.metrics.start(Trigger::Scheduled.name(), request_id);
        record.set_operation("refer_job");
        let mut contracts = Vec::new();
        if let Some(admission) = &self.admission {
            let mut looks = MAX_LOOKS;
            for public_id in self.capped_contracts(admission) {
                let swept = self
                    .sweep_contract(admission, &public_id, &mut looks, deadline, &mut record)
                    .await;
                let Some(swept) = swept else { continue };
                self.metrics.emit_admission_slots(
                    public_id.as_str(),
                    swept.taken,
                    swept.unresolved,
                );
                contracts.push(json!({
                    "contract": public_id.as_str(), "taken": swept.taken,
                    "released": swept.released, "unresolved": swept.unresolved,
                }));
            }
        }
        self.metrics.emit(&record, Duration::ZERO);
        serde_json::value::to_raw_value(&json!({ "swept": contracts }))
            .map_err(|_| lambda_runtime::Diagnostic::from(Failure::Internal("the sweep's answer")))
    }

    /// The capped contracts the function knows: those with a cap of their own, and with a
    /// stack-wide cap those with a secret of their own and the default contract.
    fn capped_contracts(&self, admission: &Admission) -> Vec<PublicId> {
        let caps = admission.caps();
        let mut known: Vec<PublicId> = caps.per_contract.iter().map(|(id, _)| id.clone()).collect();
        if let SecretIds::PerContract(ids) = &self.config.secret.id {
            known.extend(ids.iter().map(|(id, _)| id.clone()));
        }
        known.extend(self.config.requests.default_public_id.clone());
        known.extend(
            self.config
                .requests
                .default_bot
                .as_ref()
                .map(|bot| bot.public_id().clone()),
        );
        let mut capped: Vec<PublicId> = Vec::new();
        for id in known {
            if caps.of(&id) > 0 && !capped.contains(&id) {
                capped.push(id);
            }
        }
        capped
    }

    /// Sweeps the slots of `public_id` (`None`: they could not be read).
    async fn sweep_contract(
        &self,
        admission: &Admission,
        public_id: &PublicId,
        looks: &mut usize,
        deadline: Instant,
        record: &mut Invocation,
    ) -> Option<Swept> {
        let slots = match admission.slots(public_id, deadline).await {
            Ok(slots) => slots,
            Err(error) => {
                tracing::warn!(contract = public_id.as_str(), error = %error, "the sweep could not read the admission slots");
                return None;
            }
        };
        let mut swept = Swept {
            taken: u32::try_from(slots.len()).unwrap_or(u32::MAX),
            ..Swept::default()
        };
        for slot in &slots {
            match self
                .sweep_slot(admission, slot, looks, deadline, record)
                .await
            {
                Some(true) => swept.released += 1,
                Some(false) => {}
                None => swept.unresolved += 1,
            }
        }
        Some(swept)
    }

    /// One slot: `Some(true)` released, `Some(false)` rightly taken (or not looked at this
    /// time), `None` unresolved (an operator looks).
    async fn sweep_slot(
        &self,
        admission: &Admission,
        slot: &Slot,
        looks: &mut usize,
        deadline: Instant,
        record: &mut Invocation,
    ) -> Option<bool> {
        let unresolved = |why: &str| {
            tracing::warn!(
                slot = %slot.key,
                holder = slot.holder.as_str(),
                taken_at_ms = slot.taken_at_ms,
                "admission slot unresolved: {why}; release it by deleting the item once the \
                 run is known to have ended (docs/queue.md, \"Slots\")"
            );
            None
        };
        if slot.outcome_unknown {
            return unresolved("the execute's outcome is unknown (a job may be running)");
        }
        let Some(endpoint) = &slot.job_endpoint else {
            let age = now_ms().saturating_sub(slot.taken_at_ms);
            if age > u64::try_from(HOLDER_GONE_AFTER.as_millis()).unwrap_or(u64::MAX) {
                return unresolved("its holder ended without naming a job");
            }
            return Some(false);
        };
        let job =
            JobEndpoint::parse(&self.config.requests.api_base, endpoint, "job_endpoint").ok()?;
        if *looks == 0
            || deadline.saturating_duration_since(Instant::now())
                < self.config.client.request_timeout
        {
            return Some(false);
        }
        *looks -= 1;
        let scope = Scope {
            language: self.config.requests.language,
            deadline,
            retry_budget: Trigger::Queue.retry_budget(),
            trigger: Trigger::Scheduled,
        };
        let fetched = self.credentials.get(job.public_id(), deadline).await.ok()?;
        let found = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, &job),
            |_| (Some(200), None)
        ));
        let ended = match found {
            Ok(found) => {
                // A lost callback's end is recorded here (and frees the slot through it).
                self.learned(&job, &found, None, deadline, record).await;
                found.status.is_final()
            }
            // Cloud BOT knows no such job: nothing of it runs.
            Err(Failure::CloudBot(CloudBotError::NotFound)) => true,
            Err(failure) => {
                tracing::info!(slot = %slot.key, error_type = failure.error_type(), "the sweep could not read the slot's job: looked at again next time");
                return Some(false);
            }
        };
        if !ended {
            return Some(false);
        }
        match admission.release(&slot.hold(), deadline).await {
            Ok(released) => {
                tracing::info!(slot = %slot.key, released, "the sweep found the slot's run ended");
                Some(true)
            }
            Err(error) => {
                tracing::warn!(slot = %slot.key, error = %error, "the sweep could not release the slot");
                Some(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rules_input_is_a_sweep() {
        assert!(is_sweep_event(&json!({"admission": "sweep"})));
        for other in [
            json!({"admission": "sweep", "bot_id": "b"}),
            json!({"admission": "run"}),
            json!({"bot_id": "b"}),
            json!([]),
        ] {
            assert!(!is_sweep_event(&other), "{other}");
        }
    }
}
