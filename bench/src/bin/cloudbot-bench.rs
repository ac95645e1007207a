//! `cloudbot-bench`: runs every benchmark scenario side by side on this machine and writes
//! BENCHMARKS.md. Exits non-zero only on functional breakage (a process that does not start,
//! an unexpected function error, a lost or duplicated job), never because a figure is slow:
//! a benchmark reports, it does not judge. The scenarios live in the library
//! ([`cloudbot_bench::harness`]); this binary parses the command line and runs them. See
//! docs/benchmarks.md for what each figure means.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cloudbot_bench::BenchError;
use cloudbot_bench::harness::{
    self, CpuConfig, FULL_VCPU_MB, Settings, StoreMode, template_memory,
};
use cloudbot_bench::report::Artifact;

/// Benchmarks the cloudbot-trigger bootstrap against the hello-world floor and writes the
/// figures as markdown. Sample counts default to the full run, or to the short one with --quick.
#[derive(Debug, Parser)]
#[command(name = "cloudbot-bench")]
struct Cli {
    /// The function's bootstrap.
    #[arg(long, default_value = "target/release/cloudbot-trigger")]
    bootstrap: PathBuf,
    /// The hello-world floor bootstrap.
    #[arg(long, default_value = "target/release/lambda-floor")]
    floor: PathBuf,
    /// The POST floor bootstrap (the CPU model's warm-CPU floor: the execute's HTTPS POST alone).
    #[arg(long, default_value = "target/release/floor-post")]
    floor_post: PathBuf,
    /// The `cloudbot-emulator` binary (the upstream).
    #[arg(long, default_value = "target/release/cloudbot-emulator")]
    emulator: PathBuf,
    /// The `tls-start` binary (first use of each crypto provider).
    #[arg(long, default_value = "target/release/tls-start")]
    tls_start: PathBuf,
    /// How aws-lc-sys was built, as the calling script saw it (printed in the report).
    #[arg(
        long,
        default_value = "AWS_LC_SYS_NO_JITTER_ENTROPY unset (jitter entropy on)"
    )]
    aws_lc_build: String,
    /// Where the report goes.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Folder for process logs (kept only when the run fails).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Few samples: proves the harness works, the figures mean little.
    #[arg(long)]
    quick: bool,
    /// Cold init only, printed as a table (no emulator, no report).
    #[arg(long)]
    only_cold: bool,
    /// The CPU model only, printed as a table (no report), with every --variant beside the
    /// function and the floor.
    #[arg(long, conflicts_with = "only_cold")]
    only_cpu: bool,
    /// With --only-cpu: another bootstrap measured side by side, as LABEL=PATH (repeatable).
    #[arg(long, value_name = "LABEL=PATH", value_parser = parse_variant, requires = "only_cpu")]
    variant: Vec<(String, PathBuf)>,
    /// Cold starts of each binary (default 20, quick 3).
    #[arg(long)]
    starts: Option<NonZeroUsize>,
    /// Warm invocations after the first (default 1000, quick 100).
    #[arg(long)]
    warm: Option<NonZeroUsize>,
    /// Sandboxes side by side in the load test (default 4, quick 2).
    #[arg(long)]
    sandboxes: Option<NonZeroUsize>,
    /// Invocations per sandbox in the load test (default 250, quick 20).
    #[arg(long)]
    per_sandbox: Option<NonZeroUsize>,
    /// Fixed latency the emulator adds to every API answer, in ms.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    latency_ms: u64,
    /// 503s injected before job creation in the load test (default 5, quick 2).
    #[arg(long = "faults", value_name = "K")]
    injected_faults: Option<usize>,
    /// Timed SQS batches (10 messages each) per batch concurrency in the run queue scenario
    /// (default 20, quick 3).
    #[arg(long)]
    queue_batches: Option<NonZeroUsize>,
    /// The run queue scenario only, printed as markdown (no report): rerun with `--env` for a
    /// setting's cost per message (e.g. admission control).
    #[arg(long, conflicts_with_all = ["only_cold", "only_cpu"])]
    only_queue: bool,
    /// Whole runs on both follow paths only (issue 22's store calls per run and their CPU,
    /// under the CPU model's configurations), printed as markdown (no report).
    #[arg(long, conflicts_with_all = ["only_cold", "only_cpu", "only_queue"])]
    only_runs: bool,
    /// Whole runs per follow path and CPU-model start (default 10, quick 3).
    #[arg(long)]
    follow_runs: Option<NonZeroUsize>,
    /// CPU model: memory sizes (MB), comma-separated (default 128,512,1769; quick 128). The
    /// template's default memory size is added when missing.
    #[arg(long, value_name = "MB,...", value_delimiter = ',')]
    cpu_memory: Vec<u32>,
    /// CPU model: CFS periods (ms), comma-separated (default 100,20; quick 20).
    #[arg(long, value_name = "MS,...", value_delimiter = ',')]
    cpu_period_ms: Vec<u64>,
    /// CPU model: starts per binary and configuration (default 5, quick 1).
    #[arg(long)]
    cpu_starts: Option<NonZeroUsize>,
    /// CPU model: warm invocations per start (default 100, quick 10).
    #[arg(long)]
    cpu_warm: Option<NonZeroUsize>,
    /// CPU model: events per back-to-back run (default 100, quick 10).
    #[arg(long)]
    cpu_burst: Option<NonZeroUsize>,
    /// With --only-cpu: every plain subject also measured keyed (its own idempotency_key per
    /// event, the table on a DynamoDB stand-in), on the stand-in that keeps its connections
    /// (`alive`) and/or the one that closes them (`close`), comma-separated.
    #[arg(long, value_name = "alive,close", value_delimiter = ',', value_parser = parse_store_mode, requires = "only_cpu")]
    cpu_keyed: Vec<StoreMode>,
    /// With --cpu-keyed: the keyed subjects also keep the run ledger (the template's default)
    /// on the same stand-in, one more UpdateItem per started run, so the store's share
    /// includes the ledger's write.
    #[arg(long, requires = "cpu_keyed")]
    cpu_ledger: bool,
    /// Skip the CPU model.
    #[arg(long)]
    no_cpu_model: bool,
    /// The SAM template whose default FunctionMemorySize the CPU model also reports.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// A file whose size the report lists, as LABEL=PATH (repeatable).
    #[arg(long, value_name = "LABEL=PATH", value_parser = parse_artifact)]
    artifact: Vec<Artifact>,
    /// A line for the report's notices (repeatable).
    #[arg(long, value_name = "TEXT")]
    notice: Vec<String>,
    /// An extra environment variable for the function, as KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// `rustc --version` (printed in the report).
    #[arg(long, default_value = "")]
    rustc: String,
    /// Commit measured (printed in the report).
    #[arg(long, default_value = "")]
    commit: String,
}

fn parse_artifact(value: &str) -> Result<Artifact, String> {
    let (label, path) = value
        .split_once('=')
        .ok_or_else(|| format!("expected LABEL=PATH, got {value}"))?;
    let bytes = std::fs::metadata(path)
        .map_err(|e| format!("artifact {path}: {e}"))?
        .len();
    Ok(Artifact {
        label: label.to_owned(),
        path: path.to_owned(),
        bytes,
    })
}

fn parse_variant(value: &str) -> Result<(String, PathBuf), String> {
    value
        .split_once('=')
        .map(|(label, path)| (label.to_owned(), PathBuf::from(path)))
        .ok_or_else(|| format!("expected LABEL=PATH, got {value}"))
}

fn parse_store_mode(value: &str) -> Result<StoreMode, String> {
    match value {
        "alive" => Ok(StoreMode::KeepAlive),
        "close" => Ok(StoreMode::Close),
        other => Err(format!("expected alive or close, got {other}")),
    }
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {value}"))
}

impl Cli {
    /// The CPU-model configurations: every memory size with every period, the template's
    /// default memory size included.
    fn cpu_configs(&self, template_memory: Option<u32>) -> Vec<CpuConfig> {
        if self.no_cpu_model {
            return Vec::new();
        }
        let mut memories = match (self.cpu_memory.is_empty(), self.quick) {
            (false, _) => self.cpu_memory.clone(),
            (true, true) => vec![128],
            (true, false) => vec![128, 512, FULL_VCPU_MB],
        };
        if let Some(mb) = template_memory
            && !memories.contains(&mb)
        {
            memories.push(mb);
        }
        let periods = match (self.cpu_period_ms.is_empty(), self.quick) {
            (false, _) => self.cpu_period_ms.clone(),
            (true, true) => vec![20],
            (true, false) => vec![100, 20],
        };
        periods
            .iter()
            .flat_map(|&p| {
                memories.iter().map(move |&memory_mb| CpuConfig {
                    memory_mb,
                    period: Duration::from_millis(p),
                })
            })
            .collect()
    }

    fn into_settings(self) -> Result<Settings, BenchError> {
        let quick = self.quick;
        let count = |given: Option<NonZeroUsize>, full: usize, short: usize| {
            given.map_or(if quick { short } else { full }, NonZeroUsize::get)
        };
        let template_memory = if self.no_cpu_model {
            None
        } else {
            Some(template_memory(&self.template)?)
        };
        let cpu_configs = self.cpu_configs(template_memory);
        Ok(Settings {
            bootstrap: self.bootstrap,
            floor: self.floor,
            floor_post: self.floor_post,
            emulator: self.emulator,
            tls_start: self.tls_start,
            aws_lc_build: self.aws_lc_build,
            out: self.out,
            work: self.work.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("cloudbot-bench-{}", std::process::id()))
            }),
            quick,
            starts: count(self.starts, 20, 3),
            warm: count(self.warm, 1000, 100),
            sandboxes: count(self.sandboxes, 4, 2),
            per_sandbox: count(self.per_sandbox, 250, 20),
            latency: Duration::from_millis(self.latency_ms),
            injected_faults: self.injected_faults.unwrap_or(if quick { 2 } else { 5 }),
            queue_batches: count(self.queue_batches, 20, 3),
            artifacts: self.artifact,
            notices: self.notice,
            cpu_configs,
            template_memory,
            cpu_starts: count(self.cpu_starts, 5, 1),
            cpu_warm: count(self.cpu_warm, 100, 10),
            cpu_burst: count(self.cpu_burst, 100, 10),
            follow_runs: count(self.follow_runs, 10, 3),
            cpu_keyed: self.cpu_keyed,
            cpu_ledger: self.cpu_ledger,
            extra_env: self.env,
            rustc: self.rustc,
            commit: self.commit,
        })
    }
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let only_cold = cli.only_cold;
    let only_cpu = cli.only_cpu;
    let only_queue = cli.only_queue;
    let only_runs = cli.only_runs;
    let variants = std::mem::take(&mut cli.variant);
    let settings = match cli.into_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cloudbot-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let work = settings.work.clone();
    // Two workers: the harness's servers must answer promptly while the load test runs
    // several sandboxes; more threads than cores would only add scheduling noise.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloudbot-bench: cannot start tokio: {e}");
            return ExitCode::from(2);
        }
    };
    let run = async {
        if only_cold {
            harness::only_cold(settings).await
        } else if only_queue {
            harness::only_queue(settings).await
        } else if only_runs {
            harness::only_runs(settings).await
        } else if only_cpu {
            harness::only_cpu(settings, variants).await
        } else {
            harness::run(settings).await
        }
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudbot-bench: FAILED: {e}");
            eprintln!("cloudbot-bench: process logs kept in {}", work.display());
            ExitCode::FAILURE
        }
    }
}
