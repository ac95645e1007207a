//! The one integration test binary: the Cloud BOT client and the Lambda handler, against the
//! project's emulator (and moto for Secrets Manager), and the bootstrap process frozen between
//! invocations.

mod client;
mod frozen;
mod https;
mod lambda;
mod repo;
mod support;
