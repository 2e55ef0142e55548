#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot migrate database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("no {what} named '{name}'")]
    NotFound { what: &'static str, name: String },
    #[error("{0}")]
    Invalid(String),
}

/// What kind of failure a [`StoreError`] is, for callers that answer differently to
/// each (the HTTP side's status codes) without knowing the database driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    NotFound,
    /// The request itself is wrong.
    Invalid,
    /// It would duplicate something unique.
    Conflict,
    /// The database cannot be reached or has no connection free: try again later.
    Unavailable,
    Other,
}

impl StoreError {
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreError::NotFound { .. } => FailureKind::NotFound,
            StoreError::Invalid(_) => FailureKind::Invalid,
            StoreError::Query(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                FailureKind::Conflict
            }
            StoreError::Query(sqlx::Error::PoolTimedOut) | StoreError::Connect { .. } => {
                FailureKind::Unavailable
            }
            _ => FailureKind::Other,
        }
    }

    pub fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            name: name.into(),
        }
    }
}
