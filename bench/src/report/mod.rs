//! BENCHMARKS.md: what one run measured ([`Report`] and its parts), rendered as markdown tables
//! with the budget verdicts ([`render`]) and the machine the figures come from ([`Machine`]).

mod cpu;
mod machine;
mod queue;
mod render;
mod runs;
mod store;

use std::path::Path;
use std::time::Duration;

use crate::BenchError;
use crate::stats::Summary;

pub use cpu::{
    BUDGET_COLD_CPU_RATIO, BUDGET_COLD_SHARE_RATIO, BUDGET_FIRST_CPU, BUDGET_STORE_CPU,
    BUDGET_WARM_CPU_RATIO,
};
pub use machine::Machine;
pub use queue::{QueueFigures, QueueRow, queue_section};
pub use render::{
    BUDGET_COLD_RATIO, BUDGET_RSS_MIB, BUDGET_WARM_P99_OVERHEAD, BUDGET_ZIP_MIB, render,
};
pub use runs::follow_paths;
pub use store::{BUDGET_COLD_DELTA, BUDGET_WRITES, StoreFigures};

/// Scenario 1.
#[derive(Debug, Clone)]
pub struct ColdInit {
    /// Spawn → first GET /next of the function.
    pub function: Summary,
    /// The same for the floor.
    pub floor: Summary,
    /// Highest VmHWM of the function right after init, KiB.
    pub function_rss_kib: u64,
    /// Highest VmHWM of the floor right after init, KiB.
    pub floor_rss_kib: u64,
}

/// Scenario 2 (+ the function's peak RSS over the warm run).
#[derive(Debug, Clone)]
pub struct Warm {
    /// First invocation (first API connection; the secret is fetched during init).
    pub first: Duration,
    /// Warm invocations.
    pub warm: Summary,
    /// The same execute made directly with a keep-alive hyper client.
    pub direct: Summary,
    /// Fixed latency the emulator added to each API response.
    pub latency: Duration,
    /// VmHWM of the function after the warm run, KiB.
    pub peak_rss_kib: u64,
}

/// The floor's invocations (echo, no upstream: the Runtime API round trip alone).
#[derive(Debug, Clone)]
pub struct FloorWarm {
    /// First invocation.
    pub first: Duration,
    /// Warm invocations.
    pub warm: Summary,
    /// VmHWM after the warm run, KiB.
    pub peak_rss_kib: u64,
}

/// Scenario 5.
#[derive(Debug, Clone)]
pub struct Counts {
    /// Invocations counted (first + warm).
    pub invocations: usize,
    /// GetSecretValue calls.
    pub secret_fetches: u64,
    /// Other Secrets Manager calls (expected 0).
    pub other_secret_calls: u64,
    /// Distinct TCP connections that carried Cloud BOT API requests.
    pub api_connections: u64,
    /// The emulator's raw `connections_accepted` (includes the harness's admin connections).
    pub connections_accepted_raw: u64,
    /// Jobs the emulator created.
    pub jobs_created: u64,
    /// EMF metrics records the function wrote (one per invocation).
    pub metrics_records: u64,
}

/// The load test.
#[derive(Debug, Clone)]
pub struct Load {
    /// Sandboxes (processes) side by side.
    pub sandboxes: usize,
    /// Invocations per sandbox.
    pub per_sandbox: usize,
    /// Wall time from the first event handed out to the last answer.
    pub wall: Duration,
    /// Successful execute results.
    pub succeeded: usize,
    /// 503 faults injected before job creation.
    pub injected_faults: usize,
    /// Function errors caused by injected faults.
    pub injected_errors: usize,
    /// Any other function error (the run fails before reporting if not 0).
    pub unexpected_errors: usize,
    /// Jobs the emulator created.
    pub jobs_created: u64,
    /// GetSecretValue calls during the load test.
    pub secret_fetches: u64,
    /// Distinct API connections during the load test.
    pub api_connections: u64,
    /// Per-invocation latency under load.
    pub latency: Summary,
    /// Highest VmHWM among the sandboxes, KiB.
    pub peak_rss_kib: u64,
}

/// First-use cost of one crypto provider (`tls-start`).
#[derive(Debug, Clone)]
pub struct TlsProvider {
    /// `aws-lc` or `ring`.
    pub name: String,
    /// First ephemeral X25519 key generation in a fresh process.
    pub first: Summary,
    /// The second one (steady state).
    pub second: Summary,
}

/// The TLS provider start-up scenario.
#[derive(Debug, Clone)]
pub struct TlsStart {
    /// How aws-lc-sys was built (jitter entropy on/off), as scripts/bench.sh saw it.
    pub aws_lc_build: String,
    /// One entry per provider.
    pub providers: Vec<TlsProvider>,
}

/// What one binary measured under one CPU-model configuration (over every start).
#[derive(Debug, Clone)]
pub struct CpuFigures {
    /// Spawn → first poll (unthrottled, as the model's init phase).
    pub cold_init: Summary,
    /// The first invocation (throttled): first API connection, and whatever init left undone.
    pub first: Summary,
    /// Cold init + first invocation of each start: what a cold caller waits for.
    pub cold_total: Summary,
    /// CPU time of the process up to its first poll (init, unthrottled).
    pub init_cpu: Summary,
    /// Init CPU + first-invocation CPU of each start: the cold start's whole CPU.
    pub cold_cpu: Summary,
    /// CPU time of the first invocation, up to the next poll.
    pub first_cpu: Summary,
    /// Time the sandbox's group was throttled during the first invocation (`cpu.stat`).
    pub first_throttled: Summary,
    /// Starts whose first invocation was throttled at all (stalled for part of a period).
    pub first_stalled: usize,
    /// Warm invocations, one at a time.
    pub warm: Summary,
    /// CPU time of each warm invocation, measured as [`CpuFigures::first_cpu`].
    pub warm_cpu: Summary,
    /// Events per second of a back-to-back run (median over starts).
    pub throughput: f64,
    /// CFS periods in which the group was throttled, over every start.
    pub throttled_periods: u64,
    /// What the subject's DynamoDB stand-in answered over every start (zero without a store).
    pub store_calls: cloudbot_testkit::dynamodb::StoreCalls,
    /// Starts measured.
    pub starts: usize,
    /// Events over every start (first, warm and back-to-back ones).
    pub events: usize,
}

/// One memory size and period of the CPU model, function and floor side by side.
#[derive(Debug, Clone)]
pub struct CpuRow {
    /// Function memory (MB).
    pub memory_mb: u32,
    /// CFS period.
    pub period: Duration,
    /// CPU time per period in the invoke phase.
    pub quota: Duration,
    /// The SAM template's default memory size.
    pub template_default: bool,
    /// cloudbot-trigger.
    pub function: CpuFigures,
    /// lambda-floor.
    pub floor: CpuFigures,
    /// cloudbot-trigger, keyed executes, the table on a stand-in that keeps its connections.
    pub keyed_alive: CpuFigures,
    /// cloudbot-trigger, keyed executes, the table on a stand-in that closes every connection.
    pub keyed_close: CpuFigures,
    /// floor-post: the plain execute's HTTPS POST alone (the warm-CPU budget's floor).
    pub floor_post: CpuFigures,
    /// cloudbot-trigger, keyed executes with the run ledger too (the template's default
    /// stores), on the stand-in that keeps its connections.
    pub keyed_ledger: CpuFigures,
}

/// The CPU-model scenario.
#[derive(Debug, Clone)]
pub struct CpuModel {
    /// One row per configuration.
    pub rows: Vec<CpuRow>,
    /// The emulator's execute as a direct keep-alive client sees it (the upstream's own time).
    pub direct: Summary,
    /// Fixed latency the emulator added.
    pub latency: Duration,
    /// Fixed latency of the DynamoDB stand-ins' answers.
    pub store_latency: Duration,
    /// Starts per binary and configuration.
    pub starts: usize,
    /// Warm invocations per start.
    pub warm: usize,
    /// Events per back-to-back run.
    pub burst: usize,
    /// Whole runs on each follow path, one row per configuration (issue 22).
    pub follow: Vec<FollowRow>,
}

/// One path's runs under one CPU-model configuration: CPU per step (event handed out → next
/// poll) and the store calls of its timed runs, per table.
#[derive(Debug, Clone)]
pub struct FollowPath {
    /// The execute that starts a run.
    pub execute: Summary,
    /// Each poll that finds the job running (`None` on the callback path).
    pub poll: Option<Summary>,
    /// What learns the end: the poll that sees it, or the callback's delivery.
    pub end: Summary,
    /// A whole run's CPU (its steps summed), per run.
    pub run: Summary,
    /// Calls on the idempotency table (records and callbacks) over every run.
    pub idempotency: cloudbot_testkit::dynamodb::StoreCalls,
    /// Calls on the run ledger over every run.
    pub ledger: cloudbot_testkit::dynamodb::StoreCalls,
    /// Step Functions tasks told over every run.
    pub tasks_told: u64,
}

/// The follow paths under one CPU-model configuration.
#[derive(Debug, Clone)]
pub struct FollowRow {
    /// Function memory (MB).
    pub memory_mb: u32,
    /// CFS period.
    pub period: Duration,
    /// Runs per path (every start).
    pub runs: usize,
    /// Polls per polled run while its job runs.
    pub polls_per_run: u64,
    /// No store: execute, polls, the poll that sees the end.
    pub plain: FollowPath,
    /// The same keyed, with the idempotency table and the run ledger.
    pub polled: FollowPath,
    /// The same stores and callbacks: an execute with a task token, the callback's delivery.
    pub callback: FollowPath,
}

/// A measured artifact.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// e.g. `x86_64 zip`.
    pub label: String,
    /// Path as given.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Machine info.
    pub machine: Machine,
    /// `--quick` run (few samples).
    pub quick: bool,
    /// Scenario 1.
    pub cold: ColdInit,
    /// Scenario 2.
    pub warm: Warm,
    /// The floor's invocations (echo, no upstream).
    pub floor: FloorWarm,
    /// TLS provider start-up.
    pub tls: TlsStart,
    /// Scenario 5.
    pub counts: Counts,
    /// Load test.
    pub load: Load,
    /// The Lambda CPU model (`None` when this machine cannot run it: see the notices).
    pub cpu: Option<CpuModel>,
    /// Scenario 6: the idempotency store.
    pub store: StoreFigures,
    /// Scenario 7: the run queue.
    pub queue: QueueFigures,
    /// Scenario 4.
    pub artifacts: Vec<Artifact>,
    /// Notices (e.g. arm64 target missing).
    pub notices: Vec<String>,
    /// How long the harness ran.
    pub duration: Duration,
}

/// Writes the rendered report to `path`.
pub fn write_report(path: &Path, r: &Report) -> Result<(), BenchError> {
    std::fs::write(path, render(r))?;
    Ok(())
}
