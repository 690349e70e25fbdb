//! Black-box tests of the real `modelops` binary: a server started on port 0
//! in a temporary data dir, driven by the CLI exactly as a user would.


// Test helpers outside #[test] functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod cli;
mod config;
mod governance;
mod harness;
mod limits;
mod readme_walk;
mod serve_policy;
