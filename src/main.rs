//! Lambda entry point: wires tracing, configuration, the shared clients and the handler to
//! `lambda_runtime`. Everything else lives in the library so tests can reach it.
//!
//! A current-thread runtime: one sandbox serves one invocation at a time, so a multi-threaded
//! scheduler only adds start-up work and binary size.

use cloudbot_trigger::config::Config;
use cloudbot_trigger::payload::Payload;
use cloudbot_trigger::sdk;
use cloudbot_trigger::service::Service;
use cloudbot_trigger::telemetry;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config =
        Config::from_env().inspect_err(|err| tracing::error!(error = %err, "cannot start"))?;
    let extra_roots = config
        .test_only_extra_ca
        .as_ref()
        .map(|ca| ca.pem.as_slice());
    let secrets = sdk::secrets_manager_client(config.pool_idle_timeout, extra_roots)
        .await
        .inspect_err(|err| tracing::error!(error = %err, "cannot start"))?;
    let service = Service::new(config, secrets)
        .inspect_err(|err| tracing::error!(error = %err, "cannot start"))?;
    let service = &service;
    // Boxed: the handler future is deep enough to exceed rustc's layout recursion limit inline.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Payload>| {
        Box::pin(service.handle(event))
    }))
    .await
}
