//! The schedule state records of `cloudbot schedules list` and `resume`: the record
//! `schedule:<name>` in the function's idempotency table (partition key `record_key`; names in
//! `cloudbot_calendar::wire::state`), which the function writes (last outcome, consecutive
//! failures, the breaker's pause). `list` only reads it; `resume` lifts the breaker's pause.
//! SDK types stay here.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_calendar::wire::state;
use serde::Serialize;

use crate::scheduler::AwsError;

/// The partition key of the function's table.
const PARTITION_KEY: &str = "record_key";

/// What a schedule's state record says (absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Record {
    /// `started`, `succeeded`, `failed`, `skipped`, `too_late`, `paused`.
    pub last_outcome: Option<String>,
    /// When it was learnt, epoch seconds.
    pub last_outcome_at: Option<i64>,
    /// The job reference endpoint of the last job a tick started.
    pub last_job: Option<String>,
    /// Its nominal date.
    pub last_nominal: Option<String>,
    /// Consecutive failed runs.
    pub consecutive_failures: Option<i64>,
    /// When the breaker paused the schedule, epoch seconds; `None` when not paused by it.
    pub paused_at: Option<i64>,
    /// Why.
    pub pause_reason: Option<String>,
    /// When `resume` last resumed it, epoch seconds.
    pub resumed_at: Option<i64>,
}

/// What `resume` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// The pause was lifted; the record as it was before.
    Lifted(Record),
    /// The record exists and the schedule is not paused by the breaker: nothing changed.
    NotPaused(Record),
    /// There is no record: the schedule has not run yet, or the name is wrong.
    NoRecord,
}

/// The function's idempotency table.
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl Table {
    /// The table `name`, through `aws`.
    pub fn new(aws: &aws_types::SdkConfig, name: &str) -> Table {
        Table {
            client: aws_sdk_dynamodb::Client::new(aws),
            name: name.to_owned(),
        }
    }

    fn key(schedule: &str) -> AttributeValue {
        AttributeValue::S(state::key(schedule))
    }

    /// The state record of `schedule`, read consistently; `None` when there is none yet.
    pub async fn read(&self, schedule: &str) -> Result<Option<Record>, AwsError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(PARTITION_KEY, Self::key(schedule))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                AwsError::of(
                    "DynamoDB",
                    format!(
                        "reading the state record of `{schedule}` in table `{}`",
                        self.name
                    ),
                    &e,
                )
            })?;
        Ok(found.item().map(record))
    }

    /// Lifts the breaker's pause of `schedule`: removes `paused_at` and `pause_reason`, sets
    /// `consecutive_failures` to 0 and `resumed_at` to `now`, only if the record exists and is
    /// paused (one conditional write: a pause written meanwhile is never lost silently).
    pub async fn resume(&self, schedule: &str, now: i64) -> Result<Resume, AwsError> {
        let before = self.read(schedule).await?;
        let Some(before) = before else {
            return Ok(Resume::NoRecord);
        };
        if before.paused_at.is_none() {
            return Ok(Resume::NotPaused(before));
        }
        let written = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(PARTITION_KEY, Self::key(schedule))
            .update_expression("REMOVE #paused, #reason SET #failures = :zero, #resumed = :now")
            .condition_expression("attribute_exists(#key) AND attribute_exists(#paused)")
            .expression_attribute_names("#key", PARTITION_KEY)
            .expression_attribute_names("#paused", state::PAUSED_AT)
            .expression_attribute_names("#reason", state::PAUSE_REASON)
            .expression_attribute_names("#failures", state::CONSECUTIVE_FAILURES)
            .expression_attribute_names("#resumed", state::RESUMED_AT)
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(Resume::Lifted(before)),
            // Resumed (or deleted) between the read and the write: say what it is now.
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(match self.read(schedule).await? {
                    Some(now) => Resume::NotPaused(now),
                    None => Resume::NoRecord,
                })
            }
            Err(e) => Err(AwsError::of(
                "DynamoDB",
                format!(
                    "resuming `{schedule}` in table `{}` (the record may or may not have \
                     changed: `cloudbot schedules list` shows it)",
                    self.name
                ),
                &e,
            )),
        }
    }
}

/// The record's fields; a field of an unexpected type reads as absent.
fn record(item: &HashMap<String, AttributeValue>) -> Record {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    Record {
        last_outcome: text(state::LAST_OUTCOME),
        last_outcome_at: number(state::LAST_OUTCOME_AT),
        last_job: text(state::LAST_JOB),
        last_nominal: text(state::LAST_NOMINAL),
        consecutive_failures: number(state::CONSECUTIVE_FAILURES),
        paused_at: number(state::PAUSED_AT),
        pause_reason: text(state::PAUSE_REASON),
        resumed_at: number(state::RESUMED_AT),
    }
}
