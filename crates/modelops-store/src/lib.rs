//! modelops-store
