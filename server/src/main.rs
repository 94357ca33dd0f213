//! Entry point: parses the command line and runs the server or an admin task (see [`server::cli`]).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    server::cli::run().await
}
