//! modelops-watch: live monitoring of deployments.
//!
//! Owns the monitors' engine ([`engine::Watch`]): following each monitored
//! deployment's prediction log, summarising its rows into time or count
//! windows per serving version with `modelops-monitor`'s mergeable
//! aggregates (a bounded raw sample where K-S and Wasserstein need values),
//! the window results (drift against the version's reference profile,
//! performance and fairness over the labelled calls, recomputed when late
//! labels arrive), the alert rules (CEL through `modelops-expr`, with a
//! for-duration and a cool-down) and their actions (signed webhooks with
//! bounded retries, degrading a deployment, rolling back its canary through
//! `modelops-deploy`, retraining requests); what a monitor may name
//! ([`spec`]); the conversion of recorded calls into the exported table's
//! columns ([`window`]); webhook delivery ([`alert`]). Every surface calls
//! the use cases on [`engine::Watch`].
//!
//! Must not depend on: an HTTP server or framework, SQL or a concrete store
//! (through the registry and `core::repo`), the runtimes.

pub mod alert;
pub mod engine;
pub mod spec;
pub mod window;

pub use engine::{MonitorStatus, ReferenceInput, Watch, WatchConfig, WatchMetrics, WindowGauges};
