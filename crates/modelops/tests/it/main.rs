//! Black-box tests of the real `modelops` binary: a server started on port 0
//! in a temporary data dir, driven by the CLI exactly as a user would.

mod cli;
mod config;
mod harness;
