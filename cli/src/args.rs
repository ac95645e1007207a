//! The command line: global options (API base, credentials, language, `--json`) and the
//! commands. Parsing only; what each command does is in `commands.rs` (and `resolve.rs`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

/// Operator CLI for Cloud BOT: find BOT execution endpoints, run a BOT and follow its job, look
/// at a BOT's recent jobs, cancel a job, settle an unknown idempotency record.
///
/// API base: --api-base, else CLOUDBOT_API_BASE, else the local emulator (http://127.0.0.1:8787).
/// Set CLOUDBOT_API_BASE=https://api.c-bot.pro for the real service. Credentials are sent to
/// that origin only; every endpoint argument must be on it.
///
/// Credentials: --secret-id (or CLOUDBOT_SECRET_ID), a Secrets Manager secret holding
/// {"access_token": "...", "secret_key": "..."} read with the standard AWS configuration; or
/// CLOUDBOT_ACCESS_TOKEN and CLOUDBOT_SECRET_KEY; or CLOUDBOT_CONTRACT_SECRETS (one secret ARN
/// per contract: each command reads its contract's). Never as arguments (they would show in the
/// process list and the shell history).
///
/// Times are shown in the time zone TZ names (e.g. TZ=Asia/Tokyo), else the machine's.
#[derive(Debug, Parser)]
#[command(name = "cloudbot", version, max_term_width = 100, after_help = crate::exit::help_text())]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, ClapArgs)]
pub struct Global {
    /// Cloud BOT API origin [default: http://127.0.0.1:8787, the local emulator].
    #[arg(long, env = "CLOUDBOT_API_BASE", global = true, value_name = "URL")]
    pub api_base: Option<String>,
    /// Secrets Manager secret (name or ARN) holding the access token and secret key.
    #[arg(long, env = "CLOUDBOT_SECRET_ID", global = true, value_name = "ID")]
    pub secret_id: Option<String>,
    /// Language of Cloud BOT messages.
    #[arg(long, env = "CLOUDBOT_LANGUAGE", global = true, default_value = "ja",
          value_parser = ["ja", "en"])]
    pub language: String,
    /// Print one JSON document on stdout instead of text (for scripts; no colour, no progress;
    /// an error is {"error": {...}}).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The commands that call Cloud BOT.
    #[command(flatten)]
    CloudBot(CloudBotCommand),
    /// Settle an idempotency record the function left unknown (CloudBot.OutcomeUnknown), by
    /// invoking the function's resolve_idempotency operation with the standard AWS
    /// configuration. Look at the BOT's jobs first (`cloudbot jobs ... --since`).
    Resolve {
        /// The record key as the CloudBot.OutcomeUnknown message shows it (`request:...`,
        /// `event:...`, `http:...`, `schedule:...`), or that whole message.
        record: String,
        /// A job was started: the job found in the BOT's job list (job reference endpoint or
        /// PUBLIC_ID/JOB_ID). Duplicates then get it as a replay.
        #[arg(long, value_name = "JOB", required_unless_present = "not_started")]
        started: Option<String>,
        /// No job was started: free the key, so the next retry runs the BOT.
        #[arg(long, conflicts_with = "started")]
        not_started: bool,
        /// The function to invoke: the stack output FunctionAliasArn (a name or ARN).
        #[arg(long, env = "CLOUDBOT_FUNCTION", value_name = "NAME_OR_ARN")]
        function: String,
    },
    /// Send a JSON-lines file of execute requests (one run queue message body per line) to the
    /// stack's run queue, each line to the lane its `priority` picks (docs/queue.md). Every line
    /// is checked as the function checks it first; an invalid line sends nothing (or is skipped
    /// with --skip-invalid). Uses the standard AWS configuration.
    Enqueue(crate::enqueue::EnqueueArgs),
    /// Start a run again from the run ledger's record of it (its BOT and input) under a NEW
    /// idempotency key, by invoking the function (docs/state-machines.md, "Re-run on failure").
    /// A new, billed run: asks y/N on a terminal, or --yes.
    Rerun {
        /// The run: PUBLIC_ID/JOB_ID or its job reference endpoint (from `cloudbot runs`).
        run: String,
        /// Start it without asking.
        #[arg(long)]
        yes: bool,
        /// The function to invoke: the stack output FunctionAliasArn (a name or ARN).
        #[arg(long, env = "CLOUDBOT_FUNCTION", value_name = "NAME_OR_ARN")]
        function: String,
        /// The run ledger table: the stack output RunLedgerTableName.
        #[arg(
            long,
            env = "CLOUDBOT_RUN_LEDGER_TABLE",
            value_name = "TABLE",
            default_value = ""
        )]
        table: String,
    },
    /// The run ledger (docs/ledger.md): list runs, newest first, or show one with its history.
    /// Reads the table with the standard AWS configuration, by index (never a scan).
    Runs(RunsArgs),
    /// A month's BOT-seconds per BOT from the run ledger (docs/usage.md): runs, the share of the
    /// allowance, a month-end forecast. Reads the table by index (never a scan).
    Usage {
        /// The month, YYYY-MM in Japan time [default: the current month].
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<String>,
        /// The monthly allowance in BOT-seconds: the stack's BudgetMonthlySeconds.
        #[arg(long, env = "CLOUDBOT_BUDGET_MONTHLY_SECONDS", value_name = "SECONDS")]
        allowance: Option<u64>,
        /// The run ledger table: the stack output RunLedgerTableName.
        #[arg(
            long,
            env = "CLOUDBOT_RUN_LEDGER_TABLE",
            value_name = "TABLE",
            default_value = ""
        )]
        table: String,
    },
    /// Subscribe the stack's callback API to a BOT's "BOT done" event, so its runs started
    /// outside AWS (Cloud BOT's console, its schedules, kintone, Zapier) reach the run ledger and
    /// the job events (docs/events.md). Lists first: a BOT already subscribed is said, never
    /// subscribed twice. Use the function's secret (stack output SecretArn): the webhook's token
    /// is derived from its secret key.
    Subscribe {
        /// The BOT: PUBLIC_ID/BOT_ID or its BOT execution endpoint.
        bot: String,
        /// The stack output CallbackApiUrl.
        #[command(flatten)]
        callback: CallbackUrl,
    },
    /// Remove this stack's "BOT done" subscriptions of a BOT (nothing to remove is not an
    /// error).
    Unsubscribe {
        /// The BOT: PUBLIC_ID/BOT_ID or its BOT execution endpoint.
        bot: String,
        /// The stack output CallbackApiUrl.
        #[command(flatten)]
        callback: CallbackUrl,
    },
    /// List a BOT's event subscriptions (this stack's marked when --callback-url is given;
    /// tokens shown as ***, other systems' URLs as their origin).
    Subscriptions {
        /// The BOT: PUBLIC_ID/BOT_ID or its BOT execution endpoint.
        bot: String,
        /// The stack output CallbackApiUrl.
        #[command(flatten)]
        callback: CallbackUrl,
    },
    /// The team's BOT schedules (a schedule file: calendar/README.md): check a file, preview
    /// the coming runs with skipped and shifted days labelled, apply it to the stack's schedule
    /// group, list the applied schedules, resume one the failure breaker paused.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
}

/// The commands that call Cloud BOT (they need its credentials).
#[derive(Debug, Subcommand)]
pub enum CloudBotCommand {
    /// List the API-published BOTs with their BOT execution endpoints (all contracts the
    /// credentials can see, or one).
    Bots {
        /// Contract public id; all contracts when omitted.
        public_id: Option<String>,
    },
    /// Start a BOT and print its job reference endpoint; --follow waits for the job to end.
    Run {
        /// BOT execution endpoint ({base}/{public_id}/bots/{bot_id}/jobs), e.g. from `bots`.
        bot_endpoint: String,
        /// Input data KEY=VALUE (repeatable; values are strings, as Cloud BOT expects).
        #[arg(
            long = "input",
            value_name = "KEY=VALUE",
            conflicts_with = "input_file"
        )]
        inputs: Vec<String>,
        /// Input data as a JSON object in a file (`-` for stdin), for lists and groups.
        #[arg(long, value_name = "FILE")]
        input_file: Option<PathBuf>,
        /// How to follow the job.
        #[command(flatten)]
        follow: Follow,
    },
    /// Show a job (status, message, output); --follow waits for it to end.
    Job {
        /// Job reference endpoint ({base}/{public_id}/jobs/{job_id}, e.g. from `run`) or
        /// PUBLIC_ID/JOB_ID.
        job: String,
        /// How to follow the job.
        #[command(flatten)]
        follow: Follow,
    },
    /// List a BOT's jobs, newest first (e.g. to find out whether an ambiguous start did start).
    Jobs {
        /// BOT execution endpoint.
        bot_endpoint: String,
        /// Only jobs started within this long before now (e.g. 15m, 1h, 2days).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Cancel (suspend) a running job; needs an access token with the Suspend permission.
    Cancel {
        /// Job reference endpoint or PUBLIC_ID/JOB_ID.
        job: String,
    },
}

/// The stack's callback API (`subscribe`, `unsubscribe`, `subscriptions`).
#[derive(Debug, ClapArgs)]
pub struct CallbackUrl {
    /// The stack output CallbackApiUrl (https://…/callbacks).
    #[arg(long, env = "CLOUDBOT_CALLBACK_BASE_URL", value_name = "URL")]
    pub callback_url: Option<String>,
}

/// `cloudbot runs [...]` and `cloudbot runs show RUN`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    /// `show RUN`.
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// Only this BOT's runs: PUBLIC_ID/BOT_ID.
    #[arg(long, value_name = "PUBLIC_ID/BOT_ID")]
    pub bot: Option<String>,
    /// Only runs in this status (`overrun`: suspended past their maximum run time; `orphaned`:
    /// suspended because their workflow ended).
    #[arg(long, value_parser = ["executing", "succeeded", "error", "overrun", "orphaned"])]
    pub status: Option<String>,
    /// Only runs started since: a duration back from now (7d, 12h), a date (2026-11-01, in TZ)
    /// or an RFC 3339 time [default: 7d].
    #[arg(long, value_name = "DURATION|DATE", default_value = "7d")]
    pub since: String,
    /// Only the runs of this schedule (by nominal occurrence since --since).
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub limit: u32,
    /// The run ledger table: the stack output RunLedgerTableName.
    #[arg(
        long,
        env = "CLOUDBOT_RUN_LEDGER_TABLE",
        value_name = "TABLE",
        default_value = ""
    )]
    pub table: String,
}

/// `cloudbot runs show`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run with its history.
    Show {
        /// The run: PUBLIC_ID/JOB_ID, or the job reference endpoint.
        run: String,
        /// The run ledger table: the stack output RunLedgerTableName.
        #[arg(
            long,
            env = "CLOUDBOT_RUN_LEDGER_TABLE",
            value_name = "TABLE",
            default_value = ""
        )]
        table: String,
    },
}

/// `cloudbot schedules ...`: `check` and `preview` read only the file; `diff`, `apply`, `list`
/// and `resume` use the standard AWS configuration and the stack's outputs.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Validate a schedule file (YAML, or JSON when the name ends in .json); an error names the
    /// field (`schedules[2].calendar.closed[0].dates`).
    Check {
        /// The schedule file.
        file: PathBuf,
    },
    /// The coming runs of one schedule of the file, in the schedule's time zone, with each
    /// skipped or shifted occurrence labelled and the holiday (祝日名) or closed day named.
    Preview {
        /// The schedule's name in the file.
        name: String,
        /// The schedule file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// How many days to show.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=400))]
        days: u16,
        /// The first day (YYYY-MM-DD) [default: today in the schedule's time zone].
        #[arg(long, value_name = "DATE")]
        from: Option<jiff::civil::Date>,
    },
    /// What `apply` would change in the stack's schedule group (create, update, delete), and
    /// the schedules changed by hand since the last apply or not managed by the file. Changes
    /// nothing.
    Diff {
        /// The schedule file.
        file: PathBuf,
        /// The stack's schedule group and what its schedules start.
        #[command(flatten)]
        deploy: DeployArgs,
    },
    /// Make the stack's schedule group match the file: one schedule per entry, created,
    /// updated or deleted; running it again changes nothing. Schedules without the managed
    /// marker are never touched; a managed schedule changed by hand stops apply (exit code 7,
    /// nothing changed) unless --overwrite-hand-edits.
    Apply {
        /// The schedule file.
        file: PathBuf,
        /// The stack's schedule group and what its schedules start.
        #[command(flatten)]
        deploy: DeployArgs,
        /// Replace (or delete) managed schedules changed by hand since the last apply.
        #[arg(long)]
        overwrite_hand_edits: bool,
    },
    /// The schedules of the stack's group: next run in the schedule's time zone, Scheduler
    /// state, the failure breaker's pause and the last outcome (from the schedule's state
    /// record, read only).
    List {
        /// The stack output ScheduleGroupName.
        #[arg(long, env = "CLOUDBOT_SCHEDULE_GROUP", value_name = "NAME")]
        group: String,
        /// The function's idempotency table: the stack output IdempotencyTableName.
        #[arg(long, env = "CLOUDBOT_IDEMPOTENCY_TABLE", value_name = "NAME")]
        table: String,
    },
    /// Replay the occurrences of a period that did not run (an outage, a paused schedule) with
    /// their original nominal keys: shows each occurrence of [--from, --to] (ran: its job; not
    /// run: will be delivered; skipped: the holiday), then delivers the missing ones to the
    /// schedule's own target with `backfill: true`, after y/N (or --yes). An occurrence the
    /// run ledger or its idempotency record shows ran is never delivered. docs/schedules.md.
    Backfill {
        /// The schedule's name in the stack's group.
        name: String,
        /// The first day (YYYY-MM-DD, in the schedule's time zone).
        #[arg(long, value_name = "DATE")]
        from: jiff::civil::Date,
        /// The last day (YYYY-MM-DD, in the schedule's time zone), included.
        #[arg(long, value_name = "DATE")]
        to: jiff::civil::Date,
        /// The stack output ScheduleGroupName.
        #[arg(long, env = "CLOUDBOT_SCHEDULE_GROUP", value_name = "NAME")]
        group: String,
        /// The function's idempotency table: the stack output IdempotencyTableName.
        #[arg(long, env = "CLOUDBOT_IDEMPOTENCY_TABLE", value_name = "NAME")]
        table: String,
        /// The run ledger: the stack output RunLedgerTableName. Without it, occurrences older
        /// than the idempotency window (24 h) are refused: nothing else remembers them.
        #[arg(long, env = "CLOUDBOT_RUN_LEDGER_TABLE", value_name = "NAME")]
        ledger: Option<String>,
        /// Deliver without asking (required when stdin is not a terminal).
        #[arg(long, conflicts_with = "dry_run")]
        yes: bool,
        /// Show the list and deliver nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Lift the failure breaker's pause of a schedule (its state record: consecutive failures
    /// back to 0). Does not change the Scheduler's ENABLED/DISABLED state: the file's `enabled`
    /// is the truth for that (`apply`).
    Resume {
        /// The schedule's name.
        name: String,
        /// The function's idempotency table: the stack output IdempotencyTableName.
        #[arg(long, env = "CLOUDBOT_IDEMPOTENCY_TABLE", value_name = "NAME")]
        table: String,
    },
}

/// Where `apply` puts the schedules and what they start: the stack's outputs.
#[derive(Debug, Clone, ClapArgs)]
pub struct DeployArgs {
    /// The stack output ScheduleGroupName.
    #[arg(long, env = "CLOUDBOT_SCHEDULE_GROUP", value_name = "NAME")]
    pub group: String,
    /// The stack output SchedulerRoleArn (the role the Scheduler assumes).
    #[arg(long, env = "CLOUDBOT_SCHEDULER_ROLE_ARN", value_name = "ARN")]
    pub role_arn: String,
    /// The stack output ScheduleTargetArn (RunBotCallback, RunBot or the function's alias).
    #[arg(long, env = "CLOUDBOT_SCHEDULE_TARGET_ARN", value_name = "ARN")]
    pub target_arn: String,
    /// The stack output ScheduleDeadLetterQueueArn.
    #[arg(long, env = "CLOUDBOT_SCHEDULE_DLQ_ARN", value_name = "ARN")]
    pub dead_letter_arn: String,
}

/// The shells completions are generated for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

/// `--follow` and its pacing.
#[derive(Debug, Clone, ClapArgs)]
pub struct Follow {
    /// Wait until the job ends, with a live status line, then print it.
    #[arg(long)]
    pub follow: bool,
    /// Time between job polls while following.
    #[arg(long, default_value = "3s", value_name = "DURATION", value_parser = poll_interval)]
    pub interval: Duration,
    /// Stop following after this long (exit code 5; the job goes on) [default: no limit].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Longest first wait before reading the job again after a transient error (rate limited,
    /// unavailable); it doubles per retry up to 60s, 6 retries, random within: ReferJob's Retry
    /// in statemachine/run-bot.asl.json [default: 2s, its IntervalSeconds].
    #[arg(long, value_name = "DURATION", value_parser = poll_interval)]
    pub retry_interval: Option<Duration>,
}

/// At least 100 ms between polls: following must not turn into a request flood.
fn poll_interval(raw: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if interval < Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn input_and_input_file_conflict() {
        let err = Cli::try_parse_from([
            "cloudbot",
            "run",
            "http://127.0.0.1:8787/demo/bots/echo_bot/jobs",
            "--input",
            "a=b",
            "--input-file",
            "x.json",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn poll_interval_has_a_floor() {
        assert!(poll_interval("10ms").is_err());
        assert_eq!(poll_interval("2s").unwrap(), Duration::from_secs(2));
    }
}
