//! The floor: a hello-world `lambda_runtime` bootstrap built with the same release profile as
//! `cloudbot-trigger`. Cold init, warm overhead and peak RSS of the function are reported as
//! ratios to this binary, so it must stay as small as the runtime allows: no config, no clients,
//! no logging subscriber; it echoes the event back.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Echoes the invocation payload, the least work a handler can do.
async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

// Same runtime flavor as the function's `main` (see src/main.rs) so the floor differs from the
// function only by what the function does, not by how many worker threads tokio spawns.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(echo)).await
}
