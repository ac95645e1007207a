//! The contract a request names (the public id in its endpoint), for what is kept or decided
//! per contract: the credentials used (src/credentials/contracts.rs), and usage, budget or
//! admission caps keyed on the contract.

use super::{Operation, Request};
use crate::cloudbot::PublicId;

impl Request {
    /// The contract the request names in its endpoint or public id; `None` for the operations
    /// whose contract is only known from a stored record (`resolve_idempotency` without a
    /// job, a callback).
    pub fn contract(&self) -> Option<&PublicId> {
        match &self.operation {
            Operation::Execute(execute) | Operation::ScheduleTick(execute) => {
                Some(execute.bot.public_id())
            }
            Operation::ReferJob { job } => Some(job.public_id()),
            Operation::ListBots { public_id } => Some(public_id),
            Operation::ResolveIdempotency { resolution, .. } => {
                resolution.job().map(|job| job.public_id())
            }
            // A BOT-done delivery for a contract without a secret is ignored with its documented
            // answer (service/bot_done.rs), not refused: a refusal would make Cloud BOT retry.
            Operation::Callback { .. }
            | Operation::ExecutionEnded(_)
            | Operation::Sweep
            | Operation::BotDone(_) => None,
            // A decision calls no one.
            Operation::DecideRerun(..) => None,
        }
    }
}
