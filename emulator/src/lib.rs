//! Stateful local emulator of the Cloud BOT REST API.
