//! s3-transform's configuration, read once at cold start: the common part (bucket, zones),
//! where the pipeline config is, read limits, where the HMAC key of the `hash` rule comes from,
//! and the PostgreSQL connection (`DATABASE_URL` or a Secrets Manager secret in the RDS JSON
//! format, with TLS when configured). [`Config::from_env`] reads and checks every variable;
//! the secrets are then resolved once ([`Config::hash_key`], [`Config::database`]); the database
//! secret is read again when PostgreSQL refuses its credentials ([`Config::credentials`]).

use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;
use sluice_core::config::{PiiRule, PipelineConfig};
use sluice_core::env::{self, env_parse, Common};
use tokio_postgres::config::SslMode;

use crate::error::TransformError;
use crate::input::{Limits, DEFAULT_MAX_DECOMPRESSED, DEFAULT_MAX_LINE};
use crate::pii::HashKey;

/// A libpq-style URL or key/value string (local use; in AWS use the secret).
pub const DATABASE_URL: &str = "DATABASE_URL";
/// Secrets Manager secret (RDS JSON format) with the database credentials.
pub const DB_SECRET_ARN: &str = "SLUICE_DB_SECRET_ARN";
/// `require` (TLS, certificate verified) or `disable`.
pub const DB_TLS: &str = "SLUICE_DB_TLS";
/// PEM file of extra CA certificates for the database (e.g. the RDS CA bundle).
pub const DB_CA_FILE: &str = "SLUICE_DB_CA_FILE";
/// Host to connect to instead of the secret's `host`: an RDS Proxy endpoint in front of the
/// cluster the secret names (TLS is verified against this name).
pub const DB_HOST: &str = "SLUICE_DB_HOST";
/// The HMAC key of the `hash` PII rule (at least 16 bytes).
pub const HMAC_KEY: &str = "SLUICE_HMAC_KEY";
/// Secrets Manager secret whose string is the HMAC key.
pub const HMAC_SECRET_ARN: &str = "SLUICE_HMAC_SECRET_ARN";
/// Cap on decompressed bytes per object.
pub const MAX_DECOMPRESSED_BYTES: &str = "SLUICE_MAX_DECOMPRESSED_BYTES";
/// Cap on one line / CSV record.
pub const MAX_LINE_BYTES: &str = "SLUICE_MAX_LINE_BYTES";

/// Where a secret value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value itself, from the environment.
    Value(String),
    /// A Secrets Manager secret whose string is the value.
    Arn(String),
}

/// Where the database connection comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// [`DATABASE_URL`]: a libpq-style URL or key/value string.
    Url(String),
    /// [`DB_SECRET_ARN`]: a secret in the RDS JSON format (TLS unless disabled).
    Secret(String),
}

/// Everything s3-transform reads from its environment. No `Debug`: it holds secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub common: Common,
    /// The pipeline config's location ([`env::CONFIG`]).
    pub config_location: String,
    /// How often a new version of it is looked for ([`env::CONFIG_TTL`]).
    pub config_ttl: std::time::Duration,
    /// [`MAX_DECOMPRESSED_BYTES`], [`MAX_LINE_BYTES`].
    pub limits: Limits,
    /// [`HMAC_KEY`] or [`HMAC_SECRET_ARN`] (the value wins when both are set).
    pub hmac: Option<Secret>,
    pub database: Database,
    /// [`DB_TLS`]: `Some(true)` for `require`, `Some(false)` for `disable`.
    pub db_tls: Option<bool>,
    /// [`DB_CA_FILE`].
    pub db_ca_file: Option<String>,
    /// [`DB_HOST`] (with [`DB_SECRET_ARN`] only).
    pub db_host: Option<String>,
}

/// A variable's value, if set and not blank.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self, TransformError> {
        let limits = Limits {
            max_decompressed: env_parse(MAX_DECOMPRESSED_BYTES, DEFAULT_MAX_DECOMPRESSED)?,
            max_line: env_parse(MAX_LINE_BYTES, DEFAULT_MAX_LINE)?,
        };
        if limits.max_decompressed == 0 || limits.max_line == 0 {
            return Err(TransformError::Settings(format!(
                "{MAX_DECOMPRESSED_BYTES} and {MAX_LINE_BYTES} must be positive"
            )));
        }
        let hmac = hmac_from_env();
        let database = match (var(DATABASE_URL), var(DB_SECRET_ARN)) {
            (Some(url), _) => Database::Url(url),
            (None, Some(arn)) => Database::Secret(arn),
            (None, None) => {
                return Err(TransformError::Settings(format!(
                    "set {DATABASE_URL} or {DB_SECRET_ARN}"
                )))
            }
        };
        let db_host = var(DB_HOST);
        if db_host.is_some() && matches!(database, Database::Url(_)) {
            return Err(TransformError::Settings(format!(
                "{DB_HOST} replaces the host of {DB_SECRET_ARN}; with {DATABASE_URL} put the host in the URL"
            )));
        }
        if let Some(h) = &db_host {
            if h.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(TransformError::Settings(format!(
                    "{DB_HOST}: not a host name: {h:?}"
                )));
            }
        }
        let db_tls = match var(DB_TLS).as_deref() {
            Some("require") => Some(true),
            Some("disable") => Some(false),
            Some(other) => {
                return Err(TransformError::Settings(format!(
                    "{DB_TLS}: expected require or disable, got {other:?}"
                )))
            }
            None => None,
        };
        Ok(Config {
            common: Common::from_env()?,
            config_location: env::config_location()?,
            config_ttl: env::config_ttl()?,
            limits,
            hmac,
            database,
            db_tls,
            db_ca_file: var(DB_CA_FILE),
            db_host,
        })
    }

    /// The HMAC key of the `hash` rule; required when a dataset uses `hash`.
    pub async fn hash_key(
        &self,
        cfg: &PipelineConfig,
        sm: &aws_sdk_secretsmanager::Client,
    ) -> Result<Option<HashKey>, TransformError> {
        hash_key_of(self.hmac.as_ref(), cfg, sm).await
    }

    /// Where the database credentials are read again after an authentication failure: the
    /// secret, when the connection comes from one ([`DB_SECRET_ARN`]).
    pub fn credentials(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
    ) -> Option<Box<dyn crate::warehouse::Credentials>> {
        match &self.database {
            Database::Secret(arn) => Some(Box::new(SecretCredentials::new(sm.clone(), arn))),
            Database::Url(_) => None,
        }
    }

    /// The PostgreSQL connection config and TLS connector.
    pub async fn database(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
    ) -> Result<
        (
            tokio_postgres::Config,
            Option<tokio_postgres_rustls::MakeRustlsConnect>,
        ),
        TransformError,
    > {
        let mut config = match &self.database {
            Database::Url(url) => tokio_postgres::Config::from_str(url)
                .map_err(|e| TransformError::Settings(format!("{DATABASE_URL}: {e}")))?,
            Database::Secret(arn) => {
                let s = rds_secret(sm, arn).await?;
                let mut c = tokio_postgres::Config::new();
                c.host(self.db_host.as_deref().unwrap_or(&s.host))
                    .port(s.port.unwrap_or(5432))
                    .user(&s.username)
                    .password(s.password)
                    .dbname(s.dbname.as_deref().unwrap_or("postgres"));
                // Secrets are for deployed databases: TLS unless explicitly disabled.
                c.ssl_mode(SslMode::Require);
                c
            }
        };
        config.application_name("sluice-s3-transform");
        // "relation already exists, skipping" and friends are not worth a log line per invocation.
        config.options("-c client_min_messages=warning");
        config.connect_timeout(std::time::Duration::from_secs(5));
        match self.db_tls {
            Some(true) => {
                config.ssl_mode(SslMode::Require);
            }
            Some(false) => {
                config.ssl_mode(SslMode::Disable);
            }
            None => {}
        }
        let tls = if config.get_ssl_mode() == SslMode::Disable {
            None
        } else {
            Some(tls_connector(self.db_ca_file.as_deref(), true)?)
        };
        Ok((config, tls))
    }
}

/// The `hash` rule's key from [`HMAC_KEY`] or [`HMAC_SECRET_ARN`] as the function reads them
/// (the value wins when both are set): for tools that run the transform outside Lambda.
pub async fn hash_key_from_env(
    cfg: &PipelineConfig,
    sm: &aws_sdk_secretsmanager::Client,
) -> Result<Option<HashKey>, TransformError> {
    hash_key_of(hmac_from_env().as_ref(), cfg, sm).await
}

/// [`HMAC_KEY`] or [`HMAC_SECRET_ARN`] (the value wins when both are set).
fn hmac_from_env() -> Option<Secret> {
    match (var(HMAC_KEY), var(HMAC_SECRET_ARN)) {
        (Some(k), _) => Some(Secret::Value(k)),
        (None, Some(arn)) => Some(Secret::Arn(arn)),
        (None, None) => None,
    }
}

/// The `hash` rule's key from a configured secret; an error when a dataset needs one and none
/// is configured, or it is shorter than 16 bytes.
async fn hash_key_of(
    hmac: Option<&Secret>,
    cfg: &PipelineConfig,
    sm: &aws_sdk_secretsmanager::Client,
) -> Result<Option<HashKey>, TransformError> {
    let raw = match hmac {
        Some(Secret::Value(k)) => Some(k.clone()),
        Some(Secret::Arn(arn)) => Some(secret_string(sm, arn, HMAC_SECRET_ARN).await?),
        None => None,
    };
    match raw {
        Some(k) => HashKey::new(k.into_bytes()).map(Some).ok_or_else(|| {
            TransformError::Settings(format!("{HMAC_KEY}: the key must be at least 16 bytes"))
        }),
        None if needs_hash_key(cfg) => Err(TransformError::Settings(format!(
            "a dataset uses the pii rule hash: set {HMAC_KEY} or {HMAC_SECRET_ARN}"
        ))),
        None => Ok(None),
    }
}

/// The user name and password of the database secret, read again on demand (a rotated secret:
/// see [`crate::warehouse::Credentials`]).
pub struct SecretCredentials {
    sm: aws_sdk_secretsmanager::Client,
    arn: String,
}

impl SecretCredentials {
    /// The credentials in the RDS secret `arn`.
    pub fn new(sm: aws_sdk_secretsmanager::Client, arn: impl Into<String>) -> Self {
        SecretCredentials {
            sm,
            arn: arn.into(),
        }
    }
}

#[async_trait::async_trait]
impl crate::warehouse::Credentials for SecretCredentials {
    async fn current(&self) -> Result<(String, String), TransformError> {
        // At run time a secret that cannot be read now is retried, not a settings error.
        let s = rds_secret(&self.sm, &self.arn)
            .await
            .map_err(|e| TransformError::Postgres {
                op: "read the database secret",
                table: String::new(),
                message: e.to_string(),
                retryable: true,
                connection: true,
            })?;
        tracing::info!("read the database secret again");
        Ok((s.username, s.password))
    }
}

async fn rds_secret(
    sm: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<RdsSecret, TransformError> {
    serde_json::from_str(&secret_string(sm, arn, DB_SECRET_ARN).await?).map_err(|e| {
        TransformError::Settings(format!(
            "{DB_SECRET_ARN}: not an RDS secret (host, port, username, password, dbname): {e}"
        ))
    })
}

/// Whether a warm s3-transform may adopt `new` in place of `old` (see
/// `sluice_core::aws::ConfigWatch`): its loader is bound to the warehouse schema and its HMAC
/// key was read (or not) at cold start, so a new schema, or a `hash` rule without a key, waits
/// for new sandboxes (a redeploy); everything else (datasets, fields, filters, PII rules,
/// rollups) is adopted.
pub fn reload_check(
    old: &PipelineConfig,
    new: &PipelineConfig,
    has_hash_key: bool,
) -> Result<(), String> {
    if old.warehouse.schema != new.warehouse.schema {
        return Err(format!(
            "[warehouse] schema changed from {:?} to {:?}: redeploy s3-transform to load into the new schema",
            old.warehouse.schema, new.warehouse.schema
        ));
    }
    if needs_hash_key(new) && !has_hash_key {
        return Err(format!(
            "a dataset uses the pii rule hash but this container has no key: set {HMAC_KEY} or {HMAC_SECRET_ARN} and redeploy"
        ));
    }
    Ok(())
}

/// [`reload_check`] for a container whose HMAC key was (`true`) or was not read at cold start.
pub fn reload_check_with(has_hash_key: bool) -> sluice_core::aws::ConfigCheck {
    Box::new(move |old, new| reload_check(old, new, has_hash_key))
}

/// Whether any dataset uses the `hash` rule.
pub fn needs_hash_key(cfg: &PipelineConfig) -> bool {
    cfg.datasets.iter().any(|d| {
        d.pii.values().any(|r| *r == PiiRule::Hash)
            || d.json_pii.iter().any(|(_, _, r)| *r == PiiRule::Hash)
    })
}

async fn secret_string(
    sm: &aws_sdk_secretsmanager::Client,
    arn: &str,
    var: &str,
) -> Result<String, TransformError> {
    let out = sm
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            TransformError::Settings(format!(
                "{var}: cannot read the secret: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| TransformError::Settings(format!("{var}: the secret has no string value")))
}

/// The RDS secret JSON format.
#[derive(Debug, Deserialize)]
struct RdsSecret {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    username: String,
    password: String,
    #[serde(default)]
    dbname: Option<String>,
}

/// A rustls connector (certificates and host names verified) trusting `ca_file` (PEM) and,
/// when `system_roots`, the system's root certificates.
pub fn tls_connector(
    ca_file: Option<&str>,
    system_roots: bool,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TransformError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    if system_roots {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| TransformError::Settings(format!("{DB_CA_FILE}: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| TransformError::Settings(format!("{DB_CA_FILE}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| TransformError::Settings(format!("{DB_CA_FILE}: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransformError::Settings(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
