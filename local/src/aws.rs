//! SDK clients pointed at the local moto server, and S3 helpers for assertions.

use std::io::Read;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;

use crate::services::{moto, unique};

/// SDK configuration and clients for the local AWS API.
#[derive(Clone)]
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub glue: aws_sdk_glue::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub endpoint: String,
}

impl Aws {
    /// Clients for the process-wide moto server.
    pub async fn local() -> Aws {
        Self::at(&moto().endpoint).await
    }

    /// Clients for an endpoint (e.g. a fault proxy in front of moto).
    pub async fn at(endpoint: &str) -> Aws {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "sluice-tests"))
            .load()
            .await;
        let s3conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build();
        Aws {
            s3: aws_sdk_s3::Client::from_conf(s3conf),
            kinesis: aws_sdk_kinesis::Client::new(&sdk),
            glue: aws_sdk_glue::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
            endpoint: endpoint.to_string(),
        }
    }

    /// Creates a bucket with a unique name and returns the name.
    pub async fn bucket(&self) -> String {
        let name = unique("sluice-test");
        self.s3
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        name
    }

    /// All keys under a prefix, sorted.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.expect("list objects");
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        keys
    }

    /// One object's bytes.
    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {e:?}"));
        out.body
            .collect()
            .await
            .expect("read body")
            .into_bytes()
            .to_vec()
    }

    /// Writes one object.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
    }

    /// The JSON lines of every gzip object under a prefix, with their keys.
    pub async fn json_lines(&self, bucket: &str, prefix: &str) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        for key in self.keys(bucket, prefix).await {
            let text = gunzip(&self.get(bucket, &key).await);
            for line in text.lines() {
                let v = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("line of {key} is not JSON: {e}"));
                out.push((key.clone(), v));
            }
        }
        out
    }
}

/// Decompresses gzip bytes to text, panicking on corrupt data.
pub fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .expect("valid gzip of UTF-8");
    s
}
