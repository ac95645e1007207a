//! The end of a command that stopped early: the exit code, decided from the error *and* how far
//! the command got (a job that may exist or does exist is never reported as "not started"), the
//! job reference endpoint when known, and the exact command to continue. Written to stderr,
//! and with `--json` also as one JSON document on stdout:
//!
//! `{"error": {"type", "message", "exit_code", "job_reference_endpoint", "next_command", "hint"}}`
//! (every key always present, `null` when there is nothing to say).

use std::error::Error as _;
use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::CliError;
use crate::exit::Exit;
use crate::next::Next;
use crate::stage::Stage;

/// What the operator is told when a command stops early.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Stable error type (`CloudBot.Unavailable`, `Cli.Interrupted`, ...).
    #[serde(rename = "type")]
    pub error_type: String,
    /// The whole error chain on one line.
    pub message: String,
    /// The process exit code.
    pub exit_code: u8,
    /// The job this command started or read, when known.
    pub job_reference_endpoint: Option<String>,
    /// The exact command to run next.
    pub next_command: Option<String>,
    /// What to do, in words.
    pub hint: Option<String>,
}

impl Report {
    /// The report of `err`, which ended a command at `stage`.
    pub fn new(err: &CliError, stage: &Stage, next: &Next, now: SystemTime) -> Report {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        let exit = exit_at(err, stage);
        let execute_refused = matches!(
            err,
            CliError::CloudBot { action, .. } if *action == crate::error::EXECUTE_ACTION
        );
        let (job, next_command, stage_hint) = match (stage, exit) {
            (Stage::ExecuteSent { bot, sent_at }, Exit::JobMayExist) => {
                let find = next.find_jobs(bot, &Stage::since_window(*sent_at, now));
                (
                    None,
                    Some(find),
                    Some(
                        "the execute request may have reached Cloud BOT, so a job may have \
                         started. Do not run the BOT again blindly: list its recent jobs with the \
                         command above; a job listed there is this run (follow it with \
                         `cloudbot job` and its endpoint), none means nothing started."
                            .to_owned(),
                    ),
                )
            }
            (Stage::Job { endpoint }, Exit::StillRunning | Exit::StateUnknown) => (
                Some(endpoint.url().to_owned()),
                Some(next.follow_job(endpoint)),
                Some("the job goes on: continue with the command above.".to_owned()),
            ),
            (Stage::CancelSent { endpoint }, Exit::StateUnknown) => (
                Some(endpoint.url().to_owned()),
                Some(next.cancel_job(endpoint)),
                Some(format!(
                    "the cancel request may or may not have reached Cloud BOT. Cancelling again \
                     is safe (the command above), or look at the job: `{}`.",
                    next.show_job(endpoint)
                )),
            ),
            (Stage::Quiet, Exit::NotStarted) if execute_refused => (
                None,
                None,
                Some("Cloud BOT started no job, so running the BOT again is safe.".to_owned()),
            ),
            (Stage::ResolveSent, _) => (
                None,
                None,
                Some(
                    "the resolution may or may not have been recorded: running the same command \
                     again is safe (the function then answers that the record is already \
                     completed or released)."
                        .to_owned(),
                ),
            ),
            (Stage::BackfillSent, _) => (
                None,
                None,
                Some(
                    "the backfill stopped while delivering: some occurrences may have been \
                     delivered and one may be in flight. Run the same backfill again (without \
                     --yes, to see the list first): what was delivered is found by its execution \
                     name or idempotency record and not delivered twice."
                        .to_owned(),
                ),
            ),
            (Stage::EnqueueSent { key_prefix }, _) => (
                None,
                None,
                Some(format!(
                    "the enqueue stopped while sending: some lines may be queued. Send the same \
                     file again with the same options and --key-prefix {key_prefix}: every line \
                     then carries the same key as before, so a line already queued starts \
                     nothing twice (within the idempotency window)."
                )),
            ),
            (Stage::Quiet, Exit::Interrupted) => (
                None,
                None,
                Some("nothing that could start or change a job was sent.".to_owned()),
            ),
            _ => (None, None, None),
        };
        let hint = match (err.hint(), stage_hint) {
            (Some(own), Some(stage)) => Some(format!("{own} {stage}")),
            (Some(own), None) => Some(own.to_owned()),
            (None, stage) => stage,
        };
        Report {
            error_type: err.error_type(),
            message,
            exit_code: exit.code(),
            job_reference_endpoint: job,
            next_command,
            hint,
        }
    }

    /// The report on stderr: the error in red (on a terminal), then the job and what to run.
    pub fn print(&self) {
        let mut stderr = anstream::stderr();
        let red = anstyle::AnsiColor::Red.on_default().bold();
        let _ = writeln!(stderr, "{red}error{red:#}: {}", self.message);
        if let Some(job) = &self.job_reference_endpoint {
            let _ = writeln!(stderr, "job reference endpoint: {job}");
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(stderr, "hint: {hint}");
        }
        if let Some(next) = &self.next_command {
            let _ = writeln!(stderr, "next: {next}");
        }
    }

    /// The report as the one JSON document of a `--json` run.
    pub fn print_json(&self) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "error": self }));
        let _ = writeln!(out);
        let _ = out.flush();
    }
}

/// The exit code of `err` at `stage`: an error that on its own says "nothing was started"
/// (a failed call, an interrupt) says "a job may exist" while an execute is out, and "the job's
/// state is unknown" once a job is known.
pub fn exit_at(err: &CliError, stage: &Stage) -> Exit {
    let own = err.exit();
    match (stage, own) {
        (Stage::ExecuteSent { .. }, Exit::NotStarted | Exit::Interrupted | Exit::JobMayExist) => {
            Exit::JobMayExist
        }
        (Stage::Job { .. } | Stage::CancelSent { .. }, Exit::NotStarted | Exit::Interrupted) => {
            Exit::StateUnknown
        }
        (Stage::BackfillSent, Exit::NotStarted | Exit::Interrupted | Exit::Usage) => {
            Exit::NotAllDelivered
        }
        (Stage::EnqueueSent { .. }, Exit::NotStarted | Exit::Interrupted) => Exit::JobMayExist,
        _ => own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbot_trigger::cloudbot::{ApiBase, BotEndpoint, Cause, CloudBotError, JobEndpoint};
    use std::time::Duration;

    fn base() -> ApiBase {
        ApiBase::parse("http://127.0.0.1:8787").unwrap()
    }

    /// Every way a command can stop early, by stage: the exit code, and whether the job (or the
    /// way to find it) is named.
    #[test]
    fn every_exit_path_names_the_job_or_says_nothing_started() {
        let base = base();
        let bot = BotEndpoint::parse(&base, "http://127.0.0.1:8787/demo/bots/b/jobs", "B").unwrap();
        let job = JobEndpoint::parse(&base, "http://127.0.0.1:8787/demo/jobs/j", "J").unwrap();
        let now = SystemTime::now();
        let quiet = Stage::Quiet;
        let sent = Stage::ExecuteSent {
            bot: bot.clone(),
            sent_at: now - Duration::from_secs(90),
        };
        let known = Stage::Job {
            endpoint: job.clone(),
        };
        let unavailable = || CloudBotError::Unavailable {
            cause: Cause::Status(500),
            retry_after: None,
        };
        let failed_call = || CliError::CloudBot {
            action: "reading the job",
            source: unavailable(),
        };
        let unknown = || CliError::CloudBot {
            action: crate::error::EXECUTE_ACTION,
            source: CloudBotError::OutcomeUnknown {
                cause: Cause::Transport,
            },
        };
        let read_failed = || CliError::ReadFailed {
            attempts: 7,
            source: unavailable(),
        };
        let timed_out = || CliError::TimedOut {
            waited: "1s".into(),
        };
        let cancelling = Stage::CancelSent {
            endpoint: job.clone(),
        };
        let cancel = "cloudbot cancel http://127.0.0.1:8787/demo/jobs/j";
        let find = "cloudbot jobs http://127.0.0.1:8787/demo/bots/b/jobs --since 7m";
        let follow = "cloudbot job http://127.0.0.1:8787/demo/jobs/j --follow";
        // (what happened, error, stage, exit, job named, next command)
        type Case<'a> = (&'a str, CliError, &'a Stage, Exit, bool, Option<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "interrupt before the POST",
                CliError::Interrupted,
                &quiet,
                Exit::Interrupted,
                false,
                None,
            ),
            (
                "call failed before the POST",
                failed_call(),
                &quiet,
                Exit::NotStarted,
                false,
                None,
            ),
            (
                "interrupt while the POST is out",
                CliError::Interrupted,
                &sent,
                Exit::JobMayExist,
                false,
                Some(find),
            ),
            (
                "POST answer lost",
                unknown(),
                &sent,
                Exit::JobMayExist,
                false,
                Some(find),
            ),
            (
                "interrupt after the POST",
                CliError::Interrupted,
                &known,
                Exit::StateUnknown,
                true,
                Some(follow),
            ),
            (
                "reads failed after the retries",
                read_failed(),
                &known,
                Exit::StateUnknown,
                true,
                Some(follow),
            ),
            (
                "a read failed for good",
                failed_call(),
                &known,
                Exit::StateUnknown,
                true,
                Some(follow),
            ),
            (
                "--timeout ran out",
                timed_out(),
                &known,
                Exit::StillRunning,
                true,
                Some(follow),
            ),
            (
                "bad usage",
                CliError::Usage("x".into()),
                &quiet,
                Exit::Usage,
                false,
                None,
            ),
            (
                "interrupt while a resolve is out",
                CliError::Interrupted,
                &Stage::ResolveSent,
                Exit::Interrupted,
                false,
                None,
            ),
            (
                "interrupt while a cancel is out",
                CliError::Interrupted,
                &cancelling,
                Exit::StateUnknown,
                true,
                Some(cancel),
            ),
            (
                "a cancel's answer was lost",
                failed_call(),
                &cancelling,
                Exit::StateUnknown,
                true,
                Some(cancel),
            ),
            (
                "interrupt while a backfill delivers",
                CliError::Interrupted,
                &Stage::BackfillSent,
                Exit::NotAllDelivered,
                false,
                None,
            ),
        ];
        for (what, err, stage, exit, named, next_command) in cases {
            let report = Report::new(&err, stage, &Next::new(&[]), now);
            if matches!(stage, Stage::ResolveSent) {
                assert!(
                    report
                        .hint
                        .as_deref()
                        .unwrap()
                        .contains("running the same command again"),
                    "{what}"
                );
            }
            assert_eq!(report.exit_code, exit.code(), "{what}");
            assert_eq!(
                report.job_reference_endpoint.is_some(),
                named,
                "{what}: {report:?}"
            );
            assert_eq!(report.next_command.as_deref(), next_command, "{what}");
            assert_ne!(
                matches!(
                    stage,
                    Stage::ExecuteSent { .. }
                        | Stage::Job { .. }
                        | Stage::CancelSent { .. }
                        | Stage::BackfillSent
                ),
                [Exit::NotStarted, Exit::Interrupted, Exit::Usage].contains(&exit),
                "{what}: a stage with a job must never exit with a 'nothing started' code"
            );
        }
    }

    #[test]
    fn the_json_document_has_a_stable_shape() {
        let report = Report::new(
            &CliError::Interrupted,
            &Stage::Quiet,
            &Next::new(&[]),
            SystemTime::now(),
        );
        let value = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "exit_code",
                "hint",
                "job_reference_endpoint",
                "message",
                "next_command",
                "type"
            ]
        );
        assert_eq!(value["type"], "Cli.Interrupted");
        assert_eq!(value["exit_code"], 130);
    }
}
