//! The EventBridge Scheduler adapter of `cloudbot schedules diff / apply / list`: reads every
//! schedule of the stack's group (ListSchedules, then GetSchedule for each: the list has no
//! description or input) and creates, updates and deletes schedules; `backfill` reads one
//! schedule (GetSchedule). SDK types stay here; the
//! rest of the CLI sees [`Applied`] / [`Live`] and [`AwsError`].

use aws_sdk_scheduler::error::{BuildError, ProvideErrorMetadata};
use aws_sdk_scheduler::primitives::{DateTime, DateTimeFormat};
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};

use crate::plan::{Applied, Live};

/// An AWS call failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} failed ({service}.{code}): {message}")]
pub struct AwsError {
    /// `Scheduler` or `DynamoDB`.
    pub service: &'static str,
    /// What was being done, naming the schedule or table.
    pub action: String,
    /// The service's error code (`ResourceNotFoundException`, ...), or `CallFailed`.
    pub code: String,
    /// The service's message, or what failed on the way.
    pub message: String,
}

impl AwsError {
    /// The error of an SDK call.
    pub fn of<E>(service: &'static str, action: String, error: &E) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError {
            service,
            action,
            code: error.code().unwrap_or("CallFailed").to_owned(),
            message: error.message().map(str::to_owned).unwrap_or_else(|| {
                aws_sdk_scheduler::error::DisplayErrorContext(error).to_string()
            }),
        }
    }

    /// The stable error type: `Scheduler.<code>` / `DynamoDB.<code>`.
    pub fn error_type(&self) -> String {
        format!("{}.{}", self.service, self.code)
    }
}

/// The stack's schedule group.
pub struct Group {
    client: aws_sdk_scheduler::Client,
    name: String,
}

impl Group {
    /// The group `name`, through `aws`.
    pub fn new(aws: &aws_types::SdkConfig, name: &str) -> Group {
        Group {
            client: aws_sdk_scheduler::Client::new(aws),
            name: name.to_owned(),
        }
    }

    fn error<E>(&self, action: String) -> impl FnOnce(E) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        move |e| AwsError::of("Scheduler", action, &e)
    }

    /// Every schedule of the group, as it is.
    pub async fn schedules(&self) -> Result<Vec<Live>, AwsError> {
        let summaries = self
            .client
            .list_schedules()
            .group_name(&self.name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(self.error(format!("listing the schedules of group `{}`", self.name)))?;
        let mut live = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let Some(name) = summary.name() else { continue };
            // Listed a moment ago: gone now means deleted meanwhile, not an error to stop on.
            if let Some((found, _arn)) = self.get(name).await? {
                live.push(found);
            }
        }
        Ok(live)
    }

    /// The schedule `name` of the group as it is, with its ARN; `None` when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<(Live, String)>, AwsError> {
        let found = match self
            .client
            .get_schedule()
            .group_name(&self.name)
            .name(name)
            .send()
            .await
        {
            Ok(found) => found,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(AwsError::of(
                    "Scheduler",
                    format!("reading schedule `{name}`"),
                    &e,
                ));
            }
        };
        let target = found.target();
        let date = |d: Option<&DateTime>| d.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok());
        let live = Live {
            description: found.description().map(str::to_owned),
            applied: Applied {
                name: name.to_owned(),
                schedule_expression: found.schedule_expression().unwrap_or("").to_owned(),
                schedule_expression_timezone: found
                    .schedule_expression_timezone()
                    .map(str::to_owned),
                state: found.state().map(|s| s.as_str().to_owned()),
                flexible_time_window_mode: found
                    .flexible_time_window()
                    .map(|w| w.mode().as_str().to_owned()),
                flexible_time_window_minutes: found
                    .flexible_time_window()
                    .and_then(|w| w.maximum_window_in_minutes()),
                target_arn: target.map(|t| t.arn().to_owned()).unwrap_or_default(),
                role_arn: target.map(|t| t.role_arn().to_owned()).unwrap_or_default(),
                input: target.and_then(|t| t.input()).map(str::to_owned),
                maximum_retry_attempts: target
                    .and_then(|t| t.retry_policy())
                    .and_then(|r| r.maximum_retry_attempts()),
                maximum_event_age_seconds: target
                    .and_then(|t| t.retry_policy())
                    .and_then(|r| r.maximum_event_age_in_seconds()),
                dead_letter_arn: target
                    .and_then(|t| t.dead_letter_config())
                    .and_then(|d| d.arn())
                    .map(str::to_owned),
                kms_key_arn: found.kms_key_arn().map(str::to_owned),
                start_date: date(found.start_date()),
                end_date: date(found.end_date()),
            },
        };
        Ok(Some((live, found.arn().unwrap_or("").to_owned())))
    }

    /// The Scheduler's parts of `applied`.
    fn parts(
        applied: &Applied,
    ) -> Result<(FlexibleTimeWindow, Target, Option<ScheduleState>), AwsError> {
        let build = |e: BuildError| AwsError {
            service: "Scheduler",
            action: format!("building schedule `{}`", applied.name),
            code: "InvalidRequest".into(),
            message: e.to_string(),
        };
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::from(
                applied
                    .flexible_time_window_mode
                    .as_deref()
                    .unwrap_or("OFF"),
            ))
            .set_maximum_window_in_minutes(applied.flexible_time_window_minutes)
            .build()
            .map_err(build)?;
        let retry = RetryPolicy::builder()
            .set_maximum_retry_attempts(applied.maximum_retry_attempts)
            .set_maximum_event_age_in_seconds(applied.maximum_event_age_seconds)
            .build();
        let target = Target::builder()
            .arn(&applied.target_arn)
            .role_arn(&applied.role_arn)
            .set_input(applied.input.clone())
            .retry_policy(retry)
            .set_dead_letter_config(
                applied
                    .dead_letter_arn
                    .as_ref()
                    .map(|arn| DeadLetterConfig::builder().arn(arn).build()),
            )
            .build()
            .map_err(build)?;
        Ok((
            window,
            target,
            applied.state.as_deref().map(ScheduleState::from),
        ))
    }

    /// Creates `applied` with its marker.
    pub async fn create(&self, applied: &Applied) -> Result<(), AwsError> {
        let (window, target, state) = Self::parts(applied)?;
        self.client
            .create_schedule()
            .group_name(&self.name)
            .name(&applied.name)
            .description(cloudbot_calendar::wire::managed_description(
                &applied.digest(),
            ))
            .schedule_expression(&applied.schedule_expression)
            .set_schedule_expression_timezone(applied.schedule_expression_timezone.clone())
            .flexible_time_window(window)
            .target(target)
            .set_state(state)
            .send()
            .await
            .map_err(self.error(format!("creating schedule `{}`", applied.name)))?;
        Ok(())
    }

    /// Replaces every field of the schedule `applied.name` (UpdateSchedule sets what it is
    /// given and clears the rest) and its marker.
    pub async fn update(&self, applied: &Applied) -> Result<(), AwsError> {
        let (window, target, state) = Self::parts(applied)?;
        self.client
            .update_schedule()
            .group_name(&self.name)
            .name(&applied.name)
            .description(cloudbot_calendar::wire::managed_description(
                &applied.digest(),
            ))
            .schedule_expression(&applied.schedule_expression)
            .set_schedule_expression_timezone(applied.schedule_expression_timezone.clone())
            .flexible_time_window(window)
            .target(target)
            .set_state(state)
            .send()
            .await
            .map_err(self.error(format!("updating schedule `{}`", applied.name)))?;
        Ok(())
    }

    /// Deletes the schedule `name`.
    pub async fn delete(&self, name: &str) -> Result<(), AwsError> {
        self.client
            .delete_schedule()
            .group_name(&self.name)
            .name(name)
            .send()
            .await
            .map_err(self.error(format!("deleting schedule `{name}`")))?;
        Ok(())
    }
}
