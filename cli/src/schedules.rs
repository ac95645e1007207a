//! `cloudbot schedules check FILE` and `cloudbot schedules preview NAME --file FILE`: pure
//! commands on a team's schedule file. The file model, its validation and the preview are the
//! calendar crate's (`cloudbot-calendar`); this module reads the file, picks the schedule and
//! prints the result, in the schedule's own time zone (not the operator's `TZ`: a schedule's
//! days are its zone's days).

use std::io::Write;
use std::path::Path;

use cloudbot_calendar::{
    Preview, PreviewEntry, PreviewKind, Schedule, ScheduleFile, SkipReason, WeekdayName, preview,
};
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use serde::Serialize;
use serde_json::Value;

use crate::args::SchedulesCommand;
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{BOLD, DIM, Output};

/// Runs a `schedules` command.
pub fn run(out: Output, command: &SchedulesCommand) -> Result<Exit, CliError> {
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
fn weekday_ja(date: Date) -> &'static str {
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
