//! The emulator's integration tests (one binary): every endpoint and status, faults,
//! callbacks, the admin API, seeds, runtimes and the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod api;
mod callbacks;
mod cli;
mod faults;
mod runtime;
mod seeds;
mod support;
