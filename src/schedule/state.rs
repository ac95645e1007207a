//! The schedule state record (`schedule:<name>` in the function's table; attribute names in
//! [`cloudbot_calendar::wire::state`], their one home): what the function writes when a managed
//! schedule's tick is decided and when its job starts. The overlap and breaker policies read it.
//!
//! Writes (docs/schedules.md, "The schedule state record"):
//! - a tick decided to run: `failure_breaker` (the schedule's N), which also marks the schedule
//!   as managed, so ExecuteBot of a state machine (which has only the key) writes only for
//!   managed schedules, never for the template's own schedule;
//! - a job started: `last_job`, `last_nominal` (the nominal instant of the key),
//!   `last_outcome` = `started`, `last_outcome_at`;
//! - a skip or a late delivery: `last_outcome` = `skipped` / `too_late` (`paused` when the
//!   failure breaker holds the schedule), `last_outcome_at`;
//! - a job's end learnt ([`ScheduleStates::ended`], the failure breaker): counted once per job
//!   (`counted_job`) and a failure once per run (`failed_nominal`: a re-run attempt of a run
//!   counted failed is no further failed run), `consecutive_failures`, `last_outcome` =
//!   `succeeded` / `failed`, and when the count reaches the threshold `paused_at` and
//!   `pause_reason`, all in one conditional write.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_calendar::wire::state;
use tokio::time::Instant;

use crate::cloudbot::JobStatus;
use crate::idempotency::RecordKey;
use crate::table::{
    DynamoDbStore, KEY_ATTRIBUTE, StoreError, failed_condition, get_number, get_string, unavailable,
};

/// How often [`ScheduleStates::ended`] re-reads a record that changed between its read and its
/// conditional write (another end or a `resume` at the same moment) before giving up.
const COUNT_ATTEMPTS: u32 = 5;

/// The breaker's threshold as the state record keeps it (N) (`wire::state`).
pub const FAILURE_BREAKER: &str = state::FAILURE_BREAKER;

/// A scheduled run's identity as the state-machine path knows it: from ExecuteBot's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOf {
    /// The schedule's name (the last segment of its ARN).
    pub schedule: String,
    /// The nominal occurrence's instant (the key's `@` part).
    pub nominal: String,
}

impl RunOf {
    /// The schedule's name in its ARN (`…:schedule/<group>/<name>`).
    pub fn schedule_of_arn(arn: &str) -> Option<&str> {
        let (_, path) = arn.split_once(":schedule/")?;
        path.rsplit('/').next().filter(|n| !n.is_empty())
    }

    /// The run a key names: `schedule:<arn>@<nominal>` (the function target) or
    /// `request:schedule:<arn>@<nominal>#ExecuteBot` (a state machine's ExecuteBot), also with a
    /// re-run's `#attempt-<n>` (the same run: docs/state-machines.md, "Re-run on failure"). The
    /// schedule's name is the ARN's last segment. `None` for any other key.
    pub fn of_key(key: &RecordKey) -> Option<Self> {
        let raw = crate::rerun::first_attempt_key(key.as_str());
        let rest = raw
            .strip_prefix("request:schedule:")
            .and_then(|r| r.strip_suffix("#ExecuteBot"))
            .or_else(|| raw.strip_prefix("schedule:"))?;
        let (arn, nominal) = rest.rsplit_once('@')?;
        let name = Self::schedule_of_arn(arn)?;
        Some(Self {
            schedule: name.to_owned(),
            nominal: nominal.to_owned(),
        })
    }
}

/// The end of a scheduled run's job as the failure breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// Cloud BOT status 0: resets the count.
    Succeeded,
    /// Cloud BOT status 1 (error; presumably a suspended job too): counts one failure.
    Failed,
}

impl JobEnd {
    /// The end a job's status is, with the function's own classification
    /// ([`JobStatus::is_final`]): `executing` and statuses the function does not know are no
    /// end (`None`), so they are never counted either way.
    pub fn of(status: JobStatus) -> Option<Self> {
        match status {
            JobStatus::Succeeded => Some(JobEnd::Succeeded),
            JobStatus::Error => Some(JobEnd::Failed),
            JobStatus::Executing | JobStatus::Unknown(_) => None,
        }
    }

    /// `succeeded` or `failed`: the record's `last_outcome`.
    pub fn label(self) -> &'static str {
        match self {
            JobEnd::Succeeded => "succeeded",
            JobEnd::Failed => "failed",
        }
    }
}

/// What [`ScheduleStates::ended`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// No managed schedule's record (no `failure_breaker`): nothing written.
    Unmanaged,
    /// This job's end was counted before (`counted_job`): nothing written.
    Already,
    /// A failed re-run attempt of a run whose failure was counted already (`failed_nominal`):
    /// the job is recorded as counted, the count and the pause are unchanged.
    SameRun {
        /// The count, unchanged.
        consecutive_failures: u64,
    },
    /// Counted now.
    Now {
        /// The count after this end.
        consecutive_failures: u64,
        /// `Some(pause_reason)` when this end tripped the breaker (and paused the schedule).
        tripped: Option<String>,
    },
}

/// The schedule state records, in the function's table.
#[derive(Debug, Clone)]
pub struct ScheduleStates {
    store: DynamoDbStore,
}

/// Epoch seconds now.
fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl ScheduleStates {
    /// The records in `store`'s table.
    pub fn new(store: DynamoDbStore) -> Self {
        Self { store }
    }

    /// A tick of `schedule` decided to run: keeps the breaker's `threshold` (and so marks the
    /// schedule as managed). Fails when the table cannot be written: nothing was sent yet, and
    /// a run whose start could not be recorded would escape the overlap policy.
    pub async fn decided_run(
        &self,
        schedule: &str,
        threshold: u8,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        self.update(
            schedule,
            "SET #fb = :fb",
            &[("#fb", FAILURE_BREAKER)],
            vec![(":fb", n(u64::from(threshold)))],
            None,
            deadline,
        )
        .await
        .map(drop)
    }

    /// A tick of `schedule` that sent nothing: `outcome` is `skipped` or `too_late`.
    pub async fn outcome(
        &self,
        schedule: &str,
        outcome: &str,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        self.update(
            schedule,
            "SET #lo = :lo, #loa = :now",
            &[
                ("#lo", state::LAST_OUTCOME),
                ("#loa", state::LAST_OUTCOME_AT),
            ],
            vec![(":lo", s(outcome)), (":now", n(now_s()))],
            None,
            deadline,
        )
        .await
        .map(drop)
    }

    /// The job of `run` started (`job`: its reference endpoint). Written only for a managed
    /// schedule (one whose record has the breaker's threshold); `Ok(false)` otherwise.
    pub async fn started(
        &self,
        run: &RunOf,
        job: &str,
        deadline: Instant,
    ) -> Result<bool, StoreError> {
        self.update(
            &run.schedule,
            "SET #lj = :lj, #ln = :ln, #lo = :lo, #loa = :now",
            &[
                ("#lj", state::LAST_JOB),
                ("#ln", state::LAST_NOMINAL),
                ("#lo", state::LAST_OUTCOME),
                ("#loa", state::LAST_OUTCOME_AT),
                ("#fb", FAILURE_BREAKER),
            ],
            vec![
                (":lj", s(job)),
                (":ln", s(&run.nominal)),
                (":lo", s("started")),
                (":now", n(now_s())),
            ],
            Some("attribute_exists(#fb)"),
            deadline,
        )
        .await
    }

    /// The end of `job` (its reference endpoint), a run of `schedule` at the nominal occurrence
    /// `nominal` (when known), counted once per job by the failure breaker: `failed` adds one to
    /// `consecutive_failures`, `succeeded` sets it to 0; `last_outcome` and `last_outcome_at` say
    /// so; and when a failure makes the count reach the record's `failure_breaker` (N) while the
    /// schedule is not paused, `paused_at` and `pause_reason` are set in the same write.
    ///
    /// The breaker counts failed *runs*: a failed job of the occurrence whose failure was
    /// counted last (`failed_nominal`, a re-run attempt that failed again) adds nothing
    /// ([`Counted::SameRun`]), and a re-run that succeeds resets the count as any success.
    ///
    /// Read, then one `UpdateItem` conditional on what was read (the record is managed, its
    /// `counted_job` is not `job`, the count and the pause unchanged), so two deliveries of one
    /// end (a callback and the execute's answer, two callbacks) count it once, and an end
    /// racing a `resume` is counted against the record as `resume` left it (re-read, at most
    /// [`COUNT_ATTEMPTS`] times).
    pub async fn ended(
        &self,
        schedule: &str,
        nominal: Option<&str>,
        job: &str,
        end: JobEnd,
        deadline: Instant,
    ) -> Result<Counted, StoreError> {
        for _ in 0..COUNT_ATTEMPTS {
            let Some(item) = self.read(schedule, deadline).await? else {
                return Ok(Counted::Unmanaged);
            };
            let Some(threshold) = get_number(&item, FAILURE_BREAKER) else {
                return Ok(Counted::Unmanaged);
            };
            if get_string(&item, state::COUNTED_JOB).as_deref() == Some(job) {
                return Ok(Counted::Already);
            }
            let seen = get_number(&item, state::CONSECUTIVE_FAILURES);
            let paused = item.contains_key(state::PAUSED_AT);
            let failed_before = get_string(&item, state::FAILED_NOMINAL);
            let same_run =
                end == JobEnd::Failed && nominal.is_some() && failed_before.as_deref() == nominal;
            let count = match end {
                JobEnd::Failed if same_run => seen.unwrap_or(0),
                JobEnd::Failed => seen.unwrap_or(0) + 1,
                JobEnd::Succeeded => 0,
            };
            let trips = end == JobEnd::Failed && !same_run && !paused && count >= threshold;
            let tripped = trips.then(|| {
                let plural = if count == 1 { "" } else { "s" };
                format!("{count} consecutive failed job{plural}, last {job}")
            });

            let mut expression = String::from("SET #cf = :cf, #cj = :job, #lo = :lo, #loa = :now");
            let mut names = vec![
                ("#fb", FAILURE_BREAKER),
                ("#cf", state::CONSECUTIVE_FAILURES),
                ("#cj", state::COUNTED_JOB),
                ("#lo", state::LAST_OUTCOME),
                ("#loa", state::LAST_OUTCOME_AT),
                ("#pa", state::PAUSED_AT),
                ("#fn", state::FAILED_NOMINAL),
            ];
            let mut values = vec![
                (":cf", n(count)),
                (":job", s(job)),
                (":lo", s(end.label())),
                (":now", n(now_s())),
            ];
            if let (JobEnd::Failed, Some(nominal)) = (end, nominal) {
                expression.push_str(", #fn = :nominal");
                values.push((":nominal", s(nominal)));
            }
            if let Some(reason) = &tripped {
                expression.push_str(", #pa = :now, #pr = :reason");
                names.push(("#pr", state::PAUSE_REASON));
                values.push((":reason", s(reason)));
            }
            if end == JobEnd::Succeeded && failed_before.is_some() {
                expression.push_str(" REMOVE #fn");
            }
            let mut condition = String::from(
                "attribute_exists(#fb) AND (attribute_not_exists(#cj) OR #cj <> :job) AND ",
            );
            match seen {
                Some(seen) => {
                    condition.push_str("#cf = :seen AND ");
                    values.push((":seen", n(seen)));
                }
                None => condition.push_str("attribute_not_exists(#cf) AND "),
            }
            match &failed_before {
                Some(before) => {
                    condition.push_str("#fn = :fnseen AND ");
                    values.push((":fnseen", s(before)));
                }
                None => condition.push_str("attribute_not_exists(#fn) AND "),
            }
            condition.push_str(if paused {
                "attribute_exists(#pa)"
            } else {
                "attribute_not_exists(#pa)"
            });
            if self
                .update(
                    schedule,
                    &expression,
                    &names,
                    values,
                    Some(&condition),
                    deadline,
                )
                .await?
            {
                return Ok(if same_run {
                    Counted::SameRun {
                        consecutive_failures: count,
                    }
                } else {
                    Counted::Now {
                        consecutive_failures: count,
                        tripped,
                    }
                });
            }
            // The record changed since it was read: the next read decides again.
        }
        Err(StoreError::Unavailable(
            "the schedule's state record kept changing while a job's end was counted".into(),
        ))
    }

    /// The state record of `schedule` as stored (`None`: never written).
    pub async fn read(
        &self,
        schedule: &str,
        deadline: Instant,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        bounded(deadline, self.store.read_item(s(&state::key(schedule)))).await
    }

    /// One `UpdateItem` on the record of `schedule`; `Ok(false)` when `condition` failed.
    async fn update(
        &self,
        schedule: &str,
        expression: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        condition: Option<&str>,
        deadline: Instant,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(KEY_ATTRIBUTE, s(&state::key(schedule)))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned));
        for (placeholder, name) in names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        match bounded(deadline, async {
            self.store
                .send_update_item(request)
                .await
                .map_err(|e| match failed_condition(&e) {
                    Some(_) => None,
                    None => Some(unavailable("UpdateItem", &e)),
                })
        })
        .await
        {
            Ok(_) => Ok(true),
            Err(None) => Ok(false),
            Err(Some(err)) => Err(err),
        }
    }
}

/// Runs a table call within `deadline`.
async fn bounded<T, E: From<StoreError>>(
    deadline: Instant,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable("no answer before the invocation's deadline".into()).into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_named_by_the_last_segment_of_its_schedules_arn() {
        const ARN: &str = "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/grp/payday";
        let want = Some(RunOf {
            schedule: "payday".into(),
            nominal: "2026-10-25T00:00:00Z".into(),
        });
        let machine =
            RecordKey::request(&format!("schedule:{ARN}@2026-10-25T00:00:00Z#ExecuteBot")).unwrap();
        assert_eq!(RunOf::of_key(&machine), want);
        // A re-run of that occurrence (the state machines' loop) is the same run.
        let rerun = RecordKey::request(&format!(
            "schedule:{ARN}@2026-10-25T00:00:00Z#ExecuteBot#attempt-2"
        ))
        .unwrap();
        assert_eq!(RunOf::of_key(&rerun), want);
        let function = RecordKey::schedule(ARN, "2026-10-25T00:00:00Z").unwrap();
        assert_eq!(RunOf::of_key(&function), want);
        // Any other key is no scheduled run.
        let other = RecordKey::request("arn:aws:states:x:execution:m:e#ExecuteBot").unwrap();
        assert_eq!(RunOf::of_key(&other), None);
        let not_a_schedule = RecordKey::request("schedule:nonsense@x#ExecuteBot").unwrap();
        assert_eq!(RunOf::of_key(&not_a_schedule), None);
    }
}
