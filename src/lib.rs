//! cloudbot-trigger: start Cloud BOT (c-bot.pro) BOTs from AWS Lambda.
//!
//! The library holds everything testable; `main.rs` only wires it to the Lambda runtime.

pub mod cloudbot;
