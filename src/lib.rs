//! cloudbot-trigger: start Cloud BOT (c-bot.pro) BOTs from AWS Lambda.
//!
//! The library holds everything testable; `main.rs` only wires it to the Lambda runtime. Every
//! file opens with a header saying what it is responsible for, and every folder's `mod.rs` lists
//! its files, so the headers are the map. Top down (a module uses only those below it):
//!
//! - `service/`: one invocation from event to answer, one file per flow.
//! - `trigger/`: the event shapes, decoded into a [`request::Request`] and answered per trigger.
//! - `telemetry`, `payload`: logs and spans; the raw payload and the one JSON parser.
//! - `error/`: the error table and the one place failures become Lambda and HTTP errors.
//! - `request/`: the one logical request and its validation.
//! - `callback/`, `idempotency/`: callback-driven runs; exactly-once execute.
//! - `bot_done`: Cloud BOT's "BOT done" webhook for runs started outside AWS (its URL and token).
//! - `ledger/`: the run ledger, one record per BOT run (issue 22).
//! - `orphans`: the jobs of workflows that failed, timed out or were stopped (issue 22).
//! - `usage/`: BOT-seconds per contract and month, and the budget guard (issue 22).
//! - `schedule`: a managed schedule's tick and the decision at fire time (issue 21).
//! - `config/`, `credentials/`, `table`: environment variables; the secret; the shared table.
//! - `cloudbot/`, `sdk`, `metrics`: the Cloud BOT client; the AWS SDK set-up; EMF metrics.

pub mod admission;
pub mod bot_done;
pub mod callback;
pub mod cloudbot;
pub mod config;
pub mod credentials;
pub mod error;
pub mod idempotency;
pub mod job_events;
pub mod ledger;
pub mod metrics;
pub mod orphans;
pub mod overrun;
pub mod payload;
pub mod request;
pub mod rerun;
pub mod schedule;
pub mod sdk;
pub mod service;
pub mod table;
pub mod telemetry;
pub mod tls_roots;
pub mod trigger;
pub mod usage;
