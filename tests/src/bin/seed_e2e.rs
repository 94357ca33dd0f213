//! Starts a real server on 127.0.0.1:0 with a temp SQLite database and the populated world of
//! [`tests::world`], prints `{"base": ..., ids..., "evidence_jpeg": <path>}` as one JSON line on stdout, and serves until
//! stdin closes. The browser tests (`tests/browser/run.sh`) drive it.

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
    tokio::task::spawn_blocking(|| {
        use std::io::Read as _;
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    drop(app);
    Ok(())
}
