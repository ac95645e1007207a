//! How far a command got towards a job: the one fact the exit code and the hints of a command
//! that failed or was interrupted are decided from (`report.rs`).
//!
//! A command moves its [`Tracker`] forward *before* each request that could start or change a
//! job, and back only when the answer proves nothing happened. The Ctrl-C handler in `main.rs`
//! reads it when it drops the command, so an interrupt can never claim "nothing was started"
//! while an execute request is out.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use cloudbot_trigger::cloudbot::{BotEndpoint, JobEndpoint};

/// Where a command stands.
#[derive(Debug, Clone, Default)]
pub enum Stage {
    /// Nothing that can start or change a job has been sent.
    #[default]
    Quiet,
    /// `run`'s execute request was sent (at `sent_at`) and its answer is not known.
    ExecuteSent {
        /// The BOT execution endpoint it went to.
        bot: BotEndpoint,
        /// When it was sent (wall clock: the job list's `--since` counts from now).
        sent_at: SystemTime,
    },
    /// The job exists (started by this `run`, or read by `job`).
    Job {
        /// Its job reference endpoint.
        endpoint: JobEndpoint,
    },
    /// `resolve`'s invoke was sent and its answer is not known (it changes a record, no job).
    ResolveSent,
    /// `schedules backfill` is delivering occurrences: some may have been delivered, one may be
    /// in flight.
    BackfillSent,
    /// `enqueue` is sending its lines: some may be queued, one batch may be in flight. Every
    /// line carries a key made with this prefix, so sending the file again with it starts no
    /// line twice.
    EnqueueSent {
        /// The `--key-prefix` of this run.
        key_prefix: String,
    },
    /// `cancel`'s request for this job was sent and its answer is not known.
    CancelSent {
        /// The job reference endpoint.
        endpoint: JobEndpoint,
    },
}

impl Stage {
    /// The `--since` window that surely covers an execute sent at `sent_at`: the time since then
    /// in whole minutes, rounded up, plus 5 minutes for the server's clock being behind ours.
    pub fn since_window(sent_at: SystemTime, now: SystemTime) -> String {
        let elapsed = now.duration_since(sent_at).unwrap_or(Duration::ZERO);
        let minutes = elapsed.as_secs().div_ceil(60) + 5;
        format!("{minutes}m")
    }
}

/// The stage of the running command, shared by the command and the Ctrl-C handler (one thread).
#[derive(Debug, Default)]
pub struct Tracker(RefCell<Stage>);

impl Tracker {
    /// Moves to `stage`.
    pub fn set(&self, stage: Stage) {
        *self.0.borrow_mut() = stage;
    }

    /// The current stage.
    pub fn get(&self) -> Stage {
        self.0.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_since_window_covers_the_wait_and_some_clock_skew() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(Stage::since_window(t0, t0), "5m");
        assert_eq!(Stage::since_window(t0, t0 + Duration::from_secs(61)), "7m");
        // A clock that went backwards does not panic.
        assert_eq!(Stage::since_window(t0, t0 - Duration::from_secs(5)), "5m");
    }
}
