//! Following a job: poll until it ends or `--timeout` runs out, reading the job again after a
//! transient error the way the ReferJob state of statemachine/run-bot.asl.json does (same
//! errors, attempts and backoff; [`REFER_JOB_RETRY`], checked against the file by a test).
//! Ctrl-C is handled once for the whole command, in `main.rs`.

use std::io::Write;
use std::time::Duration;

use cloudbot_trigger::cloudbot::{CloudBotError, Job, JobEndpoint, JobStatus};
use cloudbot_trigger::error::Classified;
use tokio::time::Instant;

use crate::args::Follow;
use crate::error::CliError;
use crate::output::{Output, Progress, status_style};
use crate::session::Session;

/// A Step Functions `Retry` rule, as far as the CLI's reads need it.
#[derive(Debug)]
pub struct ReadRetry {
    /// Error types that are read again.
    pub errors: &'static [&'static str],
    /// `IntervalSeconds`: the first wait's ceiling (`--retry-interval` overrides it).
    pub interval: Duration,
    /// `BackoffRate`.
    pub backoff_rate: u32,
    /// `MaxAttempts`: retries after the first read.
    pub max_attempts: u32,
    /// `MaxDelaySeconds`: no wait's ceiling exceeds it.
    pub max_delay: Duration,
}

/// ReferJob's retrier. Its other errors do not occur here: `Credentials.Unavailable` (the CLI
/// reads the credentials once, before anything is sent) and the `Lambda.*` service errors.
/// Every wait is uniform in `[0, ceiling]` (`JitterStrategy: FULL`), and at least the server's
/// `Retry-After`.
pub const REFER_JOB_RETRY: ReadRetry = ReadRetry {
    errors: &["CloudBot.RateLimited", "CloudBot.Unavailable"],
    interval: Duration::from_secs(2),
    backoff_rate: 2,
    max_attempts: 6,
    max_delay: Duration::from_secs(60),
};

impl ReadRetry {
    /// Whether `err` is read again.
    pub fn retries(&self, err: &CloudBotError) -> bool {
        self.errors.contains(&err.kind().name)
    }

    /// The ceiling of the wait before retry `n` (1-based), with `first` as the first ceiling.
    pub fn ceiling(&self, first: Duration, n: u32) -> Duration {
        let factor = self.backoff_rate.saturating_pow(n.saturating_sub(1));
        first.saturating_mul(factor).min(self.max_delay)
    }
}

/// Reads the job, retrying transient errors; `deadline` (from `--timeout`) cuts the retries
/// short. Each retry is announced on the live line, or on stderr without one.
pub async fn read_job(
    session: &Session,
    endpoint: &JobEndpoint,
    first_wait: Option<Duration>,
    deadline: Option<Instant>,
    progress: &Progress,
    out: Output,
) -> Result<Job, CliError> {
    let retry = &REFER_JOB_RETRY;
    let first_wait = first_wait.unwrap_or(retry.interval);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match session.client.refer_job(&session.call(), endpoint).await {
            Ok(job) => return Ok(job),
            Err(err) => err,
        };
        let n = attempts; // the retry this would be
        let ceiling = retry.ceiling(first_wait, n);
        let wait = jitter(ceiling).max(err.retry_after().unwrap_or(Duration::ZERO));
        let out_of_time = deadline.is_some_and(|d| Instant::now() + wait > d);
        if !retry.retries(&err) || n > retry.max_attempts || out_of_time {
            return Err(CliError::ReadFailed {
                attempts,
                source: err,
            });
        }
        let note = format!(
            "reading the job failed ({}); retry {n} of {} in {:.1}s",
            err.kind().name,
            retry.max_attempts,
            wait.as_secs_f64()
        );
        if out.is_live() {
            progress.set_message(note);
        } else {
            eprintln!("note: {note}");
        }
        tokio::time::sleep(wait).await;
    }
}

/// Uniform in `[0, ceiling]`.
fn jitter(ceiling: Duration) -> Duration {
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(0..=millis))
}

/// Polls the job until it is final or `--timeout` runs out.
pub async fn follow_job(
    session: &Session,
    endpoint: &JobEndpoint,
    mut job: Job,
    follow: &Follow,
    out: Output,
) -> Result<Job, CliError> {
    let started = Instant::now();
    let deadline = follow.timeout.map(|limit| started + limit);
    let message = |job: &Job| {
        let style = status_style(job.status);
        format!(
            "job {}: {style}{}{style:#}",
            job.job_id,
            status_text(job.status)
        )
    };
    let progress = out.progress(message(&job));
    let mut last_status = job.status;
    while !job.status.is_final() {
        if deadline.is_some_and(|d| Instant::now() + follow.interval > d) {
            return Err(CliError::TimedOut {
                waited: humantime::format_duration(Duration::from_secs(
                    started.elapsed().as_secs(),
                ))
                .to_string(),
            });
        }
        tokio::time::sleep(follow.interval).await;
        job = read_job(
            session,
            endpoint,
            follow.retry_interval,
            deadline,
            &progress,
            out,
        )
        .await?;
        progress.set_message(message(&job));
        if job.status != last_status && !job.status.is_final() && !out.is_live() && !out.is_json() {
            // Without a live line, each change to another running state is one plain line (the
            // final state is printed with the job).
            let mut w = out.text();
            writeln!(w, "job {}: {}", job.job_id, status_text(job.status))?;
        }
        last_status = job.status;
    }
    Ok(job)
}

/// A status as words (`unknown status 7` for a code the API does not document).
pub fn status_text(status: JobStatus) -> String {
    match status {
        JobStatus::Unknown(n) => format!("unknown status {n}"),
        other => other.label().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The CLI's read retries are ReferJob's: the same errors (those a CLI read can produce),
    /// attempts, backoff, cap and jitter.
    #[test]
    fn the_read_retry_is_the_refer_job_retrier() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../statemachine/run-bot.asl.json"
        );
        let asl: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let rules = asl["States"]["ReferJob"]["Retry"].as_array().unwrap();
        assert_eq!(rules.len(), 1, "one retrier on ReferJob");
        let rule = &rules[0];
        let cloud_bot: Vec<&str> = rule["ErrorEquals"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|e| e.starts_with("CloudBot."))
            .collect();
        assert_eq!(cloud_bot, REFER_JOB_RETRY.errors);
        let r = &REFER_JOB_RETRY;
        assert_eq!(rule["IntervalSeconds"], r.interval.as_secs());
        assert_eq!(rule["BackoffRate"], r.backoff_rate);
        assert_eq!(rule["MaxAttempts"], r.max_attempts);
        assert_eq!(rule["MaxDelaySeconds"], r.max_delay.as_secs());
        assert_eq!(rule["JitterStrategy"], "FULL");
    }

    #[test]
    fn the_wait_ceiling_doubles_up_to_the_cap() {
        let r = &REFER_JOB_RETRY;
        let ceilings: Vec<u64> = (1..=7)
            .map(|n| r.ceiling(r.interval, n).as_secs())
            .collect();
        assert_eq!(ceilings, [2, 4, 8, 16, 32, 60, 60]);
        assert!(jitter(Duration::from_millis(5)) <= Duration::from_millis(5));
    }
}
