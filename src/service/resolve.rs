//! The operator's way out of an idempotency record whose outcome is unknown
//! (`resolve_idempotency`, direct invocations only; docs/exactly-once.md): mark it started with
//! the job they found, checked with `refer_job` (it must exist and belong to the record's BOT),
//! or not started, which frees the key. The write is conditional on the record as read.

use super::{Scope, Service, answer, with_refresh};
use crate::cloudbot::{BotEndpoint, Job, JobEndpoint};
use crate::error::Failure;
use crate::idempotency::{IdempotencyError, Record, RecordKey, ResolveCheck, Update};
use crate::request::{OperationKind, RequestError, Resolution};
use crate::trigger::Answer;

impl Service {
    /// Writes the operator's `resolution` of the record `key`.
    pub(super) async fn resolve(
        &self,
        key: &RecordKey,
        resolution: &Resolution,
        scope: Scope,
    ) -> Result<Answer, Failure> {
        // The credentials of the found job's contract, read before the store is (a resolution
        // that calls Cloud BOT for nothing reads no secret).
        let fetched = match resolution {
            Resolution::Started(job) => Some(
                self.credentials
                    .get(job.public_id(), scope.deadline)
                    .await?,
            ),
            Resolution::NotStarted => None,
        };
        let idempotency = &self
            .exactly_once
            .as_ref()
            .ok_or_else(|| {
                RequestError::field(
                    "operation",
                    "no idempotency table is configured (CLOUDBOT_IDEMPOTENCY_TABLE)",
                )
            })?
            .idempotency;
        let record = match idempotency.check_resolvable(key, scope.deadline).await? {
            ResolveCheck::Allowed(record) => record,
            ResolveCheck::InFlight { retry_after } => {
                return Err(IdempotencyError::InProgress {
                    key: key.clone(),
                    retry_after,
                }
                .into());
            }
            ResolveCheck::Refused(reason) => {
                return Err(RequestError::field("record_key", reason).into());
            }
        };
        let result;
        let update = match (resolution, &fetched) {
            (Resolution::Started(job), Some(fetched)) => {
                let found = with_refresh!(self, fetched, scope, |call| self
                    .client
                    .refer_job(&call, job))?;
                self.check_job_of_record(&record, job, &found)?;
                result = answer::job_result(OperationKind::Execute, &found, job)?;
                Update::Complete {
                    result: result.get(),
                    job_reference_endpoint: job.url(),
                }
            }
            (Resolution::NotStarted, _) => Update::Release,
            // Never: the credentials are read above for every started job.
            (Resolution::Started(_), None) => {
                return Err(Failure::Internal(
                    "no credentials were read for the job to resolve",
                ));
            }
        };
        if !idempotency
            .write_resolution(key, &record, &update, scope.deadline)
            .await?
        {
            return Err(RequestError::field(
                "record_key",
                "the record changed while it was being resolved; look at it again",
            )
            .into());
        }
        tracing::warn!(idempotency_key = %key, state = update.state().as_str(), "idempotency record resolved by an operator");
        answer::resolved(key, update.state(), resolution.job())
    }

    /// The job found must belong to the record's BOT (an empty `bot_id` means Cloud BOT did
    /// not say: then the contract must match).
    fn check_job_of_record(
        &self,
        record: &Record,
        job: &JobEndpoint,
        found: &Job,
    ) -> Result<(), RequestError> {
        let record_bot = record.bot_endpoint.as_deref().and_then(|url| {
            BotEndpoint::parse(&self.config.requests.api_base, url, "bot_endpoint").ok()
        });
        match record_bot {
            Some(bot) if !belongs_to(&bot, job, found) => Err(RequestError::field(
                "job_reference_endpoint",
                format!(
                    "the job belongs to BOT `{}`, not to the record's BOT {}",
                    found.bot_id,
                    bot.url()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Whether the job at `job` (as `found`) was started by `bot`.
fn belongs_to(bot: &BotEndpoint, job: &JobEndpoint, found: &Job) -> bool {
    bot.public_id() == job.public_id()
        && (found.bot_id.is_empty() || bot.bot_id().as_str() == found.bot_id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cloudbot::{ApiBase, BotId, JobId, PublicId};

    fn base() -> ApiBase {
        ApiBase::parse("https://api.c-bot.pro").unwrap()
    }

    fn bot(public_id: &str, bot_id: &str) -> BotEndpoint {
        BotEndpoint::new(
            &base(),
            PublicId::parse(public_id, "public_id").unwrap(),
            BotId::parse(bot_id, "bot_id").unwrap(),
        )
    }

    fn job_of(public_id: &str) -> JobEndpoint {
        JobEndpoint::new(
            &base(),
            PublicId::parse(public_id, "public_id").unwrap(),
            JobId::parse("j1", "job_id").unwrap(),
        )
    }

    fn found(bot_id: &str) -> Job {
        serde_json::from_value(json!({"job_id": "j1", "bot_id": bot_id, "status": 0})).unwrap()
    }

    #[test]
    fn a_job_belongs_to_the_records_bot_by_contract_and_bot_id() {
        assert!(belongs_to(
            &bot("demo", "b1"),
            &job_of("demo"),
            &found("b1")
        ));
        assert!(!belongs_to(
            &bot("demo", "b1"),
            &job_of("demo"),
            &found("b2")
        ));
        assert!(!belongs_to(
            &bot("demo", "b1"),
            &job_of("other"),
            &found("b1")
        ));
    }

    #[test]
    fn a_job_whose_bot_cloud_bot_did_not_name_needs_only_the_contract() {
        assert!(belongs_to(&bot("demo", "b1"), &job_of("demo"), &found("")));
        assert!(!belongs_to(
            &bot("demo", "b1"),
            &job_of("other"),
            &found("")
        ));
    }
}
