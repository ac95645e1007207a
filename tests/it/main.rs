//! The one integration test binary: the Cloud BOT client and the Lambda handler, against the
//! project's emulator (and moto for Secrets Manager and DynamoDB), the idempotency store adapter,
//! the run ledger's and the job-finished events' adapters against moto, and the bootstrap
//! process frozen between invocations.

mod client;
mod frozen;
mod https;
mod job_events;
mod lambda;
mod lean_store;
mod ledger;
mod repo;
mod store;
mod store_warm_up;
mod support;
