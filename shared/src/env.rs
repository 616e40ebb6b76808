//! Environment settings read at cold start: names, defaults and parsing with clear errors.
//!
//! Every variable sluice reads is named here, so the README's table and the code agree.

use crate::error::{Error, Result};
use crate::lake::keys::validate_prefix;

/// The data bucket.
pub const BUCKET: &str = "SLUICE_BUCKET";
/// The pipeline config: a local path or `s3://bucket/key`.
pub const CONFIG: &str = "SLUICE_CONFIG";
/// Seconds between checks of an `s3://` pipeline config for a new version (0: every
/// invocation; default [`DEFAULT_CONFIG_TTL_SECS`], at most [`MAX_CONFIG_TTL_SECS`]).
pub const CONFIG_TTL: &str = "SLUICE_CONFIG_TTL_SECS";
/// Default of [`CONFIG_TTL`].
pub const DEFAULT_CONFIG_TTL_SECS: u64 = 60;
/// Largest [`CONFIG_TTL`].
pub const MAX_CONFIG_TTL_SECS: u64 = 3600;
/// Force S3 path-style addressing (`true`/`false`).
pub const FORCE_PATH_STYLE: &str = "SLUICE_S3_FORCE_PATH_STYLE";
/// Prefix of the raw zone (default `raw/`).
pub const RAW_PREFIX: &str = "SLUICE_RAW_PREFIX";
/// Prefix of the quarantine zone (default `quarantine/`).
pub const QUARANTINE_PREFIX: &str = "SLUICE_QUARANTINE_PREFIX";
/// Prefix of the curated zone (default `curated/`).
pub const CURATED_PREFIX: &str = "SLUICE_CURATED_PREFIX";
/// Prefix of the dead-letter zone (default `dead-letter/`).
pub const DEAD_LETTER_PREFIX: &str = "SLUICE_DEAD_LETTER_PREFIX";
/// The stream `sluice quarantine requeue` puts records into (name or ARN).
pub const STREAM: &str = "SLUICE_STREAM";
/// Upper bound on concurrent object writes in one invocation (default 8).
pub const MAX_CONCURRENCY: &str = "SLUICE_MAX_CONCURRENCY";
/// CloudWatch namespace of the EMF metrics (default `sluice`).
pub const METRICS_NAMESPACE: &str = "SLUICE_METRICS_NAMESPACE";

/// A required environment variable.
pub fn env_required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::env(name, "is required and not set")),
    }
}

/// An optional environment variable with a default.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// An optional environment variable parsed as `T`, with a default.
pub fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|e| Error::env(name, e)),
        _ => Ok(default),
    }
}

/// The zone prefixes of the lake, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zones {
    /// Prefix of the raw zone ([`RAW_PREFIX`], default `raw/`).
    pub raw: String,
    /// Prefix of the quarantine zone ([`QUARANTINE_PREFIX`], default `quarantine/`).
    pub quarantine: String,
    /// Prefix of the curated zone ([`CURATED_PREFIX`], default `curated/`).
    pub curated: String,
    /// Prefix of the dead-letter zone ([`DEAD_LETTER_PREFIX`], default `dead-letter/`).
    pub dead_letter: String,
}

impl Default for Zones {
    fn default() -> Self {
        Zones {
            raw: "raw/".into(),
            quarantine: "quarantine/".into(),
            curated: "curated/".into(),
            dead_letter: "dead-letter/".into(),
        }
    }
}

impl Zones {
    /// Reads the four prefixes from the environment (defaults `raw/`, `quarantine/`,
    /// `curated/`, `dead-letter/`); they must be distinct and none may contain another.
    pub fn from_env() -> Result<Self> {
        let d = Zones::default();
        let z = Zones {
            raw: env_or(RAW_PREFIX, &d.raw),
            quarantine: env_or(QUARANTINE_PREFIX, &d.quarantine),
            curated: env_or(CURATED_PREFIX, &d.curated),
            dead_letter: env_or(DEAD_LETTER_PREFIX, &d.dead_letter),
        };
        z.validate()?;
        Ok(z)
    }

    /// Checks shapes and that no zone's prefix is inside another's (which would let one
    /// function's output trigger a function it must not).
    pub fn validate(&self) -> Result<()> {
        let all = [
            (RAW_PREFIX, &self.raw),
            (QUARANTINE_PREFIX, &self.quarantine),
            (CURATED_PREFIX, &self.curated),
            (DEAD_LETTER_PREFIX, &self.dead_letter),
        ];
        for (name, p) in all {
            validate_prefix(name, p)?;
        }
        for (i, (na, a)) in all.iter().enumerate() {
            for (nb, b) in &all[i + 1..] {
                if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                    return Err(Error::env(na, format!("{a:?} overlaps {nb}={b:?}")));
                }
            }
        }
        Ok(())
    }
}

/// The part of every function's configuration that is read from the same variables: the data
/// bucket ([`BUCKET`]) and the zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// The data bucket's name ([`BUCKET`], required).
    pub bucket: String,
    /// The zone prefixes, validated by [`Zones::from_env`].
    pub zones: Zones,
}

impl Common {
    /// Reads and validates [`BUCKET`] and the zone prefixes.
    pub fn from_env() -> Result<Self> {
        Ok(Common {
            bucket: env_required(BUCKET)?,
            zones: Zones::from_env()?,
        })
    }
}

/// Where the pipeline config is ([`CONFIG`]: a local path or `s3://bucket/key`).
pub fn config_location() -> Result<String> {
    env_required(CONFIG)
}

/// How often a warm function checks its `s3://` config for a new version ([`CONFIG_TTL`]).
pub fn config_ttl() -> Result<std::time::Duration> {
    let secs = env_parse(CONFIG_TTL, DEFAULT_CONFIG_TTL_SECS)?;
    if secs > MAX_CONFIG_TTL_SECS {
        return Err(Error::env(
            CONFIG_TTL,
            format!("at most {MAX_CONFIG_TTL_SECS} seconds, got {secs}"),
        ));
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_must_not_overlap() {
        assert!(Zones::default().validate().is_ok());
        let mut z = Zones {
            curated: "raw/curated/".into(),
            ..Zones::default()
        };
        assert!(z.validate().is_err());
        z.curated = "raw/".into();
        assert!(z.validate().is_err());
    }
}
