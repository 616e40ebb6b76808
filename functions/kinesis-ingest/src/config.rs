//! kinesis-ingest's configuration, read once at cold start: the common part (bucket, zones),
//! where the pipeline config is, and the bound on concurrent writes.

use sluice_core::env::{self, Common};
use sluice_core::{Error, Result};

/// Default bound on concurrent object writes.
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;

/// Everything kinesis-ingest reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub common: Common,
    /// The pipeline config's location ([`env::CONFIG`]).
    pub config_location: String,
    /// How often a new version of it is looked for ([`env::CONFIG_TTL`]).
    pub config_ttl: std::time::Duration,
    /// Upper bound on concurrent writes in one invocation ([`env::MAX_CONCURRENCY`], ≥ 1).
    pub max_concurrency: usize,
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self> {
        let max_concurrency = env::env_parse(env::MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY)?;
        if max_concurrency == 0 {
            return Err(Error::env(env::MAX_CONCURRENCY, "must be at least 1"));
        }
        Ok(Config {
            common: Common::from_env()?,
            config_location: env::config_location()?,
            config_ttl: env::config_ttl()?,
            max_concurrency,
        })
    }
}
