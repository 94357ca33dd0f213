//! The field simulator: N phones, each offline making M edits through the real mobile-bridge,
//! then syncing at once; at the end it checks that every phone and the server converged and that
//! nothing was lost, prints its figures, and exits non-zero when a check failed.
//!
//! ```sh
//! cargo run --release -p tests --bin fieldsim -- [--phones 8] [--edits 50] [--seed 6]
//!     [--photos 0.3] [--json fieldsim.json] [--quiet] [--postgres]
//!     [--server http://host:port --inspector USER --manager USER --password PW]
//! ```
//!
//! Without `--server` it starts a real server in this process on 127.0.0.1:0 with a fresh
//! SQLite database (PostgreSQL with `--postgres`, on `TEST_DATABASE_URL`) and seeds one user per
//! phone. See [`tests::fieldsim`] for the scenario and the check.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tests::fieldsim::{self, Account, Options, PhoneRole, ServerHandle, Target};

/// The server's own allocator, so that figures are the server binary's.
#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator;

/// Simulates phones in the field against a real server and checks they converge.
#[derive(Debug, Parser)]
#[command(name = "fieldsim")]
struct Args {
    /// Number of phones (one in four is an enterprise manager, the rest inspectors).
    #[arg(long, default_value_t = 8)]
    phones: usize,
    /// Edits each phone makes.
    #[arg(long, default_value_t = 50)]
    edits: usize,
    /// Seed of every random choice: the same seed plays the same scenario.
    #[arg(long, default_value_t = 6)]
    seed: u64,
    /// Probability that an edit which can carry a photo (hazard photo, rectification evidence,
    /// signature) carries one.
    #[arg(long, default_value_t = 0.3)]
    photos: f64,
    /// Writes the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// In-process server on PostgreSQL (a fresh database on `TEST_DATABASE_URL`).
    #[arg(long, conflicts_with = "server")]
    postgres: bool,
    /// Uses a running server instead of starting one (its accounts must exist).
    #[arg(long)]
    server: Option<String>,
    /// With `--server`: inspector accounts, shared round-robin by the inspector phones.
    #[arg(long, default_values_t = ["demo_inspector".to_owned()])]
    inspector: Vec<String>,
    /// With `--server`: enterprise manager accounts, shared round-robin by the manager phones.
    #[arg(long, default_values_t = ["demo_manager".to_owned()])]
    manager: Vec<String>,
    /// With `--server`: the accounts' password.
    #[arg(long, default_value = "demo12345")]
    password: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fieldsim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    if args.phones == 0 {
        anyhow::bail!("--phones must be at least 1");
    }
    let opts = Options {
        phones: args.phones,
        edits: args.edits,
        seed: args.seed,
        photos: args.photos,
        quiet: args.quiet,
        ..Default::default()
    };
    // The in-process server runs on this runtime; the phones run on their own threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut app = None;
    let target = match &args.server {
        Some(url) => {
            let mut inspectors = args.inspector.iter().cycle();
            let mut managers = args.manager.iter().cycle();
            let accounts = fieldsim::roles(args.phones)
                .into_iter()
                .map(|role| {
                    let username = match role {
                        PhoneRole::Inspector => inspectors.next(),
                        PhoneRole::Manager => managers.next(),
                    }
                    .cloned()
                    .unwrap_or_default();
                    Account {
                        username,
                        password: args.password.clone(),
                        role,
                    }
                })
                .collect();
            Target {
                base: url.trim_end_matches('/').to_owned(),
                accounts,
                server: None,
            }
        }
        None => {
            let backend = if args.postgres {
                tests::Backend::Postgres
            } else {
                tests::Backend::Sqlite
            };
            let started = rt
                .block_on(tests::spawn_app(backend))
                .context("cannot start the server (--postgres needs TEST_DATABASE_URL)")?;
            let accounts = rt.block_on(fieldsim::prepare_world(&started, args.phones))?;
            let target = Target {
                base: started.base.clone(),
                accounts,
                server: Some(ServerHandle {
                    state: started.state.clone(),
                    runtime: rt.handle().clone(),
                }),
            };
            app = Some(started);
            target
        }
    };
    let (figures, report) = fieldsim::simulate(opts, target)?;
    figures.print();
    if let Some(path) = &args.json {
        let mut out = figures.to_json();
        out["checked"] = report.checked.into();
        out["failures"] = report.failures.clone().into();
        std::fs::write(path, serde_json::to_string_pretty(&out)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if report.passed() {
        println!(
            "  check               passed ({} comparisons)",
            report.checked
        );
    } else {
        println!(
            "  check               FAILED: {} of {} comparisons",
            report.failures.len(),
            report.checked
        );
        for f in &report.failures {
            println!("    - {f}");
        }
    }
    let mut passed = report.passed();
    if let Some(app) = app.take() {
        rt.block_on(app.state.db.close());
        if let Some(deadlocks) = rt.block_on(app.postgres_deadlocks()) {
            // PostgreSQL resolves a deadlock by killing a transaction; the server retries it,
            // but a deadlock at all means the lock order is broken (issue #21).
            println!("  PostgreSQL deadlocks {deadlocks}");
            passed &= deadlocks == 0;
        }
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(passed)
}
