//! cgroup v1 control groups for sandbox processes: the `freezer` controller pauses a process
//! the way Lambda freezes a sandbox between invocations, the `cpu` controller throttles it the
//! way Lambda shares a vCPU by memory size (see docs/benchmarks.md, "CPU model").
//!
//! Each group is created under `/sys/fs/cgroup/<controller>/` with a name unique to this process
//! and removed when dropped (its processes are moved back to the root group first, since a
//! group with members cannot be removed). Needs root and the v1 hierarchy; [`available`] says
//! whether this machine has both.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::Error;

const ROOT: &str = "/sys/fs/cgroup";

/// A cgroup v1 controller a sandbox is put under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// `freezer`: `freezer.state` FROZEN / THAWED.
    Freezer,
    /// `cpu`: CFS bandwidth (`cpu.cfs_quota_us` per `cpu.cfs_period_us`).
    Cpu,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Freezer => "freezer",
            Controller::Cpu => "cpu",
        }
    }

    fn root(self) -> PathBuf {
        Path::new(ROOT).join(self.name())
    }
}

/// Whether groups of `controller` can be created here; `Err` says why not.
pub fn available(controller: Controller) -> Result<(), String> {
    let root = controller.root();
    if !root.join("cgroup.procs").is_file() {
        return Err(format!(
            "no cgroup v1 {} hierarchy at {}",
            controller.name(),
            root.display()
        ));
    }
    match Cgroup::create(controller) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot create a {} cgroup (needs root): {e}",
            controller.name()
        )),
    }
}

/// One control group; removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    controller: Controller,
    path: PathBuf,
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    std::fs::write(path, value)
        .map_err(|e| Error::msg(format!("write {value:?} to {}: {e}", path.display())))
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| Error::msg(format!("read {}: {e}", path.display())))
}

impl Cgroup {
    /// A new, empty group of `controller` (unthrottled / thawed).
    pub fn create(controller: Controller) -> Result<Cgroup, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = controller
            .root()
            .join(format!("cloudbot-testkit-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)
            .map_err(|e| Error::msg(format!("mkdir {}: {e}", path.display())))?;
        Ok(Cgroup { controller, path })
    }

    /// The group's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves process `pid` (all its threads) into the group.
    pub fn add(&self, pid: u32) -> Result<(), Error> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// Freezes every process of the group and waits until the kernel reports them frozen.
    pub fn freeze(&self) -> Result<(), Error> {
        self.set_freezer("FROZEN")
    }

    /// Thaws the group and waits until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<(), Error> {
        self.set_freezer("THAWED")
    }

    fn set_freezer(&self, target: &str) -> Result<(), Error> {
        if self.controller != Controller::Freezer {
            return Err(Error::msg("freeze/thaw needs a freezer cgroup"));
        }
        let state = self.path.join("freezer.state");
        write(&state, target)?;
        // FREEZING is transitional: the kernel moves to FROZEN once every task has stopped.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if read(&state)? == target {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::msg(format!(
                    "{} did not reach {target}",
                    state.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Limits the group to `quota` of CPU time per `period` (CFS bandwidth control).
    pub fn set_cpu_quota(&self, quota: Duration, period: Duration) -> Result<(), Error> {
        if self.controller != Controller::Cpu {
            return Err(Error::msg("a CPU quota needs a cpu cgroup"));
        }
        let us = |d: Duration| d.as_micros().to_string();
        // The period first: a quota is checked against the period in effect.
        write(&self.path.join("cpu.cfs_period_us"), &us(period))?;
        write(&self.path.join("cpu.cfs_quota_us"), &us(quota))
    }

    /// Total CPU time the group's processes have used (`cpuacct.usage`, when the `cpu` and
    /// `cpuacct` controllers share a hierarchy), or `None`.
    pub fn cpu_usage(&self) -> Option<Duration> {
        read(&self.path.join("cpuacct.usage"))
            .ok()?
            .parse::<u64>()
            .ok()
            .map(Duration::from_nanos)
    }

    /// How often and how long the group was throttled (`cpu.stat`): periods throttled, total.
    pub fn throttled(&self) -> Option<(u64, Duration)> {
        let stat = read(&self.path.join("cpu.stat")).ok()?;
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Some((
            field("nr_throttled ")?,
            Duration::from_nanos(field("throttled_time ")?),
        ))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A frozen member could not be moved or killed cleanly: thaw first.
        if self.controller == Controller::Freezer {
            let _ = std::fs::write(self.path.join("freezer.state"), "THAWED");
        }
        let root_procs = self.controller.root().join("cgroup.procs");
        if let Ok(procs) = std::fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in procs.split_whitespace() {
                let _ = std::fs::write(&root_procs, pid);
            }
        }
        if let Err(e) = std::fs::remove_dir(&self.path) {
            eprintln!("cgroup: could not remove {}: {e}", self.path.display());
        }
    }
}
