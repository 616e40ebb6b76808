//! glue-catalog's configuration, read once at cold start: the common part (bucket, zones) and
//! where the pipeline config is.

use sluice_core::env::{self, Common};
use sluice_core::Result;

/// Everything glue-catalog reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub common: Common,
    /// The pipeline config's location ([`env::CONFIG`]).
    pub config_location: String,
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self> {
        Ok(Config {
            common: Common::from_env()?,
            config_location: env::config_location()?,
        })
    }
}
