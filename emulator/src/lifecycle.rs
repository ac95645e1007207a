//! How a job ends: its timer runs out (success or error, as the BOT's seed says) or it is
//! suspended; the end is recorded, the output derived, and callback delivery started. Sits
//! above the state it changes, the output rules and callback delivery.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::callback;
use crate::output::derive_output;
use crate::seed::Outcome;
use crate::state::{State, job_json, lock};

/// How a job ends.
pub(crate) enum Ending {
    /// Its run time is over: it succeeds or fails as the BOT's seed says.
    Natural,
    /// `DELETE /{public_id}/jobs/{job_id}` stopped it.
    Suspended,
}

/// Ends `job_id` naturally once `duration` has passed (its run time).
pub(crate) fn end_after(state: &Arc<State>, job_id: String, duration: Duration) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        finish(&state, &job_id, Ending::Natural);
    });
}

/// Ends an executing job (no-op if it already ended or was forgotten) and starts its
/// callback delivery.
pub(crate) fn finish(state: &Arc<State>, job_id: &str, ending: Ending) {
    let callback = {
        let mut jobs = lock(&state.jobs);
        let Some(job) = jobs.by_id.get_mut(job_id) else {
            return;
        };
        if job.status != 2 {
            return;
        }
        let Some(bot) = state.bot(&job.public_id, &job.bot_id) else {
            return;
        };
        let now = Utc::now();
        job.end = Some(now);
        match ending {
            Ending::Suspended => {
                job.status = 1;
                job.suspended = true;
            }
            Ending::Natural => match bot.outcome {
                Outcome::Succeed => {
                    job.status = 0;
                    job.output = Some(derive_output(
                        bot,
                        &job.input,
                        &job.job_id,
                        now.timestamp_millis(),
                    ));
                }
                Outcome::Error => {
                    job.status = 1;
                    job.error_message = Some(
                        bot.error_message
                            .clone()
                            .unwrap_or_else(|| "The BOT ended in error".to_string()),
                    );
                }
            },
        }
        job.done.send_replace(true);
        tracing::info!(job_id, bot_id = %job.bot_id, status = job.status, "job ended");
        job.callback_endpoint.clone().map(|url| {
            // [I] callbacks carry `code: 201` like the documented callback sample.
            let body = job_json(job, 201, job.language, true, &state.base_url);
            (url, job.callback_tries, body)
        })
    };
    if let Some((url, tries, body)) = callback {
        let state = Arc::clone(state);
        let job_id = job_id.to_string();
        tokio::spawn(async move {
            callback::deliver(state, job_id, url, tries, body).await;
        });
    }
}
