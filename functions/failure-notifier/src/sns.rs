//! The alerting port and its aws-sdk-sns adapter.
//!
//! An [`Alert`] is one SNS message: a short subject, a plain-text body and message attributes
//! that subscription filter policies can match (`kind`, `condition`, `function`, ...).

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use sluice_core::error::classify_sdk_error;

use crate::error::{Error, Result};

/// A message attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    String(String),
    Number(u64),
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub subject: String,
    pub body: String,
    /// Attribute names and values, in a stable order.
    pub attributes: Vec<(String, AttrValue)>,
}

impl Alert {
    /// The string value of an attribute.
    pub fn attribute(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// Sends alerts.
#[async_trait]
pub trait Alerter: Send + Sync {
    /// Publishes one alert.
    async fn publish(&self, alert: &Alert) -> Result<()>;
}

/// [`Alerter`] publishing to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsAlerter {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsAlerter {
    /// An alerter for a topic.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsAlerter {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Alerter for SnsAlerter {
    async fn publish(&self, alert: &Alert) -> Result<()> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&alert.subject)
            .message(&alert.body);
        for (name, value) in &alert.attributes {
            let v = match value {
                AttrValue::String(s) => MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(s),
                AttrValue::Number(n) => MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(n.to_string()),
            }
            .build()
            .map_err(|e| Error::Encode(e.to_string()))?;
            req = req.message_attributes(name, v);
        }
        req.send().await.map(|_| ()).map_err(|e| {
            let f = classify_sdk_error(&e);
            Error::Alert {
                topic: self.topic_arn.clone(),
                code: f.code,
                message: f.message,
                retryable: f.retryable,
            }
        })
    }
}
