//! Integration tests of modelops-monitor's public API (one test binary).

// Helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod drift_false_alarms;
mod huge_values;
mod profile_files;
