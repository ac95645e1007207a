//! The EventBridge adapter of the job-finished events: each event is one `PutEvents` entry on
//! the stack's bus (`CLOUDBOT_EVENT_BUS_NAME`). A put is not repeated on a guess beyond the
//! SDK's own retry of transient errors: an event is at most once per put (docs/events.md,
//! "What is guaranteed").

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{Event, EventBus, PublishError, PutFuture, SOURCE};

/// The stack's bus on EventBridge. Cheap to clone: the SDK client is shared.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    /// The bus `bus` (name or ARN) through `client` (built once, see `sdk.rs`).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> Self {
        Self { client, bus }
    }
}

impl EventBus for EventBridgeBus {
    fn put<'a>(&'a self, event: &'a Event) -> PutFuture<'a> {
        Box::pin(async move {
            let entry = PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(SOURCE)
                .detail_type(event.detail_type.name())
                .detail(&event.detail)
                .build();
            let output = self
                .client
                .put_events()
                .entries(entry)
                .send()
                .await
                .map_err(|err| failed(&err))?;
            // A request that succeeds may still refuse its entry (throttled, bus missing).
            if output.failed_entry_count() > 0 {
                let code = output
                    .entries()
                    .iter()
                    .find_map(|e| e.error_code())
                    .unwrap_or("unknown error");
                return Err(PublishError(format!(
                    "EventBridge PutEvents refused the entry: {code}"
                )));
            }
            Ok(())
        })
    }
}

/// A failed call as a fixed description plus the service's error code, never a body.
fn failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> PublishError {
    PublishError(match err {
        SdkError::ServiceError(ctx) => format!(
            "EventBridge PutEvents failed: {}",
            ctx.err().code().unwrap_or("unknown error")
        ),
        SdkError::TimeoutError(_) => "EventBridge PutEvents timed out".to_owned(),
        SdkError::DispatchFailure(_) => {
            "EventBridge PutEvents could not be sent (no connection)".to_owned()
        }
        SdkError::ResponseError(_) => "EventBridge PutEvents answer could not be read".to_owned(),
        _ => "EventBridge PutEvents could not be built".to_owned(),
    })
}
