//! `cloudbot usage`: a month's BOT-seconds per BOT from the run ledger (docs/usage.md), read
//! with `Query` on the `by_month` index (never a scan) and summed by the library's
//! [`MonthUsage`]: seconds, runs and open runs per BOT, the totals, the share of the allowance,
//! the month-end forecast, and what Cloud BOT counts that the ledger cannot see.

use std::io::Write;

use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_trigger::ledger::{attribute, index, month_of};
use cloudbot_trigger::usage::{MonthUsage, RunFigures};
use jiff::Timestamp;
use serde::Serialize;

use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{BOLD, DIM, Output};
use crate::runs::{Item, client, query};

/// Said with every answer: the allowance is also spent where the ledger cannot look.
pub const NOT_SEEN: &str = "Time spent in Cloud BOT's BOT editor (editing, recording, test runs) \
     also draws on the monthly allowance and is not seen here, nor are runs started outside this \
     stack that it never learned of.";

/// What `cloudbot usage --json` prints.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    #[serde(flatten)]
    usage: &'a MonthUsage,
    not_seen: &'static str,
}

/// `--month`: `YYYY-MM`, default the current month in Japan time (the ledger's month).
pub fn month_arg(raw: Option<&str>, now_ms: u64) -> Result<String, CliError> {
    let Some(raw) = raw else {
        return Ok(month_of(now_ms));
    };
    let valid = raw.len() == 7
        && cloudbot_trigger::usage::month_bounds_ms(raw).is_some()
        && raw.as_bytes()[4] == b'-';
    if !valid {
        return Err(CliError::Usage(format!(
            "--month {raw:?} is not a month like 2026-12 (YYYY-MM, Japan time)"
        )));
    }
    Ok(raw.to_owned())
}

/// What usage needs of a ledger item (a run without a BOT yet counts as `?`).
fn figures(item: &Item) -> RunFigures {
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let ended = item.contains_key("ended_at");
    RunFigures {
        bot: item
            .get(attribute::BOT)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| "?".to_owned()),
        elapsed_s: ended.then(|| number("elapsed_s").unwrap_or(0)),
    }
}

/// The month's usage from the ledger `table`.
pub async fn month(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    month: &str,
    allowance_s: Option<u64>,
    now_ms: u64,
) -> Result<MonthUsage, CliError> {
    let items = query(
        client,
        table,
        (index::BY_MONTH, attribute::MONTH, month),
        (attribute::STARTED_AT, AttributeValue::N("0".to_owned())),
    )
    .await?;
    let runs: Vec<RunFigures> = items.iter().map(figures).collect();
    Ok(MonthUsage::of(month, &runs, allowance_s, now_ms))
}

fn hours(seconds: u64) -> String {
    format!("{:.1} h", seconds as f64 / 3600.0)
}

/// `cloudbot usage`.
pub async fn run(
    out: Output,
    table: &str,
    month_raw: Option<&str>,
    allowance_s: Option<u64>,
) -> Result<Exit, CliError> {
    let now_ms = u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0);
    let month_name = month_arg(month_raw, now_ms)?;
    let (client, table) = client(table).await?;
    let allowance_s = allowance_s.filter(|a| *a > 0);
    let usage = month(&client, &table, &month_name, allowance_s, now_ms).await?;
    if out.is_json() {
        out.json(&Answer {
            usage: &usage,
            not_seen: NOT_SEEN,
        })?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    writeln!(
        w,
        "{BOLD}BOT-seconds in {}{BOLD:#} (Japan time, runs by their start)",
        usage.month
    )?;
    if usage.bots.is_empty() {
        writeln!(w, "{DIM}no runs{DIM:#}")?;
    }
    for bot in &usage.bots {
        let open = if bot.open > 0 {
            format!(", {} open", bot.open)
        } else {
            String::new()
        };
        writeln!(
            w,
            "  {:<40} {:>9} s  ({})  {} runs{open}",
            bot.bot,
            bot.seconds,
            hours(bot.seconds),
            bot.runs
        )?;
    }
    writeln!(
        w,
        "  {BOLD}{:<40} {:>9} s{BOLD:#}  ({})  {} runs, {} open (not counted until they end)",
        "total",
        usage.seconds,
        hours(usage.seconds),
        usage.runs,
        usage.open
    )?;
    match (usage.allowance_s, usage.share_percent) {
        (Some(allowance), Some(share)) => writeln!(
            w,
            "allowance {allowance} s ({}): {share:.1}% used",
            hours(allowance)
        )?,
        _ => writeln!(
            w,
            "{DIM}no allowance given (--allowance or CLOUDBOT_BUDGET_MONTHLY_SECONDS): no share{DIM:#}"
        )?,
    }
    match &usage.forecast {
        Some(f) => {
            let share = f
                .share_percent
                .map(|s| format!(", {s:.1}% of the allowance"))
                .unwrap_or_default();
            writeln!(
                w,
                "forecast for the month's end: {} s ({}){share}; {}",
                f.seconds,
                hours(f.seconds),
                f.method
            )?;
        }
        None => writeln!(
            w,
            "{DIM}no forecast: only for the current month, once a day of it has passed{DIM:#}"
        )?,
    }
    writeln!(w, "{DIM}{NOT_SEEN}{DIM:#}")?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_yyyy_mm_and_defaults_to_the_current_japanese_month() {
        // 2026-11-30T15:00Z is December in Tokyo.
        assert_eq!(month_arg(None, 1_796_050_800_000).unwrap(), "2026-12");
        assert_eq!(month_arg(Some("2026-01"), 0).unwrap(), "2026-01");
        for bad in ["2026-1", "2026-13", "202612", "26-12-01", "next"] {
            assert!(month_arg(Some(bad), 0).is_err(), "{bad}");
        }
    }
}
