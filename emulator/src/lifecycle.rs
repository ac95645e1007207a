//! How a job starts and ends: it is created (by the API's execute or by a console run through
//! the admin API), its timer runs out (success or error, as the BOT's seed says) or it is
//! suspended; the end is recorded, the output derived, and delivery started to its
//! `callback_endpoint` and to every "BOT done" subscription of its BOT. Sits above the state it
//! changes, the output rules and callback delivery.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::callback;
use crate::output::derive_output;
use crate::seed::{BotSeed, Outcome};
use crate::state::{Job, JobOrigin, Lang, State, job_json, lock};

/// [I] Attempts per "BOT done" subscription delivery (the subscription has no
/// `callback_tries`; the real number is not published), `callback_interval` apart.
pub(crate) const SUBSCRIPTION_TRIES: u32 = 3;

/// How a job ends.
pub(crate) enum Ending {
    /// Its run time is over: it succeeds or fails as the BOT's seed says.
    Natural,
    /// `DELETE /{public_id}/jobs/{job_id}` stopped it; the request's `seq` in the log.
    Suspended { request_seq: u64 },
}

/// What a new job is given.
pub(crate) struct NewJob {
    pub input: Map<String, Value>,
    pub callback_endpoint: Option<String>,
    pub callback_tries: u32,
    pub language: Lang,
    pub origin: JobOrigin,
}

/// A started job: its id, the Job object as the execute answer shows it (`code: 201`), and a
/// receiver that turns `true` when the API reads it as ended.
pub(crate) struct Started {
    pub job_id: String,
    pub reply: Value,
    pub done: watch::Receiver<bool>,
}

/// Creates an executing job of `bot` and schedules its natural end.
pub(crate) fn start(state: &Arc<State>, public_id: &str, bot: &BotSeed, new: NewJob) -> Started {
    let job_id = uuid::Uuid::new_v4().to_string();
    let (done_tx, done) = watch::channel(false);
    let reply = {
        let mut jobs = lock(&state.jobs);
        jobs.next_seq += 1;
        let job = Job {
            job_id: job_id.clone(),
            seq: jobs.next_seq,
            public_id: public_id.to_string(),
            bot_id: bot.id.clone(),
            bot_name: bot.name.clone(),
            status: 2,
            start: Utc::now(),
            end: None,
            suspended: false,
            error_message: None,
            output: None,
            input: new.input,
            callback_endpoint: new.callback_endpoint,
            callback_tries: new.callback_tries,
            language: new.language,
            origin: new.origin,
            suspended_at: None,
            suspended_by_request: None,
            held: false,
            done: done_tx,
        };
        let reply = job_json(&job, 201, new.language, false, &state.base_url);
        jobs.order.push(job_id.clone());
        jobs.by_id.insert(job_id.clone(), job);
        let running = jobs.running.entry(public_id.to_string()).or_default();
        *running += 1;
        let now_running = *running;
        let peak = jobs.peak_running.entry(public_id.to_string()).or_default();
        *peak = (*peak).max(now_running);
        reply
    };
    state.counters.jobs_created.fetch_add(1, Ordering::Relaxed);
    tracing::info!(job_id, bot_id = %bot.id, origin = ?new.origin, "job created");
    end_after(
        state,
        job_id.clone(),
        Duration::from_millis(bot.duration_ms),
    );
    Started {
        job_id,
        reply,
        done,
    }
}

/// Ends `job_id` naturally once `duration` has passed (its run time).
fn end_after(state: &Arc<State>, job_id: String, duration: Duration) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        finish(&state, &job_id, Ending::Natural);
    });
}

/// One delivery to start: URL, attempts, body, and the subscription it is for.
struct Delivery {
    url: String,
    tries: u32,
    body: Value,
    subscribe_id: Option<u64>,
}

/// Ends an executing job (no-op if it already ended or was forgotten) and starts delivery to
/// its callback endpoint and its BOT's subscriptions.
pub(crate) fn finish(state: &Arc<State>, job_id: &str, ending: Ending) {
    let (own, subscribed) = {
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
        let public_id = job.public_id.clone();
        let now = Utc::now();
        job.end = Some(now);
        let natural = matches!(ending, Ending::Natural);
        match ending {
            Ending::Suspended { request_seq } => {
                job.status = 1;
                job.suspended = true;
                job.suspended_at = Some(now);
                job.suspended_by_request = Some(request_seq);
                state
                    .counters
                    .jobs_suspended
                    .fetch_add(1, Ordering::Relaxed);
            }
            Ending::Natural => match state.next_outcome(bot.outcome) {
                Outcome::Succeed => {
                    job.status = 0;
                    let mut output =
                        derive_output(bot, &job.input, &job.job_id, now.timestamp_millis());
                    let padding = state.output_padding.load(Ordering::Relaxed);
                    if let (true, Value::Object(m)) = (padding > 0, &mut output) {
                        let n = usize::try_from(padding).unwrap_or(usize::MAX);
                        m.insert("padding".into(), Value::String("x".repeat(n)));
                    }
                    job.output = Some(output);
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
        tracing::info!(job_id, bot_id = %job.bot_id, status = job.status, "job ended");
        // Bodies are built before a hold: they carry the final job. [I] `code: 201` like the
        // documented callback sample.
        let own = job.callback_endpoint.clone().map(|url| Delivery {
            url,
            tries: job.callback_tries,
            body: job_json(job, 201, job.language, true, &state.base_url),
            subscribe_id: None,
        });
        let subscribed: Vec<Delivery> = lock(&state.subscriptions)
            .list
            .iter()
            .filter(|s| s.public_id == job.public_id && s.bot_id == job.bot_id)
            .map(|s| Delivery {
                url: s.callback_endpoint.clone(),
                tries: SUBSCRIPTION_TRIES,
                body: job_json(job, 201, s.language, true, &state.base_url),
                subscribe_id: Some(s.id),
            })
            .collect();
        // [I] Only a natural end is held: a suspend answers the ended job at once.
        if own.is_some() && natural && state.hold_for_callback.load(Ordering::Relaxed) {
            job.held = true;
        } else {
            job.done.send_replace(true);
        }
        if let Some(running) = jobs.running.get_mut(&public_id) {
            *running = running.saturating_sub(1);
        }
        (own, subscribed)
    };
    if let Some(d) = own {
        spawn_delivery(state, job_id, d, true);
    }
    for d in subscribed {
        spawn_delivery(state, job_id, d, false);
    }
}

fn spawn_delivery(state: &Arc<State>, job_id: &str, d: Delivery, releases: bool) {
    let state = Arc::clone(state);
    let job_id = job_id.to_string();
    tokio::spawn(async move {
        let generation = state.generation.load(Ordering::SeqCst);
        callback::deliver(
            Arc::clone(&state),
            job_id.clone(),
            d.url,
            d.tries,
            d.body,
            d.subscribe_id,
        )
        .await;
        if releases && state.generation.load(Ordering::SeqCst) == generation {
            release(&state, &job_id);
        }
    });
}

/// Ends a job's hold once its callback delivery is over (acknowledged, or every attempt
/// failed): from now on the API reads its final status, and its elapsed time includes the
/// delivery.
fn release(state: &State, job_id: &str) {
    let mut jobs = lock(&state.jobs);
    let Some(job) = jobs.by_id.get_mut(job_id) else {
        return;
    };
    if job.held {
        job.held = false;
        job.end = Some(Utc::now());
        job.done.send_replace(true);
        tracing::info!(
            job_id,
            status = job.status,
            "job released after its callback"
        );
    }
}
