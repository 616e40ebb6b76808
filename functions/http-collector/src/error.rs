//! The crate's one error type and its retry classification.
//!
//! None of these errors carries request bytes or a key: only service codes and messages.
//! [`Error::is_retryable`] decides whether PutRecords is tried again and whether the client is
//! told to retry (503) or that the collector cannot write at all (500).

/// Result alias over [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised by http-collector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration or environment, at cold start.
    #[error(transparent)]
    Core(#[from] sluice_core::Error),

    /// A PutRecords call failed as a whole after the SDK's own retries.
    #[error("kinesis PutRecords failed ({code}): {message}")]
    Stream {
        code: String,
        message: String,
        retryable: bool,
    },

    /// The API keys could not be read from Secrets Manager.
    #[error("reading the API keys from {secret} failed ({code}): {message}")]
    Keys {
        secret: String,
        code: String,
        message: String,
        retryable: bool,
    },

    /// The keys secret is readable but not usable (its shape, or a key too short).
    #[error("the API keys secret {secret} is not usable: {reason}")]
    KeysShape { secret: String, reason: String },
}

impl Error {
    /// Whether a later attempt can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Core(e) => e.is_retryable(),
            Error::Stream { retryable, .. } | Error::Keys { retryable, .. } => *retryable,
            Error::KeysShape { .. } => false,
        }
    }

    /// A short machine-readable kind for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Core(e) => e.kind(),
            Error::Stream { .. } => "stream",
            Error::Keys { .. } | Error::KeysShape { .. } => "keys",
        }
    }
}

sluice_core::lambda_diagnostic!(Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let s = |retryable| Error::Stream {
            code: "X".into(),
            message: String::new(),
            retryable,
        };
        assert!(s(true).is_retryable());
        assert!(!s(false).is_retryable());
        let shape = Error::KeysShape {
            secret: "s".into(),
            reason: "r".into(),
        };
        assert!(!shape.is_retryable());
        assert_eq!(shape.kind(), "keys");
        assert_eq!(s(true).kind(), "stream");
    }
}
