//! Reconciling an unknown outcome when the same key is delivered again (a retry or a
//! duplicate): Cloud BOT's job list for the BOT and our own claims on it, read here, decided by
//! the pure rule `crate::idempotency::reconcile`. No job → the key is freed and this delivery
//! runs; exactly one job only this claim can explain → recorded as its job and replayed;
//! anything else → stays unknown, the answer naming the candidate jobs. The rule, its window
//! and its limits: docs/exactly-once.md, "Reconciling unknown outcomes".

use std::time::{Duration, UNIX_EPOCH};

use jiff::Timestamp;

use super::{DEADLINE_MARGIN, Scope, Service, answer, upstream, with_refresh};
use crate::cloudbot::{Job, JobEndpoint, JobQuery};
use crate::credentials::Fetched;
use crate::error::Failure;
use crate::idempotency::{
    Begin, Facts, Idempotency, ListedJob, Pending, Reconciled, Unsettled, Window,
};
use crate::ledger::Origin;
use crate::metrics::Invocation;
use crate::request::Execute;
use crate::table::now_ms;

/// Jobs read from the BOT's list at most (one request). A BOT with more jobs in the window
/// stays unknown: the rule never decides on a list that may have been cut.
const LIST_LIMIT: u32 = 100;

fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || ms.to_string(),
            |t| t.round(jiff::Unit::Second).unwrap_or(t).to_string(),
        )
}

/// A listed job as the rule sees it.
fn listed(job: &Job, endpoint: &JobEndpoint) -> ListedJob {
    ListedJob {
        endpoint: endpoint.url().to_owned(),
        started_at_ms: job
            .start_time
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .and_then(|t| u64::try_from(t.as_millisecond()).ok()),
    }
}

impl Service {
    /// Tries to settle `unsettled` (found by this delivery's claim) from Cloud BOT's job list.
    /// `Ok` is what the delivery does next: run (the key is claimed for it), or replay;
    /// `Err` answers `CloudBot.OutcomeUnknown` saying why the list could not settle it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn reconcile(
        &self,
        idempotency: &Idempotency,
        unsettled: Unsettled,
        pending: Pending<'_>,
        execute: &Execute,
        fetched: &Fetched,
        origin: Origin,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Begin, Failure> {
        let stays = |unsettled: Unsettled, why: String| -> Failure {
            tracing::warn!(idempotency_key = %unsettled.key, why = %why, "unknown outcome not reconciled");
            unsettled.into_error(Some(why)).into()
        };
        let settle = idempotency.reconcile_settle();
        let Some(window) = crate::idempotency::window(&unsettled.record, settle) else {
            let why = "Cloud BOT's job list cannot settle it: the record does not say when it \
                       was claimed"
                .to_owned();
            return Err(stays(unsettled, why));
        };
        let now = now_ms();
        if now < window.to_ms {
            let wait = Duration::from_millis(window.to_ms - now).as_secs().max(1);
            let why = format!(
                "Cloud BOT's job list can settle it from {} (in {wait} s, once a job it started \
                 shows in the list); deliver the request again then",
                rfc3339(window.to_ms)
            );
            return Err(stays(unsettled, why));
        }
        let jobs = match self.jobs_in(window, execute, fetched, scope, record).await {
            Ok(jobs) => jobs,
            Err(failure) => {
                let why = format!(
                    "Cloud BOT's job list could not be read ({})",
                    failure.error_type()
                );
                return Err(stays(unsettled, why));
            }
        };
        let (from, to) = crate::idempotency::claims_range(window, settle);
        let others = match idempotency
            .claims_on_bot(pending.bot_endpoint, from, to, scope.deadline)
            .await
        {
            Ok(others) => others,
            Err(err) => {
                let why = format!("our other requests on the BOT could not be read ({err})");
                return Err(stays(unsettled, why));
            }
        };
        let as_listed: Vec<ListedJob> = jobs.iter().map(|(j, e)| listed(j, e)).collect();
        let decided = crate::idempotency::decide(&Facts {
            record: &unsettled.record,
            key: unsettled.key.as_str(),
            others: &others,
            jobs: &as_listed,
            list_full: jobs.len() >= LIST_LIMIT as usize,
            settle,
            now_ms: now,
        });
        // The writes may use half the answering margin, like an execute's own settling.
        let deadline = scope.deadline + DEADLINE_MARGIN / 2;
        let begun = match decided {
            Reconciled::TooEarly { retry_after } => {
                let why = format!(
                    "Cloud BOT's job list can settle it in {} s; deliver the request again then",
                    retry_after.as_secs()
                );
                return Err(stays(unsettled, why));
            }
            Reconciled::Undecided { candidates, why } => {
                let named = if candidates.is_empty() {
                    "none".to_owned()
                } else {
                    candidates.join(", ")
                };
                let why = format!(
                    "Cloud BOT's job list cannot settle it: {why}; candidate jobs: {named}"
                );
                return Err(stays(unsettled, why));
            }
            Reconciled::NotStarted => {
                idempotency
                    .reconcile_release(&unsettled, pending, deadline)
                    .await?
            }
            Reconciled::Started(found) => {
                let Some((job, endpoint)) = jobs.iter().find(|(_, e)| e.url() == found.endpoint)
                else {
                    let why = "the job the list proved is gone from it".to_owned();
                    return Err(stays(unsettled, why));
                };
                let result = answer::started(job, endpoint)?;
                let begun = idempotency
                    .reconcile_started(&unsettled, &result.body, endpoint.url(), deadline)
                    .await?;
                if begun.is_some() {
                    self.learned(endpoint, job, Some(origin), deadline, record)
                        .await;
                }
                begun
            }
        };
        match begun {
            Some(begun) => Ok(begun),
            // The record changed since this delivery read it (another delivery reconciled it,
            // or an operator resolved it): answer by what it is now.
            None => match idempotency.begin(pending, scope.deadline).await? {
                Begin::Unknown(unsettled) => Err(unsettled.into_error(None).into()),
                other => Ok(other),
            },
        }
    }

    /// The BOT's jobs started since the window opened, newest first.
    async fn jobs_in(
        &self,
        window: Window,
        execute: &Execute,
        fetched: &Fetched,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Vec<(Job, JobEndpoint)>, Failure> {
        let query = JobQuery {
            limit: Some(LIST_LIMIT),
            // The list's filter takes whole seconds: from the second the window opens in.
            started_since: Some(UNIX_EPOCH + Duration::from_secs(window.from_ms / 1000)),
            statuses: Vec::new(),
        };
        with_refresh!(self, fetched, scope, |call| upstream(
            record,
            self.client.list_jobs(&call, &execute.bot, &query),
            |_| (Some(200), None)
        ))
    }
}
