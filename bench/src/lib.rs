//! Benchmark harness for cloudbot-trigger: the scenarios, statistics and the markdown report,
//! run on the test platform of `cloudbot_testkit` (sandboxes with their Lambda Runtime API, the
//! counting Secrets Manager and DynamoDB stand-ins, the emulator as an upstream process, cgroups
//! for the CPU model). The `cloudbot-bench` binary parses its command line and runs
//! [`harness::run`]; `lambda-floor` is the hello-world bootstrap everything is compared with;
//! `tls-start` times the TLS providers' start-up. See docs/benchmarks.md.

pub mod harness;
pub mod report;
pub mod stats;

/// Any benchmark failure: setup, a process that did not start, an unexpected answer. The test
/// platform's error, so a failure of a sandbox or a stand-in passes through unchanged. A
/// benchmark fails only on such functional breakage, never on slow timings.
pub use cloudbot_testkit::Error as BenchError;
