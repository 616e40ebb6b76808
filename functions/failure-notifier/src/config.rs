//! failure-notifier's configuration, read once at cold start: the common part (bucket, zones)
//! and the SNS topic of the alerts.

use sluice_core::env::{env_required, Common};
use sluice_core::Result;

/// The SNS topic alerts are published to.
pub const ALERT_TOPIC_ARN: &str = "SLUICE_ALERT_TOPIC_ARN";

/// Everything failure-notifier reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub common: Common,
    /// [`ALERT_TOPIC_ARN`].
    pub alert_topic_arn: String,
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self> {
        Ok(Config {
            common: Common::from_env()?,
            alert_topic_arn: env_required(ALERT_TOPIC_ARN)?,
        })
    }
}
