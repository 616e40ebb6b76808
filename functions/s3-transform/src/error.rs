//! The s3-transform error type: what fails an invocation (retryable, so Lambda's async retries
//! and the on-failure destination take over) versus what is a data problem (never fails it).

/// Errors that fail an s3-transform invocation.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// Storage failed (S3), after the SDK's retries.
    #[error(transparent)]
    Core(#[from] sluice_core::Error),

    /// PostgreSQL could not be reached or refused the load.
    #[error("postgres {op} for table {table}: {message}")]
    Postgres {
        op: &'static str,
        table: String,
        message: String,
        retryable: bool,
        /// The database could not be reached or its connection broke (connect, TLS,
        /// authentication, I/O, SQLSTATE class 08), as opposed to a refused statement.
        connection: bool,
    },

    /// Writing Parquet failed (never caused by input data).
    #[error("parquet encoding for {key}: {message}")]
    Parquet { key: String, message: String },

    /// A table's column has a type the config's cannot be loaded into (and is not a widening
    /// of): loading would COPY one type into a column of another.
    #[error("table {table} column {column} is {old} in PostgreSQL but the config declares {new}; change the column or the config (only widening is applied: integer/smallint to bigint, real to double precision, varchar to text, numeric(p,s) to a larger p)")]
    SchemaConflict {
        table: String,
        column: String,
        old: String,
        new: String,
    },

    /// Settings or secrets are missing or malformed (cold start).
    #[error("invalid settings: {0}")]
    Settings(String),
}

impl TransformError {
    /// Whether retrying the invocation later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransformError::Core(e) => e.is_retryable(),
            TransformError::Postgres { retryable, .. } => *retryable,
            TransformError::Parquet { .. }
            | TransformError::SchemaConflict { .. }
            | TransformError::Settings(_) => false,
        }
    }

    /// Whether this is a failure to reach PostgreSQL (counted as `DatabaseConnectionErrors`).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            TransformError::Postgres {
                connection: true,
                ..
            }
        )
    }

    /// A short kind for logs and the Lambda error type.
    pub fn kind(&self) -> &'static str {
        match self {
            TransformError::Core(e) => e.kind(),
            TransformError::Postgres { .. } => "postgres",
            TransformError::Parquet { .. } => "parquet",
            TransformError::SchemaConflict { .. } => "schema_conflict",
            TransformError::Settings(_) => "settings",
        }
    }

    /// A PostgreSQL error, classified: connection/IO failures, serialization failures,
    /// deadlocks, "cannot connect now" and authentication failures (a password rotation in
    /// progress: the database has the new password before the secret's current version does)
    /// are retryable; anything else is not.
    pub fn postgres(op: &'static str, table: &str, e: &tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let retryable = match e.code() {
            None => true,
            Some(c) => {
                *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::TOO_MANY_CONNECTIONS
                    || *c == SqlState::INVALID_PASSWORD
                    || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                    || c.code().starts_with("08")
                    || c.code().starts_with("53")
                    || c.code().starts_with("57P")
            }
        };
        let connection =
            op == "connect" || e.is_closed() || e.code().is_none_or(|c| c.code().starts_with("08"));
        TransformError::Postgres {
            op,
            table: table.to_string(),
            message: describe(e),
            retryable,
            connection,
        }
    }
}

/// The database's own words for an error: SQLSTATE, message and the names of the column and
/// constraint. DETAIL and CONTEXT are left out: PostgreSQL puts row values there ("Key
/// (email)=(...)", "COPY t, line 3, column x: ..."), and logs never carry payload values.
fn describe(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    if let Some(c) = db.column() {
        s.push_str(&format!(" (column {c})"));
    }
    if let Some(c) = db.constraint() {
        s.push_str(&format!(" (constraint {c})"));
    }
    s
}

sluice_core::lambda_diagnostic!(TransformError);
