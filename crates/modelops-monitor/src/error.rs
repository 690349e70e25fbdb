//! The crate-wide error. Bad input is an [`Error`] with a message that names
//! the column and quotes the offending value; it is never a panic. Callers
//! that read files add the file name as context.

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidInput,
    Internal,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// One column cannot be used as given; `reason` quotes the bad value.
    #[error("column `{column}`: {reason}")]
    InvalidColumn { column: String, reason: String },
    /// The inputs do not fit together (lengths differ, no rows left, a flag
    /// that contradicts the data).
    #[error("{0}")]
    InvalidInput(String),
    /// A file cannot be read at all: missing, unreadable, empty, truncated,
    /// or not CSV/Parquet.
    #[error("cannot read `{path}`: {reason}")]
    Read { path: String, reason: String },
    /// One column of a file cannot be used as given.
    #[error("`{path}`, column `{column}`: {reason}")]
    FileColumn { path: String, column: String, reason: String },
    /// A broken invariant on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidColumn { .. }
            | Error::InvalidInput(_)
            | Error::Read { .. }
            | Error::FileColumn { .. } => ErrorKind::InvalidInput,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn column(column: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidColumn { column: column.into(), reason: reason.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
