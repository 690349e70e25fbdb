//! modelops-monitor: the statistics behind monitoring, as pure computation
//! over columns.
//!
//! Owns reading CSV/Parquet into typed columns ([`data`]), data drift between
//! a reference and a current sample ([`drift`], against a reference
//! [`profile`] fitted once), model performance once labels are known
//! ([`performance`]), group fairness over a protected attribute
//! ([`fairness`]), both together over a scored table ([`evaluation`]), and
//! the self-contained HTML report and text renderings ([`report`]).
//! Performance without labels, estimated from the scores as NannyML's CBPE
//! does it, is [`cbpe`].
//! Errors are one [`error::Error`].
//!
//! Must not depend on: HTTP, SQL, tokio or any storage. Callers hand in
//! columns and get back plain, serialisable results.

pub mod cbpe;
pub mod data;
pub mod drift;
pub mod error;
pub mod evaluation;
pub mod fairness;
pub mod performance;
pub mod profile;
pub mod report;
pub mod sort;

pub use error::{Error, ErrorKind, Result};
