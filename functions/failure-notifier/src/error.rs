//! The crate's one error type and its retry classification.
//!
//! Every variant keeps what is needed to find the failing thing (stream and shard, topic, the
//! S3 key through [`sluice_core::Error`]). [`Error::is_retryable`] tells the handler whether a
//! later redelivery of the SQS message can succeed; the handler reports a message as a batch
//! item failure whenever archiving or alerting it failed, and logs the classification.

/// Result alias over [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised by failure-notifier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A storage (S3) or encoding failure from sluice-core.
    #[error(transparent)]
    Core(#[from] sluice_core::Error),

    /// A Kinesis call failed after the SDK's own retries.
    #[error("kinesis {op} on {stream}/{shard} failed ({code}): {message}")]
    Kinesis {
        op: &'static str,
        stream: String,
        shard: String,
        code: String,
        message: String,
        retryable: bool,
    },

    /// Publishing the alert to SNS failed after the SDK's own retries.
    #[error("sns publish to {topic} failed ({code}): {message}")]
    Alert {
        topic: String,
        code: String,
        message: String,
        retryable: bool,
    },

    /// Encoding an archive failed (never caused by input data).
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl Error {
    /// Whether a later retry (a redelivery of the SQS message) can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Core(e) => e.is_retryable(),
            Error::Kinesis { retryable, .. } | Error::Alert { retryable, .. } => *retryable,
            Error::Encode(_) => false,
        }
    }

    /// A short machine-readable kind for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Core(e) => e.kind(),
            Error::Kinesis { .. } => "kinesis",
            Error::Alert { .. } => "alert",
            Error::Encode(_) => "encode",
        }
    }
}

sluice_core::lambda_diagnostic!(Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let k = |retryable| Error::Kinesis {
            op: "get_records",
            stream: "s".into(),
            shard: "shardId-0".into(),
            code: "X".into(),
            message: String::new(),
            retryable,
        };
        assert!(k(true).is_retryable());
        assert!(!k(false).is_retryable());
        assert!(!Error::Encode("x".into()).is_retryable());
        let core = Error::from(sluice_core::Error::Storage {
            op: "put",
            bucket: "b".into(),
            key: "k".into(),
            code: "SlowDown".into(),
            message: String::new(),
            retryable: true,
        });
        assert!(core.is_retryable());
        assert_eq!(core.kind(), "storage");
        assert_eq!(k(true).kind(), "kinesis");
    }
}
