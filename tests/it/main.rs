//! The one integration test binary: the Cloud BOT client and the Lambda handler, against the
//! project's emulator (and moto for Secrets Manager and DynamoDB), the idempotency store adapter
//! and the run ledger's adapter against moto, and the bootstrap process frozen between invocations.

mod client;
mod frozen;
mod https;
mod lambda;
mod ledger;
mod repo;
mod store;
mod store_warm_up;
mod support;
