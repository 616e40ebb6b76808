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
            let store = S3Store::new(s3.clone(), bucket);
            let bytes = store.get(&key).await?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::Config(format!("{source} is not UTF-8")))?;
            PipelineConfig::from_toml(&text)
        }
        None => PipelineConfig::from_path(source),
    }
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_string(), key.to_string()))
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
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("list", prefix, &e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        Ok(keys)
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
