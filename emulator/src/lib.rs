//! Stateful local emulator of the Cloud BOT REST API (api.c-bot.pro), for tests, local runs
//! and benchmarks. It speaks the API's endpoints, headers and statuses on 127.0.0.1, runs
//! jobs on timers (executing → succeeded/error), derives output from input, delivers and
//! retries callbacks and "BOT done" subscription events, starts console runs outside the API,
//! injects faults, and exposes what it saw under `/__emulator/` and through
//! [`Emulator`]'s typed accessors. Not part of the Lambda artifact.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cloudbot_emulator::EmulatorError> {
//! use cloudbot_emulator::{Emulator, Seed};
//! let emulator = Emulator::start(Seed::demo()).await?;
//! println!("{}", emulator.base_url()); // http://127.0.0.1:PORT
//! assert_eq!(emulator.stats().jobs_created, 0);
//! # Ok(()) }
//! ```

mod admin;
mod admin_client;
mod api;
mod body;
mod callback;
mod data;
mod emulator;
mod fault;
pub mod idle;
mod lifecycle;
mod output;
mod reply;
mod seed;
mod server;
mod state;
mod subscription;
pub mod tls;

pub use admin_client::{AdminClient, AdminError};
pub use api::MAX_BODY_BYTES;
pub use data::{DataType, Transform};
pub use emulator::{DEFAULT_CALLBACK_INTERVAL, Emulator, EmulatorError, EmulatorOptions};
pub use fault::{
    FAULT_HEADER, FaultKind, FaultRule, LATENCY_HEADER, RETRY_AFTER_HEADER, STATUS_HEADER,
};
pub use idle::{IdleClose, IdlePolicy};
pub use seed::{
    BotSeed, ContractSeed, DEMO_ACCESS_TOKEN, DEMO_PUBLIC_ID, DEMO_REFER_SECRET, DEMO_REFER_TOKEN,
    DEMO_SECRET_KEY, InputDef, Outcome, OutputDef, Permission, Seed, SeedError, TokenSeed,
};
pub use server::OVERSIZED_PADDING;
pub use state::{CallbackAttempt, JobOrigin, JobRecord, RequestRecord, Stats, SubscriptionRecord};
pub use tls::{TestCa, TlsError};
