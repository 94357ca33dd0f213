//! Starts a real server on 127.0.0.1:0 with a temp SQLite database and the populated world of
//! [`tests::world`], prints `{"base": ..., ids..., "evidence_jpeg": <path>}` as one JSON line on
//! stdout, and serves until stdin closes. The browser tests (`tests/browser/run.sh`) drive it.
//!
//! The server runs on the tests' [`server::TestClock`]; a line `advance <seconds>` on stdin moves
//! it forward (so access tokens expire without waiting) and is answered by `advanced <rfc3339>`.

use std::io::BufRead as _;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let app = tests::spawn_app(tests::Backend::Sqlite)
        .await
        .ok_or_else(|| anyhow::anyhow!("cannot start the server"))?;
    let world = tests::world::populate(&app).await;
    // A small JPEG for the enterprise to upload as evidence from the browser.
    let evidence = app.dir.path().join("evidence.jpg");
    std::fs::write(&evidence, tests::world::tiny_jpeg(7))?;
    let mut out = world.to_json(&app.base);
    out["evidence_jpeg"] = evidence.display().to_string().into();
    println!("{out}");
    let clock = app.clock.clone();
    tokio::task::spawn_blocking(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim().strip_prefix("advance ").map(str::parse::<i64>) {
                Some(Ok(secs)) => {
                    clock.advance(jiff::SignedDuration::from_secs(secs));
                    println!("advanced {}", server::Clock::now(clock.as_ref()));
                }
                _ => eprintln!("seed_e2e: unknown command {line:?}"),
            }
        }
    })
    .await?;
    drop(app);
    Ok(())
}
