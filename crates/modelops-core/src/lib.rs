//! modelops-core
