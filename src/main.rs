//! Lambda entry point: wires tracing, configuration, the shared clients and the handler to
//! `lambda_runtime`. Everything else lives in the library so tests can reach it.
//!
//! A current-thread runtime: one sandbox serves one invocation at a time, so a multi-threaded
//! scheduler only adds start-up work and binary size.

use cloudbot_trigger::admission::{Admission, SlotTable, Visibility};
use cloudbot_trigger::callback::{Callbacks, SfnSettler};
use cloudbot_trigger::config::Config;
use cloudbot_trigger::idempotency::Idempotency;
use cloudbot_trigger::job_events::{EventBridgeBus, JobEvents};
use cloudbot_trigger::ledger::{Ledger, LedgerTable};
use cloudbot_trigger::orphans::StepFunctionsExecutions;
use cloudbot_trigger::payload::Payload;
use cloudbot_trigger::schedule::state::ScheduleStates;
use cloudbot_trigger::sdk;
use cloudbot_trigger::service::Service;
use cloudbot_trigger::table::{DynamoDbStore, KEY_ATTRIBUTE};
use cloudbot_trigger::telemetry;
use cloudbot_trigger::usage::{Usage, UsageTable};
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
    let aws = sdk::aws_config(config.client.pool_idle_timeout, extra_roots)
        .await
        .inspect_err(|err| tracing::error!(error = %err, "cannot start"))?;
    // One DynamoDB client (its configuration resolved once) for every store of the function:
    // the idempotency records, callbacks, schedule states and the run ledger.
    let dynamodb = sdk::dynamodb_client(&aws);
    // One store for the records of the idempotency table (idempotency, callbacks, schedule
    // states), whose clones share the lean call path the warm-up below learns (crate::table);
    // the ledger's store is made from it for the same reason.
    let records = config
        .idempotency
        .as_ref()
        .map(|table| DynamoDbStore::new(dynamodb.clone(), table.table.clone()));
    let idempotency = match (&config.idempotency, &records) {
        (Some(table), Some(records)) => Some(
            Idempotency::new(records.clone(), table.expiry)
                .with_reconcile_settle(table.reconcile_settle),
        ),
        _ => {
            tracing::warn!(
                "CLOUDBOT_IDEMPOTENCY_TABLE is not set: duplicate deliveries can start a BOT twice \
                 (docs/exactly-once.md)"
            );
            None
        }
    };
    // The configuration guarantees the table whenever callbacks are on.
    let callbacks = match (&config.callbacks, &config.idempotency, &records) {
        (Some(callbacks), Some(table), Some(records)) => Some(Callbacks::new(
            records.clone(),
            SfnSettler::new(sdk::step_functions_client(&aws)),
            &callbacks.base,
            table.expiry,
        )),
        _ => None,
    };
    // Managed schedules' state records live in the same table.
    let schedule_states = records.clone().map(ScheduleStates::new);
    let ledger = config.ledger.as_ref().map(|ledger| {
        let table = match &records {
            Some(records) => LedgerTable::on(records.on_table(ledger.table.clone())),
            None => LedgerTable::new(dynamodb.clone(), ledger.table.clone()),
        };
        Ledger::new(table.clone(), ledger.retention).with_open_runs(table)
    });
    // The sweep asks Step Functions how a run's execution ended (docs/orphans.md).
    let executions = config
        .ledger
        .as_ref()
        .map(|_| StepFunctionsExecutions::new(sdk::step_functions_client(&aws)));
    // The store's first call is prepared during init beside the secret and the API connection
    // (same bound, same off switch), on the idempotency table (the one the function may read):
    // every store shares the one client and so its pooled connection.
    let store_warm_up = records.clone();
    let init_bound = config.init.secret_prefetch_timeout;
    // The EventBridge client shares the function's SDK configuration like the others.
    let events = config.event_bus.as_ref().map(|bus| {
        JobEvents::new(EventBridgeBus::new(
            sdk::eventbridge_client(&aws),
            bus.clone(),
        ))
    });
    // The usage counter lives in the ledger table (the configuration guarantees it with a budget).
    let usage = match (&config.budget, &config.ledger) {
        (Some(budget), Some(ledger)) => Some(
            Usage::new(
                UsageTable::new(dynamodb.clone(), ledger.table.clone()),
                budget.budget,
                ledger.retention,
            )
            .with_cache_ttl(budget.cache_ttl),
        ),
        _ => None,
    };
    // Admission control's slots live in the ledger table (the configuration guarantees it with
    // a cap); the SQS client puts a message that waits for a slot back with its delay.
    let admission = match (&config.admission, &config.ledger) {
        (Some(caps), Some(ledger)) => Some(Admission::new(
            SlotTable::new(dynamodb.clone(), ledger.table.clone()),
            caps.clone(),
        )),
        _ => None,
    };
    // The run queue's SQS client: admission puts waiting messages back with it, and the function
    // moves a message that will never succeed to the run dead-letter queue (docs/queue.md).
    let visibility = (admission.is_some() || config.run_dead_letter_queue_url.is_some())
        .then(|| Visibility::new(&aws));
    let service = Service::new(config, sdk::secrets_manager_client(&aws))
        .inspect_err(|err| tracing::error!(error = %err, "cannot start"))?
        .with_idempotency(idempotency)
        .with_schedule_states(schedule_states)
        .with_callbacks(callbacks)
        .with_ledger(ledger)
        .with_job_events(events)
        .with_usage(usage)
        .with_admission(admission, visibility)
        .with_executions(executions);
    let service = &service;
    tokio::join!(service.prefetch(), async {
        if let Some(records) = &store_warm_up {
            sdk::warm_up_dynamodb(records, KEY_ATTRIBUTE, init_bound).await;
        }
    });
    // Boxed: the handler future is deep enough to exceed rustc's layout recursion limit inline.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Payload>| {
        Box::pin(service.handle(event))
    }))
    .await
}
