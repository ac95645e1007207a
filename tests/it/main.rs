//! The one integration test binary: the Cloud BOT client and the Lambda handler, against the
//! project's emulator (and moto for Secrets Manager).

mod client;
mod lambda;
mod repo;
mod support;
