//! `cloudbot runs`: the run ledger (docs/ledger.md), read with a DynamoDB `Query` on one of its
//! indexes, never a `Scan`: by schedule (`--schedule`), by BOT (`--bot`), else by the months
//! (JST, the ledger's month) that `--since` covers; `--status` filters what the query returned.
//! `cloudbot runs show RUN` reads one run with `GetItem` and prints its history.
//!
//! The table: `--table`, else `CLOUDBOT_RUN_LEDGER_TABLE` (the stack output
//! RunLedgerTableName), read with the standard AWS configuration like `resolve`.

use std::collections::HashMap;
use std::io::Write;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use cloudbot_trigger::ledger::{ORPHANED, OVERRUN, attribute, index, month_of};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::clock::{local_time, operator_zone};
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{BOLD, DIM, Output};
use crate::session::aws_config;

/// What `cloudbot runs` lists.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `<public_id>/<bot_id>`.
    pub bot: Option<String>,
    /// `executing`, `succeeded`, `error`, `overrun` (docs/overrun.md) or `orphaned`
    /// (docs/orphans.md).
    pub status: Option<String>,
    /// Runs started at or after this instant (epoch ms).
    pub since_ms: u64,
    /// A schedule's name.
    pub schedule: Option<String>,
    /// At most this many runs, newest first.
    pub limit: usize,
}

/// `--since`: a duration back from now (`7d`, `12h`) or a date (`2026-11-01`, midnight in the
/// operator's time zone) or an instant (RFC 3339); epoch ms.
pub fn since_ms(raw: &str, now: Timestamp) -> Result<u64, String> {
    let instant = if let Ok(duration) = humantime::parse_duration(raw) {
        let span = jiff::SignedDuration::try_from(duration).map_err(|e| e.to_string())?;
        now.checked_sub(span).map_err(|e| e.to_string())?
    } else if let Ok(ts) = raw.parse::<Timestamp>() {
        ts
    } else if let Ok(date) = raw.parse::<jiff::civil::Date>() {
        date.to_zoned_datetime(operator_zone())
            .map_err(|e| e.to_string())?
            .timestamp()
    } else {
        return Err(format!(
            "--since {raw:?} is neither a duration (7d, 12h), a date (2026-11-01) nor an RFC 3339 time"
        ));
    };
    u64::try_from(instant.as_millisecond()).map_err(|_| "--since is before 1970".to_owned())
}

/// The `YYYY-MM` months (JST) from `since_ms` to `now_ms`, newest first.
pub fn months(since_ms: u64, now_ms: u64) -> Vec<String> {
    let last = month_of(now_ms);
    let mut month = month_of(since_ms.min(now_ms));
    let mut out = vec![month.clone()];
    while month < last {
        let (y, m) = month.split_once('-').unwrap_or(("1970", "01"));
        let (y, m) = (
            y.parse::<u32>().unwrap_or(1970),
            m.parse::<u32>().unwrap_or(1),
        );
        month = if m == 12 {
            format!("{:04}-01", y + 1)
        } else {
            format!("{y:04}-{:02}", m + 1)
        };
        out.push(month.clone());
    }
    out.reverse();
    out
}

pub(crate) type Item = HashMap<String, AttributeValue>;

fn ledger_error(e: &impl ProvideErrorMetadata, what: &str) -> CliError {
    CliError::Ledger(format!(
        "{what} failed ({}): {}",
        e.code().unwrap_or("unknown error"),
        e.message().unwrap_or("no message")
    ))
}

/// Every item of one index partition (`key` = `value`), sort key at or after `from`.
pub(crate) async fn query(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    (index, key, value): (&str, &str, &str),
    (sort, from): (&str, AttributeValue),
) -> Result<Vec<Item>, CliError> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression("#k = :k AND #s >= :s")
            .expression_attribute_names("#k", key)
            .expression_attribute_names("#s", sort)
            .expression_attribute_values(":k", AttributeValue::S(value.to_owned()))
            .expression_attribute_values(":s", from.clone())
            .scan_index_forward(false)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| ledger_error(&e, "querying the run ledger"))?;
        items.extend(page.items().iter().cloned());
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(items),
        }
    }
}

/// The runs `filter` selects, newest first.
pub async fn list(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    filter: &Filter,
    now_ms: u64,
) -> Result<Vec<Map<String, Value>>, CliError> {
    let since = AttributeValue::N(filter.since_ms.to_string());
    let mut items = if let Some(schedule) = &filter.schedule {
        let from = Timestamp::from_millisecond(i64::try_from(filter.since_ms).unwrap_or(0))
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut found = query(
            client,
            table,
            (index::BY_SCHEDULE, attribute::SCHEDULE, schedule),
            (attribute::NOMINAL_TIME, AttributeValue::S(from)),
        )
        .await?;
        if let Some(bot) = &filter.bot {
            found.retain(|item| item.get(attribute::BOT).and_then(|v| v.as_s().ok()) == Some(bot));
        }
        found
    } else if let Some(bot) = &filter.bot {
        query(
            client,
            table,
            (index::BY_BOT, attribute::BOT, bot),
            (attribute::STARTED_AT, since),
        )
        .await?
    } else {
        let mut found = Vec::new();
        for month in months(filter.since_ms, now_ms) {
            found.extend(
                query(
                    client,
                    table,
                    (index::BY_MONTH, attribute::MONTH, &month),
                    (attribute::STARTED_AT, since.clone()),
                )
                .await?,
            );
        }
        found
    };
    if let Some(status) = &filter.status {
        items
            .retain(|item| item.get(attribute::STATUS).and_then(|v| v.as_s().ok()) == Some(status));
    }
    let mut runs: Vec<Map<String, Value>> = items.iter().map(json_of).collect();
    runs.sort_by_key(|run| std::cmp::Reverse(run[attribute::STARTED_AT].as_u64().unwrap_or(0)));
    runs.truncate(filter.limit);
    Ok(runs)
}

/// The run `run` (`PUBLIC_ID/JOB_ID` or a job reference endpoint), `None` when absent.
pub async fn show(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    run: &str,
) -> Result<Option<Map<String, Value>>, CliError> {
    let got = client
        .get_item()
        .table_name(table)
        .key(attribute::RUN, AttributeValue::S(run_key(run)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| ledger_error(&e, "reading the run ledger"))?;
    Ok(got.item().map(json_of))
}

/// `PUBLIC_ID/JOB_ID` from either that or a job reference endpoint (`…/{public_id}/jobs/{job_id}`).
pub fn run_key(raw: &str) -> String {
    let raw = raw.trim().trim_end_matches('/');
    let parts: Vec<&str> = raw.rsplitn(3, '/').collect();
    match parts.as_slice() {
        [job, "jobs", rest] => {
            let public_id = rest.rsplit('/').next().unwrap_or(rest);
            format!("{public_id}/{job}")
        }
        _ => raw.to_owned(),
    }
}

/// An item as JSON: strings and numbers (the ledger holds nothing else).
fn json_of(item: &Item) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in item {
        let value = match value {
            AttributeValue::S(s) => Value::String(s.clone()),
            AttributeValue::N(n) => n
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(n.clone())),
            _ => continue,
        };
        out.insert(name.clone(), value);
    }
    out
}

/// Epoch ms as the operator's local time.
fn when(ms: Option<u64>) -> String {
    ms.and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| local_time(&t.to_string(), &operator_zone()))
        .unwrap_or_else(|| "-".to_owned())
}

fn text<'a>(run: &'a Map<String, Value>, name: &str) -> &'a str {
    run.get(name).and_then(Value::as_str).unwrap_or("-")
}

/// The table from `--table` / `CLOUDBOT_RUN_LEDGER_TABLE`, and a DynamoDB client.
pub(crate) async fn client(table: &str) -> Result<(aws_sdk_dynamodb::Client, String), CliError> {
    let table = table.trim();
    if table.is_empty() {
        return Err(CliError::Usage(
            "--table (or CLOUDBOT_RUN_LEDGER_TABLE) is empty: give the stack output RunLedgerTableName"
                .into(),
        ));
    }
    let aws = aws_config().await?;
    Ok((aws_sdk_dynamodb::Client::new(&aws), table.to_owned()))
}

fn now_ms() -> u64 {
    u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0)
}

/// `cloudbot runs`.
pub async fn run_list(out: Output, table: &str, filter: &Filter) -> Result<Exit, CliError> {
    let (client, table) = client(table).await?;
    let runs = list(&client, &table, filter, now_ms()).await?;
    if out.is_json() {
        out.json(&serde_json::json!({ "runs": runs }))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    if runs.is_empty() {
        writeln!(w, "{DIM}no runs{DIM:#}")?;
    }
    for run in &runs {
        let elapsed = run
            .get("elapsed_s")
            .and_then(Value::as_u64)
            .map(|s| format!("{s}s"))
            .unwrap_or_else(|| "-".to_owned());
        let schedule = match (run.get("schedule"), run.get("nominal_time")) {
            (Some(Value::String(s)), Some(Value::String(t))) => format!(" schedule {s}@{t}"),
            _ => String::new(),
        };
        writeln!(
            w,
            "{}  {BOLD}{}{BOLD:#}  {}  {}  {}  {}  {}{schedule}",
            when(run.get("started_at").and_then(Value::as_u64)),
            text(run, "run"),
            text(run, "bot"),
            text(run, "status"),
            elapsed,
            text(run, "trigger"),
            text(run, "message"),
        )?;
    }
    Ok(Exit::Ok)
}

/// `cloudbot runs show RUN`.
pub async fn run_show(out: Output, table: &str, run: &str) -> Result<Exit, CliError> {
    let (client, table) = client(table).await?;
    let Some(found) = show(&client, &table, run).await? else {
        return Err(CliError::Ledger(format!(
            "no run {} in the run ledger {table}",
            run_key(run)
        )));
    };
    if out.is_json() {
        out.json(&found)?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    writeln!(w, "run {BOLD}{}{BOLD:#}", text(&found, "run"))?;
    for name in [
        "bot",
        "job_endpoint",
        "trigger",
        attribute::CALLER,
        "schedule",
        "nominal_time",
        "execution",
        "request_key",
        "attempt",
        "previous_run",
        "status",
        "end_status",
        "elapsed_s",
        "message",
        attribute::MAX_RUN_S,
    ] {
        if let Some(value) = found.get(name) {
            let value = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            writeln!(w, "  {name}: {value}")?;
        }
    }
    writeln!(
        w,
        "  started: {}",
        when(found.get("started_at").and_then(Value::as_u64))
    )?;
    if found.contains_key("ended_at") {
        writeln!(
            w,
            "  ended: {}",
            when(found.get("ended_at").and_then(Value::as_u64))
        )?;
    }
    writeln!(w, "history:")?;
    for (at, event) in history(&found) {
        writeln!(w, "  {}  {event}", when(Some(at)))?;
    }
    Ok(Exit::Ok)
}

/// A run's history, oldest first: each status when first seen (`seen_<status>`), then how it
/// ended; an overrun says that the function suspended the job and the maximum it passed
/// (docs/overrun.md), which the statuses alone do not tell (a suspended job reads `error`).
fn history(run: &Map<String, Value>) -> Vec<(u64, String)> {
    let mut history: Vec<(u64, String)> = run
        .iter()
        .filter_map(|(name, value)| Some((value.as_u64()?, name.strip_prefix("seen_")?.to_owned())))
        .collect();
    history.sort();
    if let Some(ended_at) = run.get("ended_at").and_then(Value::as_u64) {
        let ended = match run.get("end_status").and_then(Value::as_str) {
            Some(OVERRUN) => match run.get(attribute::MAX_RUN_S).and_then(Value::as_u64) {
                Some(max) => format!(
                    "ended {OVERRUN}: suspended by the function past its maximum run time of {max} s"
                ),
                None => format!(
                    "ended {OVERRUN}: suspended by the function past the stack's maximum run time"
                ),
            },
            Some(ORPHANED) => format!(
                "ended {ORPHANED}: suspended by the function because its workflow failed, timed out or was stopped"
            ),
            Some(status) => format!("ended {status}"),
            None => "ended".to_owned(),
        };
        history.push((ended_at, ended));
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_a_date_or_an_instant() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        assert_eq!(
            since_ms("1h", now).unwrap(),
            u64::try_from(now.as_millisecond()).unwrap() - 3_600_000
        );
        assert_eq!(
            since_ms("2026-12-01T00:00:00Z", now).unwrap(),
            1_796_083_200_000
        );
        assert!(since_ms("2026-12-01", now).is_ok());
        assert!(since_ms("yesterday", now).unwrap_err().contains("--since"));
    }

    #[test]
    fn the_months_covered_are_listed_newest_first() {
        let since = 1_793_457_600_000; // 2026-10-31T14:40Z: 23:40 JST, still October
        let now = 1_796_083_200_000; // 2026-12-01T00:00Z
        assert_eq!(months(since, now), ["2026-12", "2026-11", "2026-10"]);
        assert_eq!(months(now, now), ["2026-12"]);
    }

    #[test]
    fn an_overrun_run_shows_its_suspension_after_its_statuses() {
        let run = serde_json::json!({"seen_executing": 1_000, "seen_error": 5_000,
            "ended_at": 5_000, "end_status": "overrun", "max_run_s": 3});
        let Value::Object(run) = run else {
            unreachable!()
        };
        let events: Vec<String> = history(&run).into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            events,
            [
                "executing",
                "error",
                "ended overrun: suspended by the function past its maximum run time of 3 s"
            ]
        );
        let mut ended = run.clone();
        ended.insert("end_status".into(), "succeeded".into());
        ended.remove("max_run_s");
        assert_eq!(history(&ended).last().unwrap().1, "ended succeeded");
        ended.insert("end_status".into(), "orphaned".into());
        assert!(
            history(&ended)
                .last()
                .unwrap()
                .1
                .starts_with("ended orphaned: suspended by the function because its workflow")
        );
        ended.remove("ended_at");
        assert_eq!(history(&ended).len(), 2);
    }

    #[test]
    fn a_run_is_named_by_its_job() {
        assert_eq!(run_key("demo/j-1"), "demo/j-1");
        assert_eq!(run_key("https://api.c-bot.pro/demo/jobs/j-1"), "demo/j-1");
    }
}
