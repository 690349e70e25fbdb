//! modelops-server
