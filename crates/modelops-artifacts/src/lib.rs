//! modelops-artifacts
