//! modelops-monitor
