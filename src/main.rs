use std::process::ExitCode;

use clap::Parser;

/// mimalloc: fewer cycles per request than glibc malloc on the read path (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Before anything builds an HTTPS or Postgres TLS client (src/tls.rs).
    switchboard::tls::install_provider();
    let cli = switchboard::cli::Cli::parse();
    match switchboard::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
