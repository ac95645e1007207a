//! Admission control in the service (docs/queue.md, "Admission control"): a run queue message
//! takes a slot of its contract before its execute ([`Service::admit`]), the slot is attached to
//! the job the execute started or released when it provably started nothing
//! ([`Service::settle_slot`]), and the run's end frees it ([`Service::release_ended`], called by
//! the one learner that recorded the end). A message that finds no free slot is put back with a
//! delay that grows with its receives.

use std::time::Duration;

use tokio::time::Instant;

use super::Service;
use crate::admission::{Admission, Hold, Taken, Visibility, wait_delay};
use crate::cloudbot::PublicId;
use crate::error::Failure;
use crate::idempotency::{Finish, finish_of};
use crate::ledger::EndedRun;
use crate::metrics::Invocation;
use crate::request::{Operation, Request};
use crate::trigger::{Answer, Queued};

/// What a message may do.
#[derive(Debug)]
pub(super) enum Admit {
    /// Run it, holding this slot (`None`: its contract is uncapped, or admission is off).
    Go(Option<Hold>),
    /// Put it back for later: nothing was sent.
    Wait,
}

impl Service {
    /// The service with admission control (`None`: no cap) and the SQS client that puts a
    /// waiting message back (`None`: it comes back after the queue's visibility timeout).
    pub fn with_admission(
        mut self,
        admission: Option<Admission>,
        visibility: Option<Visibility>,
    ) -> Self {
        self.admission = admission;
        self.visibility = visibility;
        self
    }

    /// Takes a slot for `queued` (its `request` validated) unless its contract is uncapped.
    /// A full contract or slots that cannot be read put the message back (nothing was sent).
    pub(super) async fn admit(
        &self,
        queued: &Queued,
        request: &Request,
        deadline: Instant,
    ) -> Admit {
        let (Some(admission), Operation::Execute(execute)) = (&self.admission, &request.operation)
        else {
            return Admit::Go(None);
        };
        let public_id = execute.bot.public_id();
        let holder = execute
            .idempotency_key
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| format!("sqs:{}", queued.message_id));
        let seed = spread_seed(&queued.message_id);
        let taken = admission
            .take(public_id, queued.lane, &holder, seed, deadline)
            .await;
        let reason = match taken {
            Ok(Taken::Uncapped) => return Admit::Go(None),
            Ok(Taken::Held(hold)) => {
                tracing::debug!(slot = %hold.key, "admission slot taken");
                return Admit::Go(Some(hold));
            }
            Ok(Taken::Full { cap }) => format!(
                "contract `{public_id}` has its {cap} running jobs (its cap): waiting for a slot"
            ),
            Err(error) => format!("the admission slots could not be read ({error}): waiting"),
        };
        let delay = wait_delay(queued.receive_count.unwrap_or(1), seed);
        self.put_back(queued, delay).await;
        tracing::info!(
            message_id = queued.message_id.as_str(),
            lane = queued.lane.name(),
            contract = public_id.as_str(),
            delay_s = delay.as_secs(),
            "{reason}"
        );
        Admit::Wait
    }

    /// Makes a waiting message invisible for `delay`; without the SQS client, or when the call
    /// fails, it comes back after the queue's own visibility timeout (said in the log).
    async fn put_back(&self, queued: &Queued, delay: Duration) {
        let (Some(visibility), Some((queue, receipt))) = (&self.visibility, &queued.receipt) else {
            return;
        };
        if let Err(error) = visibility.delay(queue, receipt, delay).await {
            tracing::warn!(
                message_id = queued.message_id.as_str(),
                error = %error,
                "could not set the waiting message's delay: it comes back after the queue's \
                 visibility timeout"
            );
        }
    }

    /// Settles the slot `hold` by how the execute ended: attached to the job it started,
    /// released when it provably started nothing (or replayed a job an earlier delivery's slot
    /// holds), marked and kept when its outcome is unknown.
    pub(super) async fn settle_slot(
        &self,
        hold: &Hold,
        result: &Result<Answer, Failure>,
        record: &Invocation,
        deadline: Instant,
    ) {
        let Some(admission) = &self.admission else {
            return;
        };
        // The slot's writes may use the answering margin like the claim's completion.
        let deadline = deadline + super::DEADLINE_MARGIN / 2;
        let settled = match result {
            Ok(Answer {
                location: Some(job),
                ..
            }) if !record.replayed() => match run_of(job, &hold.key.public_id) {
                Some(run) => admission
                    .attach(hold, &run, job, deadline)
                    .await
                    .map(|_| "attached"),
                None => admission.release(hold, deadline).await.map(|_| "released"),
            },
            Ok(_) => admission.release(hold, deadline).await.map(|_| "released"),
            Err(failure) if started_nothing(failure) => {
                admission.release(hold, deadline).await.map(|_| "released")
            }
            Err(_) => admission
                .mark_unknown(hold, deadline)
                .await
                .map(|_| "kept: the outcome is unknown"),
        };
        match settled {
            Ok(how) => tracing::debug!(slot = %hold.key, how, "admission slot settled"),
            // Found by the sweep (a slot without its job) and counted there.
            Err(error) => tracing::error!(
                slot = %hold.key,
                error = %error,
                "could not settle the admission slot: it stays taken until an operator \
                 releases it (docs/queue.md, \"Slots\")"
            ),
        }
    }

    /// Frees the slot that held the run `ended`, if one does (its contract capped): called by
    /// the one learner that recorded the run's end.
    pub(super) async fn release_ended(&self, ended: &EndedRun, deadline: Instant) {
        let Some(admission) = &self.admission else {
            return;
        };
        let Some(public_id) = contract_of_run(ended.run.as_str()) else {
            return;
        };
        if admission.caps().of(&public_id) == 0 {
            return;
        }
        match admission
            .release_run(&public_id, ended.run.as_str(), deadline)
            .await
        {
            Ok(Some(slot)) => {
                tracing::debug!(slot = %slot, "admission slot released at the run's end")
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(
                contract = public_id.as_str(),
                error = %error,
                "could not release the run's admission slot: the sweep will"
            ),
        }
    }
}

/// Whether an execute that failed with `failure` provably started no job (so its slot is free
/// again). An error after the POST or an ambiguous one keeps the slot.
fn started_nothing(failure: &Failure) -> bool {
    match failure {
        Failure::CloudBot(err) => finish_of(err) == Finish::Release,
        // Refused or failed before the POST was sent (validation, secret, budget, callback
        // registration, the idempotency claim or an earlier delivery that holds the run).
        Failure::Request(_)
        | Failure::Credentials(_)
        | Failure::Budget(_)
        | Failure::Callback(_)
        | Failure::Idempotency(_)
        | Failure::Schedule(_) => true,
        Failure::Overrun(_) | Failure::Orphan(_) | Failure::Internal(_) => false,
    }
}

/// The run key (`<public_id>/<job_id>`) of the job reference endpoint `job` of `public_id`.
fn run_of(job: &str, public_id: &PublicId) -> Option<String> {
    let job_id = job.trim_end_matches('/').rsplit('/').next()?;
    (!job_id.is_empty()).then(|| format!("{public_id}/{job_id}"))
}

/// The contract of a run key.
fn contract_of_run(run: &str) -> Option<PublicId> {
    let (public_id, _) = run.split_once('/')?;
    PublicId::parse(public_id, "run").ok()
}

/// A number from the message id (FNV-1a): where a message starts looking for a free slot and
/// how much its wait is spread, the same in every delivery.
fn spread_seed(message_id: &str) -> u32 {
    message_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudbot::CloudBotError;

    #[test]
    fn a_slot_is_freed_only_when_nothing_can_have_started() {
        for (failure, freed) in [
            (Failure::CloudBot(CloudBotError::DeadlineExceeded), true),
            (Failure::CloudBot(CloudBotError::NotFound), true),
            (Failure::CloudBot(CloudBotError::Unauthorized), true),
            (Failure::Internal("after the POST"), false),
        ] {
            assert_eq!(started_nothing(&failure), freed, "{failure:?}");
        }
    }

    #[test]
    fn a_run_key_comes_from_the_job_endpoint() {
        let demo = PublicId::parse("demo", "t").unwrap();
        assert_eq!(
            run_of("https://api.c-bot.pro/demo/jobs/j-1", &demo).as_deref(),
            Some("demo/j-1")
        );
        assert_eq!(run_of("", &demo), None);
        assert_eq!(contract_of_run("demo/j-1"), Some(demo));
        assert_eq!(contract_of_run("slot:demo#1"), None);
        assert_eq!(spread_seed("m-1"), spread_seed("m-1"));
        assert_ne!(spread_seed("m-1"), spread_seed("m-2"));
    }
}
