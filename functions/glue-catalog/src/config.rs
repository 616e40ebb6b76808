//! glue-catalog's configuration, read once at cold start: the common part (bucket, zones) and
//! where the pipeline config is.

use sluice_core::config::PipelineConfig;
use sluice_core::env::{self, Common};
use sluice_core::Result;

/// Everything glue-catalog reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub common: Common,
    /// The pipeline config's location ([`env::CONFIG`]).
    pub config_location: String,
    /// How often a new version of it is looked for ([`env::CONFIG_TTL`]).
    pub config_ttl: std::time::Duration,
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self> {
        Ok(Config {
            common: Common::from_env()?,
            config_location: env::config_location()?,
            config_ttl: env::config_ttl()?,
        })
    }
}

/// Whether a warm glue-catalog may adopt `new` in place of `old` (see
/// `sluice_core::aws::ConfigWatch`): its catalog cache belongs to the database it started with,
/// so a new `[catalog] database` waits for new sandboxes (a redeploy); everything else is
/// adopted.
pub fn reload_check(old: &PipelineConfig, new: &PipelineConfig) -> Result<(), String> {
    if old.catalog.database != new.catalog.database {
        return Err(format!(
            "[catalog] database changed from {:?} to {:?}: redeploy glue-catalog to catalogue into the new database",
            old.catalog.database, new.catalog.database
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_catalog_database_waits_for_a_redeploy() {
        let toml = |db: &str| {
            format!(
                "[pipeline]\nrouting_field = \"type\"\n[catalog]\ndatabase = \"{db}\"\n[[dataset]]\nname = \"a\"\nroute = \"a\"\nfields = [{{ name = \"id\", type = \"string\" }}]\n"
            )
        };
        let old = PipelineConfig::from_toml(&toml("lake")).expect("config");
        let same = PipelineConfig::from_toml(&toml("lake")).expect("config");
        let moved = PipelineConfig::from_toml(&toml("other")).expect("config");
        assert!(reload_check(&old, &same).is_ok());
        let err = reload_check(&old, &moved).expect_err("refused");
        assert!(err.contains("\"lake\" to \"other\""), "{err}");
    }
}
