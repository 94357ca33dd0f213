//! A loopback TCP load balancer in front of several server instances, as a deployment puts one
//! in front of stateless servers: each new connection goes to an instance drawn at random
//! (seeded), and to the next one when that instance does not answer (killed). Counts the
//! connections each instance took.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng as _, SeedableRng as _};
use tokio::net::{TcpListener, TcpStream};

/// A running balancer; stops when dropped.
pub struct Balancer {
    /// `http://127.0.0.1:<port>`: what the phones are given.
    pub base: String,
    taken: Arc<Vec<AtomicUsize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Starts a balancer over `backends` (`http://127.0.0.1:<port>` each), drawing with `seed`.
    pub async fn start(backends: &[String], seed: u64) -> Balancer {
        assert!(!backends.is_empty(), "a balancer needs an instance");
        let backends: Vec<String> = backends
            .iter()
            .map(|b| {
                b.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let taken: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = taken.clone();
        let task = tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let first = rng.random_range(0..backends.len());
                let backends = backends.clone();
                let counts = counts.clone();
                tokio::spawn(async move {
                    let mut client = client;
                    for k in 0..backends.len() {
                        let i = (first + k) % backends.len();
                        if let Ok(mut server) = TcpStream::connect(&backends[i]).await {
                            counts[i].fetch_add(1, Ordering::SeqCst);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                    // No instance answers: the client sees its connection closed.
                });
            }
        });
        Balancer { base, taken, task }
    }

    /// Connections instance `i` took so far.
    pub fn taken(&self, i: usize) -> usize {
        self.taken[i].load(Ordering::SeqCst)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
