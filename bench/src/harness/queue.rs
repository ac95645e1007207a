//! Scenario 7, the run queue (docs/queue.md): SQS events of [`BATCH`] messages through one
//! sandbox at each batch concurrency (`CLOUDBOT_QUEUE_CONCURRENCY` 1, 4, 10), the upstream at
//! the run's fixed latency and the idempotency table on the DynamoDB stand-in (every message is
//! keyed by its message id, so each claims and completes a record as it does deployed). Every
//! batch must answer no item failure, and the emulator must have created exactly one job per
//! message. Then cold init with the contracts map (`CLOUDBOT_CONTRACT_SECRETS`) against the
//! single secret, interleaved.
//!
//! What the sandboxes get is the harness's environment plus `--env`: admission control (or any
//! other per-message cost) is measured by rerunning with its settings there, against this run's
//! figures.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cloudbot_testkit::dynamodb::DynamoDbEndpoint;
use cloudbot_testkit::function::SECRET_ID;
use cloudbot_testkit::sandbox::Sandbox;

use super::store::STORE_LATENCY;
use super::{Harness, INVOKE_TIMEOUT};
use crate::BenchError;
use crate::report::{QueueFigures, QueueRow};
use crate::stats::Summary;

/// Messages per SQS event: the template's `QueueBatchSize` default.
pub const BATCH: usize = 10;
/// The batch concurrencies measured: one at a time, the default, the whole batch at once.
const CONCURRENCIES: [usize; 3] = [1, 4, 10];
/// Table name the function is configured with (the stand-in accepts any).
const TABLE: &str = "cloudbot-bench-queue";

/// One SQS event: `BATCH` execute messages from the normal lane, ids unique per run.
fn sqs_event(bot_endpoint: &str, tag: &str, first: usize) -> Bytes {
    let sent = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    let records: Vec<serde_json::Value> = (first..first + BATCH)
        .map(|n| {
            serde_json::json!({
                "messageId": format!("bench-{tag}-{n}"),
                "receiptHandle": format!("rh-{n}"),
                "body": serde_json::json!({
                    "bot_endpoint": bot_endpoint,
                    "input": {"message": format!("bench queued {n}")},
                }).to_string(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent},
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-runs-normal",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    Bytes::from(serde_json::json!({ "Records": records }).to_string())
}

impl Harness {
    /// Scenario 7 for the report.
    pub(super) async fn queue(&mut self) -> Result<QueueFigures, BenchError> {
        let store = DynamoDbEndpoint::start(STORE_LATENCY).await?;
        let mut env = self.env.clone();
        env.push(("CLOUDBOT_IDEMPOTENCY_TABLE".into(), TABLE.into()));
        env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), store.url()));
        let bootstrap = self.settings.bootstrap.clone();
        let endpoint = self.emulator.bot_endpoint();
        let batches = self.settings.queue_batches;
        let mut rows = Vec::with_capacity(CONCURRENCIES.len());
        for concurrency in CONCURRENCIES {
            self.fresh_upstreams().await?;
            let mut env = env.clone();
            env.push(("CLOUDBOT_QUEUE_CONCURRENCY".into(), concurrency.to_string()));
            let log = self.log_path(&format!("queue-c{concurrency}"));
            let mut sb = Sandbox::spawn(&bootstrap, &env, &log).await?;
            sb.cold_init().await?;
            let tag = format!("c{concurrency}");
            // The first batch opens the connections; the timed ones follow back to back.
            let mut per_batch = Vec::with_capacity(batches);
            let mut started = Instant::now();
            for b in 0..=batches {
                if b == 1 {
                    started = Instant::now();
                }
                let outcome = sb
                    .api
                    .invoke(sqs_event(&endpoint, &tag, b * BATCH), INVOKE_TIMEOUT)
                    .await?;
                check_batch(&outcome.result, &sb)?;
                if b > 0 {
                    per_batch.push(outcome.elapsed());
                }
            }
            let wall = started.elapsed();
            sb.stop().await?;
            let messages = (batches + 1) * BATCH;
            let jobs_created = self.emulator.admin().stats().await?.jobs_created;
            let distinct = (self.emulator.job_ids().await?.into_iter())
                .collect::<std::collections::HashSet<String>>()
                .len();
            if jobs_created != messages as u64 || distinct != messages {
                return Err(BenchError::msg(format!(
                    "queue (concurrency {concurrency}): {messages} messages, but the emulator \
                     created {jobs_created} jobs ({distinct} distinct ids)"
                )));
            }
            rows.push(QueueRow {
                concurrency,
                messages: batches * BATCH,
                wall,
                batch: Summary::of(&per_batch)
                    .ok_or_else(|| BenchError::msg("queue: no timed batch"))?,
                jobs_created,
            });
        }
        let (cold_single, cold_contracts) = self.cold_contracts().await?;
        Ok(QueueFigures {
            batch_size: BATCH,
            latency: self.settings.latency,
            rows,
            cold_single,
            cold_contracts,
        })
    }

    /// Cold init with the single secret against the contracts map naming the same secret by
    /// its ARN (the stand-in serves both), alternating which goes first in a round.
    async fn cold_contracts(&mut self) -> Result<(Summary, Summary), BenchError> {
        let arn =
            format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET_ID}-AbCdEf");
        let mut contracts_env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "CLOUDBOT_SECRET_ID")
            .cloned()
            .collect();
        contracts_env.push(("CLOUDBOT_CONTRACT_SECRETS".into(), arn));
        let bootstrap = self.settings.bootstrap.clone();
        let (mut single, mut contracts) = (Vec::new(), Vec::new());
        for round in 0..self.settings.starts {
            for map in [round % 2 == 0, round % 2 != 0] {
                let log = self.log_path(if map { "contracts-cold" } else { "single-cold" });
                let env = if map { &contracts_env } else { &self.env };
                let mut sb = Sandbox::spawn(&bootstrap, env, &log).await?;
                let init = sb.cold_init().await?;
                sb.stop().await?;
                if map {
                    contracts.push(init);
                } else {
                    single.push(init);
                }
            }
        }
        let summary = |v: &[Duration]| {
            Summary::of(v).ok_or_else(|| BenchError::msg("queue: no cold start measured"))
        };
        Ok((summary(&single)?, summary(&contracts)?))
    }
}

/// `--only-queue`: the scenario alone, printed as the report's markdown section.
pub async fn only_queue(settings: super::Settings) -> Result<(), BenchError> {
    super::require_binaries(&[&settings.bootstrap, &settings.emulator])?;
    let mut h = Harness::start(settings).await?;
    let figures = h.queue().await?;
    let mut section = String::new();
    // Writing into a String cannot fail.
    let _ = crate::report::queue_section(&mut section, &figures);
    print!("{section}");
    h.finish().await;
    Ok(())
}

/// A batch answer must report no item failure (the upstream has no faults in this scenario).
fn check_batch(
    result: &Result<Bytes, cloudbot_testkit::runtime_api::ErrorReport>,
    sb: &Sandbox,
) -> Result<(), BenchError> {
    let failed = match result {
        Ok(body) => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["batchItemFailures"].as_array().map(Vec::len)),
        Err(e) => {
            return Err(BenchError::msg(format!(
                "queue: function error {}: {}\nlog tail:\n{}",
                e.error_type,
                e.body,
                sb.log_tail()
            )));
        }
    };
    match failed {
        Some(0) => Ok(()),
        other => Err(BenchError::msg(format!(
            "queue: the batch answer reports {other:?} item failures (expected none)\nlog tail:\n{}",
            sb.log_tail()
        ))),
    }
}
