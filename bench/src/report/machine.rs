//! The machine a run's figures come from, as /proc describes it.

/// Where the figures were measured.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available to the harness.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory, MiB.
    pub mem_mib: u64,
    /// `rustc --version` (passed in by scripts/bench.sh).
    pub rustc: String,
    /// Git commit measured (passed in by scripts/bench.sh).
    pub commit: String,
    /// UTC date and time of the run.
    pub date: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute load averages when the report is written (other
    /// work on the machine makes every timing noisier).
    pub load: String,
}

impl Machine {
    /// Reads what /proc tells about this machine.
    pub fn detect(rustc: &str, commit: &str) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let mem_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kib| kib / 1024)
            .unwrap_or_default();
        Self {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu,
            kernel,
            mem_mib,
            rustc: rustc.to_owned(),
            commit: commit.to_owned(),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            load: std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
                .unwrap_or_else(|_| "unknown".to_owned()),
        }
    }
}
