//! What becomes of each run queue message, and the `ReportBatchItemFailures` answer that tells
//! SQS (docs/queue.md, "What becomes of a message"). The rule is the error table's own
//! `retryable` column, with one exception that matters more than any other: an execute whose
//! outcome is unknown is never put back, since a redelivery could start a second billed run.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use serde_json::value::RawValue;

use crate::error::ErrorKind;
use crate::error::kind::{self, CLOUDBOT_OUTCOME_UNKNOWN};

/// The fate of one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Handled (a job started, or a replay of the one that did): deleted by SQS.
    Done,
    /// Provably started no job and may succeed later: reported failed, so SQS delivers it again
    /// after its visibility timeout (and moves it to the dead-letter queue after the queue's
    /// `maxReceiveCount` receives).
    Redelivered,
    /// Will not succeed as sent (invalid, refused by Cloud BOT): the function moves it to the
    /// run dead-letter queue itself ([`Fate::after_move`]); when it cannot, reported failed, so
    /// it ends there after `maxReceiveCount` receives instead of being lost; the log says why.
    DeadLettered,
    /// A [`Fate::DeadLettered`] message the function sent to the run dead-letter queue with its
    /// reason: deleted by SQS (a copy waits in the dead-letter queue).
    Moved,
    /// It is unknown whether a job started: deleted (never reported failed), recorded in the
    /// idempotency record as unknown, counted and alarmed.
    Unknown,
    /// Its contract's cap on running jobs was reached (or its slots could not be read): nothing
    /// was sent; reported failed and put back with a delay growing with its receives
    /// (docs/queue.md, "Admission control").
    Waiting,
}

impl Fate {
    /// The fate of a message whose request failed with `kind`.
    pub fn of_failure(kind: &ErrorKind) -> Fate {
        if kind.name == CLOUDBOT_OUTCOME_UNKNOWN.name {
            Fate::Unknown
        } else if kind.retryable {
            Fate::Redelivered
        } else {
            Fate::DeadLettered
        }
    }

    /// The fate once the function tried to move a message to the dead-letter queue (`moved`:
    /// the send succeeded). Only a dead-lettered message is ever moved; one that could not be
    /// stays reported failed, so SQS still moves it after `maxReceiveCount` receives.
    pub fn after_move(self, moved: bool) -> Fate {
        match self {
            Fate::DeadLettered if moved => Fate::Moved,
            other => other,
        }
    }

    /// Whether SQS is told the message failed (a batch item failure).
    pub fn reported_failed(self) -> bool {
        matches!(self, Fate::Redelivered | Fate::DeadLettered | Fate::Waiting)
    }

    /// Stable name (logs, docs/queue.md).
    pub fn name(self) -> &'static str {
        match self {
            Fate::Done => "done",
            Fate::Redelivered => "redelivered",
            Fate::DeadLettered => "dead-lettered",
            Fate::Moved => "moved-to-dead-letter",
            Fate::Unknown => "kept-unknown",
            Fate::Waiting => "waiting",
        }
    }
}

/// Every error type with its fate, in the error table's order (docs/queue.md's table is
/// generated from it and checked by a test).
pub fn fate_table() -> impl Iterator<Item = (&'static ErrorKind, Fate)> {
    kind::ALL.iter().map(|kind| (*kind, Fate::of_failure(kind)))
}

/// The `ReportBatchItemFailures` answer: the ids of the messages reported failed.
pub fn encode_batch<'a>(
    fates: impl IntoIterator<Item = (&'a str, Fate)>,
) -> Result<Box<RawValue>, serde_json::Error> {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = fates
        .into_iter()
        .filter(|(_, fate)| fate.reported_failed())
        .map(|(id, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.to_owned();
            failure
        })
        .collect();
    serde_json::value::to_raw_value(&response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_outcome_is_never_a_batch_item_failure() {
        assert_eq!(Fate::of_failure(&CLOUDBOT_OUTCOME_UNKNOWN), Fate::Unknown);
        assert!(!Fate::Unknown.reported_failed());
        for (kind, fate) in fate_table() {
            // Redelivered only what the table calls safe to repeat.
            assert_eq!(fate == Fate::Redelivered, kind.retryable, "{}", kind.name);
        }
        assert_eq!(Fate::of_failure(&kind::INVALID_REQUEST), Fate::DeadLettered);
        assert_eq!(
            Fate::of_failure(&kind::CLOUDBOT_UNAVAILABLE),
            Fate::Redelivered
        );
    }

    #[test]
    fn only_a_dead_lettered_message_is_moved_and_a_failed_move_stays_reported_failed() {
        assert_eq!(Fate::DeadLettered.after_move(true), Fate::Moved);
        assert!(
            !Fate::Moved.reported_failed(),
            "SQS deletes a moved message"
        );
        assert_eq!(Fate::DeadLettered.after_move(false), Fate::DeadLettered);
        assert!(
            Fate::DeadLettered.reported_failed(),
            "SQS moves it after maxReceiveCount"
        );
        for fate in [Fate::Done, Fate::Redelivered, Fate::Unknown, Fate::Waiting] {
            assert_eq!(fate.after_move(true), fate);
            assert_eq!(fate.after_move(false), fate);
        }
        // Every error type that is dead-lettered is moved once the send succeeds.
        for (kind, fate) in fate_table() {
            let moved = fate.after_move(true) == Fate::Moved;
            assert_eq!(
                moved,
                !kind.retryable && kind.name != CLOUDBOT_OUTCOME_UNKNOWN.name
            );
        }
    }

    #[test]
    fn the_answer_names_the_failed_messages_only() {
        let raw = encode_batch([
            ("a", Fate::Done),
            ("b", Fate::Redelivered),
            ("c", Fate::Unknown),
            ("d", Fate::DeadLettered),
            ("e", Fate::Moved),
        ])
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"batchItemFailures": [
                {"itemIdentifier": "b"}, {"itemIdentifier": "d"}]})
        );
    }
}
