//! `cloudbot`: the operator CLI. Wires the command line, the output mode and a current-thread
//! runtime to the commands, and turns the outcome into an exit code (table in
//! docs/operations.md). Library warnings go to stderr (`CLOUDBOT_LOG=debug` for more).

mod args;
mod commands;
mod error;
mod output;
mod session;

use std::error::Error as _;
use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::error::{CliError, Exit};
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOUDBOT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let out = Output::new(cli.global.json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::CallFailed);
        }
    };
    match runtime.block_on(commands::run(&cli.global, &cli.command, out)) {
        Ok(exit) => exit.into(),
        // A reader that closed the pipe early (`cloudbot jobs ... | head`) is not an error.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            err.exit().into()
        }
    }
}

/// The whole error chain on one line, then what to do next.
fn report(err: &CliError) {
    let mut text = format!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let mut stderr = anstream::stderr();
    let red = anstyle::AnsiColor::Red.on_default().bold();
    let _ = std::io::Write::write_fmt(
        &mut stderr,
        format_args!("{red}{}{red:#}{}\n", "error", &text["error".len()..]),
    );
    if let Some(hint) = err.hint() {
        let _ = std::io::Write::write_fmt(&mut stderr, format_args!("hint: {hint}\n"));
    }
}
