//! The commands. Each validates its arguments against the API base first (a bad endpoint or
//! input is refused before anything is sent, Secrets Manager included), then connects, calls
//! the client, and prints text or JSON. Before a request that can start or change a job, the
//! command moves its stage forward (`stage.rs`), so an error or Ctrl-C from then on is reported
//! with the job (or the way to find it).

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use clap::CommandFactory;
use cloudbot_trigger::cloudbot::{
    BotEndpoint, CloudBotError, ExecuteRequest, Job, JobEndpoint, JobQuery, PublicId,
};
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::args::{Cli, CloudBotCommand, Command, Follow, Global, RunsArgs, RunsCommand, Shell};
use crate::clock::{local_time, operator_zone};
use crate::error::{CANCEL_ACTION, CliError, EXECUTE_ACTION};
use crate::exit::Exit;
use crate::follow::{follow_job, read_job, status_text};
use crate::next::Next;
use crate::output::{BOLD, DIM, ID, Output, status_style};
use crate::resolve;
use crate::session::{Session, Settings, api_base, aws_config};
use crate::stage::{Stage, Tracker};
use crate::subscribe::Action;
use crate::target::Origin;

/// What every command gets besides its arguments.
pub struct Context<'a> {
    /// The global options.
    pub global: &'a Global,
    /// Text or JSON.
    pub out: Output,
    /// How far the command got (read by the Ctrl-C handler and the error report).
    pub tracker: &'a Tracker,
    /// The follow-up commands to print.
    pub next: &'a Next,
}

/// Runs `command`; the result is the exit code of a command that reported its result.
pub async fn run(ctx: &Context<'_>, command: &Command) -> Result<Exit, CliError> {
    match command {
        Command::CloudBot(command) => cloud_bot(ctx, command).await,
        Command::Resolve {
            record,
            started,
            not_started: _,
            function,
        } => resolve_record(ctx, record, started.as_deref(), function).await,
        Command::Runs(args) => runs(ctx, args).await,
        Command::Enqueue(args) => crate::enqueue::run(ctx.out, ctx.tracker, ctx.global, args).await,
        Command::Rerun {
            run,
            yes,
            function,
            table,
        } => crate::rerun::run(ctx.out, ctx.tracker, table, run, function, *yes).await,
        Command::Usage {
            month,
            allowance,
            table,
        } => crate::usage::run(ctx.out, table, month.as_deref(), *allowance).await,
        Command::Schedules(command) => crate::schedules::run(ctx.out, ctx.tracker, command).await,
        Command::Subscribe { bot, callback } => {
            crate::subscribe::run(
                ctx,
                Action::Subscribe,
                bot,
                callback.callback_url.as_deref(),
            )
            .await
        }
        Command::Unsubscribe { bot, callback } => {
            crate::subscribe::run(
                ctx,
                Action::Unsubscribe,
                bot,
                callback.callback_url.as_deref(),
            )
            .await
        }
        Command::Subscriptions { bot, callback } => {
            crate::subscribe::run(ctx, Action::List, bot, callback.callback_url.as_deref()).await
        }
        Command::Completions { shell } => completions(*shell),
        Command::Man => man(),
    }
}

/// The commands that call Cloud BOT: settings and endpoint arguments first, then one call.
async fn cloud_bot(ctx: &Context<'_>, command: &CloudBotCommand) -> Result<Exit, CliError> {
    let out = ctx.out;
    let settings = Settings::from_global(ctx.global)?;
    if let Some(notice) = settings.default_base_notice() {
        eprintln!("note: {notice}");
    }
    let origin = settings.origin();
    match command {
        CloudBotCommand::Bots { public_id } => {
            let public_id = public_id
                .as_deref()
                .map(|raw| PublicId::parse(raw, "PUBLIC_ID"))
                .transpose()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            bots(settings.connect(public_id.as_ref()).await?, public_id, out).await
        }
        CloudBotCommand::Run {
            bot_endpoint,
            inputs,
            input_file,
            follow,
        } => {
            let bot = origin.bot(bot_endpoint, "BOT_ENDPOINT")?;
            let input = match input_file {
                Some(path) => Some(input_from_file(path)?),
                None if inputs.is_empty() => None,
                None => Some(input_from_pairs(inputs)?),
            };
            let body = ExecuteRequest {
                input,
                ..ExecuteRequest::default()
            };
            run_bot(
                ctx,
                settings.connect(Some(bot.public_id())).await?,
                &bot,
                &body,
                follow,
            )
            .await
        }
        CloudBotCommand::Job { job, follow } => {
            let job = origin.job(job, "JOB")?;
            let session = settings.connect(Some(job.public_id())).await?;
            let progress = out.progress("reading the job");
            let found = read_job(
                &session,
                &job,
                follow.retry_interval,
                follow.timeout.map(|t| tokio::time::Instant::now() + t),
                &progress,
                out,
            )
            .await?;
            drop(progress);
            if follow.follow {
                // It exists: from here on, a failure leaves its state unknown.
                ctx.tracker.set(Stage::Job {
                    endpoint: job.clone(),
                });
            }
            finish_job(&session, &job, found, follow, out).await
        }
        CloudBotCommand::Jobs {
            bot_endpoint,
            since,
            limit,
        } => {
            let bot = origin.bot(bot_endpoint, "BOT_ENDPOINT")?;
            let query = JobQuery {
                limit: Some(*limit),
                started_since: since.map(|d| SystemTime::now() - d),
                statuses: Vec::new(),
            };
            jobs(
                settings.connect(Some(bot.public_id())).await?,
                &bot,
                &query,
                out,
            )
            .await
        }
        CloudBotCommand::Cancel { job } => {
            let job = origin.job(job, "JOB")?;
            cancel(ctx, settings.connect(Some(job.public_id())).await?, &job).await
        }
    }
}

/// `completions SHELL`: the script, generated from the command line definition.
fn completions(shell: Shell) -> Result<Exit, CliError> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "cloudbot", &mut stdout);
    stdout.flush()?;
    Ok(Exit::Ok)
}

/// `man`: the man page, generated from the command line definition, with the exit codes as its
/// EXIT STATUS section (in place of clap's reflowed `--help` text).
fn man() -> Result<Exit, CliError> {
    let page = clap_mangen::Man::new(Cli::command());
    let mut stdout = std::io::stdout().lock();
    page.render_title(&mut stdout)?;
    page.render_name_section(&mut stdout)?;
    page.render_synopsis_section(&mut stdout)?;
    page.render_description_section(&mut stdout)?;
    page.render_options_section(&mut stdout)?;
    page.render_subcommands_section(&mut stdout)?;
    crate::exit::man_section().to_writer(&mut stdout)?;
    page.render_version_section(&mut stdout)?;
    stdout.flush()?;
    Ok(Exit::Ok)
}

/// `resolve`: the function's `resolve_idempotency`, invoked directly.
/// `cloudbot runs` and `cloudbot runs show` (`runs.rs`).
async fn runs(ctx: &Context<'_>, args: &RunsArgs) -> Result<Exit, CliError> {
    if let Some(RunsCommand::Show { run, table }) = &args.command {
        return crate::runs::run_show(ctx.out, table, run).await;
    }
    let filter = crate::runs::Filter {
        bot: args.bot.clone(),
        status: args.status.clone(),
        since_ms: crate::runs::since_ms(&args.since, jiff::Timestamp::now())
            .map_err(CliError::Usage)?,
        schedule: args.schedule.clone(),
        limit: usize::try_from(args.limit).unwrap_or(usize::MAX),
    };
    crate::runs::run_list(ctx.out, &args.table, &filter).await
}

async fn resolve_record(
    ctx: &Context<'_>,
    record: &str,
    started: Option<&str>,
    function: &str,
) -> Result<Exit, CliError> {
    let key = resolve::record_key(record).map_err(CliError::Usage)?;
    // The jobs Cloud BOT's job list could not decide between, when the pasted message names them.
    let candidates = resolve::candidates(record);
    if !candidates.is_empty() && !ctx.out.is_json() {
        let mut w = ctx.out.text();
        writeln!(
            w,
            "candidate jobs (from the message; pick the one this request started):"
        )?;
        for job in &candidates {
            writeln!(w, "  {DIM}job      {DIM:#}{job}")?;
        }
    }
    let job = match started {
        Some(raw) => {
            let (base, is_default) = api_base(ctx.global)?;
            Some(
                Origin {
                    base: &base,
                    is_default,
                }
                .job(raw, "--started")?,
            )
        }
        None => None,
    };
    let function = function.trim();
    if function.is_empty() {
        return Err(CliError::Usage(
            "--function (or CLOUDBOT_FUNCTION) is empty: give the stack output FunctionAliasArn"
                .into(),
        ));
    }
    let payload = resolve::payload(&key, job.as_ref());
    let aws = aws_config().await?;
    let progress = ctx.out.progress("invoking resolve_idempotency");
    ctx.tracker.set(Stage::ResolveSent);
    let answer = resolve::invoke(&aws, function, &payload).await?;
    drop(progress);
    if ctx.out.is_json() {
        ctx.out.json(&answer)?;
        return Ok(Exit::Ok);
    }
    let field = |name: &str| answer[name].as_str().unwrap_or("-").to_owned();
    let mut w = ctx.out.text();
    writeln!(
        w,
        "record {BOLD}{}{BOLD:#}: {}",
        field("record_key"),
        field("state")
    )?;
    if let Some(job) = answer["job_reference_endpoint"].as_str() {
        writeln!(w, "  {DIM}job      {DIM:#}{job}")?;
    }
    Ok(Exit::Ok)
}

/// `KEY=VALUE` pairs as input data (string values, the API's plain value type).
fn input_from_pairs(pairs: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut input = Map::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                input.insert(key.trim().to_owned(), Value::String(value.to_owned()));
            }
            // The value is not echoed: it may be something the operator would not paste.
            _ => {
                return Err(CliError::Usage(
                    "--input: expected KEY=VALUE with a non-empty KEY".into(),
                ));
            }
        }
    }
    Ok(input)
}

/// A JSON object from a file (`-` = stdin) as input data.
fn input_from_file(path: &Path) -> Result<Map<String, Value>, CliError> {
    let shown = path.display();
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| CliError::Usage(format!("--input-file {shown}: {e}")))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CliError::Usage(format!(
            "--input-file {shown}: must hold a JSON object keyed by data name"
        ))),
        Err(e) => Err(CliError::Usage(format!(
            "--input-file {shown}: not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

#[derive(Serialize)]
struct ContractOut<'a> {
    public_id: &'a str,
    name: Option<&'a str>,
    plan: Option<&'a str>,
    bots: Vec<BotOut<'a>>,
}

#[derive(Serialize)]
struct BotOut<'a> {
    bot_id: &'a str,
    name: Option<&'a str>,
    description: Option<&'a str>,
    /// `None` for a BOT whose id no endpoint can carry (listed with a warning, never dropped).
    bot_endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

async fn bots(
    session: Session,
    public_id: Option<PublicId>,
    out: Output,
) -> Result<Exit, CliError> {
    let progress = out.progress("listing BOTs");
    // (public id, name, plan) of each contract to list.
    let contracts: Vec<(PublicId, Option<String>, Option<String>)> = match public_id {
        Some(id) => vec![(id, None, None)],
        None => session
            .client
            .list_contracts(&session.call())
            .await
            .map_err(CliError::cloud_bot("listing the contracts"))?
            .into_iter()
            .map(|(c, id)| (id, c.name, c.plan))
            .collect(),
    };
    let mut listed = Vec::with_capacity(contracts.len());
    for (id, name, plan) in contracts {
        progress.set_message(format!("listing the BOTs of {id}"));
        let bots = session
            .client
            .list_bots(&session.call(), &id)
            .await
            .map_err(CliError::cloud_bot("listing the BOTs"))?;
        listed.push((id, name, plan, bots));
    }
    drop(progress);
    let shaped: Vec<ContractOut<'_>> = listed
        .iter()
        .map(|(id, name, plan, bots)| ContractOut {
            public_id: id.as_str(),
            name: name.as_deref(),
            plan: plan.as_deref(),
            bots: bots
                .iter()
                .map(|(bot, endpoint)| BotOut {
                    bot_id: &bot.id,
                    name: bot.name.as_deref(),
                    description: bot.description.as_deref(),
                    bot_endpoint: endpoint.as_ref().ok().map(BotEndpoint::url),
                    warning: endpoint
                        .as_ref()
                        .err()
                        .map(|p| format!("the BOT id {p}: it cannot be run from here")),
                })
                .collect(),
        })
        .collect();
    if out.is_json() {
        out.json(&serde_json::json!({ "contracts": shaped }))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    if shaped.is_empty() {
        writeln!(w, "no contracts visible to these credentials")?;
    }
    for contract in &shaped {
        let about = match (contract.name, contract.plan) {
            (Some(n), Some(p)) => format!(" {n} ({p})"),
            (Some(n), None) => format!(" {n}"),
            (None, Some(p)) => format!(" ({p})"),
            (None, None) => String::new(),
        };
        writeln!(w, "{BOLD}{}{BOLD:#}{DIM}{about}{DIM:#}", contract.public_id)?;
        if contract.bots.is_empty() {
            writeln!(w, "  {DIM}no BOTs published as API{DIM:#}")?;
        }
        let id_width = contract
            .bots
            .iter()
            .map(|b| b.bot_id.len())
            .max()
            .unwrap_or(0);
        let name_width = contract
            .bots
            .iter()
            .map(|b| b.name.unwrap_or("").chars().count())
            .max()
            .unwrap_or(0);
        for bot in &contract.bots {
            let name = bot.name.unwrap_or("");
            let pad = name_width - name.chars().count();
            let endpoint = match (bot.bot_endpoint, &bot.warning) {
                (Some(url), _) => url.to_owned(),
                (None, warning) => format!("({})", warning.as_deref().unwrap_or("no endpoint")),
            };
            writeln!(
                w,
                "  {ID}{:id_width$}{ID:#}  {name}{:pad$}  {endpoint}",
                bot.bot_id, ""
            )?;
        }
    }
    Ok(Exit::Ok)
}

async fn run_bot(
    ctx: &Context<'_>,
    session: Session,
    bot: &BotEndpoint,
    body: &ExecuteRequest,
    follow: &Follow,
) -> Result<Exit, CliError> {
    let out = ctx.out;
    let progress = out.progress(format!("starting {}", bot.bot_id()));
    ctx.tracker.set(Stage::ExecuteSent {
        bot: bot.clone(),
        sent_at: SystemTime::now(),
    });
    let started = match session.client.execute(&session.call(), bot, body).await {
        Ok(started) => started,
        Err(err) => {
            // Only an answer that proves nothing started takes the stage back; an unknown
            // outcome leaves it at "sent" (exit 4, with the command that finds the job).
            if !matches!(err, CloudBotError::OutcomeUnknown { .. }) {
                ctx.tracker.set(Stage::Quiet);
            }
            return Err(CliError::cloud_bot(EXECUTE_ACTION)(err));
        }
    };
    let endpoint = started.job_reference;
    ctx.tracker.set(Stage::Job {
        endpoint: endpoint.clone(),
    });
    drop(progress);
    if !out.is_json() {
        let mut w = out.text();
        let status = started.job.status;
        let style = status_style(status);
        writeln!(
            w,
            "started job {BOLD}{}{BOLD:#} of {ID}{}{ID:#}: {style}{}{style:#}",
            started.job.job_id,
            bot.bot_id(),
            status.label()
        )?;
        writeln!(w, "job reference endpoint: {}", endpoint.url())?;
        if !follow.follow {
            writeln!(
                w,
                "{DIM}follow it: {}{DIM:#}",
                ctx.next.follow_job(&endpoint)
            )?;
            return Ok(Exit::of_status(started.job.status));
        }
    }
    finish_job(&session, &endpoint, started.job, follow, out).await
}

/// `cancel`: suspends the job. The stage names the job before the DELETE goes out; an answer
/// that proves nothing changed (any 4xx, or nothing sent) takes it back, any other failure
/// leaves the job's state unknown (exit 6, with the command to cancel again: DELETE is
/// idempotent).
async fn cancel(ctx: &Context<'_>, session: Session, job: &JobEndpoint) -> Result<Exit, CliError> {
    let out = ctx.out;
    let progress = out.progress(format!("cancelling job {}", job.job_id()));
    ctx.tracker.set(Stage::CancelSent {
        endpoint: job.clone(),
    });
    let found = match session.client.suspend_job(&session.call(), job).await {
        Ok(found) => found,
        Err(err) => {
            let refused = err
                .upstream_status()
                .is_some_and(|s| (400..500).contains(&s))
                || matches!(
                    err,
                    CloudBotError::DeadlineExceeded
                        | CloudBotError::InvalidCredentials
                        | CloudBotError::Internal { .. }
                );
            if refused {
                ctx.tracker.set(Stage::Quiet);
            }
            return Err(CliError::cloud_bot(CANCEL_ACTION)(err));
        }
    };
    drop(progress);
    print_job(&found, job, out)?;
    Ok(Exit::Ok)
}

/// Follows the job when asked, then prints it; the exit code follows its status.
async fn finish_job(
    session: &Session,
    endpoint: &JobEndpoint,
    job: Job,
    follow: &Follow,
    out: Output,
) -> Result<Exit, CliError> {
    let job = if follow.follow {
        follow_job(session, endpoint, job, follow, out).await?
    } else {
        job
    };
    print_job(&job, endpoint, out)?;
    Ok(Exit::of_status(job.status))
}

#[derive(Serialize)]
struct JobOut<'a> {
    job_reference_endpoint: &'a str,
    status: &'static str,
    job: &'a Job,
}

fn print_job(job: &Job, endpoint: &JobEndpoint, out: Output) -> Result<(), CliError> {
    if out.is_json() {
        out.json(&JobOut {
            job_reference_endpoint: endpoint.url(),
            status: job.status.label(),
            job,
        })?;
        return Ok(());
    }
    let mut w = out.text();
    let style = status_style(job.status);
    write!(
        w,
        "job {BOLD}{}{BOLD:#}: {style}{}{style:#}",
        job.job_id,
        status_text(job.status)
    )?;
    match job.elapsed_time {
        Some(s) => writeln!(w, " {DIM}(elapsed {s} s){DIM:#}")?,
        None => writeln!(w)?,
    }
    let bot = match job.bot_name.as_deref() {
        Some(name) => format!("{} ({name})", job.bot_id),
        None => job.bot_id.clone(),
    };
    let started = job
        .start_time
        .as_deref()
        .map(|t| local_time(t, &operator_zone()));
    let rows = [
        ("BOT", Some(bot.as_str())),
        ("started", started.as_deref()),
        ("message", job.message.as_deref()),
        ("endpoint", Some(endpoint.url())),
        ("cast", job.cast_url.as_deref()),
    ];
    for (label, value) in rows {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            writeln!(w, "  {DIM}{label:<9}{DIM:#}{value}")?;
        }
    }
    if let Some(output) = &job.output {
        let pretty = serde_json::from_str::<Value>(output.get())
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| output.get().to_owned());
        writeln!(w, "{BOLD}output{BOLD:#}")?;
        for line in pretty.lines() {
            writeln!(w, "  {line}")?;
        }
    }
    Ok(())
}

async fn jobs(
    session: Session,
    bot: &BotEndpoint,
    query: &JobQuery,
    out: Output,
) -> Result<Exit, CliError> {
    let progress = out.progress(format!("listing the jobs of {}", bot.bot_id()));
    let jobs = session
        .client
        .list_jobs(&session.call(), bot, query)
        .await
        .map_err(CliError::cloud_bot("listing the jobs"))?;
    drop(progress);
    if out.is_json() {
        let shaped: Vec<JobOut<'_>> = jobs
            .iter()
            .map(|(job, endpoint)| JobOut {
                job_reference_endpoint: endpoint.url(),
                status: job.status.label(),
                job,
            })
            .collect();
        out.json(&serde_json::json!({ "bot_endpoint": bot.url(), "jobs": shaped }))?;
        return Ok(Exit::Ok);
    }
    let mut w = out.text();
    if jobs.is_empty() {
        writeln!(w, "no jobs of {} in that window", bot.bot_id())?;
        return Ok(Exit::Ok);
    }
    let zone: TimeZone = operator_zone();
    writeln!(
        w,
        "{DIM}{:<23}  {:<9}  {:>7}  JOB REFERENCE ENDPOINT{DIM:#}",
        "STARTED", "STATUS", "ELAPSED"
    )?;
    for (job, endpoint) in &jobs {
        let style = status_style(job.status);
        let elapsed = job
            .elapsed_time
            .map(|s| format!("{s} s"))
            .unwrap_or_default();
        writeln!(
            w,
            "{:<23}  {style}{:<9}{style:#}  {:>7}  {}",
            job.start_time
                .as_deref()
                .map_or_else(|| "-".to_owned(), |t| local_time(t, &zone)),
            job.status.label(),
            elapsed,
            endpoint.url()
        )?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_pairs_become_string_values_and_bad_pairs_are_named() {
        let input = input_from_pairs(&["message=hi=there".into(), "n=5".into()]).unwrap();
        assert_eq!(input["message"], "hi=there");
        assert_eq!(input["n"], "5");
        let err = input_from_pairs(&["secret-looking-value".into()]).unwrap_err();
        assert!(err.to_string().contains("--input"));
        assert!(!err.to_string().contains("secret-looking-value"));
        assert!(input_from_pairs(&["=x".into()]).is_err());
    }
}
