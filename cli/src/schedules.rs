//! `cloudbot schedules ...`. `check` and `preview` are pure commands on a team's schedule file
//! (the file model, its validation and the preview are the calendar crate's); they print in the
//! schedule's own time zone (not the operator's `TZ`: a schedule's days are its zone's days).
//! `diff` / `apply` make the stack's schedule group match the file (`plan.rs` decides,
//! `scheduler.rs` calls EventBridge Scheduler); `list` and `resume` read and lift the failure
//! breaker's pause in the schedule state records (`state.rs`).

use std::io::Write;
use std::path::Path;

use cloudbot_calendar::{
    Preview, PreviewEntry, PreviewKind, Schedule, ScheduleFile, SkipReason, WeekdayName, preview,
};
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use serde::Serialize;
use serde_json::{Value, json};

use crate::args::{DeployArgs, SchedulesCommand};
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{BOLD, DIM, Output};
use crate::plan::{Action, Change, Deploy, Effect, Live, desired, plan};
use crate::scheduler::Group;
use crate::session::aws_config;
use crate::state::{Record, Resume, Table};

/// Runs a `schedules` command.
pub async fn run(
    out: Output,
    tracker: &crate::stage::Tracker,
    command: &SchedulesCommand,
) -> Result<Exit, CliError> {
    match command {
        SchedulesCommand::Check { file } => check(out, file),
        SchedulesCommand::Preview {
            name,
            file,
            days,
            from,
        } => {
            let schedules = load(file)?;
            let schedule = find(&schedules, name, file)?;
            let from = from.unwrap_or_else(|| {
                Timestamp::now()
                    .to_zoned_datetime(schedule.time_zone.tz().clone())
                    .date()
            });
            let preview = preview(schedule, from, *days);
            print_preview(out, schedule, from, *days, &preview)
        }
        SchedulesCommand::Diff { file, deploy } => diff_or_apply(out, file, deploy, None).await,
        SchedulesCommand::Apply {
            file,
            deploy,
            overwrite_hand_edits,
        } => diff_or_apply(out, file, deploy, Some(*overwrite_hand_edits)).await,
        SchedulesCommand::List { group, table } => list(out, group, table).await,
        SchedulesCommand::Resume { name, table } => resume(out, name, table).await,
        SchedulesCommand::Backfill {
            name,
            from,
            to,
            group,
            table,
            ledger,
            yes,
            dry_run,
        } => {
            let request = crate::backfill::Request {
                name: name.trim().to_owned(),
                from: *from,
                to: *to,
                group: option_value(group, "--group", "CLOUDBOT_SCHEDULE_GROUP", None)?,
                table: option_value(table, "--table", "CLOUDBOT_IDEMPOTENCY_TABLE", None)?,
                ledger: ledger
                    .as_deref()
                    .map(|l| option_value(l, "--ledger", "CLOUDBOT_RUN_LEDGER_TABLE", None))
                    .transpose()?,
                confirm: if *dry_run {
                    crate::backfill::Confirm::DryRun
                } else if *yes {
                    crate::backfill::Confirm::Yes
                } else {
                    crate::backfill::Confirm::Ask
                },
            };
            crate::backfill::run(out, tracker, &request).await
        }
    }
}

/// Reads and validates a schedule file: JSON when its name ends in `.json`, else YAML. Any
/// error is a usage error naming the file (and the field, from the calendar crate).
pub fn load(path: &Path) -> Result<ScheduleFile, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read the schedule file {}: {e}",
            path.display()
        ))
    })?;
    let json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    let parsed = if json {
        ScheduleFile::from_json(&text)
    } else {
        ScheduleFile::from_yaml(&text)
    };
    parsed.map_err(|e| CliError::Usage(format!("schedule file {}: {e}", path.display())))
}

/// The schedule named `name`, or a usage error listing the names the file has.
fn find<'a>(file: &'a ScheduleFile, name: &str, path: &Path) -> Result<&'a Schedule, CliError> {
    file.schedules
        .iter()
        .find(|s| s.name.as_str() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = file.schedules.iter().map(|s| s.name.as_str()).collect();
            CliError::Usage(format!(
                "schedule file {} has no schedule named `{name}` (it has: {})",
                path.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
}

/// `check`: the schedules of a valid file, one line each.
fn check(out: Output, path: &Path) -> Result<Exit, CliError> {
    let file = load(path)?;
    if out.is_json() {
        #[derive(Serialize)]
        struct Row<'a> {
            name: &'a str,
            scheduler_expression: String,
            time_zone: &'a str,
            enabled: bool,
        }
        let rows: Vec<Row<'_>> = file
            .schedules
            .iter()
            .map(|s| Row {
                name: s.name.as_str(),
                scheduler_expression: s.scheduler_expression(),
                time_zone: s.time_zone.name(),
                enabled: s.enabled,
            })
            .collect();
        out.json(&serde_json::json!({
            "file": path.display().to_string(),
            "valid": true,
            "schedules": rows,
        }))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    writeln!(
        w,
        "{}: valid, {} schedule{}",
        path.display(),
        file.schedules.len(),
        if file.schedules.len() == 1 { "" } else { "s" }
    )?;
    for s in &file.schedules {
        writeln!(
            w,
            "  {BOLD}{}{BOLD:#}  {} {}{}",
            s.name,
            s.at.0.strftime("%H:%M"),
            s.time_zone.name(),
            if s.enabled { "" } else { "  (enabled: false)" }
        )?;
    }
    w.flush()?;
    Ok(Exit::Ok)
}

/// The Japanese weekday mark of an ops run calendar: 月 火 水 木 金 土 日.
pub fn weekday_ja(date: Date) -> &'static str {
    match date.weekday() {
        Weekday::Monday => "月",
        Weekday::Tuesday => "火",
        Weekday::Wednesday => "水",
        Weekday::Thursday => "木",
        Weekday::Friday => "金",
        Weekday::Saturday => "土",
        Weekday::Sunday => "日",
    }
}

/// The label of a preview line: `run`, `run (shifted)`, `skipped`, `shifted` (the nominal day
/// whose occurrence runs elsewhere) or `coalesced`.
pub fn label(entry: &PreviewEntry) -> &'static str {
    match &entry.kind {
        PreviewKind::Run { .. } if entry.day != entry.nominal => "run (shifted)",
        PreviewKind::Run { .. } => "run",
        PreviewKind::Skipped {
            reason: SkipReason::Shifted { .. },
        } => "shifted",
        PreviewKind::Skipped {
            reason: SkipReason::Coalesced { .. },
        } => "coalesced",
        PreviewKind::Skipped { .. } => "skipped",
    }
}

/// One preview line as text (without colour): `2027-04-23 (金)  07:00 JST  run (shifted) ...`.
pub fn line(schedule: &Schedule, entry: &PreviewEntry) -> String {
    let day = format!("{} ({})", entry.day, weekday_ja(entry.day));
    match &entry.kind {
        PreviewKind::Run { at } => {
            let local = at
                .to_zoned_datetime(schedule.time_zone.tz().clone())
                .strftime("%H:%M %Z")
                .to_string();
            let mut text = format!("{day}  {local:<9}  {}", label(entry));
            if entry.day != entry.nominal {
                text.push_str(&format!(
                    "  the occurrence of {} ({})",
                    entry.nominal,
                    weekday_ja(entry.nominal)
                ));
            }
            text
        }
        PreviewKind::Skipped { reason } => {
            format!("{day}  {:<9}  {}  {reason}", "-", label(entry))
        }
    }
}

/// A preview line as JSON: the calendar's entry (`day`, `nominal`, `kind`, `at` in UTC,
/// `reason` and its fields) plus `label` and, for a run, `local_time` in the schedule's zone.
fn entry_json(schedule: &Schedule, entry: &PreviewEntry) -> Result<Value, CliError> {
    let mut value = serde_json::to_value(entry)
        .map_err(|e| CliError::Usage(format!("cannot serialize the preview: {e}")))?;
    if let Value::Object(map) = &mut value {
        map.insert("label".into(), label(entry).into());
        if let PreviewKind::Run { at } = &entry.kind {
            let local = at
                .to_zoned_datetime(schedule.time_zone.tz().clone())
                .to_string();
            map.insert("local_time".into(), local.into());
        }
    }
    Ok(value)
}

fn print_preview(
    out: Output,
    schedule: &Schedule,
    from: Date,
    days: u16,
    preview: &Preview,
) -> Result<Exit, CliError> {
    if let Some(stopped) = &preview.stopped {
        eprintln!("warning: the preview stops early: {stopped}");
    }
    if out.is_json() {
        let entries = preview
            .entries
            .iter()
            .map(|e| entry_json(schedule, e))
            .collect::<Result<Vec<_>, _>>()?;
        out.json(&serde_json::json!({
            "schedule": schedule.name.as_str(),
            "time_zone": schedule.time_zone.name(),
            "enabled": schedule.enabled,
            "from": from.to_string(),
            "days": days,
            "entries": entries,
            "stopped": preview.stopped.as_ref().map(|e| e.to_string()),
        }))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    let last = from
        .checked_add(jiff::Span::new().days(i64::from(days) - 1))
        .unwrap_or(from);
    writeln!(
        w,
        "{BOLD}{}{BOLD:#}  {} {}  {}  {DIM}{from} .. {last}{DIM:#}",
        schedule.name,
        schedule.at.0.strftime("%H:%M"),
        schedule.time_zone.name(),
        recurrence_text(schedule),
    )?;
    if !schedule.enabled {
        writeln!(
            w,
            "{DIM}(enabled: false in the file: these runs happen once it is enabled){DIM:#}"
        )?;
    }
    let runs = preview
        .entries
        .iter()
        .filter(|e| matches!(e.kind, PreviewKind::Run { .. }))
        .count();
    for entry in &preview.entries {
        let text = line(schedule, entry);
        if matches!(entry.kind, PreviewKind::Run { .. }) {
            writeln!(w, "{text}")?;
        } else {
            writeln!(w, "{DIM}{text}{DIM:#}")?;
        }
    }
    writeln!(w, "{runs} run{}", if runs == 1 { "" } else { "s" })?;
    w.flush()?;
    Ok(Exit::Ok)
}

/// The recurrence in words, for the preview's heading.
fn recurrence_text(schedule: &Schedule) -> String {
    use cloudbot_calendar::Recurrence;
    let base = match &schedule.recurrence {
        Recurrence::Daily => "every business day".to_owned(),
        Recurrence::Weekly(days) => format!(
            "weekly on {}",
            days.iter()
                .map(|d: &WeekdayName| d.code())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Recurrence::Monthly(day) => format!("monthly on the {day}"),
        Recurrence::BusinessDay(nth) => format!("on {nth} of the month"),
    };
    match &schedule.months {
        Some(months) => format!(
            "{base}, months {}",
            months
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => base,
    }
}

/// A required name or ARN option, trimmed; an empty one or an ARN of the wrong service is a
/// usage error naming the option and its variable.
fn option_value(
    value: &str,
    option: &str,
    var: &str,
    arn_of: Option<&[&str]>,
) -> Result<String, CliError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CliError::Usage(format!("{option} (or {var}) is empty")));
    }
    if let Some(services) = arn_of {
        let service = value.split(':').nth(2).unwrap_or("");
        if !value.starts_with("arn:") || !services.contains(&service) {
            return Err(CliError::Usage(format!(
                "{option} (or {var}) must be an ARN of {} (a stack output), not `{}`",
                services.join(" or "),
                value.chars().take(200).collect::<String>()
            )));
        }
    }
    Ok(value.to_owned())
}

/// The stack outputs `apply` needs, checked before any call.
fn deploy(args: &DeployArgs) -> Result<Deploy, CliError> {
    Ok(Deploy {
        group: option_value(&args.group, "--group", "CLOUDBOT_SCHEDULE_GROUP", None)?,
        role_arn: option_value(
            &args.role_arn,
            "--role-arn",
            "CLOUDBOT_SCHEDULER_ROLE_ARN",
            Some(&["iam"]),
        )?,
        target_arn: option_value(
            &args.target_arn,
            "--target-arn",
            "CLOUDBOT_SCHEDULE_TARGET_ARN",
            Some(&["states", "lambda"]),
        )?,
        dead_letter_arn: option_value(
            &args.dead_letter_arn,
            "--dead-letter-arn",
            "CLOUDBOT_SCHEDULE_DLQ_ARN",
            Some(&["sqs"]),
        )?,
    })
}

/// `diff` (`overwrite` is `None`) and `apply`: the plan against the group as it is now; apply
/// then makes its calls, unless a hand edit or a foreign schedule stops it first.
async fn diff_or_apply(
    out: Output,
    path: &Path,
    args: &DeployArgs,
    overwrite: Option<bool>,
) -> Result<Exit, CliError> {
    let file = load(path)?;
    let deploy = deploy(args)?;
    let wanted = file.schedules.iter().map(|s| desired(s, &deploy)).collect();
    let aws = aws_config().await?;
    let group = Group::new(&aws, &deploy.group);
    let changes = plan(wanted, group.schedules().await?);
    let blocked = changes.iter().any(|c| c.blocks(overwrite.unwrap_or(false)));
    let mut made = Vec::new();
    if let (Some(overwrite), false) = (overwrite, blocked) {
        for change in &changes {
            let effect = change.effect(overwrite);
            match effect {
                Effect::Create(applied) => group.create(applied).await,
                Effect::Update(applied) => group.update(applied).await,
                Effect::Delete => group.delete(&change.name).await,
                Effect::None => continue,
            }
            .inspect_err(|_| {
                // What was done before the failure stays done (said on stderr, also with
                // --json); apply again compares with the group as it is then: safe to repeat.
                if !made.is_empty() {
                    eprintln!(
                        "note: apply stopped after {} change{}: {}",
                        made.len(),
                        if made.len() == 1 { "" } else { "s" },
                        made.join(", ")
                    );
                }
            })?;
            made.push(change.name.clone());
        }
    }
    let exit = if blocked { Exit::HandEdited } else { Exit::Ok };
    print_plan(out, &deploy.group, &changes, overwrite, blocked, made.len())?;
    Ok(exit)
}

fn print_plan(
    out: Output,
    group: &str,
    changes: &[Change],
    overwrite: Option<bool>,
    blocked: bool,
    made: usize,
) -> Result<(), CliError> {
    if out.is_json() {
        out.json(&json!({
            "group": group,
            "changes": changes,
            "applied": overwrite.is_some() && !blocked,
            "calls_made": made,
        }))?;
        return Ok(());
    }
    let mut w = out.text();
    let pending = changes
        .iter()
        .filter(|c| c.effect(overwrite.unwrap_or(false)) != Effect::None)
        .count();
    for change in changes {
        let (mark, text) = match &change.action {
            Action::Create => ("+", "create".to_owned()),
            Action::Update { fields } => ("~", format!("update: {}", fields.join(", "))),
            Action::Unchanged => ("=", "unchanged".to_owned()),
            Action::Delete => ("-", "delete (no longer in the file)".to_owned()),
            Action::HandEdited { fields } => {
                let what = match fields {
                    Some(fields) if fields.is_empty() => "as the file says".to_owned(),
                    Some(fields) => format!("differs from the file in: {}", fields.join(", ")),
                    None => "no longer in the file".to_owned(),
                };
                let fate = if overwrite == Some(true) {
                    "overwritten"
                } else {
                    "not overwritten (--overwrite-hand-edits replaces it)"
                };
                (
                    "!",
                    format!("changed by hand since the last apply ({what}); {fate}"),
                )
            }
            Action::NotManaged { in_file: true } => (
                "!",
                "exists without the managed marker: not managed by apply, never touched; the \
                 file's entry of this name cannot be applied (rename one of them)"
                    .to_owned(),
            ),
            Action::NotManaged { in_file: false } => (
                "?",
                "not managed by apply (no marker): not touched".to_owned(),
            ),
        };
        let text = match &change.rerun {
            Some(rerun) => format!("{text}; {}", rerun_text(rerun)),
            None => text,
        };
        if change.action == Action::Unchanged {
            writeln!(w, "{DIM}{mark} {}  {text}{DIM:#}", change.name)?;
        } else {
            writeln!(w, "{mark} {BOLD}{}{BOLD:#}  {text}", change.name)?;
        }
    }
    let summary = match overwrite {
        _ if blocked => format!(
            "group {group}: stopped by the schedules marked !; {}",
            if overwrite.is_some() {
                "apply changed nothing"
            } else {
                "apply would change nothing until they are resolved"
            }
        ),
        None if pending == 0 => format!("group {group}: no changes"),
        None => format!(
            "group {group}: {pending} change{} to apply",
            if pending == 1 { "" } else { "s" }
        ),
        Some(_) if made == 0 => format!("group {group}: no changes"),
        Some(_) => format!(
            "group {group}: {made} change{} applied",
            if made == 1 { "" } else { "s" }
        ),
    };
    writeln!(w, "{summary}")?;
    w.flush()?;
    Ok(())
}

/// A schedule's `policies.rerun` in a plan line: every attempt is a billed run.
fn rerun_text(rerun: &cloudbot_calendar::RerunPolicy) -> String {
    let mut text = format!(
        "re-run on failure: up to {} more job{}, {} s apart",
        rerun.attempts,
        if rerun.attempts == 1 { "" } else { "s" },
        rerun.backoff_seconds
    );
    if let Some(pattern) = &rerun.message_pattern {
        text.push_str(&format!(", when the message matches `{pattern}`"));
    }
    text
}

/// One schedule of `list`.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    /// Has the managed marker.
    managed: bool,
    /// Managed and changed by hand since the last apply.
    hand_edited: bool,
    /// The Scheduler's `ENABLED` / `DISABLED`.
    scheduler_state: Option<String>,
    time_zone: Option<String>,
    /// The next run: UTC instant and the time in the schedule's zone.
    next_run: Option<Value>,
    /// Why there is no next run (holiday data ends, no run within a year, unreadable input).
    next_run_note: Option<String>,
    /// The state record; `None`: no run yet (or not managed).
    state: Option<Record>,
}

/// `list`: every schedule of the group with its next run, Scheduler state, pause and last
/// outcome.
async fn list(out: Output, group: &str, table: &str) -> Result<Exit, CliError> {
    let group_name = option_value(group, "--group", "CLOUDBOT_SCHEDULE_GROUP", None)?;
    let table_name = option_value(table, "--table", "CLOUDBOT_IDEMPOTENCY_TABLE", None)?;
    let aws = aws_config().await?;
    let mut live = Group::new(&aws, &group_name).schedules().await?;
    live.sort_by(|a, b| a.applied.name.cmp(&b.applied.name));
    let table = Table::new(&aws, &table_name);
    let now = Timestamp::now();
    let mut rows = Vec::with_capacity(live.len());
    for schedule in &live {
        rows.push(listed(schedule, &table, now).await?);
    }
    if out.is_json() {
        out.json(&json!({"group": group_name, "table": table_name, "schedules": rows}))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    writeln!(
        w,
        "group {group_name}: {} schedule{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )?;
    for row in &rows {
        if !row.managed {
            writeln!(
                w,
                "{DIM}{}  not managed by apply (no marker){DIM:#}",
                row.name
            )?;
            continue;
        }
        let zone = row
            .time_zone
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let local = |secs: i64| {
            Timestamp::from_second(secs)
                .map(|t| {
                    t.to_zoned_datetime(zone.clone())
                        .strftime("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_else(|_| secs.to_string())
        };
        let next = match (&row.next_run, &row.next_run_note) {
            (Some(next), _) => format!("next {}", next["display"].as_str().unwrap_or("-")),
            (None, Some(note)) => format!("next: {note}"),
            (None, None) => "next: -".to_owned(),
        };
        writeln!(
            w,
            "{BOLD}{}{BOLD:#}  {next}  {}{}",
            row.name,
            row.scheduler_state.as_deref().unwrap_or("-"),
            if row.hand_edited {
                "  (changed by hand since the last apply)"
            } else {
                ""
            }
        )?;
        match &row.state {
            None => writeln!(w, "  {DIM}last     {DIM:#}no run yet")?,
            Some(record) => {
                let outcome = record.last_outcome.as_deref().unwrap_or("-");
                let at = record.last_outcome_at.map(local).unwrap_or_default();
                writeln!(w, "  {DIM}last     {DIM:#}{outcome} {at}")?;
                if let Some(job) = &record.last_job {
                    writeln!(w, "  {DIM}job      {DIM:#}{job}")?;
                }
                if let Some(paused) = record.paused_at {
                    writeln!(
                        w,
                        "  {BOLD}paused{BOLD:#} by the failure breaker since {} ({}; {} \
                         consecutive failure{}): `cloudbot schedules resume {}`",
                        local(paused),
                        record
                            .pause_reason
                            .as_deref()
                            .unwrap_or("no reason recorded"),
                        record.consecutive_failures.unwrap_or(0),
                        if record.consecutive_failures == Some(1) {
                            ""
                        } else {
                            "s"
                        },
                        row.name
                    )?;
                } else if let Some(failures) = record.consecutive_failures.filter(|n| *n > 0) {
                    writeln!(w, "  {DIM}failures {DIM:#}{failures} in a row")?;
                }
            }
        }
    }
    w.flush()?;
    Ok(Exit::Ok)
}

/// How far ahead `list` looks for the next run.
const NEXT_RUN_HORIZON_DAYS: u16 = 400;

/// One row of `list`: the definition from the target input, its next run after `now`, and the
/// state record.
async fn listed(schedule: &Live, table: &Table, now: Timestamp) -> Result<Listed, CliError> {
    let applied = &schedule.applied;
    let mut row = Listed {
        name: applied.name.clone(),
        managed: schedule.marker().is_some(),
        hand_edited: schedule.hand_edited(),
        scheduler_state: applied.state.clone(),
        time_zone: applied.schedule_expression_timezone.clone(),
        next_run: None,
        next_run_note: None,
        state: None,
    };
    if !row.managed {
        return Ok(row);
    }
    let definition = applied
        .input
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .map(|input| input["schedule"]["definition"].clone())
        .map(Schedule::from_value);
    match definition {
        Some(Ok(definition)) => {
            let zone = definition.time_zone.tz().clone();
            let today = now.to_zoned_datetime(zone.clone()).date();
            let coming = preview(&definition, today, NEXT_RUN_HORIZON_DAYS);
            let next = coming.entries.iter().find_map(|e| match e.kind {
                PreviewKind::Run { at } if at > now => Some(at),
                _ => None,
            });
            match (next, &coming.stopped) {
                (Some(at), _) => {
                    let local = at.to_zoned_datetime(zone);
                    row.next_run = Some(json!({
                        "at": at.to_string(),
                        "local_time": local.to_string(),
                        "display": format!(
                            "{} ({}) {}",
                            local.date(),
                            weekday_ja(local.date()),
                            local.strftime("%H:%M %Z")
                        ),
                    }));
                }
                (None, Some(stopped)) => row.next_run_note = Some(stopped.to_string()),
                (None, None) => {
                    row.next_run_note = Some(format!("no run within {NEXT_RUN_HORIZON_DAYS} days"))
                }
            }
        }
        Some(Err(e)) => {
            row.next_run_note = Some(format!("the target input's definition is unusable: {e}"))
        }
        None => row.next_run_note = Some("the target input has no definition".to_owned()),
    }
    row.state = table.read(&applied.name).await?;
    Ok(row)
}

/// `resume`: lifts the breaker's pause in the state record; the Scheduler state is the file's.
async fn resume(out: Output, name: &str, table: &str) -> Result<Exit, CliError> {
    let name = name.trim();
    name.parse::<cloudbot_calendar::schedule::ScheduleName>()
        .map_err(|e| CliError::Usage(format!("NAME: {e}")))?;
    let table_name = option_value(table, "--table", "CLOUDBOT_IDEMPOTENCY_TABLE", None)?;
    let aws = aws_config().await?;
    let now = Timestamp::now().as_second();
    let outcome = Table::new(&aws, &table_name).resume(name, now).await?;
    let (resumed, before) = match outcome {
        Resume::NoRecord => {
            return Err(CliError::Usage(format!(
                "schedule `{name}` has no state record in table `{table_name}`: it has not run \
                 yet (nothing to resume), or the name is wrong (`cloudbot schedules list`); \
                 nothing was changed"
            )));
        }
        Resume::Lifted(before) => (true, before),
        Resume::NotPaused(before) => (false, before),
    };
    if out.is_json() {
        out.json(&json!({
            "schedule": name,
            "resumed": resumed,
            "resumed_at": resumed.then_some(now),
            "before": before,
        }))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    if resumed {
        writeln!(
            w,
            "{BOLD}{name}{BOLD:#}: resumed (it was paused by the failure breaker: {}); its next \
             tick runs. The Scheduler state is unchanged: `enabled` in the file decides it.",
            before
                .pause_reason
                .as_deref()
                .unwrap_or("no reason recorded")
        )?;
    } else {
        writeln!(
            w,
            "{BOLD}{name}{BOLD:#}: not paused by the failure breaker; nothing changed"
        )?;
    }
    w.flush()?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../calendar/examples/schedules.yaml");

    fn example(name: &str) -> Schedule {
        let file = ScheduleFile::from_yaml(EXAMPLE).unwrap();
        file.schedules
            .into_iter()
            .find(|s| s.name.as_str() == name)
            .unwrap()
    }

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    fn lines(name: &str, from: &str, days: u16) -> Vec<String> {
        let schedule = example(name);
        let preview = preview(&schedule, date(from), days);
        assert!(preview.stopped.is_none());
        preview.entries.iter().map(|e| line(&schedule, e)).collect()
    }

    #[test]
    fn a_rerun_policy_reads_as_what_it_bills() {
        let rerun = |v| serde_json::from_value::<cloudbot_calendar::RerunPolicy>(v).unwrap();
        assert_eq!(
            rerun_text(&rerun(json!({"attempts": 1}))),
            "re-run on failure: up to 1 more job, 0 s apart"
        );
        assert_eq!(
            rerun_text(&rerun(
                json!({"attempts": 2, "backoff_seconds": 300, "message_pattern": "(?i)timeout"})
            )),
            "re-run on failure: up to 2 more jobs, 300 s apart, when the message matches `(?i)timeout`"
        );
    }

    #[test]
    fn a_holiday_is_named_and_runs_are_in_the_schedules_zone() {
        // 2027-01-11 is 成人の日; 09:00 Japan time whatever the operator's TZ.
        let lines = lines("daily-sales-report", "2027-01-08", 4);
        assert_eq!(
            lines,
            [
                "2027-01-08 (金)  09:00 JST  run",
                "2027-01-09 (土)  -          skipped  weekend (Saturday)",
                "2027-01-10 (日)  -          skipped  weekend (Sunday)",
                "2027-01-11 (月)  -          skipped  national holiday 成人の日",
            ]
        );
    }

    #[test]
    fn a_shifted_occurrence_is_labelled_on_both_days() {
        // payroll-export: the 25th, previous business day when closed; 2027-04-25 is a Sunday.
        let lines = lines("payroll-export", "2027-04-22", 4);
        assert_eq!(
            lines,
            [
                "2027-04-23 (金)  07:00 JST  run (shifted)  the occurrence of 2027-04-25 (日)",
                "2027-04-25 (日)  -          shifted  weekend (Sunday): runs on 2027-04-23",
            ]
        );
    }
}
