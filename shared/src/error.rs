//! The crate's one error type, its retry classification, and the classifier for AWS SDK errors.
//!
//! Every variant keeps the identifiers needed to find the failing thing (bucket, key, dataset,
//! field) and its source error. [`Error::is_retryable`] answers the one question a handler asks:
//! fail the invocation (or batch item) so Lambda retries, or treat it as final.

use std::fmt;

/// Result alias over [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised by sluice-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline configuration is invalid; raised at cold start.
    #[error("invalid pipeline config: {0}")]
    Config(String),

    /// A required environment variable is missing or malformed; raised at cold start.
    #[error("invalid environment: {name}: {reason}")]
    Env {
        /// The variable's name (`SLUICE_BUCKET`, ...).
        name: String,
        /// What is wrong with it (`is required and not set`, the parse error, ...).
        reason: String,
    },

    /// A storage (S3) operation failed after the SDK's own retries.
    #[error("s3 {op} s3://{bucket}/{key} failed ({code}): {message}")]
    Storage {
        /// The operation that failed (`put`, `get`, `head`, `list`, ...).
        op: &'static str,
        /// The bucket it was made on.
        bucket: String,
        /// The object key (for `list`, the prefix).
        key: String,
        /// The service's error code or the transport failure kind ([`SdkFailure::code`]);
        /// `ReadBody` when the response body could not be read.
        code: String,
        /// A human-readable message (never a payload).
        message: String,
        /// Whether a later retry can succeed; what [`Error::is_retryable`] returns.
        retryable: bool,
    },

    /// A storage object does not exist.
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound {
        /// The bucket that was read.
        bucket: String,
        /// The key that does not exist.
        key: String,
    },

    /// Reading or writing a local file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The local path that was read or written.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Encoding output failed (compression or serialisation); never caused by input data.
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl Error {
    /// Whether retrying the same operation later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage { retryable, .. } => *retryable,
            Error::Io { .. } => true,
            Error::Config(_) | Error::Env { .. } | Error::NotFound { .. } | Error::Encode(_) => {
                false
            }
        }
    }

    /// A short machine-readable kind, used as a metric dimension and log field.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Env { .. } => "env",
            Error::Storage { .. } => "storage",
            Error::NotFound { .. } => "not_found",
            Error::Io { .. } => "io",
            Error::Encode(_) => "encode",
        }
    }

    /// Shorthand for an environment error.
    pub fn env(name: &str, reason: impl fmt::Display) -> Self {
        Error::Env {
            name: name.to_string(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(feature = "lambda")]
impl From<Error> for lambda_runtime::Diagnostic {
    /// Reports the error to Lambda with its kind (`storage`, `config`...) as the error type.
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: format!("sluice.{}", e.kind()),
            error_message: e.to_string(),
        }
    }
}

/// What one classification of an AWS SDK error found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFailure {
    /// The service's error code (`NoSuchBucket`, `SlowDown`, ...), or the transport failure kind.
    pub code: String,
    /// A human-readable message (never a payload).
    pub message: String,
    /// HTTP status, when the service answered.
    pub status: Option<u16>,
    /// Whether a later retry can succeed.
    pub retryable: bool,
}

/// Error codes that mean "try again later" across AWS services.
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "ConcurrentModificationException",
    "LimitExceededException",
];

/// Classifies an AWS SDK error (from any service crate) into code, message and retryability.
#[cfg(feature = "s3")]
pub fn classify_sdk_error<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> SdkFailure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("Unknown").to_string();
            let message = se.err().message().unwrap_or("").to_string();
            let retryable = status >= 500 || status == 429 || RETRYABLE_CODES.contains(&&*code);
            SdkFailure {
                code,
                message,
                status: Some(status),
                retryable,
            }
        }
        SdkError::TimeoutError(_) => transport("Timeout", err, None),
        SdkError::DispatchFailure(_) => transport("DispatchFailure", err, None),
        SdkError::ResponseError(r) => {
            transport("ResponseError", err, Some(r.raw().status().as_u16()))
        }
        SdkError::ConstructionFailure(_) => SdkFailure {
            code: "ConstructionFailure".into(),
            message: aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
            status: None,
            retryable: false,
        },
        _ => transport("Unknown", err, None),
    }
}

#[cfg(feature = "s3")]
fn transport<E, R>(
    code: &str,
    err: &aws_sdk_s3::error::SdkError<E, R>,
    status: Option<u16>,
) -> SdkFailure
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    SdkFailure {
        code: code.to_string(),
        message: aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
        status,
        retryable: true,
    }
}

/// Implements `From<$error> for lambda_runtime::Diagnostic` for a crate's error enum: the error
/// type is `sluice.<kind()>`, the message its `Display` (which never carries payload values).
/// One definition for every function crate, which must depend on `lambda_runtime`.
#[macro_export]
macro_rules! lambda_diagnostic {
    ($error:ty) => {
        impl From<$error> for lambda_runtime::Diagnostic {
            fn from(e: $error) -> Self {
                lambda_runtime::Diagnostic {
                    error_type: format!("sluice.{}", e.kind()),
                    error_message: e.to_string(),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification_of_variants() {
        let s = |retryable| Error::Storage {
            op: "put",
            bucket: "b".into(),
            key: "k".into(),
            code: "X".into(),
            message: String::new(),
            retryable,
        };
        assert!(s(true).is_retryable());
        assert!(!s(false).is_retryable());
        assert!(!Error::Config("x".into()).is_retryable());
        assert!(!Error::NotFound {
            bucket: "b".into(),
            key: "k".into()
        }
        .is_retryable());
        assert_eq!(s(true).kind(), "storage");
    }
}
