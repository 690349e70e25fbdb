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
    /// No credentials, or credentials that identify no one (401).
    Unauthenticated,
    Forbidden,
    /// The request body is larger than a configured limit.
    TooLarge,
    Unavailable,
    /// An upstream modelops calls (an LLM provider, an external model
    /// server) failed (502) or did not answer in time (504).
    BadGateway,
    GatewayTimeout,
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
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
    /// The request carries no credentials, or a token that is wrong,
    /// expired, revoked or belongs to a disabled user. The message never
    /// contains the token.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Refused by authorisation or a governance gate; the denial lists every
    /// failing condition so a client can act on all of them at once.
    #[error("forbidden: {0}")]
    Forbidden(Denial),
    /// The body went past a size limit; the message names the limit.
    #[error("{0}")]
    TooLarge(String),
    /// A dependency is down or overloaded; the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// An upstream failed; the message names it and carries its answer.
    #[error("{0}")]
    BadGateway(String),
    /// An upstream did not answer in time; the message names it.
    #[error("{0}")]
    GatewayTimeout(String),
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
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::TooLarge(_) => ErrorKind::TooLarge,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::BadGateway(_) => ErrorKind::BadGateway,
            Error::GatewayTimeout(_) => ErrorKind::GatewayTimeout,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { field: field.into(), reason: reason.into() }
    }

    pub fn not_found(what: &'static str, key: impl std::fmt::Display) -> Self {
        Error::NotFound { what, key: key.to_string() }
    }

    /// A denial with one failing condition.
    pub fn forbidden(condition: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden(Denial::single(condition, message))
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

/// Why an action was refused: every failing condition, by name, in the order
/// checked. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Denial {
    reasons: Vec<DenialReason>,
}

/// One failing condition: `condition` is a stable name clients can match on
/// (`role`, later a gate's name); `message` says what failed, for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DenialReason {
    pub condition: String,
    pub message: String,
}

impl Denial {
    /// A denial needs at least one reason; an empty list becomes one
    /// `unspecified` reason rather than an unexplained refusal.
    pub fn new(mut reasons: Vec<DenialReason>) -> Self {
        if reasons.is_empty() {
            reasons.push(DenialReason { condition: "unspecified".into(), message: "the action was refused".into() });
        }
        Self { reasons }
    }

    /// A denial with one failing condition.
    pub fn single(condition: &str, message: impl Into<String>) -> Self {
        Self { reasons: vec![DenialReason { condition: condition.to_string(), message: message.into() }] }
    }

    pub fn reasons(&self) -> &[DenialReason] {
        &self.reasons
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, reason) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&reason.message)?;
        }
        Ok(())
    }
}
