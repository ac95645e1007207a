//! cloudbot-trigger: start Cloud BOT (c-bot.pro) BOTs from AWS Lambda.
//!
//! The library holds everything testable; `main.rs` only wires it to the Lambda runtime.

pub mod callback;
pub mod cloudbot;
pub mod config;
pub mod credentials;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod payload;
pub mod request;
pub mod sdk;
pub mod service;
pub mod table;
pub mod telemetry;
pub mod trigger;
