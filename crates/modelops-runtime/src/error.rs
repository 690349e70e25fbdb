//! The one error type of the runtimes.

/// What can go wrong loading or running a model. Each variant maps to one
/// HTTP status in the server: `Input`/`Unsupported` → 400, `Load` → 400 at
/// registration (422-like: the artifact is the client's), `UpstreamTimeout`
/// → 504, `Upstream` → 502, `Internal` → 500.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// A request's input is wrong: `field` names the tensor or feature
    /// (`inputs.age`, `inputs.float_input`), `reason` what is wrong.
    #[error("{field}: {reason}")]
    Input { field: String, reason: String },
    /// The artifact cannot be loaded as its kind; names the operator or
    /// the part of the spec at fault.
    #[error("the artifact cannot be loaded: {0}")]
    Load(String),
    /// Asked for something this model does not do (an explanation of an
    /// MLP, say).
    #[error("{0}")]
    Unsupported(String),
    #[error("upstream `{upstream}` did not answer within {timeout_ms} ms")]
    UpstreamTimeout { upstream: String, timeout_ms: u64 },
    #[error("upstream `{upstream}` failed: {reason}")]
    Upstream { upstream: String, reason: String },
    #[error("internal runtime error: {0}")]
    Internal(String),
}

impl RuntimeError {
    pub fn input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Input { field: field.into(), reason: reason.into() }
    }
}
