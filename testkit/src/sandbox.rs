//! One "sandbox": a bootstrap process spawned with a Lambda-like environment and its own
//! Runtime API server, as the Lambda service runs one process per execution environment.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::Error;
use crate::runtime_api::RuntimeApi;

/// How long a bootstrap may take to reach its first `GET /next` before the start counts as failed.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A spawned bootstrap with its Runtime API. Dropping it kills the process.
pub struct Sandbox {
    /// The sandbox's Runtime API server.
    pub api: RuntimeApi,
    child: Child,
    /// When `spawn` was called (just before fork/exec).
    pub spawned: Instant,
    log: PathBuf,
}

impl Sandbox {
    /// Spawns `bootstrap` with a cleared environment plus `env`, pointing it at a fresh
    /// Runtime API server. stdout and stderr go to `log` (like CloudWatch's pipe, not a tty).
    pub async fn spawn(
        bootstrap: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self, Error> {
        let api = RuntimeApi::start().await?;
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(bootstrap);
        // Start from an empty environment so nothing from the developer's shell (AWS_PROFILE,
        // RUST_LOG, proxies...) changes what is measured; Lambda also gives a fixed set.
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| Error::msg(format!("cannot start {}: {e}", bootstrap.display())))?;
        Ok(Self {
            api,
            child,
            spawned,
            log: log.to_owned(),
        })
    }

    /// Waits for the first `GET /next` and returns the cold-init time (spawn → first poll).
    /// Fails if the process exits, posts an init error or does not poll within [`INIT_TIMEOUT`].
    pub async fn cold_init(&mut self) -> Result<Duration, Error> {
        let spawned = self.spawned;
        let log = self.log.clone();
        tokio::select! {
            r = self.api.first_poll() => match r {
                Ok(at) => Ok(at.saturating_duration_since(spawned)),
                Err(report) => Err(Error::msg(format!(
                    "init error {}: {} (log: {})", report.error_type, report.body, log.display()
                ))),
            },
            status = self.child.wait() => Err(Error::msg(format!(
                "bootstrap exited before polling: {status:?}; log tail:\n{}", log_tail(&log)
            ))),
            _ = tokio::time::sleep(INIT_TIMEOUT) => Err(Error::msg(format!(
                "no GET /next within {INIT_TIMEOUT:?}; log tail:\n{}", log_tail(&log)
            ))),
        }
    }

    /// The process id (`None` once reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// CPU time the process has used so far (all threads).
    pub fn cpu_time(&self) -> Result<Duration, Error> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| Error::msg("process already reaped"))?;
        cpu_time(pid)
    }

    /// Peak resident set size so far (`VmHWM` from /proc/<pid>/status), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64, Error> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| Error::msg("process already reaped"))?;
        peak_rss_kib(pid)
    }

    /// EMF metrics records (JSON lines with `"_aws"`) the process wrote to stdout so far.
    pub fn metrics_records(&self) -> Result<u64, Error> {
        let log = std::fs::read_to_string(&self.log)?;
        Ok(log
            .lines()
            .filter(|l| l.starts_with('{') && l.contains("\"_aws\":"))
            .count() as u64)
    }

    /// Last lines of the process log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Kills the process and reaps it.
    pub async fn stop(mut self) -> Result<(), Error> {
        // SIGKILL: the runtime is parked in GET /next; Lambda also freezes/kills it without notice.
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        Ok(())
    }
}

/// CPU time a live process has used so far, all threads (`/proc/<pid>/task/*/schedstat`,
/// nanoseconds; `/proc/<pid>/stat` counts in clock ticks, too coarse for one invocation).
pub fn cpu_time(pid: u32) -> Result<Duration, Error> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))?;
    let mut total = 0u64;
    for task in tasks {
        let path = task?.path().join("schedstat");
        // A thread that ended between the listing and the read has nothing left to count.
        let Ok(stat) = std::fs::read_to_string(&path) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .ok_or_else(|| Error::msg(format!("unreadable {}", path.display())))?;
    }
    Ok(Duration::from_nanos(total))
}

/// `VmHWM` of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| Error::msg(format!("no VmHWM in /proc/{pid}/status")))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(6);
    lines[from..].join("\n")
}
