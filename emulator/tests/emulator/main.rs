//! The emulator's integration tests (one binary): every endpoint and status, faults,
//! callbacks, admin API, seeds and the CLI.
