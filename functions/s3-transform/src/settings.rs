//! Cold-start settings of s3-transform: read limits, the HMAC key of the `hash` rule, and the
//! PostgreSQL connection (from `DATABASE_URL` or a Secrets Manager secret in the RDS JSON
//! format), with TLS when configured.

use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;
use sluice_core::config::{PiiRule, PipelineConfig};
use sluice_core::env::{env_parse, env_required};
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
/// The HMAC key of the `hash` PII rule (at least 16 bytes).
pub const HMAC_KEY: &str = "SLUICE_HMAC_KEY";
/// Secrets Manager secret whose string is the HMAC key.
pub const HMAC_SECRET_ARN: &str = "SLUICE_HMAC_SECRET_ARN";
/// Cap on decompressed bytes per object.
pub const MAX_DECOMPRESSED_BYTES: &str = "SLUICE_MAX_DECOMPRESSED_BYTES";
/// Cap on one line / CSV record.
pub const MAX_LINE_BYTES: &str = "SLUICE_MAX_LINE_BYTES";

/// Read limits from the environment.
pub fn limits_from_env() -> Result<Limits, TransformError> {
    let l = Limits {
        max_decompressed: env_parse(MAX_DECOMPRESSED_BYTES, DEFAULT_MAX_DECOMPRESSED)?,
        max_line: env_parse(MAX_LINE_BYTES, DEFAULT_MAX_LINE)?,
    };
    if l.max_decompressed == 0 || l.max_line == 0 {
        return Err(TransformError::Settings(format!(
            "{MAX_DECOMPRESSED_BYTES} and {MAX_LINE_BYTES} must be positive"
        )));
    }
    Ok(l)
}

/// Whether any dataset uses the `hash` rule.
pub fn needs_hash_key(cfg: &PipelineConfig) -> bool {
    cfg.datasets
        .iter()
        .any(|d| d.pii.values().any(|r| *r == PiiRule::Hash))
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

/// The HMAC key from `SLUICE_HMAC_KEY` or `SLUICE_HMAC_SECRET_ARN`; required when a dataset
/// uses `hash`.
pub async fn hash_key(
    cfg: &PipelineConfig,
    sm: &aws_sdk_secretsmanager::Client,
) -> Result<Option<HashKey>, TransformError> {
    let raw = match (
        std::env::var(HMAC_KEY).ok().filter(|v| !v.is_empty()),
        std::env::var(HMAC_SECRET_ARN)
            .ok()
            .filter(|v| !v.is_empty()),
    ) {
        (Some(k), _) => Some(k),
        (None, Some(arn)) => Some(secret_string(sm, &arn, HMAC_SECRET_ARN).await?),
        (None, None) => None,
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

/// The PostgreSQL connection config and TLS connector.
pub async fn database(
    sm: &aws_sdk_secretsmanager::Client,
) -> Result<
    (
        tokio_postgres::Config,
        Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ),
    TransformError,
> {
    let tls_env = std::env::var(DB_TLS).ok().filter(|v| !v.is_empty());
    let mut config = if let Ok(url) = env_required(DATABASE_URL) {
        tokio_postgres::Config::from_str(&url)
            .map_err(|e| TransformError::Settings(format!("{DATABASE_URL}: {e}")))?
    } else if let Ok(arn) = env_required(DB_SECRET_ARN) {
        let s: RdsSecret = serde_json::from_str(&secret_string(sm, &arn, DB_SECRET_ARN).await?)
            .map_err(|e| TransformError::Settings(format!("{DB_SECRET_ARN}: not an RDS secret (host, port, username, password, dbname): {e}")))?;
        let mut c = tokio_postgres::Config::new();
        c.host(&s.host)
            .port(s.port.unwrap_or(5432))
            .user(&s.username)
            .password(s.password)
            .dbname(s.dbname.as_deref().unwrap_or("postgres"));
        // Secrets are for deployed databases: TLS unless explicitly disabled.
        c.ssl_mode(SslMode::Require);
        c
    } else {
        return Err(TransformError::Settings(format!(
            "set {DATABASE_URL} or {DB_SECRET_ARN}"
        )));
    };
    config.application_name("sluice-s3-transform");
    // "relation already exists, skipping" and friends are not worth a log line per invocation.
    config.options("-c client_min_messages=warning");
    config.connect_timeout(std::time::Duration::from_secs(5));
    match tls_env.as_deref() {
        Some("require") => {
            config.ssl_mode(SslMode::Require);
        }
        Some("disable") => {
            config.ssl_mode(SslMode::Disable);
        }
        Some(other) => {
            return Err(TransformError::Settings(format!(
                "{DB_TLS}: expected require or disable, got {other:?}"
            )));
        }
        None => {}
    }
    let tls = if config.get_ssl_mode() == SslMode::Disable {
        None
    } else {
        Some(tls_connector(
            env_required(DB_CA_FILE).ok().as_deref(),
            true,
        )?)
    };
    Ok((config, tls))
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
