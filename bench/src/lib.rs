//! Benchmark harness for cloudbot-trigger.
