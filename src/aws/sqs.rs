//! The event queue: Image Builder's EventBridge events, delivered by an
//! EventBridge rule to an SQS queue the exporter long-polls.
//!
//! A narrow interface, [`EventQueue`], over the AWS SDK for SQS (the same
//! trimmed HTTP stack and credentials as Image Builder's client), so that
//! the event loop is tested with a fake queue and the simulator's queue
//! alike.

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

use super::errors::{classify_in, ErrorContext};
use super::{ApiError, Operation};

/// Long polls wait this long at most (SQS's maximum).
pub const WAIT: Duration = Duration::from_secs(20);

/// Messages per receive (SQS's maximum).
pub const BATCH: i32 = 10;

/// A message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// What deletes it.
    pub receipt: String,
    pub body: String,
}

/// What the exporter asks of its event queue.
pub trait EventQueue: Send + Sync + 'static {
    /// Up to `max` messages, waiting up to `wait` for the first.
    fn receive(
        &self,
        wait: Duration,
        max: i32,
    ) -> impl Future<Output = Result<Vec<QueueMessage>, ApiError>> + Send;

    /// Deletes messages by receipt; returns how many could not be deleted
    /// (they come back after their visibility timeout).
    fn delete(&self, receipts: Vec<String>)
        -> impl Future<Output = Result<usize, ApiError>> + Send;
}

/// [`EventQueue`] over the AWS SDK.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    /// Names the host, region and credentials in error lines.
    context: ErrorContext,
}

impl SqsQueue {
    /// A client of the queue at `url`, from a target's SDK configuration.
    /// Its attempts may last a long poll plus the usual request timeout.
    pub fn new(sdk: &aws_config::SdkConfig, url: &str, request_timeout: Duration) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3).min(request_timeout))
            .operation_attempt_timeout(WAIT + request_timeout)
            .build();
        // Unlike Image Builder's client (whose retries are ours, see
        // `retry`), the SDK's standard retries: a connection the service
        // closed or a passing 5xx is not worth a queue error and a warning,
        // and the loop's own back-off covers what lasts.
        let retries = RetryConfig::standard().with_max_attempts(3);
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .retry_config(retries)
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(config),
            url: url.to_string(),
            context: ErrorContext::default(),
        }
    }

    /// What the errors of this queue's client name: its endpoint, region,
    /// role and credential source.
    pub fn with_context(mut self, context: ErrorContext) -> Self {
        self.context = context;
        self
    }
}

impl EventQueue for SqsQueue {
    async fn receive(&self, wait: Duration, max: i32) -> Result<Vec<QueueMessage>, ApiError> {
        let op = Operation::ReceiveMessage;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait.as_secs().min(WAIT.as_secs()) as i32)
            .send()
            .await
            .map_err(|e| classify_in(&self.context, op, e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(QueueMessage {
                    receipt: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    async fn delete(&self, receipts: Vec<String>) -> Result<usize, ApiError> {
        let op = Operation::DeleteMessageBatch;
        let mut failed = 0;
        // At most ten entries per batch.
        for chunk in receipts.chunks(BATCH as usize) {
            let mut req = self.client.delete_message_batch().queue_url(&self.url);
            for (i, r) in chunk.iter().enumerate() {
                let entry = DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(r)
                    .build()
                    .map_err(|e| ApiError::Parse {
                        operation: op,
                        message: e.to_string(),
                    })?;
                req = req.entries(entry);
            }
            let out = req
                .send()
                .await
                .map_err(|e| classify_in(&self.context, op, e))?;
            failed += out.failed().len();
        }
        Ok(failed)
    }
}
