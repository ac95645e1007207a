//! Helpers shared by the integration tests (starting the emulator, moto, ...).
