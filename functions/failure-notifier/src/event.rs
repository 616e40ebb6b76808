//! The SQS event at the edge: Lambda's JSON payload → a [`QueueBatch`] of [`QueueMessage`]s, and
//! the handler's [`BatchOutcome`] → Lambda's `SqsBatchResponse`.
//!
//! Only the fields the function uses are read (message id and body), so a message is never
//! refused for an attribute nobody reads.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Deserialize;

/// One Lambda invocation's SQS messages, in delivery order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct QueueBatch {
    #[serde(rename = "Records", default)]
    pub messages: Vec<QueueMessage>,
}

/// One message of the on-failure queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueMessage {
    /// SQS's message id: how a failed message is reported back.
    pub message_id: Option<String>,
    /// The message body (an on-failure record, or anything else that arrived).
    pub body: Option<String>,
}

impl From<SqsEvent> for QueueBatch {
    fn from(event: SqsEvent) -> Self {
        QueueBatch {
            messages: event
                .records
                .into_iter()
                .map(|m| QueueMessage {
                    message_id: m.message_id,
                    body: m.body,
                })
                .collect(),
        }
    }
}

/// What one batch did: the messages SQS must deliver again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Message ids of the messages not archived or not alerted, in delivery order.
    pub failed: Vec<String>,
}

/// The handler's outcome as Lambda's response: one batch item failure per message to redeliver.
impl From<BatchOutcome> for SqsBatchResponse {
    fn from(outcome: BatchOutcome) -> Self {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = outcome
            .failed
            .into_iter()
            .map(|id| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                f
            })
            .collect();
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_id_and_body() {
        let b: QueueBatch = serde_json::from_str(
            r#"{"Records":[{"messageId":"m-1","receiptHandle":"r","body":"{}","attributes":{},"eventSource":"aws:sqs"},{"body":"x"}]}"#,
        )
        .expect("batch");
        assert_eq!(b.messages.len(), 2);
        assert_eq!(b.messages[0].message_id.as_deref(), Some("m-1"));
        assert_eq!(b.messages[1].message_id, None);
        let r = SqsBatchResponse::from(BatchOutcome {
            failed: vec!["m-1".into()],
        });
        assert_eq!(r.batch_item_failures[0].item_identifier, "m-1");
    }
}
