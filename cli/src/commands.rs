//! The four commands. Each validates its arguments against the API base first (a bad endpoint
//! or input is refused before anything is sent, Secrets Manager included), then connects, calls
//! the client, and prints text or JSON.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cloudbot_trigger::cloudbot::{
    BotEndpoint, ExecuteRequest, Job, JobEndpoint, JobQuery, JobStatus, PublicId,
};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::args::{Command, Follow, Global};
use crate::error::{CliError, Exit};
use crate::output::{BOLD, DIM, ID, Output, status_style};
use crate::session::{Session, Settings};

/// Runs `command`; the result is the exit code of a command that reported its result.
pub async fn run(global: &Global, command: &Command, out: Output) -> Result<Exit, CliError> {
    let settings = Settings::from_global(global)?;
    if let Some(notice) = settings.default_base_notice() {
        eprintln!("note: {notice}");
    }
    let base = settings.base().clone();
    let usage = |e: cloudbot_trigger::cloudbot::EndpointError| {
        CliError::Usage(format!("{e} (API base: {base})"))
    };
    match command {
        Command::Bots { public_id } => {
            let public_id = public_id
                .as_deref()
                .map(|raw| PublicId::parse(raw, "PUBLIC_ID"))
                .transpose()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            bots(settings.connect().await?, public_id, out).await
        }
        Command::Run {
            bot_endpoint,
            inputs,
            input_file,
            follow,
        } => {
            let bot = BotEndpoint::parse(&base, bot_endpoint, "BOT_ENDPOINT").map_err(usage)?;
            let input = match input_file {
                Some(path) => Some(input_from_file(path)?),
                None if inputs.is_empty() => None,
                None => Some(input_from_pairs(inputs)?),
            };
            let body = ExecuteRequest {
                input,
                ..ExecuteRequest::default()
            };
            run_bot(settings.connect().await?, &bot, &body, follow, out).await
        }
        Command::Job {
            job_endpoint,
            follow,
        } => {
            let job = JobEndpoint::parse(&base, job_endpoint, "JOB_ENDPOINT").map_err(usage)?;
            let session = settings.connect().await?;
            let progress = out.progress("reading the job");
            let found = session
                .client
                .refer_job(&session.call(), &job)
                .await
                .map_err(CliError::cloud_bot("reading the job"))?;
            drop(progress);
            finish_job(&session, &job, found, follow, out).await
        }
        Command::Jobs {
            bot_endpoint,
            since,
            limit,
        } => {
            let bot = BotEndpoint::parse(&base, bot_endpoint, "BOT_ENDPOINT").map_err(usage)?;
            let query = JobQuery {
                limit: Some(*limit),
                started_since: since.map(|d| SystemTime::now() - d),
                statuses: Vec::new(),
            };
            jobs(settings.connect().await?, &bot, &query, out).await
        }
    }
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
    bot_endpoint: &'a str,
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
                    bot_endpoint: endpoint.url(),
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
            writeln!(
                w,
                "  {ID}{:id_width$}{ID:#}  {name}{:pad$}  {}",
                bot.bot_id, "", bot.bot_endpoint
            )?;
        }
    }
    Ok(Exit::Ok)
}

async fn run_bot(
    session: Session,
    bot: &BotEndpoint,
    body: &ExecuteRequest,
    follow: &Follow,
    out: Output,
) -> Result<Exit, CliError> {
    let progress = out.progress(format!("starting {}", bot.bot_id()));
    let started = session
        .client
        .execute(&session.call(), bot, body)
        .await
        .map_err(CliError::cloud_bot("starting the BOT"))?;
    drop(progress);
    let endpoint = started.job_reference;
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
                "{DIM}follow it: cloudbot job {} --follow{DIM:#}",
                endpoint.url()
            )?;
            return Ok(Exit::of_status(started.job.status));
        }
    }
    finish_job(&session, &endpoint, started.job, follow, out).await
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

/// Polls the job until it is final, `--timeout` runs out, or Ctrl-C.
async fn follow_job(
    session: &Session,
    endpoint: &JobEndpoint,
    mut job: Job,
    follow: &Follow,
    out: Output,
) -> Result<Job, CliError> {
    let started = Instant::now();
    let message = |job: &Job| {
        let style = status_style(job.status);
        format!(
            "job {}: {style}{}{style:#}",
            job.job_id,
            status_text(job.status)
        )
    };
    let progress = out.progress(message(&job));
    let mut last_status = job.status;
    let stopped = |why: &'static str, exit: Exit| CliError::StoppedFollowing {
        job_endpoint: endpoint.url().to_owned(),
        waited: humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
            .to_string(),
        why,
        exit,
    };
    // One listener for the whole loop, so a Ctrl-C between two polls is not missed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while !job.status.is_final() {
        if follow
            .timeout
            .is_some_and(|limit| started.elapsed() + follow.interval > limit)
        {
            return Err(stopped("--timeout ran out", Exit::StillRunning));
        }
        let next = async {
            tokio::time::sleep(follow.interval).await;
            session.client.refer_job(&session.call(), endpoint).await
        };
        job = tokio::select! {
            result = next => result.map_err(CliError::cloud_bot("reading the job"))?,
            _ = &mut interrupted => return Err(stopped("interrupted", Exit::Interrupted)),
        };
        progress.set_message(message(&job));
        if job.status != last_status && !job.status.is_final() && !out.is_live() && !out.is_json() {
            // Without a live line, each change to another running state is one plain line (the
            // final state is printed with the job).
            let mut w = out.text();
            writeln!(w, "job {}: {}", job.job_id, status_text(job.status))?;
        }
        last_status = job.status;
    }
    Ok(job)
}

fn status_text(status: JobStatus) -> String {
    match status {
        JobStatus::Unknown(n) => format!("unknown status {n}"),
        other => other.label().to_owned(),
    }
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
    let rows = [
        ("BOT", Some(bot.as_str())),
        ("started", job.start_time.as_deref()),
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
    writeln!(
        w,
        "{DIM}{:<20}  {:<9}  {:>7}  JOB REFERENCE ENDPOINT{DIM:#}",
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
            "{:<20}  {style}{:<9}{style:#}  {:>7}  {}",
            job.start_time.as_deref().unwrap_or("-"),
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
