//! Putting a run queue message back for later: `ChangeMessageVisibility` on the lane it came
//! from, so a message that found its contract's cap reached is delivered again after a delay
//! that grows with its receives (`rules::wait_delay`), instead of after the queue's fixed
//! visibility timeout. The only code of admission that sees SQS types. The same client moves a
//! message that will never succeed to the run dead-letter queue at once (`dead_letter`,
//! docs/queue.md, "What becomes of a message").

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// The SQS client of the run queue's lanes.
#[derive(Debug, Clone)]
pub struct Visibility {
    client: aws_sdk_sqs::Client,
}

impl Visibility {
    /// From the function's SDK configuration, with short timeouts: the call happens inside a
    /// batch whose every message must get its fate before the deadline.
    pub fn new(sdk: &SdkConfig) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .operation_attempt_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(4))
            .build();
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(config),
        }
    }

    /// Makes the message `receipt_handle` of the queue `queue_arn` invisible for `delay` from
    /// now. The error is a fixed text with the service's error code (never the handle).
    pub async fn delay(
        &self,
        queue_arn: &str,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), String> {
        let url = queue_url(queue_arn).ok_or("the queue ARN is malformed")?;
        let seconds = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| match &err {
                SdkError::ServiceError(ctx) => format!(
                    "SQS ChangeMessageVisibility failed: {}",
                    ctx.err().code().unwrap_or("unknown error")
                ),
                _ => "SQS ChangeMessageVisibility could not be sent".to_owned(),
            })
    }
}

/// Why a message was moved to the dead-letter queue: its message attributes (no secret: the
/// error text is the one the log line has).
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterReason<'a> {
    /// The error type (`ErrorType` attribute).
    pub error_type: &'a str,
    /// The error's log text (`ErrorMessage`).
    pub error_message: &'a str,
    /// The lane it came from (`SourceLane`).
    pub lane: &'a str,
    /// Its message id on that lane (`SourceMessageId`).
    pub message_id: &'a str,
}

/// SQS refuses an attribute value above the message's own size limit; the error text is cut
/// well below it (a few lines is all an operator reads).
const MAX_ATTRIBUTE_CHARS: usize = 1024;

impl Visibility {
    /// Sends `body` to the queue `queue_url` with `reason` as message attributes. The error is a
    /// fixed text with the service's error code.
    pub async fn dead_letter(
        &self,
        queue_url: &str,
        body: &str,
        reason: &DeadLetterReason<'_>,
    ) -> Result<(), String> {
        let error_message: String = reason
            .error_message
            .chars()
            .take(MAX_ATTRIBUTE_CHARS)
            .collect();
        let mut send = self
            .client
            .send_message()
            .queue_url(queue_url)
            .message_body(body);
        for (name, value) in [
            ("ErrorType", reason.error_type),
            ("ErrorMessage", error_message.as_str()),
            ("SourceLane", reason.lane),
            ("SourceMessageId", reason.message_id),
        ] {
            // SQS refuses an empty attribute value.
            if value.is_empty() {
                continue;
            }
            let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|_| "an SQS message attribute could not be built".to_owned())?;
            send = send.message_attributes(name, attribute);
        }
        send.send().await.map(|_| ()).map_err(|err| match &err {
            SdkError::ServiceError(ctx) => format!(
                "SQS SendMessage failed: {}",
                ctx.err().code().unwrap_or("unknown error")
            ),
            _ => "SQS SendMessage could not be sent".to_owned(),
        })
    }
}

/// The URL of the queue `arn:aws:sqs:<region>:<account>:<name>` (what SQS calls take).
pub fn queue_url(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "sqs", region, account, name]
            if !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            let domain = if partition.starts_with("aws-cn") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_comes_from_its_arn() {
        assert_eq!(
            queue_url("arn:aws:sqs:eu-west-1:123456789012:app-runs-high").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/app-runs-high")
        );
        assert_eq!(
            queue_url("arn:aws-cn:sqs:cn-north-1:123456789012:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q")
        );
        for bad in [
            "",
            "arn:aws:sqs:eu-west-1:123456789012",
            "arn:aws:sns:r:1:q",
        ] {
            assert_eq!(queue_url(bad), None, "{bad}");
        }
    }
}
