//! The CLI library's one error type.

use sluice_core::lake::dead_letter::ParseError;

/// Result alias over [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a replay could not be planned or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The argument is not an `s3://bucket/key` URI.
    #[error("{0:?} is not an s3://bucket/key URI")]
    InvalidUri(String),

    /// Reading the dead letter from S3 failed.
    #[error(transparent)]
    Read(#[from] sluice_core::Error),

    /// The object is not a dead letter sluice wrote.
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// The dead letter cannot be replayed (unknown message, bad record data, ...).
    #[error("cannot replay {key}: {reason}")]
    NotReplayable { key: String, reason: String },

    /// A Kinesis call failed after the SDK's own retries.
    #[error("kinesis put_records to {stream} failed ({code}): {message}")]
    Kinesis {
        stream: String,
        code: String,
        message: String,
        retryable: bool,
    },

    /// Some records were still rejected after every retry.
    #[error("{failed} of {total} records were not accepted by {stream} after {attempts} attempts (last error {code}); {accepted} were put")]
    PutIncomplete {
        stream: String,
        failed: usize,
        total: usize,
        accepted: usize,
        attempts: usize,
        code: String,
    },

    /// A note sluice keeps beside an object (a replay or requeue note) is not readable.
    #[error("the note {key} is not readable: {reason}")]
    Note { key: String, reason: String },

    /// A command-line argument is not valid.
    #[error("{0}")]
    Usage(String),

    /// PostgreSQL could not be read.
    #[error("postgres: {0}")]
    Postgres(String),

    /// The Lambda Invoke call failed.
    #[error("invoking {function} failed ({code}): {message}")]
    Invoke {
        function: String,
        code: String,
        message: String,
        retryable: bool,
    },
}

impl Error {
    /// Whether running the same command again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Read(e) => e.is_retryable(),
            Error::Kinesis { retryable, .. } | Error::Invoke { retryable, .. } => *retryable,
            Error::PutIncomplete { .. } => true,
            Error::Postgres(_) => true,
            Error::InvalidUri(_)
            | Error::Parse(_)
            | Error::NotReplayable { .. }
            | Error::Note { .. }
            | Error::Usage(_) => false,
        }
    }
}
