//! The glue-catalog error type and its retry classification.
//!
//! Every error fails the invocation: the function is invoked asynchronously by S3, so a failed
//! invocation is retried by Lambda and then sent to the on-failure destination, which alerts.
//! [`CatalogError::is_retryable`] says whether a retry can help (Glue/S3 transport failures,
//! throttling, concurrent modification); it is logged and drives the in-process retries of
//! [`crate::register`]. An incompatible schema change is deliberately *not* retryable and yet
//! still fails the invocation: the table is left untouched and a human must decide (rename the
//! column, or migrate the table), so the failure must reach the alerting destination rather
//! than be swallowed as a skip. The same holds for unreadable footers and unmapped types.

use sluice_core::error::classify_sdk_error;

/// A column whose type in an object conflicts with its table's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "incompatible schema change for table {database}.{table}: column {column:?} is {old} in the \
     table but {new} in s3://{bucket}/{key}; the table was left unchanged"
)]
pub struct SchemaConflict {
    pub database: String,
    pub table: String,
    pub column: String,
    pub old: String,
    pub new: String,
    pub bucket: String,
    pub key: String,
}

/// Errors that fail a glue-catalog invocation.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Reading the object (S3) failed, after the SDK's retries.
    #[error(transparent)]
    Core(#[from] sluice_core::Error),

    /// A Glue API call failed.
    #[error("glue {op} on {database}.{table} failed ({code}): {message}")]
    Glue {
        op: &'static str,
        database: String,
        /// Empty for database-level calls.
        table: String,
        code: String,
        message: String,
        retryable: bool,
    },

    /// The object has no readable Parquet footer.
    #[error("s3://{bucket}/{key}: unreadable Parquet footer: {reason}")]
    Footer {
        bucket: String,
        key: String,
        reason: String,
    },

    /// A column cannot be expressed in the Glue/Hive type system.
    #[error("s3://{bucket}/{key}: column {column:?} cannot be catalogued: {reason}")]
    UnsupportedColumn {
        bucket: String,
        key: String,
        column: String,
        reason: String,
    },

    /// An object's schema conflicts with its table's; the table was left unchanged.
    #[error(transparent)]
    IncompatibleSchema(Box<SchemaConflict>),

    /// An object names a dataset the pipeline config does not declare.
    #[error("s3://{bucket}/{key}: dataset {dataset:?} is not declared in the pipeline config")]
    UnknownDataset {
        bucket: String,
        key: String,
        dataset: String,
    },
}

impl CatalogError {
    /// Whether retrying the same work later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CatalogError::Core(e) => e.is_retryable(),
            CatalogError::Glue { retryable, .. } => *retryable,
            CatalogError::Footer { .. }
            | CatalogError::UnsupportedColumn { .. }
            | CatalogError::IncompatibleSchema(_)
            | CatalogError::UnknownDataset { .. } => false,
        }
    }

    /// A short kind for logs, metrics and the Lambda error type.
    pub fn kind(&self) -> &'static str {
        match self {
            CatalogError::Core(e) => e.kind(),
            CatalogError::Glue { .. } => "glue",
            CatalogError::Footer { .. } => "parquet_footer",
            CatalogError::UnsupportedColumn { .. } => "unsupported_column",
            CatalogError::IncompatibleSchema(_) => "incompatible_schema",
            CatalogError::UnknownDataset { .. } => "unknown_dataset",
        }
    }

    /// The Glue error code, when this is a Glue failure.
    pub fn glue_code(&self) -> Option<&str> {
        match self {
            CatalogError::Glue { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Classifies an aws-sdk-glue error of operation `op` on `database.table`.
    pub fn glue<E>(
        op: &'static str,
        database: &str,
        table: &str,
        err: &aws_sdk_glue::error::SdkError<E, aws_sdk_glue::config::http::HttpResponse>,
    ) -> Self
    where
        E: aws_sdk_glue::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let f = classify_sdk_error(err);
        CatalogError::Glue {
            op,
            database: database.to_string(),
            table: table.to_string(),
            retryable: f.retryable || is_retryable_glue_code(&f.code),
            code: f.code,
            message: f.message,
        }
    }
}

/// Glue error codes (whole calls or per-partition `ErrorDetail`s) worth retrying.
pub fn is_retryable_glue_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "ConcurrentModificationException"
            | "InternalServiceException"
            | "OperationTimeoutException"
            | "ResourceNotReadyException"
            | "FederationSourceRetryableException"
    )
}

sluice_core::lambda_diagnostic!(CatalogError);

#[cfg(test)]
mod tests {
    use super::*;

    fn glue(code: &str, retryable: bool) -> CatalogError {
        CatalogError::Glue {
            op: "update_table",
            database: "db".into(),
            table: "t".into(),
            code: code.into(),
            message: String::new(),
            retryable,
        }
    }

    #[test]
    fn classification() {
        assert!(glue("ThrottlingException", true).is_retryable());
        assert!(!glue("InvalidInputException", false).is_retryable());
        assert!(is_retryable_glue_code("ConcurrentModificationException"));
        assert!(!is_retryable_glue_code("AlreadyExistsException"));
        let e = CatalogError::IncompatibleSchema(Box::new(SchemaConflict {
            database: "db".into(),
            table: "orders".into(),
            column: "amount".into(),
            old: "bigint".into(),
            new: "string".into(),
            bucket: "b".into(),
            key: "curated/orders/x.parquet".into(),
        }));
        assert!(!e.is_retryable());
        let msg = e.to_string();
        for part in ["db.orders", "\"amount\"", "bigint", "string", "unchanged"] {
            assert!(msg.contains(part), "{msg}");
        }
        let d = lambda_runtime::Diagnostic::from(e);
        assert_eq!(d.error_type, "sluice.incompatible_schema");
    }
}
