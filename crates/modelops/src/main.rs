//! The `modelops` binary: the command-line interface, configuration and the
//! wiring of concrete backends. It is the only crate that knows which storage
//! backend is in use; everything below it works through traits.
//!
//! Each subcommand lives in its own module under `cmd/`. Errors bubble up as
//! `anyhow::Error` and are printed as one line; the exit code is non-zero.

mod client;
mod cmd;
mod config;
mod output;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "modelops", version, about = "Govern, serve and monitor every model in production")]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> std::process::ExitCode {
    // `RUST_BACKTRACE=1` (common in container images) makes every
    // `anyhow`/`std` error capture a backtrace, and tract's optimiser makes
    // and discards errors by the hundred while it loads a model: pushing an
    // ONNX version spent ~5 % of its CPU unwinding stacks nobody reads.
    // Errors here are reported as one line anyway; panics keep their
    // backtraces (they follow `RUST_BACKTRACE`). Set before any thread
    // exists; an explicit `RUST_LIB_BACKTRACE` is respected.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let cli = Cli::parse();
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            // One line for people; the chain of causes joined with `: `.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
