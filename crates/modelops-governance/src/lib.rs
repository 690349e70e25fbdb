//! modelops-governance: policies as code and the governance reports.
//!
//! Owns the policy file (TOML or YAML; shipped defaults for the four risk
//! tiers), the gate context a condition sees, gate evaluation (`policy`,
//! `context`), and the reports rendered from the registry's own data
//! (`reports`: inventory, per-model governance report, EU AI Act Annex IV
//! draft, as Markdown, HTML and JSON).
//!
//! Must not depend on: any I/O, tokio, HTTP, SQL, the store or the registry.
//! The registry gathers the data and calls in here.

pub mod context;
pub mod policy;
pub mod reports;
