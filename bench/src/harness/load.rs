//! The load test: N sandboxes side by side × M executes each, with 503s injected before job
//! creation; every job accounted for afterwards.

use std::time::Instant;

use cloudbot_emulator::{DEMO_PUBLIC_ID, FaultKind, FaultRule};
use tokio::task::JoinSet;

use super::{Harness, INVOKE_TIMEOUT, check_jobs, execute_event, job_id_of};
use crate::BenchError;
use crate::report::Load;
use crate::stats::Summary;
use cloudbot_testkit::runtime_api::Outcome;
use cloudbot_testkit::sandbox::Sandbox;

/// Error types the load test may see because it injected them: a 503 answered before any job
/// exists. The function may classify a 503 on execute as `Unavailable` or, conservatively (a 503
/// from a proxy may come after the job started), as `OutcomeUnknown`; both are accepted here,
/// and the job accounting still proves no job was created for them.
const INJECTED_ERROR_TYPES: [&str; 2] = ["CloudBot.Unavailable", "CloudBot.OutcomeUnknown"];

/// What the sandboxes' answers add up to.
struct Tally {
    job_ids: Vec<String>,
    injected: usize,
    latencies: Vec<std::time::Duration>,
    peak_rss_kib: u64,
}

impl Harness {
    /// Runs the load test.
    pub(super) async fn load(&mut self) -> Result<Load, BenchError> {
        self.fresh_upstreams().await?;
        let sandboxes = self.load_sandboxes().await?;
        let injected_faults = self.settings.injected_faults;
        self.inject_faults(injected_faults).await?;
        let per = self.settings.per_sandbox;
        let endpoint = self.emulator.bot_endpoint();
        let started = Instant::now();
        let finished = drive(sandboxes, per, &endpoint).await?;
        let wall = started.elapsed();
        let tally = tally(&finished)?;
        for (sb, _) in finished {
            sb.stop().await?;
        }
        let injected = tally.injected;
        if injected > injected_faults {
            return Err(BenchError::msg(format!(
                "load: {injected} errors of the injected types but only {injected_faults} faults injected"
            )));
        }
        let stats = self.emulator.admin().stats().await?;
        check_jobs("load", &tally.job_ids, stats.jobs_created, &self.emulator).await?;
        Ok(Load {
            sandboxes: self.settings.sandboxes,
            per_sandbox: per,
            wall,
            succeeded: tally.job_ids.len(),
            injected_faults,
            injected_errors: injected,
            unexpected_errors: 0,
            jobs_created: stats.jobs_created,
            secret_fetches: self.secrets.get_secret_value_calls(),
            api_connections: self.emulator.api_connections().await?,
            latency: Summary::of(&tally.latencies).ok_or_else(|| BenchError::msg("no samples"))?,
            peak_rss_kib: tally.peak_rss_kib,
        })
    }

    /// The load test's sandboxes, each past its cold start.
    async fn load_sandboxes(&mut self) -> Result<Vec<Sandbox>, BenchError> {
        let bootstrap = self.settings.bootstrap.clone();
        let mut sandboxes = Vec::with_capacity(self.settings.sandboxes);
        for _ in 0..self.settings.sandboxes {
            let mut sb = self.spawn(&bootstrap, "function-load").await?;
            sb.cold_init().await?;
            sandboxes.push(sb);
        }
        Ok(sandboxes)
    }

    /// Makes the emulator answer the next `n` executes with a 503 before it creates a job.
    async fn inject_faults(&self, n: usize) -> Result<(), BenchError> {
        if n > 0 {
            // A 503 answered before the emulator creates a job: the function may retry it or
            // report CloudBot.Unavailable, but must never lose or duplicate a job because of it.
            let rule = FaultRule::new(FaultKind::Status)
                .status(503)
                .method("POST")
                .path_prefix(&format!("/{DEMO_PUBLIC_ID}/bots"))
                .times(u32::try_from(n).unwrap_or(u32::MAX));
            self.emulator.admin().add_faults([rule]).await?;
        }
        Ok(())
    }
}

/// Sends `per` executes to each sandbox, one after another, all sandboxes side by side.
async fn drive(
    sandboxes: Vec<Sandbox>,
    per: usize,
    endpoint: &str,
) -> Result<Vec<(Sandbox, Vec<Outcome>)>, BenchError> {
    // Each sandbox is driven by its own task; a failing one aborts the others (and their
    // processes, which are killed on drop) when the set is dropped.
    let count = sandboxes.len();
    let mut runs = JoinSet::new();
    for (i, sb) in sandboxes.into_iter().enumerate() {
        let events: Vec<_> = (0..per)
            .map(|n| execute_event(endpoint, i * per + n))
            .collect();
        runs.spawn(async move {
            let mut results = Vec::with_capacity(per);
            for event in events {
                results.push(sb.api.invoke(event, INVOKE_TIMEOUT).await?);
            }
            Ok::<(Sandbox, Vec<Outcome>), BenchError>((sb, results))
        });
    }
    let mut finished = Vec::with_capacity(count);
    while let Some(joined) = runs.join_next().await {
        let run = joined.map_err(|e| BenchError::msg(format!("load task: {e}")))?;
        finished.push(run?);
    }
    Ok(finished)
}

/// Adds up the answers: job ids, injected errors, latencies, the highest peak RSS; any other
/// function error fails the run with the sandbox's log tail.
fn tally(finished: &[(Sandbox, Vec<Outcome>)]) -> Result<Tally, BenchError> {
    let mut tally = Tally {
        job_ids: Vec::new(),
        injected: 0,
        latencies: Vec::new(),
        peak_rss_kib: 0,
    };
    for (sb, results) in finished {
        for o in results {
            tally.latencies.push(o.elapsed());
            match &o.result {
                Ok(body) => tally.job_ids.push(job_id_of(body)?),
                Err(e) if INJECTED_ERROR_TYPES.contains(&e.error_type.as_str()) => {
                    tally.injected += 1
                }
                Err(e) => {
                    return Err(BenchError::msg(format!(
                        "load: unexpected function error {}: {}\nlog tail:\n{}",
                        e.error_type,
                        e.body,
                        sb.log_tail()
                    )));
                }
            }
        }
        tally.peak_rss_kib = tally.peak_rss_kib.max(sb.peak_rss_kib()?);
    }
    Ok(tally)
}
