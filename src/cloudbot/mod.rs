//! Typed client for the Cloud BOT REST API (api.c-bot.pro).
//!
//! - `base`: the API base and the strict checks of URLs that arrive in events, with their errors.
//! - `endpoint`: validated ids, BOT execution / job reference endpoints under the base.
//! - `credentials`: access token + secret key, redacted everywhere.
//! - `model`: language, job status, Job/Bot/Contract objects, the execute request, job list
//!   filters.
//! - `error`: the one error enum (its rows of the error table live with the function, `crate::error`).
//! - `client`: the settings and the operations, over the pooled HTTP clients of `transport`.
//! - `exchange`: one request sent and retried as a whole, answers and failures mapped to errors.
//! - `transport`: one TLS configuration, a pool for the reads and one for the execute POST, and
//!   the warm-up of init (a TLS handshake, or a `HEAD` that leaves a connection for the execute).
//! - `retry`: which failures are retried (never an execute that may have reached the server).
//! - `skim`: a job answer over the response cap read without its `output`.
//! - `subscriptions`: "BOT done" event subscriptions (§3.9, third-party sourced).

mod base;
mod client;
mod credentials;
mod endpoint;
mod error;
mod exchange;
mod model;
mod retry;
mod skim;
mod subscriptions;
mod transport;

pub use base::{ApiBase, EndpointError, EndpointProblem};
pub use client::{
    ClientSettings, CloudBotClient, DEFAULT_CONNECT_TIMEOUT, DEFAULT_EXECUTE_REUSE_WINDOW,
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, MAX_REQUEST_BODY,
};
pub use credentials::{Credentials, ValueProblem, check_value};
pub use endpoint::{BotEndpoint, BotId, JobEndpoint, JobId, PublicId};
pub use error::{Cause, CloudBotError, MAX_MESSAGE_CHARS};
pub use exchange::Call;
pub use model::{
    Bot, Contract, ExecuteRequest, Job, JobQuery, JobStatus, Language, Started, UnknownLanguage,
};
pub use subscriptions::{Subscribed, Subscription};
pub use transport::{ApiWarmUp, WarmUp};
