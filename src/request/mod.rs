//! The one logical request every trigger is decoded into ([`Request`]), and its validation
//! (`parse`: [`parse_map`] for a request object, [`parse_routed`] for an API Gateway route that
//! fixed the operation and its target in the path; `execute`: the execute's fields).
//!
//! Input is a JSON object (a Step Functions task input, an EventBridge `detail`, an API Gateway
//! body merged with its path parameters). Every key is matched against the known field names, so
//! an unknown field is rejected by name (the effect of serde's `deny_unknown_fields`, but with the
//! field named in every error, including wrong types, which serde's messages do not name). `null`
//! is rejected like a wrong type: a request must never silently lose a field and fall back to the
//! default BOT. Endpoints and ids are parsed by the client's endpoint module against the configured
//! API base, so credentials can only ever be sent to that origin.

mod contract;
mod execute;
mod parse;
mod priority;

use serde_json::Value;

pub use parse::{Routed, parse_map, parse_map_with_language, parse_routed};
pub use priority::Priority;

use crate::callback::{CallbackId, TaskToken};
use crate::cloudbot::{
    BotEndpoint, EndpointError, ExecuteRequest, JobEndpoint, Language, PublicId,
};
use crate::idempotency::RecordKey;
use crate::schedule::ScheduleTick;

/// Largest `timeout` (ms) accepted ([I]: the API documents no maximum; the public sample code
/// uses 120000). The value actually sent is also capped by the invocation's remaining time.
pub const MAX_TIMEOUT_MS: u64 = 120_000;

/// The request is invalid; nothing was sent upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A field is unknown, missing, of the wrong type, out of range or conflicts with another.
    #[error("field `{field}`: {reason}")]
    Field {
        /// The field at fault (as named in the request).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The event or body is not a request at all (not JSON, not an object, unknown event shape).
    #[error("{0}")]
    Malformed(String),
    /// The body (or the execute payload it would produce) is larger than allowed.
    #[error("{what} is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// An API Gateway event for a method and path this function does not serve. The path is
    /// neither kept nor repeated: it may carry a secret callback id (a `GET /callbacks/<id>`).
    #[error("no route for {method} on this path")]
    NoRoute {
        /// HTTP method.
        method: String,
    },
}

impl RequestError {
    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        // An unknown field's name is caller-controlled: keep the message short.
        let field: String = field.into();
        let field = if field.chars().count() > 64 {
            field.chars().take(64).chain("…".chars()).collect()
        } else {
            field
        };
        Self::Field {
            field,
            reason: reason.into(),
        }
    }
}

impl From<EndpointError> for RequestError {
    fn from(err: EndpointError) -> Self {
        // The client's error names the field and the problem, never the rejected value.
        RequestError::field(err.field, err.reason.to_string())
    }
}

/// The operations a request can name, parsed once from its `operation` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Start a BOT (the default when `operation` is absent).
    Execute,
    /// Read one job.
    ReferJob,
    /// List the API-published BOTs of a contract.
    ListBots,
    /// Operators only: settle an idempotency record whose outcome is unknown
    /// (docs/exactly-once.md). Accepted from direct invocations only.
    ResolveIdempotency,
    /// Cloud BOT's callback at a job's end (the callback route only; never parsed from a
    /// request's `operation` field, so it is not in [`OperationKind::ALL`]).
    Callback,
    /// Cloud BOT's "BOT done" webhook for a subscribed BOT (the callback route's `bot-done/`
    /// path only; docs/events.md, "Runs started outside AWS"), not in [`OperationKind::ALL`].
    BotDone,
    /// Decide a managed schedule's tick without running it: the state machines' DecideTick
    /// state (docs/schedules.md). Named on the Scheduler envelope only (`{"operation":
    /// "schedule_tick", "schedule": {... "definition"}, "request": {...}}`), so it is not in
    /// [`OperationKind::ALL`] either.
    ScheduleTick,
    /// Step Functions' "Execution Status Change" event (an EventBridge rule of the stack; never
    /// parsed from `operation`, so not in [`OperationKind::ALL`]): the runs a failed, timed out
    /// or stopped execution left running are suspended (docs/orphans.md).
    ExecutionEnded,
    /// The periodic sweep of open runs (`{"operation": "sweep"}`, the stack's schedule rule;
    /// docs/orphans.md). An operator's operation like `resolve_idempotency`, so not in
    /// [`OperationKind::ALL`] (the request field table's operations).
    Sweep,
    /// Decide whether a job that ended failed is run again: the RunBot state machine's
    /// DecideRerun state (docs/state-machines.md). Named on an envelope only, so not in
    /// [`OperationKind::ALL`].
    DecideRerun,
}

impl OperationKind {
    /// Every operation, in documentation order.
    pub const ALL: [OperationKind; 4] = [
        OperationKind::Execute,
        OperationKind::ReferJob,
        OperationKind::ListBots,
        OperationKind::ResolveIdempotency,
    ];

    /// The operations that call Cloud BOT for a BOT or job (every one but the operator's).
    pub(crate) const CLOUD_BOT: [OperationKind; 3] = [
        OperationKind::Execute,
        OperationKind::ReferJob,
        OperationKind::ListBots,
    ];

    /// Stable name as used in requests, results and logs.
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::Execute => "execute",
            OperationKind::ReferJob => "refer_job",
            OperationKind::ListBots => "list_bots",
            OperationKind::ResolveIdempotency => "resolve_idempotency",
            OperationKind::Callback => "callback",
            OperationKind::BotDone => "bot_done",
            OperationKind::ScheduleTick => "schedule_tick",
            OperationKind::ExecutionEnded => "execution_ended",
            OperationKind::Sweep => "sweep",
            OperationKind::DecideRerun => crate::rerun::DECIDE,
        }
    }

    /// The operation named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// What to do, with every target already validated against the API base.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Start a BOT.
    Execute(Execute),
    /// Read one job.
    ReferJob {
        /// The job reference endpoint.
        job: JobEndpoint,
    },
    /// List the API-published BOTs of a contract.
    ListBots {
        /// The contract.
        public_id: PublicId,
    },
    /// Settle an idempotency record whose outcome is unknown (operators, direct invoke only).
    ResolveIdempotency {
        /// The record's key, as shown in the error or log (`request:...`, `http:...`).
        key: RecordKey,
        /// What the operator found.
        resolution: Resolution,
    },
    /// Cloud BOT's callback for the job of a callback-driven task (docs/state-machines.md).
    Callback {
        /// The id from the callback URL, checked for shape only; `None` when the path segment
        /// does not have an id's shape (answered `Callback.NotFound` like an unknown id, with
        /// no lookup).
        id: Option<CallbackId>,
    },
    /// Cloud BOT's "BOT done" webhook: the subscribed BOT, the path token and the job the body
    /// names (a signal to re-read that job, never its result).
    BotDone(crate::bot_done::BotDone),
    /// Decide a managed schedule's tick (the execute it would run, whose `schedule` is set)
    /// and answer the decision; nothing is sent to Cloud BOT and no key is claimed.
    ScheduleTick(Execute),
    /// A Step Functions execution of the stack changed status (docs/orphans.md).
    ExecutionEnded(crate::orphans::StatusChange),
    /// Sweep the run ledger's open runs (docs/orphans.md).
    Sweep,
    /// Decide whether the failed job of the execute's current attempt is run again; nothing
    /// is sent to Cloud BOT and no key is claimed.
    DecideRerun(Execute, crate::rerun::FailedJob),
}

impl Operation {
    /// Which operation this is.
    pub fn kind(&self) -> OperationKind {
        match self {
            Operation::Execute(_) => OperationKind::Execute,
            Operation::ReferJob { .. } => OperationKind::ReferJob,
            Operation::ListBots { .. } => OperationKind::ListBots,
            Operation::ResolveIdempotency { .. } => OperationKind::ResolveIdempotency,
            Operation::Callback { .. } => OperationKind::Callback,
            Operation::BotDone(_) => OperationKind::BotDone,
            Operation::ScheduleTick(_) => OperationKind::ScheduleTick,
            Operation::ExecutionEnded(_) => OperationKind::ExecutionEnded,
            Operation::Sweep => OperationKind::Sweep,
            Operation::DecideRerun(..) => OperationKind::DecideRerun,
        }
    }

    /// The execute to run, if this is one (triggers add its key and task token).
    pub fn execute_mut(&mut self) -> Option<&mut Execute> {
        match self {
            Operation::Execute(execute) => Some(execute),
            _ => None,
        }
    }
}

/// An execute: the BOT, the body, and what makes it run exactly once.
#[derive(Debug, Clone)]
pub struct Execute {
    /// The BOT execution endpoint.
    pub bot: BotEndpoint,
    /// True when the request named no BOT and the configured default is used.
    pub default_bot: bool,
    /// The execute body (input, callback, timeout).
    pub body: ExecuteRequest,
    /// The key that makes a repeated delivery start the BOT at most once
    /// (docs/exactly-once.md). `None`: not deduplicated.
    pub idempotency_key: Option<RecordKey>,
    /// The token of a Step Functions task waiting for the job's end (`.waitForTaskToken`, the
    /// envelope's `task_token`); the job is started with our callback.
    pub task_token: Option<TaskToken>,
    /// The tick of a managed schedule (a Scheduler envelope with a `definition`): decided at
    /// fire time before the key is claimed, and the key is then the nominal occurrence's
    /// (docs/schedules.md). `None` for every other execute.
    pub schedule: Option<ScheduleTick>,
    /// The run's maximum run time (`max_run_seconds`; docs/overrun.md), recorded in the run
    /// ledger at the start. `None`: the stack default, if any.
    pub max_run: Option<std::time::Duration>,
    /// `priority`: past the budget's stop level only `high` runs (docs/usage.md, "Budget").
    pub priority: Priority,
    /// `keep_running`: the job is left running when its workflow fails, times out or is
    /// stopped (recorded in the run ledger; docs/orphans.md).
    pub keep_running: bool,
    /// `rerun`: run the BOT again when its job ends failed (docs/state-machines.md, "Re-run
    /// on failure"); the shipped RunBot state machine runs the loop.
    pub rerun: Option<crate::rerun::Policy>,
    /// The attempt this execute starts (the state machine's `attempt` envelope field);
    /// recorded in the run ledger. `None`: not part of a re-run loop.
    pub attempt: Option<crate::rerun::Attempt>,
    /// The Step Functions execution ARN that sends this execute (the envelope's `execution`,
    /// src/trigger/execution.rs): recorded in the run ledger for the orphan paths
    /// (docs/orphans.md); not sent, not part of the fingerprint.
    pub execution: Option<String>,
    /// Who signed an API Gateway request: the IAM principal's ARN the authorizer verified
    /// (src/trigger/route.rs), recorded in the run ledger as the run's `caller`
    /// (docs/ledger.md); `None` for every other trigger. Not sent, not part of the fingerprint.
    pub caller: Option<String>,
}

/// What an operator found for a record whose outcome is unknown.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// A job was started: this one (checked with refer_job before it is recorded); replay it
    /// from now on.
    Started(JobEndpoint),
    /// No job was started; free the key.
    NotStarted,
}

impl Resolution {
    /// The job an operator found, for `started`.
    pub fn job(&self) -> Option<&JobEndpoint> {
        match self {
            Resolution::Started(job) => Some(job),
            Resolution::NotStarted => None,
        }
    }
}

/// A validated logical request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation and its target.
    pub operation: Operation,
    /// Language of Cloud BOT messages (request value or the configured default).
    pub language: Language,
}

/// The string value of `field`, or an error naming it and the type it has instead.
fn str_field<'a>(value: &'a Value, field: &str) -> Result<&'a str, RequestError> {
    value.as_str().ok_or_else(|| {
        RequestError::field(field, format!("must be a string, not {}", kind_of(value)))
    })
}

/// The non-negative whole number value of `field`, or an error naming it.
fn uint_field(value: &Value, field: &str) -> Result<u64, RequestError> {
    value.as_u64().ok_or_else(|| {
        RequestError::field(
            field,
            format!(
                "must be a non-negative whole number, not {}",
                kind_of(value)
            ),
        )
    })
}

/// JSON type name for error messages (never the value: it may be user data).
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a whole number",
        Value::Number(n) if n.is_i64() => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
