//! A loopback TCP proxy in front of a test server, for what a field link does: it paces bytes to
//! a rate each way (a 30 kB/s uplink) and it can cut every connection at once (the phone leaves
//! the signal, or the app is killed mid-request). Counts the bytes it carried from the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`: give this to the client instead of the server's address.
    pub base: String,
    shared: Arc<Shared>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    /// Bytes per second each way; 0 means unlimited.
    rate: AtomicU64,
    /// Bytes carried from the client to the server.
    up: AtomicU64,
    /// While set, connections are refused (the link is down).
    down: std::sync::atomic::AtomicBool,
}

impl Proxy {
    /// Starts a proxy to the server at `target` (`http://127.0.0.1:<port>`) limited to
    /// `bytes_per_second` each way (0: unlimited).
    pub async fn start(target: &str, bytes_per_second: u64) -> Proxy {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            rate: AtomicU64::new(bytes_per_second),
            up: AtomicU64::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
        });
        let (cut, cut_rx) = watch::channel(0u64);
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if s.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let s = s.clone();
                let target = target.clone();
                // Only cuts after this connection was made end it.
                let mut cut_rx = cut_rx.clone();
                cut_rx.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = pump(cr, sw, s.clone(), true);
                    let down = pump(sr, cw, s.clone(), false);
                    tokio::select! {
                        _ = async { tokio::join!(up, down) } => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            base,
            shared,
            cut,
            task,
        }
    }

    /// Bytes carried from the client so far.
    pub fn bytes_up(&self) -> u64 {
        self.shared.up.load(Ordering::SeqCst)
    }

    /// Drops every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut.send_modify(|g| *g += 1);
    }
}

/// Copies `from` to `to`, pacing to the shared rate in slices of a tenth of a second.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    upward: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let rate = shared.rate.load(Ordering::SeqCst);
        let slice = if rate == 0 {
            buf.len()
        } else {
            usize::try_from(rate / 10)
                .unwrap_or(buf.len())
                .clamp(1, buf.len())
        };
        let n = match from.read(&mut buf[..slice]).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if upward {
            shared.up.fetch_add(n as u64, Ordering::SeqCst);
        }
        if rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
    }
}
