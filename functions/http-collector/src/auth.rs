//! API keys: held in a Secrets Manager secret, cached for a while, compared in constant time.
//!
//! The secret's JSON is an object mapping a producer's name to its key,
//! `{"api_key": "…", "partner-a": "…"}`: the name is what the logs and metrics say, the key is
//! never logged. (An entry named `api_key` is also what Firehose's own Secrets Manager
//! integration reads, so one secret can serve a Firehose delivery stream and the collector.)
//! Keys shorter than [`MIN_KEY_LEN`] make the secret unusable rather than weak.
//!
//! A presented key is hashed (SHA-256) and compared with the hash of every stored key with
//! `subtle`'s constant-time equality, all of them every time, so neither timing nor early exit
//! tells how much of a key was right. The keys are read again after [`Keys::new`]'s `ttl`, so a
//! rotation (add a key, move producers to it, delete the old one) takes effect without a cold
//! start.

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sluice_core::error::classify_sdk_error;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// The shortest key accepted in the secret.
pub const MIN_KEY_LEN: usize = 16;

/// Where the keys come from: the secret's JSON text.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The secret's current text.
    async fn secret_text(&self) -> Result<String>;
    /// The secret's name, for errors.
    fn name(&self) -> &str;
}

/// The verdict on a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A known key: the producer's name.
    Producer(String),
    /// No key was presented.
    Missing,
    /// A key was presented and matches none.
    Denied,
}

type Table = Vec<(String, [u8; 32])>;

/// The cached key table over a [`KeySource`].
pub struct Keys {
    source: Box<dyn KeySource>,
    ttl: Duration,
    cache: Mutex<Option<(Instant, Table)>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("source", &self.source.name())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// Parses the secret's JSON into (name, key hash) pairs.
pub fn parse_table(secret: &str, text: &str) -> Result<Table> {
    let shape = |reason: String| Error::KeysShape {
        secret: secret.to_string(),
        reason,
    };
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| shape(format!("not a JSON object of names to keys ({e})")))?;
    let mut table = Vec::with_capacity(map.len());
    for (name, v) in map {
        let key = v
            .as_str()
            .ok_or_else(|| shape(format!("the key of {name:?} is not a string")))?;
        if key.len() < MIN_KEY_LEN {
            return Err(shape(format!(
                "the key of {name:?} is shorter than {MIN_KEY_LEN} characters"
            )));
        }
        table.push((name, digest(key.as_bytes())));
    }
    if table.is_empty() {
        return Err(shape("it holds no key".into()));
    }
    Ok(table)
}

impl Keys {
    /// Keys from `source`, read again when older than `ttl`.
    pub fn new(source: Box<dyn KeySource>, ttl: Duration) -> Self {
        Keys {
            source,
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// Reads the keys now (at cold start, so a broken secret fails the init).
    pub async fn load(&self) -> Result<()> {
        let table = parse_table(self.source.name(), &self.source.secret_text().await?)?;
        *self.cache.lock().await = Some((Instant::now(), table));
        Ok(())
    }

    /// Checks a presented key. An expired cache is refreshed first; when that fails, the keys
    /// already held are used (a Secrets Manager outage does not stop the door), and only
    /// without any are the credentials unknowable (the error).
    pub async fn check(&self, presented: Option<&str>) -> Result<Verdict> {
        let Some(presented) = presented.filter(|k| !k.is_empty()) else {
            return Ok(Verdict::Missing);
        };
        let mut cache = self.cache.lock().await;
        let stale = cache
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= self.ttl);
        if stale {
            let fresh = match self.source.secret_text().await {
                Ok(text) => parse_table(self.source.name(), &text),
                Err(e) => Err(e),
            };
            match (fresh, cache.as_mut()) {
                (Ok(table), _) => *cache = Some((Instant::now(), table)),
                (Err(e), Some(_)) => {
                    tracing::warn!(error = %e, kind = e.kind(), "keeping the API keys already read");
                }
                (Err(e), None) => return Err(e),
            }
        }
        let table = cache.as_ref().map(|(_, t)| t.as_slice()).unwrap_or(&[]);
        let want = digest(presented.as_bytes());
        let mut found: Option<&str> = None;
        for (name, hash) in table {
            if bool::from(hash.ct_eq(&want)) {
                found = Some(name);
            }
        }
        Ok(found.map_or(Verdict::Denied, |n| Verdict::Producer(n.to_string())))
    }
}

/// [`KeySource`] on aws-sdk-secretsmanager (`GetSecretValue`, current version).
#[derive(Debug, Clone)]
pub struct SecretsManagerKeys {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerKeys {
    /// Reads the secret `secret_id` (name or ARN).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        SecretsManagerKeys {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl KeySource for SecretsManagerKeys {
    async fn secret_text(&self) -> Result<String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                let f = classify_sdk_error(&e);
                Error::Keys {
                    secret: self.secret_id.clone(),
                    code: f.code,
                    message: f.message,
                    retryable: f.retryable,
                }
            })?;
        out.secret_string()
            .map(str::to_string)
            .ok_or_else(|| Error::KeysShape {
                secret: self.secret_id.clone(),
                reason: "it has no SecretString".into(),
            })
    }

    fn name(&self) -> &str {
        &self.secret_id
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex as StdMutex;

    use super::*;

    #[derive(Clone)]
    struct Text(
        Arc<StdMutex<std::result::Result<String, ()>>>,
        Arc<StdMutex<usize>>,
    );

    #[async_trait]
    impl KeySource for Text {
        async fn secret_text(&self) -> Result<String> {
            *self.1.lock().unwrap() += 1;
            self.0.lock().unwrap().clone().map_err(|_| Error::Keys {
                secret: "s".into(),
                code: "InternalServiceError".into(),
                message: String::new(),
                retryable: true,
            })
        }
        fn name(&self) -> &str {
            "s"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_checked_cached_and_rotated() {
        let text = Text(
            Arc::new(StdMutex::new(Ok(
                r#"{"api_key":"0123456789abcdef","partner":"fedcba9876543210"}"#.into(),
            ))),
            Arc::default(),
        );
        let keys = Keys::new(Box::new(text.clone()), Duration::from_secs(300));
        keys.load().await.unwrap();
        assert_eq!(keys.check(None).await.unwrap(), Verdict::Missing);
        assert_eq!(keys.check(Some("")).await.unwrap(), Verdict::Missing);
        assert_eq!(
            keys.check(Some("fedcba9876543210")).await.unwrap(),
            Verdict::Producer("partner".into())
        );
        assert_eq!(
            keys.check(Some("fedcba987654321")).await.unwrap(),
            Verdict::Denied
        );
        assert_eq!(*text.1.lock().unwrap(), 1, "cached");

        // Rotation: the old key keeps working until the cache expires.
        *text.0.lock().unwrap() = Ok(r#"{"api_key":"a-new-key-0000000000"}"#.into());
        assert!(matches!(
            keys.check(Some("0123456789abcdef")).await.unwrap(),
            Verdict::Producer(_)
        ));
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(
            keys.check(Some("0123456789abcdef")).await.unwrap(),
            Verdict::Denied
        );
        assert_eq!(
            keys.check(Some("a-new-key-0000000000")).await.unwrap(),
            Verdict::Producer("api_key".into())
        );

        // An outage keeps the keys already read.
        *text.0.lock().unwrap() = Err(());
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(matches!(
            keys.check(Some("a-new-key-0000000000")).await.unwrap(),
            Verdict::Producer(_)
        ));
    }

    #[test]
    fn unusable_secrets_are_refused() {
        for bad in ["[]", "{}", r#"{"a": 1}"#, r#"{"a": "short"}"#, "not json"] {
            let e = parse_table("s", bad).unwrap_err();
            assert!(!e.is_retryable(), "{bad}");
            assert!(!e.to_string().contains("short\""), "{e}");
        }
    }
}
