//! The benchmark run: the settings, the upstreams every scenario shares (the emulator process
//! and the counting Secrets Manager endpoint, from `cloudbot_testkit`), and the checks that no
//! job is lost or created twice. One file per scenario: cold init
//! (`cold`), first and warm invocations (`warm`), load (`load`), TLS provider start-up (`tls`),
//! the idempotency store (`store`), the run queue (`queue`), the CPU model (`cpu`) and, under
//! it, whole runs on both follow paths (`follow`).

mod cold;
mod cpu;
mod follow;
mod load;
mod queue;
mod store;
mod tls;
mod warm;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudbot_testkit::cgroup::{self, Controller};
use cloudbot_testkit::emulator::EmulatorProcess;
use cloudbot_testkit::function::{SECRET_ID, demo_secret, execute_event, function_env, job_id_of};
use cloudbot_testkit::runtime_api::ErrorReport;
use cloudbot_testkit::sandbox::Sandbox;
use cloudbot_testkit::secrets::SecretsEndpoint;

use crate::BenchError;
use crate::report::{Artifact, Machine, Report, write_report};

pub use cold::only_cold;
pub use cpu::{CpuConfig, FULL_VCPU_MB, StoreMode, only_cpu, template_memory};
pub use follow::{POLLS_PER_RUN, only_runs};
pub use queue::only_queue;

/// How long one invocation may take before the harness calls it lost.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run and where the figures go (the command line, resolved).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The function's bootstrap.
    pub bootstrap: PathBuf,
    /// The hello-world floor bootstrap.
    pub floor: PathBuf,
    /// The POST floor bootstrap (`floor-post`, CPU model only).
    pub floor_post: PathBuf,
    /// The `cloudbot-emulator` binary.
    pub emulator: PathBuf,
    /// The `tls-start` binary.
    pub tls_start: PathBuf,
    /// How aws-lc-sys was built (printed in the report).
    pub aws_lc_build: String,
    /// Report path.
    pub out: PathBuf,
    /// Folder for process logs.
    pub work: PathBuf,
    /// Short run (printed in the report).
    pub quick: bool,
    /// Cold starts of each binary.
    pub starts: usize,
    /// Warm invocations after the first.
    pub warm: usize,
    /// Sandboxes side by side in the load test.
    pub sandboxes: usize,
    /// Invocations per sandbox in the load test.
    pub per_sandbox: usize,
    /// Fixed latency the emulator adds to every API answer.
    pub latency: Duration,
    /// 503s injected before job creation in the load test.
    pub injected_faults: usize,
    /// Timed SQS batches per batch concurrency in the run queue scenario.
    pub queue_batches: usize,
    /// Files whose size the report lists.
    pub artifacts: Vec<Artifact>,
    /// Lines for the report's notices.
    pub notices: Vec<String>,
    /// CPU-model configurations (memory size × period); none = not run.
    pub cpu_configs: Vec<CpuConfig>,
    /// The SAM template's default memory size, marked in the CPU-model table.
    pub template_memory: Option<u32>,
    /// Starts per binary and CPU-model configuration.
    pub cpu_starts: usize,
    /// Warm invocations per CPU-model start.
    pub cpu_warm: usize,
    /// Events per back-to-back run of a CPU-model start.
    pub cpu_burst: usize,
    /// Whole runs per follow path and CPU-model start (issue 22's store calls per run).
    pub follow_runs: usize,
    /// `--only-cpu`: the stores every plain subject is also measured keyed on.
    pub cpu_keyed: Vec<StoreMode>,
    /// Keyed subjects also keep the run ledger (`CLOUDBOT_RUN_LEDGER_TABLE`, the template's
    /// default) on the same stand-in: one more `UpdateItem` per started run.
    pub cpu_ledger: bool,
    /// Extra environment variables for the function.
    pub extra_env: Vec<(String, String)>,
    /// `rustc --version`.
    pub rustc: String,
    /// Commit measured.
    pub commit: String,
}

/// The job id of a result that must be a successful execute, with the log tail otherwise.
fn expect_job(result: &Result<Bytes, ErrorReport>, sb: &Sandbox) -> Result<String, BenchError> {
    match result {
        Ok(body) => job_id_of(body),
        Err(e) => Err(BenchError::msg(format!(
            "function error {}: {}\nlog tail:\n{}",
            e.error_type,
            e.body,
            sb.log_tail()
        ))),
    }
}

/// No job lost or created twice: every result's job id is unique, the emulator created exactly
/// as many jobs as there were successful results, and it knows every id the function returned.
async fn check_jobs(
    what: &str,
    job_ids: &[String],
    jobs_created: u64,
    emulator: &EmulatorProcess,
) -> Result<(), BenchError> {
    let unique: HashSet<&String> = job_ids.iter().collect();
    if unique.len() != job_ids.len() {
        return Err(BenchError::msg(format!(
            "{what}: {} job ids returned twice",
            job_ids.len() - unique.len()
        )));
    }
    if jobs_created != job_ids.len() as u64 {
        return Err(BenchError::msg(format!(
            "{what}: emulator created {jobs_created} jobs for {} successful results",
            job_ids.len()
        )));
    }
    let known: HashSet<String> = emulator.job_ids().await?.into_iter().collect();
    if let Some(missing) = job_ids.iter().find(|id| !known.contains(*id)) {
        return Err(BenchError::msg(format!(
            "{what}: job {missing} returned but unknown to the emulator"
        )));
    }
    Ok(())
}

/// A run in progress: the settings and the upstreams the scenarios share.
struct Harness {
    settings: Settings,
    emulator: EmulatorProcess,
    secrets: SecretsEndpoint,
    env: Vec<(String, String)>,
    logs: usize,
}

impl Harness {
    /// The shared upstreams (emulator process, Secrets Manager endpoint) for `settings`.
    async fn start(settings: Settings) -> Result<Harness, BenchError> {
        std::fs::create_dir_all(&settings.work)?;
        let emulator =
            EmulatorProcess::spawn(&settings.emulator, &settings.work.join("emulator.log")).await?;
        let secrets = SecretsEndpoint::start(SECRET_ID, &demo_secret()).await?;
        let mut env = function_env(
            emulator.base_url(),
            &emulator.bot_endpoint(),
            &secrets.url(),
        );
        env.extend(settings.extra_env.iter().cloned());
        Ok(Harness {
            settings,
            emulator,
            secrets,
            env,
            logs: 0,
        })
    }

    /// Stops the emulator and removes the logs (kept only when a run fails).
    async fn finish(self) {
        let work = self.settings.work.clone();
        self.emulator.stop().await;
        let _ = std::fs::remove_dir_all(work);
    }

    fn log_path(&mut self, what: &str) -> PathBuf {
        self.logs += 1;
        self.settings
            .work
            .join(format!("{:04}-{what}.log", self.logs))
    }

    async fn spawn(&mut self, bin: &Path, what: &str) -> Result<Sandbox, BenchError> {
        let log = self.log_path(what);
        Sandbox::spawn(bin, &self.env, &log).await
    }
}

/// Whether the CPU model can run: `Ok(Err(why))` to skip it with a notice, an error under CI
/// (where the harness must prove the model works).
fn cpu_model_available(settings: &Settings) -> Result<Result<(), String>, BenchError> {
    if settings.cpu_configs.is_empty() {
        return Ok(Err("no configuration asked for".to_owned()));
    }
    match cgroup::available(Controller::Cpu) {
        Ok(()) => Ok(Ok(())),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => Err(BenchError::msg(format!(
            "the CPU model must run in CI: {why}"
        ))),
        Err(why) => Ok(Err(why)),
    }
}

fn require_binaries(bins: &[&Path]) -> Result<(), BenchError> {
    match bins.iter().find(|b| !b.is_file()) {
        Some(missing) => Err(BenchError::msg(format!(
            "{} not found: build it first (scripts/bench.sh does)",
            missing.display()
        ))),
        None => Ok(()),
    }
}

/// Runs every scenario and writes the report to `settings.out`.
pub async fn run(settings: Settings) -> Result<(), BenchError> {
    require_binaries(&[
        &settings.bootstrap,
        &settings.floor,
        &settings.emulator,
        &settings.tls_start,
    ])?;
    let mut h = Harness::start(settings).await?;
    let t0 = Instant::now();
    eprintln!("cold init: {} starts each", h.settings.starts);
    let cold = h.cold_init().await?;
    eprintln!(
        "TLS provider start-up: {} processes each",
        h.settings.starts
    );
    let tls = tls::tls_start(&h.settings).await?;
    eprintln!("warm: 1 + {} invocations (function)", h.settings.warm);
    let (warm, counts) = h.warm_function().await?;
    eprintln!("warm: 1 + {} invocations (floor)", h.settings.warm);
    let floor = h.warm_floor().await?;
    eprintln!(
        "idempotency store: {} starts each, 1 + {} keyed invocations",
        h.settings.starts, h.settings.warm
    );
    let store = h.store().await?;
    eprintln!(
        "load: {} sandboxes x {} invocations",
        h.settings.sandboxes, h.settings.per_sandbox
    );
    let load = h.load().await?;
    eprintln!(
        "run queue: {} batches at each batch concurrency",
        h.settings.queue_batches
    );
    let queue = h.queue().await?;
    let cpu = match cpu_model_available(&h.settings)? {
        Ok(()) => {
            let configs = h.settings.cpu_configs.clone();
            Some(h.cpu_model(&configs).await?)
        }
        Err(why) => {
            h.settings.notices.push(format!("CPU model not run: {why}"));
            None
        }
    };
    let s = &h.settings;
    let report = Report {
        machine: Machine::detect(&s.rustc, &s.commit),
        quick: s.quick,
        cold,
        warm,
        floor,
        tls,
        counts,
        load,
        cpu,
        store,
        queue,
        artifacts: s.artifacts.clone(),
        notices: s.notices.clone(),
        duration: t0.elapsed(),
    };
    write_report(&s.out, &report)?;
    eprintln!("wrote {}", s.out.display());
    h.finish().await;
    Ok(())
}
