//! AWS wiring shared by the functions: SDK configuration, environment settings, the S3
//! adapter of [`ObjectStore`], and loading the pipeline config from a path or an `s3://` URI.
//!
//! `AWS_ENDPOINT_URL` (and the SDK's per-service variants) is honoured by the SDK itself; S3
//! path-style addressing is on when `SLUICE_S3_FORCE_PATH_STYLE=true`, or by default whenever an
//! endpoint override is set (local S3 APIs need it).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use crate::config::PipelineConfig;
use crate::env::env_parse;
use crate::error::{classify_sdk_error, Error, Result};
#[cfg(feature = "kinesis")]
use crate::lake::stream::StreamRecord;
use crate::store::ObjectStore;

/// Loads the shared SDK configuration (region, credentials, endpoint overrides) once.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Whether S3 requests use path-style addressing.
pub fn force_path_style() -> Result<bool> {
    let endpoint_override = std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    env_parse(crate::env::FORCE_PATH_STYLE, endpoint_override)
}

/// An S3 client from the shared SDK configuration.
pub fn s3_client(conf: &aws_config::SdkConfig) -> Result<aws_sdk_s3::Client> {
    let s3conf = aws_sdk_s3::config::Builder::from(conf)
        .force_path_style(force_path_style()?)
        .build();
    Ok(aws_sdk_s3::Client::from_conf(s3conf))
}

/// Loads and validates the pipeline config from a local path or an `s3://bucket/key` URI.
pub async fn load_pipeline_config(source: &str, s3: &aws_sdk_s3::Client) -> Result<PipelineConfig> {
    match parse_s3_uri(source) {
        Some((bucket, key)) => {
            let (text, _) = fetch_config(s3, &bucket, &key, source).await?;
            PipelineConfig::from_toml(&text)
        }
        None => PipelineConfig::from_path(source),
    }
}

/// Whether a config that replaces the one in use may be adopted by a warm function (`Err` says
/// why not, e.g. a setting the function built its clients from at cold start).
pub type ConfigCheck =
    Box<dyn Fn(&PipelineConfig, &PipelineConfig) -> std::result::Result<(), String> + Send + Sync>;

/// The pipeline config of a running function: loaded at cold start, then, for an `s3://`
/// location, checked again at most every `ttl` (the object's ETag; unchanged means no GET) and
/// replaced when a new version parses, validates and passes the function's [`ConfigCheck`].
/// A new version that fails any of that is refused: the config in use stays, the refusal is
/// logged (with the validation error, never record data) and counted as the EMF metric
/// `ConfigRejected`, and the version is not tried again until the object changes. Staleness
/// is bounded by `ttl` plus one invocation.
pub struct ConfigWatch {
    source: String,
    s3: aws_sdk_s3::Client,
    ttl: std::time::Duration,
    function: &'static str,
    check: ConfigCheck,
    state: std::sync::Mutex<WatchState>,
}

struct WatchState {
    cfg: std::sync::Arc<PipelineConfig>,
    /// ETag of the version in use, or of the last version refused.
    etag: Option<String>,
    checked: std::time::Instant,
}

/// What one check of the config's location found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Not checked (within the TTL, or a local path).
    NotDue,
    /// Checked: the same version.
    Unchanged,
    /// A new version is in use.
    Reloaded,
    /// A new version was refused (invalid, failed the function's check, or the object is
    /// gone); the old one stays in use.
    Refused(String),
    /// The location could not be read for a reason that passes (throttling, network): the
    /// old config stays in use and the next check tries again, without counting a refusal.
    Unreadable(String),
}

impl ConfigWatch {
    /// Loads the config at cold start (an error here fails the start, as before any reload).
    pub async fn load(
        source: &str,
        s3: &aws_sdk_s3::Client,
        ttl: std::time::Duration,
        function: &'static str,
    ) -> Result<Self> {
        let (cfg, etag) = match parse_s3_uri(source) {
            Some((bucket, key)) => {
                let (text, etag) = fetch_config(s3, &bucket, &key, source).await?;
                (PipelineConfig::from_toml(&text)?, etag)
            }
            None => (PipelineConfig::from_path(source)?, None),
        };
        Ok(ConfigWatch {
            source: source.to_string(),
            s3: s3.clone(),
            ttl,
            function,
            check: Box::new(|_, _| Ok(())),
            state: std::sync::Mutex::new(WatchState {
                cfg: std::sync::Arc::new(cfg),
                etag,
                checked: std::time::Instant::now(),
            }),
        })
    }

    /// Adds the function's own condition for adopting a new version.
    pub fn with_check(mut self, check: ConfigCheck) -> Self {
        self.check = check;
        self
    }

    /// The config to use for this invocation (checking for a new version when due).
    pub async fn current(&self) -> std::sync::Arc<PipelineConfig> {
        self.refresh().await;
        self.state().cfg.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the location if the TTL has passed, adopting or refusing a new version.
    pub async fn refresh(&self) -> ConfigChange {
        let Some((bucket, key)) = parse_s3_uri(&self.source) else {
            return ConfigChange::NotDue;
        };
        let (in_use, known) = {
            let s = self.state();
            if s.checked.elapsed() < self.ttl {
                return ConfigChange::NotDue;
            }
            (s.cfg.clone(), s.etag.clone())
        };
        let change = self.check_version(&bucket, &key, &in_use, known).await;
        let mut s = self.state();
        s.checked = std::time::Instant::now();
        match change {
            Ok(None) => ConfigChange::Unchanged,
            Ok(Some((cfg, etag))) => {
                tracing::info!(
                    source = %self.source,
                    etag = etag.as_deref().unwrap_or(""),
                    datasets = cfg.datasets.len(),
                    "pipeline config reloaded"
                );
                s.cfg = std::sync::Arc::new(cfg);
                s.etag = etag;
                ConfigChange::Reloaded
            }
            Err((reason, _, false)) => {
                tracing::warn!(source = %self.source, reason = %reason, "pipeline config not checked; the one in use stays");
                ConfigChange::Unreadable(reason)
            }
            Err((reason, etag, true)) => {
                tracing::error!(source = %self.source, reason = %reason, "new pipeline config refused; the one in use stays");
                if etag.is_some() {
                    s.etag = etag;
                }
                let mut m = crate::telemetry::Metrics::new(self.function);
                m.count("ConfigRejected", 1);
                m.emit();
                ConfigChange::Refused(reason)
            }
        }
    }

    /// `Ok(None)`: same version; `Ok(Some)`: a new valid one; `Err((reason, etag, refused))`:
    /// not adopted (the etag, when known, so the same version is not tried again; `refused`
    /// false for a transient read failure).
    async fn check_version(
        &self,
        bucket: &str,
        key: &str,
        in_use: &PipelineConfig,
        known: Option<String>,
    ) -> std::result::Result<Option<(PipelineConfig, Option<String>)>, (String, Option<String>, bool)>
    {
        let head = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let f = classify_sdk_error(&e);
                (
                    format!("cannot read {}: {} {}", self.source, f.code, f.message),
                    None,
                    // Throttling or a network blip: try again at the next check, no alarm.
                    !f.retryable,
                )
            })?;
        if head.e_tag().is_some() && head.e_tag().map(str::to_string) == known {
            return Ok(None);
        }
        let (text, etag) = fetch_config(&self.s3, bucket, key, &self.source)
            .await
            .map_err(|e| (e.to_string(), None, !e.is_retryable()))?;
        if etag.is_some() && etag == known {
            return Ok(None);
        }
        let cfg =
            PipelineConfig::from_toml(&text).map_err(|e| (e.to_string(), etag.clone(), true))?;
        (self.check)(in_use, &cfg).map_err(|reason| (reason, etag.clone(), true))?;
        Ok(Some((cfg, etag)))
    }
}

async fn fetch_config(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    source: &str,
) -> Result<(String, Option<String>)> {
    let store = S3Store::new(s3.clone(), bucket);
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| store.err("get", key, &e))?;
    let etag = out.e_tag().map(str::to_string);
    let bytes = store.collect(key, out.body).await?;
    let text =
        String::from_utf8(bytes).map_err(|_| Error::Config(format!("{source} is not UTF-8")))?;
    Ok((text, etag))
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

/// One object of [`S3Store::list_detailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, epoch microseconds (0 if S3 did not say).
    pub modified_micros: i64,
}

/// One level of a listing ([`S3Store::list_level`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Level {
    /// The objects directly at the level.
    pub objects: Vec<Listed>,
    /// The prefixes one `/` further down, each ending in `/`.
    pub folders: Vec<String>,
}

fn listed(o: &aws_sdk_s3::types::Object) -> Option<Listed> {
    Some(Listed {
        key: o.key()?.to_string(),
        size: o.size().unwrap_or(0).max(0) as u64,
        modified_micros: o
            .last_modified()
            .and_then(|t| t.to_millis().ok())
            .map_or(0, |ms| ms.saturating_mul(1000)),
    })
}

/// [`ObjectStore`] on aws-sdk-s3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    /// A store over one bucket.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Every object below `prefix` with its size and last-modified time, sorted by key.
    pub async fn list_detailed(&self, prefix: &str) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("list", prefix, &e))?;
            out.extend(page.contents().iter().filter_map(listed));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// One level below `prefix` (`ListObjectsV2` with delimiter `/`): the objects directly
    /// there and the "folders" (common prefixes), each sorted.
    pub async fn list_level(&self, prefix: &str) -> Result<Level> {
        let mut level = Level::default();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("list", prefix, &e))?;
            level
                .objects
                .extend(page.contents().iter().filter_map(listed));
            level.folders.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
        }
        level.objects.sort_by(|a, b| a.key.cmp(&b.key));
        level.folders.sort();
        Ok(level)
    }

    fn err<E>(
        &self,
        op: &'static str,
        key: &str,
        e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let f = classify_sdk_error(e);
        if f.code == "NoSuchKey"
            || f.status == Some(404) && op != "list" && f.code != "NoSuchBucket"
        {
            return Error::NotFound {
                bucket: self.bucket.clone(),
                key: key.to_string(),
            };
        }
        Error::Storage {
            op,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            code: f.code,
            message: f.message,
            retryable: f.retryable,
        }
    }

    async fn collect(&self, key: &str, body: ByteStream) -> Result<Vec<u8>> {
        body.collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .map_err(|e| Error::Storage {
                op: "get",
                bucket: self.bucket.clone(),
                key: key.to_string(),
                code: "ReadBody".into(),
                message: e.to_string(),
                retryable: true,
            })
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("put", key, &e))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("get", key, &e))?;
        self.collect(key, out.body).await
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Vec<u8>> {
        if end <= start {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(|e| self.err("get", key, &e))?;
        self.collect(key, out.body).await
    }

    async fn size(&self, key: &str) -> Result<u64> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("head", key, &e))?;
        Ok(out.content_length().unwrap_or(0).max(0) as u64)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .list_detailed(prefix)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect())
    }
}

/// A record as Kinesis `GetRecords` returns it, on shard `shard`, as sluice's one
/// [`StreamRecord`] type (arrival at millisecond precision, 0 when absent).
#[cfg(feature = "kinesis")]
pub fn stream_record(shard: &str, r: &aws_sdk_kinesis::types::Record) -> StreamRecord {
    StreamRecord {
        shard: shard.to_string(),
        seq: r.sequence_number().to_string(),
        partition_key: r.partition_key().unwrap_or_default().to_string(),
        data: r.data().as_ref().to_vec(),
        arrival_micros: r
            .approximate_arrival_timestamp()
            .and_then(|t| t.to_millis().ok())
            .unwrap_or_default()
            .saturating_mul(1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(
            parse_s3_uri("s3://b/conf/pipeline.toml"),
            Some(("b".into(), "conf/pipeline.toml".into()))
        );
        assert_eq!(parse_s3_uri("s3://b/"), None);
        assert_eq!(parse_s3_uri("/etc/pipeline.toml"), None);
    }
}
