//! `cloudbot-emulator`: runs the Cloud BOT API emulator on 127.0.0.1 until SIGTERM/SIGINT.
//! Prints exactly one line to stdout when ready; logs go to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cloudbot_emulator::{Emulator, EmulatorOptions, IdleClose, Seed};

/// Local emulator of the Cloud BOT REST API (demo seed unless --config is given).
#[derive(Debug, Parser)]
#[command(name = "cloudbot-emulator", version)]
struct Args {
    /// Port on 127.0.0.1 (0 = pick a free port).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Seed file (JSON) with contracts, BOTs and tokens; the built-in demo seed otherwise.
    #[arg(long, value_name = "SEED.json")]
    config: Option<PathBuf>,
    /// Interval between callback attempts in ms (default: the seed's, else 30000).
    #[arg(long, value_name = "MS")]
    callback_interval_ms: Option<u64>,
    /// End keep-alive connections idle this long (default: never), as --idle-close says.
    #[arg(long, value_name = "MS")]
    idle_timeout_ms: Option<u64>,
    /// How an idle connection ends: `fin` closes it, `silent` stops reading and answering it
    /// without closing (a middlebox that forgot the connection).
    #[arg(
        long,
        value_name = "fin|silent",
        default_value = "fin",
        requires = "idle_timeout_ms"
    )]
    idle_close: IdleClose,
    /// Start in "hold until callback acknowledged" mode: a job with a callback endpoint reads
    /// as executing until its callback is acknowledged with a 2xx (or every attempt failed).
    #[arg(long)]
    hold_until_callback_ack: bool,
    /// Print the built-in demo seed as JSON (a starting point for --config) and exit.
    #[arg(long)]
    print_demo_seed: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            eprintln!("cloudbot-emulator: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.print_demo_seed {
        println!("{}", serde_json::to_string_pretty(&Seed::demo())?);
        return Ok(());
    }
    let seed = match &args.config {
        Some(path) => Seed::from_file(path)?,
        None => Seed::demo(),
    };
    let mut options = EmulatorOptions::new(seed)
        .port(args.port)
        .hold_for_callback(args.hold_until_callback_ack);
    if let Some(ms) = args.idle_timeout_ms {
        options = options.idle_timeout(Duration::from_millis(ms), args.idle_close);
    }
    if let Some(ms) = args.callback_interval_ms {
        options = options.callback_interval(Duration::from_millis(ms));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        // Handlers are installed before the ready line: a supervisor that stops us right after
        // reading it must get a clean exit, not the default SIGTERM death.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let emulator = Emulator::start_with(options).await?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "cloudbot-emulator listening on {}",
            emulator.base_url()
        )?;
        out.flush()?;
        drop(out);
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping");
        emulator.shutdown().await;
        Ok(())
    })
}
