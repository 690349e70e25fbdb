//! modelops-deploy: deployments — named endpoints that move a model's
//! traffic between its versions — and the record of every prediction.
//!
//! Owns: the live statistics of each route ([`stats`]), the canary's
//! rollback condition in CEL over them ([`condition`]), the prediction
//! recorder: a bounded queue drained in batches into the store off the
//! request path, every record not kept counted ([`recorder`]), and the
//! export of recorded predictions to Parquet ([`export`]), and cumulative
//! traffic per deployment, version and route for monitoring ([`traffic`]).
//!
//! Must not depend on: HTTP frameworks, SQL or a concrete store (records go
//! through `modelops_core::repo::PredictionLog`; deployments are changed
//! through the registry's use cases, which check the governance gates and
//! write the audit events).

pub mod condition;
pub mod export;
pub mod plan;
pub mod recorder;
pub mod service;
pub mod stats;
pub mod traffic;

pub use service::{DeployConfig, DeploymentStatus, Deployments, Routed};
