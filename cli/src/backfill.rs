//! `cloudbot schedules backfill NAME --from --to`: replays the occurrences of a period that did
//! not run (an outage, a paused schedule) with their original nominal keys.
//!
//! The deployed schedule is the truth (GetSchedule in the stack's group: its definition, target
//! and input), not a file. Its occurrences in the period come from the calendar's preview and
//! each run's nominal instant from `decide_tick`, the function's own decision, so the key the
//! CLI looks up is the key the function claims. Whether an occurrence ran: the run ledger's
//! `by_schedule` index (durable, ~13 months) and the occurrence's idempotency record (gone after
//! 24 h). The list is shown before anything is sent; a missing occurrence is delivered exactly
//! as the Scheduler would (placeholders replaced, the tick time of the day it runs) plus
//! `backfill: true`, to the schedule's own target. A state machine's execution is named after
//! the occurrence, so a repeated backfill finds it instead of starting a second one.
//! docs/schedules.md, "Backfill".

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use cloudbot_calendar::wire::{SCHEDULE_ARN_PLACEHOLDER, SCHEDULED_TIME_PLACEHOLDER};
use cloudbot_calendar::{PreviewKind, Schedule, TickDecision, decide_tick, preview};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{BOLD, DIM, Output};
use crate::scheduler::{AwsError, Group};
use crate::session::aws_config;
use crate::stage::{Stage, Tracker};

/// The longest period one backfill covers (the preview's own limit).
const MAX_DAYS: i32 = 400;

/// How long the function keeps an occurrence's idempotency record: its default
/// `CLOUDBOT_IDEMPOTENCY_EXPIRY_SECONDS`. Without the run ledger, nothing older is remembered.
const IDEMPOTENCY_WINDOW: std::time::Duration =
    cloudbot_trigger::config::DEFAULT_IDEMPOTENCY_EXPIRY;

/// The run ledger's index and attributes this lookup reads (their one home: the ledger's own
/// `index` and `attribute` modules; docs/ledger.md, "Item shape").
mod ledger {
    pub use cloudbot_trigger::ledger::attribute::{JOB_ENDPOINT, NOMINAL_TIME, SCHEDULE, STATUS};
    pub use cloudbot_trigger::ledger::index::BY_SCHEDULE;
}

/// Whether to ask before delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Ask y/N on a terminal; without one, deliver nothing.
    Ask,
    /// `--yes`.
    Yes,
    /// `--dry-run`: show the list only.
    DryRun,
}

/// A backfill as the command line asked for it (options already checked non-empty).
#[derive(Debug)]
pub struct Request {
    /// The schedule's name.
    pub name: String,
    /// First day, in the schedule's zone.
    pub from: Date,
    /// Last day, included.
    pub to: Date,
    /// The stack's schedule group.
    pub group: String,
    /// The function's idempotency table.
    pub table: String,
    /// The run ledger table, when configured.
    pub ledger: Option<String>,
    /// Ask, `--yes` or `--dry-run`.
    pub confirm: Confirm,
}

/// The schedule's target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// The function's alias (Lambda Invoke).
    Function(String),
    /// RunBot or RunBotCallback (StartExecution).
    StateMachine(String),
}

impl Target {
    fn of(arn: &str) -> Option<Target> {
        match arn.split(':').nth(2) {
            Some("lambda") => Some(Target::Function(arn.to_owned())),
            Some("states") => Some(Target::StateMachine(arn.to_owned())),
            _ => None,
        }
    }

    /// The idempotency record the function claims for the occurrence keyed `key`: the key
    /// itself on the function target; ExecuteBot's (`<key>#ExecuteBot`, stored as a request
    /// key) on the state machines.
    fn record_key(&self, key: &str) -> String {
        match self {
            Target::Function(_) => key.to_owned(),
            Target::StateMachine(_) => format!("request:{key}#ExecuteBot"),
        }
    }
}

/// What is known of one occurrence, and what backfill does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The calendar does not run this day (a holiday, a weekend, shifted elsewhere).
    Skipped,
    /// It ran (the ledger or the idempotency record says so): never delivered again.
    Ran,
    /// It has not run: delivered.
    NotRun,
    /// Its idempotency record says its outcome is unknown or in progress: not delivered.
    Unknown,
    /// Its tick is still ahead: the Scheduler delivers it.
    Future,
    /// Older than the idempotency window and no run ledger to ask: not delivered.
    TooOld,
}

/// One line of the list.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The day of the line (the day it runs, for a run).
    pub day: Date,
    /// The occurrence's nominal date.
    pub nominal: Date,
    /// What backfill found.
    pub status: Status,
    /// Why, in words (the holiday's name, the job, ...).
    pub detail: String,
    /// The tick time of the day it runs (the delivery's `scheduled_time`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<String>,
    /// The nominal occurrence's key: `schedule:<arn>@<nominal instant>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The job of a run that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// What the delivery did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// The result of one delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// `started`, `replay`, `skipped`, `already_delivered`, `error` or `unknown`.
    pub result: &'static str,
    /// The job, when the function answered one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The state machine's execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The error's type (`Lambda.<code>`, `StepFunctions.<code>`, the function's errorType).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// The error's message, or the function's skip reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Delivery {
    fn ok(result: &'static str) -> Delivery {
        Delivery {
            result,
            job: None,
            execution: None,
            error_type: None,
            message: None,
        }
    }

    fn failed(result: &'static str, error_type: String, message: String) -> Delivery {
        Delivery {
            error_type: Some(error_type),
            message: Some(message),
            ..Delivery::ok(result)
        }
    }

    fn failed_or_unknown(&self) -> bool {
        matches!(self.result, "error" | "unknown")
    }
}

/// Runs a backfill.
pub async fn run(out: Output, tracker: &Tracker, request: &Request) -> Result<Exit, CliError> {
    request
        .name
        .parse::<cloudbot_calendar::schedule::ScheduleName>()
        .map_err(|e| CliError::Usage(format!("NAME: {e}")))?;
    let days = (request.to - request.from).get_days() + 1;
    if days < 1 {
        return Err(CliError::Usage(format!(
            "--to ({}) is before --from ({}): nothing to backfill",
            request.to, request.from
        )));
    }
    if days > MAX_DAYS {
        return Err(CliError::Usage(format!(
            "--from .. --to covers {days} days; backfill at most {MAX_DAYS} at once"
        )));
    }
    let aws = aws_config().await?;
    let group = Group::new(&aws, &request.group);
    let Some((live, schedule_arn)) = group.get(&request.name).await? else {
        return Err(CliError::Usage(format!(
            "group `{}` has no schedule `{}` (`cloudbot schedules list`); nothing was sent",
            request.group, request.name
        )));
    };
    if live.marker().is_none() {
        return Err(CliError::Usage(format!(
            "schedule `{}` is not managed by `cloudbot schedules apply` (no marker): backfill \
             replays managed schedules only; nothing was sent",
            request.name
        )));
    }
    let input = live.applied.input.clone().unwrap_or_default();
    let definition = serde_json::from_str::<Value>(&input)
        .ok()
        .map(|v| v["schedule"]["definition"].clone())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "schedule `{}`: its target input is not JSON; nothing was sent",
                request.name
            ))
        })
        .and_then(|d| {
            Schedule::from_value(d).map_err(|e| {
                CliError::Usage(format!(
                    "schedule `{}`: the target input's definition is unusable ({e}); nothing \
                     was sent",
                    request.name
                ))
            })
        })?;
    let target = Target::of(&live.applied.target_arn).ok_or_else(|| {
        CliError::Usage(format!(
            "schedule `{}` targets `{}`, neither the function nor a state machine; nothing \
             was sent",
            request.name, live.applied.target_arn
        ))
    })?;
    let days = u16::try_from(days).unwrap_or(u16::MAX);
    let coming = preview(&definition, request.from, days);
    if let Some(stopped) = &coming.stopped {
        eprintln!("warning: the list stops early: {stopped}");
    }
    let now = Timestamp::now();
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let mut rows = occurrences(&definition, &coming.entries, &schedule_arn)?;
    let ran = match &request.ledger {
        Some(table) => ledger_runs(&dynamodb, table, &request.name, &rows).await?,
        None => HashMap::new(),
    };
    for row in rows.iter_mut().filter(|r| r.status == Status::NotRun) {
        classify(
            row,
            &target,
            &ran,
            &dynamodb,
            &request.table,
            request.ledger.is_some(),
            now,
        )
        .await?;
    }
    let pending = rows.iter().filter(|r| r.status == Status::NotRun).count();
    let go = pending > 0 && confirmed(out, request, &definition, &rows, pending)?;
    if go {
        // From here an interrupt or an error may leave deliveries made: never "nothing sent".
        tracker.set(Stage::BackfillSent);
        let lambda = aws_sdk_lambda::Client::new(&aws);
        let sfn = aws_sdk_sfn::Client::new(&aws);
        for row in rows.iter_mut().filter(|r| r.status == Status::NotRun) {
            let body = delivery_input(&input, &schedule_arn, row)?;
            row.delivery = Some(match &target {
                Target::Function(arn) => invoke(&lambda, arn, &body).await,
                Target::StateMachine(arn) => start(&sfn, arn, &request.name, row, &body).await,
            });
        }
    }
    let refused = rows
        .iter()
        .any(|r| matches!(r.status, Status::Unknown | Status::TooOld));
    let failed = rows
        .iter()
        .any(|r| r.delivery.as_ref().is_some_and(Delivery::failed_or_unknown));
    print(out, request, &definition, &rows, go)?;
    Ok(
        if pending > 0 && !go && request.confirm != Confirm::DryRun {
            Exit::Usage
        } else if failed || refused {
            Exit::NotAllDelivered
        } else {
            Exit::Ok
        },
    )
}

/// The preview's lines as rows: skipped days as `Skipped`, runs as `NotRun` with their tick,
/// nominal key (the function's own decision of that tick) and the day it runs.
fn occurrences(
    definition: &Schedule,
    entries: &[cloudbot_calendar::PreviewEntry],
    schedule_arn: &str,
) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut row = Row {
            day: entry.day,
            nominal: entry.nominal,
            status: Status::Skipped,
            detail: String::new(),
            scheduled_time: None,
            key: None,
            job: None,
            delivery: None,
        };
        match &entry.kind {
            PreviewKind::Skipped { reason } => {
                row.detail = format!("{}: {reason}", crate::schedules::label(entry));
            }
            PreviewKind::Run { at } => match decide_tick(definition, *at) {
                Ok(TickDecision::Run(run)) => {
                    row.status = Status::NotRun;
                    row.scheduled_time = Some(at.to_string());
                    row.key = Some(format!("schedule:{schedule_arn}@{}", run.nominal_time));
                }
                Ok(TickDecision::Skipped { reason, .. }) => {
                    row.detail = match &reason {
                        cloudbot_calendar::TickSkip::Calendar(reason) => {
                            format!("skipped: {reason}")
                        }
                        // `enabled: false` in the deployed definition: the function would skip
                        // every delivery as `paused`.
                        other => format!("skipped: {} (the deployed definition)", other.code()),
                    };
                }
                Err(e) => row.detail = format!("skipped: the calendar cannot decide it ({e})"),
            },
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The nominal instant of a row's key.
fn nominal_time(row: &Row) -> Option<&str> {
    row.key
        .as_deref()
        .and_then(|k| k.rsplit_once('@'))
        .map(|(_, t)| t)
}

/// The ledger's runs of `schedule` for the rows' nominal instants: nominal → (job, status).
/// One Query on `by_schedule` over the period (never a Scan).
async fn ledger_runs(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    schedule: &str,
    rows: &[Row],
) -> Result<HashMap<String, (String, String)>, CliError> {
    let mut nominals: Vec<&str> = rows.iter().filter_map(nominal_time).collect();
    nominals.sort_unstable();
    let (Some(first), Some(last)) = (nominals.first(), nominals.last()) else {
        return Ok(HashMap::new());
    };
    let mut found = HashMap::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .index_name(ledger::BY_SCHEDULE)
            .key_condition_expression("#s = :s AND #n BETWEEN :first AND :last")
            .expression_attribute_names("#s", ledger::SCHEDULE)
            .expression_attribute_names("#n", ledger::NOMINAL_TIME)
            .expression_attribute_values(":s", AttributeValue::S(schedule.to_owned()))
            .expression_attribute_values(":first", AttributeValue::S((*first).to_owned()))
            .expression_attribute_values(":last", AttributeValue::S((*last).to_owned()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| {
                AwsError::of(
                    "DynamoDB",
                    format!("querying the run ledger `{table}` for `{schedule}`"),
                    &e,
                )
            })?;
        for item in page.items() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            if let Some(nominal) = text(ledger::NOMINAL_TIME) {
                found.insert(
                    nominal,
                    (
                        text(ledger::JOB_ENDPOINT).unwrap_or_default(),
                        text(ledger::STATUS).unwrap_or_default(),
                    ),
                );
            }
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(found),
        }
    }
}

/// Decides a run row: future, ran (ledger, then the idempotency record), unknown, too old
/// (no ledger), or not run.
async fn classify(
    row: &mut Row,
    target: &Target,
    ledger_runs: &HashMap<String, (String, String)>,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    has_ledger: bool,
    now: Timestamp,
) -> Result<(), CliError> {
    let tick: Timestamp = row
        .scheduled_time
        .as_deref()
        .and_then(|t| t.parse().ok())
        .unwrap_or(now);
    if tick > now {
        row.status = Status::Future;
        row.detail = "not due yet: the Scheduler delivers it".into();
        return Ok(());
    }
    if let Some((job, status)) = nominal_time(row).and_then(|n| ledger_runs.get(n)) {
        row.status = Status::Ran;
        row.detail = format!("ran: job {job} ({status}; run ledger)");
        row.job = Some(job.clone());
        return Ok(());
    }
    let Some(key) = row.key.clone() else {
        return Ok(());
    };
    let record_key = target.record_key(&key);
    let found = dynamodb
        .get_item()
        .table_name(table)
        .key(
            cloudbot_trigger::table::KEY_ATTRIBUTE,
            AttributeValue::S(record_key.clone()),
        )
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| {
            AwsError::of(
                "DynamoDB",
                format!(
                    "reading the idempotency record of {} in `{table}`",
                    row.nominal
                ),
                &e,
            )
        })?;
    let item = found.item().filter(|item| {
        // DynamoDB deletes expired items only eventually: an expired record is no record.
        item.get(cloudbot_trigger::table::TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .is_none_or(|expires| expires > now.as_second())
    });
    if let Some(item) = item {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        match text("state").as_deref() {
            Some("completed") => {
                let job = text("job_reference_endpoint").unwrap_or_default();
                row.status = Status::Ran;
                row.detail = format!("ran: job {job} (idempotency record)");
                row.job = Some(job);
                return Ok(());
            }
            Some("in_progress" | "unknown") => {
                row.status = Status::Unknown;
                row.detail = format!(
                    "its outcome is unknown (idempotency record `{record_key}`): not delivered; \
                     find the job (`cloudbot jobs BOT_ENDPOINT --since`) and settle it with \
                     `cloudbot resolve`"
                );
                return Ok(());
            }
            // Released (no job was started): it did not run.
            _ => {}
        }
    }
    let window = jiff::SignedDuration::try_from(IDEMPOTENCY_WINDOW).unwrap_or_default();
    if !has_ledger && now.duration_since(tick) >= window {
        row.status = Status::TooOld;
        row.detail = format!(
            "older than the idempotency window ({}h) and no run ledger (--ledger / \
             CLOUDBOT_RUN_LEDGER_TABLE): whether it ran cannot be known; not delivered",
            IDEMPOTENCY_WINDOW.as_secs() / 3600
        );
        return Ok(());
    }
    row.detail = "not run: will be delivered".into();
    Ok(())
}

/// The list before acting, then the question (a terminal) or `--yes`.
fn confirmed(
    out: Output,
    request: &Request,
    definition: &Schedule,
    rows: &[Row],
    pending: usize,
) -> Result<bool, CliError> {
    match request.confirm {
        Confirm::Yes => Ok(true),
        Confirm::DryRun => Ok(false),
        Confirm::Ask => {
            let stdin = std::io::stdin();
            if !stdin.is_terminal() || out.is_json() {
                eprintln!(
                    "note: {pending} occurrence{} not delivered: confirm with --yes (stdin is not \
                     a terminal{})",
                    if pending == 1 { "" } else { "s" },
                    if out.is_json() { ", or --json" } else { "" }
                );
                return Ok(false);
            }
            print(out, request, definition, rows, false)?;
            eprint!(
                "Deliver {pending} occurrence{} of `{}` with backfill: true? [y/N] ",
                if pending == 1 { "" } else { "s" },
                request.name
            );
            let mut answer = String::new();
            stdin.lock().read_line(&mut answer)?;
            Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
        }
    }
}

/// The target input as the Scheduler delivers it for the row's tick, plus `backfill: true`.
fn delivery_input(input: &str, schedule_arn: &str, row: &Row) -> Result<String, CliError> {
    let tick = row.scheduled_time.as_deref().unwrap_or_default();
    let text = input
        .replace(SCHEDULE_ARN_PLACEHOLDER, schedule_arn)
        .replace(SCHEDULED_TIME_PLACEHOLDER, tick);
    let mut body: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the target input is not JSON: {e}")))?;
    match body.get_mut("schedule").and_then(Value::as_object_mut) {
        Some(schedule) => {
            schedule.insert("backfill".into(), Value::Bool(true));
        }
        None => {
            return Err(CliError::Usage(
                "the target input has no `schedule` object; nothing was sent".into(),
            ));
        }
    }
    Ok(body.to_string())
}

/// The execution name of an occurrence (at most 80 characters, the ones Step Functions
/// allows): `backfill-<schedule>-<nominal YYYYMMDDTHHMMZ>`, a long name shortened with its
/// hash. The same occurrence always gets the same name, so StartExecution's idempotency by name
/// (same name: the running execution, or ExecutionAlreadyExists) holds a second start back.
fn execution_name(schedule: &str, nominal: &str) -> String {
    let stamp: String = nominal
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(13)
        .collect::<String>()
        + "Z";
    if schedule.len() <= 55 {
        format!("backfill-{schedule}-{stamp}")
    } else {
        let hash = Sha256::digest(schedule.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let head: String = schedule.chars().take(38).collect();
        format!("backfill-{head}-{hex}-{stamp}")
    }
}

/// The execution ARN of `name` on the state machine `arn`.
fn execution_arn(state_machine: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// StartExecution under the occurrence's name; an execution of that name already there is a
/// delivery made before (`already_delivered`), never a second one.
async fn start(
    client: &aws_sdk_sfn::Client,
    state_machine: &str,
    schedule: &str,
    row: &Row,
    body: &str,
) -> Delivery {
    let name = execution_name(schedule, nominal_time(row).unwrap_or_default());
    let arn = execution_arn(state_machine, &name);
    let already = |status: String| Delivery {
        execution: Some(arn.clone()),
        message: Some(format!("an execution of this occurrence exists ({status})")),
        ..Delivery::ok("already_delivered")
    };
    match client.describe_execution().execution_arn(&arn).send().await {
        Ok(found) => return already(found.status().as_str().to_owned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_execution_does_not_exist()) => {}
        Err(e) => {
            return Delivery::failed(
                "error",
                format!("StepFunctions.{}", e.code().unwrap_or("CallFailed")),
                format!("reading execution {arn}: {}", message_of(&e)),
            );
        }
    }
    match client
        .start_execution()
        .state_machine_arn(state_machine)
        .name(&name)
        .input(body)
        .send()
        .await
    {
        Ok(started) => Delivery {
            execution: Some(started.execution_arn().to_owned()),
            ..Delivery::ok("started")
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_execution_already_exists()) =>
        {
            already("ExecutionAlreadyExists".into())
        }
        // A request that got no answer may have started the execution: the next backfill finds
        // it by its name.
        Err(SdkError::ServiceError(e)) => Delivery::failed(
            if e.raw().status().is_server_error() {
                "unknown"
            } else {
                "error"
            },
            format!("StepFunctions.{}", e.err().code().unwrap_or("CallFailed")),
            e.err().message().unwrap_or("no message").to_owned(),
        ),
        Err(e) => Delivery::failed(
            "unknown",
            "StepFunctions.NoAnswer".into(),
            format!(
                "no answer ({}): the execution `{name}` may exist; backfill again finds it by \
                 its name",
                message_of(&e)
            ),
        ),
    }
}

/// Lambda Invoke of the function's alias with the delivery; its answer read as the function
/// gives it (a job started, a replay, a skip, or its error type).
async fn invoke(client: &aws_sdk_lambda::Client, function: &str, body: &str) -> Delivery {
    let answer = match client
        .invoke()
        .function_name(function)
        .payload(Blob::new(body.to_owned()))
        .send()
        .await
    {
        Ok(answer) => answer,
        // A refusal (4xx: no such function, throttled, no permission) ran nothing; a 5xx may
        // have come after the function ran: unknown, never "not delivered".
        Err(SdkError::ServiceError(e)) => {
            return Delivery::failed(
                if e.raw().status().is_server_error() {
                    "unknown"
                } else {
                    "error"
                },
                format!("Lambda.{}", e.err().code().unwrap_or("InvokeFailed")),
                e.err().message().unwrap_or("no message").to_owned(),
            );
        }
        // The invocation may have run: its idempotency record (the nominal key) remembers
        // what it did; backfill again reads it.
        Err(e) => {
            return Delivery::failed(
                "unknown",
                "Lambda.NoAnswer".into(),
                format!(
                    "no answer ({}): the occurrence may have started; backfill again reads its \
                     idempotency record",
                    message_of(&e)
                ),
            );
        }
    };
    let answer_body: Value = answer
        .payload()
        .and_then(|b| serde_json::from_slice(b.as_ref()).ok())
        .unwrap_or(Value::Null);
    outcome(answer.function_error().is_some(), &answer_body)
}

/// The function's answer to a delivery as a [`Delivery`].
fn outcome(function_error: bool, body: &Value) -> Delivery {
    let text = |name: &str| body[name].as_str().map(str::to_owned);
    if function_error {
        return Delivery::failed(
            "error",
            text("errorType").unwrap_or_else(|| "Lambda.FunctionError".into()),
            text("errorMessage").unwrap_or_default(),
        );
    }
    if body["decision"] == "skipped" {
        return Delivery {
            message: Some(json!({"reason": body["reason"], "name": body["name"]}).to_string()),
            ..Delivery::ok("skipped")
        };
    }
    Delivery {
        job: text("job_reference_endpoint"),
        ..Delivery::ok(if body["replay"] == true {
            "replay"
        } else {
            "started"
        })
    }
}

fn message_of<E: std::error::Error + 'static>(e: &E) -> String {
    aws_sdk_lambda::error::DisplayErrorContext(e).to_string()
}

/// The list (and the deliveries, once made).
fn print(
    out: Output,
    request: &Request,
    definition: &Schedule,
    rows: &[Row],
    delivered: bool,
) -> Result<(), CliError> {
    if out.is_json() {
        out.json(&json!({
            "schedule": request.name,
            "time_zone": definition.time_zone.name(),
            "from": request.from.to_string(),
            "to": request.to.to_string(),
            "ledger": request.ledger,
            "delivered": delivered,
            "occurrences": rows,
        }))?;
        return Ok(());
    }
    let mut w = out.text();
    writeln!(
        w,
        "{BOLD}{}{BOLD:#}  {} {}  {DIM}{} .. {}{DIM:#}",
        request.name,
        definition.at.0.strftime("%H:%M"),
        definition.time_zone.name(),
        request.from,
        request.to
    )?;
    for row in rows {
        let day = format!("{} ({})", row.day, crate::schedules::weekday_ja(row.day));
        let shifted = if row.day != row.nominal && row.status != Status::Skipped {
            format!("  the occurrence of {}", row.nominal)
        } else {
            String::new()
        };
        let line = format!("{day}  {}{shifted}", row.detail);
        match (&row.status, &row.delivery) {
            (Status::Skipped, _) => writeln!(w, "{DIM}{line}{DIM:#}")?,
            (_, Some(d)) => {
                let what = match d.result {
                    "started" | "replay" => format!(
                        "{}{}",
                        d.result,
                        d.job
                            .as_deref()
                            .or(d.execution.as_deref())
                            .map(|j| format!(": {j}"))
                            .unwrap_or_default()
                    ),
                    "already_delivered" => format!(
                        "already delivered: {} ({})",
                        d.execution.as_deref().unwrap_or("-"),
                        d.message.as_deref().unwrap_or("")
                    ),
                    "skipped" => format!(
                        "skipped by the function: {}",
                        d.message.as_deref().unwrap_or("")
                    ),
                    other => format!(
                        "{other}: {} {}",
                        d.error_type.as_deref().unwrap_or("-"),
                        d.message.as_deref().unwrap_or("")
                    ),
                };
                writeln!(w, "{day}  delivered → {what}{shifted}")?;
            }
            _ => writeln!(w, "{line}")?,
        }
    }
    let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
    writeln!(
        w,
        "{} ran, {} not run, {} skipped by the calendar{}{}{}",
        count(Status::Ran),
        count(Status::NotRun),
        count(Status::Skipped),
        match count(Status::Unknown) {
            0 => String::new(),
            n => format!(", {n} unknown"),
        },
        match count(Status::TooOld) {
            0 => String::new(),
            n => format!(", {n} too old to tell without the run ledger"),
        },
        match count(Status::Future) {
            0 => String::new(),
            n => format!(", {n} not due yet"),
        },
    )?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_fit_step_functions_and_name_the_occurrence() {
        let name = execution_name("daily-report", "2026-11-24T00:00:00Z");
        assert_eq!(name, "backfill-daily-report-20261124T0000Z");
        let long = "x".repeat(64);
        let name = execution_name(&long, "2026-11-24T00:00:00Z");
        assert!(name.len() <= 80, "{name}");
        assert!(name.ends_with("-20261124T0000Z"), "{name}");
        assert_ne!(
            name,
            execution_name(&"y".repeat(64), "2026-11-24T00:00:00Z")
        );
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:1:stateMachine:RunBotCallback",
                "backfill-a-20261124T0000Z"
            ),
            "arn:aws:states:us-east-1:1:execution:RunBotCallback:backfill-a-20261124T0000Z"
        );
    }

    #[test]
    fn the_functions_answer_is_read_as_started_replay_skipped_or_its_error() {
        let started = outcome(
            false,
            &json!({"job_reference_endpoint": "https://x/demo/jobs/1"}),
        );
        assert_eq!(
            (started.result, started.job.as_deref()),
            ("started", Some("https://x/demo/jobs/1"))
        );
        let replay = outcome(
            false,
            &json!({"job_reference_endpoint": "j", "replay": true}),
        );
        assert_eq!(replay.result, "replay");
        let skipped = outcome(false, &json!({"decision": "skipped", "reason": "holiday"}));
        assert_eq!(skipped.result, "skipped");
        let failed = outcome(
            true,
            &json!({"errorType": "Calendar.Stale", "errorMessage": "m"}),
        );
        assert_eq!(
            (failed.result, failed.error_type.as_deref()),
            ("error", Some("Calendar.Stale"))
        );
        assert!(failed.failed_or_unknown());
    }

    #[test]
    fn the_delivery_is_the_target_input_with_the_placeholders_replaced_and_backfill() {
        let input = json!({"schedule": {"schedule_arn": SCHEDULE_ARN_PLACEHOLDER,
            "scheduled_time": SCHEDULED_TIME_PLACEHOLDER, "definition": {"name": "d"}},
            "request": {"bot_endpoint": "https://x/demo/bots/b/jobs"}})
        .to_string();
        let row = Row {
            day: "2026-11-24".parse().unwrap(),
            nominal: "2026-11-24".parse().unwrap(),
            status: Status::NotRun,
            detail: String::new(),
            scheduled_time: Some("2026-11-24T00:00:00Z".into()),
            key: None,
            job: None,
            delivery: None,
        };
        let body: Value =
            serde_json::from_str(&delivery_input(&input, "arn:s", &row).unwrap()).unwrap();
        assert_eq!(
            body["schedule"],
            json!({"schedule_arn": "arn:s", "scheduled_time": "2026-11-24T00:00:00Z",
                "definition": {"name": "d"}, "backfill": true})
        );
        assert_eq!(
            Target::of("arn:aws:states:r:1:stateMachine:m")
                .unwrap()
                .record_key("schedule:a@t"),
            "request:schedule:a@t#ExecuteBot"
        );
    }
}
