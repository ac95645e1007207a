//! Scenario 6, the idempotency store: cold init with the DynamoDB client built (the table
//! configured) against the same binary without it, interleaved; then warm keyed executes (each
//! with its own `idempotency_key`, so every one claims and completes a record) against a
//! DynamoDB stand-in with a fixed latency, and the store calls they made (the init's warm-up
//! read counted apart).

use std::time::Duration;

use bytes::Bytes;

use super::{Harness, INVOKE_TIMEOUT, check_jobs, expect_job};
use crate::BenchError;
use crate::report::StoreFigures;
use crate::stats::Summary;
use cloudbot_testkit::dynamodb::{DynamoDbEndpoint, StoreCalls};
use cloudbot_testkit::sandbox::Sandbox;

/// Fixed latency of every store answer (a DynamoDB call from Lambda in the same region takes a
/// few milliseconds; the figure that matters is what the function adds on top).
pub const STORE_LATENCY: Duration = Duration::from_millis(1);

/// Table name the function is configured with (the stand-in accepts any).
const TABLE: &str = "cloudbot-bench-idempotency";

/// The `n`-th keyed execute event of a run.
fn keyed_event(bot_endpoint: &str, n: usize) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "operation": "execute",
            "idempotency_key": format!("bench-{n}"),
            "bot_endpoint": bot_endpoint,
            "input": { "message": format!("bench keyed {n}") },
        })
        .to_string(),
    )
}

impl Harness {
    /// Scenario 6 for the report.
    pub(super) async fn store(&mut self) -> Result<StoreFigures, BenchError> {
        let store = DynamoDbEndpoint::start(STORE_LATENCY).await?;
        let mut with_table = self.env.clone();
        with_table.push(("CLOUDBOT_IDEMPOTENCY_TABLE".into(), TABLE.into()));
        with_table.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), store.url()));
        let bootstrap = self.settings.bootstrap.clone();

        // Cold init, the two configurations alternating which goes first in a round.
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for round in 0..self.settings.starts {
            for table in [round % 2 == 0, round % 2 != 0] {
                let log = self.log_path(if table { "store-cold" } else { "nostore-cold" });
                let env = if table { &with_table } else { &self.env };
                let mut sb = Sandbox::spawn(&bootstrap, env, &log).await?;
                let init = sb.cold_init().await?;
                sb.stop().await?;
                if table {
                    with.push(init)
                } else {
                    without.push(init)
                };
            }
        }
        // Init makes at most the DynamoDB warm-up read (one GetItem per start with the table;
        // none when it gave up before sending) and never a write before an event.
        let starts = with.len() as u64;
        let at_init = store.calls();
        if at_init.get_item > starts
            || at_init
                != (StoreCalls {
                    get_item: at_init.get_item,
                    ..StoreCalls::default()
                })
        {
            return Err(BenchError::msg(format!(
                "{starts} cold starts with the table made {at_init:?} during init (expected at \
                 most {starts} warm-up GetItem and nothing else)"
            )));
        }

        let warm = self.settings.warm;
        let direct = store.direct_calls(warm.min(200)).await?;
        self.fresh_upstreams().await?;
        let endpoint = self.emulator.bot_endpoint();
        let log = self.log_path("store-warm");
        let mut sb = Sandbox::spawn(&bootstrap, &with_table, &log).await?;
        sb.cold_init().await?;
        // The init's warm-up read is not a keyed execute's call.
        let init_reads = store.calls().get_item;
        let mut job_ids = Vec::with_capacity(warm + 1);
        let first = sb
            .api
            .invoke(keyed_event(&endpoint, 0), INVOKE_TIMEOUT)
            .await?;
        job_ids.push(expect_job(&first.result, &sb)?);
        let mut samples = Vec::with_capacity(warm);
        for n in 1..=warm {
            let o = sb
                .api
                .invoke(keyed_event(&endpoint, n), INVOKE_TIMEOUT)
                .await?;
            job_ids.push(expect_job(&o.result, &sb)?);
            samples.push(o.elapsed());
        }
        sb.stop().await?;
        let stats = self.emulator.admin().stats().await?;
        check_jobs("store run", &job_ids, stats.jobs_created, &self.emulator).await?;
        let none = || BenchError::msg("no samples");
        Ok(StoreFigures {
            cold_without: Summary::of(&without).ok_or_else(none)?,
            cold_with: Summary::of(&with).ok_or_else(none)?,
            warm: Summary::of(&samples).ok_or_else(none)?,
            direct: Summary::of(&direct).ok_or_else(none)?,
            latency: STORE_LATENCY,
            executes: warm + 1,
            calls: StoreCalls {
                get_item: store.calls().get_item - init_reads,
                ..store.calls()
            },
            init_reads,
        })
    }
}
