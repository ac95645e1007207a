//! `cloudbot rerun RUN`: starts a run again from the run ledger's record of it (its BOT, its
//! input and its maximum run time; docs/ledger.md, "The input") by invoking the function
//! directly, under a NEW idempotency key that continues the run's attempt chain
//! (`cli-rerun:<run>@<ms>#attempt-<n>`, with `previous_job`), so the ledger links the new run to
//! the old one. A paid run: asked y/N on a terminal, or `--yes`; the key is printed before
//! anything is sent, so an answer lost on the way can be settled with `cloudbot resolve`.

use std::io::{BufRead, IsTerminal, Write};

use cloudbot_trigger::cloudbot::{ApiBase, BotEndpoint};
use serde_json::{Map, Value, json};

use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{BOLD, DIM, Output};
use crate::resolve::{self, ResolveError};
use crate::stage::{Stage, Tracker};

/// What the ledger says about the run to start again, as the execute to send.
#[derive(Debug, PartialEq)]
pub struct Rerun {
    /// The run started again (`<public_id>/<job_id>`).
    pub run: String,
    /// The new key (as sent; stored as `request:<key>`).
    pub key: String,
    /// The API base and the BOT execution endpoint it runs.
    pub base: String,
    pub bot: String,
    /// The direct-invocation envelope.
    pub payload: Value,
}

/// The execute that starts `run` (a ledger item, as `runs show --json` prints it) again under a
/// new key made at `now_ms`; an error says what the record lacks.
pub fn rerun_of(run: &Map<String, Value>, now_ms: u64) -> Result<Rerun, CliError> {
    let text = |name: &str| run.get(name).and_then(Value::as_str);
    let name = text("run").ok_or_else(|| CliError::Ledger("the run has no `run` key".into()))?;
    let job = text("job_endpoint")
        .ok_or_else(|| CliError::Ledger(format!("run {name} has no job_endpoint")))?;
    let (public_id, bot_id) = text("bot")
        .and_then(|bot| bot.split_once('/'))
        .ok_or_else(|| CliError::Ledger(format!("run {name} has no BOT recorded")))?;
    // The API base the job was started on: its endpoint without `/<public_id>/jobs/<job_id>`.
    let base = job
        .rsplitn(4, '/')
        .nth(3)
        .filter(|_| job.contains(&format!("/{public_id}/jobs/")))
        .ok_or_else(|| CliError::Ledger(format!("run {name}: unexpected job_endpoint")))?;
    let input: Value = match text("input") {
        Some(json) => serde_json::from_str(json)
            .map_err(|_| CliError::Ledger(format!("run {name}: its recorded input is not JSON")))?,
        None => {
            return Err(CliError::Ledger(format!(
                "run {name}: the ledger holds no input for it (started before inputs were kept, \
                 or its input was over the ledger's bound: input_omitted); start it with \
                 `cloudbot run` and its input instead"
            )));
        }
    };
    let attempt = run.get("attempt").and_then(Value::as_u64).unwrap_or(1) + 1;
    let key = format!("cli-rerun:{name}@{now_ms}#attempt-{attempt}");
    let bot = format!("{base}/{public_id}/bots/{bot_id}/jobs");
    let mut request = json!({"bot_endpoint": bot, "input": input});
    if let Some(max) = run.get("max_run_s").and_then(Value::as_u64) {
        request["max_run_seconds"] = json!(max);
    }
    Ok(Rerun {
        run: name.to_owned(),
        key: key.clone(),
        base: base.to_owned(),
        bot,
        payload: json!({
            "idempotency_key": key,
            "attempt": {"number": attempt, "previous_job": job},
            "request": request,
        }),
    })
}

/// Why the function did not start the run again.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct RerunError {
    #[source]
    source: ResolveError,
}

impl RerunError {
    /// The function's error type, or `Lambda.<code>`.
    pub fn error_type(&self) -> String {
        self.source.error_type()
    }

    /// `CloudBot.OutcomeUnknown`, or an invoke whose answer was lost: a job may exist (settle
    /// the key printed before sending with `cloudbot resolve`); any other refusal started
    /// nothing.
    pub fn exit(&self) -> Exit {
        match &self.source {
            ResolveError::Function { error_type, .. }
                if error_type == "CloudBot.OutcomeUnknown" =>
            {
                Exit::JobMayExist
            }
            ResolveError::Invoke { code, .. } if code == "InvokeFailed" => Exit::JobMayExist,
            _ => Exit::NotStarted,
        }
    }
}

/// `cloudbot rerun RUN`.
pub async fn run(
    out: Output,
    tracker: &Tracker,
    table: &str,
    run: &str,
    function: &str,
    yes: bool,
) -> Result<Exit, CliError> {
    let function = function.trim();
    if function.is_empty() {
        return Err(CliError::Usage(
            "--function (or CLOUDBOT_FUNCTION) is empty: give the stack output FunctionAliasArn"
                .into(),
        ));
    }
    let (client, table) = crate::runs::client(table).await?;
    let Some(found) = crate::runs::show(&client, &table, run).await? else {
        return Err(CliError::Ledger(format!(
            "no run {} in the run ledger {table}",
            crate::runs::run_key(run)
        )));
    };
    let now_ms = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
    let rerun = rerun_of(&found, now_ms)?;
    // Checked like any endpoint the CLI sends to; the function checks it against its own base.
    let bot = ApiBase::parse(&rerun.base)
        .and_then(|base| BotEndpoint::parse(&base, &rerun.bot, "bot"))
        .map_err(|e| CliError::Ledger(format!("run {}: its BOT endpoint: {e}", rerun.run)))?;
    if !out.is_json() {
        let mut w = out.text();
        writeln!(
            w,
            "run {BOLD}{}{BOLD:#} again, as a NEW run (billed):",
            rerun.run
        )?;
        writeln!(w, "  {DIM}BOT      {DIM:#}{}", bot.url())?;
        writeln!(w, "  {DIM}new key  {DIM:#}request:{}", rerun.key)?;
    }
    if !confirmed(out, yes)? {
        return Err(CliError::Usage(
            "not confirmed: nothing was sent (answer y, or pass --yes)".into(),
        ));
    }
    let aws = crate::session::aws_config().await?;
    let progress = out.progress("invoking the function (execute)");
    tracker.set(Stage::ExecuteSent {
        bot,
        sent_at: std::time::SystemTime::now(),
    });
    let answer = resolve::invoke(&aws, function, &rerun.payload)
        .await
        .map_err(|source| CliError::Rerun(RerunError { source }))?;
    drop(progress);
    tracker.set(Stage::Quiet);
    if out.is_json() {
        out.json(&json!({
            "rerun_of": rerun.run,
            "idempotency_key": format!("request:{}", rerun.key),
            "job_reference_endpoint": answer["job_reference_endpoint"],
            "answer": answer,
        }))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    writeln!(
        w,
        "started again under the new key: {BOLD}request:{}{BOLD:#}",
        rerun.key
    )?;
    if let Some(job) = answer["job_reference_endpoint"].as_str() {
        writeln!(w, "  {DIM}job      {DIM:#}{job}")?;
    }
    Ok(Exit::Ok)
}

/// `--yes`, or y on a terminal; never a question in JSON mode or without a terminal.
fn confirmed(out: Output, yes: bool) -> Result<bool, CliError> {
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || out.is_json() {
        return Ok(false);
    }
    let mut w = out.text();
    write!(w, "Start it again? [y/N] ")?;
    w.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(extra: Value) -> Map<String, Value> {
        let mut run = json!({
            "run": "demo/j1",
            "job_endpoint": "http://127.0.0.1:8787/demo/jobs/j1",
            "bot": "demo/echo_bot",
            "input": r#"{"message":"again"}"#,
        });
        for (k, v) in extra.as_object().unwrap() {
            run[k] = v.clone();
        }
        run.as_object().unwrap().clone()
    }

    #[test]
    fn a_run_is_started_again_from_its_record_under_a_new_key_that_names_it() {
        let rerun = rerun_of(&run(json!({"max_run_s": 60})), 1_000).unwrap();
        assert_eq!(rerun.key, "cli-rerun:demo/j1@1000#attempt-2");
        assert_eq!(rerun.bot, "http://127.0.0.1:8787/demo/bots/echo_bot/jobs");
        assert_eq!(
            rerun.payload,
            json!({
                "idempotency_key": "cli-rerun:demo/j1@1000#attempt-2",
                "attempt": {"number": 2, "previous_job": "http://127.0.0.1:8787/demo/jobs/j1"},
                "request": {"bot_endpoint": "http://127.0.0.1:8787/demo/bots/echo_bot/jobs",
                            "input": {"message": "again"}, "max_run_seconds": 60},
            })
        );
        // A later attempt of a chain continues its numbering; another moment, another key.
        let third = rerun_of(&run(json!({"attempt": 2})), 2_000).unwrap();
        assert_eq!(third.key, "cli-rerun:demo/j1@2000#attempt-3");
    }

    #[test]
    fn a_run_without_its_input_on_record_is_not_guessed() {
        let mut without = run(json!({}));
        without.remove("input");
        let err = rerun_of(&without, 1).unwrap_err();
        assert!(err.to_string().contains("no input"), "{err}");
        assert_eq!(err.exit(), Exit::NotStarted);
    }

    #[test]
    fn only_an_unknown_outcome_may_have_started_a_job() {
        let err = |source| RerunError { source };
        let unknown = err(ResolveError::Function {
            error_type: "CloudBot.OutcomeUnknown".into(),
            message: "m".into(),
        });
        assert_eq!(unknown.exit(), Exit::JobMayExist);
        let refused = err(ResolveError::Function {
            error_type: "CloudBot.NotFound".into(),
            message: "m".into(),
        });
        assert_eq!(refused.exit(), Exit::NotStarted);
    }
}
