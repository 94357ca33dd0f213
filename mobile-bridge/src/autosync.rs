//! Background sync timing: the back-off policy and the loop that follows it.
//!
//! While the network fails, a phone waits longer before each new try (doubling from the sync
//! interval up to five minutes), so a phone in a dead zone does not drain its battery. Each
//! failure delay is drawn between half and all of the doubled delay ("equal jitter") so that the
//! phones of a township whose network comes back do not all call the server in the same second.
//! The jitter comes from a seeded ChaCha8 generator, which gives the same numbers for the same
//! seed on every platform and version.
//!
//! The policy is a plain value ([`Backoff`]) and the loop ([`run`]) waits through a [`Sleeper`],
//! so tests drive both with a fake clock and a fixed seed: no real time passes in them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::BridgeError;

/// The longest wait between two tries while the network fails.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What one sync attempt told about the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server answered (with success or with an error that waiting longer will not fix, such
    /// as an expired login): try again after the regular interval.
    Reached,
    /// No answer from the server: back off.
    Unreachable,
}

impl Outcome {
    /// Classifies a sync result: only a network failure backs off.
    pub(crate) fn of<T>(result: &Result<T, BridgeError>) -> Self {
        match result {
            Err(BridgeError::Network { .. }) => Outcome::Unreachable,
            _ => Outcome::Reached,
        }
    }
}

/// When to try the next sync: the regular interval after a try that reached the server,
/// `interval × 2^failures` (at most `max`, jittered down by up to half) after failures in a row.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    interval: Duration,
    max: Duration,
    jitter: bool,
    failures: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    /// A policy with jitter drawn from `seed`.
    pub(crate) fn new(interval: Duration, max: Duration, seed: u64) -> Self {
        Self {
            interval,
            // A regular interval longer than the cap is kept: backing off never syncs sooner.
            max: max.max(interval),
            jitter: true,
            failures: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The same policy without jitter: the plain doubling schedule.
    #[cfg(test)]
    pub(crate) fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The wait before the first try.
    pub(crate) fn initial(&self) -> Duration {
        self.interval
    }

    /// Failed tries since the last one that reached the server.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a try's outcome and returns the wait before the next one.
    pub(crate) fn after(&mut self, outcome: Outcome) -> Duration {
        match outcome {
            Outcome::Reached => {
                self.failures = 0;
                self.interval
            }
            Outcome::Unreachable => {
                self.failures = self.failures.saturating_add(1);
                let ceiling = self.ceiling();
                if self.jitter {
                    let half = ceiling / 2;
                    let spread = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
                    half + Duration::from_millis(self.rng.random_range(0..=spread))
                } else {
                    ceiling
                }
            }
        }
    }

    /// `interval × 2^failures`, capped at `max`.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures).unwrap_or(u32::MAX);
        self.interval.saturating_mul(factor).min(self.max)
    }
}

/// Waits. Production waits on tokio's timer; tests record the wait and return at once.
pub(crate) trait Sleeper: Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Real time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Waits, tries, and waits as `backoff` says, until `attempt` answers `None` (the client is
/// gone). Cancelling the task that runs it stops it at the next wait or try.
pub(crate) async fn run<S, A, F, T>(sleeper: S, mut backoff: Backoff, mut attempt: A)
where
    S: Sleeper,
    A: FnMut() -> F,
    F: Future<Output = Option<Result<T, BridgeError>>>,
{
    let mut delay = backoff.initial();
    loop {
        sleeper.sleep(delay).await;
        let Some(result) = attempt().await else {
            return;
        };
        delay = backoff.after(Outcome::of(&result));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    fn network_down() -> Result<(), BridgeError> {
        Err(BridgeError::Network {
            detail: "connection refused".into(),
        })
    }

    #[test]
    fn failures_double_the_wait_up_to_the_cap_and_a_success_resets_it() {
        let mut b = Backoff::new(30 * SECOND, MAX_BACKOFF, 7).without_jitter();
        assert_eq!(b.initial(), 30 * SECOND);
        let schedule: Vec<Duration> = (0..6).map(|_| b.after(Outcome::Unreachable)).collect();
        assert_eq!(schedule, secs(&[60, 120, 240, 300, 300, 300]));
        assert_eq!(b.failures(), 6);
        assert_eq!(b.after(Outcome::Reached), 30 * SECOND);
        assert_eq!(b.failures(), 0);
        // After the reset the doubling starts again from the interval.
        assert_eq!(b.after(Outcome::Unreachable), 60 * SECOND);
    }

    #[test]
    fn a_long_run_of_failures_stays_at_the_cap() {
        let mut b = Backoff::new(SECOND, MAX_BACKOFF, 7).without_jitter();
        for _ in 0..100 {
            b.after(Outcome::Unreachable);
        }
        assert_eq!(b.after(Outcome::Unreachable), MAX_BACKOFF);
    }

    #[test]
    fn an_interval_longer_than_the_cap_is_kept() {
        let mut b = Backoff::new(600 * SECOND, MAX_BACKOFF, 7).without_jitter();
        assert_eq!(b.after(Outcome::Unreachable), 600 * SECOND);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_doubled_wait_and_follows_the_seed() {
        let run = |seed| {
            let mut b = Backoff::new(30 * SECOND, MAX_BACKOFF, seed);
            (0..8)
                .map(|_| b.after(Outcome::Unreachable))
                .collect::<Vec<_>>()
        };
        let plain = secs(&[60, 120, 240, 300, 300, 300, 300, 300]);
        let jittered = run(42);
        for (got, ceiling) in jittered.iter().zip(&plain) {
            assert!(
                *got >= *ceiling / 2 && *got <= *ceiling,
                "{got:?} of {ceiling:?}"
            );
            // Never sooner than the regular interval.
            assert!(*got >= 30 * SECOND);
        }
        assert_eq!(run(42), jittered, "the same seed gives the same schedule");
        assert_ne!(run(43), jittered, "another phone's seed spreads its tries");
        assert_ne!(jittered, plain, "the waits are jittered");
    }

    #[test]
    fn only_a_network_failure_backs_off() {
        assert_eq!(Outcome::of(&network_down()), Outcome::Unreachable);
        assert_eq!(Outcome::of(&Ok::<(), BridgeError>(())), Outcome::Reached);
        let expired = Err::<(), _>(BridgeError::Unauthorized {
            detail: "expired".into(),
        });
        assert_eq!(Outcome::of(&expired), Outcome::Reached);
    }

    /// A clock that moves only when the loop sleeps, and records each wait.
    #[derive(Clone, Default)]
    struct FakeClock {
        slept: Arc<Mutex<Vec<Duration>>>,
    }

    impl FakeClock {
        fn slept(&self) -> Vec<Duration> {
            self.slept.lock().unwrap().clone()
        }
        fn now(&self) -> Duration {
            self.slept().iter().sum()
        }
    }

    impl Sleeper for FakeClock {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            self.slept.lock().unwrap().push(duration);
            Box::pin(std::future::ready(()))
        }
    }

    /// The fake time of each attempt.
    type Attempts = Arc<Mutex<Vec<Duration>>>;
    /// What one attempt answers: `None` once the client is gone.
    type Answer = std::future::Ready<Option<Result<(), BridgeError>>>;

    /// Fails with a network error `failures` times, then reaches the server `successes` times,
    /// then reports the client gone. Records the fake time of each attempt.
    fn flaky_transport(
        clock: &FakeClock,
        failures: usize,
        successes: usize,
    ) -> (Attempts, impl FnMut() -> Answer) {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let seen = attempts.clone();
        let clock = clock.clone();
        let transport = move || {
            let mut seen = seen.lock().unwrap();
            let n = seen.len();
            seen.push(clock.now());
            std::future::ready(if n < failures {
                Some(network_down())
            } else if n < failures + successes {
                Some(Ok(()))
            } else {
                None
            })
        };
        (attempts, transport)
    }

    #[test]
    fn the_loop_backs_off_through_failures_then_returns_to_the_interval() {
        let clock = FakeClock::default();
        let (attempts, transport) = flaky_transport(&clock, 4, 2);
        let backoff = Backoff::new(30 * SECOND, MAX_BACKOFF, 7).without_jitter();
        sync_core::store::block_on(run(clock.clone(), backoff, transport));
        // 4 failures, 2 syncs that reach the server, and the try that finds the client gone.
        assert_eq!(
            clock.slept(),
            secs(&[30, 60, 120, 240, 300, 30, 30]),
            "a wait before every try"
        );
        assert_eq!(
            *attempts.lock().unwrap(),
            secs(&[30, 90, 210, 450, 750, 780, 810]),
            "tries at the fake times the policy gives"
        );
    }

    #[test]
    fn the_loop_follows_the_jittered_policy_for_its_seed() {
        let clock = FakeClock::default();
        let (attempts, transport) = flaky_transport(&clock, 5, 1);
        sync_core::store::block_on(run(
            clock.clone(),
            Backoff::new(30 * SECOND, MAX_BACKOFF, 99),
            transport,
        ));
        let mut policy = Backoff::new(30 * SECOND, MAX_BACKOFF, 99);
        let mut expected = vec![policy.initial()];
        expected.extend((0..5).map(|_| policy.after(Outcome::Unreachable)));
        expected.push(policy.after(Outcome::Reached));
        assert_eq!(clock.slept(), expected);
        assert_eq!(attempts.lock().unwrap().len(), 7);
    }
}
