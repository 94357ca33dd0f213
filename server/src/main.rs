//! Entry point: parses the command line and runs the server or an admin task (see [`server::cli`]).

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    server::cli::run().await
}
