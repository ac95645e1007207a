//! Integration tests of the Cloud BOT client against the emulator.
