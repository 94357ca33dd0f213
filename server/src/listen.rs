//! Accepting connections: a bounded number of them, none kept idle or half-sent for long, and
//! health checks answered even when every slot is taken.
//!
//! `axum::serve` accepts every connection and keeps it as long as the client likes: 2,000 idle
//! connections, or headers sent a byte at a time, held descriptors until the process ran out of
//! them and stopped accepting (issue #19). This loop serves each connection with hyper directly:
//! - a connection takes one of `max_connections` slots (lowered at start to what the process's
//!   descriptor limit leaves after the database, photo files and a margin);
//! - every connection has `header_read_timeout` to send a request's headers, counted from when
//!   it connected or from its previous answer; hyper runs this timer while a keep-alive
//!   connection waits for its next request too, so it bounds slow headers and idle connections
//!   alike;
//! - when the slots are full, a connection from the host itself (127.0.0.1, ::1) or a configured
//!   health-check address
//!   takes one of a few reserve slots, served by a router that answers `/healthz` and a bilingual
//!   `503` for anything else, one request per connection; any other connection is closed at once
//!   (its descriptor is freed, never queued).
//!
//! [`ConnGauge`] counts what is open, for tests and operators.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::error::ApiError;

/// Reserve slots for health checks once every ordinary slot is taken.
pub const HEALTH_RESERVE: usize = 16;

/// Descriptors kept free for everything that is not a client connection (database
/// connections, photo files, the log).
const DESCRIPTOR_MARGIN: usize = 128;

/// How the listener bounds connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// Ordinary slots.
    pub max_connections: usize,
    /// See [`crate::config::Config::header_read_timeout`].
    pub header_read_timeout: Duration,
    /// Addresses besides the host itself (127.0.0.1, ::1) allowed into the reserve.
    pub health_check_from: Vec<IpAddr>,
    /// On shutdown, how long requests in flight get to finish before their connections are
    /// dropped (a phone halfway through a photo resumes it from the last byte written).
    pub drain_grace: Duration,
}

/// See [`ConnLimits::drain_grace`].
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

impl ConnLimits {
    /// The limits of `config`, with `max_connections` lowered to what the descriptor limit of
    /// the process allows (`nofile`, when known).
    pub fn of(config: &crate::config::Config, nofile: Option<usize>) -> Self {
        let mut max = config.max_connections.max(1);
        if let Some(limit) = nofile {
            let room = limit
                .saturating_sub(DESCRIPTOR_MARGIN + HEALTH_RESERVE)
                .max(1);
            if room < max {
                tracing::warn!(
                    configured = max,
                    allowed = room,
                    descriptors = limit,
                    "连接数上限已按文件描述符限制下调 / connection cap lowered to fit the descriptor limit"
                );
                max = room;
            }
        }
        Self {
            max_connections: max,
            header_read_timeout: config.header_read_timeout,
            health_check_from: config.health_check_from.clone(),
            drain_grace: DRAIN_GRACE,
        }
    }

    /// The host itself (127.0.0.1 or ::1, not the rest of 127.0.0.0/8) or a configured
    /// health-check address.
    fn may_use_reserve(&self, ip: IpAddr) -> bool {
        let own_host = match ip {
            IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
            IpAddr::V6(v6) => {
                v6 == std::net::Ipv6Addr::LOCALHOST
                    || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
            }
        };
        own_host || self.health_check_from.contains(&ip)
    }
}

/// The soft limit on open descriptors of this process, where the system tells it
/// (`/proc/self/limits` on Linux).
pub fn descriptor_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What the listener holds now and has turned away.
#[derive(Debug, Default)]
pub struct ConnGauge {
    open: AtomicUsize,
    reserve: AtomicUsize,
    refused: AtomicU64,
}

impl ConnGauge {
    /// Connections being served in ordinary slots.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections being served in reserve slots.
    pub fn in_reserve(&self) -> usize {
        self.reserve.load(Ordering::Relaxed)
    }

    /// Connections closed on arrival because every slot was taken.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Decrements a gauge when the connection ends, however it ends.
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves; then stops accepting,
/// lets every connection finish its request in flight, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    gauge: Arc<ConnGauge>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ordinary = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(HEALTH_RESERVE));
    let busy = busy_router();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (permit, router, counter, keep_alive) = if let Ok(p) =
            ordinary.clone().try_acquire_owned()
        {
            (p, app.clone(), &gauge.open, true)
        } else if limits.may_use_reserve(peer.ip())
            && let Ok(p) = reserve.clone().try_acquire_owned()
        {
            (p, busy.clone(), &gauge.reserve, false)
        } else {
            let refused = gauge.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    %peer,
                    "连接数已满，新连接被关闭 / every connection slot is taken: connection closed"
                );
            }
            drop(stream);
            continue;
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let gauge = gauge.clone();
        let is_reserve = !keep_alive;
        let timeout = limits.header_read_timeout;
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _held = Held(if is_reserve {
                &gauge.reserve
            } else {
                &gauge.open
            });
            serve_one(stream, peer, router, timeout, keep_alive, &mut stop).await;
        });
    }
    drop(listener);
    // Every connection task holds a receiver; they are all gone when the last one ends. The
    // loop's own must go first, or the wait below never ends (it did: issue #19's listener
    // hung on SIGTERM while a phone kept an idle connection).
    drop(stop_rx);
    stop_tx.send_replace(true);
    if tokio::time::timeout(limits.drain_grace, stop_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            left = gauge.open() + gauge.in_reserve(),
            "停止时仍有未完成的请求，连接已断开 / requests still in flight at shutdown were cut off"
        );
    }
    Ok(())
}

async fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    keep_alive: bool,
    stop: &mut watch::Receiver<bool>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    // The client's address reaches the handlers as axum's `ConnectInfo` (login throttling).
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(keep_alive);
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(result),
        // The flag only ever goes to `true`; a closed channel means the same.
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            log_end(connection.await);
        }
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        // Timeouts, resets and garbage are the client's business; nothing to act on here.
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Errors of `accept` that concern one connection only are skipped; others (out of
/// descriptors) get a pause so the loop does not spin.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    tracing::error!(%error, "接受连接失败 / accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What a reserve connection is served: the health check, and for anything else a refusal
/// that tells the client to come back.
fn busy_router() -> Router {
    Router::new()
        .route("/healthz", get(crate::healthz))
        .fallback(busy)
}

async fn busy() -> Result<Response, Infallible> {
    let mut response = ApiError::unavailable(
        "server_busy",
        "服务器繁忙，请稍后再试",
        "server busy: every connection slot is taken, try again shortly",
    )
    .into_response();
    debug_assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn limits(drain_grace: Duration) -> ConnLimits {
        ConnLimits {
            max_connections: 8,
            header_read_timeout: Duration::from_secs(30),
            health_check_from: Vec::new(),
            drain_grace,
        }
    }

    /// Serves `app` until the returned sender fires; the handle ends when `serve` returns.
    async fn start(
        app: Router,
        limits: ConnLimits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve(
            listener,
            app,
            limits,
            Arc::new(ConnGauge::default()),
            async {
                let _ = rx.await;
            },
        ));
        (addr, tx, served)
    }

    async fn send_get(stream: &mut TcpStream, path: &str) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
    }

    /// Reads until the end of one response's headers and a body of `body_len` bytes.
    async fn read_response(stream: &mut TcpStream, body_len: usize) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a whole response: {got:?}");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some(end) = text.find("\r\n\r\n")
                && got.len() >= end + 4 + body_len
            {
                return text.into_owned();
            }
        }
    }

    /// An idle keep-alive connection (a phone's pooled client) neither holds the shutdown up
    /// nor stays open after it: the server used to wait for it forever (issue #19).
    #[tokio::test]
    async fn an_idle_keep_alive_connection_does_not_hold_shutdown() {
        let app = Router::new().route("/", get(|| async { "ok" }));
        let (addr, stop, served) = start(app, limits(Duration::from_secs(60))).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        send_get(&mut idle, "/").await;
        let answer = read_response(&mut idle, 2).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        stop.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), served).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "serve did not return with the drain grace (60 s) far from reached: {ended:?}"
        );
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("the idle connection was left open")
            .unwrap_or(0);
        assert_eq!(
            n, 0,
            "the idle connection got bytes instead of being closed"
        );
    }

    /// A request in flight at shutdown is answered whole; one that outlasts the grace does not
    /// keep the process from stopping.
    #[tokio::test]
    async fn shutdown_finishes_requests_in_flight_within_the_grace_and_no_longer() {
        let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<()>(4);
        let (release_tx, release_rx) = watch::channel(false);
        let app = Router::new().route(
            "/slow",
            get(move || async move {
                started_tx.send(()).await.unwrap();
                let mut release = release_rx;
                let _ = release.wait_for(|go| *go).await;
                "done"
            }),
        );
        let (addr, stop, served) = start(app, limits(Duration::from_millis(500))).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        send_get(&mut slow, "/slow").await;
        started_rx.recv().await.unwrap();
        stop.send(()).unwrap();
        // Shutdown has begun; the request in flight is then let finish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        release_tx.send_replace(true);
        let answer = read_response(&mut slow, 4).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        let ended = tokio::time::timeout(Duration::from_secs(10), served).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");

        // A handler that never answers: serve still returns, after the grace.
        let app = Router::new().route("/forever", get(std::future::pending::<&'static str>));
        let (addr, stop, served) = start(app, limits(Duration::from_millis(300))).await;
        let mut stuck = TcpStream::connect(addr).await.unwrap();
        send_get(&mut stuck, "/forever").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), served).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    }
}
