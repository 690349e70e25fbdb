//! In-process tests of the HTTP API on the real SQLite store and a real
//! artifact folder: `router.oneshot(request)`, no network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod aliases_tags;
mod artifacts;
mod audit;
mod bad_input;
mod identity;
mod logging;
mod metrics;
mod models;
mod monitoring;
mod openapi;
mod retrain;
mod roles;
mod versions;
