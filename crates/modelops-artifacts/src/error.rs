//! The artifact store's errors. Backend errors stay private: they are logged
//! where they happen and reach callers as a semantic kind.

use modelops_core::version::Sha256Hex;
use modelops_core::Error;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact `{sha256}` not found")]
    NotFound { sha256: Sha256Hex },
    /// The upload went past the configured maximum size.
    #[error("artifact is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The client announced a digest and sent other content.
    #[error("uploaded content has sha256 `{actual}`, not the expected `{expected}`")]
    DigestMismatch { expected: Sha256Hex, actual: Sha256Hex },
    /// The client's body stream broke off.
    #[error("upload body ended with an error: {0}")]
    Body(String),
    /// Stored content no longer matches its address: tampering or disk corruption.
    #[error("stored artifact `{sha256}` is corrupt: its content hashes to `{actual}`")]
    Corrupt { sha256: Sha256Hex, actual: Sha256Hex },
    /// The store could not be opened as configured.
    #[error("{0}")]
    Config(String),
    /// The backend is unreachable or failing; the client may retry.
    #[error("artifact store unavailable: {0}")]
    Unavailable(String),
    #[error("artifact store error: {0}")]
    Internal(String),
}

impl ArtifactError {
    /// Maps a private backend error to a kind. The detail travels in the
    /// message, which the server logs once (and does not show a client).
    pub(crate) fn backend(op: &str, error: object_store::Error) -> Self {
        use object_store::Error as E;
        match error {
            E::NotFound { path, .. } => ArtifactError::Internal(format!("{op}: `{path}` vanished")),
            E::Generic { store, source } => ArtifactError::Unavailable(format!("{op} failed in {store}: {source}")),
            e => ArtifactError::Internal(format!("{op}: {e}")),
        }
    }
}

impl From<ArtifactError> for Error {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::NotFound { sha256 } => Error::not_found("artifact", sha256),
            ArtifactError::TooLarge { .. } => Error::TooLarge(e.to_string()),
            ArtifactError::DigestMismatch { .. } => Error::invalid("sha256", e.to_string()),
            ArtifactError::Body(_) => Error::invalid("body", e.to_string()),
            ArtifactError::Config(msg) => Error::invalid("artifact_store", msg),
            // The prefix tells the client which part is down (the server
            // shows it and keeps the rest for its log).
            ArtifactError::Unavailable(msg) => Error::Unavailable(format!("artifact store: {msg}")),
            ArtifactError::Corrupt { .. } | ArtifactError::Internal(_) => Error::Internal(e.to_string()),
        }
    }
}
