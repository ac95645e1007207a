//! The run queue (docs/queue.md): one SQS batch per invocation. Each message is one execute, run
//! through the same flow as a direct invocation (its own span and metrics record), at most
//! `CLOUDBOT_QUEUE_CONCURRENCY` at a time; each message's fate ([`Fate`]) becomes the
//! `ReportBatchItemFailures` answer, and each lane of the batch gets a record of its wait and
//! fates.
//!
//! Every message's fate is decided before the deadline: the flow itself never sends past it,
//! and a message still waiting for its turn starts only while one whole Cloud BOT attempt (the
//! client's request timeout) fits before the deadline; otherwise it is put back, provably not
//! sent, rather than started and left with an unknown outcome.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::time::Instant;
use tracing::Instrument;

use super::admit::Admit;
use super::{Scope, Service};
use crate::cloudbot::CloudBotError;
use crate::error::Failure;
use crate::metrics::QueueBatch;
use crate::telemetry;
use crate::trigger::{self, Fate, Queued, Trigger};

impl Service {
    /// Handles one SQS event: every message's fate, as the batch answer.
    pub(super) async fn handle_queue(
        &self,
        event: Value,
        request_id: &str,
        deadline: Instant,
    ) -> Result<Box<RawValue>, Diagnostic> {
        let messages = match trigger::decode_batch(event, &self.config.requests) {
            Ok(messages) => messages,
            Err(err) => {
                // Not one message can be reported on its own: the whole batch comes back.
                let failure = Failure::Request(err);
                tracing::error!(
                    request_id,
                    error_type = failure.error_type(),
                    error = %failure.log_text(),
                    "the SQS event could not be decoded: the whole batch is redelivered"
                );
                return Err(Diagnostic::from(failure));
            }
        };
        let received = SystemTime::now();
        // The futures are built in a loop, not by a closure over `&Queued`: a closure returning a
        // future that borrows its argument makes the handler's future not provably `Send`
        // (rust-lang/rust#64552). They are lazy, so `buffered` alone decides how many run.
        let mut runs = Vec::with_capacity(messages.len());
        for queued in &messages {
            runs.push(self.queued(queued, request_id, deadline));
        }
        let fates: Vec<Fate> = futures_util::stream::iter(runs)
            .buffered(self.config.queue_concurrency)
            .collect()
            .await;
        for batch in lanes(&messages, &fates, received) {
            self.metrics.emit_queue_batch(&batch);
        }
        trigger::encode_batch(
            messages
                .iter()
                .map(|queued| queued.message_id.as_str())
                .zip(fates),
        )
        .map_err(|_| Diagnostic::from(Failure::Internal("the batch answer could not be encoded")))
    }

    /// Runs one message: its fate.
    async fn queued(&self, queued: &Queued, request_id: &str, deadline: Instant) -> Fate {
        let span = telemetry::invocation_span(request_id, Trigger::Queue.name());
        async {
            let started = Instant::now();
            let mut record = self.metrics.start(Trigger::Queue.name(), request_id);
            let result = match &queued.request {
                Err(err) => Err(Failure::Request(err.clone())),
                Ok(_) if !self.may_start(deadline) => {
                    Err(Failure::CloudBot(CloudBotError::DeadlineExceeded))
                }
                Ok(request) => {
                    record.set_operation(request.operation.kind().name());
                    let scope = Scope {
                        language: request.language,
                        deadline,
                        retry_budget: Trigger::Queue.retry_budget(),
                        trigger: Trigger::Queue,
                    };
                    // Boxed: a batch holds up to ten of these futures at once.
                    match Box::pin(self.admit(queued, request, deadline)).await {
                        Admit::Wait => Ok(false),
                        Admit::Go(hold) => {
                            let result =
                                Box::pin(self.run(request, scope, request_id, &mut record)).await;
                            if let Some(hold) = &hold {
                                Box::pin(self.settle_slot(hold, &result, &record, deadline)).await;
                            }
                            result.map(|_| true)
                        }
                    }
                }
            };
            let fate = match &result {
                Ok(true) => Fate::Done,
                Ok(false) => Fate::Waiting,
                Err(failure) => {
                    record.set_failed(failure.kind().name);
                    let fate = Fate::of_failure(failure.kind());
                    Box::pin(self.move_dead_lettered(queued, failure, fate, deadline)).await
                }
            };
            record.add_secret_fetches(self.credentials.take_fetch_count());
            let elapsed = started.elapsed();
            telemetry::finish(&result, elapsed);
            self.metrics.emit(&record, elapsed);
            log_fate(queued, fate);
            fate
        }
        .instrument(span)
        .await
    }

    /// Whether a message may still be started: one whole attempt must fit before `deadline`.
    fn may_start(&self, deadline: Instant) -> bool {
        deadline.saturating_duration_since(Instant::now()) >= self.config.client.request_timeout
    }
}

/// One log line per message: its id, lane, receive count and fate (the failure itself is in the
/// line `telemetry::finish` wrote, without secrets).
fn log_fate(queued: &Queued, fate: Fate) {
    let message_id = queued.message_id.as_str();
    let lane = queued.lane.name();
    let receive_count = queued.receive_count.unwrap_or(0);
    let fate_name = fate.name();
    match fate {
        Fate::Done => tracing::info!(message_id, lane, receive_count, fate = fate_name),
        Fate::Redelivered => tracing::info!(
            message_id,
            lane,
            receive_count,
            fate = fate_name,
            "no job was started: the message is reported failed and delivered again"
        ),
        Fate::DeadLettered => tracing::warn!(
            message_id,
            lane,
            receive_count,
            fate = fate_name,
            "the message will not succeed as sent: reported failed, it moves to the dead-letter \
             queue after the queue's maxReceiveCount"
        ),
        Fate::Moved => tracing::warn!(
            message_id,
            lane,
            receive_count,
            fate = fate_name,
            "the message will not succeed as sent: moved to the run dead-letter queue with its \
             reason"
        ),
        // Why it waits was logged when it found no slot.
        Fate::Waiting => tracing::info!(
            message_id,
            lane,
            receive_count,
            fate = fate_name,
            "no slot of its contract was free: nothing was sent, the message is put back"
        ),
        Fate::Unknown => tracing::error!(
            message_id,
            lane,
            receive_count,
            fate = fate_name,
            "it is unknown whether a job started: the message is NOT redelivered (a second run \
             could start); look at the BOT's jobs and settle the idempotency record"
        ),
    }
}

/// The record of each lane present in the batch.
fn lanes(messages: &[Queued], fates: &[Fate], received: SystemTime) -> Vec<QueueBatch> {
    let mut lanes: BTreeMap<&'static str, QueueBatch> = BTreeMap::new();
    for (queued, fate) in messages.iter().zip(fates) {
        let lane = lanes
            .entry(queued.lane.name())
            .or_insert_with(|| QueueBatch {
                lane: queued.lane.name(),
                ..QueueBatch::default()
            });
        let waited = queued
            .sent_at
            .and_then(|sent| received.duration_since(sent).ok())
            .unwrap_or(Duration::ZERO);
        lane.oldest_wait = lane.oldest_wait.max(waited);
        lane.messages += 1;
        match fate {
            Fate::Done => {}
            Fate::Redelivered => lane.redelivered += 1,
            Fate::DeadLettered | Fate::Moved => lane.dead_lettered += 1,
            Fate::Unknown => lane.outcome_unknown += 1,
            Fate::Waiting => lane.admission_waits += 1,
        }
    }
    lanes.into_values().collect()
}
