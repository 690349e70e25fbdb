//! modelops-monitor: the statistics behind monitoring, as pure computation
//! over columns.
//!
//! Owns reading CSV/Parquet into typed columns ([`data`]) and data drift
//! between a reference and a current sample. Errors are one [`error::Error`].
//!
//! Must not depend on: HTTP, SQL, tokio or any storage. Callers hand in
//! columns and get back plain, serialisable results.

pub mod data;
pub mod error;

pub use error::{Error, ErrorKind, Result};
