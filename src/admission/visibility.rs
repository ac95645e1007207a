//! Putting a run queue message back for later: `ChangeMessageVisibility` on the lane it came
//! from, so a message that found its contract's cap reached is delivered again after a delay
//! that grows with its receives (`rules::wait_delay`), instead of after the queue's fixed
//! visibility timeout. The only code of admission that sees SQS types.

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
