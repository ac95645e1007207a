//! Benchmark harness for cloudbot-trigger: a Lambda Runtime API server the harness controls,
//! a counting Secrets Manager endpoint, sandbox (process) management, statistics and the
//! markdown report. The `cloudbot-bench` binary drives the scenarios; `lambda-floor` is the
//! hello-world bootstrap everything is compared with. See docs/benchmarks.md.

pub mod emulator;
pub mod report;
pub mod runtime_api;
pub mod sandbox;
pub mod secrets;
pub mod stats;

use std::fmt;

/// Any harness failure: setup, a process that did not start, an unexpected answer.
/// A benchmark fails only on such functional breakage, never on slow timings.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    /// An error with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        Self(format!("I/O: {e}"))
    }
}

impl From<serde_json::Error> for BenchError {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("JSON: {e}"))
    }
}
