//! `cloudbot`: the operator CLI. Wires the command line, the output mode and a current-thread
//! runtime to the commands, holds the one Ctrl-C handler of the whole command, and turns the
//! outcome into an exit code (`exit.rs`, documented in docs/operations.md). Library warnings go
//! to stderr (`CLOUDBOT_LOG=debug` for more; the AWS SDK's own only at error level unless
//! `CLOUDBOT_LOG` says otherwise).

mod args;
mod backfill;
mod clock;
mod commands;
mod enqueue;
mod error;
mod exit;
mod follow;
mod next;
mod output;
mod plan;
mod report;
mod rerun;
mod resolve;
mod runs;
mod scheduler;
mod schedules;
mod session;
mod stage;
mod state;
mod subscribe;
mod target;
mod usage;

use std::process::ExitCode;
use std::time::SystemTime;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::args::Cli;
use crate::commands::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::next::Next;
use crate::output::Output;
use crate::report::Report;
use crate::stage::Tracker;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOUDBOT_LOG").unwrap_or_else(|_| {
                // Our crates at WARN; the AWS SDK and HTTP crates only at ERROR, so a missing
                // credential or region reads as one message, not pages of provider-chain notes.
                tracing_subscriber::EnvFilter::new("error,cloudbot=warn,cloudbot_trigger=warn")
            }),
        )
        .init();
    let out = Output::new(cli.global.json);
    let next = Next::new(&explicit_globals(&matches));
    let tracker = Tracker::default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::NotStarted);
        }
    };
    let ctx = Context {
        global: &cli.global,
        out,
        tracker: &tracker,
        next: &next,
    };
    let result = runtime.block_on(async {
        // The one Ctrl-C handler: installed (first poll, `biased`) before the command runs, and
        // it drops the command wherever it is. What it had sent is in the tracker.
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
            result = commands::run(&ctx, &cli.command) => result,
        }
    });
    match result {
        Ok(exit) => exit.into(),
        // A reader that closed the pipe early (`cloudbot jobs ... | head`) is not an error.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            let report = Report::new(&err, &tracker.get(), &next, SystemTime::now());
            report.print();
            if out.is_json() {
                report.print_json();
            }
            ExitCode::from(report.exit_code)
        }
    }
}

/// The global options given on the command line (not from the environment), as they must be
/// repeated in a follow-up command.
fn explicit_globals(matches: &ArgMatches) -> Vec<(&'static str, &str)> {
    // Global options are visible on the subcommand's matches wherever they were written.
    let scope = matches.subcommand().map_or(matches, |(_, sub)| sub);
    [
        ("api_base", "--api-base"),
        ("secret_id", "--secret-id"),
        ("language", "--language"),
    ]
    .into_iter()
    .filter(|(id, _)| scope.value_source(id) == Some(ValueSource::CommandLine))
    .filter_map(|(id, flag)| {
        scope
            .get_one::<String>(id)
            .map(|value| (flag, value.as_str()))
    })
    .collect()
}
