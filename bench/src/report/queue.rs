//! Markdown for the run queue scenario: messages per second through one sandbox at each batch
//! concurrency, and cold init with the contracts map against the single secret.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::stats::{Summary, ms};

/// One batch concurrency's figures.
#[derive(Debug, Clone)]
pub struct QueueRow {
    /// `CLOUDBOT_QUEUE_CONCURRENCY`.
    pub concurrency: usize,
    /// Messages in the timed batches.
    pub messages: usize,
    /// Wall time of the timed batches, back to back.
    pub wall: Duration,
    /// One timed batch, event handed out to answer received.
    pub batch: Summary,
    /// Jobs the emulator created (for every message sent: the timed ones and the untimed first
    /// batch).
    pub jobs_created: u64,
}

impl QueueRow {
    /// Messages per second through the sandbox.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// What the run queue scenario measured.
#[derive(Debug, Clone)]
pub struct QueueFigures {
    /// Messages per SQS event.
    pub batch_size: usize,
    /// The upstream's fixed latency.
    pub latency: Duration,
    /// One row per batch concurrency.
    pub rows: Vec<QueueRow>,
    /// Cold init with `CLOUDBOT_SECRET_ID`.
    pub cold_single: Summary,
    /// Cold init with `CLOUDBOT_CONTRACT_SECRETS` (one contract).
    pub cold_contracts: Summary,
}

/// The section, written to `s`.
pub fn queue_section(s: &mut String, q: &QueueFigures) -> fmt::Result {
    writeln!(
        s,
        "## Run queue (SQS batches of {} messages, upstream latency {} ms)\n",
        q.batch_size,
        ms(q.latency)
    )?;
    writeln!(
        s,
        "| batch concurrency | messages timed | wall s | messages /s | batch p50 ms | batch max ms | messages sent / jobs created |"
    )?;
    writeln!(s, "|---|---|---|---|---|---|---|")?;
    for r in &q.rows {
        writeln!(
            s,
            "| {} | {} | {:.2} | {:.0} | {} | {} | {} / {} |",
            r.concurrency,
            r.messages,
            r.wall.as_secs_f64(),
            r.per_second(),
            ms(r.batch.p50),
            ms(r.batch.max),
            r.messages + q.batch_size,
            r.jobs_created
        )?;
    }
    writeln!(
        s,
        "\nEvery batch answered no item failure; the emulator created exactly one job per message \
         (the untimed first batch included).\n"
    )?;
    writeln!(
        s,
        "| cold init | starts | median ms | p90 ms |\n|---|---|---|---|\n| single secret | {} | {} | {} |\n| contracts map | {} | {} | {} |\n",
        q.cold_single.n,
        ms(q.cold_single.p50),
        ms(q.cold_single.p90),
        q.cold_contracts.n,
        ms(q.cold_contracts.p50),
        ms(q.cold_contracts.p90),
    )?;
    writeln!(
        s,
        "Median difference with the contracts map: {:+.2} ms.\n",
        (q.cold_contracts.p50.as_secs_f64() - q.cold_single.p50.as_secs_f64()) * 1000.0
    )
}
