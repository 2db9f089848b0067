//! The domain error: what went wrong, in terms a client can act on.
//!
//! Every variant carries a stable machine-readable `code` (documented in README.md). The HTTP
//! layer maps variants to statuses in one place (`http::error`), the CLI maps them to exit
//! codes in one place (`cli`). Internal details are logged, never sent to clients.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks a documented rule (length, charset, format).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Missing, malformed, expired or revoked credentials.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// Authenticated, but not allowed.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// It existed and is no longer usable (an expired, used-up or revoked invite).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// Too many requests of this kind; the client may retry after the given time, if any.
    #[error("{message}")]
    RateLimited {
        code: &'static str,
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The database (or another dependency) cannot be reached; retrying later may work.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected database error. The message is for logs only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::Gone {
            code,
            message: message.into(),
        }
    }

    /// The stable code clients and scripts match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::RateLimited { code, .. } => code,
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// A limit refused the request; it may be tried again after `wait` (at least 1 ms).
    pub fn rate_limited(code: &'static str, message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self::RateLimited {
            code,
            message: message.into(),
            retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)),
        }
    }

    /// The wrong username or password; identical for both so accounts cannot be enumerated.
    pub fn invalid_credentials() -> Self {
        Self::unauthorized("invalid_credentials", "invalid username or password")
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        if crate::db::is_connection_error(&e) {
            return Self::Unavailable(format!("database: {e}"));
        }
        match e.as_db_error() {
            // Class 22 "data exception" (a NUL byte in text, a value out of range…) is caused by
            // the input, not by us: the client gets a 422, never a 500. Validation should catch
            // these first; this is the net under it.
            Some(db) if db.code().code().starts_with("22") => {
                tracing::warn!(
                    sqlstate = db.code().code(),
                    "input rejected by the database: {}",
                    db.message()
                );
                Self::invalid("invalid_input", "a value in the request is not acceptable")
            }
            Some(db) => Self::Internal(format!("database: {} (SQLSTATE {})", db.message(), db.code().code())),
            None => Self::Internal(format!("database: {e}")),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
