//! How much to send in one sync request, learnt from the link.
//!
//! A backlog is sent in batches, each acknowledged and made durable on the phone before the next
//! goes, so a lost answer or a killed app costs one batch, never the backlog. A batch is sized to
//! take a fraction of the network timeout at the rate the last requests achieved (bytes up and
//! down over the wall time of the request, which counts the server's own time too): on a 30 kB/s
//! uplink a batch is a few hundred kilobytes, on a good link it grows to [`MAX_BATCH_BYTES`].
//! The first request of a client is small ([`FIRST_BATCH_BYTES`]) until a rate is known.

use std::sync::Mutex;
use std::time::Duration;

/// Most bytes of changes in one request, however fast the link.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Fewest bytes a batch is sized to (one document bigger than this still goes alone).
pub const MIN_BATCH_BYTES: usize = 16 * 1024;
/// The batch before any rate is known.
pub const FIRST_BATCH_BYTES: usize = 64 * 1024;
/// Most documents in one request by default (the server takes up to
/// [`sync_core::protocol::MAX_DOCS_PER_REQUEST`]).
pub const DEFAULT_BATCH_DOCS: usize = 1_000;
/// Default network timeout: a request fails when nothing arrives for this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The server's own limit on the time of one request (its default `request_timeout`): a
/// batch is sized to stay well inside it even when the phone's timeout is longer.
const SERVER_REQUEST_TIME: Duration = Duration::from_secs(30);

/// What the client knows about its link.
#[derive(Debug)]
pub struct Link {
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    timeout: Duration,
    max_docs: usize,
    /// Bytes per second of the last measured request, smoothed.
    rate: Option<f64>,
    /// The last batch's size, so growth is gradual.
    last_budget: usize,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                timeout: DEFAULT_TIMEOUT,
                max_docs: DEFAULT_BATCH_DOCS,
                rate: None,
                last_budget: FIRST_BATCH_BYTES,
            }),
        }
    }
}

impl Link {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the network timeout (at least one second).
    pub fn set_timeout(&self, timeout: Duration) {
        self.state().timeout = timeout.max(Duration::from_secs(1));
    }

    /// Most documents per request.
    pub fn max_docs(&self) -> usize {
        self.state().max_docs
    }

    /// Sets the most documents per request, within 1 and the server's limit.
    pub fn set_max_docs(&self, docs: usize) {
        self.state().max_docs = docs.clamp(1, sync_core::protocol::MAX_DOCS_PER_REQUEST);
    }

    /// Bytes of changes the next request may carry.
    pub fn budget(&self) -> usize {
        let mut s = self.state();
        let Some(rate) = s.rate else {
            return s.last_budget;
        };
        // A quarter of the timeout, and a third of the server's time, at the measured rate.
        let target = (s.timeout / 4).min(SERVER_REQUEST_TIME / 3).as_secs_f64();
        let fits = (rate * target) as usize;
        // Grow at most fourfold a request: one fast answer from an idle server is no promise.
        let budget = fits
            .min(s.last_budget.saturating_mul(4))
            .clamp(MIN_BATCH_BYTES, MAX_BATCH_BYTES);
        s.last_budget = budget;
        budget
    }

    /// Records one request: bytes up and down and its wall time.
    pub fn record(&self, bytes: usize, took: Duration) {
        // Too small to say anything about the link (an empty sync, a loopback round trip).
        if took < Duration::from_millis(5) || bytes < 1024 {
            return;
        }
        let measured = bytes as f64 / took.as_secs_f64();
        let mut s = self.state();
        s.rate = Some(match s.rate {
            // Falls fast, rises slowly: a slow request is the one that times out.
            Some(old) if measured < old => measured,
            Some(old) => old * 0.5 + measured * 0.5,
            None => measured,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_batch_is_small_until_the_link_is_measured() {
        let link = Link::default();
        assert_eq!(link.budget(), FIRST_BATCH_BYTES);
    }

    #[test]
    fn on_a_30_kb_per_second_link_a_batch_takes_at_most_ten_seconds() {
        let link = Link::default();
        for _ in 0..10 {
            link.record(300_000, Duration::from_secs(10));
            let budget = link.budget();
            assert!(budget <= 300_000, "{budget}");
        }
        let budget = link.budget();
        assert!(
            budget >= 200_000,
            "the budget settles near 10 s of link: {budget}"
        );
    }

    #[test]
    fn a_fast_link_grows_the_batch_gradually_up_to_the_cap() {
        let link = Link::default();
        link.record(10_000_000, Duration::from_millis(100));
        assert_eq!(link.budget(), FIRST_BATCH_BYTES * 4);
        let mut last = 0;
        for _ in 0..10 {
            link.record(10_000_000, Duration::from_millis(100));
            last = link.budget();
        }
        assert_eq!(last, MAX_BATCH_BYTES);
    }

    #[test]
    fn a_link_that_slows_down_shrinks_the_next_batch_at_once() {
        let link = Link::default();
        for _ in 0..10 {
            link.record(10_000_000, Duration::from_millis(100));
            link.budget();
        }
        link.record(100_000, Duration::from_secs(10));
        assert!(link.budget() <= 100_000);
    }

    #[test]
    fn a_shorter_timeout_means_smaller_batches() {
        let slow = Link::default();
        let short = Link::default();
        short.set_timeout(Duration::from_secs(8));
        for link in [&slow, &short] {
            for _ in 0..10 {
                link.record(1_000_000, Duration::from_secs(10));
                link.budget();
            }
        }
        assert!(
            short.budget() * 4 < slow.budget() * 2,
            "2 s against 10 s of link"
        );
    }

    #[test]
    fn batch_documents_stay_within_the_servers_limit() {
        let link = Link::default();
        link.set_max_docs(1_000_000);
        assert_eq!(link.max_docs(), sync_core::protocol::MAX_DOCS_PER_REQUEST);
        link.set_max_docs(0);
        assert_eq!(link.max_docs(), 1);
    }
}
