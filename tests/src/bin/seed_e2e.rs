//! Starts a real server on 127.0.0.1:0 with a temp SQLite database and the populated world of
//! [`tests::world`], prints `{"base": ..., ids...}` as one JSON line on stdout, and serves until
//! stdin closes. The browser tests (`tests/browser/run.sh`) drive it.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let app = tests::spawn_app(tests::Backend::Sqlite)
        .await
        .ok_or_else(|| anyhow::anyhow!("cannot start the server"))?;
    let world = tests::world::populate(&app).await;
    println!("{}", world.to_json(&app.base));
    tokio::task::spawn_blocking(|| {
        use std::io::Read as _;
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    drop(app);
    Ok(())
}
