//! Job-finished events (issue 22): every job end the product learns of is put once on the
//! stack's EventBridge bus, so other systems chain on a BOT's end without polling. Detail types,
//! the detail's shape, what is guaranteed and an example rule: docs/events.md.
//!
//! Who publishes: the one learner that recorded the end in the run ledger
//! (`Learned::EndRecorded`, a conditional write), so a callback and a poll learning one end at
//! the same moment put one event; an execute that Cloud BOT refused (provably no job) puts a
//! `failed to start` event. Publishing never fails the invocation: a failed put is logged
//! without secrets and counted (`EventPublishFailures`).
//!
//! - `detail`: the detail types and the event details (pure values, serialized as documented).
//! - `eventbridge`: the adapter (one `PutEvents` per event), the only code here with SDK types.

mod detail;
mod eventbridge;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

pub use detail::{DETAIL_TYPES, DetailType, Ended, NotStarted, SOURCE, rfc3339 as detail_time};
pub use eventbridge::EventBridgeBus;

/// One event to put: its detail type and its detail (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The detail type (`DetailType::name`).
    pub detail_type: DetailType,
    /// The detail, a JSON object.
    pub detail: String,
}

/// A put that failed: the error code or a fixed description, never the event's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

/// The future of a put.
pub type PutFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;

/// An event bus.
pub trait EventBus: Send + Sync + Debug {
    /// Puts `event` (one request).
    fn put<'a>(&'a self, event: &'a Event) -> PutFuture<'a>;
}

/// The job-finished events of the function: a bus. Built once per sandbox.
#[derive(Debug)]
pub struct JobEvents {
    bus: Box<dyn EventBus>,
}

impl JobEvents {
    /// Events put on `bus`.
    pub fn new(bus: impl EventBus + 'static) -> Self {
        Self { bus: Box::new(bus) }
    }

    /// Puts `event` within `deadline`.
    pub async fn publish(&self, event: &Event, deadline: Instant) -> Result<(), PublishError> {
        tokio::time::timeout_at(deadline, self.bus.put(event))
            .await
            .unwrap_or_else(|_| {
                Err(PublishError(
                    "no answer before the invocation's deadline".into(),
                ))
            })
    }
}
