//! Integration tests of the Cloud BOT client: against the in-process emulator (operations,
//! statuses, fault modes, retries, deadlines, connection reuse) and, for narrow wire-level cases
//! the emulator does not produce (415, Location header, echoed secrets), against wiremock.
//! Run with `cargo test --test it client`.
// Helpers outside #[test] functions are not covered by clippy.toml's allow-*-in-tests;
// they may unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deadline;
mod faults;
mod listing;
mod logs;
mod operations;
mod oversized;
mod secrets;
mod wire;
