//! Callback delivery: POSTs the ended job to its `callback_endpoint`, retrying non-2xx answers
//! and transport errors up to `callback_tries` attempts in total, `callback_interval` apart
//! (the real service waits at least 30 s). Every attempt is recorded. The same machinery
//! delivers "BOT done" subscription events (with the subscription's id on each attempt).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::Value;

use crate::state::{CallbackAttempt, State, lock, redact_url, rfc3339_millis};

pub(crate) async fn deliver(
    state: Arc<State>,
    job_id: String,
    url: String,
    tries: u32,
    body: Value,
    subscribe_id: Option<u64>,
) {
    let generation = state.generation.load(Ordering::SeqCst);
    let body = body.to_string();
    for attempt in 1..=tries.max(1) {
        let at = rfc3339_millis(Utc::now());
        let result = state
            .http
            .post(&url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .timeout(state.callback_timeout)
            .body(body.clone())
            .send()
            .await;
        let (status, error) = match result {
            Ok(resp) => (Some(resp.status().as_u16()), None),
            Err(e) => (None, Some(describe(&e))),
        };
        if state.generation.load(Ordering::SeqCst) != generation {
            return; // the emulator was reset: this job is forgotten
        }
        state
            .counters
            .callback_attempts
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(job_id, attempt, status, error, "callback attempt");
        lock(&state.callbacks).push(CallbackAttempt {
            job_id: job_id.clone(),
            url: redact_url(&url),
            attempt,
            status,
            error,
            at,
            subscribe_id,
        });
        if status.is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        if attempt < tries {
            tokio::time::sleep(state.callback_interval).await;
        }
    }
}

/// A short cause without the URL (it may carry a secret).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_request() || e.is_body() {
        "request".into()
    } else {
        "transport".into()
    }
}
