//! http-collector's configuration, read once at cold start.

use std::time::Duration;

use sluice_core::env::{env_or, env_parse, env_required};
use sluice_core::{Error, Result};

use crate::body::{Limits, KINESIS_MAX_RECORD, MAX_PARTITION_KEY};

/// The stream records are written to (its name).
pub const STREAM: &str = "SLUICE_COLLECTOR_STREAM";
/// The Secrets Manager secret (name or ARN) holding the API keys.
pub const KEYS_SECRET: &str = "SLUICE_COLLECTOR_KEYS_SECRET";
/// How long the keys are cached, in seconds (default 300).
pub const KEYS_TTL_SECS: &str = "SLUICE_COLLECTOR_KEYS_TTL_SECS";
/// A record field (dotted path allowed) whose value is the partition key (default: none, a
/// hash of the record).
pub const PARTITION_KEY: &str = "SLUICE_COLLECTOR_PARTITION_KEY";
/// The largest body, as received (default 6 MiB, Lambda's synchronous payload limit).
pub const MAX_BODY_BYTES: &str = "SLUICE_COLLECTOR_MAX_BODY_BYTES";
/// The largest body once gzip is undone (default 64 MiB).
pub const MAX_DECODED_BYTES: &str = "SLUICE_COLLECTOR_MAX_DECODED_BYTES";
/// The most records in one request (default 10 000).
pub const MAX_RECORDS: &str = "SLUICE_COLLECTOR_MAX_RECORDS";
/// How long a request may spend writing and retrying, in ms (default 10 000; keep it below the
/// function timeout and the API's integration timeout).
pub const DEADLINE_MS: &str = "SLUICE_COLLECTOR_DEADLINE_MS";

/// Everything http-collector reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// [`STREAM`].
    pub stream: String,
    /// [`KEYS_SECRET`].
    pub keys_secret: String,
    /// [`KEYS_TTL_SECS`].
    pub keys_ttl: Duration,
    /// [`PARTITION_KEY`].
    pub partition_key: Option<String>,
    /// [`MAX_BODY_BYTES`], [`MAX_DECODED_BYTES`], [`MAX_RECORDS`].
    pub limits: Limits,
    /// [`DEADLINE_MS`].
    pub deadline: Duration,
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self> {
        let d = Limits::default();
        let limits = Limits {
            max_body: env_parse(MAX_BODY_BYTES, d.max_body)?,
            max_decoded: env_parse(MAX_DECODED_BYTES, d.max_decoded)?,
            max_records: env_parse(MAX_RECORDS, d.max_records)?,
            ..d
        };
        let partition_key = Some(env_or(PARTITION_KEY, ""))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let c = Config {
            stream: env_required(STREAM)?,
            keys_secret: env_required(KEYS_SECRET)?,
            keys_ttl: Duration::from_secs(env_parse(KEYS_TTL_SECS, 300u64)?),
            partition_key,
            limits,
            deadline: Duration::from_millis(env_parse(DEADLINE_MS, 10_000u64)?),
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the bounds.
    pub fn validate(&self) -> Result<()> {
        let l = &self.limits;
        if l.max_body < 1024 {
            return Err(Error::env(MAX_BODY_BYTES, "must be at least 1024"));
        }
        if l.max_decoded < l.max_body {
            return Err(Error::env(
                MAX_DECODED_BYTES,
                format!("must be at least {MAX_BODY_BYTES} ({})", l.max_body),
            ));
        }
        if l.max_records == 0 {
            return Err(Error::env(MAX_RECORDS, "must be at least 1"));
        }
        if l.max_record + MAX_PARTITION_KEY > KINESIS_MAX_RECORD {
            return Err(Error::env(
                MAX_BODY_BYTES,
                "record limit above Kinesis' 1 MiB",
            ));
        }
        if self.deadline < Duration::from_millis(100) || self.deadline > Duration::from_secs(29) {
            return Err(Error::env(
                DEADLINE_MS,
                "must be between 100 and 29000 (API Gateway answers 503 after 30 s)",
            ));
        }
        if let Some(p) = &self.partition_key {
            if p.split('.').any(str::is_empty) {
                return Err(Error::env(
                    PARTITION_KEY,
                    format!("{p:?} is not a field path"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config {
            stream: "s".into(),
            keys_secret: "k".into(),
            keys_ttl: Duration::from_secs(300),
            partition_key: Some("session.id".into()),
            limits: Limits::default(),
            deadline: Duration::from_secs(10),
        }
    }

    #[test]
    fn bounds_are_checked() {
        assert!(base().validate().is_ok());
        let mut c = base();
        c.deadline = Duration::from_secs(30);
        assert!(c.validate().unwrap_err().to_string().contains(DEADLINE_MS));
        let mut c = base();
        c.partition_key = Some("a..b".into());
        assert!(c.validate().is_err());
        let mut c = base();
        c.limits.max_decoded = 10;
        assert!(c.validate().is_err());
        let mut c = base();
        c.limits.max_records = 0;
        assert!(c.validate().is_err());
    }
}
