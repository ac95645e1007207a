//! Scenarios 2, 3 and 5: the first and the warm invocations of one sandbox, its peak RSS and
//! the upstream calls it made; the same upstream timed from a direct client; the floor's echo.

use bytes::Bytes;

use super::{Harness, INVOKE_TIMEOUT, check_jobs, execute_event, expect_job};
use crate::BenchError;
use crate::report::{Counts, FloorWarm, Warm};
use crate::stats::Summary;

impl Harness {
    /// Resets the emulator and the secrets counters and sets the emulator's fixed latency.
    pub(super) async fn fresh_upstreams(&self) -> Result<(), BenchError> {
        let admin = self.emulator.admin();
        admin.reset().await?;
        admin.set_latency(self.settings.latency).await?;
        self.secrets.reset();
        Ok(())
    }

    /// The function: first + warm invocations, peak RSS, call counts.
    pub(super) async fn warm_function(&mut self) -> Result<(Warm, Counts), BenchError> {
        let latency = self.settings.latency;
        let warm = self.settings.warm;
        // Baseline first: the same upstream called straight from a keep-alive hyper client.
        self.fresh_upstreams().await?;
        let direct = self.emulator.direct_execute(warm.min(200)).await?;
        self.fresh_upstreams().await?;

        let bootstrap = self.settings.bootstrap.clone();
        let endpoint = self.emulator.bot_endpoint();
        let mut sb = self.spawn(&bootstrap, "function-warm").await?;
        sb.cold_init().await?;
        let mut job_ids = Vec::with_capacity(warm + 1);
        let first = sb
            .api
            .invoke(execute_event(&endpoint, 0), INVOKE_TIMEOUT)
            .await?;
        job_ids.push(expect_job(&first.result, &sb)?);
        let mut samples = Vec::with_capacity(warm);
        for n in 1..=warm {
            let o = sb
                .api
                .invoke(execute_event(&endpoint, n), INVOKE_TIMEOUT)
                .await?;
            job_ids.push(expect_job(&o.result, &sb)?);
            samples.push(o.elapsed());
        }
        let rss = sb.peak_rss_kib()?;
        // Each record is written before the answer is posted, so all are in the log by now.
        let metrics_records = sb.metrics_records()?;
        sb.stop().await?;
        if metrics_records != (warm + 1) as u64 {
            return Err(BenchError::msg(format!(
                "{metrics_records} EMF metrics records for {} invocations (expected one each)",
                warm + 1
            )));
        }

        let stats = self.emulator.admin().stats().await?;
        let counts = Counts {
            invocations: warm + 1,
            secret_fetches: self.secrets.get_secret_value_calls(),
            other_secret_calls: self.secrets.other_calls(),
            api_connections: self.emulator.api_connections().await?,
            connections_accepted_raw: stats.connections_accepted,
            jobs_created: stats.jobs_created,
            metrics_records,
        };
        check_jobs("warm run", &job_ids, stats.jobs_created, &self.emulator).await?;
        let no_samples = || BenchError::msg("no samples");
        Ok((
            Warm {
                first: first.elapsed(),
                warm: Summary::of(&samples).ok_or_else(no_samples)?,
                direct: Summary::of(&direct).ok_or_else(no_samples)?,
                latency,
                peak_rss_kib: rss,
            },
            counts,
        ))
    }

    /// The floor's first and warm invocations (echo, no upstream) and peak RSS.
    pub(super) async fn warm_floor(&mut self) -> Result<FloorWarm, BenchError> {
        let floor = self.settings.floor.clone();
        let mut sb = self.spawn(&floor, "floor-warm").await?;
        sb.cold_init().await?;
        let event =
            Bytes::from_static(b"{\"operation\":\"execute\",\"input\":{\"message\":\"bench\"}}");
        let first = sb.api.invoke(event.clone(), INVOKE_TIMEOUT).await?;
        if first.result.is_err() {
            return Err(BenchError::msg(format!("floor failed: {:?}", first.result)));
        }
        let mut samples = Vec::with_capacity(self.settings.warm);
        for _ in 0..self.settings.warm {
            let o = sb.api.invoke(event.clone(), INVOKE_TIMEOUT).await?;
            if o.result.is_err() {
                return Err(BenchError::msg(format!("floor failed: {:?}", o.result)));
            }
            samples.push(o.elapsed());
        }
        let peak_rss_kib = sb.peak_rss_kib()?;
        sb.stop().await?;
        Ok(FloorWarm {
            first: first.elapsed(),
            warm: Summary::of(&samples).ok_or_else(|| BenchError::msg("no samples"))?,
            peak_rss_kib,
        })
    }
}
