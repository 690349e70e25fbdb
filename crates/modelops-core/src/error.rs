//! The crate-wide error. Every library crate maps its private backend errors
//! into one of these kinds; the HTTP layer maps kinds to status codes in one
//! exhaustive match.

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidInput,
    Conflict,
    Forbidden,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `what` names the kind of thing (`model`, `version`, `alias`), `key` the value looked up.
    #[error("{what} `{key}` not found")]
    NotFound { what: &'static str, key: String },
    #[error("{what} `{key}` already exists")]
    AlreadyExists { what: &'static str, key: String },
    /// `field` is the JSON path of the bad input (`name`, `lineage.dataset_sha256`);
    /// `reason` says what is wrong and quotes the offending value in backticks.
    #[error("invalid `{field}`: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The request is well-formed but clashes with the current state
    /// (e.g. updating a retired model).
    #[error("{0}")]
    Conflict(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A dependency is down or overloaded; the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken invariant on our side. The message goes to the log,
    /// never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { field: field.into(), reason: reason.into() }
    }

    pub fn not_found(what: &'static str, key: impl std::fmt::Display) -> Self {
        Error::NotFound { what, key: key.to_string() }
    }

    pub fn already_exists(what: &'static str, key: impl std::fmt::Display) -> Self {
        Error::AlreadyExists { what, key: key.to_string() }
    }

    /// The field the error is about, for the `field` member of a 4xx body.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidInput { field, .. } => Some(field),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
