//! The emulator's integration tests (one binary): every endpoint and status, faults,
//! callbacks, the admin API, seeds, runtimes and the CLI.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests;
// they may unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod api;
mod callback_hold;
mod callbacks;
mod cli;
mod faults;
mod idle;
mod runtime;
mod scripted_outcomes;
mod seeds;
mod subscriptions;
mod support;
mod tls;
