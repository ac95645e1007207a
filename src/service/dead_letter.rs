//! Moving a run queue message that will never succeed to the run dead-letter queue at once
//! (docs/queue.md, "What becomes of a message"): the lanes' `maxReceiveCount` is high so that a
//! message waiting for a slot is not dead-lettered, which would leave an invalid one failing
//! for hours. The function sends its body with why it failed, and SQS then deletes it; when the
//! send cannot be made it stays reported failed and SQS moves it after `maxReceiveCount`.

use tokio::time::Instant;

use super::Service;
use crate::admission::DeadLetterReason;
use crate::error::Failure;
use crate::trigger::{Fate, Queued};

impl Service {
    /// The fate of `queued`, whose request failed with `failure` and got `fate`, once a
    /// dead-lettered one was moved (or could not be). The send ends by `deadline`: the batch
    /// answer must still be given, or every message of the batch (an unknown outcome too)
    /// would come back.
    pub(super) async fn move_dead_lettered(
        &self,
        queued: &Queued,
        failure: &Failure,
        fate: Fate,
        deadline: Instant,
    ) -> Fate {
        if fate != Fate::DeadLettered {
            return fate;
        }
        let moved = match (
            &self.config.run_dead_letter_queue_url,
            &self.visibility,
            &queued.body,
        ) {
            (Some(url), Some(sqs), Some(body)) => {
                let error_message = failure.log_text();
                let reason = DeadLetterReason {
                    error_type: failure.error_type(),
                    error_message: &error_message,
                    lane: queued.lane.name(),
                    message_id: &queued.message_id,
                };
                tokio::time::timeout_at(deadline, sqs.dead_letter(url, body, &reason))
                    .await
                    .unwrap_or_else(|_| Err("no time was left before the deadline".to_owned()))
            }
            (None, _, _) | (_, None, _) => Err("no run dead-letter queue is configured".to_owned()),
            (_, _, None) => Err("the message has no body to move".to_owned()),
        };
        if let Err(why) = &moved {
            tracing::warn!(
                message_id = queued.message_id.as_str(),
                error = why.as_str(),
                "the message could not be moved to the dead-letter queue: it stays reported \
                 failed until the queue's maxReceiveCount"
            );
        }
        fate.after_move(moved.is_ok())
    }
}
