//! Integration tests of modelops-monitor's public API (one test binary).

mod drift_false_alarms;
