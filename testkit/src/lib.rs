//! The process-level test platform of cloudbot-trigger: the function's bootstrap run as Lambda
//! runs it, against local stand-ins, for the integration tests (`tests/it`), the arm64 smoke run
//! (`arm64-smoke`) and the benchmark (`bench/`). A sandbox (`sandbox`) is one bootstrap process
//! with its own Lambda Runtime API server (`runtime_api`); the environment Lambda gives it and
//! the events it is sent live in `function`; Secrets Manager, DynamoDB and Step Functions are
//! counting stand-ins (`secrets`, `dynamodb` with `dynamodb_items` for kept items,
//! `step_functions`) on one server loop (`server`); the expected store calls of a run, shared
//! by the behaviour test and the benchmark, are `run_calls`; the Cloud BOT emulator runs as its own
//! process (`emulator`); cgroup v1 groups freeze or throttle a sandbox (`cgroup`).

pub mod cgroup;
pub mod dynamodb;
pub mod dynamodb_items;
pub mod emulator;
pub mod function;
pub mod run_calls;
pub mod runtime_api;
pub mod sandbox;
pub mod secrets;
pub mod server;
pub mod step_functions;

use std::fmt;

/// Any failure of the test platform: setup, a process that did not start, an unexpected answer.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self(format!("I/O: {e}"))
    }
}

impl From<cloudbot_emulator::AdminError> for Error {
    fn from(e: cloudbot_emulator::AdminError) -> Self {
        // The whole chain: the admin error names the route, its source says what went wrong.
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        Self(msg)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("JSON: {e}"))
    }
}
